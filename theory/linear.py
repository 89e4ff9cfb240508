"""Closed forms for linear networks, φ(h) = h (THEORY §2, §3, §6).

Any data, field t ∈ R^{P×m}:

    Φ(t) = −½ log det(I − σ_a² σ_1² tᵀ K0 t),  domain λ_max(σ_a² σ_1² tᵀK0t) < 1,
    U = (σ_a⁻² I − σ_1² tᵀ K0 t)⁻¹,   f = σ_1² K0 t U = Y − T t,
    kernel E[h hᵀ] = σ_1² K0 + σ_1⁴ K0 t U tᵀ K0,
    test predictor f(x*) = k0(x*)ᵀ K0⁻¹ f = σ_1² k0(x*)ᵀ t U,

with k0(x*)_μ = x_μ·x*/N0. :func:`solve_linear` solves these through the
m×m matrix X = σ_a² σ_1² tᵀK0t (the L = 1 case of :mod:`theory.deep_linear`);
a root inside the domain is the unique minimiser of the convex dual.

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


def solve_linear(spec: ModelSpec) -> LinearSolution:
    """Exact mean-field solution of a linear network on arbitrary inputs.

    The one-layer case of :func:`theory.deep_linear.solve_deep_linear`: the unknown is the m×m
    matrix X = σ_a² σ_1² tᵀK0t (0 ⪯ X ≺ I, the domain), parametrised as X = I − e^{−Z} so every
    iterate is inside the domain, t(X) diagonal in the eigenbases of K0 and X, roots searched from
    several starts (the root is unique for L = 1: the dual is convex). Then U = σ_a²(I − X)⁻¹ and
    the kernel E[h hᵀ] = σ_1² K0 + σ_1⁴ K0 t U tᵀ K0. (A Newton solve in U from the T = 0 start,
    used before, left the domain on digits at T = 0.5.)
    """
    from .deep_linear import solve_deep_linear

    if spec.nonlinearity != "linear":
        raise SpecError(f"solve_linear needs nonlinearity 'linear' (got {spec.nonlinearity!r})")
    sol = solve_deep_linear(spec, 1)
    K0, T, sw = spec.input_kernel(), spec.temperature, spec.sigma_w
    t, U = sol.t, sol.readout_moment
    f = sw**2 * K0 @ t @ U
    kernel = sw**2 * K0 + sw**4 * K0 @ t @ U @ t.T @ K0
    res = float(np.max(np.abs(f + T * t - spec.targets())))
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
