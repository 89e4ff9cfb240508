"""Special points of a continued branch: detection by sign changes and location by secant-bisection.

Test functions, evaluated at every accepted point (:func:`solvers.pseudo_arclength._analyse`):

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

References: E. L. Allgower & K. Georg, Introduction to Numerical Continuation Methods
(SIAM 2003), ch. 8 (detecting bifurcation points); Yu. A. Kuznetsov, Elements of Applied
Bifurcation Theory (3rd ed. 2004), ch. 10.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
import math

import numpy as np

from solvers.newton import lstsq_solver
from solvers.pseudo_arclength import (ContinuationOptions, _Problem, _analyse, _crossing_direction, _det, _newton,
                                      _plain)

__all__ = ["SpecialPoint"]

@dataclass
class SpecialPoint:
    """A located fold, branch point or stability change between steps ``index`` and ``index + 1``.

    As BifurcationKit's special points: kind, index, parameter ``p`` (alias ``parameter``),
    state ``x`` (alias ``state``), tangent, kernel dimension, status and bisection interval.
    ``bracket`` is the final bisection interval [lo, hi] in arclength (``bracket_p``: p at its
    ends); the located point (``arclength``, ``p``, ``x``) lies inside it; ``width`` = hi − lo is
    the location error in s; ``residual_norm`` is max|F| at the point.  ``tangent`` is the unit
    tangent of the followed branch (at a branch point: interpolated from the regular points on
    either side and projected onto null [F_x F_p]).  ``kernel_dimension`` is dim null F_x at the
    located point: the singular values of F_x below ``KERNEL_TOL``·max(1, ‖J‖₂) (1 at a simple fold or
    branch point, 0 at a stability change without a singular F_x, None if not evaluated).
    ``status`` is "converged" when the bracket reached ``locate_tol``, else "not-converged".
    """

    kind: str  # "fold", "branch-point" or "stability-change"
    index: int
    p: float
    x: np.ndarray
    arclength: float = math.nan
    bracket: tuple = (math.nan, math.nan)
    bracket_p: tuple = (math.nan, math.nan)
    width: float = math.nan
    residual_norm: float = math.nan
    converged: bool = True  # width ≤ locate_tol reached
    test_values: dict = field(default_factory=dict)  # at the point: dp_ds, det_augmented, det_Fx_sign, stability
    test_values_bracket: dict = field(default_factory=dict)  # dp_ds and det_augmented at lo and hi
    stability_before: int = 0
    stability_after: int = 0
    tangent: np.ndarray | None = None  # unit tangent (d+1,) of the followed branch at the point, oriented along it
    kernel_dimension: int | None = None

    @property
    def parameter(self) -> float:
        return self.p

    @property
    def state(self) -> np.ndarray:
        return self.x

    @property
    def status(self) -> str:
        return "converged" if self.converged else "not-converged"

    def to_json(self) -> dict:
        return _plain({**asdict(self), "status": self.status})


#: relative singular-value cut of F_x for ``SpecialPoint.kernel_dimension``
KERNEL_TOL = 1e-6


def _kernel_dimension(J) -> int | None:
    """dim null F_x: singular values of F_x at most KERNEL_TOL·max(1, σ_max([F_x F_p]))."""
    if J is None:
        return None
    cut = KERNEL_TOL * max(1.0, float(np.linalg.norm(J, 2)))
    return int(np.count_nonzero(np.linalg.svd(J[:, :-1], compute_uv=False) <= cut))


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
        stability_before=before, stability_after=after, tangent=q.tangent.copy(),
        kernel_dimension=_kernel_dimension(q.jacobian))


_TSVD = float(np.sqrt(np.finfo(np.float64).eps))  # relative singular-value cut of the corrector in _correct


def _correct(prob: _Problem, y, n, c, opts: ContinuationOptions):
    """Corrector for points near a branch point: truncated-SVD Newton on (F(y), nᵀy − c) = 0.

    Near a simple branch point y* [J; nᵀ] has a singular value σ_min = O(δ) at distance δ from y*
    (any hyperplane: null J(y*) is 2-D), and the residual is flat: ε off the branch,
    max|F| = O(δε), so max|F| ≤ tol alone accepts points far off it, and a plain Newton step
    moves O(rounding/δ) along the near-null directions (slides along the valley of small |F|,
    which shifts the test function).  Here every iteration takes the step
    Δy = −Σ_{σ_i > √eps σ_1} v_i (u_iᵀ G)/σ_i (at least one; ``solve=lstsq_solver(√eps)``), and
    stops (:func:`solvers.pseudo_arclength._newton`, ``refine=1e-13``) when
    ‖Δy‖ ≤ 1e-13 (1 + ‖y‖), when ‖Δy‖ stops halving (the rounding floor), or, once
    max|F| ≤ tol, when a step does not lower max|F|.  The predictor (:func:`_interpolate`)
    supplies the components along the cut directions.
    Returns (y, iterations, max|F|, converged: max|F| ≤ tol).
    """
    return _newton(prob, y, n, c, opts, solve=lstsq_solver(_TSVD), refine=1e-13)


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
        q = replace(q, tangent=t_q, det_augmented=_det(np.vstack([J, t_q])), jacobian=J)
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
