"""Entry point: ``solve(spec, method=...) -> SolveResult``.

* Orthogonal class-structured data (any φ): minimise the convex dual G(t)
  over the m×m field (THEORY §3) by Newton (default) or Anderson fixed point.
* Explicit input matrices: linear φ only, by the closed forms of THEORY §2
  (:func:`theory.linear.solve_linear`); other φ on general data are not
  implemented yet and raise a clear error.
"""
from __future__ import annotations

from dataclasses import replace
import time

import numpy as np

from theory.gp import lazy_observables
from theory.linear import solve_linear
from theory.observables import Observables
from theory.spec import ModelSpec, SpecError

from .dual import DualObjective, OutsideDomain
from .fixed_point import fixed_point
from .newton import newton
from .options import LARGE_P_START_MAX_SIGMA_BAR2, SolverOptions
from .problem import ClassProblem
from .result import SolveResult

__all__ = ["solve", "solve_lazy"]


def _solve_matrix_data(spec: ModelSpec, options: SolverOptions, start: float) -> SolveResult:
    if spec.nonlinearity != "linear":
        raise SpecError("explicit inputs (data kind 'matrix') are solved for nonlinearity 'linear' only so far "
                        f"(got {spec.nonlinearity!r}); use orthogonal class-structured data (inputs=None)")
    sol = solve_linear(spec)
    obs = sol.observables()
    return SolveResult(spec=spec, method="closed-form", t=sol.t, observables=obs, success=True, status=0,
                       message="closed form (linear network, THEORY §2)", nit=0, nfev=0,
                       residual_norm=sol.residual, error_estimate=0.0, integrator="closed form",
                       time_seconds=time.perf_counter() - start, extra={"solution": sol})


def _starting_field(spec: ModelSpec, prob: ClassProblem, dual: DualObjective, options: SolverOptions):
    """(t0, note): t = 0, or the large-P solution (THEORY §4, σ̄_a² = P σ_a²) where the finite-P dual is lower.

    In the paper's regime (σ_a² ∝ 1/P, small T) p_t(a) at the solution is a set of sharp modes
    (one per code) hundreds of prior standard deviations from a = 0; Newton from t = 0 needs
    ~20 damped steps through fields where the modes appear, merge and move, while from the
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
    from .large_p import solve_large_p
    from .large_p_problem import LargePProblem
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


def solve(spec: ModelSpec, options: SolverOptions | None = None, *, method: str | None = None,
          progress=None) -> SolveResult:
    """Solve the mean-field saddle point of ``spec``.

    ``method`` overrides ``options.method`` ("newton" or "fixed-point").
    ``progress(iteration, residual)`` is called after every iteration.
    """
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec must be a ModelSpec (got {type(spec).__name__})")
    options = options or SolverOptions()
    if method is not None:
        options = replace(options, method=method)
    start = time.perf_counter()
    if spec.data_kind == "matrix":
        return _solve_matrix_data(spec, options, start)
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
    obs = Observables(outputs=f, readout_moment=U, kernel_diagonal=kd, kernel_blocks=kb,
                      errors={k: mo.error[k] for k in ("outputs", "readout_moment", "kernel_diagonal", "kernel_blocks")})
    message = out.message
    if out.success and not mo.relative_error_estimate <= options.integral_tol:
        where = (f"with {dual.qmc_points} QMC points × {options.qmc_replicates} replicates" if dual.kind == "qmc"
                 else f"at the largest rule (max_order {options.max_order})")
        message += (f"; relative integrator error estimate {mo.relative_error_estimate:.1e} exceeds integral_tol "
                    f"{options.integral_tol:.0e} {where}")
    return SolveResult(spec=spec, method=options.method, t=ev.t, observables=obs, success=out.success,
                       status=out.status, message=message, nit=out.nit, nfev=dual.nfev,
                       residual_norm=ev.residual_norm, error_estimate=mo.error_estimate, integrator=mo.integrator,
                       readout_mean=mo.readout_mean, free_energy=ev.value,
                       time_seconds=time.perf_counter() - start, log=tuple(dual.log), extra=extra)


def solve_lazy(spec: ModelSpec) -> SolveResult:
    """N → ∞ limit of the standard ("lazy", γ = 1/2, β = 1/T) network: the NNGP baseline of THEORY §6
    (:func:`theory.gp.lazy_observables`), in the same result type. ``t`` is the class average of
    (K_GP + T I)⁻¹ Y, so that f = Y − T t as in the mean-field solution."""
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec must be a ModelSpec (got {type(spec).__name__})")
    start = time.perf_counter()
    obs, post = lazy_observables(spec)
    labels = np.repeat(np.arange(spec.m), spec.class_sizes)
    t = np.array([post.t[labels == c].mean(axis=0) for c in range(spec.m)])
    residual = float(np.max(np.abs(post.outputs + spec.temperature * post.t - spec.targets())))
    return SolveResult(spec=spec, method="gp", t=t, observables=obs, success=True, status=0,
                       message=f"NNGP posterior (lazy scaling, THEORY §6), jitter {post.jitter:.1e}",
                       nit=0, nfev=0, residual_norm=residual, error_estimate=0.0, integrator="closed form",
                       time_seconds=time.perf_counter() - start, extra={"scaling": "lazy", "jitter": post.jitter})
