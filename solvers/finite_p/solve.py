"""The exact one-hidden-layer solve on orthogonal class-structured data (THEORY §3).

Minimise the convex dual G(t) = Φ(t) − Σ_μ t_μ·y_μ + (T/2) Σ_μ ||t_μ||² over the m×m class field
by Newton (default) or Anderson fixed point; the moments of the single-neuron readout law come
from :mod:`solvers.finite_p.readout_integral` with their own error estimate.
"""
from __future__ import annotations

import time

import numpy as np

from theory.observables import Observables
from theory.spec import ModelSpec, SpecError

from solvers.finite_p.dual import DualObjective, OutsideDomain
from solvers.finite_p.fixed_point import fixed_point
from solvers.finite_p.newton import newton, step_response
from solvers.finite_p.readout_tensor import TENSOR_RULES, check_order
from solvers.finite_p.problem import ClassProblem
from solvers.options import LARGE_P_START_MAX_SIGMA_BAR2, SolverOptions
from solvers.results import STATUS, SolveResult

__all__ = ["solve_class_data"]


def _starting_field(spec: ModelSpec, prob: ClassProblem, dual: DualObjective, options: SolverOptions):
    """(t0, note): t = 0, or the large-P solution (THEORY §4, σ̄_a² = P σ_a²) where the finite-P dual is lower.

    In the paper's regime (σ_a² ∝ 1/P, small T) p_t(a) at the solution is a set of sharp modes
    (one per code) hundreds of prior standard deviations from a = 0; Newton from t = 0 needs
    many damped steps through fields where the modes appear, merge and move, while from the
    large-P field, which differs from the finite-P one by O(1/P), it converges quadratically
    within a few steps. G is convex, so either start reaches the same minimiser. For ReLU the
    large-P field lies on the domain boundary q = 1 (the condensate); from t = 0 the barrier
    Newton path runs into that curved boundary far from the solution and then creeps along it
    (each step cut by the fraction-to-boundary rule), while from the large-P field it starts
    next to the central path.
    """
    m = spec.m
    zero = np.zeros((m, m))
    start = options.start
    if start == "auto":
        nonlinear = spec.nonlinearity != "linear"
        start = "large-p" if nonlinear and spec.P * spec.sigma_a**2 <= LARGE_P_START_MAX_SIGMA_BAR2 else "zero"
    if start == "zero":
        return zero, "t = 0"
    from solvers.large_p.solve import solve_large_p
    from solvers.large_p.problem import LargePProblem
    try:
        lp = solve_large_p(LargePProblem.from_spec(spec))
    except Exception as exc:  # any failure of the large-P solve only costs the warm start
        return zero, f"t = 0 (large-P solve failed: {exc})"
    t_lp = np.asarray(lp.t, dtype=np.float64)
    if not lp.converged or not np.all(np.isfinite(t_lp)):
        return zero, f"t = 0 (large-P solve did not converge: {lp.message})"
    if prob.margin(t_lp) <= 0.0:  # on the boundary q = 1 (ReLU condensate): step just inside
        t_lp = t_lp * (1.0 - 1e-3)
    try:
        value = dual.evaluate(t_lp, hessian=False).value
    except OutsideDomain:
        return zero, "t = 0 (the large-P field is outside the finite-P domain)"
    if not value < 0.0:  # G(0) = Φ(0) = 0
        return zero, f"t = 0 (G = {value:.3g} at the large-P field is not below G(0) = 0)"
    return t_lp, f"large-P solution (σ̄_a² = {spec.P * spec.sigma_a**2:.3g}, G = {value:.6g} < G(0) = 0)"


def _verdict(out, mo, dual: DualObjective, options: SolverOptions) -> tuple[bool, str, str]:
    """(converged, status, message): the solver's outcome, and whether the stated error bound holds.

    A relative integrator error estimate above ``options.integral_tol`` at the most accurate rule
    is a missed bound: ``converged=False``, status ``"error-bound-missed"``, the reason in the
    message. With QMC the estimate is the replicates' error bar (the residual tolerance is then
    widened to 3 error bars, :meth:`DualObjective.tolerance`), and the points were multiplied
    (up to 16×) only when that could reach the tolerance.
    """
    if not out.success:
        return False, STATUS[out.status], out.message
    err = mo.relative_error_estimate
    if err <= options.integral_tol:
        return True, STATUS[out.status], out.message
    if dual.kind == "qmc":
        return False, "error-bound-missed", (
            f"residual {out.evaluation.residual_norm:.2e} within 3 Monte Carlo error bars, but the relative "
            f"error bar {err:.1e} exceeds integral_tol {options.integral_tol:.0e} with {dual.qmc_points} QMC "
            f"points × {options.qmc_replicates} replicates; loosen integral_tol to the error bar or raise qmc_points")
    return False, "error-bound-missed", (
        f"residual {out.evaluation.residual_norm:.2e} below tol, but the relative integrator error estimate "
        f"{err:.1e} exceeds integral_tol {options.integral_tol:.0e} at the largest rule "
        f"({dual.kind}, max_order {options.max_order}); raise max_order or loosen integral_tol")


_OBSERVABLES = ("outputs", "readout_moment", "kernel_diagonal", "kernel_blocks")


def _errors(dual: DualObjective, ev) -> tuple[dict, float]:
    """Error estimates of f, U and the kernel: the integrator's, plus the observables' response to
    the Newton step that the residual tolerance leaves (:func:`solvers.finite_p.newton.step_response`,
    on the same rule), so that the estimate covers both sources. Also returns the Newton part."""
    mo = ev.moments
    checked = np.isfinite(mo.error_estimate)
    order = check_order(dual.order) if checked and dual.kind in TENSOR_RULES else None
    try:
        resp = step_response(dual, ev, order)
    except (np.linalg.LinAlgError, FloatingPointError):
        resp = None
    if resp is None:  # no step could be evaluated: the Newton part is unknown
        return {k: mo.error[k] + np.inf for k in _OBSERVABLES}, float("inf")
    return {k: mo.error[k] + resp[k] for k in _OBSERVABLES}, float(max(np.max(v) for v in resp.values()))


def solve_class_data(spec: ModelSpec, options: SolverOptions, progress=None, start: float | None = None) -> SolveResult:
    """Minimise the convex dual G(t) of THEORY §3 for orthogonal class-structured data (K0 = I).

    Newton (``options.method == "newton"``) or Anderson fixed point from the starting field of
    :func:`_starting_field`; ``progress`` gets a :class:`solvers.progress.ProgressEvent` (stage
    ``"newton"`` or ``"fixed-point"``, values ``residual``) after every iteration.
    """
    start = time.perf_counter() if start is None else start
    prob = ClassProblem.from_spec(spec)
    dual = DualObjective(prob, options)
    t0, start_note = _starting_field(spec, prob, dual, options)
    runner = newton if options.method == "newton" else fixed_point
    kwargs = {"memory": options.anderson_memory} if options.method == "fixed-point" else {}
    try:
        out = runner(dual, t0, options.tol, options.maxiter, progress=progress, **kwargs)
    except OutsideDomain as exc:  # only if even t = 0 fails: the posterior cannot be normalised
        raise SpecError(f"the single-neuron measure cannot be normalised for this spec ({exc})") from None
    ev = out.evaluation
    mo = ev.moments
    cond = ev.condensate
    f, U, kd, kb = mo.outputs, mo.readout_moment, mo.kernel_diagonal, mo.kernel_blocks
    table = prob.table()
    extra = {"psi_table": {"method": table.method, "error_estimate": table.error_estimate,
                           "max_abs_g": table.gmax}, "start": start_note}
    if cond is not None:
        f, U = f + cond.outputs, U + cond.readout_moment
        kd, kb = kd + np.diag(cond.kernel), kb + cond.kernel
        extra["condensate"] = cond.to_json()
    errors, newton_error = _errors(dual, ev)
    dual.log.append(f"error estimate includes the observables' response to the last Newton step: {newton_error:.1e}")
    obs = Observables(outputs=f, readout_moment=U, kernel_diagonal=kd, kernel_blocks=kb, errors=errors)
    converged, status, message = _verdict(out, mo, dual, options)
    error_estimate = float(max(np.max(v) for v in errors.values()))
    return SolveResult(spec=spec, method=options.method, t=ev.t, observables=obs, converged=converged,
                       status=status, message=message, iterations=out.nit, nfev=dual.nfev,
                       residual=ev.residual_norm, error_estimate=error_estimate, integrator=mo.integrator,
                       readout_mean=mo.readout_mean, free_energy=ev.value,
                       time_seconds=time.perf_counter() - start, log=tuple(dual.log), extra=extra)
