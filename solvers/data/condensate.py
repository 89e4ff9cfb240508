"""The condensate of ReLU-type φ on explicit inputs: cuts and the SQP step (THEORY §4, "outliers").

For φ = α₊h₊ + α₋h₋ with α₊ ≠ α₋ the domain constraint q(t) ≤ 1 is active at the finite-P
solution: a vanishing fraction of neurons with |h| → ∞ along the maximising directions u_j carries
an O(1) share of f. The solve is the constrained problem min G(t) s.t. q(t) ≤ ``Q_CAP``, with KKT
conditions

    f̂_bulk + T t − Y + Σ_j μ_j ∇q_j = 0,   μ_j ≥ 0,   ∇q_j = 2σ_a² v_j v_jᵀ t,   v_j = φ(L u_j).

Each Newton step is an SQP step on the surrogate (:func:`constrained_step`): the QP
min ½ΔᵀWΔ + gᵀΔ s.t. q_j + ∇q_jᵀΔ ≤ ``Q_CAP`` over the banked sign patterns with q_j ≥ ``Q_ACTIVE``
plus every banked pattern whose linearisation the step violates (≤ ``MAX_CUTS``), solved through its
k-dimensional dual by NNLS, with the Hessian of the Lagrangian

    W = ∇²Ĝ + Σ_j μ_j ∇²q_j = ∇²Ĝ + σ_a² Σ_j λ_j v_j v_jᵀ ⊗ I_m   (λ_j = 2μ_j, the condensate masses).

Trial points are moved back onto the QP's violated constraints by a second-order correction
(:func:`restore`), then onto all banked ones by t ↦ t·√(Q_CAP/max_j q_j) (:func:`project`; q is
homogeneous of degree 2). The multipliers of the directions on the boundary (q_j ≥ ``Q_ON``) give
the condensate masses: K gains Σ_j λ_j v_j v_jᵀ. Q_CAP < 1 keeps the sampled bulk away from the
singular directions, at an O(1 − Q_CAP) shift of t along the constraint normals. Measurements:
``docs/devlog.md``.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import nnls

from solvers.data.domain import direction_quotients

__all__ = ["Q_ACTIVE", "Q_CAP", "Q_ON", "CUT_ROUNDS", "MAX_CUTS", "condensate_components", "active_directions",
           "constraint_gradients", "condensate_multipliers", "constrained_step", "restore", "project"]

#: condensate (homogeneous φ): directions with q_j(t) ≥ Q_ACTIVE enter the Newton step as
#: linearised constraints q_j ≤ Q_CAP; their multipliers are the condensate masses
Q_ACTIVE, Q_CAP = 0.95, 0.995
#: directions with q_j(t) ≥ Q_ON count as on the boundary (non-zero condensate multiplier allowed)
Q_ON = 0.97
#: cutting-plane recomputations of the Newton step per round before the step is projected
CUT_ROUNDS = 3
#: at most this many distinct sign patterns enter the SQP step as linearised constraints
MAX_CUTS = 32


def condensate_components(bank, L, t, nl, max_components: int = 16):
    """A_D = Lᵀ D t (r × m) for the distinct sign patterns D of L u over the rows u of ``bank``
    (best first), for :meth:`EllipticalSliceChains.set_components`."""
    if not nl.linear_growth or len(bank) == 0:
        return []
    X = bank @ L.T
    _, idx = np.unique(X > 0, axis=0, return_index=True)
    out = []
    for i in np.sort(idx)[:max_components]:  # loop over the few distinct patterns
        d = np.where(X[i] > 0, nl.slope_pos, nl.slope_neg)
        out.append(L.T @ (d[:, None] * t))
    return out


def active_directions(bank, L, t, nl, sa2, q_active: float, max_active: int = 8):
    """Unit directions u_j of ``bank`` with q_j(t) = σ_a²||tᵀφ(Lu_j)||² ≥ ``q_active``, one per sign
    pattern (largest q first, at most ``max_active``): (U (k × r), V = φ(L U) (k × P), q (k,))."""
    if len(bank) == 0:
        return np.zeros((0, L.shape[1])), np.zeros((0, L.shape[0])), np.zeros(0)
    U = bank / np.maximum(np.linalg.norm(bank, axis=1, keepdims=True), 1e-300)
    X = U @ L.T
    V = np.where(X > 0, nl.slope_pos, nl.slope_neg) * X
    q = sa2 * np.sum((V @ t) ** 2, axis=1)
    order = np.argsort(q)[::-1]
    order = order[q[order] >= q_active]
    _, first = np.unique(X[order] > 0, axis=0, return_index=True)
    keep = order[np.sort(first)][:max_active]
    return U[keep], V[keep], q[keep]


def constraint_gradients(V, t, sa2):
    """∇_t q_j = 2σ_a² v_j (v_jᵀ t), flattened (k × P·m) in the index order of t.ravel()."""
    return (2.0 * sa2 * V[:, :, None] * (V @ t)[:, None, :]).reshape(V.shape[0], t.size)


def condensate_multipliers(A, r):
    """μ = argmin_{μ ≥ 0} ||r + Aᵀμ||² (non-negative least squares; A is k × n, r is n)."""
    if A.shape[0] == 0:
        return np.zeros(0)
    return nnls(A.T, -r.ravel())[0]


def constrained_step(make_newton, g, bank, tt, L, nl, sa2):
    """SQP step on the surrogate: min ½ΔᵀWΔ + gᵀΔ s.t. q_j(tt) + ∇q_jᵀΔ ≤ Q_CAP for the banked
    directions with q_j ≥ Q_ACTIVE (one per sign pattern, at most ``MAX_CUTS``), where
    W = ∇²Ĝ + Σ_j μ_j ∇²q_j is the Hessian of the Lagrangian (∇²q_j = 2σ_a² v_j v_jᵀ ⊗ I_m: the
    condensate's own kernel Σ_j λ_j v_j v_jᵀ, λ_j = 2μ_j, which carries an O(1) share of f; without
    it the step overshoots along the curved boundary). Solved through the
    k-dimensional dual min_{μ≥0} ½μᵀMμ − μᵀ(AΔ₀ − b), M = A W⁻¹ Aᵀ, Δ = Δ₀ − W⁻¹Aᵀμ (Δ₀ = −W⁻¹g,
    b_j = Q_CAP − q_j), twice: μ starts from the NNLS fit of g + Aᵀμ ≈ 0 and is then the QP's."""
    _, Vall, qall = active_directions(bank, L, tt, nl, sa2, 0.0, len(bank))  # one per sign pattern
    Aall = constraint_gradients(Vall, tt, sa2)
    sel = np.flatnonzero(qall >= Q_ACTIVE)[:MAX_CUTS]
    mu = condensate_multipliers(Aall[sel], g)
    newton = make_newton((Vall[sel].T * (2.0 * mu)) @ Vall[sel]) if len(sel) else make_newton()
    delta = newton(g)
    for it in range(8):
        # cutting planes inside the step: banked patterns whose linearisation the step violates join
        viol = qall + Aall @ delta.ravel() - Q_CAP
        viol[sel] = -np.inf
        new = np.argsort(viol)[::-1][:8]
        new = new[viol[new] > 1e-3 * Q_CAP]
        if it > 1 and len(new) == 0:  # (it = 1 re-solves with the Lagrangian Hessian)
            break
        sel = np.concatenate([sel, new])[:MAX_CUTS]
        if len(sel) == 0:
            break
        A, qa, V = Aall[sel], qall[sel], Vall[sel]
        delta0 = newton(g)
        HiA = np.array([-newton(a.reshape(tt.shape)).ravel() for a in A])  # W⁻¹ a_j (k solves)
        M = A @ HiA.T
        M = 0.5 * (M + M.T) + 1e-10 * max(float(np.trace(M)), 1e-300) * np.eye(len(qa))
        y = A @ delta0.ravel() - (Q_CAP - qa)  # b_j < 0 pushes a direction above the cap back
        Rc = np.linalg.cholesky(M).T  # M = Rcᵀ Rc: ½μᵀMμ − μᵀy = ½||Rc μ − Rc⁻ᵀ y||² + const
        mu = nnls(Rc, np.linalg.solve(Rc.T, y))[0]
        delta = delta0 - (HiA.T @ mu).reshape(tt.shape)
        if it == 0:  # once: the Lagrangian Hessian with the QP's multipliers
            newton = make_newton((V.T * (2.0 * mu)) @ V)
    if len(sel) == 0:
        return delta, None
    return delta, (V, HiA, M)


def restore(tn, qp, sa2):
    """Second-order correction (SQP, Nocedal & Wright §15.6): for the QP's constraints that the trial
    point violates, tn ← tn − W⁻¹A_vᵀ (A_v W⁻¹ A_vᵀ)⁻¹ (q_v(tn) − Q_CAP), the least-W-norm move back
    onto them (A, W⁻¹Aᵀ from the QP at the step's origin; three passes). Unlike the radial projection
    it leaves the field along unconstrained directions (other classes) unchanged."""
    if qp is None:
        return tn
    V, HiA, M = qp
    for _ in range(3):
        c = sa2 * np.sum((V @ tn) ** 2, axis=1) - Q_CAP
        v = np.flatnonzero(c > 1e-6 * Q_CAP)
        if len(v) == 0:
            break
        lam = np.linalg.lstsq(M[np.ix_(v, v)], c[v], rcond=1e-10)[0]
        tn = tn - (HiA[v].T @ lam).reshape(tn.shape)
    return tn


def project(tn, bank, L, nl, sa2):
    """Feasibility restoration after a step: q_j is homogeneous of degree 2 in t, so t ↦ t·√(Q_CAP/q_max)
    brings every banked direction to q_j ≤ Q_CAP (a second-order correction for a step that slides
    along the curved boundary, where q_j(t + αΔ) = Q_CAP + O(α²) for any α > 0)."""
    qm = float(np.max(direction_quotients(bank, L, tn, nl, sa2))) if len(bank) else 0.0
    return tn * np.sqrt(Q_CAP / qm) if qm > Q_CAP else tn
