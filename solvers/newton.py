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


def damped_newton(residual: Callable, jacobian: Callable, x0, *, tol: float, maxiter: int,
                  line_search: bool = True, in_domain: Callable | None = None,
                  solve: Callable = solve_or_lstsq, measure: Callable = max_abs,
                  min_damping: float = 1e-6) -> NewtonOutcome:
    """Newton on G(x) = 0 from ``x0`` (module docstring); ``residual(x)`` → G, ``jacobian(x)`` → J."""
    x = np.asarray(x0, dtype=np.float64)
    g = np.asarray(residual(x), dtype=np.float64)
    nfev = 1
    r = math.inf
    for it in range(maxiter + 1):
        r = measure(g)
        if not math.isfinite(r):
            return NewtonOutcome(x, False, "outside-domain", it, math.inf, "residual is not finite", nfev)
        if r <= tol:
            return NewtonOutcome(x, True, "converged", it, r, "converged", nfev)
        if it == maxiter:
            break
        dx = solve(jacobian(x), -g)
        if not np.all(np.isfinite(dx)):
            return NewtonOutcome(x, False, "not-converged", it, r, f"Newton step is not finite at max|F| = {r:.2e}",
                                 nfev)
        if line_search:
            xn, gn, count = _line_search(residual, x, dx, g, in_domain, min_damping)
            nfev += count
            if xn is None:
                return NewtonOutcome(x, False, "line-search-failed", it + 1, r,
                                     f"line search failed at max|F| = {r:.2e}", nfev)
            x, g = xn, gn
        else:
            x = x + dx
            g = np.asarray(residual(x), dtype=np.float64)
            nfev += 1
    return NewtonOutcome(x, False, "max-iterations", maxiter, r,
                         f"maximum iterations ({maxiter}) reached at max|F| = {r:.2e}", nfev)
