"""The exact one-hidden-layer theory on orthogonal class-structured data (THEORY §2–3).

Read in this order:

* :mod:`.problem` — the class-structured problem as numbers (ψ tables, class sizes, domain);
* :mod:`.placement` — where the modes of the readout law p_t(a) are and where nodes go;
* :mod:`.readout_integral` — moments of p_t(a) with their own error estimate (the entry point);
  :mod:`.readout_kernels` the compiled integrand, and one module per rule: :mod:`.readout_tensor`
  (trapezoid, Gauss–Hermite), :mod:`.readout_cubature`, :mod:`.readout_qmc`;
* :mod:`.dual` — the convex dual G(t), its gradient and Hessian, the ReLU barrier;
* :mod:`.newton`, :mod:`.fixed_point` — the two minimisers of G;
* :mod:`.solve` — the class-data solve behind :func:`solvers.solve`;
* :mod:`.compare_large_p` — finite P against the P → ∞ branches of :mod:`solvers.large_p`;
* :mod:`.measure` — the coding scheme of p_t(a) at a solution: modes, masses, codes, condensate;
* :mod:`.maps` — warm-started finite-P sweeps: 2-D maps and 1-D continuation, resumable;
* :mod:`.scaling` — finite-size scaling of the crossover into the large-P transition T_c.
"""
from theory.deferred_imports import deferred_attributes

_EXPORTS = {
    "FiniteComparison": "solvers.finite_p.compare_large_p",
    "compare_with_finite_p": "solvers.finite_p.compare_large_p",
    "ClassProblem": "solvers.finite_p.problem",
    "solve_class_data": "solvers.finite_p.solve",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = deferred_attributes(__name__, _EXPORTS)
