"""Generalization on arbitrary inputs: error definitions, Gaussian conditionals, the GP baseline.

Errors (per class c, over the test inputs x* of class c with one-hot target y*):

* ``mean_predictor_error``  E_c = ⟨ ||f̄(x*) − y*||² ⟩_{x* ∈ c}, the squared error of the
  posterior mean predictor f̄ summed over the m outputs (not divided by m);
* ``bayes_error``  E_c + ⟨ Σ_r Var[f_r(x*)] ⟩_{x* ∈ c}, the posterior-averaged squared
  error E_posterior ||f(x*) − y*||², i.e. the mean-predictor error plus the posterior
  variance of the output. In the mean-field scaling the variance vanishes as N → ∞
  (THEORY §2: network estimates deviate by O(N^{-1/2})), so for the N = ∞ theory
  ``bayes_error = mean_predictor_error``; for the GP (lazy scaling, THEORY §6) it does not.
  Sampled networks at width N report both at that width.
* ``accuracy``: fraction of test inputs of class c with argmax_r f̄_r(x*) = c.

Test-input conditionals (THEORY §2, "test output"): under the prior the preactivations of
one neuron on training inputs h ∈ R^P and on a test input h* are jointly Gaussian with
covariance σ_1² [[K0, k*], [k*ᵀ, k**]], k*_μ = x_μ·x*/N0, k** = |x*|²/N0, so

    h* | h ~ N(k*ᵀ K0⁺ h, σ_1² (k** − k*ᵀ K0⁺ k*))

(K0⁺ the pseudo-inverse; h lies in the range of K0 when K0 is singular, e.g. P > N0).
E[φ(μ + s z)], z ~ N(0, 1), is in closed form for linear (μ), ReLU (μ Φ(μ/s) + s ϕ(μ/s)),
erf(√π h/2) (erf(√π μ/2 / √(1 + π s²/2))) and normcdf (Φ(μ/√(1 + s²))); other φ use
Gauss–Hermite quadrature at orders 48 and 64 with the difference as error estimate.

GP baseline (THEORY §6): K_GP = σ_a² E[φ(h)φ(h')] with C = σ_1² K0 over train + test,
mean predictor k_GP(x*)ᵀ (K_GP + T I)⁻¹ Y and variance per output
k_GP(x*, x*) − k_GP(x*)ᵀ (K_GP + T I)⁻¹ k_GP(x*) (:func:`gp_generalization`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import special

from theory.gp import gp_posterior, pair_kernel
from theory.nonlinearities import get_nonlinearity
from theory.spec import SpecError

__all__ = ["input_kernels", "test_conditional", "gaussian_phi_mean", "class_errors", "GPGeneralization",
           "gp_generalization"]


def input_kernels(train: np.ndarray, test: np.ndarray):
    """(K0 (P×P), k* (n*×P), k** (n*,)) with k0(x, x') = x·x'/N0."""
    X = np.asarray(train, dtype=np.float64)
    Xs = np.asarray(test, dtype=np.float64)
    if Xs.ndim != 2 or Xs.shape[1] != X.shape[1]:
        raise SpecError(f"test inputs must be a 2-D array with {X.shape[1]} columns like the training inputs "
                        f"(got shape {Xs.shape})")
    n0 = X.shape[1]
    return X @ X.T / n0, Xs @ X.T / n0, np.sum(Xs * Xs, axis=1) / n0


def test_conditional(K0: np.ndarray, k_star: np.ndarray, k_star_diag: np.ndarray, sigma_w: float,
                     rcond: float = 1e-10):
    """(A, v): h* | h ~ N(A h, v) with A = k*ᵀ K0⁺ (n*×P), v = σ_1² (k** − k*ᵀ K0⁺ k*) (n*,), clipped ≥ 0.

    Eigenvalues of K0 below ``rcond``·λ_max are treated as zero (pseudo-inverse).
    """
    lam, Q = np.linalg.eigh(K0)
    keep = lam > rcond * max(float(lam.max()), 1e-300)
    B = k_star @ Q[:, keep]
    A = (B / lam[keep]) @ Q[:, keep].T
    v = sigma_w**2 * (k_star_diag - np.sum(B * B / lam[keep], axis=1))
    return A, np.maximum(v, 0.0)


def gaussian_phi_mean(nonlinearity: str, mean, var) -> tuple[np.ndarray, float]:
    """E[φ(μ + s z)], z ~ N(0, 1), s² = ``var`` (broadcast); returns (values, error estimate)."""
    mu, v = np.broadcast_arrays(np.asarray(mean, dtype=np.float64), np.asarray(var, dtype=np.float64))
    if np.any(v < 0):
        raise SpecError("gaussian_phi_mean: var must be >= 0")
    if nonlinearity == "linear":
        return np.array(mu, dtype=np.float64), 0.0
    if nonlinearity == "relu":
        s = np.sqrt(v)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(s > 0, mu / np.where(s > 0, s, 1.0), 0.0)
        out = np.where(s > 0, mu * special.ndtr(x) + s * np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi),
                       np.maximum(mu, 0.0))
        return out, 0.0
    if nonlinearity == "erf":
        k = np.sqrt(np.pi) / 2
        return special.erf(k * mu / np.sqrt(1 + 2 * k * k * v)), 0.0
    if nonlinearity == "normcdf":
        return special.ndtr(mu / np.sqrt(1 + v)), 0.0
    phi = get_nonlinearity(nonlinearity)
    s = np.sqrt(v)

    def gh(order):
        z, w = np.polynomial.hermite_e.hermegauss(order)
        w = w / w.sum()
        acc = np.zeros(mu.shape)
        for zi, wi in zip(z, w):  # loop over quadrature nodes only; arrays stay vectorised
            acc += wi * phi(mu + s * zi)
        return acc

    hi, lo = gh(64), gh(48)
    return hi, float(np.max(np.abs(hi - lo))) if hi.size else 0.0


def class_errors(mean_predictor: np.ndarray, test_labels: np.ndarray, m: int, variance: np.ndarray | None = None,
                 mean_error: np.ndarray | None = None, variance_error: np.ndarray | None = None) -> dict:
    """Per-class ``mean_predictor_error``, ``bayes_error`` and ``accuracy`` (module docstring).

    ``variance``: Σ_r Var[f_r(x*)] per test input (n*,), or None for zero (N = ∞ mean field).
    ``mean_error`` (n*, m) and ``variance_error`` (n*,): standard errors of the estimates (Monte
    Carlo), propagated to the class errors to first order, treating test inputs as independent
    (an upper bound would add them linearly; we state the first-order value):
    δE_c = √(Σ_{x*∈c} Σ_r (2 (f̄_r − y_r) δf̄_r)²) / n_c.
    """
    F = np.asarray(mean_predictor, dtype=np.float64)
    lab = np.asarray(test_labels, dtype=np.int64)
    if F.ndim != 2 or F.shape != (lab.size, m):
        raise SpecError(f"mean_predictor must have shape (n_test, m) = ({lab.size}, {m}) (got {F.shape})")
    Ystar = np.eye(m)[lab]
    sq = np.sum((F - Ystar) ** 2, axis=1)
    var = np.zeros(lab.size) if variance is None else np.asarray(variance, dtype=np.float64)
    counts = np.bincount(lab, minlength=m).astype(np.float64)
    if np.any(counts == 0):
        raise SpecError(f"every class needs at least one test input (counts per class {counts.astype(int).tolist()})")
    mpe = np.bincount(lab, sq, minlength=m) / counts
    bay = mpe + np.bincount(lab, var, minlength=m) / counts
    acc = np.bincount(lab, (np.argmax(F, axis=1) == lab).astype(float), minlength=m) / counts
    out = {"mean_predictor_error": mpe.tolist(), "bayes_error": bay.tolist(), "accuracy": acc.tolist(),
           "mean_predictor_error_total": float(np.mean(sq)), "bayes_error_total": float(np.mean(sq + var))}
    if mean_error is not None:
        d = np.sum((2 * (F - Ystar) * np.asarray(mean_error)) ** 2, axis=1)
        e_mpe = np.sqrt(np.bincount(lab, d, minlength=m)) / counts
        dv = np.zeros(lab.size) if variance_error is None else np.asarray(variance_error, dtype=np.float64) ** 2
        e_bay = np.sqrt(np.bincount(lab, d + dv, minlength=m)) / counts
        out["mean_predictor_error_mcse"] = e_mpe.tolist()
        out["bayes_error_mcse"] = e_bay.tolist()
    return out


@dataclass(frozen=True)
class GPGeneralization:
    """The lazy (NNGP) baseline on a data set (THEORY §6)."""

    kernel: np.ndarray  # K_GP on the training inputs (P, P)
    cross_kernel: np.ndarray  # k_GP(x*, x_μ) (n*, P)
    mean_predictor: np.ndarray  # (n*, m)
    variance: np.ndarray  # per output, (n*,); the same for every output r
    jitter: float
    kernel_error: float  # quadrature error of the kernel entries (0 for closed forms)
    errors: dict = field(default_factory=dict)  # class_errors(...) with Σ_r Var = m · variance

    def to_json(self) -> dict:
        return {**self.errors, "mean_predictor": self.mean_predictor.tolist(),
                "posterior_variance": self.variance.tolist(), "jitter": self.jitter,
                "kernel_error": self.kernel_error}


def gp_generalization(train: np.ndarray, Y: np.ndarray, test: np.ndarray, test_labels: np.ndarray,
                      nonlinearity: str, sigma_w: float, sigma_a: float, temperature: float) -> GPGeneralization:
    """NNGP mean predictor, posterior variance and per-class errors on test inputs.

    K_GP = σ_a² E[φφ] with covariance C = σ_1² K0 over train + test (closed-form arc-sine /
    arc-cosine kernels, quadrature otherwise); jitter for the Cholesky factor is reported.
    """
    K0, ks, kss = input_kernels(train, test)
    s2 = sigma_w**2
    d = np.diag(K0)
    K, e1 = pair_kernel(nonlinearity, s2 * d[:, None], s2 * d[None, :], s2 * K0)
    Ks, e2 = pair_kernel(nonlinearity, s2 * kss[:, None], s2 * d[None, :], s2 * ks)
    Kss, e3 = pair_kernel(nonlinearity, s2 * kss, s2 * kss, s2 * kss)
    sa2 = sigma_a**2
    post = gp_posterior(sa2 * K, Y, temperature)
    mean, var = post.predict(sa2 * Ks, sa2 * Kss)
    var = np.maximum(var, 0.0)
    m = Y.shape[1]
    errs = class_errors(mean, test_labels, m, variance=m * var)
    return GPGeneralization(kernel=sa2 * K, cross_kernel=sa2 * Ks, mean_predictor=mean, variance=var,
                            jitter=post.jitter, kernel_error=sa2 * max(e1, e2, e3), errors=errs)
