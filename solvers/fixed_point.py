"""Damped fixed-point iteration with Anderson mixing.

The fixed-point map is the diagonally preconditioned gradient step

    F(t) = t − D⁻¹ ∇G(t),   D = diag ∇²G(0) = T P_c + diag ∇²Φ(0),

which for T ≫ curvature is the natural iteration t ← (y − f(t))/T of the
saddle-point equations (THEORY §2). It needs no Hessian beyond the one at
t = 0. Anderson mixing (type II, memory M) extrapolates from the last M
residuals; a step that leaves the domain or raises the residual tenfold
clears the history and halves the damping β.
"""
from __future__ import annotations

import numpy as np

from .dual import DualObjective, OutsideDomain
from .newton import Outcome, _converged_or_refined

__all__ = ["fixed_point"]


def fixed_point(dual: DualObjective, t0: np.ndarray, tol: float, maxiter: int, memory: int = 6,
                progress=None) -> Outcome:
    m = dual.prob.m
    x = np.array(t0, dtype=np.float64).ravel()
    ev0 = dual.evaluate(x.reshape(m, m), hessian=True)
    D = np.diag(dual.hessian(ev0)).copy()
    ev = ev0
    beta = 1.0
    dX, dR = [], []
    x_prev = r_prev = None
    best = ev.residual_norm
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
        r = -ev.gradient.ravel() / D
        if x_prev is not None and memory > 0:
            dX.append(x - x_prev)
            dR.append(r - r_prev)
            if len(dX) > memory:
                dX.pop(0)
                dR.pop(0)
        x_prev, r_prev = x, r
        if dX:
            Xm, Rm = np.array(dX).T, np.array(dR).T
            gamma = np.linalg.lstsq(Rm, r, rcond=None)[0]
            x_new = x + beta * r - (Xm + beta * Rm) @ gamma
        else:
            x_new = x + beta * r
        for _ in range(40):
            try:
                ev_new = dual.evaluate(x_new.reshape(m, m), hessian=False)
                if ev_new.residual_norm <= 10.0 * best:
                    break
            except OutsideDomain:
                pass
            dX.clear()
            dR.clear()
            beta *= 0.5
            x_new = x + beta * r
        else:
            return Outcome(ev, False, 2, f"fixed-point safeguard failed at iteration {nit}", nit)
        x, ev = x_new, ev_new
        best = min(best, ev.residual_norm)
        dual.update_placement(ev)
        if progress is not None:
            progress(nit, ev.residual_norm)
