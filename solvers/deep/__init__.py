"""Deep networks, L >= 2 hidden layers with a mean-field readout (THEORY §5).

* :mod:`.linear` — linear φ: closed-form roots on any inputs and on class data;
* :mod:`.nonlinear` — nonlinear φ on class data: the search for the class-block saddle point, over
  :mod:`.options` (:class:`DeepOptions`), :mod:`.model` (the packed equations), :mod:`.newton`
  (Newton–Broyden with fixed proposals, proposal rounds), :mod:`.saddle` (coverage, stability,
  integration errors), :mod:`.modes` (the mode search of the coverage check) and
  :mod:`.nonlinear_result` (:class:`DeepNonlinearSolution`);
* :mod:`.large_p` — the P → ∞ limit on class data;
* :mod:`.continuation` — coexisting roots, folds and first-order jumps in one parameter.

The equations are in :mod:`theory.deep_blocks` (class-block reduction) and :mod:`theory.deep_large_p`.
"""
from solvers.deep.continuation import DeepContinuation, DeepSpecialPoint, continue_deep
from solvers.deep.large_p import DeepLargePSolution, solve_deep_large_p
from solvers.deep.linear import (DeepLinearClassSolution, DeepLinearError, DeepLinearSolution, solve_deep_linear,
                                 solve_deep_linear_classes)
from solvers.deep.nonlinear import DeepNonlinearError, DeepNonlinearSolution, DeepOptions, solve_deep_nonlinear

__all__ = ["DeepLinearError", "DeepLinearSolution", "DeepLinearClassSolution", "solve_deep_linear",
           "solve_deep_linear_classes", "DeepOptions", "DeepNonlinearSolution", "DeepNonlinearError",
           "solve_deep_nonlinear", "DeepLargePSolution", "solve_deep_large_p", "DeepContinuation", "DeepSpecialPoint",
           "continue_deep"]
