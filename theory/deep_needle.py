"""Slice needle components: an importance proposal that follows one needle of a layer's tilted y-measure
near its domain boundary (THEORY §4, §5; the readout domain: :mod:`theory.deep_condensate`).

Along a maximiser ŷ of the readout growth F with q = 2F(ŷ) → 1, the y-measure ∝ e^{λ(y)},
λ(y) = −½|y|² + Σ_c P_c ζ_c (:func:`theory.deep_layer.log_integrand`), has a needle: on the ray r ŷ it
decays like e^{−(1 − q) r²/2}, so its length is ~(1 − q)^{−1/2}, and near its root (r of a few units) its
cross-section is offset from the ray and wider than the asymptotic one. Write

    y = r ŷ + Q ζ,   r = ŷ·y,   ζ = Qᵀ y ∈ R^{d−1}   (Q an orthonormal basis of ŷ^⊥).

On a grid of slices r_0 = 0 < r_1 < … < r_n the cross-section is replaced by its Laplace approximation

    ζ | r ≈ N(μ(r), S(r)),   μ(r) = argmax_ζ λ(r ŷ + Q ζ),   S(r) = (−∇²_ζ λ)^{−1}   (at μ),

and the needle's profile along ŷ by the slices' marginals ℓ(r) = λ(r ŷ + Q μ(r)) + ½ log det 2π S(r).
The component is the density

    q_ŷ(y) = p(r) N(ζ; μ(r), L(r) L(r)ᵀ),   p(r) ∝ e^{ℓ(r)} on [r_0, r_n], 0 outside,

with ℓ, μ and the Cholesky factor L (of ``inflate`` · S) linear in r between slices (p is piecewise
exponential). A standard-normal node x = (x_0, x_⊥) maps to r = F_p^{−1}(Φ(x_0)) — the 1-D rule along the
needle is the inverse CDF of its own profile, adapted to its length and root — and ζ = μ(r) + L(r) x_⊥.
The map and the density are the same function of r, so q_ŷ is an exact density of the mapped nodes: in
the balance-heuristic mixture of :class:`theory.deep_mixture.MixtureProposal` (next to its defensive
Gaussian, which covers r < 0 and everything off the needle) the estimator stays unbiased whatever the
Laplace approximation's quality, and the spread of scrambled Sobol' replicates stays its error estimate.
Where the approximation is good the importance weights are nearly constant along the needle.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np
from scipy.special import logsumexp, ndtr

__all__ = ["SliceNeedle", "slice_needle", "needle_length", "bulk_laplace"]

#: the profile is kept where ℓ(r) is within this of its maximum
PROFILE_DROP = 45.0
#: smallest curvature −∇²λ kept across a slice (standard deviation at most 1/√ of it)
MIN_CURVATURE = 0.04


def needle_length(q: float, drop: float = 2.0 * PROFILE_DROP) -> float:
    """The grid's end r_n for a needle of a maximiser with q = 2F(ŷ) < 1: where e^{−(1 − q) r²/2} has fallen
    by e^{−drop}, plus 20 for the root region."""
    return math.sqrt(2.0 * drop / max(1.0 - q, 1e-6)) + 20.0


@dataclass(frozen=True, eq=False)
class SliceNeedle:
    """The component q_ŷ of the module docstring: ``axis`` ŷ (d,), ``basis`` Q (d, d−1), slices ``r`` (n,),
    ``ell`` ℓ (n,), ``mu`` (n, d−1), ``chol`` (n, d−1, d−1) and the log of the profile's total mass ``log_mass``."""

    axis: np.ndarray
    basis: np.ndarray
    r: np.ndarray
    ell: np.ndarray
    mu: np.ndarray
    chol: np.ndarray
    log_mass: float

    @property
    def dim(self) -> int:
        return len(self.axis)

    def _segment(self, r):
        i = np.clip(np.searchsorted(self.r, r, side="right") - 1, 0, len(self.r) - 2)
        a = (r - self.r[i]) / (self.r[i + 1] - self.r[i])
        return i, a

    def _slice_at(self, r):
        i, a = self._segment(r)
        mu = (1 - a)[:, None] * self.mu[i] + a[:, None] * self.mu[i + 1]
        L = (1 - a)[:, None, None] * self.chol[i] + a[:, None, None] * self.chol[i + 1]
        ell = (1 - a) * self.ell[i] + a * self.ell[i + 1]
        return ell, mu, L

    def _segment_masses(self):
        return _segment_log_masses(self.r, self.ell)

    def radii(self, x0) -> np.ndarray:
        """r = F_p^{−1}(Φ(x_0)) for standard-normal ``x0`` (the inverse CDF of the piecewise exponential p)."""
        logm = self._segment_masses()
        cum = np.concatenate([[0.0], np.cumsum(np.exp(logm - self.log_mass))])
        u = np.clip(ndtr(np.asarray(x0, dtype=np.float64)), 0.0, 1.0) * cum[-1]
        i = np.clip(np.searchsorted(cum, u, side="right") - 1, 0, len(self.r) - 2)
        rest = np.maximum(u - cum[i], 0.0) * np.exp(self.log_mass)  # mass into segment i (unnormalised)
        h = self.r[i + 1] - self.r[i]
        slope = (self.ell[i + 1] - self.ell[i]) / h
        z = rest * np.exp(-self.ell[i])  # ∫_0^s e^{slope τ} dτ = z
        small = np.abs(slope) * h < 1e-10
        s = np.where(small, z, np.log1p(np.maximum(z * slope, -1.0 + 1e-300)) / np.where(small, 1.0, slope))
        return self.r[i] + np.clip(s, 0.0, h)

    def sample(self, x) -> np.ndarray:
        """The nodes y (n, d) of standard-normal nodes ``x`` (n, d) (module docstring)."""
        x = np.asarray(x, dtype=np.float64)
        r = self.radii(x[:, 0])
        _, mu, L = self._slice_at(r)
        zeta = mu + np.einsum("nij,nj->ni", L, x[:, 1:])
        return r[:, None] * self.axis + zeta @ self.basis.T

    def log_density(self, y) -> np.ndarray:
        """log q̃_ŷ(y) with q̃ = (2π)^{d/2} q_ŷ (the convention of :meth:`MixtureProposal.log_q`); −inf
        outside [r_0, r_n]."""
        y = np.atleast_2d(np.asarray(y, dtype=np.float64))
        r = y @ self.axis
        inside = (r >= self.r[0]) & (r <= self.r[-1])
        ell, mu, L = self._slice_at(np.clip(r, self.r[0], self.r[-1]))
        z = _forward(L, y @ self.basis - mu)
        logdet = np.sum(np.log(np.diagonal(L, axis1=1, axis2=2)), axis=1)
        out = ell - self.log_mass - 0.5 * np.sum(z * z, axis=1) - logdet + 0.5 * math.log(2.0 * math.pi)
        return np.where(inside, out, -np.inf)

    def moments(self):
        """(mean (d,), covariance (d, d)) of q_ŷ, from its slices weighted by their share of the profile
        (trapezoidal weights in r)."""
        width = np.gradient(self.r) * np.where((np.arange(len(self.r)) % (len(self.r) - 1)) == 0, 0.5, 1.0)
        lw = self.ell + np.log(width)
        w = np.exp(lw - logsumexp(lw))
        ys = self.r[:, None] * self.axis + self.mu @ self.basis.T
        mean = w @ ys
        yc = ys - mean
        S = np.einsum("nij,nkj->nik", self.chol, self.chol)
        cov = (yc * w[:, None]).T @ yc + self.basis @ np.einsum("n,nij->ij", w, S) @ self.basis.T
        return mean, cov


def _segment_log_masses(r, ell):
    """log ∫ e^{ℓ} over each segment [r_i, r_{i+1}] of the piecewise linear ℓ (exact for linear ℓ)."""
    a, b = ell[:-1], ell[1:]
    return a + np.log(np.diff(r)) + _log_expm1_ratio(b - a)


def _log_expm1_ratio(x):
    """log((e^x − 1)/x), stable for small |x| and large negative x."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    small = np.abs(x) < 1e-8
    out[small] = 0.5 * x[small]
    big = ~small
    pos, neg = big & (x > 0), big & (x < 0)
    out[pos] = x[pos] + np.log(-np.expm1(-x[pos])) - np.log(x[pos])
    out[neg] = np.log(-np.expm1(x[neg])) - np.log(-x[neg])
    return out


def _forward(L, b):
    """Solve L z = b for a batch of lower-triangular L (n, k, k), b (n, k)."""
    z = np.empty_like(b)
    for i in range(b.shape[1]):
        z[:, i] = (b[:, i] - np.einsum("nj,nj->n", L[:, i, :i], z[:, :i])) / L[:, i, i]
    return z


def _laplace(fun, n: int, k: int, iters: int = 40, h: float = 2e-3):
    """Laplace approximations of n functions of ζ ∈ R^k at once: ``fun(Z)`` gives their values at the points
    Z (n, s, k) as (n, s). Damped Newton with central-difference derivatives from ζ = 0 (steps capped at
    length 2, halved while the value falls); returns (modes (n, k), −Hessians (n, k, k), values (n,))."""
    E = np.eye(k) * h
    stencil = [np.zeros(k)] + [s * E[i] for i in range(k) for s in (1, -1)]
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    stencil += [E[i] * a + E[j] * b for i, j in pairs for a, b in ((1, 1), (1, -1), (-1, 1), (-1, -1))]
    stencil = np.array(stencil)

    def derivs(zeta):
        f = fun(zeta[:, None, :] + stencil[None])
        f0 = f[:, 0]
        fp, fm = f[:, 1:1 + 2 * k:2], f[:, 2:2 + 2 * k:2]
        g = (fp - fm) / (2 * h)
        H = np.zeros((n, k, k))
        H[:, range(k), range(k)] = (fp - 2 * f0[:, None] + fm) / h**2
        for p, (i, j) in enumerate(pairs):
            c = f[:, 1 + 2 * k + 4 * p:5 + 2 * k + 4 * p]
            H[:, i, j] = H[:, j, i] = (c[:, 0] - c[:, 1] - c[:, 2] + c[:, 3]) / (4 * h * h)
        return f0, g, H

    zeta = np.zeros((n, k))
    for _ in range(iters):
        f0, g, H = derivs(zeta)
        w, V = np.linalg.eigh(-H)
        w = np.maximum(w, MIN_CURVATURE)
        step = np.einsum("nij,nj->ni", V, np.einsum("nji,nj->ni", V, g) / w)
        norm = np.linalg.norm(step, axis=1, keepdims=True)
        step *= np.minimum(1.0, 2.0 / np.maximum(norm, 1e-300))
        for _ in range(8):
            new = zeta + step
            ok = fun(new[:, None, :])[:, 0] >= f0 - 1e-12
            if np.all(ok):
                break
            step = np.where(ok[:, None], step, 0.5 * step)
        zeta = np.where(ok[:, None], new, zeta)
        if np.max(np.abs(step)) < 1e-9:
            break
    f0, _, H = derivs(zeta)
    return zeta, -H, f0


def _covariance(curv, inflate: float = 1.0):
    """(inflate · S, log det 2πS) with S the inverse of the curvatures ``curv`` (n, k, k), eigenvalues floored at
    :data:`MIN_CURVATURE`."""
    w, V = np.linalg.eigh(0.5 * (curv + np.swapaxes(curv, 1, 2)))
    w = np.maximum(np.where(np.isfinite(w), w, 1.0), MIN_CURVATURE)
    return inflate * np.einsum("nij,nj,nkj->nik", V, 1.0 / w, V), np.sum(np.log(2.0 * math.pi / w), axis=1)


def bulk_laplace(logf, d: int, inflate: float = 1.5):
    """(mode, inflate · covariance) of the Laplace approximation of e^{logf} at its mode nearest to y = 0: the
    bulk component next to the needles."""
    with np.errstate(all="ignore"):
        mode, curv, _ = _laplace(lambda Z: logf(Z.reshape(-1, d)).reshape(Z.shape[:2]), 1, d)
    return mode[0], _covariance(curv, inflate)[0][0]


def slice_needle(logf, axis, r_max: float, n_slices: int = 48, inflate: float = 1.0,
                 moment: float = 1.0) -> SliceNeedle:
    """The :class:`SliceNeedle` of the log density ``logf`` (a vectorised function of y (n, d), up to a
    constant) along the unit vector ``axis``, slices r_i = r_max (i/(n−1))^{3/2}, i = 0..n−1, trimmed where the
    profile has fallen by :data:`PROFILE_DROP` below its maximum; ``inflate`` scales each slice's covariance."""
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    d = len(axis)
    basis = np.linalg.svd(axis[None, :])[2][1:].T  # (d, d−1), orthonormal, ⊥ axis
    r = float(r_max) * (np.arange(n_slices) / (n_slices - 1)) ** 1.5

    def on_slices(Z):  # λ(r_i ŷ + Q ζ) at the points Z (n, s, d−1)
        y = r[:, None, None] * axis + Z @ basis.T
        return logf(y.reshape(-1, d)).reshape(Z.shape[:2])

    with np.errstate(all="ignore"):
        mu, curv, lam = _laplace(on_slices, n_slices, d - 1)
    S, logdet = _covariance(curv)
    ell = lam + 0.5 * logdet + moment * np.log1p(r * r)
    keep = np.isfinite(ell)
    top = np.max(ell[keep])
    last = int(np.flatnonzero(keep & (ell > top - PROFILE_DROP))[-1])
    n = max(last + 2, 2) if last + 1 < n_slices else n_slices
    r, ell, mu, S = r[:n], np.where(keep[:n], ell[:n], top - 2 * PROFILE_DROP), mu[:n], S[:n]
    return SliceNeedle(axis, basis, r, ell, mu, np.linalg.cholesky(inflate * S),
                       float(logsumexp(_segment_log_masses(r, ell))))
