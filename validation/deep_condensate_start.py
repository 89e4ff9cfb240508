"""Deep ReLU networks started from the KKT saddle with both condensates (THEORY §4, §5, §7): the truncated bulk of
every hidden layer plus the outlier neurons of the first hidden layer's and of the readout's condensate (the saddle:
:mod:`solvers.deep.complementarity`, its terms: :mod:`solvers.deep.kkt`).

A deep ReLU solution that is a KKT point carries ``kkt``: the :class:`solvers.deep.complementarity.KKTModel`, its
unknowns x with the multipliers μ and the integration proposals (a triple, or an object with ``model``, ``x`` and
``proposals``); :func:`kkt_of` reads it.

Bulk. Each layer's rule estimates the integral over the region its nodes cover: the bulk without the far tail of
the needle along an active maximiser, which the condensate replaces. So the bulk neurons are drawn by resampling
that rule's nodes with their weights (:func:`theory.deep_neurons.sample_layer_neurons` with ``rule``), not by fresh
importance draws from the proposal, whose weights along a needle at q = 1 grow without bound.

Outliers. A multiplier μ_j of an active maximiser adds to its layer the KKT terms of :mod:`solvers.deep.kkt`:

* first hidden layer, maximiser v̂_j ∈ R^m of Σ_c P_c σ_1² (u_c)₊²/A_c (u = B v̂_j, B = chol k̃_1,
  A_c = 1 − δ̃_c σ_1²): K_1 gains k_cd += 2μ_j σ_1⁴ u_c u_d/(q_j A_c A_d) and the diagonal
  K_cc += 2μ_j σ_1⁴ u_c²/A_c² on the classes with u_c > 0;
* readout, maximiser ŷ_j = (v̂_j, ŵ_j) ∈ R^{2m} of the readout domain (:mod:`theory.deep_condensate`):
  f_c += 2μ_j σ_a h*_{j,c} v̂_j, U += 2μ_j σ_a² v̂_j v̂_jᵀ, k_L += 2μ_j h*_j h*_jᵀ.

A neuron of that layer at y = r ŷ_j (r → ∞) has, from the 1-D tilted law at u = r B v̂_j, activations
h_μ = r σ_1² u_c/A_c + O(1) on the classes with u_c > 0 and O(1) on the others (first layer), or
h_μ = r h*_{j,c} + O(1) with readout a = σ_a r v̂_j (readout layer); with weight 1/N each, n_j such neurons give
exactly these terms when

    n_j r_j² / N = 2 μ_j

(the first layer's off-diagonal blocks at q_j = 1, where the constraint is active; the other terms at any q_j).
Only n_j r_j² is fixed by the saddle. The count is as small as it can be: a neuron moved onto the flat direction
costs P (S_bulk − S_∞) > 0 in log-probability (THEORY §4), so the start places **one outlier per active maximiser,
r_j = sqrt(2 μ_j N)**, as the one-layer start places the readout condensate
(:func:`validation.populations.theory_population`, r² = N λ_j/σ_1² with λ_j = 2 μ_j σ_a² σ_1²), where
2 μ_j >= :data:`validation.populations.CONDENSATE_MIN_MASS`. Its preactivations come from the same tilted law at
that y (:func:`theory.deep_neurons.neurons_at`); it replaces a bulk draw, so each layer keeps N neurons.
Sampled chains with every exact move hold exactly one first-layer outlier per class in the paper's regime
(docs/devlog.md, dval9).

:func:`condensate_prediction` states, per condensate, what the start places and what the sampled outlier records
(:func:`validation.deep_outliers.hidden_layer_row`, :class:`validation.deep_outliers.LastLayerOutliers`) should
show: the code, r/√N, the class-mean activation over √N, and its share of each class's kernel diagonal (first
layer) or of each correct-class output f_cc (readout).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from theory.deep_fields import layer_fields
from theory.deep_neurons import neurons_at, sample_layer_neurons
from theory.domain_errors import OutsideDomain
from theory.spec import SpecError

from .populations import CONDENSATE_MIN_MASS

__all__ = ["kkt_of", "Condensate", "condensate_outliers", "kkt_layer_neurons", "condensate_prediction"]


def kkt_of(theory):
    """(model, x, proposals) of a deep ReLU solution that is a KKT point, from its attribute ``kkt`` (a triple, or an
    object with ``model``, ``x`` and ``proposals``), else None."""
    kkt = getattr(theory, "kkt", None)
    if kkt is None:
        return None
    if all(hasattr(kkt, name) for name in ("model", "x", "proposals")):
        return kkt.model, kkt.x, kkt.proposals
    if isinstance(kkt, tuple) and len(kkt) == 3:
        return kkt
    raise SpecError("theory.kkt must be (KKTModel, x with the multipliers, proposals)")


@dataclass(frozen=True)
class Condensate:
    """The active maximisers of one layer's domain with their multipliers (module docstring): ``layer`` (1 or L),
    ``directions`` ŷ_j in that layer's y-coordinates (rows), ``multipliers`` μ_j, ``q`` the domain function there,
    ``codes`` (0/1 strings of the classes each outlier is active on), ``activations`` (k, m) the outliers'
    activation per unit radius (σ_1² u_c/A_c or h*_c on the active classes, 0 elsewhere), ``fields`` (B, δ̃, C, s)
    of the layer (:func:`theory.deep_fields.layer_fields`) and ``kwargs`` its arguments of
    :func:`theory.deep_layer.layer_integral`."""

    layer: int
    directions: np.ndarray
    multipliers: np.ndarray
    q: np.ndarray
    codes: tuple
    activations: np.ndarray
    fields: tuple
    kwargs: dict

    def radii(self, width: int) -> np.ndarray:
        """r_j = sqrt(2 μ_j N): one outlier per maximiser carries the whole term (module docstring)."""
        return np.sqrt(2.0 * np.maximum(self.multipliers, 0.0) * width)

    def placed(self) -> np.ndarray:
        """Which maximisers get an outlier: 2 μ_j >= CONDENSATE_MIN_MASS."""
        return 2.0 * self.multipliers >= CONDENSATE_MIN_MASS


def condensate_outliers(model, x, ev) -> list:
    """The :class:`Condensate` of the first hidden layer (L >= 2) and of the readout at the KKT point ``x`` of
    ``model`` (a :class:`solvers.deep.complementarity.KKTModel`; ``ev`` its evaluation there), each with at least
    one maximiser, first layer first."""
    hook = model.condensate
    mu = model.multipliers(x)
    kL = len(hook.last)
    t, ker = model.unpack(np.asarray(x, dtype=np.float64)[:model.n_base])
    out = []
    if model.L >= 2 and len(hook.first):
        kw = model.layer_kwargs(1, t, ker, ev)
        B, A, dirs, q = hook.first_layer(kw["kt"], kw["dt"], model.sigmas[0], model.sizes)
        u = dirs @ B.T
        act = np.where(u > 0.0, model.sigmas[0] ** 2 * u / A, 0.0)
        codes = tuple("".join("1" if v > 0.0 else "0" for v in a) for a in act)
        out.append(Condensate(1, dirs, mu[kL:], q, codes, act, layer_fields(model.sizes, model.sigmas[0], **kw),
                              kw))
    if kL:
        kw = model.layer_kwargs(model.L, t, ker, ev)
        dom = hook.readout_domain(model, t, ker)
        out.append(Condensate(model.L, dom.directions, mu[:kL], dom.q, tuple(dom.code_strings()), dom.h,
                              layer_fields(model.sizes, model.sigmas[-1], **kw), kw))
    return out


def kkt_layer_neurons(kkt, n: int, rng: np.random.Generator) -> list:
    """Per hidden layer ℓ = 1..L, ``n`` neurons of the KKT saddle ``kkt`` = (model, x, proposals) (module
    docstring): the bulk by resampling the layer rule's nodes, then one outlier per placed maximiser of the first
    layer's and the readout's condensate in the last rows. Dicts as
    :func:`validation.deep_theory_sample.nonlinear_layer_neurons` ("h" n × P, "a" n × m for ℓ = L, "ess") plus
    "outliers" (row indices of the placed outliers)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise SpecError(f"n (neurons per layer) must be an integer >= 1 (got {n!r})")
    model, x, props = kkt
    ev = model.safe_eval(x, props)
    if ev is None:
        raise OutsideDomain("the KKT point does not evaluate")
    t, ker = model.unpack(np.asarray(x, dtype=np.float64)[:model.n_base])
    conds = {c.layer: c for c in condensate_outliers(model, x, ev)}
    layers = []
    for ell in range(1, model.L + 1):
        kw = model.layer_kwargs(ell, t, ker, ev)
        lay = sample_layer_neurons(model.oned, model.sizes.astype(int), model.sigmas[ell - 1], props[ell - 1], int(n),
                                   rng, rule=model.rules[ell - 1], **kw)
        lay["outliers"] = np.zeros(0, dtype=np.int64)
        cond = conds.get(ell)
        if cond is not None and cond.placed().any():
            keep = np.flatnonzero(cond.placed())[:n]
            rows = np.arange(n - len(keep), n)
            y = cond.radii(n)[keep, None] * cond.directions[keep]
            placed = neurons_at(model.oned, model.sizes.astype(int), y, rng, fields=cond.fields)
            lay["h"][rows] = placed["h"]
            if lay["a"] is not None:
                lay["a"][rows] = kw["sigma_a"] * y[:, :model.m]
            lay["outliers"] = rows
        layers.append(lay)
    return layers


def condensate_prediction(kkt) -> list:
    """Per condensate of the KKT saddle ``kkt`` (:func:`condensate_outliers`), what the start places and the
    sampled records should show (module docstring): {"layer", "codes", "multipliers", "q", "placed" (outliers per
    maximiser, 0 or 1), "radius_over_sqrt_n" (r_j/√N), "activation_over_sqrt_n" (per maximiser and class, the
    outlier's class-mean activation over √N), and "kernel_diagonal_share" (first layer: per maximiser and class its
    share of K_1's diagonal) or "output_share" (readout: per maximiser its share of each f_cc)}."""
    model, x, props = kkt
    ev = model.safe_eval(x, props)
    if ev is None:
        raise OutsideDomain("the KKT point does not evaluate")
    out = []
    for c in condensate_outliers(model, x, ev):
        r = np.sqrt(2.0 * np.maximum(c.multipliers, 0.0))  # r_j/√N
        act = r[:, None] * c.activations
        entry = {"layer": c.layer, "codes": list(c.codes), "multipliers": c.multipliers.tolist(), "q": c.q.tolist(),
                 "placed": c.placed().astype(int).tolist(), "radius_over_sqrt_n": r.tolist(),
                 "activation_over_sqrt_n": act.tolist()}
        lay = ev["layers"][c.layer - 1]
        if c.layer == 1:
            entry["kernel_diagonal_share"] = (act**2 / (np.diag(lay.k) + lay.delta)[None, :]).tolist()
        else:
            v = c.directions[:, :model.m]
            f = lay.outputs
            per = model.spec.sigma_a * act[:, :, None] * r[:, None, None] * v[:, None, :]  # (k, c, r) of f
            entry["output_share"] = (np.diagonal(per, axis1=1, axis2=2) / np.diag(f)[None, :]).tolist()
        out.append(entry)
    return out
