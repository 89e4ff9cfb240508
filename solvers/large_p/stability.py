"""Physical stability of a point on an n-branch solution of the large-P equations (THEORY §4).

At every point (x, p) = (t, a_γ, P_γ; p) of a continued n-branch solution:

    stability = Σ_γ #{eigenvalues of ∇²_a S(a_γ; t) > 0}      (a_γ not a local maximum of S)
              + #{γ : P_γ < 0}                                   (an occupation turned negative)
              + [some local maximum of S lies above S(a_γ)]      (the branches are no longer global)

stability = 0 means the point is the minimiser of the convex dual G∞ (kind "global"). The
global check runs :func:`~solvers.large_p.maxima.maximise_action` with its full multi-start set at
every 4th evaluation and, in between, an ascent from the maxima found last.
"""
from __future__ import annotations

import math

import numpy as np

from theory.spec import SpecError

from solvers.large_p.branches import BranchSystem
from solvers.large_p.maxima import maximise_action

__all__ = ["BranchEvaluator", "count_occupied", "EIG_TOL", "OCC_TOL", "GLOBAL_TOL"]

EIG_TOL = 1e-12  # eigenvalue of ∇²_a S counted positive above EIG_TOL·(1/σ̄_a² + max|eigenvalue|)


OCC_TOL = 1e-9  # occupation counted negative below −OCC_TOL, occupied above +OCC_TOL


GLOBAL_TOL = 1e-9  # relative tolerance on S for "global maximum" (as solve_large_p)


def _eig_threshold(prob, w) -> float:
    """Eigenvalues of ∇²_a S above this count as positive (rounding level of the Hessian)."""
    return EIG_TOL * (1.0 / prob.sigma_a_bar**2 + float(np.max(np.abs(w))))


def _distinct(points, limit: int, tol: float = 1e-4) -> np.ndarray:
    """The first ``limit`` rows of ``points`` (best first) that differ by more than tol·(1 + |a|)."""
    out = []
    for a in points:
        if all(np.linalg.norm(a - b) > tol * (1.0 + np.linalg.norm(b)) for b in out):
            out.append(a)
            if len(out) >= limit:
                break
    return np.array(out).reshape(-1, points.shape[1] if np.ndim(points) == 2 else 0)


class BranchEvaluator:
    """Stability of (x, p) for an n-branch system: Hessian signs, negative occupations, global check."""

    def __init__(self, system: BranchSystem, *, global_check: bool = True, n_random: int = 8,
                 full_every: int = 4):
        self.system = system
        self.odd = system.problem.phi.odd
        self.global_check = global_check
        self.n_random = n_random
        self.full_every = max(1, int(full_every))
        self.known = None  # local maxima of S found by the last search (tracked between full searches)
        self.searches = 0
        self.cache = {}
        self.calls = 0

    def _maxima(self, prob, t, A):
        """Local maxima of S(·; t): every ``full_every``-th call the full multi-start search of
        :func:`maximise_action` (deterministic set + ``n_random`` random starts + warm starts), in between
        an ascent from the tracked maxima of the last search and the branches only (the maxima move
        continuously with (t, p); a new one is picked up by the next full search)."""
        warm = np.concatenate([A, -A]) if self.odd else A
        if self.known is not None and len(self.known):
            warm = np.concatenate([warm, self.known] + ([-self.known] if self.odd else []))
        warm = _distinct(warm, 4 * len(warm) + 1)
        full = self.known is None or self.searches % self.full_every == 0
        self.searches += 1
        if full:
            mx = maximise_action(prob, t, warm=warm, n_random=self.n_random, seed=0, global_tol=GLOBAL_TOL)
        else:
            mx = maximise_action(prob, t, starts=np.concatenate([warm, np.zeros((1, A.shape[1]))]),
                                 global_tol=GLOBAL_TOL)
        self.known = _distinct(mx.points(), 24)
        return mx

    def residual(self, x, p):
        """F(x, p); NaN outside the valid parameter range (the continuation then rejects the step)."""
        try:
            return self.system.residual(x, p)
        except SpecError:
            return np.full(self.system.size, np.nan)

    def jacobian(self, x, p):
        try:
            return self.system.jacobian(x, p)
        except SpecError:
            d = self.system.size
            return np.full((d, d), np.nan), np.full(d, np.nan)

    def details(self, x, p) -> dict:
        x = np.asarray(x, dtype=np.float64)
        key = (x.tobytes(), float(p))
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        self.calls += 1
        prob = self.system.problem_at(float(p))
        t, A, P = self.system.unpack(x)
        S, _, H = prob.action(A, t)
        w, V = np.linalg.eigh(H)
        thr = _eig_threshold(prob, w)
        n_pos = (w > thr).sum(axis=1)
        neg = P < -OCC_TOL
        unstable = int(n_pos.sum() + neg.sum())
        higher, best = unstable > 0, None
        if not higher and self.global_check:
            try:
                mx = self._maxima(prob, t, A)
                s_ref = float(np.max(S))
                if mx.value > s_ref + GLOBAL_TOL * (1.0 + abs(s_ref)) or mx.unbounded:
                    higher, best = True, (mx.best.a.copy(), mx.best.value, bool(mx.unbounded))
            except RuntimeError:  # no maximum found at all: S unbounded above
                higher, best = True, (None, math.inf, True)
        out = {"t": t, "A": A, "P": P, "S": S, "w": w, "V": V, "n_pos": n_pos, "negative": neg,
               "higher": bool(higher), "higher_found": best is not None, "best": best,
               "stability": unstable + int(higher), "problem": prob}
        if len(self.cache) > 20000:
            self.cache.clear()
        self.cache[key] = out
        return out

    def stability(self, x, p) -> int:
        return self.details(x, p)["stability"]


def count_occupied(A, P, odd, tol=1e-7) -> int:
    """Distinct occupied readouts, mirror images counted separately."""
    pts = []
    for a, p in zip(A, P):
        if p <= OCC_TOL:
            continue
        for b in ([a, -a] if odd else [a]):
            if not any(np.linalg.norm(b - c) <= tol * (1.0 + np.linalg.norm(c)) for c in pts):
                pts.append(b)
    return len(pts)
