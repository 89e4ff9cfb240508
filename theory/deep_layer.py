"""One layer's y-integral of the class-block theory (THEORY §5; derivation in :mod:`theory.deep_blocks`).

With the fields of :mod:`theory.deep_fields` and the 1-D cumulants ζ_c of :mod:`theory.deep_tilted`,

    log Z = log E_{y ~ N(0, I)} exp(Σ_c P_c ζ_c(ξ_c(y), u_c(y))),   y = (v, w) ∈ R^m (ℓ = 1) or R^{2m},

evaluated with a :class:`theory.deep_rules.Rule` through a :class:`theory.deep_rules.Proposal`. The same
weights give this layer's kernel (k, δ), the conjugate of its input kernel (k̃_in, δ̃_in; Stein's
identity) and, for the readout, f and U.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from theory.deep_fields import tilt_factor
from theory.deep_needle_tail import half_space_weights
from theory.deep_neurons import _sample_patterns
from theory.deep_rules import Proposal, Rule
from theory.deep_symmetric_rule import image_maps, with_images
from theory.deep_tilted import OneD, PhiCache, growth_directions, growth_rate, tilted_moments
from theory.domain_errors import OutsideDomain

__all__ = ["LayerResult", "LayerCache", "log_integrand", "layer_integral", "layer_growth", "layer_needle_directions",
           "untilted_kernels"]


@dataclass(frozen=True, eq=False)
class LayerResult:
    """Everything one layer's y-integral gives (:mod:`theory.deep_blocks`), for one rule.

    ``log_z``; ``k``, ``delta`` (this layer's activation kernel); ``kt_in``, ``dt_in`` (conjugate of
    the input kernel, ℓ >= 2 only); ``outputs`` f (m, m) [c, r] and ``readout_moment`` U (readout
    layer only); ``y_mean``, ``y_cov`` (tilted moments of y, for the proposal); ``ess`` (Kish
    effective sample size fraction of the importance weights); ``nodes`` (y, p) for the adaptation of
    a :class:`theory.deep_mixture.MixtureProposal` (None for a single Gaussian)."""

    log_z: float
    k: np.ndarray
    delta: np.ndarray
    kt_in: np.ndarray | None
    dt_in: np.ndarray | None
    outputs: np.ndarray | None
    readout_moment: np.ndarray | None
    y_mean: np.ndarray
    y_cov: np.ndarray
    ess: float
    nodes: tuple | None = None  # (y, p): the nodes and normalised weights, kept for mixture proposals only


class LayerCache:
    """What successive evaluations of one layer with one rule share (a Newton solve holds the proposals
    fixed): the mapped nodes of the last (proposal, rule) pair, and the φ values of the last 1-D
    integrals (:class:`theory.deep_tilted.PhiCache`). Results are identical to uncached calls."""

    def __init__(self):
        self.phi = PhiCache()
        self._pair = self._mapped = None

    def mapped(self, proposal, rule: Rule):
        """``proposal.map(rule)``, reused while the same (immutable) proposal and rule objects come back."""
        if self._pair is None or self._pair[0] is not proposal or self._pair[1] is not rule:
            self._pair, self._mapped = (proposal, rule), proposal.map(rule)
        return self._mapped


def log_integrand(oned: OneD, sizes, sigma: float, y, *, R_in=None, delta_in=None, t=None, sigma_a=None, kt=None,
                  dt=None) -> np.ndarray:
    """λ(y) = −½|y|² + Σ_c P_c ζ_c(u_c(y), ξ_c(y)): the log density (up to a constant) of one layer's
    tilted y-measure at the points ``y`` (n, d), in the coordinates of :func:`layer_integral` (u = B v with
    B of :func:`theory.deep_fields.tilt_factor`); arguments as :func:`layer_integral`."""
    P = np.asarray(sizes, dtype=np.float64)
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    zeta = tilted_moments(oned, *_node_fields(len(P), sigma, y, R_in, delta_in, t, sigma_a, kt, dt))[0]
    return -0.5 * np.sum(y * y, axis=1) + zeta @ P


def _node_fields(m: int, sigma: float, y, R_in, delta_in, t, sigma_a, kt, dt) -> tuple:
    """(ξ, u, s, δ̃) of the 1-D integrals at the nodes ``y`` (n, d): u = B v (B, δ̃ of
    :func:`theory.deep_fields.tilt_factor`), ξ = σ R_in w and s = σ √δ_in (ξ = 0, s = σ without an input kernel)."""
    B, dtilt = tilt_factor(m, t=t, sigma_a=sigma_a, kt=kt, dt=dt)
    u = y[:, :m] @ B.T
    if R_in is not None:
        xi, s = sigma * (y[:, m:] @ np.asarray(R_in).T), sigma * np.sqrt(np.asarray(delta_in, dtype=np.float64))
    else:
        xi, s = np.zeros_like(u), np.full(m, sigma)
    return xi, u, s, dtilt


def _growth_inputs(oned: OneD, P, sigma, B, dtilt, s, R_in) -> tuple:
    """The arguments (kind, sizes, B, s, δ̃, C, leak) of :func:`theory.deep_tilted.growth_rate` for one layer with tilt
    factor ``B``, ``dtilt`` and within-class scale ``s``; :class:`OutsideDomain` where a 1-D integral diverges."""
    kind, Bg, dg, leak = oned.growth_args(B, dtilt)
    if np.any(1.0 - dg * s * s <= 0.0):
        raise OutsideDomain("1-D integral diverges: 1 − δ̃ s² <= 0")
    C = sigma * np.asarray(R_in) if R_in is not None else None
    return kind, P, Bg, s, dg, C, leak


def _growth(oned: OneD, P, sigma, B, dtilt, s, R_in) -> float:
    """The growth rate of the layer's y-integrand (:func:`theory.deep_tilted.growth_rate`; the integral converges
    iff it is below ½)."""
    kind, P, Bg, s, dg, C, leak = _growth_inputs(oned, P, sigma, B, dtilt, s, R_in)
    return growth_rate(kind, P, Bg, s, dg, C, leak=leak)


def _layer_growth_inputs(oned: OneD, sizes, sigma, R_in, delta_in, t, sigma_a, kt, dt) -> tuple:
    """:func:`_growth_inputs` from the arguments of :func:`layer_integral`."""
    P = np.asarray(sizes, dtype=np.float64)
    B, dtilt = tilt_factor(len(P), t=t, sigma_a=sigma_a, kt=kt, dt=dt)
    s = sigma * np.sqrt(np.asarray(delta_in, dtype=np.float64)) if R_in is not None else np.full(len(P), sigma)
    return _growth_inputs(oned, P, sigma, B, dtilt, s, R_in)


def layer_growth(oned: OneD, sizes, sigma: float, *, R_in=None, delta_in=None, t=None, sigma_a=None, kt=None,
                 dt=None) -> float | None:
    """q = 2 × the growth rate of one layer's y-integrand (arguments as :func:`layer_integral`): its integral
    converges iff q < 1 (for ReLU's readout layer, q of :mod:`theory.deep_condensate`; for shaped φ, the leaky
    part included). None for bounded φ (no domain); inf where a 1-D integral diverges."""
    if not oned.grows:
        return None
    try:
        kind, P, Bg, s, dg, C, leak = _layer_growth_inputs(oned, sizes, sigma, R_in, delta_in, t, sigma_a, kt, dt)
    except OutsideDomain:
        return float("inf")
    return 2.0 * growth_rate(kind, P, Bg, s, dg, C, leak=leak)


def layer_needle_directions(oned: OneD, sizes, sigma: float, *, R_in=None, delta_in=None, t=None, sigma_a=None,
                            kt=None, dt=None, q_min: float = 0.0):
    """(directions (k, d), q (k,)): the local maximisers of one layer's growth in its y-coordinates (those of
    :func:`layer_integral` and :func:`log_integrand`) with q = 2 × their growth >= ``q_min``, best first
    (:func:`theory.deep_tilted.growth_directions`): the needles of the layer's tilted measure near its domain
    boundary, for any φ with linear growth (the leaky ReLU of the shape homotopy included)."""
    kind, P, Bg, s, dg, C, leak = _layer_growth_inputs(oned, sizes, sigma, R_in, delta_in, t, sigma_a, kt, dt)
    return growth_directions(kind, P, Bg, s, dg, C, leak=leak, q_min=q_min)


def layer_integral(oned: OneD, sizes, sigma: float, rule: Rule, proposal, *, R_in=None, delta_in=None,
                   t=None, sigma_a=None, kt=None, dt=None, neurons: int = 0, rng=None, cache=None,
                   truncated: bool = False, class_perms=None, needles=None):
    """One layer's y-integral (:mod:`theory.deep_blocks`).

    Input kernel: ``R_in`` (k = R Rᵀ) and ``delta_in`` (m,), or both None for K_0 = I (layer 1).
    Tilt: readout (``t`` (m, m) rows t_c, ``sigma_a``) or hidden (``kt`` = k̃ ⪰ 0, ``dt`` = δ̃).
    ``proposal``: a :class:`theory.deep_rules.Proposal` or :class:`theory.deep_mixture.MixtureProposal`.
    Returns a :class:`LayerResult`; with ``neurons`` > 0 instead the class-mean activations
    (neurons × m) of that many neurons drawn from the layer's single-neuron measure
    (:func:`_sample_patterns`). ``cache``: a :class:`LayerCache` of this layer and rule (same results,
    fewer node maps and φ evaluations across calls that share the proposal, ξ and s). ``truncated``: no check
    that the integral exists (growth rate < 1/2); the result is then the rule's estimate, the integral over the
    region its nodes cover (the bulk of a condensate, whose far tail the KKT terms carry:
    :mod:`solvers.deep.complementarity`). ``class_perms``: the permutations of equal-size classes (identity first;
    :func:`theory.deep_symmetric_rule.equal_size_permutations`): every node joined by its images under them, the
    rule exactly symmetric at a symmetric point and unbiased everywhere (:mod:`theory.deep_symmetric_rule`).
    ``needles``: a :class:`theory.deep_needle_tail.Needles` (the layer's maximisers ŷ_j, the cut r_c): the rule's
    nodes reweighted by 1 − Σ_j χ_j plus 1-D slice integrals along each needle (:func:`_split_result`; positive
    weights only). None: the rule alone.
    """
    P = np.asarray(sizes, dtype=np.float64)
    m = len(P)
    has_xi = R_in is not None
    y, logw, base = proposal.map(rule) if cache is None else cache.mapped(proposal, rule)
    readout = t is not None
    B, dtilt = tilt_factor(m, t=t, sigma_a=sigma_a, kt=kt, dt=dt)
    sign = rule.sign
    maps = image_maps(class_perms, B, R_in, readout) if class_perms is not None and len(class_perms) > 1 else None
    if maps is not None:
        y, logw, base = with_images(y, logw, base, maps)
        sign = None if sign is None else np.tile(sign, len(class_perms))
    v = y[:, :m]
    u = v @ B.T
    if has_xi:
        delta_in = np.asarray(delta_in, dtype=np.float64)
        if np.any(delta_in <= 0):
            raise OutsideDomain("within-class kernel excess δ must be > 0")
        xi = sigma * (y[:, m:] @ np.asarray(R_in).T)
        s = sigma * np.sqrt(delta_in)
    else:
        xi = np.zeros_like(u)
        s = np.full(m, sigma)
    if oned.grows and not truncated:
        grow = _growth(oned, P, sigma, B, dtilt, s, R_in)
        if grow >= 0.5 * (1.0 - 1e-9):
            raise OutsideDomain(f"y-integral diverges: growth rate {grow:.4g} >= 1/2 (outside the domain)")
    zeta, m1, m2, ez, ez2 = tilted_moments(oned, xi, u, s, dtilt, None if cache is None else cache.phi)
    lw = logw + (base + zeta @ P)
    log_z, p = _normalised_weights(lw, sign)
    if needles is not None and not neurons:
        return _split_result(oned, P, sigma, y, lw, (m1, m2, ez, ez2, s, sign), needles, proposal, maps,
                             dict(R_in=R_in, delta_in=delta_in, t=t, sigma_a=sigma_a, kt=kt, dt=dt))
    if neurons:
        return _sample_patterns(oned, P, p, xi, u, s, dtilt, ez, ez2, neurons, rng)
    ess = float(np.sum(np.abs(p)) ** 2 / np.sum(p * p) / len(p))
    k = (m1 * p[:, None]).T @ m1
    delta = p @ m2 - np.diag(k)
    y_mean = p @ y
    yc = y - y_mean
    y_cov = (yc * p[:, None]).T @ yc
    kt_in = dt_in = f = U = None
    if has_xi:
        W = ez / s
        kt_in = sigma**2 * (W * p[:, None]).T @ W
        dt_in = (p @ (ez2 - ez * ez) - 1.0) / delta_in
    if readout:
        a = sigma_a * v
        f = (m1 * p[:, None]).T @ a
        U = (a * p[:, None]).T @ a
    return LayerResult(log_z, 0.5 * (k + k.T), delta, None if kt_in is None else 0.5 * (kt_in + kt_in.T), dt_in,
                       f, U, y_mean, y_cov, ess, None if isinstance(proposal, Proposal) else (y, p))


def _normalised_weights(lw, sign):
    """(log Z, p): Z = Σ_i sign_i e^{lw_i} (sign None: all +1) and the normalised weights p_i = sign_i e^{lw_i} / Z;
    OutsideDomain if a weight is not finite or a signed (sparse-grid) estimate of Z is not positive."""
    if not np.all(np.isfinite(lw)):
        raise OutsideDomain("non-finite importance weight in the y-integral")
    if sign is None:
        log_z = float(logsumexp(lw))
        return log_z, np.exp(lw - log_z)
    log_z, sgn = logsumexp(lw, b=sign, return_sign=True)
    if sgn <= 0:
        raise OutsideDomain("sparse-grid estimate of the partition function is not positive")
    return float(log_z), sign * np.exp(lw - float(log_z))


def _node_observables(y, m1, m2, ez, ez2, s, has_xi: bool, sigma_a=None) -> dict:
    """Per node, the integrands whose averages make a :class:`LayerResult` (:func:`layer_integral`'s formulas), from
    the nodes' 1-D moments: m1 ⊗ m1, m2, y, y ⊗ y; with an input kernel W ⊗ W (W = E₁z/s) and Var₁ z; for the readout
    (``sigma_a``) m1 ⊗ a, a ⊗ a."""
    out = dict(k=m1[:, :, None] * m1[:, None, :], m2=m2, y=y, yy=y[:, :, None] * y[:, None, :])
    if has_xi:
        W = ez / s
        out.update(ww=W[:, :, None] * W[:, None, :], varz=ez2 - ez * ez)
    if sigma_a is not None:
        a = sigma_a * y[:, :m1.shape[1]]
        out.update(f=m1[:, :, None] * a[:, None, :], U=a[:, :, None] * a[:, None, :])
    return out


def _node_evaluation(oned: OneD, P, sigma: float, y, R_in, delta_in, t, sigma_a, kt, dt) -> tuple:
    """(log of N(y; 0, I) e^{Σ_c P_c ζ_c}, :func:`_node_observables`) at the nodes ``y``: one 1-D moment pass."""
    xi, u, s, dtilt = _node_fields(len(P), sigma, y, R_in, delta_in, t, sigma_a, kt, dt)
    zeta, m1, m2, ez, ez2 = tilted_moments(oned, xi, u, s, dtilt)
    log_density = -0.5 * np.sum(y * y, axis=1) + zeta @ P - 0.5 * y.shape[1] * np.log(2.0 * np.pi)
    return log_density, _node_observables(y, m1, m2, ez, ez2, s, R_in is not None, sigma_a if t is not None else None)


def _split_result(oned: OneD, P, sigma: float, y, lw, moments: tuple, needles, proposal, maps,
                  kw: dict) -> LayerResult:
    """:func:`layer_integral`'s result with the needle split of :mod:`theory.deep_needle_tail` (``kw``: its input
    kernel and tilt arguments; ``moments``: the 1-D moments m1, m2, E₁z, E₁z², s at the rule's nodes ``y`` and the
    rule's signs, which must be None: positive weights only): every average of
    :func:`_node_observables` (at the rule's nodes ``y``) is the rule's (nodes reweighted by
    1 − Σ_j χ_j) plus the slices' along ``needles.axes``; the rule's and the slices' weights share the normalisation
    N(y; 0, I) e^{Σ_c P_c ζ_c} = (2π)^{−d/2} e^{λ(y)}. ``maps``: the class permutations' images of the symmetric rule
    (:func:`theory.deep_symmetric_rule.image_maps`), which the split's axes and slices share
    (:func:`theory.deep_needle_tail.needle_orbits`). ``ess``: the smaller of the reweighted rule's Kish fraction and
    the slices' (``slice_ess``)."""
    m1, m2, ez, ez2, s, sign = moments
    if sign is not None:
        raise ValueError("layer_integral: needles need a rule with positive weights (not a sparse grid)")
    R_in, delta_in = kw["R_in"], kw["delta_in"]
    observed = _node_observables(y, m1, m2, ez, ez2, s, R_in is not None, kw["sigma_a"] if kw["t"] is not None else None)
    half_log_2pi = 0.5 * y.shape[1] * np.log(2.0 * np.pi)

    def evaluate(z):
        return _node_evaluation(oned, P, sigma, z, **kw)

    split = needles.average(y, lw, lambda z: log_integrand(oned, P, sigma, z, **kw) - half_log_2pi,
                            lambda z: evaluate(z)[1], evaluate=evaluate, observed=observed, maps=maps)
    a = split.averages
    k = a["k"]
    y_mean = a["y"]
    kt_in = dt_in = None
    if R_in is not None:
        kt_in = sigma**2 * a["ww"]
        kt_in = 0.5 * (kt_in + kt_in.T)
        dt_in = (a["varz"] - 1.0) / np.asarray(delta_in, dtype=np.float64)
    p = None
    if not isinstance(proposal, Proposal):  # a mixture adapts to the kept rule's weights
        keep = np.maximum(1.0 - half_space_weights(y, split.axes, needles.r_c, needles.width).sum(axis=1), 0.0)
        with np.errstate(divide="ignore"):
            lk = lw + np.log(keep)
        p = np.exp(lk - logsumexp(lk))
    return LayerResult(split.log_z, 0.5 * (k + k.T), a["m2"] - np.diag(k), kt_in, dt_in, a.get("f"), a.get("U"),
                       y_mean, a["yy"] - np.outer(y_mean, y_mean), min(split.rule_ess, split.slice_ess),
                       None if p is None else (y, p))


def untilted_kernels(oned: OneD, sizes, sigmas, rule_for) -> list:
    """Prior (NNGP) class-block kernels [(k_ℓ, δ_ℓ)] for ℓ = 1..L−1 (no tilt), with
    ``rule_for(d)`` giving the rule for a d-dimensional y-integral."""
    m = len(sizes)
    out = []
    R, delta = None, None
    for ell, sig in enumerate(sigmas[:-1], start=1):
        d = m if R is None else 2 * m
        res = layer_integral(oned, sizes, sig, rule_for(d), Proposal.standard(d), R_in=R, delta_in=delta,
                             kt=np.zeros((m, m)), dt=np.zeros(m))
        out.append((res.k, res.delta))
        w, V = np.linalg.eigh(res.k)
        R = np.linalg.cholesky((V * np.maximum(w, 0)) @ V.T + 1e-12 * np.eye(m))
        delta = res.delta
    return out
