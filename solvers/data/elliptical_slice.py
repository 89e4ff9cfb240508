"""One vectorised generalised elliptical slice update for many chains at once.

Elliptical slice sampling (Murray, Adams & MacKay, AISTATS 2010) targets
π(z) ∝ N(z; μ, S) L(z) with a Gaussian reference N(μ, S) and a likelihood L. From the
current z, an auxiliary ν ~ N(0, S) and the slice level log y = log L(z) + log u, u ~ U(0, 1),
it proposes points on the ellipse

    z(θ) = μ + (z − μ) cos θ + ν sin θ,

with θ first drawn uniformly on [0, 2π) and the bracket [θ − 2π, θ] shrunk towards 0 after
every rejection, until log L(z(θ)) > log y. The move leaves π invariant for any reference; with
a reference that is not the prior ("generalised" ESS, Nishihara, Murray & Adams, JMLR 2014) the
likelihood passed here is log(target / reference). θ → 0 returns the current point, so the loop
ends; ``max_rounds`` only bounds pathological cases (the unfinished chains then keep their state,
which is still exact because the current point is always in the slice).

Used by the general-input samplers: :class:`solvers.data.solve.EllipticalSliceChains`,
:mod:`solvers.data.smc` and :class:`solvers.data.branches.TiltedChains`.
"""
from __future__ import annotations

import numpy as np

__all__ = ["elliptical_slice_update", "fit_gaussian_references"]


def elliptical_slice_update(rng: np.random.Generator, Z: np.ndarray, ll: np.ndarray, centre: np.ndarray,
                            nu: np.ndarray, loglik, max_rounds: int = 200):
    """Update every row of ``Z`` (C × r) once; returns (Z_new, ll_new, rejections).

    ``ll``: current log-likelihoods (C,); ``centre``: the reference means per row (C × r, or
    broadcastable); ``nu``: draws from the reference covariance per row (C × r); ``loglik(prop,
    rows)``: log-likelihoods of the proposals ``prop`` for the chains ``rows`` (indices into Z).
    The shrinkage loop runs over the still-active chains as arrays (no loop over chains).
    """
    C = Z.shape[0]
    D = Z - centre
    centre = np.broadcast_to(centre, Z.shape)
    logy = ll + np.log(rng.random(C))
    theta = rng.uniform(0.0, 2 * np.pi, C)
    lo, hi = theta - 2 * np.pi, theta.copy()
    newZ, newll = Z.copy(), ll.copy()
    active = np.arange(C)
    rejections = 0
    for _ in range(max_rounds):
        th = theta[active]
        prop = centre[active] + D[active] * np.cos(th)[:, None] + nu[active] * np.sin(th)[:, None]
        lp = loglik(prop, active)
        ok = lp > logy[active]
        newZ[active[ok]] = prop[ok]
        newll[active[ok]] = lp[ok]
        rej, thr = active[~ok], th[~ok]
        neg = thr < 0
        lo[rej[neg]] = thr[neg]
        hi[rej[~neg]] = thr[~neg]
        theta[rej] = rng.uniform(lo[rej], hi[rej])
        active = rej
        rejections += rej.size
        if active.size == 0:
            break
    return newZ, newll, rejections


def fit_gaussian_references(Zg: np.ndarray, shrink: float = 0.05):
    """Gaussian references N(μ_g, S_g) for groups of samples ``Zg`` (G × n × r), in whitened prior
    coordinates: S_g = (1 − shrink) Cov_g + shrink I (eigenvalues floored at 1e-6, so S ≻ 0 with few
    samples). Returns (μ (G × r), C (G × r × r) with C Cᵀ = S, S⁻¹ − I (G × r × r), log det S (G,))."""
    r = Zg.shape[2]
    mu = Zg.mean(axis=1)
    D = Zg - mu[:, None, :]
    S = np.einsum("gni,gnj->gij", D, D) / max(Zg.shape[1] - 1, 1)
    S = (1.0 - shrink) * S + shrink * np.eye(r)[None]
    lam, Q = np.linalg.eigh(0.5 * (S + S.transpose(0, 2, 1)))
    lam = np.maximum(lam, 1e-6)
    C = Q * np.sqrt(lam)[:, None, :]
    Dprec = np.einsum("gij,gj,gkj->gik", Q, 1.0 / lam, Q) - np.eye(r)[None]
    return mu, C, Dprec, np.log(lam).sum(axis=1)
