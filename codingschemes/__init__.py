"""codingschemes: the mean-field theory of wide Bayesian networks learning classification in the
feature-learning regime (van Meegen & Sompolinsky, Nat. Commun. 16, 3354 (2025)).

The public Python API. A typical session::

    import codingschemes as cs
    spec = cs.ModelSpec(nonlinearity="relu", class_sizes=(8, 4, 4), sigma_a=0.25, temperature=0.05)
    result = cs.solve(spec)
    result.observables().outputs

Layers (imports run left to right only): theory → solvers → validation → figures → codingschemes.
"""
from theory.nonlinearities import BUILTIN_EXPRESSIONS, get_nonlinearity
from theory.observables import Observables
from theory.spec import ModelSpec, SpecError

from solvers.continuation import Branch, ContinuationOptions, SpecialPoint, continue_branch
from solvers.data import (GeneralBranchOptions, GeneralOptions, solve_general, solve_general_branches,
                          solve_linear)
from solvers.deep import (continue_deep, solve_deep_large_p, solve_deep_linear, solve_deep_linear_classes,
                          solve_deep_nonlinear, DeepOptions)
from solvers.finite_p import compare_with_finite_p
from solvers.large_p import LargePProblem, LargePSolution, solve_branches, solve_large_p, symmetric_solution
from solvers.large_p.continuation import continue_solution
from solvers.large_p.phase_diagram import load_phase_diagram, phase_diagram
from solvers.options import SolverOptions
from solvers.results import SolveResult
from solvers.solve import solve, solve_lazy

# finite-P maps, warm-started continuation and finite-size scaling (THEORY §3–4)
from solvers.finite_p.maps import (FiniteContinuation, FiniteMap, continue_finite_p, finite_p_map,
                                   load_finite_p_map)
from solvers.finite_p.measure import FiniteMeasure, single_neuron_measure
from solvers.finite_p.scaling import ScalingResult, finite_size_scaling

from validation.generalization import generalization_report as generalize
from validation.report import stationarity, validate

__all__ = [
    # model
    "ModelSpec", "SpecError", "Observables", "BUILTIN_EXPRESSIONS", "get_nonlinearity",
    # one hidden layer, finite P
    "solve", "solve_lazy", "SolverOptions", "SolveResult",
    # large P
    "LargePProblem", "LargePSolution", "solve_large_p", "solve_branches", "symmetric_solution",
    "compare_with_finite_p",
    # continuation and phase diagrams
    "continue_solution", "continue_branch", "ContinuationOptions", "Branch", "SpecialPoint",
    "phase_diagram", "load_phase_diagram",
    # explicit inputs
    "solve_linear", "solve_general", "GeneralOptions", "solve_general_branches", "GeneralBranchOptions",
    # deep networks
    "solve_deep_linear", "solve_deep_linear_classes", "solve_deep_nonlinear", "DeepOptions", "solve_deep_large_p",
    "continue_deep",
    # validation
    "validate", "stationarity", "generalize",
    # finite-P maps, continuation and finite-size scaling
    "finite_p_map", "load_finite_p_map", "FiniteMap", "continue_finite_p", "FiniteContinuation",
    "single_neuron_measure", "FiniteMeasure", "finite_size_scaling", "ScalingResult",
]
