"""The one-hidden-layer theory on explicit input matrices (THEORY §2, §4).

Closed form:

* :mod:`.linear` — linear φ in closed form (exact).

Finite-P theory by Monte Carlo (:func:`solve_general`):

* :mod:`.options` — options of both Monte Carlo solvers;
* :mod:`.elliptical_slice` — the slice update shared by the samplers below;
* :mod:`.chains` — parallel elliptical slice chains of the single-neuron measure;
* :mod:`.smc` — tempered sequential Monte Carlo for the single-neuron measure;
* :mod:`.domain` — the domain bound q(t) < 1 for φ with linear growth;
* :mod:`.surrogate` — the importance-weighted surrogate dual and its Newton step;
* :mod:`.estimators` — chain groups, group MCSE and R̂;
* :mod:`.condensate` — ReLU-type φ: cuts and the SQP step of the condensate;
* :mod:`.starts` — starting field and burn-in;
* :mod:`.result` — the solution and test predictions;
* :mod:`.solve` — the driver: rounds of stochastic Newton with growing samples.

Large-P branch form (:func:`solve_general_branches`):

* :mod:`.tilted_chains` — slice chains of many tilted Gaussians at once;
* :mod:`.thermodynamic` — Λ(g) by thermodynamic integration;
* :mod:`.maxima` — the branch search (maxima of S(a; t));
* :mod:`.kkt` — the KKT system of the branch equations;
* :mod:`.linear_branch` — linear φ: one Gaussian branch, without sampling;
* :mod:`.branch_result` — branches and the branch solution;
* :mod:`.branches` — the driver.
"""
from theory.deferred_imports import deferred_attributes

_EXPORTS = {
    "GeneralBranchOptions": "solvers.data.branches",
    "GeneralBranchSolution": "solvers.data.branches",
    "solve_general_branches": "solvers.data.branches",
    "LinearSolution": "solvers.data.linear",
    "solve_linear": "solvers.data.linear",
    "GeneralOptions": "solvers.data.solve",
    "GeneralSolution": "solvers.data.solve",
    "solve_general": "solvers.data.solve",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = deferred_attributes(__name__, _EXPORTS)
