"""Pseudo-arclength continuation: the problem wrapper, the corrector and the point analysis (shared machinery).

Notation: state x ∈ R^d, scalar parameter p, y = (x, p) ∈ R^{d+1}, J(y) = [F_x  F_p] ∈ R^{d×(d+1)}.

Tangent.  The unit tangent t of the branch solves J t = 0, ‖t‖ = 1, oriented by t·t_prev > 0; it
is computed from the bordered system [J; t_prevᵀ] t = e_{d+1} and normalised.

Corrector.  Newton on G(y) = (F(y), nᵀy − c) = 0 with Jacobian [[F_x, F_p], [nᵀ]], nonsingular at
regular points and simple folds for n the previous tangent (pseudo-arclength) or ±e_p (natural).

Test functions at every point: ψ_F = t_p = dp/ds (fold), ψ_B = det [[F_x, F_p], [tᵀ]] (branch
point), sign det F_x, and the number of unstable directions (default #{eig F_x with Re > 0}).

At a simple branch point null J(y*) is 2-D; :func:`crossing_direction` gives the unit vector of
that plane orthogonal to the old tangent.

Used by :mod:`solvers.continuation` (the tracer) and :mod:`solvers.special_points` (location).
References: Allgower & Georg, Introduction to Numerical Continuation Methods (SIAM 2003), ch. 2;
Kuznetsov, Elements of Applied Bifurcation Theory (3rd ed. 2004), ch. 10.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
import math
from typing import Callable

import numpy as np

from theory.checks import check_bool, check_float, check_int
from theory.spec import SpecError

from solvers.options import Options
from solvers.newton import damped_newton, solve_or_lstsq

__all__ = ["ContinuationOptions", "finite_difference_jacobian", "FD_STEP"]

#: default relative step of the central-difference Jacobian, eps^(1/3) ≈ 6.06e-6: balances the
#: truncation error O(h²|F'''|) against the rounding error O(eps|F|/h).
FD_STEP = float(np.finfo(np.float64).eps ** (1.0 / 3.0))


@dataclass(frozen=True)
class ContinuationOptions(Options):
    """Step control and tolerances; lengths are Euclidean in y = (x, p). Validated on construction
    (:class:`theory.spec.SpecError`, a ValueError, naming the field and its valid range)."""

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

    def validate(self) -> None:
        for name in ("step", "min_step", "max_step", "tol", "locate_tol", "fd_step", "max_correction"):
            v = getattr(self, name)
            if isinstance(v, bool) or not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise SpecError(f"{name} must be a finite number > 0 (valid range (0, inf)), got {v!r}")
        for name in ("fast_newton", "max_newton", "max_steps"):
            check_int(name, getattr(self, name), lo=1)
        for name, lo, hi in (("grow", 1.0, None), ("shrink", 0.0, 1.0), ("max_turn", 0.0, math.pi)):
            check_float(name, getattr(self, name), lo, hi, lo_open=True, hi_open=True)
        check_bool("detect", self.detect)
        if not self.min_step <= self.step <= self.max_step:
            raise SpecError(f"step must lie in [min_step, max_step] = [{self.min_step:g}, {self.max_step:g}], "
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
    jacobian: np.ndarray | None = None  # J = [F_x F_p] at y


def _newton(prob: _Problem, y, n, c, opts: ContinuationOptions, **hooks):
    """Corrector: Newton with full steps (:func:`solvers.newton.damped_newton`, no line search) on
    G(y) = (F(y), nᵀy − c) = 0 with Jacobian [[F_x, F_p], [nᵀ]]; ``hooks``: further keywords of
    ``damped_newton`` (the branch-point corrector's ``solve`` and ``refine``).
    Returns (y, iterations, max|F|, converged); converged means max|F| ≤ tol."""
    out = damped_newton(lambda z: np.r_[prob.residual(z), n @ z - c], lambda z: np.vstack([prob.jacobian(z), n]),
                        y, tol=opts.tol, maxiter=opts.max_newton, line_search=False,
                        measure=lambda g: float(np.max(np.abs(g[:-1]))), **hooks)
    return out.x, out.iterations, out.residual, out.converged


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
        tangent = solve_or_lstsq(M, np.eye(y.size)[-1])
        det_ref = _det(M)
    elif t_ref is not None:
        det_ref = _det(np.vstack([J, t_ref]))
    t = tangent / np.linalg.norm(tangent)
    return _Point(y, residual, t, _det(np.vstack([J, t])), int(np.linalg.slogdet(J[:, :-1])[0]),
                  prob.stability(y, J[:, :-1]), det_ref=det_ref, jacobian=J, **kw)


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
