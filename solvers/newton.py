"""One damped Newton method with line search and a domain hook, for systems G(x) = 0 and for minimising f(x).

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

The same method minimises a function f (:func:`damped_newton_minimise`, for the convex duals of
THEORY §2 and §4): iteration k,

    converged when measure(∇f(x_k)) <= tol;  stop at k = maxiter
    d   = −(∇²f(x_k))⁻¹ ∇f(x_k)               (or the caller's ``direction``; slope s = ∇f·d < 0)
    α₀  = min(1, step cap)                     (``max_step``: e.g. fraction to the domain boundary)
    x_{k+1} = x_k + α d,   α = α₀, α₀/2, ...   the first with f(x + αd) defined and
              f(x + αd) <= f(x) + 10⁻⁴ α s (+ ``slack``·(1 + |f(x)|))   (Armijo, N&W §3.1)

where a caller may replace the acceptance test (``accept``: e.g. a curvature condition) and the
trial point (``move``: e.g. a projection), and hooks may stop or restart the iteration
(``stop`` before a step, ``after_step`` after one, ``retry`` after a failed line search). Both
methods backtrack with :func:`backtrack`.
"""
from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Callable, NamedTuple

import numpy as np

from solvers.progress import report

__all__ = ["NewtonOutcome", "damped_newton", "damped_newton_minimise", "backtrack", "Point", "Search", "Stop",
           "solve_or_lstsq", "lstsq_solver", "max_abs"]


@dataclass(frozen=True)
class NewtonOutcome:
    """The end point of :func:`damped_newton` or :func:`damped_newton_minimise`. ``residual`` is
    ``measure(G(x))`` (``measure(point)``) at ``x`` (inf when G is not finite there);
    ``evaluations`` counts calls of G (of ``evaluate``). The minimiser also returns the caller's
    ``point`` at ``x`` and the ``damping`` α of its last line search (after a failed one, the first
    α not tried; 0 when none ran; NaN from :func:`damped_newton`). Read-only aliases: ``nit`` (``iterations``), ``residual_norm`` (``residual``)."""

    x: np.ndarray
    converged: bool
    status: str
    iterations: int
    residual: float
    message: str
    evaluations: int = 0
    point: object = None
    damping: float = math.nan

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


def backtrack(trial: Callable, accept: Callable, alpha: float = 1.0, *, max_trials: int | None = None,
              min_alpha: float | None = None, shrink: float = 0.5):
    """Backtracking line search: for α = alpha, shrink·alpha, ... (at most ``max_trials`` values,
    each > ``min_alpha``) the first with ``trial(α, k)`` (k = 0, 1, ...) not None (None: outside the
    domain) and ``accept(p, α)`` for its value p. Returns (p, α, trials); (None, α', trials) with α'
    the first value not tried when there is none."""
    k = 0
    while (min_alpha is None or alpha > min_alpha) and (max_trials is None or k < max_trials):
        p = trial(alpha, k)
        k += 1
        if p is not None and accept(p, alpha):
            return p, alpha, k
        alpha *= shrink
    return None, alpha, k


def _line_search(residual, x, dx, g, in_domain, min_damping):
    """(x + λΔx, G there, evaluations) for the first λ = 1, 1/2, ... > min_damping with a finite G
    inside the domain and the Armijo decrease of ‖G‖₂²; (None, None, evaluations) if there is none."""
    g2, calls = float(g @ g), []

    def trial(lam, k):
        xn = x + lam * dx
        if in_domain is not None and not in_domain(xn):
            return None
        calls.append(k)
        return xn, np.asarray(residual(xn), dtype=np.float64)

    def armijo(p, lam):
        return bool(np.all(np.isfinite(p[1]))) and float(p[1] @ p[1]) <= (1.0 - 1e-4 * lam) * g2

    p, _, _ = backtrack(trial, armijo, min_alpha=min_damping)
    return (None, None, len(calls)) if p is None else (p[0], p[1], len(calls))


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


class Search(NamedTuple):
    """One line search of :func:`damped_newton_minimise`: from ``x`` (the caller's ``point``) along
    ``d`` with slope ∇f·d < 0, first trial α₀ = ``alpha0``, in ``iteration`` (1, 2, ...)."""

    x: np.ndarray
    point: object
    d: object
    slope: float
    alpha0: float
    iteration: int


class Point(NamedTuple):
    """A point of :func:`damped_newton_minimise` where the caller has no type of its own: f, ∇f,
    ∇²f (either may be None where the caller's ``direction`` does not need it) and anything else."""

    value: float
    gradient: np.ndarray | None = None
    hessian: np.ndarray | None = None
    data: object = None


class Stop(NamedTuple):
    """A hook's request to end :func:`damped_newton_minimise` (at ``x``/``point`` if given, else at the
    current iterate), with ``status`` from :data:`solvers.results.STATUSES`."""

    converged: bool
    status: str
    message: str
    x: np.ndarray | None = None
    point: object = None


def _newton_direction(x, p):
    """d = −(∇²f)⁻¹∇f from a point with ``gradient`` and ``hessian`` (gradient of x's shape)."""
    g = np.asarray(p.gradient, dtype=np.float64)
    d = solve_or_lstsq(p.hessian, -g.ravel())
    return d.reshape(g.shape), float(g.ravel() @ d)


def _gradient_norm(p) -> float:
    return max_abs(np.asarray(p.gradient))


def _hook(got, x, p):
    """(x, point, Stop or None) after a hook returned None, a Stop or a new (x, point)."""
    if got is None:
        return x, p, None
    if isinstance(got, Stop):
        return x, p, got
    return got[0], got[1], None


def damped_newton_minimise(evaluate: Callable, x0, *, maxiter: int, tol: float | None = None,
                           measure: Callable = _gradient_norm, direction: Callable = _newton_direction,
                           max_step: Callable | None = None, move: Callable | None = None,
                           accept: Callable | None = None, armijo: float = 1e-4, slack: float = 0.0,
                           max_trials: int | None = None, min_alpha: float | None = 1e-10,
                           start=None, stop: Callable | None = None, retry: Callable | None = None,
                           after_step: Callable | None = None, progress=None,
                           stage: str = "newton") -> NewtonOutcome:
    """Damped Newton minimisation of f from ``x0`` (module docstring).

    ``evaluate(x, base, k)`` → the caller's point at x (an object with ``value`` = f(x), and for the
    defaults ``gradient`` and ``hessian``), or None where f is not defined; ``base`` is the point the
    line search starts from (None at x0), k the index of the trial in it. ``start``: the point at x0
    if already evaluated. ``measure(point)`` → the residual compared with ``tol`` (default
    max|∇f|; ``tol=None``: only the hooks stop). ``direction(x, point)`` → (d, ∇f·d), the iteration
    stopping ("not-converged") unless ∇f·d < 0. ``max_step(x, d)`` → α₀; ``move(x, d, α)`` → the
    trial point (default x + αd); ``accept(point, α, search)`` replaces the Armijo test
    (``search``: :class:`Search`). At most ``max_trials`` trials, each α > ``min_alpha``.
    Hooks return None (go on), a :class:`Stop`, or a new (x, point) to go on from:
    ``stop(x, point, k)`` before step k + 1, ``after_step(x, point, α, search)`` after an accepted
    step, ``retry(search)`` after a failed line search (None: stop, "line-search-failed").
    ``progress`` (:mod:`solvers.progress`) gets (``stage``, k, maxiter, residual) after each step.
    """
    x = np.array(x0, dtype=np.float64)
    p = evaluate(x, None, 0) if start is None else start
    nfev, it, damping = int(start is None), 0, 0.0
    if p is None:
        return NewtonOutcome(x, False, "outside-domain", 0, math.inf, "the start is outside the domain", nfev, None, 0.0)

    def finish(converged, status, message, at_x=None, at_p=None):
        xe, pe = (x, p) if at_p is None else (x if at_x is None else at_x, at_p)
        return NewtonOutcome(xe, converged, status, it, measure(pe), message, nfev, pe, damping)

    while True:
        x, p, halt = _hook(stop(x, p, it) if stop is not None else None, x, p)
        if halt is not None:
            return finish(*halt)
        if tol is not None and measure(p) <= tol:
            return finish(True, "converged", "converged")
        if it >= maxiter:
            return finish(False, "max-iterations", f"maximum iterations ({maxiter}) reached at residual "
                                                   f"{measure(p):.2e}")
        d, slope = direction(x, p)
        if not slope < 0.0:
            return finish(False, "not-converged", f"no descent direction after {it} iterations")
        it += 1
        search = Search(x, p, d, slope, 1.0 if max_step is None else max_step(x, d), it)

        def trial(alpha, k, search=search):
            nonlocal nfev
            xn = search.x + alpha * search.d if move is None else move(search.x, search.d, alpha)
            nfev += 1
            pn = evaluate(xn, search.point, k)
            return None if pn is None else (xn, pn)

        def armijo_test(new, alpha, search=search):
            if accept is not None:
                return accept(new[1], alpha, search)
            base = search.point.value
            return new[1].value <= base + armijo * alpha * search.slope + slack * (1.0 + abs(base))

        new, damping, _ = backtrack(trial, armijo_test, search.alpha0, max_trials=max_trials, min_alpha=min_alpha)
        if new is None:
            got = retry(search) if retry is not None else None
            x, p, halt = _hook(got or Stop(False, "line-search-failed", f"line search failed at iteration {it}"), x, p)
            if halt is not None:
                return finish(*halt)
            continue
        x, p, halt = _hook(after_step(new[0], new[1], damping, search) if after_step is not None else None, *new)
        if halt is not None:
            return finish(*halt)
        if progress is not None:
            report(progress, stage, it, total=maxiter, residual=measure(p))
