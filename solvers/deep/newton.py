"""Newton–Broyden on the deep class-block residual with the integration proposals held fixed, and the
outer loop that moment-matches the proposals between Newton solves (:mod:`solvers.deep.nonlinear`).
"""
from __future__ import annotations

import numpy as np

from solvers.deep.model import DeepModel
from theory.deep_blocks import Proposal

__all__ = ["SolveLog", "fd_jacobian", "newton", "mix_proposals", "solve_at", "t_only"]


class SolveLog(list):
    """The log lines of one solve (a list of str) and the Newton iterations it spent (``iterations``)."""

    iterations: int = 0


def fd_jacobian(model, x, ev, props, idx):
    """Forward-difference Jacobians of the residual (rows/columns ``idx``) and of the observables."""
    r = ev["residual"][idx]
    J = np.empty((len(idx), len(idx)))
    Jo = np.empty((len(ev["obs"]), len(idx)))
    for j, i in enumerate(idx):
        h = 1e-7 * max(1.0, abs(x[i]))
        xp = x.copy()
        xp[i] += h
        evp = model.safe_eval(xp, props)
        if evp is None:
            xp[i] -= 2 * h
            evp = model.safe_eval(xp, props)
            h = -h
            if evp is None:
                return None, None
        J[:, j] = (evp["residual"][idx] - r) / h
        Jo[:, j] = (evp["obs"] - ev["obs"]) / h
    return J, Jo


def newton(model: DeepModel, x, props, active=None, tol=1e-10, maxiter=30):
    """Newton–Broyden: forward-difference Jacobian, rank-one (good Broyden) updates after steps that
    reduce ||r|| by half or more, a fresh Jacobian otherwise and at the solution; backtracking on
    ||r||₂. ``active``: indices of the unknowns (and equations) solved for. Returns
    (x, ev, J, Jo, ok, nit) with J, Jo fresh finite-difference Jacobians at the returned x."""
    n = len(x)
    idx = np.arange(n) if active is None else np.asarray(active)
    ev = model.safe_eval(x, props)
    if ev is None:
        return x, None, None, None, False, 0
    J, Jo = fd_jacobian(model, x, ev, props, idx)
    fresh = True
    for it in range(1, maxiter + 1):
        if J is None:
            return x, ev, None, None, False, it
        r = ev["residual"][idx]
        if np.max(np.abs(r)) < tol:
            if not fresh:
                J, Jo = fd_jacobian(model, x, ev, props, idx)
            return x, ev, J, Jo, J is not None, it
        step = np.linalg.lstsq(J, -r, rcond=None)[0]
        nr = np.linalg.norm(r)
        alpha, accepted = 1.0, False
        while alpha > 1e-4:
            xn = x.copy()
            xn[idx] += alpha * step
            evn = model.safe_eval(xn, props)
            if evn is not None and np.linalg.norm(evn["residual"][idx]) < (1 - 1e-4 * alpha) * nr:
                accepted = True
                break
            alpha *= 0.5
        if not accepted:
            if fresh:
                ok = bool(np.max(np.abs(r)) < 1e3 * tol)
                return x, ev, J, Jo, ok, it
            J, Jo = fd_jacobian(model, x, ev, props, idx)
            fresh = True
            continue
        rn = evn["residual"][idx]
        if alpha == 1.0 and np.linalg.norm(rn) < 0.5 * nr:
            dx = xn[idx] - x[idx]
            J = J + np.outer(rn - r - J @ dx, dx) / float(dx @ dx)
            fresh = False
            x, ev = xn, evn
        else:
            x, ev = xn, evn
            J, Jo = fd_jacobian(model, x, ev, props, idx)
            fresh = True
    ok = bool(np.max(np.abs(ev["residual"][idx])) < tol)
    if ok and not fresh:
        J, Jo = fd_jacobian(model, x, ev, props, idx)
    return x, ev, J, Jo, ok and J is not None, maxiter


def mix_proposals(a: Proposal, b: Proposal, w: float) -> Proposal:
    return Proposal((1 - w) * a.mean + w * b.mean, (1 - w) * a.chol + w * b.chol)


def solve_at(model: DeepModel, x, props, log, label, rounds=None, tol=None, maxiter=None):
    """Newton with fixed proposals, then moment-match the proposals, until they settle. When Newton
    fails after a proposal update, the update is retried halfway (up to three times), then the
    previous round's solution is returned. Returns (x, ev, J, Jo, proposals) or None."""
    o = model.opt
    inflate = o.inflate if o.inflate is not None else (1.0 if model.exact else 1.5)
    ptol = o.proposal_tol if o.proposal_tol is not None else (1e-9 if model.exact else 0.05)
    tol = tol if tol is not None else (o.tol if model.exact else max(o.tol, 1e-9))
    maxiter = o.maxiter if maxiter is None else maxiter
    out = None
    for rnd in range(rounds or o.max_rounds):
        trial = props
        for shrink in range(4 if out is not None else 1):
            x1, ev, J, Jo, ok, nit = newton(model, x, trial, tol=tol, maxiter=maxiter)
            if isinstance(log, SolveLog):
                log.iterations += nit
            log.append(f"{label}: round {rnd}, Newton {'converged' if ok else 'FAILED'} in {nit} iterations"
                       + (f", max|residual| {np.max(np.abs(ev['residual'])):.1e}" if ev is not None else ""))
            if ok:
                break
            if out is not None:
                trial = [mix_proposals(a, b, 0.5) for a, b in zip(out[4], trial)]
        if not ok:  # the previous round's solution (a fixed point for its own proposals) or None
            return out
        x, props = x1, trial
        out = (x, ev, J, Jo, props)
        new = model.adapt(ev, inflate)
        dist = max(a.distance(b) for a, b in zip(new, props))
        if dist < ptol or rounds is not None:
            return (x, ev, J, Jo, new if rounds is not None else props)
        props = new
    return out  # proposals still moving: the error estimate (alternative rules) covers the mismatch


def t_only(model: DeepModel, x, props):
    x, ev, J, Jo, ok, _ = newton(model, x, props, active=np.arange(model.nt), tol=1e-8, maxiter=30)
    return x if ev is not None else None
