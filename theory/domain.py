"""Domain of the log-partition function Φ(t) for class-structured data.

With φ(h) ≈ α± h as h → ±∞, ψ(g) grows like σ_1² κ(g)/2 with
κ(g) = max((α₊g)₊², (−α₋g)₊²) (:meth:`Nonlinearity.kappa`), so along a ray
a = r â the exponent of the a-integrand behaves like

    −(r²/2σ_a²) [1 − σ_a² σ_1² Σ_c P_c κ(t_c·â)],

and Φ(t) < ∞ iff q(t) = max_{|â| = 1} σ_a² σ_1² Σ_c P_c κ(t_c·â) < 1
(THEORY §3; for linear φ, q = λ_max(σ_a² σ_1² tᵀ diag(P) t)). The directions
â* attaining the maximum are the near-marginal, heavy-tailed directions of
p(a) and, at large P, the condensate directions of ReLU networks (THEORY §4).

F(â) = Σ_c P_c κ(t_c·â) is convex, so the fixed-point ascent
â ← ∇F(â)/|∇F(â)| increases F monotonically; it is started from many
directions and the best local maxima are returned.
"""
from __future__ import annotations

import numpy as np

__all__ = ["marginal_directions", "kappa_and_slope", "top_eigenvalue_derivatives"]


def kappa_and_slope(g, alpha_pos, alpha_neg):
    """κ(g) = max(u², v²), u = (α₊g)₊, v = (−α₋g)₊, and dκ/dg."""
    u = np.maximum(alpha_pos * g, 0.0)
    v = np.maximum(-alpha_neg * g, 0.0)
    return np.maximum(u * u, v * v), np.where(u >= v, 2.0 * u * alpha_pos, -2.0 * v * alpha_neg)


def _ascent(t, P, alpha_pos, alpha_neg, starts, iters=500):
    A = starts / np.linalg.norm(starts, axis=1, keepdims=True)
    for _ in range(iters):
        _, dk = kappa_and_slope(A @ t.T, alpha_pos, alpha_neg)
        grad = (P[None, :] * dk) @ t
        norm = np.linalg.norm(grad, axis=1, keepdims=True)
        new = np.where(norm > 0, grad / np.where(norm > 0, norm, 1.0), A)
        done = np.max(np.abs(new - A)) < 1e-13
        A = new
        if done:
            break
    A = np.array([_polish(a, t, P, alpha_pos, alpha_neg) for a in A])
    kappa, _ = kappa_and_slope(A @ t.T, alpha_pos, alpha_neg)
    return A, kappa @ P


def _polish(a, t, P, alpha_pos, alpha_neg):
    """Exact local maximiser: top eigenvector of the active quadratic form Σ_c P_c α_c² t_c t_cᵀ.

    On a cone where each class keeps its branch, F(â) is that quadratic form,
    so its local maximum is an eigenvector; iterate until the branches agree.
    """
    for _ in range(10):
        g = t @ a
        u, v = np.maximum(alpha_pos * g, 0.0), np.maximum(-alpha_neg * g, 0.0)
        coef = np.where(u >= v, alpha_pos, alpha_neg) ** 2 * (np.maximum(u, v) > 0)
        w, V = np.linalg.eigh(t.T @ (t * (P * coef)[:, None]))
        new = V[:, -1] * np.sign(V[:, -1] @ a or 1.0)
        g_new = t @ new
        same = np.array_equal(alpha_pos * g_new > 0, alpha_pos * g > 0) and np.array_equal(
            -alpha_neg * g_new > 0, -alpha_neg * g > 0)
        if not same:
            return a
        if np.allclose(new, a, atol=1e-15, rtol=0):
            return new
        a = new
    return a


def marginal_directions(t, class_sizes, sigma_a, sigma_w, nonlinearity, n_random=16, seed=0, warm=None):
    """Local maximisers â of σ_a²σ_1² Σ_c P_c κ(t_c·â) on the sphere, best first.

    Returns (directions (k, m), q-values (k,)); duplicates are merged.
    ``warm`` adds start directions (for example the previous maximisers).
    """
    t = np.asarray(t, dtype=np.float64)
    P = np.asarray(class_sizes, dtype=np.float64)
    m = t.shape[1]
    ap, an = nonlinearity.slope_pos, nonlinearity.slope_neg
    if ap == 0.0 and an == 0.0 or not np.any(t):
        return np.zeros((0, m)), np.zeros(0)
    w, V = np.linalg.eigh(t.T @ (P[:, None] * t))
    if ap == an:  # κ(g) = α²g² on both sides: a quadratic form, q = its top eigenvalue (±â)
        q = sigma_a**2 * sigma_w**2 * ap**2 * w[::-1]
        return V[:, ::-1].T, q
    rng = np.random.default_rng(seed)
    starts = [np.eye(m), -np.eye(m), t, -t, rng.standard_normal((n_random, m))]
    if warm is not None and len(warm):
        starts.append(np.asarray(warm).reshape(-1, m))
    starts += [V.T, -V.T]
    starts = np.concatenate(starts)
    starts = starts[np.linalg.norm(starts, axis=1) > 0]
    A, F = _ascent(t, P, ap, an, starts)
    q = sigma_a**2 * sigma_w**2 * F
    order = np.argsort(-q)
    dirs, vals = [], []
    for i in order:
        if q[i] <= 0:
            break
        if all(np.linalg.norm(A[i] - d) > 1e-6 for d in dirs):
            dirs.append(A[i])
            vals.append(q[i])
    return np.array(dirs).reshape(-1, m), np.array(vals)


def top_eigenvalue_derivatives(t: np.ndarray, coef: np.ndarray, a_hat: np.ndarray):
    """λ_max(M), its gradient and exact Hessian in t (flattened c·m + r), M = Σ_c coef_c t_c t_cᵀ.

    v_1 is M's top eigenvector (oriented along ``a_hat``). Eigenvalue perturbation theory:
    dλ = v_1ᵀ dM v_1, d²λ = v_1ᵀ d²M v_1 + 2 Σ_{k≥2} (v_kᵀ dM v_1)²/(λ_1 − λ_k), the second term
    being how the top direction turns with t. The domain functions q(t) of the finite-P and the
    large-P problems are a constant times this λ_max (THEORY §3, §4).
    """
    m = t.shape[1]
    M = t.T @ (t * coef[:, None])
    lam, V = np.linalg.eigh(M)
    v1 = V[:, -1] * np.sign(V[:, -1] @ a_hat or 1.0)
    grad = (2 * coef * (t @ v1))[:, None] * v1[None, :]
    hess = np.zeros((m * m, m * m))
    for c in range(len(coef)):
        hess[c * m:(c + 1) * m, c * m:(c + 1) * m] += 2 * coef[c] * np.outer(v1, v1)
    for k in range(m - 1):
        gap = lam[-1] - lam[k]
        if gap <= 1e-12 * max(lam[-1], 1e-300):
            continue
        vk = V[:, k]
        w = (coef * (t @ v1))[:, None] * vk[None, :] + (coef * (t @ vk))[:, None] * v1[None, :]
        hess += 2 * np.outer(w.ravel(), w.ravel()) / gap
    return float(lam[-1]), grad.ravel(), hess
