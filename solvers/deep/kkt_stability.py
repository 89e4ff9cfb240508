"""Stability of a deep ReLU KKT point (THEORY §4, §5; the KKT equations: :mod:`solvers.deep.complementarity`;
the unconstrained criterion: :func:`solvers.deep.saddle.stability`).

Without constraints a saddle is stable iff Ψ(K) = min_C S(C, K) (C = (t, K̃_ℓ), the field and conjugates; K the
kernels) is at a local maximum: ∇²Ψ = S_KK − S_KC S_CC⁻¹ S_CK negative definite. With the domain constraints
g_j(C, K) = q_j − 1 <= 0 of the readout (q_j depends on t and K_{L-1}) and of the first layer (on K̃_1) the inner
problem is the convex program Ψ(K) = min_C {S(C, K) : g(C, K) <= 0} (S is convex in C and each q_j is a maximum of
convex quadratics), and with the active set A fixed (strict complementarity: μ_j > 0 on A, g_j < 0 off A) the
sensitivity theorem of nonlinear programming (Fiacco & McCormick 1968; Nocedal & Wright, Numerical Optimization,
§12.8) gives Ψ's Hessian as the Hessian of the Lagrangian ℒ = S + Σ_{j∈A} μ_j g_j, minimised over the tangent space
of the active constraints:

    dC = Z η − G_C⁺ G_K dK,   (Z: a basis of the null space of G_C = ∂g_A/∂C, G_K = ∂g_A/∂K),
    ∇²Ψ = the Schur complement over η of Wᵀ ∇²ℒ W,   W = [[Z, −G_C⁺ G_K], [0, I]],

which is :func:`solvers.deep.saddle.reduced_hessian` applied to Wᵀ ∇²ℒ W (the unconstrained criterion restricted
to the tangent space; at A = ∅ it is that criterion). The saddle is stable iff every eigenvalue is negative and the
KKT signs hold: μ_j >= 0, and strictly complementary (the smallest μ on A and the smallest margin 1 − q off A
positive, reported with the largest margin on A and the largest μ off A). ∇ℒ is
:func:`solvers.deep.saddle.action_gradient` with the multipliers' hook at fixed μ; ∇²ℒ and G by forward differences.
The stability is computed in the full coordinates, so the directions that break the symmetry of equal-size classes
(:mod:`solvers.deep.class_symmetry`) are included.
"""
from __future__ import annotations

import numpy as np

from solvers.deep.saddle import action_gradient, full_point, reduced_hessian
from theory.domain_errors import OutsideDomain

__all__ = ["KKTStability", "active_set", "tangent_space_hessian", "constrained_stability"]


class KKTStability(dict):
    """The stability record of a KKT point (a dict, for JSON): ``eigenvalues`` of ∇²Ψ on the active constraints'
    tangent space, ``stable``, ``active`` (indices), ``min_active_multiplier``, ``max_active_margin``,
    ``min_inactive_margin``, ``max_inactive_multiplier``, ``strictly_complementary``, ``message``."""


def active_set(mu, margins) -> np.ndarray:
    """Indices of the active constraints: μ_j > 1 − q_j (at δ = 0 the complementarity makes one of them 0)."""
    return np.flatnonzero(np.asarray(mu) > np.asarray(margins))


def _hessians(model, x, ev, props, step: float = 1e-6):
    """(∇²ℒ, ∂q/∂z, the number of C coordinates) at the KKT point by forward differences of
    :func:`solvers.deep.saddle.action_gradient` with the multipliers' hook (μ as in ``x``)."""
    hook = model.condensate
    hook.mu = model.multipliers(x).copy()
    cz, kz = full_point(model, np.asarray(x)[:model.n_base], ev)
    z0, nc = np.concatenate([cz, kz]), len(cz)

    def grad(z):
        g = np.concatenate(action_gradient(model, z[:nc], z[nc:], props, hook=hook))
        return g, hook.q.copy()

    with np.errstate(all="ignore"):
        g0, q0 = grad(z0)
        H, G = np.empty((len(z0), len(z0))), np.empty((len(q0), len(z0)))
        for j in range(len(z0)):
            h = step * max(1.0, abs(z0[j]))
            zp = z0.copy()
            zp[j] += h
            gp, qp = grad(zp)
            H[:, j], G[:, j] = (gp - g0) / h, (qp - q0) / h
    hook.retrack()
    return H, G, nc


def tangent_space_hessian(H, G, nc: int):
    """∇²Ψ (module docstring) from the Hessian ``H`` of the Lagrangian in z = (C, K), C the first ``nc``
    coordinates, and the gradients ``G`` (rows) of the active constraints: the Schur complement over the null space
    of G_C of Wᵀ H W, W = [[Z, −G_C⁺ G_K], [0, I]] (:func:`solvers.deep.saddle.reduced_hessian`); None if G_C has
    rank below the number of active constraints."""
    H, G = np.asarray(H, dtype=np.float64), np.asarray(G, dtype=np.float64).reshape(-1, len(H))
    nk = len(H) - nc
    GC, GK = G[:, :nc], G[:, nc:]
    if not len(G):
        return reduced_hessian(H, nc)
    _, s, vt = np.linalg.svd(GC)
    rank = int(np.sum(s > 1e-10 * max(float(s.max(initial=0.0)), 1e-300)))
    if rank < len(G):
        return None
    Z = vt[rank:].T
    W = np.block([[Z, -np.linalg.pinv(GC) @ GK], [np.zeros((nk, Z.shape[1])), np.eye(nk)]])
    return reduced_hessian(W.T @ H @ W, Z.shape[1])


def constrained_stability(model, x, ev, props) -> KKTStability:
    """The stability of the KKT point ``x`` of ``model`` (a :class:`solvers.deep.complementarity.KKTModel`,
    evaluation ``ev``, proposals ``props``; module docstring)."""
    mu, margins = model.multipliers(x), 1.0 - np.asarray(ev["q"])
    act = active_set(mu, margins)
    off = np.setdiff1d(np.arange(len(mu)), act)
    out = KKTStability(active=act.tolist(),
                       min_active_multiplier=float(np.min(mu[act])) if len(act) else None,
                       max_active_margin=float(np.max(margins[act])) if len(act) else None,
                       min_inactive_margin=float(np.min(margins[off])) if len(off) else None,
                       max_inactive_multiplier=float(np.max(mu[off])) if len(off) else None)
    zero = 1e-12 * max(1.0, float(np.max(np.abs(mu), initial=0.0)))  # rounding of a vanishing multiplier
    out["strictly_complementary"] = bool(np.all(mu >= -zero) and (not len(act) or np.min(mu[act]) > zero)
                                         and (not len(off) or np.min(margins[off]) > 0.0))
    try:
        H, G, nc = _hessians(model, x, ev, props)
    except (OutsideDomain, np.linalg.LinAlgError) as err:
        out.update(eigenvalues=[float("nan")], stable=False, message=f"Hessian not evaluable: {err}")
        return out
    psi = tangent_space_hessian(H, G[act], nc)
    if psi is None:
        out.update(eigenvalues=[float("nan")], stable=False,
                   message="the active constraints' gradients in (t, K̃) are linearly dependent")
        return out
    eig = np.linalg.eigvalsh(psi)
    stable = bool(np.all(eig < 0.0)) and out["strictly_complementary"]
    out.update(eigenvalues=eig.tolist(), stable=stable,
               message=(f"{len(act)} active constraints, largest eigenvalue of the reduced Hessian "
                        f"{eig.max():.3g}" + ("" if out["strictly_complementary"] else "; NOT strictly complementary")))
    return out
