"""Codes of neurons and the coding vocabulary of the paper's Table 1 (THEORY §1).

A neuron's *code* is the set of classes that activate it: class c is in the code when the
neuron's class-mean |activation| exceeds ``CODE_THRESHOLD`` × its largest class-mean
|activation| (a scale-free rule; silent neurons get the empty code). Codes are stored as bit
masks (bit c for class c) and printed as strings of 0/1 per class ("110"), or of "+"/"-"/"0"
when a sign matters (odd φ).

Reference: A. van Meegen and H. Sompolinsky, Nat. Commun. 16, 3354 (2025), Table 1.
"""
from __future__ import annotations

import numpy as np

__all__ = ["CODE_THRESHOLD", "neuron_codes", "code_fractions", "code_fraction_difference", "code_string", "participation_ratio",
           "split_layer_vector"]

#: a class activates a neuron when its class-mean |activation| exceeds this fraction of the
#: neuron's largest class-mean |activation|
CODE_THRESHOLD = 0.5


def neuron_codes(class_means: np.ndarray, threshold: float = CODE_THRESHOLD) -> np.ndarray:
    """Each neuron's code as a bit mask: bit c set when |φ̄_ic| > threshold · max_d |φ̄_id|
    (silent neurons, max_d |φ̄_id| <= 1e-12, get code 0)."""
    mag = np.abs(np.asarray(class_means, dtype=np.float64))
    top = mag.max(axis=1, keepdims=True)
    active = (mag > threshold * top) & (top > 1e-12)
    return active.astype(np.int64) @ (1 << np.arange(mag.shape[1]))


def code_fractions(codes: np.ndarray, m: int) -> dict:
    """Fraction of neurons per code, keyed by the code as a string of 0/1 per class ("110")."""
    codes = np.asarray(codes)
    return {"".join("1" if (k >> c) & 1 else "0" for c in range(m)): float(np.mean(codes == k))
            for k in range(1 << m) if np.any(codes == k)}


def code_fraction_difference(a: dict, b: dict) -> float:
    """Largest |a[code] − b[code]| over the codes of either (missing codes count as 0)."""
    return max(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in set(a) | set(b))


def code_string(class_means, signed: bool = False, threshold: float = CODE_THRESHOLD,
                silent: float = 1e-6) -> str:
    """The code of one group of neurons with class-mean activations ``class_means`` (length m):
    "1"/"0" per class, or "+"/"-"/"0" when ``signed``; all zeros when max |φ̄_c| <= ``silent``."""
    v = np.asarray(class_means, dtype=np.float64)
    top = float(np.max(np.abs(v))) if v.size else 0.0
    if top <= silent:
        return "0" * len(v)
    if signed:
        return "".join("+" if x > threshold * top else "-" if x < -threshold * top else "0" for x in v)
    top = float(np.max(v))
    return "".join("1" if x > threshold * top else "0" for x in v)


def participation_ratio(contributions) -> float:
    """PR = (Σ_i c_i)² / (N Σ_i c_i²) for neuron contributions c_i: 1 when all neurons carry the
    output equally (analog, redundant), ~k/N when k neurons carry it (sparse)."""
    c = np.abs(np.asarray(contributions, dtype=np.float64))
    s2 = float(np.sum(c * c))
    return float(c.sum() ** 2 / (len(c) * s2)) if s2 > 0 else 0.0


def split_layer_vector(v, m: int, layers: int) -> dict:
    """Unpack the flat per-layer observables vector [f (m²), U (m²), then per layer the kernel
    diagonal (m) and kernel blocks (m²)] into {"outputs", "readout_moment", "layers": [{...}]}."""
    v = np.asarray(v)
    mm = m * m
    out = {"outputs": v[:mm].reshape(m, m), "readout_moment": v[mm:2 * mm].reshape(m, m), "layers": []}
    k = 2 * mm
    for _ in range(layers):
        out["layers"].append({"kernel_diagonal": v[k:k + m], "kernel_blocks": v[k + m:k + m + mm].reshape(m, m)})
        k += m + mm
    return out
