"""Mean-field theory on arbitrary inputs for any φ (THEORY §2), by Monte Carlo with stated error bars.

Single-neuron measure with field t ∈ R^{P×m}:

    p_t(a, h) ∝ N(a; 0, σ_a² I_m) N(h; 0, σ_1² K0) exp(Σ_μ (t_μ·a) φ(h_μ)).

The readout is Gaussian given h and is integrated out exactly (Rao–Blackwell):

    a | h ~ N(b(h), σ_a² I),  b(h) = σ_a² tᵀφ(h),
    p_t(h) ∝ N(h; 0, σ_1² K0) exp(ℓ_t(h)),  ℓ_t(h) = (σ_a²/2) ||tᵀφ(h)||²,
    Φ(t) = log E_prior exp ℓ_t(h).

Hence, with the posterior kernel K(t) = E_t[φ(h)φ(h)ᵀ],

    f = ∇Φ = E_t[a φᵀ]ᵀ = σ_a² K t,      U = E_t[a aᵀ] = σ_a² I + σ_a⁴ tᵀ K t,
    ∇²Φ[(μr),(νs)] = E_t[(σ_a² δ_rs + b_r b_s) φ_μ φ_ν] − f_μr f_νs,

and the saddle point f = Y − T t is the minimiser of the convex dual
G(t) = Φ(t) − tr(tᵀY) + (T/2)||t||². (The theory is a kernel machine with the
self-consistent, learned kernel σ_a² K(t): f = σ_a² K (σ_a² K + T I)⁻¹ Y.)

The driver :func:`solve_general` runs rounds of stochastic Newton with growing sample sizes:

1. sample p_t at the current t (:mod:`.chains`, warm-started MCMC; or tempered SMC from the
   prior, :mod:`.smc`); for φ with linear growth, reject the round if a sampled direction
   proves q(t) ≥ 1 (:mod:`.domain`) and step back;
2. residual r̂ = f̂ + T t − Y with its group MCSE and R̂ (:mod:`.estimators`); stop when
   converged, else grow the sample;
3. Newton steps on the importance-weighted surrogate Ĝ (:mod:`.surrogate`; Armijo backtracking,
   importance-ESS trust region ``min_ess_fraction``, domain bound), SQP steps with cutting planes
   for ReLU-type φ (:mod:`.condensate`);
4. at the last sampled t, the one-step estimator per chain group: Δ_g = −(∇²G)⁻¹ r̂_g, reported
   t + Δ, f = Y − T(t + Δ), U = σ_a² I + σ_a⁴ (t+Δ)ᵀ K (t+Δ), so the MCSE covers both the kernel's
   and the field's noise (:class:`.result.GeneralSolution`).

Convergence (one round with at least ``final_sweeps`` sweeps): (i) rms of r̂/MCSE(r̂) ≤ ``z_tol``;
(ii) max MCSE(r̂) ≤ ``f_tol`` (SMC: max MCSE of the one-step outputs Y − T(t + Δ_g)); (iii) R̂ of the
per-sample log tilt ≤ ``rhat_tol`` — rank-normalised split-R̂ (Vehtari et al. 2021,
:mod:`solvers.chain_stats`) over the chains (SMC: over the independent particle groups). While (i)
holds but (ii) or (iii) fail, the sample grows ×2 per round up to ``max_sweeps`` (SMC: particles up
to ``max_particles``). Measurements, limits and history: ``docs/devlog.md``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
import sys
import time
from typing import NamedTuple

import numpy as np

from solvers.data.chains import EllipticalSliceChains, prior_factor
from solvers.data.condensate import (CUT_ROUNDS, Q_CAP, Q_ON, active_directions, condensate_components,
                                     condensate_multipliers, constrained_step, constraint_gradients, project, restore)
from solvers.data.domain import DOMAIN_MARGIN, direction_quotients, domain_lower_bound, is_homogeneous
from solvers.data.estimators import by_group, corrected_output_mcse, group_mcse, rhat as chain_rhat
from solvers.data.options import GeneralOptions, resolve_sampler
from solvers.data.replicas import REPLICA_SEED_STRIDE, check_bias
from solvers.data.result import GeneralSolution, TestPrediction
from solvers.data.smc import smc_sample
from solvers.data.starts import burn_in, initial_field as start_field, starting_field
from solvers.data.surrogate import Features, newton_factory, newton_solver
from solvers.newton import Point, Stop, damped_newton_minimise
from solvers.progress import report, restaged
from theory.nonlinearities import get_nonlinearity
from theory.spec import ModelSpec, SpecError

__all__ = ["GeneralOptions", "GeneralSolution", "TestPrediction", "solve_general", "domain_lower_bound",
           "EllipticalSliceChains", "starting_field", "is_homogeneous", "progress_printer"]


@dataclass
class _Setup:
    """What stays fixed during one solve."""

    spec: ModelSpec
    opt: GeneralOptions
    rng: np.random.Generator
    nl: object
    radial: bool  # φ = α₊h₊ + α₋h₋: the radius integrates out (:class:`Features`)
    constrained: bool  # ReLU-type φ: the domain constraint is active (condensate)
    margin: float  # a step is rejected when the domain bound reaches this
    L: np.ndarray
    Y: np.ndarray
    T: float
    sa2: float
    smc: bool
    keep: int  # stored states per chain (particle) per round
    G: int


@dataclass
class _Run:
    """What changes from round to round."""

    t: np.ndarray
    bank: np.ndarray  # directions of large q: witnesses for the domain and the condensate's cuts
    sampler: EllipticalSliceChains
    sweeps: int
    n_part: int
    smc_chains: EllipticalSliceChains | None = None
    f_mcse: float = np.inf
    t_prev: np.ndarray | None = None
    Z_prev: np.ndarray | None = None
    last_good: "_Measured | None" = None
    log: list = field(default_factory=list)
    converged: bool = False
    message: str = ""


class _Measured(NamedTuple):
    """A sample at field t and the residual measured on it."""

    t: np.ndarray
    Zs: np.ndarray  # keep × C × r
    H: np.ndarray  # keep × C × P
    feats: Features
    r: np.ndarray
    se: np.ndarray
    z_rms: float
    rhat: float
    cond: tuple  # condensate (U, V, μ)


def _setup(spec, opt, initial_field):
    """Validate, build the prior factor, the start field and the burned-in chains."""
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec must be a ModelSpec (got {type(spec).__name__})")
    if spec.inputs is None:
        raise SpecError("solve_general needs explicit inputs (spec.inputs); for orthogonal data use solvers.solve")
    rng = np.random.default_rng(opt.seed)
    nl = get_nonlinearity(spec.nonlinearity)
    radial = is_homogeneous(nl)
    K0 = spec.input_kernel()
    L = prior_factor(K0, spec.sigma_w)
    P, m = spec.P, spec.m
    if initial_field is None:
        t = start_field(spec, K0, L, nl, rng)
    else:
        t = np.array(initial_field, dtype=np.float64)
        if t.shape != (P, m) or not np.all(np.isfinite(t)):
            raise SpecError(f"initial_field must be a finite array of shape (P, m) = ({P}, {m}) (got {t.shape})")
    sampler, t, bank, nb = burn_in(spec, opt, t, L, nl, rng)
    sampler.run(nb, 1, nb - 1)
    smc = opt.sampler == "smc"
    # homogeneous φ: the surrogate holds the exact barrier along sampled directions; the refined
    # bound only guards unsampled ones, so it may approach 1 (the solution can lie close to it).
    # With a kink (ReLU) the domain constraint q(t) ≤ 1 is active at the solution (condensate);
    # linear φ keeps a smooth barrier and an interior solution.
    s = _Setup(spec=spec, opt=opt, rng=rng, nl=nl, radial=radial,
               constrained=radial and not np.isclose(nl.slope_pos, nl.slope_neg),
               margin=1.0 - 1e-3 if radial else DOMAIN_MARGIN, L=L, Y=spec.targets(), T=spec.temperature,
               sa2=spec.sigma_a**2, smc=smc, keep=opt.smc_keep if smc else opt.keep, G=opt.groups)
    return s, _Run(t=t, bank=bank, sampler=sampler, sweeps=opt.sweeps, n_part=opt.particles)


def _draw(s, run, tt):
    """One round's sample at field tt: (keep × C × r states, SMC diagnostics or None)."""
    if not s.smc:
        return run.sampler.run(run.sweeps, s.keep, int(s.opt.burn * run.sweeps)), None
    if run.smc_chains is None or run.smc_chains.Z.shape[0] != run.n_part:
        run.smc_chains = EllipticalSliceChains(s.L, s.spec.nonlinearity, s.spec.sigma_a, run.n_part, s.rng)
    res = smc_sample(run.smc_chains, tt, s.G, s.opt.cess, s.opt.smc_moves, s.keep, s.radial)
    return res.Z, res


def _residuals(s, bank, feats, t):
    """KKT residual r̂ = f̂_bulk + T t − Y + Σ_j μ_j ∇q_j (μ from NNLS over the directions at
    the cap; none unless ``constrained``), its group MCSE, rms z, and (U, V, μ) of the condensate."""
    Phig = by_group(feats.phi(t), s.keep, s.G)  # per-group residuals for the MCSE
    fg = s.sa2 * np.einsum("gsp,gsq->gpq", Phig, Phig @ t) / Phig.shape[1]
    r = fg.mean(axis=0) + s.T * t - s.Y
    se = group_mcse(fg)
    cond = (np.zeros((0, s.L.shape[1])), np.zeros((0, s.spec.P)), np.zeros(0))
    if s.constrained:
        Ua, Va, _ = active_directions(bank, s.L, t, s.nl, s.sa2, Q_ON)
        mu = condensate_multipliers(constraint_gradients(Va, t, s.sa2), r)
        r = r + (constraint_gradients(Va, t, s.sa2).T @ mu).reshape(r.shape)
        cond = (Ua, Va, mu)
    return r, se, float(np.sqrt(np.mean((r / np.maximum(se, 1e-300)) ** 2))), cond


def _measure(s, run, t, Zs):
    """Features, residual, MCSE and R̂ of the sample ``Zs`` at field t."""
    feats = Features(Zs.reshape(-1, s.L.shape[1]), s.L, s.nl, s.sa2, s.radial)
    r, se, z_rms, cond = _residuals(s, run.bank, feats, t)
    rhat = chain_rhat(feats.log_tilt(t), s.keep, s.G, s.smc)
    return _Measured(t, Zs, Zs @ s.L.T, feats, r, se, z_rms, rhat, cond)


def _report_round(progress, rnd, total, info):
    """:func:`solvers.progress.report` of a round's log entry (its "step", the Newton step size, is
    passed as "step_size": ``step`` is the event's round count)."""
    return report(progress, "round", rnd, total, **{("step_size" if k == "step" else k): v for k, v in info.items()})


def _sample_round(s, run, rnd, progress):
    """Sample at run.t. For linear-growth φ a direction with q ≥ 1 proves Φ(t) = ∞ (the sampled
    directions of largest q, refined by ascent, are the witnesses; escaping chains show the same for
    non-homogeneous φ): the round is then rejected (:func:`_reject`) and None returned; else
    (Zs, SMC diagnostics or None, sampled q's, refined bound)."""
    sampler, t, nl = run.sampler, run.t, s.nl
    sampler.t = t
    sampler.set_components(condensate_components(run.bank, s.L, t, nl))
    sampler.set_field(t)
    sampler.indep_tried = sampler.indep_accepted = 0
    Z_start = sampler.Z.copy()
    try:
        Zs, sres = _draw(s, run, t)  # keep × C × r
    except FloatingPointError:  # SMC: a particle crossed q_t(u) = 1, so Φ(t) = ∞
        Zs, sres = run.smc_chains.Z[None], None
    qs = qb = None
    if nl.linear_growth:
        Zflat = Zs.reshape(-1, s.L.shape[1])
        qs = direction_quotients(Zflat, s.L, t, nl, s.sa2)
        qb, dirs = domain_lower_bound(t, s.L, nl.slope_pos, nl.slope_neg, s.spec.sigma_a, s.rng, starts=0, iters=0,
                                      directions=np.concatenate([Zflat, run.bank]), top=32, return_directions=True)
        run.bank = np.concatenate([dirs[:32], run.bank])[:256]
        escaped = (not s.radial) and np.max(np.sum(Zflat**2, axis=1)) > 50.0 * max(s.L.shape[1], 10)
        if qb >= 1.0 or escaped or (s.smc and sres is None):
            _reject(s, run, rnd, qb, progress)
            return None
    run.t_prev, run.Z_prev = t.copy(), Z_start
    return Zs, sres, qs, qb


def _reject(s, run, rnd, qb, progress):
    """Back halfway toward the last field that sampled inside the domain (unless a witness shows that
    it was outside too; constrained: back to that field itself, the witness now being a cut); q is
    homogeneous of degree 2 in t, so a rescaling then brings every witness to q ≤ 0.9 (Q_CAP)."""
    run.log.append({"round": rnd, "rejected": True, "q_witness": qb})
    _report_round(progress, rnd, s.opt.max_rounds, {**run.log[-1], "samples": 0, "residual": float("nan"),
                                                    "mcse": float("nan"), "z_rms": float("nan")})
    if run.t_prev is not None and np.max(direction_quotients(run.bank, s.L, run.t_prev, s.nl, s.sa2)) >= 1.0:
        run.t_prev = None
    t = run.t
    if run.t_prev is not None:
        t = run.t_prev.copy() if s.constrained else run.t_prev + 0.5 * (t - run.t_prev)
    qb = float(np.max(direction_quotients(run.bank, s.L, t, s.nl, s.sa2)))
    cap = Q_CAP if s.constrained else 0.9
    run.t = t * np.sqrt(cap / max(qb, cap))
    if run.Z_prev is not None and not s.smc:
        run.sampler.Z = run.Z_prev.copy()


def _round_info(s, run, rnd, meas, sres, qs, qb):
    """The log entry of a round that sampled inside the domain."""
    S = meas.feats.V.shape[0]
    info = {"round": rnd, "samples": S, "sweeps": run.sweeps, "residual": float(np.max(np.abs(meas.r))),
            "mcse": float(np.max(meas.se)), "z_rms": meas.z_rms, "rhat": meas.rhat}
    if sres is not None:
        info.update(sres.diagnostics())
        info["f_mcse"] = run.f_mcse = corrected_output_mcse(meas.feats, meas.t, s.Y, s.T, s.sa2, s.keep, s.G) \
            if s.T > 0 else info["mcse"]
    if s.constrained:
        info["condensate"] = np.round(2.0 * meas.cond[2], 4).tolist()
    if s.nl.linear_growth:
        info["q_sampled"], info["q_bound"] = float(qs.max()), qb
        if not s.smc:
            info["jump_acceptance"] = run.sampler.indep_accepted / max(run.sampler.indep_tried, 1)
    return info


def _converged_or_grow(s, run, meas) -> bool:
    """True when the round meets the convergence rule (module docstring); else grows the sample:
    MCMC to final_sweeps while the residual is not yet within its noise, then up to max_sweeps while
    the noise (or the chains' disagreement) is above the target; SMC doubles the cloud."""
    opt = s.opt
    accurate = (run.f_mcse if s.smc else float(np.max(meas.se))) <= opt.f_tol and meas.rhat <= opt.rhat_tol
    if meas.z_rms <= opt.z_tol and (s.smc or run.sweeps >= opt.final_sweeps) and accurate:
        return True
    if s.smc and meas.z_rms <= 4 * opt.z_tol and not accurate:
        run.n_part = min(2 * run.n_part, opt.max_particles)  # SMC: every round is at equilibrium
    elif not s.smc and meas.z_rms <= 4 * opt.z_tol:
        cap = opt.final_sweeps if (meas.z_rms > opt.z_tol or accurate) else opt.max_sweeps
        run.sweeps = min(2 * run.sweeps, max(cap, run.sweeps))
    return False


def _surrogate(s, feats, lt0, tn):
    """(Ĝ(tn), normalised importance weights, importance-ESS fraction) on the fixed sample."""
    lw = feats.log_tilt(tn) - lt0
    if not np.all(np.isfinite(lw)):
        return np.inf, None, 0.0
    mx = lw.max()
    e = np.exp(lw - mx)
    val = mx + np.log(e.mean()) - np.sum(tn * s.Y) + 0.5 * s.T * np.sum(tn * tn)
    wn = e / e.sum()
    return val, wn, 1.0 / (lw.size * np.sum(wn * wn))


def _surrogate_point(s, feats, lt0, tn):
    """Ĝ(tn) as a :class:`solvers.newton.Point` with data (importance weights, ESS fraction, tn)."""
    val, wn, essf = _surrogate(s, feats, lt0, tn)
    return Point(val, data=(wn, essf, tn))


def _rejection(s, bank, new, alpha, search):
    """Why the line search rejects a trial point ("" if it does not): Armijo on Ĝ within the barrier,
    the ESS trust region and the domain bound."""
    nl, (_, essf, tn) = s.nl, new.data
    if not np.isfinite(new.value):
        return "barrier"
    if essf < s.opt.min_ess_fraction:
        return "ess"
    if new.value > search.point.value + 1e-4 * alpha * search.slope:
        return "armijo"
    if not s.constrained and nl.linear_growth and domain_lower_bound(
            tn, s.L, nl.slope_pos, nl.slope_neg, s.spec.sigma_a, s.rng, starts=0, iters=0, directions=bank,
            top=16, ascent=60) >= s.margin:
        return "domain"
    return ""


def _surrogate_newton(s, bank, feats, t, lt0):
    """Up to ``max_newton`` Newton (SQP) steps from t on the surrogate (:func:`solvers.newton.damped_newton_minimise`,
    Armijo backtracking, for the condensate trial points restored onto the cuts); one damped step or a
    vanishing decrement ends them. Returns (t', steps, α of the last line search, last rejection)."""
    steps, limit = 0, ""

    def direction(tt, p):
        Phi_t = feats.phi(tt)
        f_w, B = feats.stats(Phi_t, p.data[0], tt)
        g = f_w + s.T * tt - s.Y
        make_newton = newton_factory(Phi_t, p.data[0], B, f_w, s.sa2, s.T)
        delta, qp = constrained_step(make_newton, g, bank, tt, s.L, s.nl, s.sa2) if s.constrained \
            else (make_newton()(g), None)
        return (delta, qp), float(np.sum(g * delta))

    def move(tt, d, alpha):
        tn = tt + alpha * d[0]
        return project(restore(tn, d[1], s.sa2), bank, s.L, s.nl, s.sa2) if s.constrained else tn

    def accept(new, alpha, search):
        nonlocal limit
        why = _rejection(s, bank, new, alpha, search)
        limit = why or limit
        return not why

    def after_step(tt, p, alpha, search):
        nonlocal steps
        steps += 1
        if alpha < 1.0 or -search.slope < 1e-12:
            return Stop(False, "stopped", "a damped step or a vanishing decrement")
        return None

    out = damped_newton_minimise(lambda tn, base, k: _surrogate_point(s, feats, lt0, tn), t,
                                 maxiter=s.opt.max_newton, measure=lambda p: np.nan, direction=direction,
                                 move=move, accept=accept, max_trials=30, min_alpha=None, after_step=after_step)
    return out.x, steps, out.damping, limit


def _newton_round(s, run, meas):
    """Newton on the importance-weighted surrogate (fixed sample: common random numbers). Condensate:
    cutting planes — directions of q > Q_CAP at the new field (ascent from the cuts and the sample)
    join the bank and the step is recomputed from t with them; after the last recomputation the step
    is projected onto q ≤ Q_CAP. Returns (t', steps, α, limit)."""
    nl, t = s.nl, meas.t
    lt0 = meas.feats.log_tilt(t)
    for cut_round in range(CUT_ROUNDS if s.constrained else 1):
        tt, steps, alpha, limit = _surrogate_newton(s, run.bank, meas.feats, t, lt0)
        if not (s.constrained and steps):
            break
        qn, dn = domain_lower_bound(tt, s.L, nl.slope_pos, nl.slope_neg, s.spec.sigma_a, s.rng, starts=0, iters=0,
                                    directions=np.concatenate([run.bank, meas.Zs.reshape(-1, s.L.shape[1])]),
                                    top=32, ascent=100, return_directions=True)
        run.bank = np.concatenate([dn[:16], run.bank])[:256]
        if qn <= s.margin:
            break
        limit = "cut added"
        if cut_round < CUT_ROUNDS - 1:
            continue
        tt = project(tt, run.bank, s.L, nl, s.sa2)  # the new cuts are in the bank: restore q ≤ Q_CAP on them
    return tt, steps, alpha, limit


def _final_sample(s, run) -> _Measured:
    """Not converged: sample once more at the final t so that the reported values belong to it (or
    fall back to the last round that sampled inside the domain)."""
    run.sampler.set_field(run.t)
    try:
        Zs, _ = _draw(s, run, run.t)
    except FloatingPointError:
        Zs = run.smc_chains.Z[None].repeat(s.keep, axis=0)
    if s.nl.linear_growth and np.max(direction_quotients(Zs.reshape(-1, s.L.shape[1]), s.L, run.t, s.nl,
                                                         s.sa2)) >= 1.0:
        if run.last_good is None:
            raise RuntimeError("solve_general: no round sampled inside the domain q(t) < 1")
        return run.last_good
    return _measure(s, run, run.t, Zs)


def _group_corrections(s, meas):
    """One-step correction per chain group with the Hessian of the full final sample: per group
    (Δ_g, f_g = Y − T(t + Δ_g), K_g, U_g, condensate μ_g)."""
    t, feats = meas.t, meas.feats
    Phi = feats.phi(t)
    S = Phi.shape[0]
    w = np.full(S, 1.0 / S)
    f_all, B_all = feats.stats(Phi, w, t)
    Phig = by_group(Phi, s.keep, s.G)
    Sg = Phig.shape[1]
    newton_step = newton_solver(Phi, w, B_all, f_all, s.sa2, s.T)
    _, Vcond, _ = meas.cond
    Acond = constraint_gradients(Vcond, t, s.sa2)
    m = s.spec.m
    deltas, fs, Ks, Us, mus = [], [], [], [], []
    for g in range(s.G):  # loop over the few chain groups only
        Pg = Phig[g]
        Bg = s.sa2 * (Pg @ t)
        fgv = Pg.T @ Bg / Sg
        rg = fgv + s.T * t - s.Y
        mug = condensate_multipliers(Acond, rg)  # condensate masses 2μ_j of this group
        mus.append(mug)
        rg = rg + (Acond.T @ mug).reshape(rg.shape)
        dg = newton_step(rg)
        deltas.append(dg)
        tg = t + dg
        fs.append(s.Y - s.T * tg)
        Kg = Pg.T @ Pg / Sg + (Vcond.T * (2.0 * mug)) @ Vcond
        Ks.append(Kg)
        Us.append(s.sa2 * np.eye(m) + s.sa2**2 * tg.T @ Kg @ tg)
    return np.array(deltas), np.array(fs), np.array(Ks), np.array(Us), np.array(mus)


def _solution(s, run, meas, start) -> GeneralSolution:
    """The reported solution: one-step corrected t, f, U and K with group MCSE (module docstring)."""
    deltas, fs, Ks, Us, mus = _group_corrections(s, meas)
    r, se, t = meas.r, meas.se, meas.t
    Ucond = meas.cond[0]
    f_err = se.copy() if s.T == 0.0 else group_mcse(fs)  # f = Y exactly at T = 0; its error is the residual's
    imax = np.unravel_index(np.argmax(np.abs(r)), r.shape)
    return GeneralSolution(
        spec=s.spec, t=t + np.mean(deltas, axis=0), outputs=fs.mean(axis=0), outputs_error=f_err,
        readout_moment=Us.mean(axis=0), readout_moment_error=group_mcse(Us), kernel=Ks.mean(axis=0),
        kernel_error=group_mcse(Ks), residual=float(np.abs(r[imax])), residual_error=float(se[imax]),
        z_rms=meas.z_rms, rhat=meas.rhat, converged=run.converged, iterations=len(run.log),
        status="converged" if run.converged else "not-converged", error_estimate=float(np.max(f_err)),
        samples_per_round=int(meas.feats.V.shape[0]), time_seconds=time.perf_counter() - start, log=run.log,
        message=run.message or f"converged: rms residual/MCSE {meas.z_rms:.2f} <= {s.opt.z_tol}",
        _H=meas.H, _t_sampled=t, _deltas=deltas, _groups=s.G,
        condensate_directions=Ucond, condensate_masses=2.0 * mus.mean(axis=0),
        condensate_masses_error=group_mcse(2.0 * mus) if len(Ucond) else np.zeros(0),
        _cond_h=Ucond @ s.L.T, _cond_mu=mus)


def solve_general(spec: ModelSpec, options: GeneralOptions | None = None, progress=None,
                  initial_field: np.ndarray | None = None) -> GeneralSolution:
    """Solve f = E_t[aφ(h)] = Y − T t on the inputs of ``spec`` (any φ, THEORY §2).

    ``converged`` needs the noise rule of the module docstring in every one of ``options.replicas``
    independent solutions (different seeds) and their agreement, and for linear φ agreement with
    the closed form (:mod:`solvers.data.replicas`); the first replica is returned.

    ``progress`` (:mod:`solvers.progress`) receives ``ProgressEvent("round", round, max_rounds, info)``
    after every round, info with "samples", "residual", "mcse", "z_rms". ``initial_field`` (P × m) replaces
    the GP-like start (warm start, e.g. from a solution at a nearby temperature; it must lie in
    the domain). Raises :class:`SpecError` for invalid input (no inputs, T < 0 handled by the
    spec); non-convergence is reported in ``converged`` and ``message``, not raised.
    """
    opt = options or GeneralOptions()
    opt = replace(opt, sampler=resolve_sampler(opt.sampler, spec.nonlinearity))
    first = _solve_replica(spec, opt, progress, initial_field)
    return check_bias(spec, first, opt.replicas, lambda k: _solve_replica(
        spec, replace(opt, seed=opt.seed + k * REPLICA_SEED_STRIDE), restaged(progress, f"replica-{k}"), initial_field))


def _solve_replica(spec, opt, progress, initial_field) -> GeneralSolution:
    """One Monte Carlo solution: rounds of sampling and stochastic Newton (module docstring)."""
    start = time.perf_counter()
    s, run = _setup(spec, opt, initial_field)
    meas = None
    for rnd in range(1, opt.max_rounds + 1):
        sampled = _sample_round(s, run, rnd, progress)
        if sampled is None:
            continue
        Zs, sres, qs, qb = sampled
        meas = run.last_good = _measure(s, run, run.t.copy(), Zs)
        info = _round_info(s, run, rnd, meas, sres, qs, qb)
        if _converged_or_grow(s, run, meas):
            run.converged = True
            run.log.append(info)
            _report_round(progress, rnd, opt.max_rounds, info)
            break
        tt, steps, alpha, limit = _newton_round(s, run, meas)
        if not s.smc:
            run.sampler.adapt(Zs.reshape(-1, s.L.shape[1]))
        info.update(newton_steps=steps, step=float(np.max(np.abs(tt - meas.t))), alpha=alpha, limited_by=limit)
        run.log.append(info)
        _report_round(progress, rnd, opt.max_rounds, info)
        if steps == 0 and (run.n_part >= opt.max_particles if s.smc else run.sweeps >= opt.final_sweeps) and rnd > 2:
            run.message = "no descent step on the surrogate at the largest sample size"
        run.t = tt
    else:
        meas = _final_sample(s, run)
        run.message = run.message or (
            f"no convergence in {opt.max_rounds} rounds: rms residual/MCSE {meas.z_rms:.2f} (tolerance {opt.z_tol}), "
            f"max MCSE {float(np.max(meas.se)):.2g} (target {opt.f_tol}), "
            f"{'group' if s.smc else 'split'}-R̂ of the log tilt {meas.rhat:.3f} (target {opt.rhat_tol})")
    return _solution(s, run, meas, start)


def progress_printer(prefix: str = "[theory]"):
    """A ``progress`` callback printing one line per round on stderr. It takes a
    :class:`solvers.progress.ProgressEvent` (or, as before, ``(round, info)``)."""
    def cb(event, info=None):
        rnd, info = (event.step, event.values) if info is None else (event, info)
        print(f"{prefix} round {rnd:2d}: {info['samples']} samples, residual {info['residual']:.2e} "
              f"(MCSE {info['mcse']:.1e}, rms z {info['z_rms']:.2f})", file=sys.stderr, flush=True)
    return cb
