"""Symmetry-breaking transition curves of a large-P phase diagram, followed by continuation (THEORY §4).

On the side of a located transition with fewer readout groups, the occupied branches a_γ are local
maxima of S; the transition is where τ = max_γ λ_max(∇²_a S(a_γ; t)) reaches 0. With the branches
continued by Newton on the branch equations, τ(x; y) = 0 is one equation for x with parameter y,
followed by pseudo-arclength continuation (:func:`solvers.continuation.continue_branch`).
"""
from __future__ import annotations

import numpy as np

from solvers.continuation import continue_branch
from solvers.large_p.solve import solve_large_p
from solvers.large_p.branches import branch_system, newton_branches
from solvers.large_p.problem import LargePProblem

__all__ = ["trace_transition", "same_curve"]


def trace_transition(problem: LargePProblem, x_name: str, y_name: str, point: dict, y_range, *,
                     progress=None) -> dict:
    """Follow a symmetry-breaking transition curve through the (x, y) plane by continuation.

    On the side of ``point`` (a located transition of :func:`phase_row`) with fewer groups, the
    occupied branches a_γ are local maxima of S; the transition is where the largest Hessian
    eigenvalue τ = max_γ λ_max(∇²_a S(a_γ; t)) reaches 0. With the branches continued by Newton
    on the branch equations (warm, no global search), τ(x; y) = 0 is a scalar equation for x
    with parameter y, followed by pseudo-arclength continuation (:func:`continue_branch`) from
    the bisected x* at the point's row to both ends of ``y_range``. Returns
    {"x": [...], "y": [...], "kind": "transition (continued)", "success": bool, "message": str}.
    """
    left_fewer = point["left_groups"] <= point["right_groups"]
    lo, hi = sorted(point["bracket"])
    x_side = lo if (left_fewer == (point["bracket"][0] == lo)) else hi
    base = problem.with_parameter(y_name, point["y"])
    sol = solve_large_p(base.with_parameter(x_name, x_side))
    A = np.array([b.a for b in sol.branches])
    P = np.array([b.occupation for b in sol.branches])
    start_state = branch_system(base, len(P)).pack(sol.t, A, P)
    # branch equations are solved from the state at the last accepted continuation step (the anchor):
    # near τ = 0 their Jacobian is singular, so a start from a rejected trial point can run away
    state = {"anchor": start_state.copy(), "last": start_state.copy()}

    def tau(xv, y):
        prob = problem.with_parameter(y_name, y).with_parameter(x_name, float(xv[0]))
        system = branch_system(prob, len(P))
        for x0 in (state["anchor"], start_state):
            out = newton_branches(system, x0)
            if out.converged:
                break
        else:
            return np.array([np.nan])
        state["last"] = out.x
        t, A_, _ = system.unpack(out.x)
        _, _, hess = prob.action(A_, t, order=2)
        return np.array([np.max(np.linalg.eigvalsh(hess)[:, -1])])

    def accepted(event):
        state["anchor"] = state["last"].copy()
        return None if progress is None else progress(event)

    x_star = float(point["x"])
    curves_x, curves_y, ok, notes = [], [], True, []
    for y_end in (min(y_range), max(y_range)):
        if y_end == point["y"]:
            continue
        state["anchor"] = start_state.copy()
        br = continue_branch(tau, [x_star], point["y"], y_end, method="arclength", progress=accepted,
                             step=0.02 * abs(y_end - point["y"]) + 1e-6,
                             max_step=0.1 * abs(y_end - point["y"]) + 1e-6)
        ok = ok and br.success
        notes.append(br.message)
        xs, ys = br.x[:, 0].tolist(), br.p.tolist()
        if y_end < point["y"]:
            curves_x, curves_y = xs[::-1] + curves_x, ys[::-1] + curves_y
        else:
            curves_x, curves_y = curves_x + xs[1:] if curves_x else xs, curves_y + ys[1:] if curves_y else ys
    return {"x": curves_x, "y": curves_y, "kind": "transition (continued)", "success": ok,
            "message": "; ".join(notes)}


def same_curve(a: dict, b: dict, tol: float = 1e-6) -> bool:
    """Two traced curves x(y) that coincide where their y ranges overlap."""
    ya, xa, yb, xb = (np.asarray(v, dtype=np.float64) for v in (a["y"], a["x"], b["y"], b["x"]))
    ia, ib = np.argsort(ya), np.argsort(yb)
    lo, hi = max(ya.min(), yb.min()), min(ya.max(), yb.max())
    if hi < lo:
        return False
    grid = np.linspace(lo, hi, 9)
    return bool(np.max(np.abs(np.interp(grid, ya[ia], xa[ia]) - np.interp(grid, yb[ib], xb[ib])))
                <= tol * (1 + np.max(np.abs(xa))))
