"""The condensates of the hidden layers 1 <= ℓ < L of a deep ReLU network as KKT unknowns: the terms of any
hidden layer's domain constraint q_ℓ <= 1 (THEORY §4 condensate, §5 deep networks; the multipliers and their
complementarity: :mod:`solvers.deep.complementarity`; the start of its homotopy in P at L >= 3:
:mod:`solvers.deep.small_p_start`).

Hidden layer ℓ < L, p(h^ℓ) ∝ N(h; 0, σ_ℓ² K_{ℓ-1}) exp(½ φᵀ K̃_ℓ φ) with class-block K_{ℓ-1} = E k Eᵀ + D_δ
(K_0 = I) and tilt K̃_ℓ = E k̃ Eᵀ + D_δ̃, has the y-integral of :mod:`theory.deep_blocks` over y = (v, w) (w only
for ℓ >= 2), u = B v (B = chol k̃), ξ = σ R w (k = R Rᵀ), s_c = σ √δ_c, which converges iff
q_ℓ = 2 max_ŷ Σ_c P_c g_c(u_c, ξ_c) < 1 (:func:`theory.deep_condensate.hidden_domain`; for ℓ = 1 the
first layer's domain of :func:`solvers.deep.kkt.tilted_first_layer`, for ℓ >= 2 the input kernel varies with
the unknowns). At its boundary the layer condenses as the readout does: with the multiplier μ >= 0 of q_ℓ <= 1,
log Z_ℓ gains μ (q_ℓ − 1), and by Danskin's theorem at the tracked maximiser ŷ*,

    K_ℓ = 2 ∂ log Z_ℓ/∂K̃_ℓ   gains 2μ ∂q_ℓ/∂K̃_ℓ:   k_cd += 2μ S̃_cd/(P_c P_d),
                                                    δ_c += 2μ (∂q/∂δ̃_c)/P_c − 2μ S̃_cc/P_c²,
    K̃_{ℓ-1} = 2 ∂ log Z_ℓ/∂K_{ℓ-1} gains 2μ ∂q_ℓ/∂K_{ℓ-1}: k̃_cd += 2μ S_cd/(P_c P_d),
                                                    δ̃_c += 2μ (∂q/∂δ_c)/P_c − 2μ S_cc/P_c²,

with S̃ = ∂q/∂k̃, S = ∂q/∂k (:func:`theory.deep_condensate.hidden_gradients`; the class-block bookkeeping of
tr K̃ K as in :func:`solvers.deep.kkt.condensate_terms`). The first part is the first layer's term of
:func:`solvers.deep.kkt.first_layer_terms` (ℓ = 1, no input kernel), the second the readout's K̃_{L-1} term of
:func:`solvers.deep.kkt.condensate_terms`; a middle layer 2 <= ℓ <= L − 1 has both. The outliers are neurons of
layer ℓ with O(√N) class-shared activations h*_c along the code {c : h*_c > 0}.
"""
from __future__ import annotations

import numpy as np

from theory.deep_condensate import hidden_domain, hidden_gradients
from theory.deep_fields import tilt_factor
from theory.domain_errors import OutsideDomain

__all__ = ["HiddenFields", "hidden_fields", "hidden_terms", "tracked_hidden", "middle_layer_terms",
           "hidden_maximisers"]


class HiddenFields:
    """(B, C, s, d, σ, δ_in) of hidden layer ℓ's domain (module docstring): C and δ_in None for ℓ = 1."""

    def __init__(self, B, C, s, d, sigma, delta_in):
        self.B, self.C, self.s, self.d, self.sigma, self.delta_in = B, C, s, d, sigma, delta_in

    def args(self):
        return self.B, self.C, self.s, self.d

    def domain(self, sizes, previous=None):
        return hidden_domain(*self.args(), sizes, previous=previous)


def hidden_fields(kt, dt, sigma: float, R_in=None, delta_in=None) -> HiddenFields:
    """The :class:`HiddenFields` of a hidden layer with tilt (k̃, δ̃) = (``kt``, ``dt``), prior ``sigma`` and input
    kernel k = R_in R_inᵀ, δ = ``delta_in`` (both None for ℓ = 1); :class:`OutsideDomain` where a 1-D integral
    diverges (some A_c = 1 − δ̃_c s_c² <= 0)."""
    m = len(dt)
    B, d = tilt_factor(m, kt=kt, dt=dt)
    if R_in is None:
        C, s = None, np.full(m, float(sigma))
    else:
        delta_in = np.asarray(delta_in, dtype=np.float64)
        C, s = sigma * np.asarray(R_in, dtype=np.float64), sigma * np.sqrt(delta_in)
    if np.any(1.0 - d * s * s <= 0.0):
        raise OutsideDomain("hidden layer's tilt: some 1 − δ̃ s² <= 0")
    return HiddenFields(B, C, s, d, float(sigma), delta_in)


def hidden_terms(fields: HiddenFields, sizes, dirs, multipliers):
    """(Δk_ℓ, Δδ_ℓ, Δk̃_{ℓ-1}, Δδ̃_{ℓ-1}) of the maximisers ``dirs`` (rows ŷ) with ``multipliers`` (module
    docstring); the last two None for ℓ = 1."""
    P = np.asarray(sizes, dtype=np.float64)
    m = len(P)
    dk, dd = np.zeros((m, m)), np.zeros(m)
    kt, dt = (None, None) if fields.C is None else (np.zeros((m, m)), np.zeros(m))
    for y, mu in zip(dirs, multipliers):
        St, gt, S, g = hidden_gradients(y, *fields.args(), P, fields.sigma, fields.delta_in)
        dk += 2.0 * mu * St / np.outer(P, P)
        dd += 2.0 * mu * (gt / P - np.diag(St) / P**2)
        if kt is not None:
            kt += 2.0 * mu * S / np.outer(P, P)
            dt += 2.0 * mu * (g / P - np.diag(S) / P**2)
    return dk, dd, kt, dt


def tracked_hidden(fields: HiddenFields, sizes, previous):
    """(directions (k, 2m), q (k,)) of the maximisers tracked one by one from the rows of ``previous``;
    :class:`OutsideDomain` if one is lost."""
    dirs, q = [], []
    for y in np.atleast_2d(previous):
        dom = fields.domain(sizes, previous=y[None, :])
        if len(dom.q) != 1:
            raise OutsideDomain("a hidden layer's maximiser of the condensate was lost while tracking")
        dirs.append(dom.directions[0])
        q.append(dom.q[0])
    return np.array(dirs).reshape(-1, 2 * len(sizes)), np.array(q)


def middle_layer_terms(hook, block: int, model, ell: int, r, kw):
    """Layer ``ell``'s result ``r`` (2 <= ℓ < L, layer arguments ``kw`` of
    :meth:`solvers.deep.model.DeepModel.evaluate`) with the KKT terms of the maximisers of ``hook``'s set
    ``block`` (:class:`solvers.deep.complementarity.Multipliers`), their q and positions recorded in ``hook``."""
    from dataclasses import replace

    fields = hidden_fields(kw["kt"], kw["dt"], model.sigmas[ell - 1], kw["R_in"], kw["delta_in"])
    dirs, q = tracked_hidden(fields, model.sizes, hook.sets[block])
    hook._check(q, f"layer {ell}'s")
    sl = hook.slice(block)
    hook.q[sl] = q
    hook.tracked[block] = dirs
    mu = hook.mu[sl]
    dk, dd, kt, dt = hidden_terms(fields, model.sizes, dirs, mu)
    return replace(r, k=r.k + dk, delta=r.delta + dd, kt_in=r.kt_in + kt, dt_in=r.dt_in + dt,
                   log_z=r.log_z + float(mu @ (q - 1.0)))


def _is_local_maximum(fields: HiddenFields, sizes, y, size: float = 1e-3, tries: int = 4) -> bool:
    """Whether ascents from ``tries`` random perturbations of size ``size`` return to ``y`` (a maximum of the
    hidden layer's domain function, not a stationary saddle)."""
    rng = np.random.default_rng(0)
    for _ in range(tries):
        d = fields.domain(sizes, previous=(y + size * rng.standard_normal(len(y)))[None, :]).directions
        if len(d) != 1 or float(d[0] @ y) < 1.0 - 1e-6:
            return False
    return True


def hidden_maximisers(model, x, ev, q_min: float):
    """([maximisers (k, 2m)], [their q]) of each middle layer ℓ = 2..L−1 with q >= ``q_min`` at the packed point
    ``x`` with evaluation ``ev`` (the full search of :func:`theory.deep_condensate.hidden_domain`, local maxima
    only)."""
    _, ker = model.unpack(np.asarray(x, dtype=np.float64)[:model.nt + (model.L - 1) * (model.ntri + model.m)])
    sets, qs = [], []
    for ell in range(2, model.L):
        up = ev["layers"][ell]  # the tilt of layer ℓ comes from layer ℓ + 1
        R, delta = ker[ell - 2]
        try:
            fields = hidden_fields(up.kt_in, up.dt_in, model.sigmas[ell - 1], R, delta)
        except OutsideDomain:
            sets.append(np.zeros((0, 2 * model.m)))
            qs.append(np.zeros(0))
            continue
        dom = fields.domain(model.sizes)
        keep = (dom.q >= q_min) & np.array([_is_local_maximum(fields, model.sizes, y) for y in dom.directions],
                                           dtype=bool)
        sets.append(dom.directions[keep])
        qs.append(dom.q[keep])
    return sets, qs
