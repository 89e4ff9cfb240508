"""A layer's y-integral split between a rule and exact 1-D slice integrals along its needles (THEORY §4, §5;
the readout's needles: :mod:`theory.deep_condensate`, slices: :mod:`theory.deep_needle`).

Near its domain boundary a layer's tilted y-measure e^{λ(y)} has needles along the maximisers ŷ_j of its growth.
A rule (Sobol' points on a mixture proposal) integrates them with a variance that grows with their weight. With
weights χ_j(y) >= 0, Σ_j χ_j <= 1, supported on the half-spaces H_j = {ŷ_j·y >= r_c − w}, the identity

    ∫ e^{λ} O dy = ∫ e^{λ} (1 − Σ_j χ_j) O dy  +  Σ_j ∫ dr ∫_{ŷ_j^⊥} dζ e^{λ} χ_j O,   y = r ŷ_j + Q_j ζ,

is exact for any such χ. The first term is the rule's estimate with each node's weight multiplied by 1 − Σ_j χ_j;
the second is, for each needle, a 1-D integral in r (:func:`radial_rule`: nested Clenshaw–Curtis panels on the
smooth step and in log r beyond, to r_max; its embedded rule gives the radial error estimate) of cross-section
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

Class symmetry. With orthogonal maps Q_g of y under which λ is invariant at a symmetric point (the class
permutations pulled back to y, :mod:`theory.deep_symmetric_rule`), needles that are images of each other form an
orbit (:func:`needle_orbits`): the axes are replaced by exact images of one representative (the split stays exact for
any axes), the representative's cross-section rule is built once per radius and carried to every member by the maps
(a change of variables on ŷ_k^⊥, unbiased at any point), and a needle that is its own image is joined by its images.
At a symmetric point the split's estimates are then equivariant to rounding.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import logsumexp
from scipy.stats import norm, qmc

from theory.deep_needle import _covariance, _laplace

__all__ = ["NeedleSplit", "Needles", "RadialRule", "half_space_weights", "needle_orbits", "needle_radii",
           "radial_rule", "slice_integrals", "split_average"]

#: share of the wide (9 × covariance) component in each cross-section's defensive mixture
WIDE_SHARE = 0.2
WIDE_SCALE = 9.0
#: slices whose Laplace mass (times r³) lies this far (in log) below the largest so far are skipped as zero
NEGLIGIBLE = 46.0


def needle_radii(r_c: float, width: float = 0.0, near: float = 12.0, far: float = 400.0, n_near: int = 60,
                 n_far: int = 60) -> np.ndarray:
    """A trapezoid grid for the slices: ``n_near`` even steps on [r_c − w, r_c − w + ``near``], then ``n_far``
    geometric to r_c − w + ``far`` (where the readout's needle at q = 1 has fallen by ~e^{−45}: docs/notes/split.md
    §3). The default of :class:`Needles` is :func:`radial_rule`."""
    return r_c - width + np.concatenate([np.linspace(0.0, near, n_near + 1)[:-1], np.geomspace(near, far, n_far)])


@dataclass(frozen=True)
class RadialRule:
    """A rule for the slices' integral in r: ``radii``, ``weights`` and the weights ``coarse`` of an embedded rule of
    lower order on the same radii (the difference of the two estimates is the rule's error estimate)."""

    radii: np.ndarray
    weights: np.ndarray
    coarse: np.ndarray


def _clenshaw_curtis(n: int) -> tuple:
    """(nodes, weights) of the (n + 1)-point Clenshaw–Curtis rule on [−1, 1], n even (Waldvogel, BIT 46, 195 (2006):
    w_j = (c_j/n)(1 − Σ_{k=1}^{n/2} b_k cos(2kθ_j)/(4k² − 1)), b_k = 1 for k = n/2, else 2; c_j = 1 at the ends,
    else 2)."""
    theta = np.pi * np.arange(n + 1) / n
    k = np.arange(1, n // 2 + 1)
    b = np.where(k == n // 2, 1.0, 2.0)
    w = 1.0 - (b / (4.0 * k * k - 1.0)) @ np.cos(2.0 * np.outer(k, theta))
    w *= np.where((np.arange(n + 1) == 0) | (np.arange(n + 1) == n), 1.0, 2.0) / n
    return np.cos(theta)[::-1], w[::-1]


def _nested_panel(n: int, lo: float, hi: float) -> tuple:
    """(s, w, w_coarse) of Clenshaw–Curtis with n + 1 points on [lo, hi] and its embedded rule on every other point."""
    x, w = _clenshaw_curtis(n)
    _, wc = _clenshaw_curtis(n // 2)
    coarse = np.zeros(n + 1)
    coarse[::2] = wc
    half = 0.5 * (hi - lo)
    return lo + half * (x + 1.0), half * w, half * coarse


def radial_rule(r_c: float, width: float = 0.0, far: float = 400.0, scale: float = 4.0, n_step: int = 8,
                n_tail: int = 48) -> RadialRule:
    """Nested Clenshaw–Curtis panels for the slices' integral over r: ``n_step`` + 1 points on the smooth step
    [r_c − w, r_c + w] (the slice weight there is the smoothstep of r times a smooth function; skipped for w = 0) and
    ``n_tail`` + 1 on [r_c + w, r_c + w + ``far``] in s = log(1 + (r − r_c − w)/``scale``) (dr = (scale + r − r_c − w)
    ds; the needle falls like e^{−κr} and then like a power of r, docs/notes/split.md §2), each with its embedded
    rule of half the order (:class:`RadialRule`). Panels share their common end."""
    r0 = r_c + width
    s, w, wc = _nested_panel(n_tail, 0.0, float(np.log1p(far / scale)))
    jac = scale * np.exp(s)
    radii, weights, coarse = r0 + scale * np.expm1(s), w * jac, wc * jac
    if width > 0.0:
        rs, ws, wcs = _nested_panel(n_step, r_c - width, r0)
        radii = np.concatenate([rs[:-1], radii])
        weights = np.concatenate([ws[:-1], weights + np.eye(1, len(weights))[0] * ws[-1]])
        coarse = np.concatenate([wcs[:-1], coarse + np.eye(1, len(coarse))[0] * wcs[-1]])
    return RadialRule(radii, weights, coarse)


def _trapezoid_rule(radii) -> RadialRule:
    """The trapezoid weights of the grid ``radii`` as a :class:`RadialRule`, its embedded rule the trapezoid on every
    other radius (the last one kept)."""
    r = np.asarray(radii, dtype=np.float64)
    w = np.zeros(len(r))
    w[:-1] += 0.5 * np.diff(r)
    w[1:] += 0.5 * np.diff(r)
    keep = np.unique(np.r_[np.arange(0, len(r), 2), len(r) - 1])
    c = np.zeros(len(r))
    c[keep[:-1]] += 0.5 * np.diff(r[keep])
    c[keep[1:]] += 0.5 * np.diff(r[keep])
    return RadialRule(r, w, c)


@dataclass(frozen=True)
class Needles:
    """The settings of :func:`split_average` for one layer: unit ``axes`` (k, d), the cut ``r_c``, the smoothing
    ``width`` (0: hard half-spaces), the slices' ``radii`` (a :class:`RadialRule`, or a grid for the trapezoid; None:
    :func:`radial_rule`) and their cross-section rule (``inflate``, ``n_points`` Sobol' nodes per slice, ``seed``)."""

    axes: np.ndarray
    r_c: float
    width: float = 0.0
    radii: object = None
    inflate: float = 3.0
    n_points: int = 2**11
    seed: int = 0

    @property
    def rule(self) -> RadialRule:
        """The slices' radial rule: ``radii`` (a grid: its trapezoid rule), or :func:`radial_rule` where None."""
        if self.radii is None:
            return radial_rule(self.r_c, self.width)
        return self.radii if isinstance(self.radii, RadialRule) else _trapezoid_rule(self.radii)

    def average(self, y, log_weights, logdensity, observe, **kw) -> "NeedleSplit":
        """:func:`split_average` of the rule's nodes with these settings (``kw``: its ``evaluate``, ``observed``,
        ``maps``)."""
        return split_average(y, log_weights, logdensity, observe, self.axes, self.r_c, self.rule, width=self.width,
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


def needle_orbits(axes, maps, tol: float = 1e-6) -> tuple:
    """(axes', orbits) of the unit ``axes`` (k, d) under the orthogonal ``maps`` Q_g (identity first; the class
    permutations of :func:`theory.deep_symmetric_rule.image_maps`). An orbit is (representative j, [(member k, [g …
    with Q_g ŷ_j ≈ ŷ_k within ``tol`` in cosine])]), the representative first with its stabiliser. axes' are exact
    images: ŷ'_j = the normalised mean of Q_g ŷ_j over the stabiliser, ŷ'_k = Q_g ŷ'_j for the first g of k. Where
    the maps form a group that permutes the axes (a symmetric point) the set axes' is invariant under every Q_g to
    rounding; any unit axes keep the split exact."""
    axes = np.atleast_2d(np.asarray(axes, dtype=np.float64))
    maps = [np.eye(axes.shape[1])] if maps is None else list(maps)
    out, orbits, seen = axes.copy(), [], set()
    for j in range(len(axes)):
        if j in seen:
            continue
        members = {}
        for g, Q in enumerate(maps):
            cos = axes @ (Q @ axes[j])
            k = int(np.argmax(cos))
            if cos[k] >= 1.0 - tol and (k not in seen or k in members):
                members.setdefault(k, []).append(g)
        members.setdefault(j, [0])
        rep = sum(maps[g] @ axes[j] for g in members[j])
        out[j] = rep / np.linalg.norm(rep)
        for k, gs in members.items():
            if k != j:
                out[k] = maps[gs[0]] @ out[j]
        seen.update(members)
        orbits.append((j, [(j, members.pop(j))] + sorted(members.items())))
    return out, orbits


@lru_cache(maxsize=16)
def _cross_section_nodes(n: int, k: int, slices: int, seed: int):
    """Standard-normal Sobol' nodes (slices, n, k), consecutive blocks of one scrambled sequence (n a power of 2: each
    block is a net, and the slices' errors are not the same error), and which belong to the wide component (n,);
    read-only (cached: one sequence per setting)."""
    m = int(np.ceil(np.log2(max(n, 1) * max(slices, 1))))
    x = norm.ppf(qmc.Sobol(k, scramble=True, seed=seed).random_base2(m))[:n * slices].reshape(slices, n, k)
    wide = np.arange(n) < int(round(WIDE_SHARE * n))
    x.flags.writeable = wide.flags.writeable = False
    return x, wide


def _member_bases(axes, basis, maps, members) -> list:
    """For each (member k, [g …]) of an orbit whose representative's cross-section basis is ``basis`` (d, d−1):
    the orthonormal bases polar((I − ŷ_k ŷ_kᵀ) Q_g basis) of ŷ_k^⊥, one per g (Q_g basis itself where Q_g maps the
    representative's axis onto ŷ_k exactly)."""
    out = []
    for k, gs in members:
        a = axes[k]
        bases = []
        for g in gs:
            A = maps[g] @ basis
            A = A - np.outer(a, a @ A)
            U, _, Vt = np.linalg.svd(A, full_matrices=False)
            bases.append(U @ Vt)
        out.append(bases)
    return out


def slice_integrals(logdensity, observe, axis, axes, r_c: float, radii, *, width: float = 0.0, inflate: float = 3.0,
                    n_points: int = 2**11, seed: int = 0, evaluate=None, maps=None, members=None):
    """Per member of an orbit of needles: (log mass (n_r,), sums {name: (n_r, …)}, Kish ESS fractions (n_r,)) of the
    cross-sections at ``radii`` along its axis: mass(r) = ∫ e^{logdensity} χ_k dζ and sums = ∫ e^{logdensity} χ_k O dζ
    / mass(r), with χ from :func:`half_space_weights` over all ``axes`` and ``observe(y)`` a dict of per-point arrays
    (n, …). The cross-section rule (Laplace slice of e^{logdensity} along the representative ``axis``, Sobol' nodes on
    the defensive mixture) is built once per radius and carried to each member k by the maps Q_g of ``maps`` listed in
    ``members`` ([(k, [g …])], :func:`needle_orbits`; default: ``axis`` alone, the identity): nodes
    r ŷ_k + B_{k,g} ζ_i over g with the bases of :func:`_member_bases`, each an unbiased estimate of the member's slice
    (any orthonormal basis of ŷ_k^⊥ is a change of variables), averaged. ``evaluate(y)``: (logdensity(y), observe(y))
    in one pass (default: the two calls)."""
    evaluate = evaluate or (lambda z: (logdensity(z), observe(z)))
    axis = np.asarray(axis, dtype=np.float64)
    axes = np.atleast_2d(axes)
    d = len(axis)
    basis = np.linalg.svd(axis[None, :])[2][1:].T
    radii = np.asarray(radii, dtype=np.float64)
    single = members is None
    maps = [np.eye(d)] if maps is None else maps
    members = [(int(np.argmax(axes @ axis)), [0])] if single else members
    bases = _member_bases(axes, basis, maps, members)

    X, wide = _cross_section_nodes(n_points, d - 1, len(radii), seed)
    out = [(np.full(len(radii), -np.inf), {}, np.zeros(len(radii))) for _ in members]
    top_mass = -np.inf
    for i, r in enumerate(radii):  # one Laplace solve per slice: a joint solve stops on the slowest slice
        if width > 0.0 and r <= r_c - width:
            continue  # χ = 0 on this slice
        def on_slice(Z, r=r):
            return logdensity((r * axis + Z @ basis.T).reshape(-1, d)).reshape(Z.shape[:2])

        with np.errstate(all="ignore"):
            mode, curv, peak = _laplace(on_slice, 1, d - 1)
        mode = mode[0]
        S, log_det = _covariance(curv, inflate)
        laplace_mass = float(peak[0] + 0.5 * log_det[0] + 3.0 * np.log1p(r))  # up to the inflation's constant
        if laplace_mass < top_mass - NEGLIGIBLE:
            continue  # the slice's Laplace mass, times r² (second moments) and r (the weight in log r), is negligible
        top_mass = max(top_mass, laplace_mass)
        L = np.linalg.cholesky(S[0])
        Z = mode + np.where(wide[:, None], np.sqrt(WIDE_SCALE), 1.0) * (X[i] @ L.T)
        log_q = _mixture_log_pdf(Z - mode, L, d - 1)
        for (k, _), member_bases, (log_mass, sums, ess) in zip(members, bases, out):
            ys = np.concatenate([r * axes[k] + Z @ B.T for B in member_bases])
            log_density, observed = evaluate(ys)
            lw = log_density - np.tile(log_q, len(member_bases))
            with np.errstate(divide="ignore"):
                lw = lw + np.log(half_space_weights(ys, axes, r_c, width)[:, k])
            top = np.max(lw)
            if not np.isfinite(top):
                continue
            w = np.exp(lw - top)
            log_mass[i] = top + np.log(w.mean())
            p = w / w.sum()
            ess[i] = 1.0 / np.sum(p * p) / len(p)
            for name, val in observed.items():
                sums.setdefault(name, np.zeros((len(radii),) + val.shape[1:]))[i] = np.tensordot(p, val, 1)
    return out[0] if single else out


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
    ``rule_weight`` (share of the rule's own weight kept), ``rule_ess`` (Kish ESS fraction of the kept rule),
    ``radial_error`` (the largest change of log Z or of an average ⟨O⟩ when the slices' radial rule is replaced by its
    embedded rule of lower order: an estimate of the radial rule's error) and ``axes`` (those of the split:
    :func:`needle_orbits`' exact images)."""

    log_z: float
    averages: dict
    needle_weight: np.ndarray
    slice_ess: float
    rule_weight: float
    rule_ess: float
    radial_error: float = float("nan")
    axes: np.ndarray | None = None


def split_average(y, log_weights, logdensity, observe, axes, r_c: float, radii, observed=None, maps=None,
                  **kw) -> NeedleSplit:
    """The identity of the module docstring: the rule's nodes ``y`` (n, d) with log weights ``log_weights``
    (Σ e^{lw} ≈ ∫ e^{logdensity}), reweighted by 1 − Σ_j χ_j, plus :func:`slice_integrals` along each of ``axes``
    over ``radii`` (a :class:`RadialRule`, or a grid >= r_c − width for the trapezoid); ``observed``: ``observe(y)`` if
    the caller has it already; ``maps``: orthogonal maps Q_g of y under which the integrand is invariant at a
    symmetric point (identity first; with the rule's nodes joined by their images, :mod:`theory.deep_symmetric_rule`):
    the axes are replaced by exact images and each orbit's slices share one cross-section rule
    (:func:`needle_orbits`), so the split is exactly equivariant there; ``kw`` go to :func:`slice_integrals`."""
    axes, orbits = needle_orbits(axes, maps)
    rule = radii if isinstance(radii, RadialRule) else _trapezoid_rule(radii)
    keep = np.maximum(1.0 - half_space_weights(y, axes, r_c, kw.get("width", 0.0)).sum(axis=1), 0.0)  # rounding
    with np.errstate(divide="ignore"):
        lw = np.asarray(log_weights, dtype=np.float64) + np.log(keep)
    ref = float(logsumexp(log_weights))
    rule_log = float(logsumexp(lw))
    p = np.exp(lw - rule_log)
    observed = observe(y) if observed is None else observed
    rule_part = (np.exp(rule_log - ref), {n: np.tensordot(p, v, 1) for n, v in observed.items()})
    fine, coarse = [rule_part] + [None] * len(axes), [rule_part] + [None] * len(axes)
    ess, seed = 1.0, kw.pop("seed", 0)
    for j, members in orbits:
        per_member = slice_integrals(logdensity, observe, axes[j], axes, r_c, rule.radii, seed=seed + 1 + j,
                                     maps=maps, members=members, **kw)
        for (k, _), (log_mass, sums, e) in zip(members, per_member):
            mass = np.exp(log_mass - ref)
            ess = min(ess, float(np.min(e[mass >= 1e-3 * mass.max()])))
            for parts, w in ((fine, rule.weights), (coarse, rule.coarse)):
                total = float(w @ mass)
                parts[1 + k] = (total, {n: np.tensordot(w * mass, v, 1) / total for n, v in sums.items()})
    (log_z, averages, weights), (log_zc, averages_c, _) = _combine(fine, ref), _combine(coarse, ref)
    radial = max([abs(log_z - log_zc)] + [float(np.max(np.abs(averages[n] - averages_c[n]))) for n in averages])
    return NeedleSplit(log_z, averages, weights[1:] / weights.sum(), ess, float(weights[0] / weights.sum()),
                       float(1.0 / np.sum(p * p) / len(p)), radial, axes)


def _combine(parts, ref: float) -> tuple:
    """(log Z, averages, part weights) of the rule's and the slices' parts [(weight, {name: average})]."""
    weights = np.array([w for w, _ in parts])
    total = float(weights.sum())
    averages = {n: sum(w * a[n] for w, a in parts) / total for n in parts[0][1]}
    return ref + float(np.log(total)), averages, weights
