"""Theory against sampling: extrapolation in 1/N (THEORY §7).

Network estimates differ from the N → ∞ theory by O(N^{-1/2}) noise and an
O(1/N) bias, so each observable measured at several widths is fitted by
weighted least squares to a + b/N; the intercept a and its standard error
give a z-score against the theory.
"""
from __future__ import annotations

import numpy as np

__all__ = ["extrapolate"]


def extrapolate(widths, values, errors):
    """Weighted fit value(N) = a + b/N; returns (a, se(a), b, se(b)), elementwise over trailing dims."""
    widths = np.asarray(widths, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    errors = np.maximum(np.asarray(errors, dtype=np.float64), 1e-300)
    if len(widths) < 2 or values.shape[0] != len(widths) or errors.shape != values.shape:
        raise ValueError("extrapolate needs >= 2 widths and values/errors of shape (len(widths), ...)")
    X = np.stack([np.ones_like(widths), 1.0 / widths], axis=1)  # (k, 2)
    w = 1.0 / errors**2  # (k, ...)
    flat_v = values.reshape(len(widths), -1)
    flat_w = w.reshape(len(widths), -1)
    a, sa, b, sb = (np.empty(flat_v.shape[1]) for _ in range(4))
    for j in range(flat_v.shape[1]):
        A = X.T @ (flat_w[:, j:j + 1] * X)
        cov = np.linalg.inv(A)
        coef = cov @ (X.T @ (flat_w[:, j] * flat_v[:, j]))
        a[j], b[j] = coef
        sa[j], sb[j] = np.sqrt(np.diag(cov))
    shape = values.shape[1:]
    return a.reshape(shape), sa.reshape(shape), b.reshape(shape), sb.reshape(shape)
