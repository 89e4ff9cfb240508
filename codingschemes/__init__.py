"""codingschemes: the mean-field theory of wide Bayesian networks learning classification in the
feature-learning regime (van Meegen & Sompolinsky, Nat. Commun. 16, 3354 (2025)).

The public Python API. A typical session::

    import codingschemes as cs
    spec = cs.ModelSpec(nonlinearity="relu", class_sizes=(8, 4, 4), sigma_a=0.25, temperature=0.05)
    result = cs.solve(spec)
    result.observables().outputs

Every name is imported on first use (:mod:`theory.deferred_imports`), so ``import codingschemes``
is instant. Layers (imports run left to right only): theory → solvers → validation → figures → codingschemes.
"""
from theory.deferred_imports import deferred_attributes

#: public name → the module that defines it (``module:attribute`` where the name is an alias)
_EXPORTS = {
    # model
    "ModelSpec": "theory.spec",
    "SpecError": "theory.spec",
    "Observables": "theory.observables",
    "BUILTIN_EXPRESSIONS": "theory.nonlinearities",
    "get_nonlinearity": "theory.nonlinearities",
    # one hidden layer, finite P
    "solve": "solvers.solve",
    "solve_lazy": "solvers.solve",
    "SolverOptions": "solvers.options",
    "SolveResult": "solvers.results",
    # large P
    "LargePProblem": "solvers.large_p",
    "LargePSolution": "solvers.large_p",
    "solve_large_p": "solvers.large_p",
    "solve_branches": "solvers.large_p",
    "symmetric_solution": "solvers.large_p",
    "compare_with_finite_p": "solvers.finite_p",
    # continuation and phase diagrams
    "continue_solution": "solvers.large_p.continuation",
    "continue_branch": "solvers.continuation",
    "ContinuationOptions": "solvers.continuation",
    "Branch": "solvers.continuation",
    "SpecialPoint": "solvers.continuation",
    "phase_diagram": "solvers.large_p.phase_diagram",
    "load_phase_diagram": "solvers.large_p.phase_diagram",
    # explicit inputs
    "solve_linear": "solvers.data",
    "solve_general": "solvers.data",
    "GeneralOptions": "solvers.data",
    "solve_general_branches": "solvers.data",
    "GeneralBranchOptions": "solvers.data",
    # deep networks
    "solve_deep_linear": "solvers.deep",
    "solve_deep_linear_classes": "solvers.deep",
    "solve_deep_nonlinear": "solvers.deep",
    "DeepOptions": "solvers.deep",
    "SampledKernels": "solvers.deep",
    "solve_deep_large_p": "solvers.deep",
    "continue_deep": "solvers.deep",
    # validation
    "validate": "validation.report",
    "stationarity": "validation.report",
    "generalize": "validation.generalization:generalization_report",
    # finite-P maps, warm-started continuation and finite-size scaling (THEORY §3–4)
    "finite_p_map": "solvers.finite_p.maps",
    "load_finite_p_map": "solvers.finite_p.maps",
    "FiniteMap": "solvers.finite_p.maps",
    "continue_finite_p": "solvers.finite_p.maps",
    "FiniteContinuation": "solvers.finite_p.maps",
    "single_neuron_measure": "solvers.finite_p.measure",
    "FiniteMeasure": "solvers.finite_p.measure",
    "finite_size_scaling": "solvers.finite_p.scaling",
    "ScalingResult": "solvers.finite_p.scaling",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = deferred_attributes(__name__, _EXPORTS)
