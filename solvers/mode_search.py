"""The one batched search for the local maxima of a log density S(a) (the single-neuron measure
p(a) ∝ exp S(a; t) of THEORY §3, and its P → ∞ action of THEORY §4).

:func:`ascend` moves k starts a ∈ ℝᵐ together by saddle-free Newton steps with a trust radius r:

    H = V diag(λ) Vᵀ,   δ = V diag(1/(|λ| + ε)) Vᵀ ∇S,   δ ← δ · min(1, r/‖δ‖),

which is the Newton step −H⁻¹∇S where S is concave and an ascent direction elsewhere. A step is
accepted if S does not decrease (then r doubles if the step was clipped), otherwise r shrinks
fourfold. A start is converged when s‖∇S‖ ≤ tol (1 + ‖a‖) (s: the scale of a² over S, e.g. the
prior variance) and H ≺ 0, or when the trust radius has shrunk below 10⁻¹⁴ r₀ (S stalls at
rounding level); a stationary point that is not a maximum is kicked off along its unstable
eigenvector by 10⁻² r₀ and restarts there (at most ``kicks`` times, then it is given up); a start with ‖a‖ > 10⁴ r₀ has escaped (S unbounded
above or asymptotically flat).

Post-processing shared by every caller: :func:`distinct` keeps the chosen rows best first and
merges duplicates (‖a − a'‖ ≤ atol + rel (1 + ‖a'‖), optionally also a' → −a' for odd φ);
:func:`laplace_log_mass` is the Laplace mass of exp S at a maximum,

    log ∫ e^S ≈ S* + ½ m log 2π − ½ log det(−∇²S*).

:func:`finite_differences` builds ``derivatives`` from a value-only batched function by central
differences (step h): ∂_i S = (S(a + h e_i) − S(a − h e_i))/2h,
∂_i∂_j S = (S(a + h e_i + h e_j) − S(a + h e_i − h e_j) − S(a − h e_i + h e_j) + S(a − h e_i − h e_j))/4h².
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = ["Ascent", "ascend", "group", "distinct", "laplace_log_mass", "finite_differences", "rownorm"]


def rownorm(X):
    """‖row‖₂ of a (k, m) array, as np.linalg.norm(X, axis=1) computes it (same rounding)."""
    return np.sqrt(np.add.reduce(X * X, axis=1))


class Ascent(NamedTuple):
    """End points of :func:`ascend`: A (k, m), S (k,), gradients (k, m), Hessians (k, m, m),
    converged and escaped flags (k,)."""

    A: np.ndarray
    S: np.ndarray
    grad: np.ndarray
    hess: np.ndarray
    converged: np.ndarray
    escaped: np.ndarray


def _kick(A, idx, saddle, V, kicked, stuck, unchecked, size, kicks, rng):
    """Push the stationary non-maxima ``idx[saddle]`` off along their unstable eigenvector; returns
    the rows moved."""
    moved = []
    for j in np.flatnonzero(saddle):
        i = idx[j]
        if kicked[i] >= kicks:
            stuck[i] = True  # leave it: not a maximum, not converged
            continue
        kicked[i] += 1
        A[i] = A[i] + size * rng.choice([-1.0, 1.0]) * V[j, :, -1]
        unchecked[i] = True
        moved.append(i)
    return np.array(moved, dtype=np.intp)


def ascend(derivatives, starts, *, tol: float, maxiter: int, radius: float, scale: float = 1.0,
           kicks: int = 5, seed: int = 12345) -> Ascent:
    """Saddle-free Newton ascent with trust radius from every row of ``starts`` at once (module
    docstring). ``derivatives(A) -> (S, ∇S, ∇²S)`` for a (k, m) batch; ``radius``: the initial trust
    radius r₀ (also the scale of the kicks, 10⁻² r₀, and of escape, 10⁴ r₀); ``scale``: s in the
    convergence test (the regularisation of |λ| is 10⁻¹²/s). Starts where S is not finite stay put
    and are not converged.

    All active starts move together: one batched ``eigh`` per iteration (only for the starts whose
    H changed since the last one: rejected steps keep their eigenpairs), one batched evaluation of
    the derivatives at the trial points.
    """
    A = np.array(starts, dtype=np.float64)
    k, m = A.shape
    R = float(radius)
    trust = np.full(k, R)
    S, g, H = derivatives(A)
    done = ~np.isfinite(S)
    stuck = done.copy()  # finished without converging: S not finite, or a saddle kicked too often
    escaped = np.zeros(k, bool)
    kicked = np.zeros(k, int)
    rng = np.random.default_rng(seed)
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
        small = rownorm(gi) * scale <= tol * (1.0 + rownorm(Ai))
        conv = small & (w[:, -1] < 0.0)
        done[idx[conv]] = True
        saddle = small & ~conv
        if saddle.any():
            kick = _kick(A, idx, saddle, V, kicked, stuck, unchecked, 1e-2 * R, kicks, rng)
            done |= stuck
            if kick.size:  # the kicked rows start afresh from where they landed
                S[kick], g[kick], H[kick] = derivatives(A[kick])
                stale[kick] = True
        move = ~small
        if not move.any():
            continue
        idm = idx[move]
        wm, Vm = w[move], V[move]
        gv = np.einsum("krs,kr->ks", Vm, gi[move])
        coef = gv / (np.abs(wm) + 1e-12 / scale)
        # where S curves up, the Newton-size step g_v/λ_v only doubles the distance from a saddle:
        # go to the trust radius along the ascent direction instead
        coef = np.where(wm > 0.0, np.sign(gv) * np.maximum(np.abs(coef), trust[idm, None]), coef)
        step = np.einsum("krs,ks->kr", Vm, coef)
        sn = rownorm(step)
        clip = np.minimum(1.0, trust[idm] / np.maximum(sn, 1e-300))
        step *= clip[:, None]
        trial = Ai[move] + step
        S_new, g_new, H_new = derivatives(trial)
        gain = S_new - S[idm]
        ok = np.isfinite(S_new) & (gain >= -1e-14 * (1.0 + np.abs(S[idm])))
        acc = idm[ok]
        A[acc], S[acc], g[acc], H[acc] = trial[ok], S_new[ok], g_new[ok], H_new[ok]
        stale[acc] = True
        trust[acc] = np.where(clip[ok] < 1.0, 2.0 * trust[acc], trust[acc])
        rej = idm[~ok]
        trust[rej] *= 0.25
        done[rej[trust[rej] < 1e-14 * R]] = True
        escaped[acc[rownorm(trial[ok]) > limit]] = True  # only moved rows can newly run away
        if unchecked.any():
            kick = np.flatnonzero(unchecked)
            escaped[kick[rownorm(A[kick]) > limit]] = True
            unchecked[:] = False
    return Ascent(A, S, g, H, done & ~stuck & ~escaped & np.isfinite(S), escaped)


def group(B, rel: float = 1e-6, atol: float = 0.0, odd: bool = False):
    """Greedy grouping of the rows of B (best first): row i joins the first earlier leader f with
    ‖B_i − B_f‖ ≤ atol + rel·(1 + ‖B_f‖) (or ‖B_i + B_f‖ within it if ``odd``), else it becomes a
    leader. Returns (leader rows, group sizes).

    One vectorised pass per leader: the first row not yet claimed is a leader (every earlier
    leader has claimed the rows close to it), and it claims every later unclaimed row within its
    radius, which is where the row-by-row loop puts them. Cost O(k·m) per leader.
    """
    B = np.asarray(B, dtype=np.float64)
    free = np.ones(len(B), bool)
    radius = atol + rel * (1.0 + rownorm(B))
    found, counts = [], []
    while free.any():
        i = int(np.argmax(free))
        near = rownorm(B - B[i]) <= radius[i]
        if odd:
            near |= rownorm(B + B[i]) <= radius[i]
        claim = free & near
        claim[i] = True
        free &= ~claim
        found.append(i)
        counts.append(int(np.count_nonzero(claim)))
    return found, counts


def distinct(A, S, keep, *, rel: float = 1e-6, atol: float = 0.0, odd: bool = False):
    """The rows ``keep`` of A sorted by S (best first, stable) with duplicates merged (:func:`group`):
    (row indices into A of the representatives, how many rows each one stands for)."""
    keep = np.asarray(keep, bool)
    order = np.flatnonzero(keep)[np.argsort(-np.asarray(S)[keep], kind="stable")]
    found, counts = group(np.asarray(A)[order], rel, atol, odd)
    return order[np.asarray(found, dtype=np.intp)], counts


def laplace_log_mass(S, H):
    """S + ½ m log 2π − ½ log det(−H) per row of S (k,), H (k, m, m); −inf where H is not negative
    definite."""
    S = np.asarray(S, dtype=np.float64)
    if not len(S):
        return np.zeros(0)
    H = np.asarray(H, dtype=np.float64)
    m = H.shape[-1]
    w = np.linalg.eigvalsh(H)
    with np.errstate(invalid="ignore", divide="ignore"):
        mass = S + 0.5 * m * math.log(2 * math.pi) - 0.5 * np.sum(np.log(-w), axis=1)
    return np.where(w[:, -1] < 0.0, mass, -np.inf)


def finite_differences(fun, m: int, h: float = 1e-4):
    """``derivatives(A) -> (S, ∇S, ∇²S)`` from ``fun`` (batch (k, m) → values (k,)) by central
    differences of step h (module docstring), all stencil points in one call of ``fun``. Rows
    where some stencil value is not finite get S = −inf and zero derivatives."""
    eye = np.eye(m)
    i, j = np.triu_indices(m, 1)
    # stencil offsets: 0, ±h e_i, and ±h e_i ± h e_j (i < j)
    pair = [eye[i] + eye[j], eye[i] - eye[j], -eye[i] + eye[j], -eye[i] - eye[j]]
    offsets = h * np.concatenate([np.zeros((1, m)), eye, -eye] + pair)
    n_pair = len(i)

    def derivatives(A):
        A = np.asarray(A, dtype=np.float64)
        k = len(A)
        F = np.asarray(fun((A[:, None, :] + offsets[None]).reshape(-1, m)), dtype=np.float64).reshape(k, -1)
        f0, fp, fm = F[:, 0], F[:, 1:1 + m], F[:, 1 + m:1 + 2 * m]
        H = np.empty((k, m, m))
        with np.errstate(invalid="ignore"):  # inf − inf where a stencil leaves the domain
            grad = (fp - fm) / (2 * h)
            H[:, np.arange(m), np.arange(m)] = (fp - 2 * f0[:, None] + fm) / (h * h)
            if n_pair:
                q = F[:, 1 + 2 * m:].reshape(k, 4, n_pair)
                off = (q[:, 0] - q[:, 1] - q[:, 2] + q[:, 3]) / (4 * h * h)
                H[:, i, j] = off
                H[:, j, i] = off
        good = np.all(np.isfinite(F), axis=1)
        S = np.where(good, f0, -np.inf)
        grad[~good] = 0.0
        H[~good] = 0.0
        return S, grad, H

    return derivatives
