"""Local maxima of a batched log density by vectorised gradient ascent (the mode search of the deep
solver's proposal-coverage check; the log density is :func:`theory.deep_layer.log_integrand`).

Each mode q gets its Laplace mass λ(q) + ½ d log 2π − ½ log det(−∇²λ(q)).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["find_modes"]


def find_modes(fun, starts, iters: int = 150, tol: float = 1e-3):
    """Local maxima of ``fun`` (batch → values) by vectorised gradient ascent with per-point step
    control (forward-difference gradients) from ``starts`` (n, d); returns (modes, values, log
    Laplace masses λ* + ½ log det(2π (−∇²λ)⁻¹), Hessians), duplicates (distance < 10·tol) merged.
    Modes whose Hessian is not negative definite get mass −inf."""
    X = np.array(starts, dtype=np.float64)
    n, d = X.shape
    eye = np.eye(d)
    f = fun(X)
    lr = np.full(n, 0.1)
    h = 1e-5
    for _ in range(iters):
        g = np.stack([(fun(X + h * eye[j]) - f) / h for j in range(d)], axis=1)
        Xn = X + lr[:, None] * g
        fn = fun(Xn)
        up = np.isfinite(fn) & (fn > f)
        X[up], f[up] = Xn[up], fn[up]
        lr = np.where(up, lr * 1.3, lr * 0.5)
        if np.all(lr * np.linalg.norm(g, axis=1) < tol * 1e-2):
            break
    order = np.argsort(-f)
    modes, vals = [], []
    for i in order:
        if np.isfinite(f[i]) and all(np.linalg.norm(X[i] - q) > 10 * tol + 1e-2 for q in modes):
            modes.append(X[i].copy())
            vals.append(f[i])
    masses, hessians = [], []
    e = 1e-3
    for q, v in zip(modes, vals):
        H = np.empty((d, d))
        for i in range(d):
            for j in range(d):
                pts = np.array([q + e * (eye[i] + eye[j]), q + e * (eye[i] - eye[j]), q - e * (eye[i] - eye[j]),
                                q - e * (eye[i] + eye[j])])
                fp = fun(pts)
                H[i, j] = (fp[0] - fp[1] - fp[2] + fp[3]) / (4 * e * e)
        w = np.linalg.eigvalsh(0.5 * (H + H.T))
        hessians.append(0.5 * (H + H.T))
        masses.append(v + 0.5 * d * math.log(2 * math.pi) - 0.5 * float(np.sum(np.log(-w))) if w.max() < 0
                      else -np.inf)
    return np.array(modes), np.array(vals), np.array(masses), hessians
