"""Outlier neurons of ReLU networks: the sampled side of the condensate (THEORY §4).

In the condensed phase a few neurons carry readouts and preactivations of
order √N while the bulk stays O(1). A neuron is counted as an *outlier* when
its readout norm exceeds ``factor`` (default 4) times the median readout norm
of the population — a scale-free criterion that needs no theory input. For
the outliers we measure

* their share of the correct-class outputs, s_c = Σ_{i ∈ out} a_ci φ̄_ic / (N f_cc),
  with φ̄_ic the mean activation of neuron i on class c and f_cc = Σ_i a_ci φ̄_ic / N;
* their codes (:func:`validation.observables.neuron_codes`);

to compare with the theory's condensate: share λ_j (t_c·â_j)₊ â_jc / f_cc summed over
directions j, and codes {c : t_c·â_j > 0}.
"""
from __future__ import annotations

import numpy as np

from .networks import Network
from .observables import class_mean_activations, neuron_codes

__all__ = ["OUTLIER_FACTOR", "outlier_summary", "outlier_stats", "theory_outlier_share"]

OUTLIER_FACTOR = 4.0


def outlier_summary(net: Network, theta: np.ndarray, factor: float = OUTLIER_FACTOR) -> dict:
    """Outliers of one network state: count, share of each correct-class output, codes (bit masks)."""
    _, a = net.unpack(theta)
    return outlier_stats(a, class_mean_activations(net, theta), factor)


def outlier_stats(a: np.ndarray, cm: np.ndarray, factor: float = OUTLIER_FACTOR) -> dict:
    """:func:`outlier_summary` of a population given by its readouts ``a`` (m × N) and class-mean
    activations ``cm`` (N × m), e.g. the last hidden layer of a deep network."""
    if not factor > 1.0:
        raise ValueError(f"factor must be > 1 (got {factor!r})")
    norms = np.linalg.norm(a, axis=0)
    out = norms > factor * np.median(norms)
    contrib = a.T * cm  # N × m: a_ci φ̄_ic
    total = contrib.sum(axis=0)
    share = np.where(np.abs(total) > 0, contrib[out].sum(axis=0) / np.where(total == 0, 1.0, total), 0.0)
    return {"count": int(out.sum()), "share": share, "codes": neuron_codes(cm[out]).tolist()}


def theory_outlier_share(t: np.ndarray, outputs: np.ndarray, condensate: dict) -> np.ndarray:
    """Condensate share of f_cc: Σ_j λ_j (t_c·â_j)₊ â_jc / f_cc (ReLU; ``condensate`` as in the JSON
    of ``solve``/``solve_large_p``: ``directions`` and ``mass``)."""
    A = np.asarray(condensate["directions"], dtype=np.float64).reshape(-1, len(t))
    lam = np.asarray(condensate["mass"], dtype=np.float64)
    g = np.maximum(A @ np.asarray(t).T, 0.0)  # (j, c): (t_c·â_j)₊
    cond = np.einsum("j,jc,jc->c", lam, g, A)
    return cond / np.diag(outputs)
