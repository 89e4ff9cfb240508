"""Numerical solution of the saddle-point equations: integrators, Newton / fixed point, large-P
branches, continuation, phase diagrams, resumable sweeps, CLI."""
from .large_p import LargePSolution, solve_branches, solve_large_p, solutions, symmetric_solution
from .large_p_problem import LargePProblem
from .options import SolverOptions
from .result import SolveResult
from .solve import solve, solve_lazy

__all__ = ["solve", "solve_lazy", "SolverOptions", "SolveResult", "LargePProblem", "LargePSolution",
           "solve_large_p", "solve_branches", "symmetric_solution", "solutions"]
