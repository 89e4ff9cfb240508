"""Numerical solution of the saddle-point equations: integrators, Newton / fixed point, CLI."""
from .options import SolverOptions
from .result import SolveResult
from .solve import solve

__all__ = ["solve", "SolverOptions", "SolveResult"]
