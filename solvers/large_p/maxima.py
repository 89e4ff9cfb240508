"""All local maxima of the action S(a; t) (THEORY §4, eq. (4.1) of :mod:`solvers.large_p.problem`).

At P → ∞ the single-neuron measure exp(P·S(a; t)) concentrates on the
global maxima of S, so the branches of the solution are global maximisers
and everything hinges on finding them reliably. :func:`maximise_action`

* starts from a deterministic set (a = 0; ± scaled axes e_r; ± class
  directions t̂_c and their pairwise sums ± t̂_c ± t̂_d; several radii set by
  the fixed-point scale of a = σ̄_a² Σ_c ρ_c ψ'(t_c·a) t_c), random points,
  and optional warm starts (for example the previous maxima);
* runs the shared saddle-free Newton ascent with trust radius
  (:func:`solvers.mode_search.ascend`) on the analytic gradient and Hessian: δ = V diag(1/|λ|) Vᵀ ∇S, which is the
  Newton step −H⁻¹∇S where S is concave and an ascent step elsewhere;
  stationary points that are not maxima (a = 0 of an odd φ below T_c) are
  pushed off along the unstable eigenvector;
* for odd φ (S(−a) = S(a)) runs one start of each mirror pair {a, −a} and adds the mirror
  images of the end points;
* merges the converged maxima (:func:`solvers.mode_search.distinct`) and reports every local maximum with its
  S value, gradient norm and Hessian eigenvalues, and marks the global
  ones (within ``global_tol`` of the largest S).

Starts whose |a| runs away (S unbounded above, or an asymptotically flat
direction as for ReLU at q(t) = 1) are counted in ``escaped`` with the
largest S they reached.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solvers.large_p.problem import LargePProblem
from solvers.mode_search import ascend, distinct, group, rownorm

__all__ = ["LocalMaximum", "ActionMaxima", "maximise_action", "start_points"]


@dataclass(frozen=True)
class LocalMaximum:
    """One local maximum a of S(·; t)."""

    a: np.ndarray  # (m,)
    value: float  # S(a; t)
    gradient_norm: float
    hessian_eigenvalues: np.ndarray  # ascending; all < 0 for a strict maximum
    is_global: bool
    starts: int  # how many starts converged here

    @property
    def stable(self) -> bool:
        """Strict local maximum (Hessian negative definite)."""
        return bool(self.hessian_eigenvalues[-1] < 0.0)

    def to_json(self) -> dict:
        return {"a": self.a.tolist(), "S": self.value, "gradient_norm": self.gradient_norm,
                "hessian_eigenvalues": self.hessian_eigenvalues.tolist(), "global": self.is_global,
                "starts": self.starts}


@dataclass(frozen=True)
class ActionMaxima:
    """Result of :func:`maximise_action`: maxima sorted by S, best first."""

    t: np.ndarray
    maxima: tuple  # of LocalMaximum
    escaped: int  # starts that ran off to |a| → ∞
    escaped_value: float  # the largest S they reached (−inf if none)
    global_tol: float

    @property
    def best(self) -> LocalMaximum:
        return self.maxima[0]

    @property
    def value(self) -> float:
        """max_a S(a; t) over the maxima found."""
        return self.maxima[0].value

    @property
    def global_maxima(self) -> tuple:
        return tuple(x for x in self.maxima if x.is_global)

    @property
    def unbounded(self) -> bool:
        """True if some start ran away with S above the best maximum (S unbounded above)."""
        return self.escaped > 0 and self.escaped_value > self.value

    def points(self) -> np.ndarray:
        return np.array([x.a for x in self.maxima]).reshape(-1, self.t.shape[1])

    def to_json(self) -> dict:
        return {"maxima": [x.to_json() for x in self.maxima], "escaped": self.escaped,
                "escaped_value": self.escaped_value if np.isfinite(self.escaped_value) else None}


def start_points(problem: LargePProblem, t, n_random: int = 16, seed: int = 0, warm=None,
                 radius: float | None = None) -> np.ndarray:
    """The deterministic, random and warm start set described in the module docstring.

    ``radius``: the scale R of the starts, default ``problem.start_radius(t)``.
    """
    t = np.asarray(t, dtype=np.float64)
    m = problem.m
    R = problem.start_radius(t) if radius is None else float(radius)
    eye = np.eye(m)
    norms = np.linalg.norm(t, axis=1, keepdims=True)
    dirs = [eye]
    if np.all(norms > 0):
        that = t / norms
        dirs.append(that)
        if m <= 6:
            i, j = np.triu_indices(m, 1)
            pair = np.concatenate([that[i] + that[j], that[i] - that[j]])
            pn = np.linalg.norm(pair, axis=1, keepdims=True)
            dirs.append(pair[pn[:, 0] > 1e-8] / pn[pn[:, 0] > 1e-8])
    dirs = np.concatenate(dirs)
    radii = np.array([0.15, 0.5, 1.0, 2.0]) * R
    pts = [np.zeros((1, m)), (radii[:, None, None] * dirs[None]).reshape(-1, m)]
    pts.append(-pts[1])
    rng = np.random.default_rng(seed)
    if n_random > 0:
        z = rng.standard_normal((n_random, m))
        z *= (1.5 * R * rng.uniform(0.05, 1.0, n_random) / np.linalg.norm(z, axis=1))[:, None]
        pts.append(z)
    if warm is not None and len(warm):
        w = np.asarray(warm, dtype=np.float64).reshape(-1, m)
        pts.append(w)
    return np.concatenate(pts)


#: Old private names (tests and callers used them).
_rownorm = rownorm
_group = group


def _one_per_mirror_pair(A0):
    """The starts with one of each pair {a, −a} (both give the same maxima, mirrored, for odd φ): each
    row flipped to a · sign(a·u) for a fixed generic u, exact duplicates dropped, order kept."""
    u = 1.0 / np.sqrt(np.arange(2.0, A0.shape[1] + 2.0))
    s = np.sign(A0 @ u)
    canon = A0 * np.where(s == 0.0, 1.0, s)[:, None]
    _, first = np.unique(canon, axis=0, return_index=True)
    return canon[np.sort(first)]


def _ascent(problem, t, A, tol, maxiter, R):
    """The shared saddle-free Newton ascent (:func:`solvers.mode_search.ascend`) on S(·; t)."""
    return ascend(lambda X: problem.action(X, t), A, tol=tol, maxiter=maxiter, radius=R,
                  scale=problem.sigma_a_bar**2)


def maximise_action(problem: LargePProblem, t, *, warm=None, n_random: int = 16, seed: int = 0,
                    global_tol: float = 1e-8, tol: float = 1e-11, maxiter: int = 300,
                    starts=None) -> ActionMaxima:
    """Every local maximum of S(·; t) reached from the start set, best first.

    ``global_tol``: maxima with S ≥ max S − global_tol·(1 + |max S|) are global.
    ``starts`` replaces the default start set (:func:`start_points`).
    """
    t = np.asarray(t, dtype=np.float64)
    if t.shape != (problem.m, problem.m):
        raise ValueError(f"t must have shape ({problem.m}, {problem.m}) (got {t.shape})")
    R = problem.start_radius(t)
    A0 = start_points(problem, t, n_random, seed, warm, radius=R) if starts is None else np.atleast_2d(
        np.asarray(starts, dtype=np.float64)).copy()
    odd = problem.phi.odd
    if odd:
        A0 = _one_per_mirror_pair(A0)
    A, S, g, H, conv, esc = _ascent(problem, t, A0, tol, maxiter, R)
    if odd:  # S(−a) = S(a), ∇S(−a) = −∇S(a), ∇²S(−a) = ∇²S(a): every end point has its mirror image
        A, S, g, H = np.concatenate([A, -A]), np.tile(S, 2), np.concatenate([g, -g]), np.tile(H, (2, 1, 1))
        conv, esc = np.tile(conv, 2), np.tile(esc, 2)
    w_all = np.full(A.shape, np.nan)
    ok = conv & np.isfinite(S)
    w_all[ok] = np.linalg.eigvalsh(H[ok])
    found, counts = distinct(A, S, ok & (w_all[:, -1] < 0.0))
    if not len(found):  # nothing converged: report the best stationary-ish point honestly as not a maximum
        raise RuntimeError("maximise_action: no start converged to a local maximum of S "
                           f"({int(esc.sum())} of {len(A0)} starts ran away: S may be unbounded above)")
    smax = S[found[0]]
    thr = smax - global_tol * (1.0 + abs(smax))
    maxima = tuple(LocalMaximum(a=A[i].copy(), value=float(S[i]), gradient_norm=float(np.linalg.norm(g[i])),
                                hessian_eigenvalues=w_all[i].copy(), is_global=bool(S[i] >= thr), starts=c)
                   for i, c in zip(found, counts))
    esc_val = float(np.max(S[esc])) if esc.any() else -np.inf
    return ActionMaxima(t=t.copy(), maxima=maxima, escaped=int(esc.sum()), escaped_value=esc_val,
                        global_tol=global_tol)
