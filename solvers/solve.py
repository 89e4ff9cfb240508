"""Entry point: ``solve(spec, method=...) -> SolveResult`` (one result type for every method).

* Orthogonal class-structured data (any φ): the convex dual G(t) of THEORY §3, minimised by
  Newton (default) or Anderson fixed point (:func:`solvers.finite_p.solve.solve_class_data`).
* Explicit input matrices: linear φ by the closed forms of THEORY §2
  (:func:`solvers.data.linear.solve_linear`); other φ on explicit inputs use
  :func:`solvers.data.solve.solve_general`.
* ``solve_lazy``: the NNGP baseline of THEORY §6 in the same result type.
"""
from __future__ import annotations

from dataclasses import replace
import time

import numpy as np

from theory.checks import check_float
from theory.gp import lazy_observables
from theory.spec import ModelSpec, SpecError

from solvers.finite_p.solve import solve_class_data
from solvers.options import SolverOptions
from solvers.results import SolveResult

__all__ = ["solve", "solve_lazy", "LAZY_TOL"]


def _solve_matrix_data(spec: ModelSpec, options: SolverOptions, start: float) -> SolveResult:
    if spec.nonlinearity != "linear":
        raise SpecError("explicit inputs (data kind 'matrix') are solved for nonlinearity 'linear' only so far "
                        f"(got {spec.nonlinearity!r}); use orthogonal class-structured data (inputs=None)")
    sol = solve_linear(spec)
    obs = sol.observables()
    return SolveResult(spec=spec, method="closed-form", t=sol.t, observables=obs, converged=sol.converged,
                       status=sol.status, message=f"closed form (linear network, THEORY §2): {sol.message}",
                       iterations=0, nfev=0,
                       residual=sol.residual, error_estimate=0.0, integrator="closed form",
                       time_seconds=time.perf_counter() - start, extra={"solution": sol})


def solve(spec: ModelSpec, options: SolverOptions | None = None, *, method: str | None = None,
          progress=None) -> SolveResult:
    """Solve the mean-field saddle point of ``spec``.

    ``method`` overrides ``options.method`` ("newton" or "fixed-point").
    ``progress`` (the protocol of :mod:`solvers.progress`) gets ``ProgressEvent(stage, iteration,
    maxiter, {"residual": ...})`` after every iteration, stage ``"newton"`` or ``"fixed-point"``.
    """
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec must be a ModelSpec (got {type(spec).__name__})")
    options = options or SolverOptions()
    if method is not None:
        options = replace(options, method=method)
    start = time.perf_counter()
    if spec.data_kind == "matrix":
        return _solve_matrix_data(spec, options, start)
    return solve_class_data(spec, options, progress=progress, start=start)


#: Residual tolerance of the lazy (NNGP) solve, the default ``tol`` of :class:`SolverOptions`.
LAZY_TOL = SolverOptions.tol


def solve_lazy(spec: ModelSpec, *, tol: float = LAZY_TOL) -> SolveResult:
    """N → ∞ limit of the standard ("lazy", γ = 1/2, β = 1/T) network: the NNGP baseline of THEORY §6
    (:func:`theory.gp.lazy_observables`), in the same result type. ``t`` is the class average of
    (K_GP + T I)⁻¹ Y, so that f = Y − T t as in the mean-field solution.

    The residual max|f + T t − Y| of the GP solve (rounding, plus jitter·|t| when the Cholesky
    factorisation needed jitter) is the error estimate of f; ``converged`` when it is at most
    ``tol``, else status ``"error-bound-missed"``.
    """
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec must be a ModelSpec (got {type(spec).__name__})")
    tol = check_float("tol", tol, 0.0, 1.0, lo_open=True, hi_open=True)
    start = time.perf_counter()
    obs, post = lazy_observables(spec)
    labels = np.repeat(np.arange(spec.m), spec.class_sizes)
    t = np.array([post.t[labels == c].mean(axis=0) for c in range(spec.m)])
    residual = float(np.max(np.abs(post.outputs + spec.temperature * post.t - spec.targets())))
    converged = residual <= tol
    message = f"NNGP posterior (lazy scaling, THEORY §6), jitter {post.jitter:.1e}, residual {residual:.1e}"
    message += f" <= tol {tol:.0e}" if converged else f" exceeds tol {tol:.0e}"
    return SolveResult(spec=spec, method="gp", t=t, observables=obs, converged=converged,
                       status="converged" if converged else "error-bound-missed", message=message,
                       iterations=0, nfev=0, residual=residual, error_estimate=residual, integrator="closed form",
                       time_seconds=time.perf_counter() - start, extra={"scaling": "lazy", "jitter": post.jitter})
