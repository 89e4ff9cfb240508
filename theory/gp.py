"""The lazy (NNGP) baseline, THEORY §6.

Standard scaling (γ = 1/2, β = 1/T) at N → ∞ makes the network output a
Gaussian process with kernel

    K_GP(x, x') = σ_a² E[φ(h) φ(h')],   (h, h') ~ N(0, σ_1² [[k0(x,x), k0(x,x')], [k0(x,x'), k0(x',x')]]),

k0(x, x') = x·x'/N0, and the posterior mean predictor
f(x*) = k_GP(x*)ᵀ (K_GP + T I)⁻¹ Y with variance
k_GP(x*, x*) − k_GP(x*)ᵀ (K_GP + T I)⁻¹ k_GP(x*) (per output).

E[φ(h)φ(h')] for covariance C = [[c11, c12], [c12, c22]] in closed form:

* linear: c12;
* ReLU (arc-cosine kernel of degree 1, Cho & Saul 2009):
  √(c11 c22) (sin θ + (π − θ) cos θ) / (2π), cos θ = c12/√(c11 c22);
* erf(√π h/2) = erf(s h), s² = π/4 (Williams 1998, arcsine kernel):
  (2/π) arcsin(2 s² c12 / √((1 + 2 s² c11)(1 + 2 s² c22)));
* normcdf Φ(h) = (1 + erf(h/√2))/2: 1/4 + arcsin(c12 / √((1 + c11)(1 + c22))) / (2π).

Other φ use quadrature in the Cholesky coordinates of C, h = √c11 z1,
h' = √c22 (ρ z1 + √(1−ρ²) z2): smooth φ by tensor Gauss–Hermite at two orders,
φ with kinks (``Max(h, 0)``, ``Abs(h)``, leaky ReLU, …) by nested composite
Gauss–Legendre on z ∈ [−Z, Z] with a break at every kink, in z1 and, for each z1,
in z2 (the inner integral E_{z2} φ(h') is the Gaussian-smoothed φ, so the outer
integrand is piecewise smooth between the kinks of φ(√c11 z1)). Each reports the
difference between two resolutions as its error estimate.

In the lazy limit the features do not move: the kernel of the hidden layer
is the prior one and (1/N) Σ_i a_i a_iᵀ → σ_a² I, both up to O(P/N).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from theory.nonlinearities import get_nonlinearity
from theory.observables import Observables
from theory.spec import ModelSpec, SpecError

__all__ = ["feature_kernel", "pair_kernel", "GPPosterior", "gp_posterior", "lazy_observables"]

_CLOSED_FORMS = ("linear", "relu", "erf", "normcdf")


def _closed_form(name: str, c11, c22, c12):
    if name == "linear":
        return np.asarray(c12, dtype=np.float64)
    if name == "relu":
        norm = np.sqrt(c11 * c22)
        cos = np.clip(np.divide(c12, norm, out=np.zeros_like(norm), where=norm > 0), -1.0, 1.0)
        theta = np.arccos(cos)
        return norm * (np.sin(theta) + (np.pi - theta) * cos) / (2 * np.pi)
    if name == "erf":
        s2 = np.pi / 4
        return (2 / np.pi) * np.arcsin(np.clip(2 * s2 * c12 / np.sqrt((1 + 2 * s2 * c11) * (1 + 2 * s2 * c22)),
                                               -1.0, 1.0))
    if name == "normcdf":
        return 0.25 + np.arcsin(np.clip(c12 / np.sqrt((1 + c11) * (1 + c22)), -1.0, 1.0)) / (2 * np.pi)
    raise KeyError(name)


def _quadrature(name: str, c11, c22, c12, order: int):
    """E[φ(h)φ(h')] by order×order Gauss–Hermite in h = √c11 z1, h' = ρ√c22 z1 + √(1−ρ²)√c22 z2."""
    phi = get_nonlinearity(name)
    z, w = np.polynomial.hermite_e.hermegauss(order)
    w = w / w.sum()
    s1, s2 = np.sqrt(c11), np.sqrt(c22)
    rho = np.clip(np.divide(c12, s1 * s2, out=np.zeros_like(s1), where=s1 * s2 > 0), -1.0, 1.0)
    h1 = s1[..., None, None] * z[:, None]
    h2 = s2[..., None, None] * (rho[..., None, None] * z[:, None] + np.sqrt(1 - rho**2)[..., None, None] * z[None, :])
    with np.errstate(all="ignore"):
        vals = phi(h1) * phi(h2)
    if not np.all(np.isfinite(vals)):
        raise SpecError(f"nonlinearity {name!r} gives NaN or inf on Gaussian preactivations")
    return np.einsum("...ij,i,j->...", vals, w, w)


#: half-width of the z-window of the kink-split rule (Gaussian tail mass beyond it ~ 1e-23)
_Z_WINDOW = 10.0


def _split_panels(lo, hi, kinks, panels: int):
    """Panel edges (n, panels + 1 + k) on [lo, hi] (arrays (n,)): a uniform grid plus the kinks."""
    edges = lo[:, None] + (hi - lo)[:, None] * np.linspace(0.0, 1.0, panels + 1)[None, :]
    if kinks.shape[1]:
        edges = np.sort(np.concatenate([edges, np.clip(kinks, lo[:, None], hi[:, None])], axis=1), axis=1)
    return edges


def _legendre_nodes(edges, nodes: int):
    """Composite Gauss–Legendre nodes and weights (n, panels·nodes) on panels ``edges``, each weight
    times the standard normal density at its node."""
    x, w = np.polynomial.legendre.leggauss(nodes)
    a, b = edges[..., :-1, None], edges[..., 1:, None]
    z = 0.5 * (a + b) + 0.5 * (b - a) * x
    wz = 0.5 * (b - a) * w * np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
    return z.reshape(*edges.shape[:-1], -1), wz.reshape(*edges.shape[:-1], -1)


def _kinked_quadrature(nl, c11, c22, c12, panels: int, nodes: int):
    """E[φ(h)φ(h')] for φ with kinks (1-D arrays of pairs): nested kink-split Gauss–Legendre."""
    kinks = np.asarray(nl.kinks, dtype=np.float64)
    s1, s2 = np.sqrt(c11), np.sqrt(c22)
    rho = np.clip(np.divide(c12, s1 * s2, out=np.zeros_like(s1), where=s1 * s2 > 0), -1.0, 1.0)
    r = np.sqrt(np.maximum(1.0 - rho * rho, 0.0))
    n = len(s1)
    lo, hi = np.full(n, -_Z_WINDOW), np.full(n, _Z_WINDOW)
    with np.errstate(divide="ignore", invalid="ignore"):
        k1 = np.where(s1[:, None] > 0, kinks[None, :] / s1[:, None], 0.0)
    z1, w1 = _legendre_nodes(_split_panels(lo, hi, k1, panels), nodes)  # (n, q)
    # inner: z2 for each (pair, z1); kinks where √c22 (ρ z1 + r z2) = k
    safe_r = np.where(r > 0, r, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        k2 = np.where((s2[:, None, None] > 0) & (r[:, None, None] > 0),
                      (kinks[None, None, :] / np.where(s2 > 0, s2, 1.0)[:, None, None] - rho[:, None, None] * z1[..., None])
                      / safe_r[:, None, None], 0.0)
    q = z1.shape[1]
    lo2, hi2 = np.full(n * q, -_Z_WINDOW), np.full(n * q, _Z_WINDOW)
    z2, w2 = _legendre_nodes(_split_panels(lo2, hi2, k2.reshape(n * q, -1), panels), nodes)
    z2, w2 = z2.reshape(n, q, -1), w2.reshape(n, q, -1)
    with np.errstate(all="ignore"):
        inner = np.sum(w2 * nl(s2[:, None, None] * (rho[:, None, None] * z1[..., None] + r[:, None, None] * z2)), axis=2)
        vals = np.sum(w1 * nl(s1[:, None] * z1) * inner, axis=1)
    if not np.all(np.isfinite(vals)):
        raise SpecError(f"nonlinearity {nl.name!r} gives NaN or inf on Gaussian preactivations")
    return vals


def _kinked_kernel(nl, c11, c22, c12, chunk: int = 256) -> tuple[np.ndarray, float]:
    """Elementwise E[φ(h)φ(h')] for kinked φ at two resolutions (12 panels of 8 and of 6 nodes):
    (value at the finer one, max difference)."""
    a, b, c = (np.ravel(x) for x in (c11, c22, c12))
    fine, coarse = np.empty(a.size), np.empty(a.size)
    for s in range(0, a.size, chunk):
        sl = slice(s, s + chunk)
        fine[sl] = _kinked_quadrature(nl, a[sl], b[sl], c[sl], panels=12, nodes=8)
        coarse[sl] = _kinked_quadrature(nl, a[sl], b[sl], c[sl], panels=12, nodes=6)
    err = float(np.max(np.abs(fine - coarse))) if a.size else 0.0
    return fine.reshape(np.shape(c11)), err


def feature_kernel(nonlinearity: str, C: np.ndarray) -> tuple[np.ndarray, float]:
    """E[φ(h_μ) φ(h_ν)] for h ~ N(0, C) (C: P×P); returns (kernel, error estimate).

    Closed forms for linear, relu, erf, normcdf (error 0); kink-split Gauss–Legendre for φ with
    kinks, Gauss–Hermite otherwise (error = max difference between two resolutions).
    """
    C = np.asarray(C, dtype=np.float64)
    if C.ndim != 2 or C.shape[0] != C.shape[1]:
        raise SpecError(f"C must be a square matrix (got shape {C.shape})")
    d = np.diag(C)
    if np.any(d < 0) or not np.all(np.isfinite(C)):
        raise SpecError("C must be a finite covariance matrix (non-negative diagonal)")
    c11, c22 = np.broadcast_to(d[:, None], C.shape), np.broadcast_to(d[None, :], C.shape)
    if nonlinearity in _CLOSED_FORMS:
        return _closed_form(nonlinearity, c11, c22, C), 0.0
    nl = get_nonlinearity(nonlinearity)
    if nl.kinks:
        iu = np.triu_indices(len(C))
        vals, err = _kinked_kernel(nl, c11[iu], c22[iu], C[iu])
        K = np.empty_like(C)
        K[iu] = vals
        K.T[iu] = vals
        return K, err
    lo = _quadrature(nonlinearity, c11, c22, C, 48)
    hi = _quadrature(nonlinearity, c11, c22, C, 64)
    return hi, float(np.max(np.abs(hi - lo)))


@dataclass(frozen=True)
class GPPosterior:
    """GP regression on the training set: f = K (K + T I)⁻¹ Y, t = (K + T I)⁻¹ Y, so f = Y − T t."""

    kernel: np.ndarray  # K_GP (P, P)
    t: np.ndarray  # (K + T I)⁻¹ Y, (P, m)
    outputs: np.ndarray  # (P, m)
    jitter: float  # added to the diagonal for a stable Cholesky factor (0 when T > 0 suffices)
    cholesky: np.ndarray

    def predict(self, k_star: np.ndarray, k_star_diag: np.ndarray | None = None):
        """Mean (n*, m) and, if ``k_star_diag`` is given, variance (n*,) of f(x*) per output."""
        mean = k_star @ self.t
        if k_star_diag is None:
            return mean
        v = np.linalg.solve(self.cholesky, k_star.T)
        return mean, k_star_diag - np.sum(v * v, axis=0)


def gp_posterior(K: np.ndarray, Y: np.ndarray, temperature: float) -> GPPosterior:
    """Posterior of GP regression with noise variance T; jitter 1e-12·mean diag, raised ×10 until
    the Cholesky factorisation succeeds (reported in ``jitter``)."""
    K = np.asarray(K, dtype=np.float64)
    T = float(temperature)
    if T < 0:
        raise SpecError(f"temperature must be >= 0 (got {T})")
    A = K + T * np.eye(len(K))
    jitter, scale = 0.0, float(np.mean(np.diag(K))) or 1.0
    for _ in range(12):
        try:
            L = np.linalg.cholesky(A + jitter * np.eye(len(K)))
            break
        except np.linalg.LinAlgError:
            jitter = scale * 1e-12 if jitter == 0 else jitter * 10
    else:
        raise SpecError("the GP kernel is not positive definite even with jitter 1e-1·mean diagonal")
    t = np.linalg.solve(L.T, np.linalg.solve(L, Y))
    return GPPosterior(kernel=K, t=t, outputs=K @ t, jitter=jitter, cholesky=L)


def lazy_observables(spec: ModelSpec) -> tuple[Observables, GPPosterior]:
    """N → ∞ observables of the standard-scaling network (THEORY §6), class-averaged like the
    mean-field ones: f from the GP, U = σ_a² I, kernel = prior E[φφ] (diagonal and blocks)."""
    C = spec.sigma_w**2 * spec.input_kernel()
    E, _ = feature_kernel(spec.nonlinearity, C)
    post = gp_posterior(spec.sigma_a**2 * E, spec.targets(), spec.temperature)
    from theory.linear import class_summary

    obs = class_summary(spec.class_sizes, post.outputs, spec.sigma_a**2 * np.eye(spec.m), E)
    return obs, post


def pair_kernel(nonlinearity: str, c11, c22, c12, chunk: int = 4096) -> tuple[np.ndarray, float]:
    """E[φ(u)φ(v)] elementwise for (u, v) ~ N(0, [[c11, c12], [c12, c22]]) (arrays of one shape).

    The same closed forms as :func:`feature_kernel` (error 0); other φ use Gauss–Hermite at
    orders 48 and 64 in chunks of ``chunk`` pairs (bounded memory), error = max difference.
    Used for rectangular kernels, e.g. k_GP(x*, x_μ) between test and training inputs.
    """
    c11, c22, c12 = np.broadcast_arrays(*(np.asarray(c, dtype=np.float64) for c in (c11, c22, c12)))
    if np.any(c11 < 0) or np.any(c22 < 0) or not (np.all(np.isfinite(c11)) and np.all(np.isfinite(c22))
                                                  and np.all(np.isfinite(c12))):
        raise SpecError("pair_kernel needs finite variances c11, c22 >= 0 and finite covariances c12")
    if nonlinearity in _CLOSED_FORMS:
        return np.array(_closed_form(nonlinearity, c11, c22, c12), dtype=np.float64), 0.0
    if get_nonlinearity(nonlinearity).kinks:
        return _kinked_kernel(get_nonlinearity(nonlinearity), c11, c22, c12, chunk=max(1, chunk // 16))
    shape = c11.shape
    a, b, c = c11.ravel(), c22.ravel(), c12.ravel()
    out = np.empty(a.size)
    err = 0.0
    for s in range(0, a.size, chunk):
        sl = slice(s, s + chunk)
        hi = _quadrature(nonlinearity, a[sl], b[sl], c[sl], 64)
        lo = _quadrature(nonlinearity, a[sl], b[sl], c[sl], 48)
        out[sl] = hi
        err = max(err, float(np.max(np.abs(hi - lo))) if hi.size else 0.0)
    return out.reshape(shape), err
