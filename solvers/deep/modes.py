"""Local maxima of a batched log density λ(y) (the mode search of the deep solver's proposal-coverage
check; the log density is :func:`theory.deep_layer.log_integrand`).

The search is the shared saddle-free Newton ascent (:func:`solvers.mode_search.ascend`) on
central finite-difference derivatives of λ (:func:`solvers.mode_search.finite_differences`: λ has
no analytic derivatives here). Each mode q gets its Laplace mass
λ(q) + ½ d log 2π − ½ log det(−∇²λ(q)) (:func:`solvers.mode_search.laplace_log_mass`).
"""
from __future__ import annotations

import numpy as np

from solvers.mode_search import ascend, distinct, finite_differences, laplace_log_mass

__all__ = ["find_modes"]


def find_modes(fun, starts, iters: int = 150, tol: float = 1e-3):
    """Local maxima of ``fun`` (batch → values) from ``starts`` (n, d): at most ``iters`` steps of the
    shared ascent (converged when ‖∇λ‖ ≤ 10⁻³ tol (1 + ‖y‖)); returns (modes, values, log Laplace
    masses λ* + ½ log det(2π (−∇²λ)⁻¹), Hessians), best first, duplicates (distance ≤ 10·tol + 10⁻²)
    merged. End points whose Hessian is not negative definite get mass −inf."""
    X = np.array(starts, dtype=np.float64)
    d = X.shape[1]
    derivatives = finite_differences(fun, d)
    run = ascend(derivatives, X, tol=1e-3 * tol, maxiter=iters, radius=1.0)
    keep = np.isfinite(run.S) & ~run.escaped
    found, _ = distinct(run.A, run.S, keep, rel=0.0, atol=10 * tol + 1e-2)
    modes, vals = run.A[found], run.S[found]
    hessians = [0.5 * (H + H.T) for H in run.hess[found]]
    masses = laplace_log_mass(vals, np.array(hessians).reshape(-1, d, d))
    return modes.reshape(-1, d), vals, masses, hessians
