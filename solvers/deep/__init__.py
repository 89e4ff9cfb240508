"""Deep networks, L >= 2 hidden layers with a mean-field readout (THEORY §5).

* :mod:`.linear` — linear φ: closed-form roots on any inputs and on class data;
* :mod:`.nonlinear` — nonlinear φ on class data: the search for the class-block saddle point, over
  :mod:`.options` (:class:`DeepOptions`), :mod:`.model` (the packed equations), :mod:`.newton`
  (Newton–Broyden with fixed proposals, proposal rounds), :mod:`.saddle` (coverage, stability,
  integration errors, with :mod:`.replicates` for replicates propagated linearly), :mod:`.modes` (the mode
  search of the coverage check), :mod:`.nonlinear_result` (:class:`DeepNonlinearSolution`), for ReLU
  :mod:`.condensate` (readout domain, needle proposals) and :mod:`.kkt` (the condensate's KKT terms), and
  :mod:`.sampled_start` (a start from sampled networks' class-block kernels, :class:`SampledKernels`),
  :mod:`.floors` (the integration floor of the residual at a point: which layer's integral limits it), and the
  search's paths :mod:`.shape_homotopy` (in φ's shape), :mod:`.sigmoid_homotopy` (from one sigmoid's saddle to
  another's) and :mod:`.temperature_path` (in T), and :mod:`.refine` (more integration points for the selected
  saddle);
* :mod:`.large_p` — the P → ∞ limit on class data;
* :mod:`.continuation` — coexisting roots, folds and first-order jumps in one parameter.

The equations are in :mod:`theory.deep_blocks` (class-block reduction) and :mod:`theory.deep_large_p`.
"""
from theory.deferred_imports import deferred_attributes

_EXPORTS = {
    "DeepContinuation": "solvers.deep.continuation",
    "DeepSpecialPoint": "solvers.deep.continuation",
    "continue_deep": "solvers.deep.continuation",
    "DeepLargePSolution": "solvers.deep.large_p",
    "solve_deep_large_p": "solvers.deep.large_p",
    "DeepLinearClassSolution": "solvers.deep.linear",
    "DeepLinearError": "solvers.deep.linear",
    "DeepLinearSolution": "solvers.deep.linear",
    "solve_deep_linear": "solvers.deep.linear",
    "solve_deep_linear_classes": "solvers.deep.linear",
    "DeepNonlinearError": "solvers.deep.nonlinear",
    "DeepNonlinearSolution": "solvers.deep.nonlinear",
    "DeepOptions": "solvers.deep.nonlinear",
    "solve_deep_nonlinear": "solvers.deep.nonlinear",
    "SampledKernels": "solvers.deep.sampled_start",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = deferred_attributes(__name__, _EXPORTS)
