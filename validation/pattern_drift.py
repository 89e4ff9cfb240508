"""Drift of a one-layer network's neural patterns over sampler time (THEORY §7).

Drift (:func:`pattern_drift`): for class-mean activation vectors x_i(s) ∈ R^m of the same N
neurons at sampler times s and s + Δ,

    D(Δ) = Σ_i |x_i(s+Δ) − x_i(s)|² / Σ_i ⟨|x_j(s+Δ) − x_i(s)|²⟩_j ,

the mean squared change of a neuron's pattern divided by its value for reshuffled neurons (the
average over all pairings, in closed form: mean |y|² + mean |x|² − 2 x̄·ȳ). D = 0: every neuron
keeps its pattern; D ≈ 1: a neuron's pattern is as different from its own earlier pattern as from
a random other neuron's. Neurons enter with the weight of their activity, so for ReLU the value
measures the outliers that carry the code; the value over the bulk alone (outliers, as in
:mod:`validation.sparse`, removed) is reported as well. THEORY §7 and the paper: linear networks
drift, ReLU networks do not, sigmoidal networks do not drift in the last hidden layer.
"""
from __future__ import annotations

import numpy as np

from .sparse import OUTLIER_FACTOR

__all__ = ["pattern_drift", "bulk_mask", "drift_curve", "OUTLIER_FACTOR"]


def pattern_drift(before, after) -> float:
    """D = Σ_i |x_i' − x_i|² / Σ_i ⟨|x_j' − x_i|²⟩_j for the same neurons' patterns x (N × m) before
    and x' after (module docstring): 0 frozen, ≈ 1 as different as reshuffled neurons."""
    x = np.asarray(before, dtype=np.float64)
    y = np.asarray(after, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"before and after must be equal-shaped (N, m) arrays (got {x.shape}, {y.shape})")
    own = np.mean(np.sum((y - x) ** 2, axis=1))
    shuffled = np.mean(np.sum(y * y, axis=1)) + np.mean(np.sum(x * x, axis=1)) - 2.0 * x.mean(0) @ y.mean(0)
    return float(own / shuffled) if shuffled > 0 else 0.0


def bulk_mask(readouts, factor: float = OUTLIER_FACTOR) -> np.ndarray:
    """Neurons whose readout norm is at most ``factor`` × the median (not outliers, validation.sparse)."""
    norms = np.linalg.norm(np.asarray(readouts, dtype=np.float64), axis=0)
    return norms <= factor * np.median(norms)


def drift_curve(snapshots, lags, readouts=None) -> dict:
    """D(Δ) averaged over all start times, for ``snapshots`` (S × N × m, equally spaced in sampler
    time) and ``lags`` in snapshot units. With ``readouts`` (m × N, e.g. of the first snapshot),
    also the bulk-only value (outliers removed, :func:`bulk_mask`). Returns {"lags", "drift",
    "drift_bulk"} (lists; NaN where a lag exceeds the run)."""
    X = np.asarray(snapshots, dtype=np.float64)
    if X.ndim != 3:
        raise ValueError(f"snapshots must be (S, N, m) (got shape {X.shape})")
    mask = bulk_mask(readouts) if readouts is not None else None
    d, db = [], []
    for lag in lags:
        lag = int(lag)
        if lag < 1 or lag >= len(X):
            d.append(float("nan"))
            db.append(float("nan"))
            continue
        d.append(float(np.mean([pattern_drift(X[s], X[s + lag]) for s in range(len(X) - lag)])))
        if mask is not None:
            db.append(float(np.mean([pattern_drift(X[s][mask], X[s + lag][mask]) for s in range(len(X) - lag)])))
    out = {"lags": [int(v) for v in lags], "drift": d}
    if mask is not None:
        out["drift_bulk"] = db
    return out
