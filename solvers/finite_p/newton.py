"""Newton's method on the convex dual G(t) (THEORY §2).

Step d = −(∇²G)⁻¹ ∇G. A step that would leave the domain of Φ is first cut to
99% of the way to the boundary (the interior-point fraction-to-boundary
rule); then backtracking: a trial point outside the domain (q(t) >= 1, or a
non-finite integral) is rejected and α halved; otherwise Armijo's condition
G(t + αd) <= G(t) + 10⁻⁴ α ∇G·d is required, together with, for steps cut by
the boundary, the strong-Wolfe curvature condition ∇G(t + αd)·d <= 0.9 |∇G·d|,
which rejects steps that overshoot the minimiser along d (near the ReLU
domain boundary G turns up within ~1e-11 of it). Once the Newton decrement
λ² = −∇G·d is too small for G's rounding to resolve, a step is accepted when
it lowers the residual. Starting from t = 0 (always inside the domain) this
converges because G is convex.

For linearly growing φ the minimiser can sit within ~1e-8 of the domain
boundary q(t) = 1, with the far tail of p(a) along the marginal directions
carrying an O(1) share of the output (ReLU's condensate, THEORY §4). The
integrators cover the tail out to a fixed radius; the mass beyond is the
condensate, found as the multipliers of a log barrier −ε Σ_j log(1 − q_j(t))
followed from ε = 10⁻² to 10⁻⁸ (three decades per step, each with a
predictor that keeps the multipliers; an interior-point path, in
:meth:`DualObjective.small_residual_step`). For interior solutions the
multipliers vanish as ε → 0; where every margin stays at least
``INTERIOR_MARGIN`` (small P near the boundary), ε keeps shrinking until their
share of f is below 1% of ``tol``.

When the residual max|f − e + T t| (f including the condensate) falls below
``tol`` the integrator's error check runs; if it fails, the rule is refined
and Newton continues. The Hessian of an accepted full step comes from the
same integration pass as its value and gradient.

The error that the residual tolerance leaves in the observables is measured
at the end (:func:`step_response`): one Newton step d from the checked point,
and |obs(t + d) − obs(t)| on the same rule, which to first order in the
residual is the distance to the observables at the minimiser.
"""
from __future__ import annotations

import numpy as np

from solvers.newton import Stop, damped_newton_minimise
from solvers.progress import report
from solvers.finite_p.dual import DualObjective, Outcome, OutsideDomain

__all__ = ["newton", "solve_spd", "step_response"]

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


def _fraction_to_boundary(dual: DualObjective, t: np.ndarray, d: np.ndarray, tau: float = 0.99) -> float:
    """min(1, τ α_max), α_max the largest step keeping q(t + αd) < 1 (interior-point rule).

    For ReLU-like φ the minimiser can lie within 1e-10 of the domain boundary
    (the smoothed condensate, THEORY §4); halving alone would approach it one
    bit per iteration, this rule by a factor 1/(1 − τ).
    """
    if dual.prob.margin(t + d) > 0.0:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if dual.prob.margin(t + mid * d) > 0.0:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-3 * hi:
            break
    return tau * lo


def _accept(search, new, alpha) -> bool:
    """Armijo on G, with the strong-Wolfe curvature condition (c2 = 0.9) where the domain boundary cut
    the step (elsewhere the Newton step cannot overshoot and the test would only see integration
    noise); below G's rounding (tiny decrement) a lower residual suffices."""
    ev, slope = search.point, search.slope
    limited = search.alpha0 < 1.0
    tiny = -slope < 1e-11 * max(1.0, abs(ev.value))
    overshoot = limited and float(new.gradient.ravel() @ search.d.ravel()) > 0.9 * abs(slope)
    return (new.value <= ev.value + 1e-4 * alpha * slope and not overshoot) or (
        tiny and new.residual_norm < ev.residual_norm)


class _Stagnation:
    """The noise-floor rule: no halving of the best residual for 8 steps (once below 1e-3) refines
    the rule; with the most accurate rule the best point is checked and returned."""

    def __init__(self, ev):
        self.reset(ev)

    def reset(self, ev):
        self.best, self.since, self.best_ev = ev.residual_norm, 0, ev

    def after(self, dual, tol, t, ev):
        """None, a new (t, ev) after a refinement, or the final :class:`Stop`."""
        if ev.residual_norm < self.best_ev.residual_norm:
            self.best_ev = ev
        if ev.residual_norm < 0.5 * self.best or self.best > 1e-3:  # far from the solution, slow steps are not noise
            self.best, self.since = min(self.best, ev.residual_norm), 0
            return None
        self.since += 1
        if self.since < 8:
            return None
        self.since = 0
        if dual.refine(f"no progress for 8 iterations at residual {self.best:.1e}"):
            return t, dual.evaluate(t)
        final = dual.evaluate(self.best_ev.t, check=True)
        ok = final.residual_norm <= dual.tolerance(final, tol)
        return Stop(ok, "converged" if ok else "not-converged", "stopped at the integration noise floor "
                    f"(best residual {final.residual_norm:.2e})", final.t, final)


def newton(dual: DualObjective, t0: np.ndarray, tol: float, maxiter: int, progress=None) -> Outcome:
    """Minimise G from t0 (module docstring) with :func:`solvers.newton.damped_newton_minimise`."""
    m = dual.prob.m
    t = np.array(t0, dtype=np.float64)
    ev = dual.evaluate(t)
    if dual.update_placement(ev):
        ev = dual.evaluate(t)
    floor = _Stagnation(ev)

    def evaluate(x, base, k):
        try:  # the first trial is usually accepted: its Hessian comes from the same pass
            return dual.evaluate(x, hessian=k == 0)
        except OutsideDomain:
            return None

    def stop(x, ev, nit):
        if not ev.residual_norm <= dual.tolerance(ev, tol):
            return None
        ev, state = dual.small_residual_step(ev, tol)
        if state != "continue":
            done = Outcome.finished(ev, state, nit)
            return Stop(done.success, "converged" if done.success else "not-converged", done.message, ev.t, ev)
        floor.reset(ev)
        return ev.t, ev

    def direction(x, ev):
        g = ev.gradient.ravel()
        d = solve_spd(dual.hessian(ev), -g)
        return d.reshape(m, m), float(g @ d)  # slope = −λ²

    def retry(search):  # usually the rule is too coarse for G to be consistent: refine it, retry from t
        if not dual.refine(f"line search failed at iteration {search.iteration}"):
            return None
        dual.update_placement(search.point)
        return search.x, dual.evaluate(search.x)

    def after_step(x, ev, alpha, search):
        if dual.update_placement(ev):  # new nodes: G on them, so that the line search compares one function
            ev = dual.evaluate(x)
        report(progress, "newton", search.iteration, total=maxiter, residual=ev.residual_norm)
        return floor.after(dual, tol, x, ev) or (x, ev)

    out = damped_newton_minimise(
        evaluate, t, maxiter=maxiter, start=ev, measure=lambda ev: ev.residual_norm, direction=direction,
        max_step=lambda x, d: _fraction_to_boundary(dual, x, d), accept=lambda new, alpha, search: _accept(
            search, new, alpha), max_trials=16, min_alpha=None, stop=stop, retry=retry, after_step=after_step)
    return _outcome(out, maxiter)


def _outcome(out, maxiter: int) -> Outcome:
    """The :class:`Outcome` (legacy integer status, this solver's messages) of the minimiser's end."""
    ev, nit = out.point, out.iterations
    message = {"max-iterations": f"maximum number of iterations ({maxiter}) reached; residual {ev.residual_norm:.2e}",
               "line-search-failed": f"line search failed at iteration {nit}; residual {ev.residual_norm:.2e}",
               }.get(out.status, out.message)
    return Outcome(ev, out.converged, {"converged": 0, "max-iterations": 1}.get(out.status, 2), message, nit)


def _totals(ev) -> dict:
    """f, U, kernel diagonal and blocks at an evaluation, the condensate included."""
    mo, cond = ev.moments, ev.condensate
    out = {"outputs": mo.outputs, "readout_moment": mo.readout_moment,
           "kernel_diagonal": mo.kernel_diagonal, "kernel_blocks": mo.kernel_blocks}
    if cond is not None:
        out = {"outputs": out["outputs"] + cond.outputs, "readout_moment": out["readout_moment"] + cond.readout_moment,
               "kernel_diagonal": out["kernel_diagonal"] + np.diag(cond.kernel),
               "kernel_blocks": out["kernel_blocks"] + cond.kernel}
    return out


def step_response(dual: DualObjective, ev, order: int | None = None) -> dict | None:
    """|Δ| of f, U and the kernel under the Newton step d = −(∇²G)⁻¹∇G from ``ev``: the distance
    of the observables at ``ev.t`` from those at the minimiser of the discretised G, to first
    order in the residual (the error that the residual tolerance leaves). Measured by one more
    evaluation at t + αd on the rule of ``ev`` (``order``) and divided by α (α < 1 only where the
    domain boundary cuts the step). None if no such evaluation is possible.
    """
    m = dual.prob.m
    d = solve_spd(dual.hessian(ev), -ev.gradient.ravel()).reshape(m, m)
    alpha = _fraction_to_boundary(dual, ev.t, d)
    for _ in range(8):
        try:
            moved = dual.evaluate(ev.t + alpha * d, hessian=False, order=order)
        except OutsideDomain:
            alpha *= 0.5
            continue
        a, b = _totals(ev), _totals(moved)
        return {k: np.abs(b[k] - a[k]) / alpha for k in a}
    return None
