"""Closed forms for linear networks, φ(h) = h (THEORY §2, §3, §6).

Any data, field t ∈ R^{P×m}:

    Φ(t) = −½ log det(I − σ_a² σ_1² tᵀ K0 t),  domain λ_max(σ_a² σ_1² tᵀK0t) < 1,
    U = (σ_a⁻² I − σ_1² tᵀ K0 t)⁻¹,   f = σ_1² K0 t U = Y − T t,
    kernel E[h hᵀ] = σ_1² K0 + σ_1⁴ K0 t U tᵀ K0,
    test predictor f(x*) = k0(x*)ᵀ K0⁻¹ f = σ_1² k0(x*)ᵀ t U,

with k0(x*)_μ = x_μ·x*/N0. Given U, t solves the linear system
σ_1² K0 t U + T t = Y, diagonal in the eigenbases of K0 and U; the m×m
equation U⁻¹ = σ_a⁻² I − σ_1² t(U)ᵀ K0 t(U) is solved by Newton (scipy's
``root``) from the T = 0 solution, where V = U⁻¹ solves V A V + V = σ_a⁻² I
with A = Yᵀ K0⁻¹ Y / σ_1² (diagonal in A's eigenbasis). A root with U ≻ 0
inside the domain is the unique minimiser of the convex dual.

At T = 0 the mean predictor is the lazy GP predictor k0ᵀ K0⁻¹ Y: strong
features, unchanged mean predictor.

Class-structured orthogonal data (THEORY §3 check): t = diag(τ_c) with
1 − Tτ = σ_1² τ / (σ_a⁻² − σ_1² P_c τ²), U_cc = (σ_a⁻² − σ_1² P_c τ_c²)⁻¹.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from .observables import Observables
from .spec import ModelSpec, SpecError, class_labels

__all__ = ["LinearSolution", "solve_linear", "linear_class_closed_form", "gp_mean_predictor",
           "class_summary"]


@dataclass(frozen=True)
class LinearSolution:
    spec: ModelSpec
    t: np.ndarray  # (P, m)
    readout_moment: np.ndarray  # U (m, m)
    outputs: np.ndarray  # f (P, m)
    kernel: np.ndarray  # E[h hᵀ] (P, P)
    residual: float  # max |σ_1² K0 t U + T t − Y|

    def predict(self, test_inputs: np.ndarray) -> np.ndarray:
        """Mean test predictor f(x*) = σ_1² k0(x*)ᵀ t U, shape (n_test, m)."""
        X = self.spec.inputs
        Xs = np.atleast_2d(np.asarray(test_inputs, dtype=np.float64))
        if Xs.shape[1] != X.shape[1]:
            raise SpecError(f"test_inputs must have {X.shape[1]} columns like the training inputs (got {Xs.shape[1]})")
        k0 = Xs @ X.T / X.shape[1]
        return self.spec.sigma_w**2 * k0 @ self.t @ self.readout_moment

    def observables(self) -> Observables:
        return class_summary(self.spec.class_sizes, self.outputs, self.readout_moment, self.kernel)


def class_summary(class_sizes, outputs, readout_moment, kernel) -> Observables:
    """Class-averaged observables from per-input outputs (P, m) and a P×P kernel."""
    labels = class_labels(class_sizes)
    m = len(class_sizes)
    f = np.array([outputs[labels == c].mean(axis=0) for c in range(m)])
    diag = np.array([np.mean(np.diag(kernel)[labels == c]) for c in range(m)])
    blocks = np.zeros((m, m))
    for c in range(m):
        for d in range(m):
            B = kernel[np.ix_(labels == c, labels == d)]
            if c == d:
                n = B.shape[0]
                blocks[c, d] = (B.sum() - np.trace(B)) / max(n * (n - 1), 1)
            else:
                blocks[c, d] = B.mean()
    return Observables(outputs=f, readout_moment=readout_moment, kernel_diagonal=diag, kernel_blocks=blocks)


def _t_given_U(U, evals, Q, Yq, sigma_w, T):
    d, R = np.linalg.eigh(U)
    Yt = Yq @ R
    tt = Yt / (sigma_w**2 * evals[:, None] * d[None, :] + T)
    return Q @ tt @ R.T


def solve_linear(spec: ModelSpec) -> LinearSolution:
    """Exact mean-field solution of a linear network on arbitrary inputs."""
    if spec.nonlinearity != "linear":
        raise SpecError(f"solve_linear needs nonlinearity 'linear' (got {spec.nonlinearity!r})")
    K0 = spec.input_kernel()
    Y = spec.targets()
    m, T, sa, sw = spec.m, spec.temperature, spec.sigma_a, spec.sigma_w
    evals, Q = np.linalg.eigh(K0)
    if T == 0.0 and evals.min() <= 1e-12 * max(evals.max(), 1e-300):
        raise SpecError("temperature = 0 needs a non-singular input kernel K0 = X Xᵀ/N0 "
                        "(inputs are linearly dependent); use temperature > 0")
    Yq = Q.T @ Y
    # T = 0 solution as the starting point
    pos = np.maximum(evals, 1e-300)
    A = (Yq.T / pos) @ Yq / sw**2
    lam, W = np.linalg.eigh(0.5 * (A + A.T))
    lam = np.maximum(lam, 0.0)
    v = np.where(lam > 1e-14, (-1 + np.sqrt(1 + 4 * lam / sa**2)) / (2 * np.where(lam > 1e-14, lam, 1.0)), sa**-2)
    U0 = (W / v) @ W.T
    iu = np.triu_indices(m)

    def unpack(x):
        M = np.zeros((m, m))
        M[iu] = x
        return M + np.triu(M, 1).T

    def residual(x):
        U = unpack(x)
        t = _t_given_U(U, evals, Q, Yq, sw, T)
        R = U @ (np.eye(m) / sa**2 - sw**2 * t.T @ K0 @ t) - np.eye(m)
        return (0.5 * (R + R.T))[iu]

    sol = optimize.root(residual, U0[iu], method="hybr", options={"xtol": 1e-14})
    U = unpack(sol.x)
    t = _t_given_U(U, evals, Q, Yq, sw, T)
    M = np.eye(m) - sa**2 * sw**2 * t.T @ K0 @ t
    if np.linalg.eigvalsh(U).min() <= 0 or np.linalg.eigvalsh(M).min() <= 0:
        raise RuntimeError("linear closed form: no solution inside the domain was found (please report)")
    U = sa**2 * np.linalg.inv(M)
    f = sw**2 * K0 @ t @ U
    kernel = sw**2 * K0 + sw**4 * K0 @ t @ U @ t.T @ K0
    res = float(np.max(np.abs(f + T * t - Y)))
    return LinearSolution(spec=spec, t=t, readout_moment=U, outputs=f, kernel=kernel, residual=res)


def linear_class_closed_form(spec: ModelSpec) -> tuple[np.ndarray, Observables]:
    """(t, observables) for linear φ on orthogonal class-structured data (THEORY §3)."""
    sa2, s2, T = spec.sigma_a**2, spec.sigma_w**2, spec.temperature
    taus = []
    for Pc in spec.class_sizes:
        upper = 1.0 / np.sqrt(sa2 * s2 * Pc)
        if T == 0.0:
            tau = (-s2 + np.sqrt(s2**2 + 4 * s2 * Pc / sa2)) / (2 * s2 * Pc)
        else:
            fn = lambda x: 1 - T * x - s2 * x / (1 / sa2 - s2 * Pc * x * x)  # noqa: E731
            tau = optimize.brentq(fn, 0.0, upper * (1 - 1e-15), xtol=1e-16)
        taus.append(tau)
    tau = np.array(taus)
    P = np.asarray(spec.class_sizes, dtype=float)
    Ud = 1.0 / (1.0 / sa2 - s2 * P * tau**2)
    f = np.diag(s2 * tau * Ud)
    blocks = np.diag(s2**2 * tau**2 * Ud)
    obs = Observables(outputs=f, readout_moment=np.diag(Ud), kernel_diagonal=s2 + s2**2 * tau**2 * Ud,
                      kernel_blocks=blocks)
    return np.diag(tau), obs


def gp_mean_predictor(K0: np.ndarray, k0_test: np.ndarray, Y: np.ndarray, temperature: float,
                      sigma_a: float, sigma_w: float) -> np.ndarray:
    """Lazy (NNGP) mean predictor for linear φ: k_GPᵀ (K_GP + T I)⁻¹ Y, K_GP = σ_a²σ_1² K0."""
    s = sigma_a**2 * sigma_w**2
    return s * k0_test @ np.linalg.solve(s * K0 + temperature * np.eye(len(K0)), Y)
