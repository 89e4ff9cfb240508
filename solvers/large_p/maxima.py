"""All local maxima of the action S(a; t) (THEORY §4, eq. (4.1) of :mod:`solvers.large_p.problem`).

At P → ∞ the single-neuron measure exp(P·S(a; t)) concentrates on the
global maxima of S, so the branches of the solution are global maximisers
and everything hinges on finding them reliably. :func:`maximise_action`

* starts from a deterministic set (a = 0; ± scaled axes e_r; ± class
  directions t̂_c and their pairwise sums ± t̂_c ± t̂_d; several radii set by
  the fixed-point scale of a = σ̄_a² Σ_c ρ_c ψ'(t_c·a) t_c), random points,
  and optional warm starts (for example the previous maxima);
* runs a vectorised saddle-free Newton ascent with trust radius, using the
  analytic gradient and Hessian: δ = V diag(1/|λ|) Vᵀ ∇S, which is the
  Newton step −H⁻¹∇S where S is concave and an ascent step elsewhere;
  stationary points that are not maxima (a = 0 of an odd φ below T_c) are
  pushed off along the unstable eigenvector;
* clusters the converged points and reports every local maximum with its
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


def _rownorm(X):
    """‖row‖₂ of a (k, m) array, as np.linalg.norm(X, axis=1) computes it (same rounding)."""
    return np.sqrt(np.add.reduce(X * X, axis=1))


def _ascent(problem, t, A, tol, maxiter, R):
    """Vectorised saddle-free Newton with trust radius; returns (A, S, g, H, converged, escaped).

    All active starts move together: one batched ``eigh`` of the stacked Hessians H = V diag(λ) Vᵀ
    per iteration (only for the starts whose H changed since the last one: rejected steps keep
    their eigenpairs), step δ = V diag(1/|λ|) Vᵀ ∇S clipped to the trust radius, one batched
    evaluation of S at the trial points.
    """
    k, m = A.shape
    sa2 = problem.sigma_a_bar**2
    radius = np.full(k, R)
    done = np.zeros(k, bool)
    escaped = np.zeros(k, bool)
    kicked = np.zeros(k, int)
    rng = np.random.default_rng(12345)
    S, g, H = problem.action(A, t)
    w_all, V_all = np.empty((k, m)), np.empty((k, m, m))
    stale = np.ones(k, bool)  # H changed since its eigenpairs were computed
    unchecked = np.zeros(k, bool)  # kicked since the last escape check
    limit = 1e4 * R
    for _ in range(maxiter):
        idx = np.flatnonzero(~(done | escaped))
        if not idx.size:
            break
        redo = idx[stale[idx]]
        if redo.size:
            w_all[redo], V_all[redo] = np.linalg.eigh(H[redo])
            stale[redo] = False
        w, V = w_all[idx], V_all[idx]
        gi, Ai = g[idx], A[idx]
        small = _rownorm(gi) * sa2 <= tol * (1.0 + _rownorm(Ai))
        conv = small & (w[:, -1] < 0.0)
        done[idx[conv]] = True
        saddle = small & ~conv
        # push stationary non-maxima off along the unstable eigenvector (a few times at most)
        for j in np.flatnonzero(saddle):
            i = idx[j]
            if kicked[i] >= 5:
                done[i] = True  # leave it; it is reported only if it is a maximum (it is not)
                continue
            kicked[i] += 1
            A[i] = A[i] + (1e-2 * R) * rng.choice([-1.0, 1.0]) * V[j, :, -1]
            unchecked[i] = True
        move = ~small
        if not move.any():
            S[idx], g[idx], H[idx] = problem.action(A[idx], t)
            stale[idx] = True
            continue
        idm = idx[move]
        wm, Vm = w[move], V[move]
        coef = np.einsum("krs,kr->ks", Vm, gi[move]) / (np.abs(wm) + 1e-12 / sa2)
        step = np.einsum("krs,ks->kr", Vm, coef)
        sn = _rownorm(step)
        scale = np.minimum(1.0, radius[idm] / np.maximum(sn, 1e-300))
        step *= scale[:, None]
        trial = Ai[move] + step
        S_new, g_new, H_new = problem.action(trial, t)
        gain = S_new - S[idm]
        ok = np.isfinite(S_new) & (gain >= -1e-14 * (1.0 + np.abs(S[idm])))
        acc = idm[ok]
        A[acc], S[acc], g[acc], H[acc] = trial[ok], S_new[ok], g_new[ok], H_new[ok]
        stale[acc] = True
        radius[acc] = np.where(scale[ok] < 1.0, 2.0 * radius[acc], radius[acc])
        rej = idm[~ok]
        radius[rej] *= 0.25
        done[rej[radius[rej] < 1e-14 * R]] = True
        escaped[acc[_rownorm(trial[ok]) > limit]] = True  # only moved rows can newly run away
        if unchecked.any():
            kick = np.flatnonzero(unchecked)
            escaped[kick[_rownorm(A[kick]) > limit]] = True
            unchecked[:] = False
    return A, S, g, H, done & ~escaped, escaped


def _group(B, rel: float = 1e-6):
    """Greedy grouping of the rows of B (best first): row i joins the first earlier leader f with
    ‖B_i − B_f‖ ≤ rel·(1 + ‖B_f‖), else it becomes a leader. Returns (leader rows, group sizes).

    One vectorised pass per leader instead of a loop over (row, leader) pairs: the first row not
    yet claimed is a leader (every earlier leader has claimed the rows close to it), and it claims
    every later unclaimed row within its radius, which is where the row-by-row loop puts them.
    Cost O(k·m) per leader, memory O(k·m).
    """
    B = np.asarray(B, dtype=np.float64)
    free = np.ones(len(B), bool)
    radius = rel * (1.0 + _rownorm(B))
    found, counts = [], []
    while free.any():
        i = int(np.argmax(free))
        claim = free & (_rownorm(B - B[i]) <= radius[i])
        claim[i] = True
        free &= ~claim
        found.append(i)
        counts.append(int(np.count_nonzero(claim)))
    return found, counts


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
    A, S, g, H, conv, esc = _ascent(problem, t, A0.copy(), tol, maxiter, R)
    w_all = np.linalg.eigvalsh(H)
    is_max = conv & (w_all[:, -1] < 0.0) & np.isfinite(S)
    order = np.flatnonzero(is_max)[np.argsort(-S[is_max], kind="stable")]
    found, counts = _group(A[order])
    found = [int(order[i]) for i in found]
    if not found:  # nothing converged: report the best stationary-ish point honestly as not a maximum
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
