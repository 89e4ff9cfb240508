"""Linear φ in the large-P branch form on explicit inputs: one Gaussian branch, without sampling (THEORY §4).

Λ = σ_1² gᵀK0 g/2 exactly, S is quadratic with its maximum at a = 0 inside the domain
σ̄_a²σ_1² tᵀK0t/P ⪯ I; the readout covariance U is the multiplier of that constraint:

    f = σ_1² K0 t U = Y − T t,   U ⪰ 0,   U (I − σ̄_a²σ_1² tᵀK0t/P) = 0,

solved as the concave dual max_{U⪰0} −½ vec(Y)ᵀ(T I + σ_1² U ⊗ K0)⁻¹vec(Y) − (P/2σ̄_a²) tr U. For
K0 = I it is :func:`solvers.large_p.solve.linear_large_p`.
"""
from __future__ import annotations

import time

import numpy as np
from scipy.optimize import minimize

from solvers.data.branch_result import GeneralBranch, GeneralBranchSolution
from theory.spec import ModelSpec, SpecError

__all__ = ["linear_branch_form"]


def linear_branch_form(spec: ModelSpec) -> GeneralBranchSolution:
    """Linear φ: the single Gaussian branch (module docstring), without sampling.

    Maximises the concave dual d(U) = −½ vec(Y)ᵀ(T I + σ_1² U⊗K0)⁻¹vec(Y) − (P/2σ̄_a²) tr U over
    U = RRᵀ ⪰ 0 (L-BFGS on R; ∇_U d = ½σ_1² tᵀK0t − (P/2σ̄_a²) I). Then t solves
    (T + σ_1² K0 t U) = Y column-wise in the eigenbases, f = σ_1² K0 t U, kernel
    K = σ_1² K0 + σ_1⁴ K0 t U tᵀ K0. The reported ``stationarity`` is the complementary-slackness
    residual ‖U(I − σ̄_a²σ_1² tᵀK0t/P)‖ and ``height_spread`` the domain excess
    max(0, λ_max(σ̄_a²σ_1² tᵀK0t/P) − 1)."""
    start = time.perf_counter()
    K0 = spec.input_kernel()
    Y, T, P, m = spec.targets(), spec.temperature, spec.P, spec.m
    s2, sb2 = spec.sigma_w**2, spec.sigma_a**2 * spec.P
    kap, Q = np.linalg.eigh(K0)
    kap = np.maximum(kap, 0.0)
    Yt = Q.T @ Y
    tri = np.tril_indices(m)

    def t_of(U):
        u, V = np.linalg.eigh(U)
        u = np.maximum(u, 0.0)
        den = T + s2 * np.outer(kap, u)  # P × m
        with np.errstate(divide="ignore", invalid="ignore"):
            X = np.where(den > 0, (Yt @ V) / np.where(den > 0, den, 1.0), 0.0)
        return Q @ X @ V.T, den, V

    def neg_dual(r):
        R = np.zeros((m, m))
        R[tri] = r
        U = R @ R.T
        t, den, V = t_of(U)
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.where(den > 0, ((Yt @ V) ** 2) / np.where(den > 0, den, 1.0), 0.0)
        d = -0.5 * q.sum() - P / (2 * sb2) * np.trace(U)
        gU = 0.5 * s2 * t.T @ K0 @ t - P / (2 * sb2) * np.eye(m)
        gR = 2.0 * gU @ R
        return -d, -gR[tri]

    if T == 0.0:
        raise SpecError("linear branch form needs temperature > 0 (at T = 0 use solvers.data.linear.solve_linear)")
    best = None
    for scale in (1e-2, 1.0, 10.0):  # a few starts of the (benign) Burer–Monteiro factorisation
        r0 = np.zeros(len(tri[0]))
        r0[[i for i, (a, b) in enumerate(zip(*tri)) if a == b]] = np.sqrt(scale)
        res = minimize(neg_dual, r0, jac=True, method="L-BFGS-B", options={"maxiter": 5000, "gtol": 1e-12,
                                                                           "ftol": 1e-15})
        if best is None or res.fun < best.fun:
            best = res
    R = np.zeros((m, m))
    R[tri] = best.x
    U = R @ R.T
    t = t_of(U)[0]
    f = s2 * K0 @ t @ U
    Mq = sb2 * s2 * t.T @ K0 @ t / P
    slack = float(np.max(np.abs(U @ (np.eye(m) - Mq))))
    excess = max(0.0, float(np.linalg.eigvalsh(Mq)[-1]) - 1.0)
    res = float(np.max(np.abs(f + T * t - Y)))
    ok = res < 1e-6 and slack < 1e-6 and excess < 1e-6
    branch = GeneralBranch(a=np.zeros(m), occupation=1.0, value=0.0, value_error=0.0, mirror=False,
                           code="gaussian")
    return GeneralBranchSolution(
        spec=spec, t=t, branches=[branch], outputs=f, outputs_error=np.zeros_like(f), readout_moment=U,
        kernel=s2 * K0 + s2**2 * K0 @ t @ U @ t.T @ K0, residual=res, residual_error=0.0, z_rms=0.0,
        stationarity=slack, height_spread=excess, height_error=0.0, converged=ok, iterations=int(best.nit),
        status="converged" if ok else "not-converged", error_estimate=0.0,
        time_seconds=time.perf_counter() - start, _linear_U=U,
        message=("linear φ: one Gaussian branch a = 0 with readout covariance U (closed form, dual L-BFGS); "
                 f"max|f + Tt − Y| = {res:.1e}, slackness {slack:.1e}, domain excess {excess:.1e}"))
