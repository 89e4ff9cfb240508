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
  (:mod:`validation.coding_scheme`; a dense population has s_k <= 0.28, a sparse one > 1/2).
"""
from __future__ import annotations

import math

import numpy as np

from theory.checks import check_int
from theory.codes import code_string

from .coding_scheme import TOP_FRACTION, output_contributions, top_k_share
from .deep_observables import class_mean_activations
from .outlier_moves import pair_rotation_moves
from .sparse import OUTLIER_FACTOR, outlier_stats

__all__ = ["LastLayerOutliers", "combine_outliers"]


class LastLayerOutliers:
    """``after_sweep`` hook (module docstring): ``n_moves`` pair rotations of W^L per sweep and the
    last layer's outlier statistics every ``every`` sweeps after burn-in; :meth:`summary` gives them."""

    def __init__(self, n_moves: int = 0, every: int = 10):
        self.n_moves, self.every = check_int("outlier_moves", n_moves, 0), int(every)
        self.accepted = self.proposed = self.kept = 0
        self.rows, self.codes = [], {}

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
            key = code_string([(code >> c) & 1 for c in range(net.spec.m)])
            self.codes[key] = self.codes.get(key, 0) + 1

    def summary(self) -> dict:
        """{"rows": recorded (count, top share, share_c...), "codes": outlier code counts,
        "acceptance": pair-move acceptance after burn-in (None without moves)}."""
        return {"rows": self.rows, "codes": self.codes,
                "acceptance": self.accepted / self.proposed if self.proposed else None}


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
