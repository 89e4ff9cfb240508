"""The last hidden layer of a sampled deep network as a coding population: outliers, their codes and
the top-5 % output share (THEORY §4, §5, §7), recorded along a chain, with the pair rotations of
:mod:`validation.outlier_moves` applied to that layer.

:class:`LastLayerOutliers` is an ``after_sweep`` hook of :func:`validation.deep_chain.run_deep_chain`.
After every sweep it makes ``n_moves`` pair rotations of the last layer's weights W^L (exact
Metropolis–Hastings on the conditional of W^L with the readout integrated out, then a | W drawn
exactly; none if ``n_moves`` = 0, and the chain is then the plain sampler, draw for draw). Every
``every``-th sweep after burn-in it records, for the population of last-layer neurons with readouts
a (m × N) and class-mean activations φ̄ (N × m):

* outliers: readout norm > 4 × median (:func:`validation.sparse.outlier_stats`), their number, their
  codes and their share of each correct-class output s_c = Σ_{i∈out} a_ci φ̄_ic / Σ_i a_ci φ̄_ic;
* the top-5 % output share s_k = (k largest c_i)/Σ_i c_i, c_i = Σ_c ρ_c |a_ci φ̄_ic|, k = ⌈N/20⌉
  (:mod:`validation.coding_scheme`; a dense population has s_k <= 0.28, a sparse one > 1/2);
* (``lower=True``) its largest readout norm and largest class-mean activation norm over √N (a condensate's
  are O(1), the tail of an O(1) single-neuron law falls like N^{-1/2}), and per hidden layer ℓ < L, which
  has no readout, the same by activations (:func:`hidden_layer_row`): outliers are neurons with
  class-mean activation norm |φ̄_i| > 4 × median, their number, their codes, the largest |φ̄_i|/√N, the
  top-5 % share of tr K_ℓ (neuron i's part Σ_μ φ_iμ²) and the outliers' share of each class's kernel
  diagonal, Σ_{i∈out} Σ_{μ∈c} φ_iμ² / Σ_i Σ_{μ∈c} φ_iμ².
"""
from __future__ import annotations

import math

import numpy as np

from theory.checks import check_int
from theory.codes import code_string, neuron_codes
from theory.spec import class_labels

from .coding_scheme import TOP_FRACTION, output_contributions, top_k_share
from .diagnostics import rhat_rank
from .deep_observables import class_mean_activations
from .outlier_moves import pair_rotation_moves
from .sparse import OUTLIER_FACTOR, outlier_stats

__all__ = ["LastLayerOutliers", "combine_outliers", "hidden_layer_row", "code_key", "lower_summary"]


def code_key(code: int, m: int) -> str:
    """The 0/1 string of a code bit mask (class 1 first)."""
    return code_string([(code >> c) & 1 for c in range(m)])


def hidden_layer_row(phi: np.ndarray, class_sizes, factor: float = OUTLIER_FACTOR):
    """(row, codes) of one hidden layer's activations ``phi`` (N × P) by the module docstring's activation
    rule: row = [count, largest |φ̄_i|/√N, top-5 % share of tr K, outlier share of class c's kernel
    diagonal for each c]; codes = the outliers' code bit masks."""
    labels = class_labels(class_sizes)
    m = len(class_sizes)
    cm = np.stack([phi[:, labels == c].mean(axis=1) for c in range(m)], axis=1)
    norms = np.linalg.norm(cm, axis=1)
    out = norms > factor * np.median(norms)
    power = np.stack([np.sum(phi[:, labels == c] ** 2, axis=1) for c in range(m)], axis=1)  # N × m
    total = power.sum(axis=0)
    share = power[out].sum(axis=0) / np.where(total > 0, total, 1.0)
    top = top_k_share(power.sum(axis=1), math.ceil(TOP_FRACTION * len(phi)))
    row = [int(out.sum()), float(norms.max()) / math.sqrt(len(phi)), top, *share.tolist()]
    return row, neuron_codes(cm[out]).tolist()


class LastLayerOutliers:
    """``after_sweep`` hook (module docstring): ``n_moves`` pair rotations of W^L per sweep and the
    last layer's outlier statistics every ``every`` sweeps after burn-in; :meth:`summary` gives them."""

    def __init__(self, n_moves: int = 0, every: int = 10, lower: bool = False):
        self.n_moves, self.every = check_int("outlier_moves", n_moves, 0), int(every)
        self.accepted = self.proposed = self.kept = 0
        self.rows, self.codes, self.lower = [], {}, bool(lower)
        self.extremes, self.lower_rows, self.lower_codes = [], [], []

    def __call__(self, rng, net, theta, burning: bool):
        if self.n_moves:
            theta, k = pair_rotation_moves(rng, net, theta, self.n_moves)
            if not burning:
                self.accepted += k
                self.proposed += self.n_moves
        if not burning:
            if self.kept % self.every == 0:
                self.record(net, theta)
            self.kept += 1
        return theta

    def record(self, net, theta) -> None:
        _, a = net.unpack(theta)
        cm = class_mean_activations(net, theta)[-1]
        o = outlier_stats(a, cm)
        top = top_k_share(output_contributions(a, cm, net.spec.class_sizes), math.ceil(TOP_FRACTION * net.width))
        self.rows.append([o["count"], top, *o["share"].tolist()])
        for code in o["codes"]:
            key = code_key(code, net.spec.m)
            self.codes[key] = self.codes.get(key, 0) + 1
        if self.lower:
            self.record_lower(net, theta, a, cm)

    def record_lower(self, net, theta, a, cm) -> None:
        """The extremes of the last layer and the rows of the layers below (module docstring)."""
        root = math.sqrt(net.width)
        self.extremes.append([float(np.linalg.norm(a, axis=0).max()) / root,
                              float(np.linalg.norm(cm, axis=1).max()) / root])
        phis = net.activations(theta)[:-1]
        if not self.lower_codes:
            self.lower_codes = [{} for _ in phis]
        rows = []
        for phi, codes in zip(phis, self.lower_codes):
            row, out = hidden_layer_row(phi, net.spec.class_sizes)
            rows.append(row)
            for code in out:
                key = code_key(code, net.spec.m)
                codes[key] = codes.get(key, 0) + 1
        self.lower_rows.append(rows)

    def summary(self) -> dict:
        """{"rows": recorded (count, top share, share_c...), "codes": outlier code counts,
        "acceptance": pair-move acceptance after burn-in (None without moves)}; with ``lower`` also
        "extremes" (largest readout and activation norm over √N per record), "lower_rows" (per record, per
        layer ℓ < L, :func:`hidden_layer_row`) and "lower_codes" (per layer ℓ < L, outlier code counts)."""
        out = {"rows": self.rows, "codes": self.codes,
               "acceptance": self.accepted / self.proposed if self.proposed else None}
        if self.lower:
            out.update(extremes=self.extremes, lower_rows=self.lower_rows, lower_codes=self.lower_codes)
        return out


def combine_outliers(summaries: list) -> dict:
    """The JSON block ``outliers`` of several chains' :meth:`LastLayerOutliers.summary`: mean count,
    mean top-5 % output share ("top_share"), mean outlier share of each correct-class output, outlier
    code fractions and the pair-move acceptance ("outlier_move_acceptance", only with moves)."""
    rows = np.array([r for s in summaries for r in s["rows"]])
    codes: dict = {}
    for s in summaries:
        for k, v in s["codes"].items():
            codes[k] = codes.get(k, 0) + v
    n = sum(codes.values())
    acc = [s["acceptance"] for s in summaries if s["acceptance"] is not None]
    out = {"criterion": f"last hidden layer, readout norm > {OUTLIER_FACTOR:g} × median",
           "count": float(rows[:, 0].mean()), "top_share": float(rows[:, 1].mean()),
           "share": rows[:, 2:].mean(axis=0).tolist(),
           "code_fractions": {k: v / n for k, v in sorted(codes.items())} if n else {}}
    if acc:
        out["outlier_move_acceptance"] = float(np.mean(acc))
    return out


def lower_summary(cs: list, keep: float) -> dict:
    """Over the last ``keep`` of the records: the last layer's extremes (largest readout and activation norm
    over √N) and, per layer below, the mean of :func:`validation.deep_outliers.hidden_layer_row`'s row, its
    R̂ (several chains), and the outliers' code fractions (whole run)."""
    n = min(len(c["extremes"]) for c in cs)
    k0 = n - max(int(round(keep * n)), 4)
    ext = np.array([c["extremes"][k0:n] for c in cs])  # chains × k × 2
    low = np.array([c["lower_rows"][k0:n] for c in cs])  # chains × k × (L − 1) × (3 + m)
    out = {"extremes": ext.mean(axis=(0, 1)).tolist(),
           "extremes_rhat": rhat_rank(ext).tolist() if len(cs) > 1 else None, "layers": []}
    for ell in range(low.shape[2]):
        codes: dict = {}
        for c in cs:
            for k, v in c["lower_codes"][ell].items():
                codes[k] = codes.get(k, 0) + v
        tot = sum(codes.values())
        out["layers"].append({"layer": ell + 1, "row": low[:, :, ell].mean(axis=(0, 1)).tolist(),
                              "row_per_chain": low[:, :, ell].mean(axis=1).tolist(),
                              "rhat_row": rhat_rank(low[:, :, ell]).tolist() if len(cs) > 1 else None,
                              "code_fractions": {k: v / tot for k, v in sorted(codes.items())} if tot else {}})
    return out
