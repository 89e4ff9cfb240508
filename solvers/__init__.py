"""Numerical solution of the saddle-point equations (THEORY §2–5).

Shared machinery at this level: :mod:`.solve` (the entry point, ``method=``), :mod:`.results`,
:mod:`.options`, :mod:`.continuation`, :mod:`.sweep`, and the integration rules
:mod:`.cubature`, :mod:`.rules`. One subpackage per problem family:

* :mod:`.finite_p` — the exact one-layer theory on class data;
* :mod:`.large_p` — the P → ∞ branches, condensate, continuation and phase diagrams;
* :mod:`.data` — explicit input matrices;
* :mod:`.deep` — L >= 2 hidden layers.
"""
from theory.deferred_imports import deferred_attributes

_EXPORTS = {
    "LargePProblem": "solvers.large_p",
    "LargePSolution": "solvers.large_p",
    "solutions": "solvers.large_p",
    "solve_branches": "solvers.large_p",
    "solve_large_p": "solvers.large_p",
    "symmetric_solution": "solvers.large_p",
    "SolverOptions": "solvers.options",
    "SolveResult": "solvers.results",
}

# the function ``solve`` shares its name with the module ``solvers.solve``: bound now, so that
# ``from solvers import solve`` is the function however the module was imported before
from solvers.solve import solve, solve_lazy  # noqa: E402  (light: no Monte Carlo solver, no plotting)

__all__ = ["solve", "solve_lazy", *_EXPORTS]
__getattr__, __dir__ = deferred_attributes(__name__, _EXPORTS)
