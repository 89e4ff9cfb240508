"""Moments of the single-neuron readout law p_t(a) for class-structured data.

    p_t(a) ∝ N(a; 0, σ_a² I_m) exp(Σ_c P_c ψ(t_c·a)) = e^{S(a)} / norm      (THEORY §3)

One pass over nodes a_k with log weights v_k, ∫ e^{S} F da ≈ Σ_k e^{S(a_k) + v_k} F(a_k),
gives everything the solvers need:

* Φ(t) = log E_prior exp(Σ_c P_c ψ(t_c·a)),
* f_cr = E[a_r ψ'(g_c)],  U = E[a aᵀ],  E[a],
* kernel: diagonal K_c = E[ψ''(g_c) + ψ'(g_c)²], blocks K_cd = E[ψ'(g_c) ψ'(g_d)],
* ∇²Φ: P_c P_d Cov[a_r ψ'_c, a_s ψ'_d] + δ_cd P_c E[a_r a_s ψ''_c],

with g_c = t_c·a. The nodes come from a :class:`~solvers.finite_p.placement.Placement`,
a mixture of Gaussian components N_j split by the balance heuristic
β_j = N_j / Σ_i N_i (exact for any components). Three rules integrate each
component's share:

``"trapezoid"`` (default for m <= 4) and ``"gauss-hermite"``
    tensor rules with ``order`` nodes per axis in the component's
    coordinates (trapezoid: on [−7.5, 7.5] in units of the inflated
    covariance); ``check`` compares with a higher order, which becomes the
    answer, and the difference is the error estimate. The trapezoid rule
    converges exponentially for these analytic, Gaussian-decaying
    integrands and, unlike Gauss–Hermite, equally fast for flat-topped and
    multi-bump laws.
``"cubature"`` (fallback for m <= 6)
    adaptive Genz–Malik cubature on the cube, a = μ_j + L_j z,
    z_i = u_i/(1 − u_i²), to a relative error estimate ``rtol``.
``"qmc"`` (default for m >= 5; works to m = 10)
    self-normalised importance sampling from the mixture of Student-t
    (ν = 5) components on R independent scrambled Sobol sequences. The nodes
    are fixed for a given seed (common random numbers), so Φ stays smooth and
    convex in t for the outer Newton solve; the spread over replicates is
    the error bar.
"""
from __future__ import annotations

import numpy as np

from solvers.finite_p.placement import Placement
from solvers.finite_p.problem import ClassProblem
from solvers.finite_p.readout_cubature import cubature_moments
from solvers.finite_p.readout_kernels import Layout, ReadoutMoments
from solvers.finite_p.readout_qmc import QMCNodes, qmc_moments
from solvers.finite_p.readout_tensor import TENSOR_RULES, tensor_hessian, tensor_moments

__all__ = ["Layout", "ReadoutMoments", "QMCNodes", "readout_moments", "readout_hessian", "INTEGRATORS"]

INTEGRATORS = ("trapezoid", "gauss-hermite", "cubature", "qmc")


def readout_hessian(prob: ClassProblem, t: np.ndarray, placement: Placement, *, integrator: str = "trapezoid",
                    order: int = 24, qmc_nodes: QMCNodes | None = None) -> np.ndarray:
    """∇²Φ(t) alone (m² × m²), for solvers that need it only at accepted iterates."""
    t = np.asarray(t, dtype=np.float64)
    if integrator in TENSOR_RULES:
        return tensor_hessian(prob, t, placement, order, integrator)[0]
    return readout_moments(prob, t, placement, integrator=integrator, hessian=True, rtol=1e-4,
                           qmc_nodes=qmc_nodes).hessian


def readout_moments(prob: ClassProblem, t: np.ndarray, placement: Placement, *,
                    integrator: str = "trapezoid", order: int = 32, check: bool = True,
                    hessian: bool = True, hessian_order: int = 12, rtol: float = 1e-6,
                    qmc_nodes: QMCNodes | None = None, max_evaluations: int = 3_000_000) -> ReadoutMoments:
    """Moments of p_t(a) at the field ``t`` (m × m, row c is t_c) with nodes from ``placement``.

    Raises ``FloatingPointError`` when the integral is infinite (outside the domain).
    """
    t = np.asarray(t, dtype=np.float64)
    m = prob.m
    if t.shape != (m, m):
        raise ValueError(f"t must have shape ({m}, {m}) (got {t.shape})")
    if integrator in TENSOR_RULES:
        return tensor_moments(prob, t, placement, order, hessian, hessian_order, check, integrator, rtol)
    if integrator == "cubature":
        if m > 6:
            raise ValueError(f"integrator 'cubature' supports m <= 6 classes (got m = {m}); use 'qmc'")
        return cubature_moments(prob, t, placement, rtol, hessian, max_evaluations)
    if integrator == "qmc":
        return qmc_moments(prob, t, placement, qmc_nodes or QMCNodes.make(m), hessian)
    raise ValueError(f"integrator must be one of {INTEGRATORS} (got {integrator!r})")
