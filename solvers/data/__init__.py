"""The one-hidden-layer theory on explicit input matrices (THEORY §2, §4).

* :mod:`.linear` — linear φ in closed form (exact);
* :mod:`.elliptical_slice` — the slice update shared by the samplers below;
* :mod:`.smc` — tempered sequential Monte Carlo for the single-neuron measure;
* :mod:`.solve` — Newton on the dual with Monte Carlo moments (any φ), with error bars;
* :mod:`.branches` — the large-P branch form on explicit inputs.
"""
from solvers.data.branches import GeneralBranchOptions, GeneralBranchSolution, solve_general_branches
from solvers.data.linear import LinearSolution, solve_linear
from solvers.data.solve import GeneralOptions, GeneralSolution, solve_general

__all__ = ["LinearSolution", "solve_linear", "GeneralOptions", "GeneralSolution", "solve_general",
           "GeneralBranchOptions", "GeneralBranchSolution", "solve_general_branches"]
