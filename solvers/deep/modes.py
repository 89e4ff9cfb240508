"""Local maxima of a batched log density λ(y) (the mode search of the deep solver's proposal-coverage
check and of its mixture proposals; the log density is :func:`theory.deep_layer.log_integrand`).

The search is the shared saddle-free Newton ascent (:func:`solvers.mode_search.ascend`) on
central finite-difference derivatives of λ (:func:`solvers.mode_search.finite_differences`: λ has
no analytic derivatives here). Each mode q gets its Laplace mass
λ(q) + ½ d log 2π − ½ log det(−∇²λ(q)) (:func:`solvers.mode_search.laplace_log_mass`).
:func:`mixture_from_modes` turns the significant modes into a mixture proposal
(:mod:`theory.deep_mixture`): one Laplace component N(q, c (−∇²λ(q))⁻¹) per mode, weighted by its mass.
"""
from __future__ import annotations

import math

import numpy as np

from solvers.mode_search import ascend, distinct, finite_differences, laplace_log_mass
from theory.deep_layer import log_integrand
from theory.deep_mixture import MixtureProposal
from theory.deep_rules import Proposal
from theory.domain_errors import OutsideDomain

__all__ = ["find_modes", "layer_modes", "significant", "mixture_from_modes"]


def find_modes(fun, starts, iters: int = 150, tol: float = 1e-3):
    """Local maxima of ``fun`` (batch → values) from ``starts`` (n, d): at most ``iters`` steps of the
    shared ascent (converged when ‖∇λ‖ ≤ 10⁻³ tol (1 + ‖y‖)); returns (modes, values, log Laplace
    masses λ* + ½ log det(2π (−∇²λ)⁻¹), Hessians), best first, duplicates (distance ≤ 10·tol + 10⁻²)
    merged. End points whose Hessian is not negative definite get mass −inf."""
    X = np.array(starts, dtype=np.float64)
    d = X.shape[1]
    derivatives = finite_differences(fun, d)
    run = ascend(derivatives, X, tol=1e-3 * tol, maxiter=iters, radius=1.0)
    keep = np.isfinite(run.S) & ~run.escaped
    found, _ = distinct(run.A, run.S, keep, rel=0.0, atol=10 * tol + 1e-2)
    modes, vals = run.A[found], run.S[found]
    hessians = [0.5 * (H + H.T) for H in run.hess[found]]
    masses = laplace_log_mass(vals, np.array(hessians).reshape(-1, d, d))
    return modes.reshape(-1, d), vals, masses, hessians


def layer_modes(model, ell: int, t, ker, ev, proposal, rng):
    """Local maxima of layer ℓ's log density λ(y) (:func:`theory.deep_layer.log_integrand`) at the point
    (t, kernels) with evaluation ``ev``: :func:`find_modes` from 48 standard-normal starts, 16 draws of
    the proposal's Gaussian summary, its mean and (mixtures) its component means. Returns
    (modes, log Laplace masses, Hessians)."""
    kw = model.layer_kwargs(ell, t, ker, ev)
    d = model.dims[ell - 1]

    def fun(Y):
        with np.errstate(all="ignore"):
            try:
                return log_integrand(model.oned, model.sizes, model.sigmas[ell - 1], Y, **kw)
            except OutsideDomain:
                return np.full(len(Y), -np.inf)

    pr = proposal
    starts = [rng.standard_normal((48, d)), pr.mean + rng.standard_normal((16, d)) @ pr.chol.T, pr.mean[None, :]]
    if isinstance(pr, MixtureProposal):
        starts.append(pr.means[1:])
    modes, _, masses, hess = find_modes(fun, np.concatenate(starts))
    return modes, masses, hess


def significant(masses, ratio: float = 1e-3):
    """Modes whose Laplace mass is within ``ratio`` of the largest."""
    return masses >= np.max(masses) + math.log(ratio)


def mixture_from_modes(proposal, modes, masses, hess, inflate: float = 1.5, ratio: float = 1e-3):
    """A :class:`theory.deep_mixture.MixtureProposal` with one component per significant mode (Laplace:
    mean the mode, covariance ``inflate`` · (−∇²λ)⁻¹, weight its Laplace mass) and the Gaussian summary of
    ``proposal`` as the defensive component; ``proposal`` unchanged when fewer than one mode has a
    negative definite Hessian."""
    keep = [i for i in np.flatnonzero(significant(masses, ratio)) if np.linalg.eigvalsh(hess[i]).max() < 0]
    if not keep:
        return proposal
    covs = [np.linalg.inv(-hess[i]) for i in keep]
    w = np.exp(masses[keep] - np.max(masses[keep]))
    defensive = proposal if isinstance(proposal, Proposal) else Proposal(proposal.mean, proposal.chol)
    return MixtureProposal.build(defensive, modes[keep], covs, w, inflate=inflate)
