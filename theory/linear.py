"""Closed forms for linear networks, φ(h) = h (THEORY §2, §3, §6).

Any data, field t ∈ R^{P×m}:

    Φ(t) = −½ log det(I − σ_a² σ_1² tᵀ K0 t),  domain λ_max(σ_a² σ_1² tᵀK0t) < 1,
    U = (σ_a⁻² I − σ_1² tᵀ K0 t)⁻¹,   f = σ_1² K0 t U = Y − T t,
    kernel E[h hᵀ] = σ_1² K0 + σ_1⁴ K0 t U tᵀ K0,
    test predictor f(x*) = k0(x*)ᵀ K0⁻¹ f = σ_1² k0(x*)ᵀ t U,

with k0(x*)_μ = x_μ·x*/N0. :func:`solve_linear` solves these through the
m×m matrix X = σ_a² σ_1² tᵀK0t (the L = 1 case of :mod:`solvers.deep.linear`);
a root inside the domain is the unique minimiser of the convex dual.

At T = 0 the mean predictor is the lazy GP predictor k0ᵀ K0⁻¹ Y: strong
features, unchanged mean predictor.

Class-structured orthogonal data (THEORY §3 check): t = diag(τ_c) with
1 − Tτ = σ_1² τ / (σ_a⁻² − σ_1² P_c τ²), U_cc = (σ_a⁻² − σ_1² P_c τ_c²)⁻¹.
"""
from __future__ import annotations


import numpy as np

from theory.observables import Observables
from theory.spec import ModelSpec, class_labels

__all__ = ["linear_class_closed_form", "gp_mean_predictor", "class_summary"]


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


def linear_class_closed_form(spec: ModelSpec) -> tuple[np.ndarray, Observables]:
    """(t, observables) for linear φ on orthogonal class-structured data (THEORY §3)."""
    from scipy import optimize  # imported here: ~0.5 s, and the CLI's start-up does not need it
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
