"""Newton's method on the convex dual G(t) (THEORY §2).

Step d = −(∇²G)⁻¹ ∇G, then backtracking from α = 1: a trial point outside
the domain of Φ (q(t) >= 1, or a non-finite integral) is rejected and α
halved; otherwise Armijo's condition G(t + αd) <= G(t) + 10⁻⁴ α ∇G·d is
required. Once the Newton decrement λ² = −∇G·d is too small for G's
rounding to resolve, a step is accepted when it lowers the residual. Starting
from t = 0 (always inside the domain) this converges because G is convex.

When the residual max|f − e + T t| falls below ``tol`` the integrator's error
check runs; if it fails, the rule is refined and Newton continues.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dual import DualObjective, Evaluation, OutsideDomain

__all__ = ["Outcome", "newton", "solve_spd"]


@dataclass
class Outcome:
    evaluation: Evaluation
    success: bool
    status: int
    message: str
    nit: int


def solve_spd(H: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve H x = b for symmetric H, shifting it to positive definite if needed."""
    shift = 0.0
    scale = max(float(np.max(np.abs(np.diag(H)))), 1e-300)
    for _ in range(60):
        try:
            L = np.linalg.cholesky(H + shift * np.eye(len(H)))
            return np.linalg.solve(L.T, np.linalg.solve(L, b))
        except np.linalg.LinAlgError:
            shift = max(2 * shift, 1e-12 * scale)
    raise np.linalg.LinAlgError("Hessian could not be made positive definite")


def _converged_or_refined(dual: DualObjective, ev: Evaluation, tol: float):
    """At small residual: run the error check. Returns (evaluation, done)."""
    checked, ok = dual.verify(ev.t)
    if not ok:
        return dual.evaluate(ev.t), False
    return checked, checked.residual_norm <= tol


def newton(dual: DualObjective, t0: np.ndarray, tol: float, maxiter: int, progress=None) -> Outcome:
    m = dual.prob.m
    t = np.array(t0, dtype=np.float64)
    ev = dual.evaluate(t)
    if dual.update_mapping(ev):
        ev = dual.evaluate(t)
    nit = 0
    while True:
        if ev.residual_norm <= tol:
            ev, done = _converged_or_refined(dual, ev, tol)
            if done:
                return Outcome(ev, True, 0, "converged: residual below tol and integrator error check passed", nit)
        if nit >= maxiter:
            return Outcome(ev, False, 1, f"maximum number of iterations ({maxiter}) reached; "
                                         f"residual {ev.residual_norm:.2e}", nit)
        nit += 1
        g = ev.gradient.ravel()
        d = solve_spd(dual.hessian(ev), -g)
        slope = float(g @ d)  # = −λ²
        alpha = 1.0
        tiny = -slope < 1e-11 * max(1.0, abs(ev.value))
        accepted = None
        for _ in range(50):
            trial = t + alpha * d.reshape(m, m)
            try:
                ev_new = dual.evaluate(trial)
            except OutsideDomain:
                alpha *= 0.5
                continue
            if ev_new.value <= ev.value + 1e-4 * alpha * slope or (tiny and ev_new.residual_norm < ev.residual_norm):
                accepted = ev_new
                break
            alpha *= 0.5
        if accepted is None:
            return Outcome(ev, False, 2, f"line search failed at iteration {nit}; residual {ev.residual_norm:.2e}",
                           nit)
        t, ev = accepted.t, accepted
        if dual.update_mapping(ev):
            ev = dual.evaluate(t)
        if progress is not None:
            progress(nit, ev.residual_norm)
