"""Damped fixed-point iteration with Anderson mixing.

The fixed-point map is the diagonally preconditioned gradient step

    F(t) = t − D⁻¹ ∇G(t),   D = diag ∇²G(t_k) = T P_c + diag ∇²Φ(t_k),

which for T ≫ curvature is the natural iteration t ← (y − f(t))/T of the
saddle-point equations (THEORY §2). D is refreshed from the Hessian diagonal
every ``REFRESH`` iterations (a diagonal, not a Newton, preconditioner).
Anderson mixing (type II, memory M) extrapolates from the last M residuals;
a step that leaves the domain, is not finite or doubles the best residual
clears the history and halves the damping β (β recovers ×2 on success); if
no damping helps, the residual is at the rule's noise floor and the rule is
refined.
"""
from __future__ import annotations

import numpy as np

from solvers.progress import report
from solvers.finite_p.dual import DualObjective, Outcome, OutsideDomain

__all__ = ["fixed_point"]

REFRESH = 5


def fixed_point(dual: DualObjective, t0: np.ndarray, tol: float, maxiter: int, memory: int = 6,
                progress=None) -> Outcome:
    m = dual.prob.m
    x = np.array(t0, dtype=np.float64).ravel()
    ev = dual.evaluate(x.reshape(m, m), hessian=True)
    dual.update_placement(ev)
    D = np.diag(dual.hessian(ev)).copy()
    beta = 1.0
    dX, dR = [], []
    x_prev = r_prev = None
    best = ev.residual_norm
    nit = 0
    while True:
        if ev.residual_norm <= dual.tolerance(ev, tol):
            ev, state = dual.small_residual_step(ev, tol)
            if state != "continue":
                return Outcome.finished(ev, state, nit)
            # the rule or the barrier changed: restart from the returned point with a fresh history
            x, best, x_prev, r_prev = ev.t.ravel().copy(), ev.residual_norm, None, None
            dX.clear()
            dR.clear()
        if nit >= maxiter:
            return Outcome(ev, False, 1, f"maximum number of iterations ({maxiter}) reached; "
                                         f"residual {ev.residual_norm:.2e}", nit)
        nit += 1
        if nit % REFRESH == 0:
            ev = dual.evaluate(ev.t, hessian=True)
            D = np.diag(dual.hessian(ev)).copy()
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
                if np.isfinite(ev_new.residual_norm) and ev_new.residual_norm <= 2.0 * best:
                    break
            except OutsideDomain:
                pass
            dX.clear()
            dR.clear()
            beta *= 0.5
            x_new = x + beta * r
        else:
            # no damping helps: the residual is at the rule's noise floor, so refine the rule
            if not dual.refine(f"fixed-point safeguard failed at iteration {nit}"):
                return Outcome(ev, False, 2, f"fixed-point safeguard failed at iteration {nit}", nit)
            ev = dual.evaluate(x.reshape(m, m), hessian=False)
            best, x_prev, r_prev, beta = ev.residual_norm, None, None, 1.0
            dX.clear()
            dR.clear()
            continue
        beta = min(1.0, 2.0 * beta)
        x, ev = x_new, ev_new
        best = min(best, ev.residual_norm)
        dual.update_placement(ev)
        report(progress, "fixed-point", nit, total=maxiter, residual=ev.residual_norm)
