"""Drift of the deep network's neural patterns over sampler time, per hidden layer (THEORY §7).

For the class-mean activation vectors v_i(s) ∈ R^m of neuron i at sampler time s,

    D(Δ) = mean_i ||v_i(s+Δ) − v_i(s)||² / mean_{i≠j} ||v_i(s) − v_j(s)||²,

averaged over s: 0 = frozen patterns, ≈ 1 = neurons as different from their own past as from a
random other neuron (fully reshuffled). (:func:`validation.coding.pattern_drift` uses the
reshuffle across the two times instead of within one; for stationary chains the two agree up to
O(1/N).) Neurons enter with the weight of their activity; :func:`measure_drift` also reports
the strongly active neurons (pattern norm > 4 × median: the code carriers of a sparse code) and
the bulk separately.
"""
from __future__ import annotations

import numpy as np

from theory.spec import ModelSpec

from .deep_chain import run_deep_chain

__all__ = ["layer_drift", "drift_curve", "active_mask", "measure_drift"]


def layer_drift(before, after) -> float:
    """D = mean_i ||v_i' − v_i||² / mean_{i≠j} ||v_i − v_j||² for patterns v (N × m) before and v' after."""
    x = np.asarray(before, dtype=np.float64)
    y = np.asarray(after, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"before and after must be equal-shaped (N >= 2, m) arrays (got {x.shape}, {y.shape})")
    N = x.shape[0]
    own = float(np.mean(np.sum((y - x) ** 2, axis=1)))
    sx = x.sum(axis=0)
    pairs = (2.0 * N * float(np.sum(x * x)) - 2.0 * float(sx @ sx)) / (N * (N - 1))
    return own / pairs if pairs > 0 else 0.0


def drift_curve(snapshots, lags, mask=None) -> list:
    """D(Δ) averaged over start times for ``snapshots`` (S × N × m, equally spaced); ``lags`` in
    snapshot units (NaN where a lag is not shorter than the run). ``mask`` (N booleans): only
    those neurons (e.g. :func:`active_mask`)."""
    X = np.asarray(snapshots, dtype=np.float64)
    if X.ndim != 3:
        raise ValueError(f"snapshots must be (S, N, m) (got shape {X.shape})")
    if mask is not None:
        X = X[:, np.asarray(mask, dtype=bool)]
    out = []
    for lag in lags:
        lag = int(lag)
        if lag < 1 or lag >= len(X) or X.shape[1] < 2:
            out.append(float("nan"))
        else:
            out.append(float(np.mean([layer_drift(X[s], X[s + lag]) for s in range(len(X) - lag)])))
    return out


def active_mask(patterns, factor: float = 4.0) -> np.ndarray:
    """Neurons whose pattern norm ||v_i|| exceeds ``factor`` × the median norm (the few strongly
    active, code-carrying neurons of a sparse code); ``~active_mask`` is the bulk."""
    nn = np.linalg.norm(np.asarray(patterns, dtype=np.float64), axis=1)
    return nn > factor * np.median(nn)


def measure_drift(spec: ModelSpec, width: int, layers: int = 2, sweeps: int = 2500, burn: int = 500,
                  lags=(1, 3, 10, 30, 100), snapshot_every: int = 10, seed: int = 0, sigmas=None,
                  step_size: float = 0.1, active_factor: float = 4.0) -> dict:
    """Drift per hidden layer over sampler time (module docstring), one chain from the prior.

    Snapshots of every layer's class-mean activations every ``snapshot_every`` sweeps after
    ``burn`` (step adapted during burn-in, then frozen); D(Δ) at ``lags`` (in snapshots, reported
    in sweeps too) for all neurons, for the strongly active ones (:func:`active_mask` of the
    first snapshot; NaN with fewer than 3) and for the rest (bulk). Returns {"lags_sweeps",
    "step_size", "acceptance", "layers": [{"layer", "all", "active", "bulk", "n_active"}]}.
    """
    r = run_deep_chain(spec, width, layers, sweeps, burn, seed=seed, sigmas=sigmas, step_size=step_size,
                       snapshot_every=snapshot_every, codes_every=0)
    out = []
    for ell, X in enumerate(r["snapshots"], start=1):
        act = active_mask(X[0], active_factor)
        out.append({"layer": ell, "all": drift_curve(X, lags),
                    "active": drift_curve(X, lags, act) if act.sum() >= 3 else [float("nan")] * len(lags),
                    "bulk": drift_curve(X, lags, ~act), "n_active": int(act.sum())})
    return {"lags_sweeps": [int(lag) * snapshot_every for lag in lags], "step_size": r["step_size"],
            "acceptance": r["acceptance"], "layers": out}
