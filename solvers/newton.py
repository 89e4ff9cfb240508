"""One damped Newton method for square and bordered systems G(x) = 0, with line search and a domain hook.

Iteration k (k = 0, 1, ..., ``maxiter``):

    r_k = measure(G(x_k))                    (default max_i |G_i(x_k)|)
    converged when r_k <= tol;  stop at k = maxiter
    Δx  = solve(J(x_k), −G(x_k))              (default: LU, least squares where J is singular)
    x_{k+1} = x_k + λ Δx,   λ = 1, 1/2, 1/4, ... > ``min_damping``

With ``line_search=True`` λ is the first value with G(x + λΔx) finite, ``in_domain(x + λΔx)``
true and the Armijo decrease ‖G(x + λΔx)‖₂² <= (1 − 10⁻⁴ λ) ‖G(x)‖₂² (Deuflhard & Hohmann,
Numerical Analysis, §4.4; Nocedal & Wright, Numerical Optimization, §3.1); with
``line_search=False`` the full step λ = 1 is taken (the continuation corrector, where the step
is already controlled by the step length of the continuation).

Two hooks change the stopping rule where a caller needs it:

* ``retry(x)``: called when the line search fails at ``x``; when it returns True the iteration
  counts and Newton goes on from the same ``x`` (a stateful ``jacobian`` such as a Broyden update
  then gives a fresh J there), otherwise the failure is returned.
* ``refine`` (a float ε, with ``line_search=False``): Newton goes on after r_k <= tol and stops at the rounding floor instead:
  full steps are taken while each is at most half the previous step and lowers r, the first that
  does neither is not taken, and the iteration also stops after any step with
  ‖Δx‖₂ <= ε (1 + ‖x‖₂) (converged when r <= tol there). For correctors on nearly singular
  systems, where r <= tol alone accepts points far from the root (Allgower & Georg, ch. 8).

Non-convergence is reported, never raised: :class:`NewtonOutcome` carries ``status`` from
:data:`solvers.results.STATUSES` ("converged", "max-iterations", "line-search-failed",
"outside-domain" for a non-finite residual at the start or after a full step, "not-converged"
for a non-finite Newton step).
"""
from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Callable

import numpy as np

__all__ = ["NewtonOutcome", "damped_newton", "solve_or_lstsq", "lstsq_solver", "max_abs"]


@dataclass(frozen=True)
class NewtonOutcome:
    """The end point of :func:`damped_newton`. ``residual`` is ``measure(G(x))`` at ``x`` (inf when
    G is not finite there); ``evaluations`` counts calls of G. Read-only aliases: ``nit``
    (``iterations``), ``residual_norm`` (``residual``)."""

    x: np.ndarray
    converged: bool
    status: str
    iterations: int
    residual: float
    message: str
    evaluations: int = 0

    nit = property(lambda self: self.iterations, doc="read-only alias of ``iterations``")
    residual_norm = property(lambda self: self.residual, doc="read-only alias of ``residual``")


def max_abs(g: np.ndarray) -> float:
    """max_i |g_i|."""
    return float(np.max(np.abs(g)))


def solve_or_lstsq(A, b):
    """A⁻¹ b by LU; least squares where A is singular or the LU solution is not finite."""
    try:
        z = np.linalg.solve(A, b)
        if np.all(np.isfinite(z)):
            return z
    except np.linalg.LinAlgError:
        pass
    return np.linalg.lstsq(A, b, rcond=None)[0]


def lstsq_solver(rcond: float) -> Callable:
    """Minimum-norm least-squares step (SVD, singular values below rcond·σ_max cut): the step
    where J is singular, e.g. for unknowns that the equations do not determine."""
    def solve(A, b):
        return np.linalg.lstsq(A, b, rcond=rcond)[0]
    return solve


def _line_search(residual, x, dx, g, in_domain, min_damping):
    """(x + λΔx, G there, evaluations) for the first λ = 1, 1/2, ... > min_damping with a finite G
    inside the domain and the Armijo decrease of ‖G‖₂²; (None, None, evaluations) if there is none."""
    lam, g2, nfev = 1.0, float(g @ g), 0
    while lam > min_damping:
        xn = x + lam * dx
        if in_domain is None or in_domain(xn):
            gn = np.asarray(residual(xn), dtype=np.float64)
            nfev += 1
            if np.all(np.isfinite(gn)) and float(gn @ gn) <= (1.0 - 1e-4 * lam) * g2:
                return xn, gn, nfev
        lam *= 0.5
    return None, None, nfev


def _outcome(x, r, tol, it, nfev, why):
    """Stop at x with measure r: converged when r <= tol, else "not-converged" with ``why``."""
    if r <= tol:
        return NewtonOutcome(x, True, "converged", it, r, "converged", nfev)
    return NewtonOutcome(x, False, "not-converged", it, r, f"{why} at max|F| = {r:.2e}", nfev)


def damped_newton(residual: Callable, jacobian: Callable, x0, *, tol: float, maxiter: int,
                  line_search: bool = True, in_domain: Callable | None = None,
                  solve: Callable = solve_or_lstsq, measure: Callable = max_abs,
                  min_damping: float = 1e-6, retry: Callable | None = None,
                  refine: float | None = None) -> NewtonOutcome:
    """Newton on G(x) = 0 from ``x0`` (module docstring); ``residual(x)`` → G, ``jacobian(x)`` → J."""
    if refine is not None and line_search:
        raise ValueError("refine takes full Newton steps: pass line_search=False with it")
    x = np.asarray(x0, dtype=np.float64)
    g = np.asarray(residual(x), dtype=np.float64)
    nfev = 1
    r, prev = math.inf, math.inf
    for it in range(maxiter + 1):
        r = measure(g)
        if not math.isfinite(r):
            return NewtonOutcome(x, False, "outside-domain", it, math.inf, "residual is not finite", nfev)
        polish = refine is not None and r <= tol
        if r <= tol and (not polish or it == maxiter):
            return NewtonOutcome(x, True, "converged", it, r, "converged", nfev)
        if it == maxiter:
            break
        dx = solve(jacobian(x), -g)
        if not np.all(np.isfinite(dx)):
            return _outcome(x, r, tol, it, nfev, "Newton step is not finite")
        if polish:
            size = float(np.linalg.norm(dx))
            if size > 0.5 * prev:
                return _outcome(x, r, tol, it, nfev, "")
            xn = x + dx
            gn = np.asarray(residual(xn), dtype=np.float64)
            nfev += 1
            if not measure(gn) < r:
                return _outcome(x, r, tol, it, nfev, "")
            x, g = xn, gn
        elif line_search:
            xn, gn, count = _line_search(residual, x, dx, g, in_domain, min_damping)
            nfev += count
            if xn is None:
                if retry is not None and retry(x):
                    continue
                return NewtonOutcome(x, False, "line-search-failed", it + 1, r,
                                     f"line search failed at max|F| = {r:.2e}", nfev)
            x, g = xn, gn
        else:
            x = x + dx
            g = np.asarray(residual(x), dtype=np.float64)
            nfev += 1
        if refine is not None:
            prev = float(np.linalg.norm(dx))
            if prev <= refine * (1.0 + float(np.linalg.norm(x))):
                return _outcome(x, measure(g), tol, it + 1, nfev, "Newton step below the refine tolerance")
    return NewtonOutcome(x, False, "max-iterations", maxiter, r,
                         f"maximum iterations ({maxiter}) reached at max|F| = {r:.2e}", nfev)
