"""Numerical continuation of solution branches of F(x, p) = 0 (problem-agnostic).

Notation: state x ∈ R^d, scalar parameter p, y = (x, p) ∈ R^{d+1},
J(y) = [F_x  F_p] ∈ R^{d×(d+1)}.

Tangent.  The unit tangent t of the branch solves J t = 0, ‖t‖ = 1, oriented by
t·t_prev > 0; it is computed from the bordered system [J; t_prevᵀ] t = e_{d+1}
and normalised.

Pseudo-arclength step (Keller) of size h from (y_k, t_k):

    predictor   y⁰ = y_k + h t_k
    corrector   Newton on  F(y) = 0,  t_kᵀ (y − y_k) − h = 0,

whose Jacobian [[F_x, F_p], [t_kᵀ]] is nonsingular at regular points and at
simple folds, so folds are passed.  Natural-parameter step: the same corrector
with t_k replaced by n = ±e_p (p fixed at p_k ± h) and predictor
y_k + h t_k / |t_p|; it cannot pass a fold, where t_p → 0.  Step control: grow
by ``grow`` after a Newton solve in ≤ ``fast_newton`` iterations; on failure
(no convergence, corrector moved more than ``max_correction``·h, or the tangent
turned by more than ``max_turn``) shrink by ``shrink`` and retry; stop below
``min_step``.  "Arclength" s is the accumulated step coordinate
Σ t_kᵀ(y_{k+1} − y_k) (Σ |Δp| for natural continuation).

Special points (folds, branch points, stability changes) are detected and located by
:mod:`solvers.special_points`; the corrector and the point analysis live in
:mod:`solvers.pseudo_arclength`; symmetry images of branches in :mod:`solvers.symmetry`.

Branch switching at a simple branch point y*: null J(y*) is 2-D; the new
direction is the unit vector of that plane orthogonal to the old tangent, the
latter taken from the regular points of the branch (never recomputed at y*);
one pseudo-arclength step along it plus Newton lands on the other branch.

Error reporting: every point carries its Newton residual max|F|; every special
point its residual and bracket width.

References: H. B. Keller, "Numerical solution of bifurcation and nonlinear
eigenvalue problems" (1977); E. L. Allgower & K. Georg, Introduction to
Numerical Continuation Methods (SIAM 2003), ch. 2 (predictor-corrector), ch. 6
(step length), ch. 8 (detecting bifurcation points); Yu. A. Kuznetsov, Elements
of Applied Bifurcation Theory (3rd ed. 2004), ch. 10.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
import math
import time
from typing import Callable, Sequence

import numpy as np

from solvers.progress import Progress, report
from solvers.results import Result
from solvers.pseudo_arclength import (FD_STEP, ContinuationOptions, _Problem, _analyse, _crossing_direction,
                                      _Point, _newton, _options, _plain, finite_difference_jacobian)
from solvers.special_points import SpecialPoint, _detect, _TESTS
from solvers.symmetry import SymmetryGroup, branches_equivalent, dedupe_branches

__all__ = ["ContinuationOptions", "SpecialPoint", "Branch", "SymmetryGroup", "continue_branch",
           "switch_branch", "branches_equivalent", "dedupe_branches", "finite_difference_jacobian", "FD_STEP"]


SUCCESS_STATUS = "reached-boundary"


@dataclass(frozen=True, kw_only=True)
class Branch(Result):
    """One traced branch: per-point arrays (n points, state dimension d) and special points.

    The result protocol (:class:`solvers.results.Result`): ``converged`` means the end of the
    parameter range ``p_range`` was reached (``status`` "reached-boundary"); otherwise ``status``
    ("min-step", "max-steps", "boundary-failed", "stopped") and ``message`` say why not.
    ``iterations`` counts the accepted steps, ``residual`` is the largest max|F| over the points
    (``residual_norm`` holds the per-point values), ``error_estimate`` is not estimated (NaN).
    A problem-agnostic branch has no :class:`~theory.observables.Observables` (``observables()``
    raises). ``success`` is a read-only alias of ``converged``.
    """

    p: np.ndarray  # (n,)
    x: np.ndarray  # (n, d)
    arclength: np.ndarray  # (n,)
    step: np.ndarray  # (n,) step size that produced each point (0 for the first)
    newton_iterations: np.ndarray  # (n,)
    residual_norm: np.ndarray  # (n,) max|F| at each point
    stability: np.ndarray  # (n,) number of unstable directions
    det_sign: np.ndarray  # (n,) sign det F_x
    dp_ds: np.ndarray  # (n,) fold test function
    det_augmented: np.ndarray  # (n,) branch-point test function
    tangent: np.ndarray  # (n, d+1)
    special_points: list
    method: str
    p_range: tuple
    options: ContinuationOptions
    n_residual_evaluations: int = 0
    origin: dict = field(default_factory=dict)
    label: str = ""
    equivalent_to: int | None = None  # set by dedupe_branches: index of the representative
    equivalent_action: int | None = None  # index of the symmetry action relating the two

    @property
    def success(self) -> bool:
        return self.converged

    def observables(self):
        raise NotImplementedError("a problem-agnostic branch has states x, not observables; see Branch.x")

    @property
    def folds(self) -> list:
        return [s for s in self.special_points if s.kind == "fold"]

    @property
    def branch_points(self) -> list:
        return [s for s in self.special_points if s.kind == "branch-point"]

    @property
    def max_residual(self) -> float:
        return float(np.max(self.residual_norm))

    def to_json(self) -> dict:
        out = {k: _plain(getattr(self, k)) for k in self.__dataclass_fields__ if k not in ("special_points", "options")}
        out["success"] = self.success
        out["options"] = asdict(self.options)
        out["special_points"] = [s.to_json() for s in self.special_points]
        return out


def _step(prob, y, t, n, h, opts, checked):
    """One predictor-corrector step; returns (point, None) or (None, reason for rejection)."""
    nt = float(n @ t)
    if nt <= 1e-12:
        return None, f"tangent has no component along the step normal (n·t = {nt:.2e}: fold)"
    y_pred = y + (h / nt) * t
    y_new, it, r, ok = _newton(prob, y_pred, n, float(n @ y) + h, opts)
    if not ok:
        return None, f"Newton did not converge (max|F| = {r:.2e} after {it} iterations, tol={opts.tol:g})"
    dist = float(np.linalg.norm(y_new - y_pred))
    if checked and dist > opts.max_correction * h:
        return None, f"corrector moved {dist:.2e} > max_correction·h = {opts.max_correction * h:.2e}"
    new = _analyse(prob, y_new, r, t, sigma=h, h=h, iterations=it, normal=n)
    turn = math.acos(min(1.0, max(-1.0, float(new.tangent @ t))))
    if checked and turn > opts.max_turn:
        return None, f"tangent turned by {turn:.3f} rad > max_turn = {opts.max_turn:g}"
    return new, None


def _trace(prob, start: _Point, window, opts, method, sign_p, progress, from_singular=False):
    """Predictor-corrector loop; returns (points, special points, status, message)."""
    e_p = np.eye(start.y.size)[-1]
    lo_p, hi_p = window
    pts, specials = [start], []
    refs = {} if from_singular else {kind: (np.sign(fn(start)), 0) for kind, fn in _TESTS.items() if fn(start) != 0}
    h = opts.step
    status, message = "max-steps", f"stopped after max_steps={opts.max_steps} steps"
    for k in range(opts.max_steps):
        cur = pts[-1]
        y, t = cur.y, cur.tangent
        n = t if method == "arclength" else sign_p * e_p
        checked = not (from_singular and k == 0)
        new, why = _step(prob, y, t, n, h, opts, checked)
        while new is None and h * opts.shrink >= opts.min_step:
            h *= opts.shrink
            new, why = _step(prob, y, t, n, h, opts, checked)
        if new is None:
            status = "min-step"
            message = f"step size fell below min_step={opts.min_step:g} at p={y[-1]:.10g}: {why}"
            if method == "natural":
                message += (f"; dp/ds = {t[-1]:.3g} here: natural-parameter continuation cannot pass a fold, "
                            "use method='arclength'")
            break
        done = not lo_p <= new.y[-1] <= hi_p
        if done:  # land exactly on the end of the parameter range
            p_b = lo_p if new.y[-1] < lo_p else hi_p
            frac = (p_b - y[-1]) / (new.y[-1] - y[-1])
            if frac <= 0:
                status, message = SUCCESS_STATUS, f"reached the end of the parameter range at p={y[-1]:.10g}"
                break
            y_b, it, r, ok = _newton(prob, y + frac * (new.y - y), e_p, p_b, opts)
            if not ok:
                status = "boundary-failed"
                message = f"Newton failed to land on the range end p={p_b:.10g} (max|F| = {r:.2e})"
                break
            sigma = float(n @ (y_b - y))
            new = _analyse(prob, y_b, r, t, sigma=sigma, h=sigma, iterations=it, normal=n)
            status, message = SUCCESS_STATUS, f"reached the end of the parameter range at p={p_b:.10g}"
        new.s = cur.s + new.h
        pts.append(new)
        if opts.detect:
            specials += _detect(prob, pts, refs, opts, skip=not checked)
        go_on = report(progress, "continuation", k + 1, None, parameter=float(new.y[-1]), x=new.y[:-1].copy(),
                       arclength=new.s, step_size=new.h, newton_iterations=new.iterations, residual_norm=new.residual,
                       stability=new.stability, n_special=len(specials))
        if not go_on and not done:
            status, message = "stopped", f"stopped by the progress callback at p={new.y[-1]:.10g}"
            break
        if done:
            break
        if new.iterations <= opts.fast_newton:
            h = min(h * opts.grow, opts.max_step)
    return pts, specials, status, message


def _branch(prob, trace, method, window, opts, origin, label, start_clock) -> Branch:
    pts, specials, status, message = trace
    Y = np.array([q.y for q in pts])
    T = np.array([q.tangent for q in pts])
    residuals = np.array([q.residual for q in pts])
    return Branch(
        converged=status == SUCCESS_STATUS, status=status, message=message, iterations=len(pts) - 1,
        residual=float(np.max(residuals)), time_seconds=time.perf_counter() - start_clock,
        p=Y[:, -1].copy(), x=Y[:, :-1].copy(), arclength=np.array([q.s for q in pts]),
        step=np.array([q.h for q in pts]), newton_iterations=np.array([q.iterations for q in pts]),
        residual_norm=residuals, stability=np.array([q.stability for q in pts]),
        det_sign=np.array([q.det_sign for q in pts]), dp_ds=T[:, -1].copy(),
        det_augmented=np.array([q.det_augmented for q in pts]), tangent=T, special_points=specials,
        method=method, p_range=tuple(float(v) for v in window), options=opts, n_residual_evaluations=prob.nfev, origin=origin, label=label)


def continue_branch(residual: Callable, x0, p0: float, p_end: float, *, method: str = "arclength",
                    jacobian: Callable | None = None, stability: Callable | None = None,
                    progress: Progress | None = None, tangent=None, label: str = "",
                    options: ContinuationOptions | None = None, **option_overrides) -> Branch:
    """Follow the branch of F(x, p) = 0 through (x0, p0) towards p_end.

    residual(x, p) -> F (d,); jacobian(x, p) -> (F_x (d, d), F_p (d,)) or None for central
    differences (step ``fd_step``); stability(x, p) -> number of unstable directions, default
    #{eigenvalues of F_x with Re > 0}; ``progress`` (:mod:`solvers.progress`) receives the event
    ``("continuation", step, values)`` after every accepted step, values ``parameter``, ``x``,
    ``arclength``, ``step_size``, ``newton_iterations``, ``residual_norm``, ``stability``, ``n_special``;
    returning False stops the run.  method "arclength" (pseudo-arclength, passes
    folds) or "natural" (p stepped monotonically; stops with status "min-step" at a fold).
    The run ends when p leaves the closed range between p0 and p_end (the last point is put
    exactly on it).  x0 is first corrected by Newton at fixed p0.  ``tangent`` (d+1,) orients
    the start (needed only when starting at a fold).  Options: :class:`ContinuationOptions`
    fields as keywords.  Invalid input raises ValueError; failure to reach p_end does not
    (see ``Branch.success``, ``status``, ``message``).
    """
    start_clock = time.perf_counter()
    opts = _options(options, option_overrides)
    if method not in ("arclength", "natural"):
        raise ValueError(f"method must be 'arclength' or 'natural', got {method!r}")
    x0 = np.atleast_1d(np.asarray(x0, dtype=np.float64))
    if x0.ndim != 1 or x0.size == 0 or not np.all(np.isfinite(x0)):
        raise ValueError(f"x0 must be a non-empty finite 1-D array, got shape {x0.shape}")
    p0, p_end = float(p0), float(p_end)
    if not (math.isfinite(p0) and math.isfinite(p_end)):
        raise ValueError(f"p0 and p_end must be finite, got p0={p0}, p_end={p_end}")
    if p_end == p0:
        raise ValueError(f"p_end must differ from p0 (valid range: p_end != {p0}), got p_end={p_end}")
    d = x0.size
    prob = _Problem(residual, jacobian, stability, opts.fd_step, d)
    y0 = np.r_[x0, p0]
    r0 = float(np.max(np.abs(prob.residual(y0))))
    if not math.isfinite(r0):
        raise ValueError(f"residual at the start point (x0, p0={p0}) is not finite: max|F| = {r0}")
    y0, it0, r0, ok = _newton(prob, y0, np.eye(d + 1)[-1], p0, opts)
    if not ok:
        raise ValueError(f"x0 is not a solution at p0={p0}: max|F| = {r0:.3e} after {it0} Newton iterations "
                         f"exceeds tol={opts.tol:g} (valid: max|F| <= tol)")
    sign_p = 1.0 if p_end > p0 else -1.0
    if tangent is None:
        t_ref = np.linalg.svd(prob.jacobian(y0))[2][-1]
        if abs(t_ref[-1]) < 1e-10:
            raise ValueError("the start point is a fold (dp/ds = 0 within 1e-10); pass tangent= (d+1 values) "
                             "to choose the direction")
        t_ref = t_ref * np.sign(t_ref[-1]) * sign_p
    else:
        t_ref = np.asarray(tangent, dtype=np.float64).ravel()
        if t_ref.shape != (d + 1,) or not np.linalg.norm(t_ref) > 0:
            raise ValueError(f"tangent must be a nonzero vector of {d + 1} values (x then p), got {tangent!r}")
    start = _analyse(prob, y0, r0, t_ref, iterations=it0)
    window = (min(p0, p_end), max(p0, p_end))
    trace = _trace(prob, start, window, opts, method, sign_p, progress)
    return _branch(prob, trace, method, window, opts, {"p0": p0, "p_end": p_end}, label, start_clock)


def _regular_tangent(branch: Branch, point: SpecialPoint, gap: float = 1e-6) -> np.ndarray:
    """Tangent of ``branch`` at ``point`` from regular points: linear interpolation in arclength
    between the tangents of the nearest points before and after it that are more than ``gap``
    away (error O(h²) for steps h), or the nearest one-sided tangent at an end of the branch."""
    s, T = np.asarray(branch.arclength, dtype=np.float64), np.asarray(branch.tangent, dtype=np.float64)
    before = np.flatnonzero(s < point.arclength - gap)
    after = np.flatnonzero(s > point.arclength + gap)
    if before.size and after.size:
        i, j = before[-1], after[0]
        w = (point.arclength - s[i]) / (s[j] - s[i])
        return (1.0 - w) * T[i] + w * T[j]
    if before.size or after.size:
        return T[before[-1]] if before.size else T[after[0]]
    raise ValueError("the branch has no regular point away from the branch point to take the old tangent from")


def switch_branch(residual: Callable, branch: Branch, point: SpecialPoint, *, directions: Sequence[int] = (1, -1),
                  jacobian: Callable | None = None, stability: Callable | None = None,
                  progress: Progress | None = None, p_range=None, tangent=None,
                  options: ContinuationOptions | None = None, **option_overrides) -> list:
    """Start the crossing branch at a located branch point and trace it (pseudo-arclength).

    The old tangent t_old is taken from regular points of ``branch``: interpolated in arclength
    between the tangents of the nearest points before and after the branch point (``tangent``
    overrides it).  It is not recomputed at y*: there null J(y*) is 2-D, the bordered system
    [J; t_prevᵀ] t = e_{d+1} is singular and its solution blows up along its null vector, the
    direction of the null plane orthogonal to t_prev, so that "t_new ⟂ that tangent" would run
    along the old branch.
    With J(y*) = U Σ Vᵀ, the last two rows v₁, v₂ of Vᵀ span null J(y*); with
    c = (v₁·t_old, v₂·t_old)/‖t_old‖ (‖c‖ ≥ 0.5 required, else ValueError: not a simple branch
    point) the new direction is t_new = (−c₂ v₁ + c₁ v₂)/‖c‖ (unit, ⟂ t_old in the null plane),
    signed so that its largest component is positive.  One branch is traced per entry of
    ``directions`` (+1: along t_new, −1: against it) within ``p_range`` (default
    ``branch.p_range``), with ``branch.options`` unless overridden.  ``origin`` of each new branch
    records the point, the direction, both tangents and σ_min(J(y*)), which measures how singular
    J is at the located point (0 at an exact branch point).
    """
    if point.kind != "branch-point":
        raise ValueError(f"point.kind must be 'branch-point' to switch branches, got {point.kind!r}")
    if any(s not in (1, -1) for s in directions):
        raise ValueError(f"directions must contain only +1 and -1, got {directions!r}")
    opts = _options(options if options is not None else branch.options, option_overrides)
    window = tuple(branch.p_range if p_range is None else (min(p_range), max(p_range)))
    if not window[0] <= point.p <= window[1]:
        raise ValueError(f"p_range {window} must contain the branch point p={point.p}")
    d = point.x.size
    if tangent is None:
        t_old = _regular_tangent(branch, point)
    else:
        t_old = np.asarray(tangent, dtype=np.float64).ravel()
        if t_old.shape != (d + 1,) or not np.linalg.norm(t_old) > 0:
            raise ValueError(f"tangent must be a nonzero vector of {d + 1} values (x then p), got {tangent!r}")
    prob = _Problem(residual, jacobian, stability, opts.fd_step, d)
    y_star = np.r_[point.x, point.p]
    r_star = float(np.max(np.abs(prob.residual(y_star))))
    t_new, t_old, sv = _crossing_direction(prob.jacobian(y_star), t_old)
    t_new = t_new * (1.0 if t_new[np.argmax(np.abs(t_new))] > 0 else -1.0)
    out = []
    for s in directions:
        start_clock = time.perf_counter()
        start = _analyse(prob, y_star, r_star, tangent=s * t_new)
        trace = _trace(prob, start, window, opts, "arclength", 1.0, progress, from_singular=True)
        origin = {"parent": branch.label, "p": point.p, "x": point.x.copy(), "direction": int(s),
                  "tangent": s * t_new, "old_tangent": t_old, "sigma_min": float(sv[-1])}
        out.append(_branch(prob, trace, "arclength", window, opts, origin,
                           f"{branch.label}>bp@{point.p:.6g}{'+' if s > 0 else '-'}", start_clock))
    return out
