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

Test functions, evaluated at every accepted point:

    fold          ψ_F = t_p = dp/ds                 (sign change at a simple fold)
    branch point  ψ_B = det [[F_x, F_p], [tᵀ]]      (sign change at a simple branch
                                                     point, none at a simple fold)

plus sign det F_x (changes at both) and the number of unstable directions.  A
sign change between consecutive points k, k+1 is located by secant-bisection on
the step coordinate σ ∈ [0, h_k] (the point on the hyperplane
n_kᵀ(y − y_k) = σ, found by Newton from an interpolating predictor) until the
bracket is narrower than ``locate_tol``; the located point lies inside the
reported bracket.  ψ_B with the tangent computed at the point equals
sign(D)·‖adj [J; t_kᵀ] e_{d+1}‖, D = det [J; t_kᵀ], which jumps rather than
passing through zero at a branch point (the bordered system is singular
there), so branch points are located on the smooth D (same sign, simple zero)
and the points are corrected by a truncated-SVD Newton (``_correct``: near y* the
residual is flat, max|F| = O(δ·ε) at distance δ from y* and ε off the branch).
The tangent recorded at a branch point is the old branch's: interpolated
between t_k and t_{k+1} and projected onto null J(y*).

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

from dataclasses import asdict, dataclass, field, replace
import math
from typing import Callable, Sequence

import numpy as np

__all__ = ["ContinuationOptions", "SpecialPoint", "Branch", "SymmetryGroup", "continue_branch",
           "switch_branch", "branches_equivalent", "dedupe_branches", "finite_difference_jacobian"]

#: default relative step of the central-difference Jacobian, eps^(1/3) ≈ 6.06e-6: balances the
#: truncation error O(h²|F'''|) against the rounding error O(eps|F|/h).
FD_STEP = float(np.finfo(np.float64).eps ** (1.0 / 3.0))
SUCCESS_STATUS = "reached-boundary"


@dataclass(frozen=True)
class ContinuationOptions:
    """Step control and tolerances; lengths are Euclidean in y = (x, p)."""

    step: float = 0.02  # initial step size h
    min_step: float = 1e-6
    max_step: float = 0.1
    grow: float = 1.5  # h ← min(grow·h, max_step) after fast Newton convergence
    shrink: float = 0.5  # h ← shrink·h after a rejected step
    fast_newton: int = 3
    tol: float = 1e-10  # Newton: converged when max|F| ≤ tol
    max_newton: int = 12
    max_steps: int = 2000
    max_turn: float = 0.6  # rad, largest accepted angle between consecutive tangents
    max_correction: float = 1.0  # largest accepted ‖y − y⁰‖ / h
    locate_tol: float = 1e-9  # bracket width (in s) to which special points are located
    fd_step: float = FD_STEP  # finite-difference step h_j = fd_step·max(1, |y_j|)
    detect: bool = True  # detect and locate special points

    def __post_init__(self):
        for name in ("step", "min_step", "max_step", "tol", "locate_tol", "fd_step", "max_correction"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a finite number > 0 (valid range (0, inf)), got {v!r}")
        for name in ("fast_newton", "max_newton", "max_steps"):
            v = getattr(self, name)
            if not (isinstance(v, (int, np.integer)) and v >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        for name, lo, hi in (("grow", 1.0, math.inf), ("shrink", 0.0, 1.0), ("max_turn", 0.0, math.pi)):
            if not lo < getattr(self, name) < hi:
                raise ValueError(f"{name} must lie in ({lo:g}, {hi:g}), got {getattr(self, name)!r}")
        if not self.min_step <= self.step <= self.max_step:
            raise ValueError(f"step must lie in [min_step, max_step] = [{self.min_step:g}, {self.max_step:g}], "
                             f"got {self.step!r}")


def _options(options: ContinuationOptions | None, overrides: dict) -> ContinuationOptions:
    base = ContinuationOptions() if options is None else options
    unknown = set(overrides) - set(ContinuationOptions.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown option(s) {sorted(unknown)}; valid: {sorted(ContinuationOptions.__dataclass_fields__)}")
    return replace(base, **overrides)


def _plain(obj):
    """numpy arrays/scalars, tuples and dataclasses → plain JSON-serialisable lists, floats, dicts."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


@dataclass
class SpecialPoint:
    """A located fold, branch point or stability change between steps ``index`` and ``index + 1``.

    ``bracket`` is the final bisection interval [lo, hi] in arclength (``bracket_p``: p at its
    ends); the located point (``arclength``, ``p``, ``x``) lies inside it; ``width`` = hi − lo is
    the location error in s; ``residual_norm`` is max|F| at the point.  ``tangent`` is the unit
    tangent of the followed branch (at a branch point: interpolated from the regular points on
    either side and projected onto null [F_x F_p]).
    """

    kind: str  # "fold", "branch-point" or "stability-change"
    index: int
    p: float
    x: np.ndarray
    arclength: float
    bracket: tuple
    bracket_p: tuple
    width: float
    residual_norm: float
    converged: bool  # width ≤ locate_tol reached
    test_values: dict  # at the located point: dp_ds, det_augmented, det_Fx_sign, stability
    test_values_bracket: dict  # dp_ds and det_augmented at lo and hi
    stability_before: int
    stability_after: int
    tangent: np.ndarray  # unit tangent (d+1,) of the followed branch at the point, oriented along it

    def to_json(self) -> dict:
        return _plain(asdict(self))


@dataclass
class Branch:
    """One traced branch: per-point arrays (n points, state dimension d) and special points.

    ``success`` means the end of the parameter range ``p_range`` was reached; otherwise
    ``status`` ("min-step", "max-steps", "boundary-failed", "stopped") and ``message`` say why not.
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
    success: bool
    status: str
    message: str
    options: ContinuationOptions
    n_residual_evaluations: int = 0
    origin: dict = field(default_factory=dict)
    label: str = ""
    equivalent_to: int | None = None  # set by dedupe_branches: index of the representative
    equivalent_action: int | None = None  # index of the symmetry action relating the two

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
        out["options"] = asdict(self.options)
        out["special_points"] = [s.to_json() for s in self.special_points]
        return out


def finite_difference_jacobian(residual: Callable, x, p: float, step: float = FD_STEP):
    """Central differences (F_x, F_p): column j = (F(y + h_j e_j) − F(y − h_j e_j)) / (2h_j),
    h_j = step·max(1, |y_j|); error O(h_j²|F'''|) + O(eps|F|/h_j) ≈ 1e-10 relative by default."""
    y = np.r_[np.asarray(x, dtype=np.float64).ravel(), float(p)]
    cols = []
    for j in range(y.size):
        yp, ym = y.copy(), y.copy()
        yp[j] += step * max(1.0, abs(y[j]))
        ym[j] -= step * max(1.0, abs(y[j]))
        fp = np.asarray(residual(yp[:-1], float(yp[-1])), dtype=np.float64).ravel()
        fm = np.asarray(residual(ym[:-1], float(ym[-1])), dtype=np.float64).ravel()
        cols.append((fp - fm) / (yp[j] - ym[j]))
    J = np.stack(cols, axis=1)
    return J[:, :-1], J[:, -1]


class _Problem:
    """Residual, Jacobian J = [F_x F_p] and stability count on y = (x, p); counts residual calls."""

    def __init__(self, residual, jacobian, stability, fd_step, d):
        self._F, self._J, self._stab, self.fd_step, self.d = residual, jacobian, stability, fd_step, d
        self.nfev = 0

    def residual_xp(self, x, p):
        self.nfev += 1
        f = np.asarray(self._F(np.array(x, dtype=np.float64), float(p)), dtype=np.float64).reshape(-1)
        if f.shape != (self.d,):
            raise ValueError(f"residual(x, p) must return {self.d} values (len(x0)), got shape {f.shape}")
        return f

    def residual(self, y):
        return self.residual_xp(y[:-1], y[-1])

    def jacobian(self, y):
        if self._J is None:
            Fx, Fp = finite_difference_jacobian(self.residual_xp, y[:-1], y[-1], self.fd_step)
        else:
            Fx, Fp = self._J(np.array(y[:-1]), float(y[-1]))
            Fx = np.asarray(Fx, dtype=np.float64).reshape(self.d, self.d)
            Fp = np.asarray(Fp, dtype=np.float64).reshape(self.d)
        return np.column_stack([Fx, Fp])

    def stability(self, y, Fx):
        if self._stab is not None:
            return int(self._stab(np.array(y[:-1]), float(y[-1])))
        return int(np.count_nonzero(np.linalg.eigvals(Fx).real > 0))


@dataclass
class _Point:
    """A solution point y with max|F|, unit tangent, test functions and stability count."""

    y: np.ndarray
    residual: float
    tangent: np.ndarray
    det_augmented: float
    det_sign: int
    stability: int
    sigma: float = 0.0  # step coordinate within the segment it lies on
    s: float = 0.0  # arclength
    h: float = 0.0  # step that produced the point
    iterations: int = 0
    normal: np.ndarray | None = None  # hyperplane normal n of that step
    det_ref: float = math.nan  # det [[F_x, F_p], [t_refᵀ]] with the reference tangent t_ref of _analyse


def _solve(A, b):
    try:
        z = np.linalg.solve(A, b)
        if np.all(np.isfinite(z)):
            return z
    except np.linalg.LinAlgError:
        pass
    return np.linalg.lstsq(A, b, rcond=None)[0]


def _newton(prob: _Problem, y, n, c, opts: ContinuationOptions):
    """Newton on G(y) = (F(y), nᵀy − c) = 0 with Jacobian [[F_x, F_p], [nᵀ]].
    Returns (y, iterations, max|F|, converged); converged means max|F| ≤ tol."""
    r = math.inf
    for it in range(opts.max_newton + 1):
        f = prob.residual(y)
        r = float(np.max(np.abs(f)))
        if not math.isfinite(r):
            return y, it, math.inf, False
        if r <= opts.tol:
            return y, it, r, True
        if it == opts.max_newton:
            break
        dy = _solve(np.vstack([prob.jacobian(y), n]), -np.r_[f, n @ y - c])
        if not np.all(np.isfinite(dy)):
            return y, it, r, False
        y = y + dy
    return y, opts.max_newton, r, False


def _det(M) -> float:
    sign, logabs = np.linalg.slogdet(M)
    return float(sign * math.exp(min(logabs, 700.0))) if sign != 0 else 0.0


def _analyse(prob: _Problem, y, residual, t_ref=None, tangent=None, **kw) -> _Point:
    """Point at y: tangent from [J; t_refᵀ] t = e_{d+1} (or the given one), ψ_B, sign det F_x, stability.

    Also det_ref = det [J; t_refᵀ] (when t_ref is given), which is smooth in y; ψ_B with the computed
    tangent equals sign(det_ref)·‖adj([J; t_refᵀ]) e_{d+1}‖ (a jump, not a zero, at a branch point).
    """
    J = prob.jacobian(y)
    det_ref = math.nan
    if tangent is None:
        M = np.vstack([J, t_ref])
        tangent = _solve(M, np.eye(y.size)[-1])
        det_ref = _det(M)
    elif t_ref is not None:
        det_ref = _det(np.vstack([J, t_ref]))
    t = tangent / np.linalg.norm(tangent)
    return _Point(y, residual, t, _det(np.vstack([J, t])), int(np.linalg.slogdet(J[:, :-1])[0]),
                  prob.stability(y, J[:, :-1]), det_ref=det_ref, **kw)


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


_TESTS = {"fold": lambda q: float(q.tangent[-1]), "branch-point": lambda q: q.det_augmented}


def _bisect(evaluate, value, lo, hi, tol, secant, max_iter=200):
    """Secant-bisection on σ for a sign change of ``value`` between points lo, hi.
    The secant guess is kept ≥ tol/2 inside the bracket; a step that does not halve
    the bracket is followed by a bisection step.  Returns (lo, hi, converged)."""
    f_lo, f_hi = value(lo), value(hi)
    halve = not secant
    for _ in range(max_iter):
        w = hi.sigma - lo.sigma
        if w <= tol:
            return lo, hi, True
        if not halve and f_hi != f_lo:
            c = hi.sigma - f_hi * w / (f_hi - f_lo)
            c = min(max(c, lo.sigma + 0.5 * tol), hi.sigma - 0.5 * tol)
        else:
            c = lo.sigma + 0.5 * w
        q = evaluate(c)
        if q is None:
            return lo, hi, False
        f_c = value(q)
        if f_c == 0:
            return q, q, True
        if np.sign(f_c) == np.sign(f_lo):
            lo, f_lo = q, f_c
        else:
            hi, f_hi = q, f_c
        halve = (not secant) or (hi.sigma - lo.sigma) > 0.5 * w
    return lo, hi, hi.sigma - lo.sigma <= tol


def _special(kind, index, q, lo, hi, s0, converged, before, after) -> SpecialPoint:
    return SpecialPoint(
        kind=kind, index=index, p=float(q.y[-1]), x=q.y[:-1].copy(), arclength=s0 + q.sigma,
        bracket=(s0 + lo.sigma, s0 + hi.sigma), bracket_p=(float(lo.y[-1]), float(hi.y[-1])),
        width=hi.sigma - lo.sigma, residual_norm=q.residual, converged=bool(converged),
        test_values={"dp_ds": float(q.tangent[-1]), "det_augmented": q.det_augmented,
                     "det_Fx_sign": q.det_sign, "stability": q.stability},
        test_values_bracket={name: (fn(lo), fn(hi)) for name, fn in
                             (("dp_ds", _TESTS["fold"]), ("det_augmented", _TESTS["branch-point"]))},
        stability_before=before, stability_after=after, tangent=q.tangent.copy())


_TSVD = float(np.sqrt(np.finfo(np.float64).eps))  # relative singular-value cut of the corrector in _correct


def _correct(prob: _Problem, y, n, c, opts: ContinuationOptions):
    """Corrector for points near a branch point: truncated-SVD Newton on (F(y), nᵀy − c) = 0.

    Near a simple branch point y* [J; nᵀ] has a singular value σ_min = O(δ) at distance δ from y*
    (any hyperplane: null J(y*) is 2-D), and the residual is flat: ε off the branch,
    max|F| = O(δε), so max|F| ≤ tol alone accepts points far off it, and a plain Newton step
    moves O(rounding/δ) along the near-null directions (slides along the valley of small |F|,
    which shifts the test function).  Here every iteration takes the step
    Δy = −Σ_{σ_i > √eps σ_1} v_i (u_iᵀ G)/σ_i (at least one), and stops when
    ‖Δy‖ ≤ 1e-13 (1 + ‖y‖), when ‖Δy‖ stops halving (the rounding floor), or, once
    max|F| ≤ tol, when a step does not lower max|F|.  The predictor (:func:`_interpolate`)
    supplies the components along the cut directions.
    Returns (y, iterations, max|F|, converged: max|F| ≤ tol).
    """
    f = prob.residual(y)
    r = float(np.max(np.abs(f)))
    prev = math.inf
    for it in range(1, opts.max_newton + 1):
        if not math.isfinite(r):
            return y, it, math.inf, False
        U, sv, Vt = np.linalg.svd(np.vstack([prob.jacobian(y), n]))
        keep = sv > _TSVD * sv[0]
        dy = -Vt[keep].T @ ((U[:, keep].T @ np.r_[f, n @ y - c]) / sv[keep])
        size = float(np.linalg.norm(dy))
        if not math.isfinite(size) or (r <= opts.tol and size > 0.5 * prev):
            break  # at the rounding floor (or a breakdown): keep y
        y_new = y + dy
        f_new = prob.residual(y_new)
        r_new = float(np.max(np.abs(f_new)))
        if r <= opts.tol and not r_new < r:
            break  # once max|F| ≤ tol only steps that lower it are taken (not slides along the flat valley)
        y, f, r, prev = y_new, f_new, r_new, size
        if size <= 1e-13 * (1.0 + float(np.linalg.norm(y))):
            break
    return y, it, r, r <= opts.tol


def _interpolate(known, sigma, a, b, n):
    """Predictor on the branch at step coordinate σ: cubic Hermite on the segment [a, b] (tangents
    scaled to dy/dσ = t / (nᵀt)) until three points inside it are known, then the quadratic through
    the three known points nearest to σ (error O(w³), w = their spread)."""
    if len(known) >= 3:
        near = sorted(known, key=lambda z: abs(z[0] - sigma))[:3]
        out = np.zeros_like(a.y)
        for i, (si, yi) in enumerate(near):
            w = 1.0
            for j, (sj, _) in enumerate(near):
                if j != i:
                    w *= (sigma - sj) / (si - sj)
            out += w * yi
        return out
    h = b.sigma
    ta, tb = float(n @ a.tangent), float(n @ b.tangent)
    if ta <= 1e-12:
        return a.y + (b.y - a.y) * (sigma / h)
    if tb <= 0.1 * ta:  # b's tangent nearly tangent to the hyperplane: Hermite would overshoot
        return a.y + (sigma / ta) * a.tangent
    u = sigma / h
    h00, h10, h01, h11 = (1 + 2 * u) * (1 - u) ** 2, u * (1 - u) ** 2, u * u * (3 - 2 * u), u * u * (u - 1)
    return h00 * a.y + h10 * h * a.tangent / ta + h01 * b.y + h11 * h * b.tangent / tb


def _locate(prob, kind, pts, k, opts) -> SpecialPoint:
    """Locate a sign change of the test function of ``kind`` between points k and k+1.

    Branch points are located on the smooth det [J; t_kᵀ] (t_k the tangent at point k), which has
    the sign of ψ_B at every point evaluated here but a simple zero at y* where ψ_B jumps; the
    points are corrected by :func:`_correct` from interpolating predictors (see there why)."""
    a, b = pts[k], pts[k + 1]
    n, t = b.normal, a.tangent
    c0 = float(n @ a.y)
    known = [(0.0, a.y), (b.h, b.y)]

    def evaluate(sigma):
        y0 = _interpolate(known, sigma, replace(a, sigma=0.0), replace(b, sigma=b.h), n)
        if kind == "branch-point":
            y, it, r, ok = _correct(prob, y0, n, c0 + sigma, opts)
        else:
            y, it, r, ok = _newton(prob, y0, n, c0 + sigma, opts)
        if not ok:
            return None
        known.append((sigma, y))
        return _analyse(prob, y, r, t, sigma=sigma, iterations=it)

    lo, hi = replace(a, sigma=0.0), replace(b, sigma=b.h)
    if kind == "stability-change":
        def value(q):
            return 1.0 if q.stability == a.stability else -1.0
    elif kind == "branch-point":
        lo = replace(lo, det_ref=a.det_augmented)  # det [J(y_k); t_kᵀ] is ψ_B at point k itself

        def value(q):
            return q.det_ref
    else:
        value = _TESTS[kind]
    secant = kind != "stability-change"
    lo, hi, converged = _bisect(evaluate, value, lo, hi, opts.locate_tol, secant)
    q = lo
    if hi is not lo:
        f_lo, f_hi = value(lo), value(hi)
        c = lo.sigma + (f_lo / (f_lo - f_hi) if secant else 0.5) * (hi.sigma - lo.sigma)
        q = evaluate(c) or (lo if abs(f_lo) <= abs(f_hi) else hi)
    if kind == "branch-point":  # q.tangent from the singular bordered system is meaningless here
        w = min(max(q.sigma / b.h, 0.0), 1.0)
        t_reg = (1.0 - w) * a.tangent + w * b.tangent
        J = prob.jacobian(q.y)
        try:
            t_q = _crossing_direction(J, t_reg)[1]
        except ValueError:  # not a simple branch point: keep the interpolated regular tangent
            t_q = t_reg / np.linalg.norm(t_reg)
        q = replace(q, tangent=t_q, det_augmented=_det(np.vstack([J, t_q])))
    return _special(kind, k, q, lo, hi, a.s, converged, a.stability, b.stability)


def _detect(prob, pts, refs, opts, skip) -> list:
    """Special points on the last segment; ``refs`` holds (sign, index) of the last nonzero value
    of each test function (an exactly-zero value is reported at that point, bracket width 0)."""
    k = len(pts) - 2
    found = []
    for kind, fn in _TESTS.items():
        sign = np.sign(fn(pts[-1]))
        if sign == 0:
            continue
        ref = refs.get(kind)
        if ref is not None and not skip and sign != ref[0]:
            if ref[1] == k:
                found.append(_locate(prob, kind, pts, k, opts))
            else:
                z = pts[ref[1] + 1]
                found.append(_special(kind, ref[1] + 1, z, z, z, z.s - z.sigma, True,
                                      pts[ref[1]].stability, pts[-1].stability))
        refs[kind] = (sign, k + 1)
    if not skip and not found and pts[-1].stability != pts[-2].stability:
        found.append(_locate(prob, "stability-change", pts, k, opts))
    return found


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
        if progress is not None:
            info = {"x": new.y[:-1].copy(), "arclength": new.s, "step": new.h, "newton_iterations": new.iterations,
                    "residual_norm": new.residual, "stability": new.stability, "n_special": len(specials)}
            if progress(k + 1, float(new.y[-1]), info) is False and not done:
                status, message = "stopped", f"stopped by the progress callback at p={new.y[-1]:.10g}"
                break
        if done:
            break
        if new.iterations <= opts.fast_newton:
            h = min(h * opts.grow, opts.max_step)
    return pts, specials, status, message


def _branch(prob, trace, method, window, opts, origin, label) -> Branch:
    pts, specials, status, message = trace
    Y = np.array([q.y for q in pts])
    T = np.array([q.tangent for q in pts])
    return Branch(
        p=Y[:, -1].copy(), x=Y[:, :-1].copy(), arclength=np.array([q.s for q in pts]),
        step=np.array([q.h for q in pts]), newton_iterations=np.array([q.iterations for q in pts]),
        residual_norm=np.array([q.residual for q in pts]), stability=np.array([q.stability for q in pts]),
        det_sign=np.array([q.det_sign for q in pts]), dp_ds=T[:, -1].copy(),
        det_augmented=np.array([q.det_augmented for q in pts]), tangent=T, special_points=specials,
        method=method, p_range=tuple(float(v) for v in window), success=status == SUCCESS_STATUS, status=status,
        message=message, options=opts, n_residual_evaluations=prob.nfev, origin=origin, label=label)


def continue_branch(residual: Callable, x0, p0: float, p_end: float, *, method: str = "arclength",
                    jacobian: Callable | None = None, stability: Callable | None = None,
                    progress: Callable | None = None, tangent=None, label: str = "",
                    options: ContinuationOptions | None = None, **option_overrides) -> Branch:
    """Follow the branch of F(x, p) = 0 through (x0, p0) towards p_end.

    residual(x, p) -> F (d,); jacobian(x, p) -> (F_x (d, d), F_p (d,)) or None for central
    differences (step ``fd_step``); stability(x, p) -> number of unstable directions, default
    #{eigenvalues of F_x with Re > 0}; progress(step, p, info) is called after every accepted
    step and stops the run by returning False.  method "arclength" (pseudo-arclength, passes
    folds) or "natural" (p stepped monotonically; stops with status "min-step" at a fold).
    The run ends when p leaves the closed range between p0 and p_end (the last point is put
    exactly on it).  x0 is first corrected by Newton at fixed p0.  ``tangent`` (d+1,) orients
    the start (needed only when starting at a fold).  Options: :class:`ContinuationOptions`
    fields as keywords.  Invalid input raises ValueError; failure to reach p_end does not
    (see ``Branch.success``, ``status``, ``message``).
    """
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
    return _branch(prob, trace, method, window, opts, {"p0": p0, "p_end": p_end}, label)


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


def _crossing_direction(J, t_old):
    """(t_new, t_old projected onto N, singular values of J): N = last two rows of Vᵀ in J = U Σ Vᵀ
    (null J at a simple branch point), c = N t_old / ‖t_old‖ (ValueError if ‖c‖ < 0.5),
    t_new = Nᵀ (−c₂, c₁) / ‖c‖ ⟂ t_old and Nᵀ c / ‖c‖."""
    _, sv, Vt = np.linalg.svd(J)
    N = Vt[-2:]
    c = N @ (t_old / np.linalg.norm(t_old))
    size = float(np.linalg.norm(c))
    if size < 0.5:
        raise ValueError("the old tangent is not in the 2-D null space of [F_x F_p] at the point "
                         f"(|projection| = {size:.3f}); not a simple branch point")
    t_new = N.T @ np.array([-c[1], c[0]]) / size
    t_proj = N.T @ c / size
    return t_new, t_proj, sv


def switch_branch(residual: Callable, branch: Branch, point: SpecialPoint, *, directions: Sequence[int] = (1, -1),
                  jacobian: Callable | None = None, stability: Callable | None = None,
                  progress: Callable | None = None, p_range=None, tangent=None,
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
        start = _analyse(prob, y_star, r_star, tangent=s * t_new)
        trace = _trace(prob, start, window, opts, "arclength", 1.0, progress, from_singular=True)
        origin = {"parent": branch.label, "p": point.p, "x": point.x.copy(), "direction": int(s),
                  "tangent": s * t_new, "old_tangent": t_old, "sigma_min": float(sv[-1])}
        out.append(_branch(prob, trace, "arclength", window, opts, origin,
                           f"{branch.label}>bp@{point.p:.6g}{'+' if s > 0 else '-'}"))
    return out


class SymmetryGroup:
    """A finite group of actions x → g(x) on states (the parameter p is invariant).

    ``actions[0]`` is the identity (added unless ``include_identity=False``).  Mirrored or
    permuted copies of a solution are identified by ``equivalent`` / ``canonical``.
    """

    def __init__(self, actions: Sequence[Callable], include_identity: bool = True):
        self.actions = ([lambda x: np.array(x, dtype=np.float64)] if include_identity else []) + list(actions)
        if not self.actions:
            raise ValueError("actions must contain at least one callable x -> x")

    @classmethod
    def from_matrices(cls, generators: Sequence, max_order: int = 10_000) -> "SymmetryGroup":
        """Group generated by linear actions x → M x (e.g. permutation or sign matrices), by closure."""
        gens = [np.asarray(M, dtype=np.float64) for M in generators]
        if not gens or any(M.ndim != 2 or M.shape[0] != M.shape[1] or M.shape != gens[0].shape for M in gens):
            raise ValueError("generators must be a non-empty list of square matrices of equal shape")
        elements, seen, i = [np.eye(gens[0].shape[0])], set(), 0
        seen.add(np.round(elements[0], 9).tobytes())
        while i < len(elements):
            for M in gens:
                g = M @ elements[i]
                key = np.round(g, 9).tobytes()
                if key not in seen:
                    if len(elements) >= max_order:
                        raise ValueError(f"group order exceeds max_order={max_order} (generators not of finite order?)")
                    seen.add(key)
                    elements.append(g)
            i += 1
        group = cls([(lambda x, M=M: M @ np.asarray(x, dtype=np.float64)) for M in elements], include_identity=False)
        group.matrices = elements
        return group

    def __len__(self) -> int:
        return len(self.actions)

    def images(self, x) -> np.ndarray:
        """All images g(x), shape (|G|, d)."""
        return np.array([np.asarray(g(np.asarray(x, dtype=np.float64)), dtype=np.float64).ravel()
                         for g in self.actions])

    def canonical(self, x, decimals: int = 8) -> np.ndarray:
        """The image that is lexicographically smallest after rounding to ``decimals`` (so that
        round-off does not change the choice except at rounding boundaries)."""
        imgs = self.images(x)
        key = np.round(imgs, decimals) + 0.0  # + 0.0 turns −0 into 0
        return imgs[np.lexsort(key.T[::-1])[0]]

    def find(self, x1, x2, tol: float = 1e-8) -> int | None:
        """Index of an action g with max|g(x1) − x2| ≤ tol, or None."""
        dist = np.max(np.abs(self.images(x1) - np.asarray(x2, dtype=np.float64).ravel()), axis=1)
        i = int(np.argmin(dist))
        return i if dist[i] <= tol else None

    def equivalent(self, x1, x2, tol: float = 1e-8) -> bool:
        return self.find(x1, x2, tol) is not None


def _polyline_distance(Q, V, allowance):
    """Distance of each row of Q to the polyline through rows of V, minus each segment's allowance."""
    if len(V) == 1:
        return np.linalg.norm(Q - V[0], axis=1) - allowance[0]
    A, B = V[:-1], V[1:]
    AB = B - A
    L2 = np.maximum(np.einsum("ij,ij->i", AB, AB), 1e-300)
    out = np.empty(len(Q))
    for i0 in range(0, len(Q), 64):  # chunks keep the (m, K, D) temporary small
        q = Q[i0:i0 + 64, None, :]
        u = np.clip(np.einsum("mkj,kj->mk", q - A, AB) / L2, 0.0, 1.0)
        dist = np.linalg.norm(q - A - u[..., None] * AB, axis=2)
        out[i0:i0 + 64] = np.min(dist - allowance, axis=1)
    return out


def branches_equivalent(b1: Branch, b2: Branch, symmetry: SymmetryGroup | None = None,
                        tol: float = 1e-6) -> int | None:
    """Index of an action g under which the branch of smaller arclength lies on the image of
    the other, or None.  "Lies on": every point (g(x), p) is within tol + sag_k of the polyline
    through the other branch's points, sag_k = ¼ h_k ‖t_{k+1} − t_k‖ (twice the chord error of an
    arc of length h_k turning by ‖Δt‖), which assumes the actions are isometries (permutations,
    sign changes).
    """
    group = symmetry if symmetry is not None else SymmetryGroup([])
    short, long_ = (b1, b2) if b1.arclength[-1] <= b2.arclength[-1] else (b2, b1)
    V = np.column_stack([long_.x, long_.p])
    seg = np.linalg.norm(np.diff(V, axis=0), axis=1) if len(V) > 1 else np.zeros(1)
    turn = np.linalg.norm(np.diff(long_.tangent, axis=0), axis=1) if len(V) > 1 else np.zeros(1)
    allowance = tol + 0.25 * seg * turn
    imgs = np.array([group.images(x) for x in short.x])  # (n, |G|, d)
    for g in range(len(group)):
        Q = np.column_stack([imgs[:, g, :], short.p])
        if np.all(_polyline_distance(Q, V, allowance) <= 0):
            return g
    return None


def dedupe_branches(branches: Sequence[Branch], symmetry: SymmetryGroup | None = None,
                    tol: float = 1e-6) -> list:
    """Unique branches (first occurrences, in order).  Each duplicate gets ``equivalent_to`` =
    index in ``branches`` of its representative and ``equivalent_action`` = the action index."""
    unique = []
    for i, b in enumerate(branches):
        b.equivalent_to = b.equivalent_action = None
        for j in unique:
            g = branches_equivalent(branches[j], b, symmetry, tol)
            if g is not None:
                b.equivalent_to, b.equivalent_action = j, g
                break
        else:
            unique.append(i)
    return [branches[i] for i in unique]
