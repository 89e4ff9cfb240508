"""The domain of the explicit-input theory for φ with linear growth (THEORY §2, §4).

Φ(t) = log E_prior e^{ℓ_t(h)} is finite only if

    q(t) = sup_{|u|=1} σ_a² ||tᵀφ∞(L u)||² < 1,   φ∞(x) = α₊x₊ + α₋x₋,

since the tilt grows like ρ²q/2 along the ray h = ρ L u against the prior's ρ²/2. q is a maximum
over exponentially many sign patterns of L u: :func:`domain_lower_bound` refines candidates
(sampled directions of large q) by sign-pattern alternation and projected gradient ascent; every
value it returns is attained, so it is a lower bound. :func:`is_homogeneous` tells whether φ is
exactly α₊h₊ + α₋h₋ (linear, ReLU, leaky ReLU), where the radius integrates out.
"""
from __future__ import annotations

import numpy as np

__all__ = ["DOMAIN_MARGIN", "domain_lower_bound", "direction_quotients", "is_homogeneous"]

#: steps are rejected when the lower bound on q(t) reaches this (Φ(t) = ∞ for q(t) ≥ 1)
DOMAIN_MARGIN = 0.98


def _q_ascent(t, L, slope_pos, slope_neg, sa2, U0, iters=200, eta=0.05):
    """Projected gradient ascent of q(u) = σ_a²||tᵀφ∞(Lu)||² on the unit sphere from every row of
    ``U0`` at once; returns (q (n,), U (n × r)) at the end points.

    ∇q = 2σ_a² Lᵀ(φ∞'(Lu) ⊙ t tᵀφ∞(Lu)); the step is η·∇_⊥q / q (tangential part, scale-free),
    followed by renormalisation. q is piecewise quadratic with a kink on every hyperplane
    (Lu)_μ = 0, so the landscape has many local maxima: the small step follows it instead of
    jumping across patterns (measured step sizes: ``docs/devlog.md``), and the starts matter
    (sampled directions of large q are good ones).
    """
    U = U0 / np.maximum(np.linalg.norm(U0, axis=1, keepdims=True), 1e-300)
    for _ in range(iters):
        X = U @ L.T
        d = np.where(X > 0, slope_pos, slope_neg)
        B = (d * X) @ t
        q = sa2 * np.einsum("ij,ij->i", B, B)
        Gr = 2.0 * sa2 * ((d * (B @ t.T)) @ L)
        Gr -= np.einsum("ij,ij->i", Gr, U)[:, None] * U
        U = U + eta * Gr / np.maximum(q, 1e-300)[:, None]
        U /= np.maximum(np.linalg.norm(U, axis=1, keepdims=True), 1e-300)
    X = U @ L.T
    B = (np.where(X > 0, slope_pos, slope_neg) * X) @ t
    return sa2 * np.einsum("ij,ij->i", B, B), U


def domain_lower_bound(t: np.ndarray, L: np.ndarray, slope_pos: float, slope_neg: float, sigma_a: float,
                       rng: np.random.Generator | None = None, starts: int = 4, iters: int = 30,
                       directions: np.ndarray | None = None, top: int = 4, ascent: int = 200,
                       return_directions: bool = False):
    """Lower bound on q(t) = sup_u σ_a² ||tᵀφ∞(L u)||² / ||u||², φ∞(x) = α₊x₊ + α₋x₋.

    Φ(t) < ∞ needs q(t) < 1 (for φ with linear growth the tilt grows like r²q/2 along the ray
    h = r L u against the prior's r²/2). Every value returned is attained at some unit u, so it
    is a lower bound. Candidates: the linear solution (±), ``starts`` random vectors and the
    ``top`` rows of ``directions`` with the largest quotient (e.g. sampled z). Each candidate
    is refined (a) by alternating the sign pattern D of L u with the top eigenvector of
    Lᵀ D t tᵀ D L (an m-dimensional eigenproblem; exact for linear φ) and (b) by ``ascent``
    steps of projected gradient ascent (:func:`_q_ascent`), vectorised over candidates.
    With ``return_directions`` also returns the refined unit directions (n × r), best first.
    """
    rng = rng or np.random.default_rng(0)
    sa2 = sigma_a**2

    def quotient(U):  # rows of U
        X = U @ L.T
        D = np.where(X > 0, slope_pos, slope_neg) * X
        return sa2 * np.sum((D @ t) ** 2, axis=1) / np.maximum(np.sum(U * U, axis=1), 1e-300)

    M = L.T @ t  # r × m : linear case
    w, V = np.linalg.eigh(M.T @ M)
    u0 = M @ V[:, -1]
    cands = [u0, -u0] + [rng.standard_normal(L.shape[1]) for _ in range(starts)]
    best = sa2 * float(w[-1]) if slope_pos == slope_neg == 1.0 else 0.0
    if directions is not None and len(directions):
        q = quotient(directions)
        order = np.argsort(q)[::-1][:top]
        best = max(best, float(q[order[0]]))
        cands += [directions[i] for i in order]
    refined = []
    for u in cands:  # loop over the few candidates; each refinement is an m-dimensional eigenproblem
        nu = np.linalg.norm(u)
        if nu == 0:
            continue
        u = u / nu
        for _ in range(iters):
            x = L @ u
            d = np.where(x > 0, slope_pos, slope_neg)
            best = max(best, sa2 * float(np.sum((t.T @ (d * x)) ** 2)))  # attained at this unit u
            A = L.T @ (d[:, None] * t)  # r × m: the quotient for the fixed sign pattern d
            _, V = np.linalg.eigh(A.T @ A)
            unew = A @ V[:, -1]
            n = np.linalg.norm(unew)
            if n == 0:
                break
            unew /= n
            if np.allclose(unew, u, atol=1e-10) or np.allclose(unew, -u, atol=1e-10):
                break
            u = unew
        refined.append(u)
    U = np.array(cands + refined, dtype=np.float64)
    U = U[np.linalg.norm(U, axis=1) > 0]
    qa, Ua = _q_ascent(t, L, slope_pos, slope_neg, sa2, U, iters=ascent) if ascent else (quotient(U), U)
    best = max(best, float(qa.max()))
    if return_directions:
        return best, Ua[np.argsort(qa)[::-1]]
    return best


def direction_quotients(Z, L, t, nl, sa2):
    """q along each row direction z: σ_a² ||tᵀφ∞(L z)||² / |z|² (a lower bound on q(t) each)."""
    X = Z @ L.T
    D = np.where(X > 0, nl.slope_pos, nl.slope_neg) * X
    return sa2 * np.sum((D @ t) ** 2, axis=1) / np.maximum(np.sum(Z * Z, axis=1), 1e-300)


def is_homogeneous(nl) -> bool:
    """True if φ(h) = α₊h₊ + α₋h₋ exactly (linear, ReLU, leaky ReLU): φ(r x) = r φ(x) for r > 0."""
    if not nl.linear_growth:
        return False
    x = np.concatenate([-np.logspace(-3, 3, 25), [0.0], np.logspace(-3, 3, 25)])
    ref = nl.slope_pos * np.maximum(x, 0.0) + nl.slope_neg * np.minimum(x, 0.0)
    return bool(np.allclose(nl(x), ref, rtol=1e-12, atol=1e-14))
