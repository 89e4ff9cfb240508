"""Starting field and burn-in of the explicit-input theory (THEORY §2).

Bounded φ: the class-aligned t0 = αY; linear-growth φ: the GP-like t0 = α(σ_a² K_prior + T I)⁻¹Y;
both scaled so that the mean prior tilt E_prior[ℓ_t] = (σ_a²/2) tr(tᵀK_prior t) is ≤ m/2 and, for
linear-growth φ, so that the domain bound (refined from burned-in samples) is q(t0) ≤ 1/2.
"""
from __future__ import annotations

import numpy as np

from solvers.data.chains import EllipticalSliceChains, prior_factor
from solvers.data.condensate import condensate_components
from solvers.data.domain import domain_lower_bound
from solvers.data.options import GeneralOptions
from theory.gp import feature_kernel
from theory.nonlinearities import get_nonlinearity
from theory.spec import ModelSpec

__all__ = ["initial_field", "burn_in", "starting_field"]


def initial_field(spec, K0, L, nl, rng):
    """Start field, scaled so that the mean prior tilt is ≤ m/2 and q(t) ≤ 1/2 (linear-growth φ).

    Linear-growth φ: GP-like t = α (σ_a² K_prior + T I)⁻¹ Y. Bounded φ (erf, Φ, tanh): the class-
    aligned t = α Y: the GP field's large within-class alternating components (small eigenvalues of
    K0 on real data) make p_t strongly multimodal for bounded φ (measurements: ``docs/devlog.md``)."""
    Kp, _ = feature_kernel(spec.nonlinearity, spec.sigma_w**2 * K0)
    Y = spec.targets()
    if nl.linear_growth:
        A = spec.sigma_a**2 * Kp + max(spec.temperature, 1e-3 * float(np.mean(np.diag(Kp)))) * np.eye(len(K0))
        t = np.linalg.solve(A, Y)
    else:
        t = Y.astype(np.float64).copy()
    # keep the prior-averaged tilt E_prior[ℓ_t] = (σ_a²/2) tr(tᵀ K_prior t) at most m/2: a strongly
    # tilted (multimodal) start is hard to sample, and Newton moves t out from there
    tilt = 0.5 * spec.sigma_a**2 * float(np.sum(t * (Kp @ t)))
    if tilt > 0.5 * spec.m:
        t *= np.sqrt(0.5 * spec.m / tilt)
    if nl.linear_growth:
        q = domain_lower_bound(t, L, nl.slope_pos, nl.slope_neg, spec.sigma_a, rng)
        if q > 0.5:
            t *= np.sqrt(0.5 / q)
    return t


def burn_in(spec, opt, t, L, nl, rng):
    """Chains and burn-in at the starting field; for linear-growth φ the field is scaled until the
    domain bound (refined from the burned-in samples) is q(t0) ≤ 1/2. Returns (sampler, t0, bank, nb)."""
    betas = np.geomspace(opt.beta_min, 1.0, opt.tempering) if opt.tempering > 1 else None
    sampler = EllipticalSliceChains(L, spec.nonlinearity, spec.sigma_a, opt.chains, rng, betas=betas)
    sampler.set_field(t)
    nb = max(opt.sweeps, 20)
    r_dim = L.shape[1]
    bank = np.zeros((0, r_dim))  # directions of large q (refined samples): witnesses for the domain check
    for _ in range(4):  # burn-in at t0
        Zb = sampler.run(nb, opt.keep, nb // 2).reshape(-1, r_dim)
        sampler.adapt(Zb)
        if not nl.linear_growth:
            break
        qb, dirs = domain_lower_bound(t, L, nl.slope_pos, nl.slope_neg, spec.sigma_a, rng, starts=16,
                                      directions=np.concatenate([Zb, bank]), top=64, return_directions=True)
        bank = dirs[:64]
        if qb <= 0.5:
            sampler.set_components(condensate_components(bank, L, t, nl))
            break
        t = t * np.sqrt(0.5 / qb)  # q is homogeneous of degree 2 in t
        sampler.Z = np.random.default_rng(rng.integers(2**63)).standard_normal(sampler.Z.shape)
        sampler.reset_reference()
        sampler.set_field(t)
    return sampler, t, bank, nb


def starting_field(spec: ModelSpec, options: GeneralOptions | None = None) -> np.ndarray:
    """The field t0 (P × m) at which :func:`solve_general` starts its first round (GP-like field,
    scaled into the domain as in :func:`burn_in`)."""
    opt = options or GeneralOptions()
    rng = np.random.default_rng(opt.seed)
    nl = get_nonlinearity(spec.nonlinearity)
    K0 = spec.input_kernel()
    L = prior_factor(K0, spec.sigma_w)
    return burn_in(spec, opt, initial_field(spec, K0, L, nl, rng), L, nl, rng)[1]
