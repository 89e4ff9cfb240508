"""A layer's y-integral split between a rule and exact 1-D slice integrals along its needles (THEORY §4, §5;
the readout's needles: :mod:`theory.deep_condensate`, slices: :mod:`theory.deep_needle`).

Near its domain boundary a layer's tilted y-measure e^{λ(y)} has needles along the maximisers ŷ_j of its growth.
A rule (Sobol' points on a mixture proposal) integrates them with a variance that grows with their weight. With
weights χ_j(y) >= 0, Σ_j χ_j <= 1, supported on the half-spaces H_j = {ŷ_j·y >= r_c − w}, the identity

    ∫ e^{λ} O dy = ∫ e^{λ} (1 − Σ_j χ_j) O dy  +  Σ_j ∫ dr ∫_{ŷ_j^⊥} dζ e^{λ} χ_j O,   y = r ŷ_j + Q_j ζ,

is exact for any such χ. The first term is the rule's estimate with each node's weight multiplied by 1 − Σ_j χ_j;
the second is, for each needle, a 1-D integral in r (trapezoid on a fixed grid r_c − w … r_max) of cross-section
integrals over ŷ_j^⊥, each done by Sobol' points on a defensive mixture of N(μ(r), c S(r)) and N(μ(r), 9 c S(r))
(weights 0.8 / 0.2, balance heuristic), with μ(r), S(r) the Laplace approximation of the cross-section
(:func:`theory.deep_needle._laplace`). Here

    χ_j = s_j π_j,   s_j = S((ŷ_j·y − r_c)/w),   π_j = e^{ŷ_j·y/w} / Σ_k e^{ŷ_k·y/w},

S the smoothstep on [−1, 1] (w = 0: the indicator of H_j and of j = argmax_k ŷ_k·y). A point in several
half-spaces goes to the needle it is nearest in angle, so one needle's crossing of another's cross-sections is
not part of the latter's slice integral (where a Laplace-centred cross-section rule would miss it), and the
result does not depend on r_c beyond integration error. The
self-normalised observables ⟨O⟩ are the ratio of the two sums; the rule's weights and e^{λ} must share one
normalisation (the density of the rule's target: in :func:`theory.deep_layer.layer_integral` that is
N(y; 0, I) e^{Σ_c P_c ζ_c} = (2π)^{−d/2} e^{λ}).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp
from scipy.stats import norm, qmc

from theory.deep_needle import _covariance, _laplace

__all__ = ["NeedleSplit", "Needles", "half_space_weights", "needle_radii", "slice_integrals", "split_average"]

#: share of the wide (9 × covariance) component in each cross-section's defensive mixture
WIDE_SHARE = 0.2
WIDE_SCALE = 9.0


def needle_radii(r_c: float, width: float = 0.0, near: float = 12.0, far: float = 400.0, n_near: int = 60,
                 n_far: int = 60) -> np.ndarray:
    """The slices' grid: ``n_near`` even steps on [r_c − w, r_c − w + ``near``], then ``n_far`` geometric to
    r_c − w + ``far`` (where the readout's needle at q = 1 has fallen by ~e^{−45}: docs/notes/split.md §3)."""
    return r_c - width + np.concatenate([np.linspace(0.0, near, n_near + 1)[:-1], np.geomspace(near, far, n_far)])


@dataclass(frozen=True)
class Needles:
    """The settings of :func:`split_average` for one layer: unit ``axes`` (k, d), the cut ``r_c``, the smoothing
    ``width`` (0: hard half-spaces), the slices' ``radii`` (None: :func:`needle_radii`) and their cross-section rule
    (``inflate``, ``n_points`` Sobol' nodes per slice, ``seed``)."""

    axes: np.ndarray
    r_c: float
    width: float = 0.0
    radii: np.ndarray | None = None
    inflate: float = 3.0
    n_points: int = 2**11
    seed: int = 0

    def average(self, y, log_weights, logdensity, observe, **kw) -> "NeedleSplit":
        """:func:`split_average` of the rule's nodes with these settings (``kw``: its ``evaluate``, ``observed``)."""
        radii = needle_radii(self.r_c, self.width) if self.radii is None else self.radii
        return split_average(y, log_weights, logdensity, observe, self.axes, self.r_c, radii, width=self.width,
                             inflate=self.inflate, n_points=self.n_points, seed=self.seed, **kw)


def half_space_weights(y, axes, r_c: float, width: float = 0.0) -> np.ndarray:
    """χ (n, k) of the module docstring at the points ``y`` (n, d) for the unit ``axes`` (k, d)."""
    proj = np.atleast_2d(y) @ np.atleast_2d(axes).T
    if width > 0.0:
        t = np.clip(0.5 * ((proj - r_c) / width + 1.0), 0.0, 1.0)
        a = (proj - proj.max(axis=1, keepdims=True)) / width
        return t * t * (3.0 - 2.0 * t) * np.exp(a) / np.exp(a).sum(axis=1, keepdims=True)
    tol = 1e-9 * max(1.0, abs(r_c))  # a slice at r = r_c lies on the boundary up to rounding: count it in
    best = proj >= proj.max(axis=1, keepdims=True) - tol
    return ((proj >= r_c - tol) & best) / np.maximum(best.sum(axis=1, keepdims=True), 1)


def _cross_section_nodes(n: int, k: int, slices: int, seed: int):
    """Standard-normal Sobol' nodes (slices, n, k), consecutive blocks of one scrambled sequence (n a power of 2: each
    block is a net, and the slices' errors are not the same error), and which belong to the wide component (n,)."""
    m = int(np.ceil(np.log2(max(n, 1) * max(slices, 1))))
    x = norm.ppf(qmc.Sobol(k, scramble=True, seed=seed).random_base2(m))[:n * slices].reshape(slices, n, k)
    wide = np.arange(n) < int(round(WIDE_SHARE * n))
    return x, wide


def slice_integrals(logdensity, observe, axis, axes, r_c: float, radii, *, width: float = 0.0, inflate: float = 3.0,
                    n_points: int = 2**11, seed: int = 0, evaluate=None):
    """(log mass (n_r,), sums {name: (n_r, …)}, Kish ESS fractions (n_r,)) of the cross-sections at ``radii`` along
    ``axis``: mass(r) = ∫ e^{logdensity} χ_axis dζ and sums = ∫ e^{logdensity} χ_axis O dζ / mass(r), with χ from
    :func:`half_space_weights` over all ``axes`` (``axis`` one of them) and ``observe(y)`` a dict of per-point
    arrays (n, …). ``evaluate(y)``: (logdensity(y), observe(y)) in one pass, where the two share their work (default:
    the two calls)."""
    evaluate = evaluate or (lambda z: (logdensity(z), observe(z)))
    axis = np.asarray(axis, dtype=np.float64)
    d = len(axis)
    basis = np.linalg.svd(axis[None, :])[2][1:].T
    radii = np.asarray(radii, dtype=np.float64)
    j = int(np.argmax(np.atleast_2d(axes) @ axis))

    X, wide = _cross_section_nodes(n_points, d - 1, len(radii), seed)
    log_mass, sums, ess = np.empty(len(radii)), {}, np.zeros(len(radii))
    for i, r in enumerate(radii):  # one Laplace solve per slice: a joint solve stops on the slowest slice
        with np.errstate(all="ignore"):
            mode, curv, _ = _laplace(lambda Z: logdensity((r * axis + Z @ basis.T).reshape(-1, d)).reshape(Z.shape[:2]),
                                     1, d - 1)
        mode = mode[0]
        L = np.linalg.cholesky(_covariance(curv, inflate)[0][0])
        Z = mode + np.where(wide[:, None], np.sqrt(WIDE_SCALE), 1.0) * (X[i] @ L.T)
        ys = r * axis + Z @ basis.T
        log_density, observed = evaluate(ys)
        lw = log_density - _mixture_log_pdf(Z - mode, L, d - 1)
        chi = half_space_weights(ys, axes, r_c, width)[:, j]
        with np.errstate(divide="ignore"):
            lw = lw + np.log(chi)
        top = np.max(lw)
        if not np.isfinite(top):
            log_mass[i] = -np.inf
            continue
        w = np.exp(lw - top)
        log_mass[i] = top + np.log(w.mean())
        p = w / w.sum()
        ess[i] = 1.0 / np.sum(p * p) / len(p)
        for name, val in observed.items():
            sums.setdefault(name, np.zeros((len(radii),) + val.shape[1:]))[i] = np.tensordot(p, val, 1)
    return log_mass, sums, ess


def _mixture_log_pdf(dz, L, k: int) -> np.ndarray:
    """log of the defensive mixture 0.8 N(0, L Lᵀ) + 0.2 N(0, 9 L Lᵀ) at the offsets ``dz`` (n, k)."""
    z = np.linalg.solve(L, dz.T).T
    q = np.sum(z * z, axis=1)
    base = -0.5 * k * np.log(2.0 * np.pi) - np.sum(np.log(np.diag(L)))
    narrow = np.log1p(-WIDE_SHARE) + base - 0.5 * q
    broad = np.log(WIDE_SHARE) + base - 0.5 * k * np.log(WIDE_SCALE) - 0.5 * q / WIDE_SCALE
    return np.logaddexp(narrow, broad)


@dataclass(frozen=True)
class NeedleSplit:
    """The split integral: ``log_z`` (log of the total, the rule's normalisation), ``averages`` ⟨O⟩,
    ``needle_weight`` (share of the total carried by the slice integrals, per axis), ``slice_ess`` (smallest Kish
    ESS fraction of a cross-section rule among the slices within 1e-3 of their needle's densest; its diagnostics),
    ``rule_weight`` (share of the rule's own weight kept), ``rule_ess`` (Kish ESS fraction of the kept rule)."""

    log_z: float
    averages: dict
    needle_weight: np.ndarray
    slice_ess: float
    rule_weight: float
    rule_ess: float


def split_average(y, log_weights, logdensity, observe, axes, r_c: float, radii, observed=None, **kw) -> NeedleSplit:
    """The identity of the module docstring: the rule's nodes ``y`` (n, d) with log weights ``log_weights``
    (Σ e^{lw} ≈ ∫ e^{logdensity}), reweighted by 1 − Σ_j χ_j, plus :func:`slice_integrals` along each of ``axes``
    over ``radii`` (>= r_c − width); ``observed``: ``observe(y)`` if the caller has it already; ``kw`` go to
    :func:`slice_integrals`."""
    axes = np.atleast_2d(np.asarray(axes, dtype=np.float64))
    keep = np.maximum(1.0 - half_space_weights(y, axes, r_c, kw.get("width", 0.0)).sum(axis=1), 0.0)  # rounding
    with np.errstate(divide="ignore"):
        lw = np.asarray(log_weights, dtype=np.float64) + np.log(keep)
    ref = float(logsumexp(log_weights))
    rule_log = float(logsumexp(lw))
    p = np.exp(lw - rule_log)
    observed = observe(y) if observed is None else observed
    parts = [(np.exp(rule_log - ref), {n: np.tensordot(p, v, 1) for n, v in observed.items()})]
    ess, seed = 1.0, kw.pop("seed", 0)
    for j, ax in enumerate(axes):
        log_mass, sums, e = slice_integrals(logdensity, observe, ax, axes, r_c, radii, seed=seed + 1 + j, **kw)
        mass = np.exp(log_mass - ref)
        ess = min(ess, float(np.min(e[mass >= 1e-3 * mass.max()])))
        total = np.trapezoid(mass, radii)
        parts.append((total, {n: np.trapezoid(mass.reshape((-1,) + (1,) * (v.ndim - 1)) * v, radii, axis=0) / total
                              for n, v in sums.items()}))
    weights = np.array([w for w, _ in parts])
    total = float(weights.sum())
    averages = {n: sum(w * a[n] for w, a in parts) / total for n in parts[0][1]}
    return NeedleSplit(ref + float(np.log(total)), averages, weights[1:] / total, ess, float(weights[0] / total),
                       float(1.0 / np.sum(p * p) / len(p)))
