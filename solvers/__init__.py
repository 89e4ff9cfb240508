"""Numerical solution of the saddle-point equations (THEORY §2–5).

Shared machinery at this level: :mod:`.solve` (the entry point, ``method=``), :mod:`.results`,
:mod:`.options`, :mod:`.continuation`, :mod:`.sweep`, and the integration rules
:mod:`.cubature`, :mod:`.rules`. One subpackage per problem family:

* :mod:`.finite_p` — the exact one-layer theory on class data;
* :mod:`.large_p` — the P → ∞ branches, condensate, continuation and phase diagrams;
* :mod:`.data` — explicit input matrices;
* :mod:`.deep` — L >= 2 hidden layers.
"""
from solvers.large_p import (LargePProblem, LargePSolution, solutions, solve_branches, solve_large_p,
                             symmetric_solution)
from solvers.options import SolverOptions
from solvers.results import SolveResult
from solvers.solve import solve, solve_lazy

__all__ = ["solve", "solve_lazy", "SolverOptions", "SolveResult", "LargePProblem", "LargePSolution",
           "solve_large_p", "solve_branches", "symmetric_solution", "solutions"]
