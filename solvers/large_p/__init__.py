"""The P → ∞ theory with σ_a² = σ̄_a²/P: branches, symmetry breaking and the ReLU condensate (THEORY §4).

Read in this order:

* :mod:`.problem` — the action S(a; t) and its derivatives;
* :mod:`.maxima` — all local maxima of S (the branches' readout vectors);
* :mod:`.dual` — the smoothed non-smooth dual G∞(t);
* :mod:`.branches` — the branch equations with analytic Jacobian;
* :mod:`.solve` — the solver (``solve_large_p``) and its result;
* :mod:`.condensate` — linearly growing φ (ReLU): the domain constraint and its outliers;
* :mod:`.continuation` — following a solution in one parameter, with special points; its parts:
  :mod:`.driver` (acting on special points), :mod:`.stability` (the physical stability count),
  :mod:`.records` (result types), :mod:`.report` (descriptions), :mod:`.paths` (linear φ,
  sequential solves), :mod:`.symmetry` (the symmetry group of the branch system);
* :mod:`.phase_diagram` — coding schemes over two parameters: :mod:`.coding` (the label of a
  solution), :mod:`.transition` (transition curves by continuation).
"""
from theory.deferred_imports import deferred_attributes

_EXPORTS = {
    "LargePProblem": "solvers.large_p.problem",
    "LargePSolution": "solvers.large_p.solve",
    "solutions": "solvers.large_p.solve",
    "solve_branches": "solvers.large_p.solve",
    "solve_large_p": "solvers.large_p.solve",
    "symmetric_solution": "solvers.large_p.solve",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = deferred_attributes(__name__, _EXPORTS)
