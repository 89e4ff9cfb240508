"""Mean-field theory on arbitrary inputs for any φ (THEORY §2), by MCMC with stated error bars.

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

Numerics:

* **Sampler.** p_t(h) is a Gaussian prior times a likelihood e^{ℓ_t}: elliptical slice
  sampling (Murray, Adams & MacKay 2010), ``chains`` parallel chains advanced together
  (one matrix product draws all the prior vectors; the slice shrinkage runs on the
  still-active chains as arrays, no Python loop over chains). Degenerate K0 (P > N0)
  is handled by sampling in the range of K0.
* **Outer solve.** Stochastic Newton with growing sample sizes. Each round samples at the
  current t (chains warm-started), then takes Newton steps on the importance-weighted
  sample-average surrogate Ĝ(t') = log mean_i e^{ℓ_{t'}(h_i) − ℓ_t(h_i)} − tr(t'ᵀY) +
  (T/2)||t'||², which is convex and deterministic for a fixed sample (common random
  numbers). Steps are accepted by Armijo backtracking on Ĝ, subject to a trust region
  (importance-sampling ESS ≥ ``min_ess_fraction`` of the sample) and, for φ with linear
  growth, the domain bound q(t) < 1 (see :func:`domain_lower_bound`). Newton systems are
  solved by conjugate gradients with Hessian–vector products from the samples,
  preconditioned by (σ_a² K + T I)⁻¹.
* **Error bars.** Chains are split into ``groups`` groups; every estimator is computed per
  group, and its Monte Carlo standard error (MCSE) is the standard deviation of the group
  values over √groups (independent chains: no autocorrelation model needed).
* **Final one-step estimator.** At the last sampled t the estimated residual
  r̂ = f̂ + T t − Y defines the Newton correction Δ = −(∇²G)⁻¹ r̂ and the reported field
  t + Δ, so f = Y − T(t + Δ) (the first-order-exact one-step estimate of f). Kernels are
  the sample averages at t; U = σ_a² I + σ_a⁴ (t+Δ)ᵀ K (t+Δ) and f(x*) = σ_a² K(x*, X)(t+Δ)
  use the corrected field (K's own change over Δ, which is of the order of the noise, is
  not included). Every quantity is computed per chain group with that group's own Δ, so
  the MCSE covers the noise of both the kernel and the field.
* **Radial Rao–Blackwellisation** (φ = α₊h₊ + α₋h₋: linear, ReLU, leaky ReLU). With
  z = ρu the radius integrates out: p_t(u) ∝ (1 − q_t(u))^{−d/2}, E[ρ²|u] = d/(1 − q_t(u))
  (d = rank K0, q_t(u) = σ_a²||tᵀφ(Lu)||²); see :class:`_Features`. The surrogate then holds
  the exact barrier q_t(u_i) < 1 along every sampled direction, and the weights carry no
  radial noise.
* **Domain.** For φ with linear growth Φ(t) < ∞ needs q(t) = sup_u σ_a²||tᵀφ∞(Lu)||² < 1. q is a
  maximum over exponentially many sign patterns; :func:`domain_lower_bound` refines candidates
  (sampled directions of large q, kept in a bank) by projected gradient ascent. (The earlier
  sign-pattern alternation alone certified q ≤ 0.5 for the ReLU start on digits, P = 300, whose
  true q is ≥ 1.04: the chains escaped to infinity after ~1000 sweeps and every round was biased.)
* **Condensate (ReLU-type φ, α₊ ≠ α₋).** At the finite-P solution the domain constraint is
  active: for K0 = I the reduced solver gives 1 − q(t*) ≈ 1e-7 (P = 90) and 1e-5 (P = 300),
  T = 0.5. A vanishing fraction of neurons with |h| → ∞ along the maximising directions u_j
  carries an O(1) share of f (THEORY §4, "outliers"); no sampler resolves it. The solve is
  therefore the constrained problem min G(t) s.t. q(t) ≤ ``Q_CAP`` with KKT conditions
  f̂_bulk + T t − Y + Σ_j μ_j ∇q_j = 0, μ_j ≥ 0, ∇q_j = 2σ_a² v_j v_jᵀ t, v_j = φ(Lu_j):
  each Newton step is an SQP step on the surrogate (:func:`solve_general`, ``_constrained_step``):
  the QP min ½ΔᵀWΔ + gᵀΔ s.t. q_j + ∇q_jᵀΔ ≤ ``Q_CAP``, solved through its k-dimensional dual by
  NNLS, over the banked sign patterns with q_j ≥ ``Q_ACTIVE`` plus every banked pattern whose
  linearisation the step violates (added inside the step, ≤ ``MAX_CUTS``), with the Hessian of the
  Lagrangian W = ∇²Ĝ + Σ_j μ_j ∇²q_j = ∇²Ĝ + σ_a² Σ_j λ_j v_j v_jᵀ ⊗ I_m (the condensate's own
  kernel; μ from the NNLS fit of the gradient, then from the QP). The line search moves every
  trial point back onto the QP's violated constraints by a second-order correction (least-W-norm,
  ``_restore``), then onto all banked ones by t ↦ t·√(Q_CAP/max_j q_j) (q is homogeneous of
  degree 2), and tests Armijo on Ĝ there; directions the ascent finds above the cap after a step are
  added as cuts (cutting plane; the step is recomputed, then projected). Why: q_j is a convex
  quadratic, so a step that slides along the boundary has q_j(t + αΔ) = Q_CAP + O(α²) > Q_CAP for
  every α > 0; the earlier solver rejected every such step ("cuts", steps 1e-4–1e-2, 20 of 25
  steps on digits) and its Newton matrix lacked the condensate kernel, which carries an O(1) share
  of f, so its steps were also mis-scaled along the v_j. The
  multipliers of the directions on the boundary (q_j ≥ ``Q_ON``, NNLS fit of the residual)
  give the condensate masses λ_j = 2μ_j: K gains Σ_j λ_j v_j v_jᵀ, U and f(x*) follow from K
  (for a test input the condensate neuron has h* → A h, so K(x*, x_μ) gains
  λ_j φ(A L u_j) v_jμ). Q_CAP < 1 keeps the sampled bulk away from the singular directions; the
  cost is an O(1 − Q_CAP) shift of t along the constraint normals (digits P = 90, T = 0.5:
  Q_CAP = 0.999 changes f_cc by ≤ 0.0007 and U by ≤ 0.01). Measured against the reduced solver at
  K0 = I (MCMC): T = 0.5, P = 90, f_cc 0.9175–0.9183 (exact 0.9181), U_cc 5.33–5.38 (5.41),
  3 condensate directions of mass 3.2–3.3, 10–24 rounds, 9–21 s (earlier step: 16–18 rounds,
  50 s); P = 300, earlier step: f_cc 0.9557 (0.956), U_cc 9.0–9.1 ± 0.1 (9.20), mass ≈ 7.0
  each, 26 rounds, 355 s; T = 0.05, P = 90, f_cc 0.9917–0.9918 (0.9918), U_cc 5.76–5.83 (5.86),
  masses 3.6–3.7, 19 rounds, 16 s. Without the constraint the solver stalled at the boundary
  (P = 90: f_cc ≈ 0.83, U_cc ≈ 4.4, residual 0.77).
* **Condensate proposals.** For φ = α₊h₊ + α₋h₋ the tilt is an exact quadratic on each sign-
  pattern cone, so p_t is there the Gaussian N(0, (I − σ_a² A_D A_Dᵀ)⁻¹), A_D = LᵀDt.
  Independence Metropolis–Hastings moves with a mixture of these Gaussians (patterns of the
  banked directions) and the adapted reference let chains jump into and out of the
  near-boundary cones (:meth:`EllipticalSliceChains.independence_step`).
* **Tempered SMC** (``sampler="smc"``, :mod:`solvers.data.smc`): every round draws a fresh
  particle cloud from the prior (β = 0, exact) and moves it to p_t along p_{t,β} ∝ prior·e^{βℓ_t}
  (adaptive Δβ at incremental ESS ``cess``, systematic resampling, ``smc_moves`` slice moves per
  step; radial RB weights for φ = α₊h₊ + α₋h₋). It holds all modes with their weights as the
  cloud grows and estimates log Φ(t); ``groups`` independent clouds give the MCSE and a group-R̂.
  The cloud doubles (up to ``max_particles``) while the MCSE is above ``f_tol``.
* **Start.** Bounded φ: class-aligned t0 = αY; linear-growth φ: GP-like field (see
  :func:`_initial_field`), both scaled to a mean prior tilt ≤ m/2.
* **Tempering** (``tempering`` > 1 levels, β geometric from ``beta_min`` to 1): replica
  exchange between chains on p_{t,β}(h) ∝ N(h; 0, σ_1²K0) e^{β ℓ_t(h)}; only β = 1 is used.
* **Convergence.** ``converged`` needs, in one round with at least ``final_sweeps`` sweeps:
  (i) the residual within its noise, rms of r̂/MCSE(r̂) ≤ ``z_tol`` (default 2; the t of the
  previous round carries that round's noise, so an exactly solved but noisy iteration gives
  ≈ √2); (ii) max MCSE(r̂) ≤ ``f_tol`` (default 0.05, targets are one-hot); (iii) split-R̂ of
  the per-chain log tilt ≤ ``rhat_tol`` (default 1.1). (i) alone is met vacuously when the
  noise is large: heavy-tailed ReLU on digits (P = 90, T = 0.05) passed it with
  MCSE(r̂) = 1.8 for unit targets; (iii) catches chains still drifting within a round, which
  no between-group MCSE can see. While (i) holds but (ii) or (iii) fail, the sample grows ×2
  per round up to ``max_sweeps``. (i) is a mean over the P·m components, so it does not get
  stricter as P grows; (ii) is a per-component accuracy target, independent of P. With
  ``sampler="smc"``, (ii) is the max MCSE of the reported one-step outputs Y − T(t + Δ_g) (group
  residuals through the Hessian of the whole sample) and (iii) is R̂ over the independent
  particle groups: the raw residual's noise there is mode-weight fluctuation along stiff
  directions of ∇²G, which the one-step correction removes (erf, digits P = 90: raw max MCSE
  0.06–0.2 where the reported f has 0.005–0.01), while the MCMC chains' frozen mode weights made
  their raw MCSE look small.

Test predictions (THEORY §2): h* | h ~ N(k*ᵀK0⁺h, σ_1²(k** − k*ᵀK0⁺k*)), so
f(x*) = E_t[a φ(h*)] = E_t[b(h) g*(h)] with g*(h) = E[φ(h*) | h] in closed form
(:func:`theory.general.gaussian_phi_mean`); the posterior-averaged kernel on test inputs
E_t[φ(h*)φ(h*')] draws h* given each sampled h.

Limits and measurements (digits, classes 0–2, σ_w = σ_a = 1, T = 0.5; 1 core):

* erf, P = 90. Before (GP-like start, MCMC): diverged, residual 8.6 → 58 in 25 rounds. Class-
  aligned start, MCMC: meets its criteria (11–14 rounds, 40–75 s, f_cc 0.899/0.876/0.867), but
  the fixed point is wrong: tempered SMC at that field (32768 particles, log-evidence sd 0.07–0.4)
  gives class-mean residuals up to 0.66 (rms z 5.9–12 at MCSE 0.01–0.07), and U changed between
  runs by more than its MCSE (4.9/5.9/5.9 against 5.3/5.7/6.2). At this field p_t holds six
  codes (class signs of φ, the two uniform ones empty) with weights 0.14–0.21 and mirror pairs
  equal; the chains do not equilibrate these weights. SMC (``sampler="smc"``): converged in
  9–12 rounds, 10–80 s (machine load), f_cc 0.882/0.851/0.843 (two runs with different particle
  schedules agree to 0.002; reported-f MCSE 0.005, raw residual MCSE 0.2, group-R̂ 1.04). Its
  test predictions are noisy: median MCSE of f(x*) 0.11–0.15 (the mode-weight noise that the
  one-step correction removes from the training f stays in K(x*, X)t; adding the sample
  derivative of f* along Δ made it 0.44). Sampled networks (N = 200, 600 sweeps, 21 s) reach
  MCSE 0.003 and agree with SMC (rms 0.10, z 0.7) and with MCMC (rms 0.05, z 1.7); N = 200 and
  400 agree to 0.004. bench_generalize: theory (SMC) 10.4 s to f(x*) MCSE 0.13, sampling 4.2 s
  to 0.004. For f(x*) on digits, sampling the network is far cheaper than the theory.
* erf, P = 300: MCMC (GP start) diverged (residual 107, U ≈ 10³); SMC converged in 13 rounds,
  272 s (z 1.99, group-R̂ 1.05, reported-f MCSE 0.005, f(x*) MCSE 0.11; f_cc 0.936/0.930/0.912).
* erf, P = 90, T = 0.05: MCMC from the GP start diverged (residual 80), from the class-aligned
  start it does not converge (25 rounds, 78 s, z 2.15, MCSE 0.16, split-R̂ 1.58); SMC converged
  in 17 rounds, 205 s (f_cc 0.985/0.981/0.980 ± 0.002, f(x*) MCSE 0.13).
* normcdf: MCMC converged before and after (P = 90: 5–9 rounds, 4–11 s; P = 300: 12 rounds,
  27 s) and agrees with SMC (P = 90: 6 rounds, 32 s, f_cc 0.910/0.845/0.853 against
  0.913/0.850/0.858, SMC residual at the MCMC field 0.09 with rms z 2.5; P = 300: 9 rounds,
  144 s, 0.957/0.927/0.923 against 0.958/0.933/0.931), so MCMC stays the default.
* ReLU, SMC (``sampler="smc"``), with the SQP condensate step: converges. P = 90, T = 0.5: 5–7
  rounds, 13–20 s, rms z 1.2–1.8, residual 0.03–0.05 ± 0.03, reported-f MCSE 0.003; f_cc
  0.9609–0.9615/0.9435–0.9441/0.9398–0.9405 over two seeds and Q_CAP = 0.999; 6–8 sign patterns
  at the cap with masses 0.05–1.3 each, total 3.1–3.4 (the split among nearly equal directions is
  not unique and changes between seeds; f and U do not). P = 300, T = 0.5: 6–11 rounds, 84–140 s,
  rms z 1.5–2.0, residual 0.07–0.08 ± 0.04, f MCSE 0.004–0.005, f_cc 0.984/0.974/0.970 (two
  step variants agree to 0.0005; U to 0.2), 6–7 patterns with mass, total 5.1. P = 90, T = 0.05: 9–10 rounds, 23 s, f_cc 0.995/0.993/0.992 (MCSE 0.001–0.002;
  U differed between the two runs by up to 0.35, it carries the poorly split condensate).
  P = 300, T = 0.05: NOT converged (23 rounds, ~300 s, residual 0.9–1.1, rms z 60–160): the steps
  are limited by the surrogate's ESS trust region (α = 1/16–1/8) and every second round is rejected
  because the fresh particles, refined by ascent, find a new sign pattern with q ≥ 1 at the
  stepped field (the banked cuts never cover the max over patterns at this large t). Moving t onto
  the new witness (instead of back to the previous field) did not help (residual 0.93–1.45).
  Test mean-predictor error per class (theory / sampled N = 200 (MCSE 3e-4, R̂ 1.3) / GP): P = 90
  0.023/0.051/0.097 vs 0.019/0.047/0.094 vs 0.043/0.110/0.143 (22 s for all three); P = 300
  0.012/0.042/0.053 vs 0.013/0.046/0.044 vs 0.029/0.072/0.082 (158 s). f(x*) MCSE median
  0.003–0.005 (theory vs sampled f(x*) rms 0.025). Before (cutting planes linearised at 8
  patterns, H without the condensate kernel, steps rejected at the cap): P = 90 25 rounds, 138 s,
  z 6.4, residual 0.26 ± 0.02; P = 300 269 s, z 13. The SMC particles stay at q ≤ 0.5–0.8 while
  q(t) = 0.995: the near-boundary cones are the KKT condensate's.
* ReLU, MCMC: the step no longer stalls (P = 90, T = 0.5: full Newton steps, class f within 0.001
  of SMC), but the chains enter the near-boundary cones (q up to 0.9) and disagree there (MCSE
  0.1–0.5, split-R̂ 1.1–1.9): not converged in 25 rounds (61 s). Use SMC for ReLU on real data.
  (MCMC before: P = 300, 40 rounds, z 3.7, MCSE 0.12, R̂ 1.37.)
* SMC needs ≥ ~1000 particles per group: at 64 per group f at K0 = I was low by 0.13 (5 MCSE),
  an O(1/n) bias that the group MCSE cannot see. The odd-φ flip h → −h is exact but useless
  here: every estimator (φφᵀ, b g*) is even under it.
* The group MCSE reflects disagreement between chains or clouds; for MCMC it cannot see a mode
  no chain visits (erf above). The large-P branch form of THEORY §4 is not used here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import sys
import time

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import nnls
from scipy.sparse.linalg import LinearOperator, cg

from solvers.data.elliptical_slice import elliptical_slice_update, fit_gaussian_references
from solvers.data.smc import smc_sample
from theory.general import gaussian_phi_mean, input_kernels, test_conditional
from theory.gp import feature_kernel
from theory.nonlinearities import get_nonlinearity
from theory.spec import ModelSpec, SpecError, class_labels

#: steps are rejected when the lower bound on q(t) reaches this (Φ(t) = ∞ for q(t) ≥ 1)
DOMAIN_MARGIN = 0.98
#: condensate (homogeneous φ): directions with q_j(t) ≥ Q_ACTIVE enter the Newton step as
#: linearised constraints q_j ≤ Q_CAP; their multipliers are the condensate masses
Q_ACTIVE, Q_CAP = 0.95, 0.995
#: directions with q_j(t) ≥ Q_ON count as on the boundary (non-zero condensate multiplier allowed)
Q_ON = 0.97
#: cutting-plane recomputations of the Newton step per round before the step is projected
CUT_ROUNDS = 3
#: at most this many distinct sign patterns enter the SQP step as linearised constraints
MAX_CUTS = 32

__all__ = ["GeneralOptions", "GeneralSolution", "TestPrediction", "solve_general", "domain_lower_bound",
           "EllipticalSliceChains", "starting_field", "is_homogeneous"]


@dataclass(frozen=True)
class GeneralOptions:
    """Settings of :func:`solve_general` (validated on construction).

    chains: parallel chains (≥ 2·groups); sweeps: ESS steps per chain in the first round;
    final_sweeps: ESS steps per chain in the final rounds (the sample size grows ×2 per round
    from ``sweeps`` once the residual is within ``4·z_tol`` of its noise); keep: stored states
    per chain per round (thinning); burn: fraction of each round discarded; max_rounds: outer
    iterations; z_tol: convergence threshold on rms(r̂/MCSE); groups: chain groups for the MCSE;
    min_ess_fraction: trust region of the surrogate; seed: random seed.

    sampler: "mcmc" (parallel elliptical slice chains warm-started between rounds) or "smc"
    (tempered SMC from the prior in every round, :mod:`solvers.data.smc`); for "smc":
    particles (first round, all groups together), max_particles (the sample doubles up to this while
    the MCSE is above f_tol), cess (incremental ESS fraction per β step), smc_moves (slice moves per
    β step), smc_keep (states stored per particle after β = 1; replaces keep).
    """

    chains: int = 256
    sweeps: int = 40
    final_sweeps: int = 320
    keep: int = 40
    burn: float = 0.25
    max_rounds: int = 25
    z_tol: float = 2.0
    groups: int = 16
    min_ess_fraction: float = 0.5
    max_newton: int = 4
    tempering: int = 1
    beta_min: float = 0.05
    f_tol: float = 0.05
    max_sweeps: int = 1280
    rhat_tol: float = 1.1
    seed: int = 0
    sampler: str = "mcmc"
    particles: int = 16384
    max_particles: int = 65536
    cess: float = 0.5
    smc_moves: int = 3
    smc_keep: int = 2

    def __post_init__(self):
        for name in ("chains", "sweeps", "final_sweeps", "keep", "max_rounds", "groups", "max_newton", "tempering",
                     "max_sweeps", "particles", "max_particles", "smc_moves", "smc_keep"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise SpecError(f"{name} must be an integer >= 1 (got {v!r})")
        if self.groups < 4:
            raise SpecError(f"groups must be >= 4 for a Monte Carlo error estimate (got {self.groups})")
        if self.chains < 2 * self.groups or self.chains % self.groups:
            raise SpecError(f"chains must be a multiple of groups = {self.groups} and >= {2 * self.groups} "
                            f"(got {self.chains})")
        if self.final_sweeps < self.sweeps:
            raise SpecError(f"final_sweeps must be >= sweeps = {self.sweeps} (got {self.final_sweeps})")
        if not 0.0 <= self.burn < 0.9:
            raise SpecError(f"burn must be a fraction in [0, 0.9) (got {self.burn!r})")
        if not 0.0 < self.z_tol:
            raise SpecError(f"z_tol must be > 0 (got {self.z_tol!r})")
        if self.max_sweeps < self.final_sweeps:
            raise SpecError(f"max_sweeps must be >= final_sweeps = {self.final_sweeps} (got {self.max_sweeps})")
        if not (self.f_tol > 0.0 and self.rhat_tol > 1.0):
            raise SpecError(f"f_tol must be > 0 and rhat_tol > 1 (got {self.f_tol!r}, {self.rhat_tol!r})")
        if not 0.0 < self.beta_min < 1.0:
            raise SpecError(f"beta_min must be in (0, 1) (got {self.beta_min!r})")
        if self.sampler not in ("mcmc", "smc"):
            raise SpecError(f"sampler must be 'mcmc' or 'smc' (got {self.sampler!r})")
        if self.particles % self.groups or self.particles < 8 * self.groups:
            raise SpecError(f"particles must be a multiple of groups = {self.groups} and >= {8 * self.groups} "
                            f"(got {self.particles})")
        if self.max_particles < self.particles:
            raise SpecError(f"max_particles must be >= particles = {self.particles} (got {self.max_particles})")
        if not 0.0 < self.cess < 1.0:
            raise SpecError(f"cess must be in (0, 1) (got {self.cess!r})")
        if not 0.0 < self.min_ess_fraction < 1.0:
            raise SpecError(f"min_ess_fraction must be in (0, 1) (got {self.min_ess_fraction!r})")


# ----------------------------------------------------------------------------- sampler
class EllipticalSliceChains:
    """Parallel elliptical slice sampling of p_t(h) ∝ N(h; 0, L Lᵀ) e^{ℓ_t(h)} (module docstring).

    ``L`` (P × r) factors the prior covariance σ_1² K0 = L Lᵀ (r = rank); the chains live in
    z ∈ R^r with h = L z, target π(z) ∝ N(z; 0, I) e^{ℓ_t(Lz)}. Generalised ESS (Nishihara,
    Murray & Adams 2014): the ellipse is drawn around a Gaussian reference N(μ, S) and the
    "likelihood" is π(z)/N(z; μ, S), which is exact for any S ≻ 0. :meth:`adapt` fits μ, S to
    samples between rounds (never within one), so heavy-tailed or shifted tilted measures
    (ReLU and linear near the domain boundary) are sampled nearly independently.
    State: ``Z`` (C × r); ``H`` = Z Lᵀ (C × P).
    """

    def __init__(self, L: np.ndarray, nonlinearity: str, sigma_a: float, chains: int, rng: np.random.Generator,
                 betas=None):
        self.L = np.ascontiguousarray(L)
        r = L.shape[1]
        self.phi = get_nonlinearity(nonlinearity)
        self.sa2 = float(sigma_a) ** 2
        self.rng = rng
        self.betas = np.array([1.0] if betas is None else betas, dtype=np.float64)
        if self.betas.ndim != 1 or self.betas[-1] != 1.0 or np.any(np.diff(self.betas) <= 0) or self.betas[0] <= 0:
            raise SpecError(f"tempering levels must increase in (0, 1] and end at 1 (got {self.betas.tolist()})")
        self.chains = chains
        self.beta_rows = np.repeat(self.betas, chains)  # level k holds rows k·chains … (k+1)·chains − 1
        self.Z = rng.standard_normal((self.betas.size * chains, r))
        self.mu = np.zeros(r)
        self.Ls = np.eye(r)  # Cholesky factor of S
        self.Dprec = np.zeros((r, r))  # S⁻¹ − I
        self.t = None
        self.ll = None
        self.evaluations = 0
        self.components = []  # condensate Gaussians for the independence proposal (set_components)
        self.logdetS = 0.0
        self.indep_tried = 0
        self.indep_accepted = 0
        self.swaps_tried = np.zeros(max(self.betas.size - 1, 0))
        self.swaps_accepted = np.zeros(max(self.betas.size - 1, 0))
        self._parity = 0

    @property
    def H(self) -> np.ndarray:
        """Preactivations of the β = 1 chains."""
        return self.Z[-self.chains:] @ self.L.T

    def loglik(self, H: np.ndarray, t: np.ndarray) -> np.ndarray:
        """ℓ_t(h) = (σ_a²/2) ||tᵀφ(h)||² per row of ``H``."""
        B = self.phi(H) @ t
        return 0.5 * self.sa2 * np.einsum("ij,ij->i", B, B)

    def _loglik_z(self, Z: np.ndarray, beta) -> np.ndarray:
        """β ℓ_t(Lz) − |z|²/2 − log N(z; μ, S) up to a constant (β per row)."""
        self.evaluations += Z.shape[0]
        D = Z - self.mu
        return (beta * self.loglik(Z @ self.L.T, self.t) - 0.5 * np.einsum("ij,ij->i", Z, Z)
                + 0.5 * np.einsum("ij,ij->i", D, D) + 0.5 * np.einsum("ij,ij->i", D @ self.Dprec, D))

    def set_field(self, t: np.ndarray):
        self.t = np.array(t, dtype=np.float64)
        self.ll = self._loglik_z(self.Z, self.beta_rows)

    def adapt(self, Zs: np.ndarray, shrink: float = 0.05):
        """Reference N(μ, S) from samples ``Zs`` (n × r): sample mean and covariance, shrunk by
        ``shrink`` toward the prior's identity (keeps S ≻ 0 with few samples)."""
        mu, C, Dprec, logdet = fit_gaussian_references(Zs[None], shrink)
        self.mu, self.Ls, self.Dprec, self.logdetS = mu[0], C[0], Dprec[0], float(logdet[0])
        if self.t is not None:
            self.ll = self._loglik_z(self.Z, self.beta_rows)

    def reset_reference(self):
        """Back to the prior as the reference (μ = 0, S = I)."""
        r = self.Z.shape[1]
        self.mu, self.Ls, self.Dprec, self.logdetS = np.zeros(r), np.eye(r), np.zeros((r, r)), 0.0
        if self.t is not None:
            self.ll = self._loglik_z(self.Z, self.beta_rows)

    def set_components(self, A_list):
        """Condensate Gaussians N(0, Λ_k⁻¹), Λ_k = I − σ_a² A_k A_kᵀ, for the independence proposal.

        For φ = α₊h₊ + α₋h₋ and a sign pattern D of h = Lz, the tilt is exactly quadratic on the
        cone where the pattern holds: ℓ_t = (σ_a²/2)||A_Dᵀz||² with A_D = Lᵀ D t (r × m), so there
        p_t(z) ∝ N(z; 0, Λ_D⁻¹) exactly. Near the domain boundary the mass of p_t sits in such
        cones around the directions of largest q (the finite-P condensate, THEORY §4), along which
        Λ_D is nearly singular; local moves reach them slowly. Each A_k (r × m) is stored as
        (W, λ) with σ_a² A Aᵀ = W diag(λ) Wᵀ (W orthonormal, r × m); components with λ_max ≥ 1
        (improper) are dropped.
        """
        comps = []
        for A in A_list:  # loop over the few components; each is an m-dimensional eigenproblem
            Q, R = np.linalg.qr(A)
            lam, V = np.linalg.eigh(self.sa2 * R @ R.T)
            if lam.max() >= 1.0 - 1e-9:
                continue
            comps.append((Q @ V, np.maximum(lam, 0.0)))
        self.components = comps

    def _log_components(self, Z):
        """log N(z; 0, Λ_k⁻¹) for every row (n × K), Λ_k = I − W diag(λ) Wᵀ."""
        r = Z.shape[1]
        zz = np.einsum("ij,ij->i", Z, Z)
        out = []
        for W, lam in self.components:
            P = Z @ W
            out.append(-0.5 * (zz - (P * P) @ lam) + 0.5 * np.sum(np.log1p(-lam)) - 0.5 * r * np.log(2 * np.pi))
        return np.array(out).T

    def _log_reference(self, Z):
        r = Z.shape[1]
        D = Z - self.mu
        return (-0.5 * (np.einsum("ij,ij->i", D, D) + np.einsum("ij,ij->i", D @ self.Dprec, D))
                - 0.5 * self.logdetS - 0.5 * r * np.log(2 * np.pi))

    def independence_step(self, ref_weight: float = 0.5):
        """Independence Metropolis–Hastings for every chain with the mixture proposal
        g = w₀ N(μ, S) + (1 − w₀)/K Σ_k N(0, Λ_k⁻¹) (see :meth:`set_components`); accept with
        min(1, π(z')g(z)/(π(z)g(z'))), π(z) ∝ N(z; 0, I) e^{β ℓ_t(Lz)}. Exact for any g; it lets a
        chain jump into (and out of) a condensate cone in one move."""
        K = len(self.components)
        if K == 0:
            return
        rng, Z = self.rng, self.Z
        C, r = Z.shape
        logw = np.log(np.concatenate([[ref_weight], np.full(K, (1 - ref_weight) / K)]))
        pick = rng.choice(K + 1, size=C, p=np.exp(logw))
        E = rng.standard_normal((C, r))
        prop = self.mu + E @ self.Ls.T
        for k, (W, lam) in enumerate(self.components):  # loop over the few components
            sel = pick == k + 1
            Ek = E[sel]
            prop[sel] = Ek + ((Ek @ W) * (1.0 / np.sqrt(1.0 - lam) - 1.0)) @ W.T

        def log_g(X):
            parts = np.column_stack([self._log_reference(X), self._log_components(X)]) + logw
            mx = parts.max(axis=1)
            return mx + np.log(np.exp(parts - mx[:, None]).sum(axis=1))

        def log_pi(X):
            return -0.5 * np.einsum("ij,ij->i", X, X) + self.beta_rows * self.loglik(X @ self.L.T, self.t)

        la = (log_pi(prop) - log_g(prop)) - (log_pi(Z) - log_g(Z))
        acc = np.log(rng.random(C)) < la
        self.indep_tried += C
        self.indep_accepted += int(acc.sum())
        if acc.any():
            Z = Z.copy()
            Z[acc] = prop[acc]
            self.Z = Z
            self.ll = self._loglik_z(self.Z, self.beta_rows)

    def swap(self):
        """Replica exchange between neighbouring tempering levels (even or odd pairs in turn):
        chain c of level k and chain c of level k+1 swap states with probability
        min(1, exp((β_k − β_{k+1})(ℓ_{k+1,c} − ℓ_{k,c}))), which leaves Π_k p_{β_k} invariant."""
        K, C = self.betas.size, self.chains
        if K < 2:
            return
        ell = self.loglik(self.Z @ self.L.T, self.t).reshape(K, C)
        Z = self.Z.reshape(K, C, -1)
        for k in range(self._parity, K - 1, 2):  # loop over the few levels only
            la = (self.betas[k] - self.betas[k + 1]) * (ell[k + 1] - ell[k])
            acc = np.log(self.rng.random(C)) < la
            Z[k, acc], Z[k + 1, acc] = Z[k + 1, acc].copy(), Z[k, acc].copy()
            self.swaps_tried[k] += C
            self.swaps_accepted[k] += acc.sum()
        self._parity ^= 1
        self.Z = Z.reshape(K * C, -1)
        self.ll = self._loglik_z(self.Z, self.beta_rows)

    def step(self):
        """One elliptical slice sampling update of every chain (exact: leaves p_t invariant)."""
        rng, Z = self.rng, self.Z
        C = Z.shape[0]
        nu = rng.standard_normal((C, Z.shape[1])) @ self.Ls.T
        newZ, newll, _ = elliptical_slice_update(rng, Z, self.ll, self.mu, nu,
                                                 lambda prop, rows: self._loglik_z(prop, self.beta_rows[rows]))
        self.Z, self.ll = newZ, newll
        if not np.all(np.isfinite(newll)):
            raise FloatingPointError("elliptical slice sampling: non-finite log likelihood (outside the domain)")

    def run(self, n_steps: int, keep: int, burn: int) -> np.ndarray:
        """Advance ``n_steps`` (each an ESS update of every chain, then a replica exchange); return
        ``keep`` thinned states z of the β = 1 chains after ``burn`` steps, (keep, chains, r)."""
        thin = max(1, (n_steps - burn) // keep)
        out = []
        for s in range(n_steps):
            self.step()
            self.independence_step()
            self.swap()
            if s >= burn and (s - burn) % thin == thin - 1 and len(out) < keep:
                out.append(self.Z[-self.chains:].copy())
        while len(out) < keep:  # fewer steps than requested states
            self.step()
            self.independence_step()
            self.swap()
            out.append(self.Z[-self.chains:].copy())
        return np.array(out)


def _prior_factor(K0: np.ndarray, sigma_w: float, rcond: float = 1e-10) -> np.ndarray:
    """L (P × r) with L Lᵀ = σ_1² K0, restricted to eigenvalues > rcond·λ_max."""
    lam, Q = np.linalg.eigh(K0)
    keep = lam > rcond * max(float(lam.max()), 1e-300)
    return Q[:, keep] * (sigma_w * np.sqrt(lam[keep]))


def _q_ascent(t, L, slope_pos, slope_neg, sa2, U0, iters=200, eta=0.05):
    """Projected gradient ascent of q(u) = σ_a²||tᵀφ∞(Lu)||² on the unit sphere from every row of
    ``U0`` at once; returns (q (n,), U (n × r)) at the end points.

    ∇q = 2σ_a² Lᵀ(φ∞'(Lu) ⊙ t tᵀφ∞(Lu)); the step is η·∇_⊥q / q (tangential part, scale-free),
    followed by renormalisation. q is piecewise quadratic with a kink on every hyperplane
    (Lu)_μ = 0, so the landscape has many local maxima: the small step follows it instead of
    jumping across patterns (η = 0.5 stalls at q ≈ 0.6 where η = 0.05 reaches 1.04 on digits,
    P = 300), and the starts matter (sampled directions of large q are good ones).
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


# ----------------------------------------------------------------------------- estimators
def _weighted_stats(Phi, w, t, sa2):
    """f_w = Σ w φ bᵀ, K_w, B (S × m), for normalised weights ``w`` (S,)."""
    B = sa2 * (Phi @ t)
    f = Phi.T @ (w[:, None] * B)
    return f, B


def _hess_op(Phi, w, B, f, sa2, T):
    """Hessian–vector product of G at the weighted sample: u (P×m) ↦ (∇²Φ + T) u."""
    def mv(u):
        U = u.reshape(f.shape)
        PU = Phi @ U  # S × m
        s = np.einsum("ij,ij->i", B, PU)
        out = sa2 * (Phi.T @ (w[:, None] * PU)) + Phi.T @ ((w * s)[:, None] * B) - f * np.sum(f * U) + T * U
        return out.ravel()
    return mv


def _hessian(Phi, w, B, f, sa2, T) -> np.ndarray:
    """Dense ∇²G = Σ_i w_i v_i v_iᵀ + σ_a² K_w ⊗ I_m − vec f vec fᵀ + T I, v_i = vec(φ_i b_iᵀ) (index μ·m + r)."""
    S, P = Phi.shape
    m = B.shape[1]
    V = (Phi[:, :, None] * B[:, None, :]).reshape(S, P * m)
    Kw = Phi.T @ (w[:, None] * Phi)
    fv = f.ravel()
    H = (V * w[:, None]).T @ V - np.outer(fv, fv) + sa2 * np.kron(Kw, np.eye(m))
    H[np.diag_indices_from(H)] += T
    return 0.5 * (H + H.T)


def _newton_factory(Phi, w, B, f, sa2, T, dense_limit: int = 1500):
    """``make(extra)`` → a function g ↦ Δ = −(∇²G + σ_a² extra ⊗ I_m)⁻¹ g, with ``extra`` (P × P,
    symmetric PSD, or None) an added kernel: the condensate part Σ_j λ_j v_j v_jᵀ of the Lagrangian
    Hessian ∇²G + Σ_j μ_j ∇²q_j (∇²q_j = 2σ_a² v_j v_jᵀ ⊗ I_m, λ_j = 2μ_j). The sample Hessian is
    built once; each ``make`` only refactors. Dense Cholesky when P·m ≤ ``dense_limit``, else
    conjugate gradients with sample Hessian–vector products, preconditioned by
    (σ_a² (K_w + extra) + T I)⁻¹. Eigenvalues are floored at 1e-10·λ_max (T = 0 with singular K)."""
    n = f.size
    shape = f.shape
    m = shape[1]
    if n <= dense_limit:
        H0 = _hessian(Phi, w, B, f, sa2, T)

        def make_dense(extra=None):
            Hd = H0 if extra is None else H0 + sa2 * np.kron(extra, np.eye(m))
            Hd = Hd + 1e-10 * max(float(np.trace(Hd)) / n, 1e-300) * np.eye(n)
            fac = cho_factor(Hd, lower=True)
            return lambda g: -cho_solve(fac, g.ravel()).reshape(shape)
        return make_dense
    Kw = Phi.T @ (w[:, None] * Phi)
    hv = _hess_op(Phi, w, B, f, sa2, T)

    def make_cg(extra=None):
        Ke = Kw if extra is None else Kw + extra
        lam, Q = np.linalg.eigh(Ke)
        den = sa2 * np.maximum(lam, 0.0) + T
        den = np.maximum(den, 1e-10 * max(float(den.max()), 1e-300))

        def prec(v):
            return (Q @ ((Q.T @ v.reshape(shape)) / den[:, None])).ravel()

        def mv(u):
            out = hv(u)
            if extra is not None:
                out = out + sa2 * (extra @ u.reshape(shape)).ravel()
            return out
        A = LinearOperator((n, n), matvec=mv)
        M = LinearOperator((n, n), matvec=prec)

        def solve(g):
            x, _ = cg(A, -g.ravel(), M=M, rtol=1e-8, maxiter=200)
            return x.reshape(shape)
        return solve
    return make_cg


def _newton_solver(Phi, w, B, f, sa2, T, dense_limit: int = 1500):
    """A function g ↦ Δ = −(∇²G)⁻¹ g (:func:`_newton_factory` without an added kernel)."""
    return _newton_factory(Phi, w, B, f, sa2, T, dense_limit)()


def _split_rhat(x: np.ndarray) -> float:
    """Split-R̂ (Gelman et al., BDA3 §11.4) of a scalar chain statistic ``x`` (draws × chains)."""
    n = x.shape[0] // 2
    if n < 2:
        return float("nan")
    y = np.concatenate([x[:n], x[n:2 * n]], axis=1)  # n × 2C
    W = np.mean(y.var(axis=0, ddof=1))
    B = n * y.mean(axis=0).var(ddof=1)
    if W <= 0:
        return 1.0
    return float(np.sqrt(((n - 1) / n * W + B / n) / W))


def _corrected_output_mcse(feats, t, Y, T, sa2, keep, groups) -> float:
    """Max MCSE of the one-step outputs f_g = Y − T(t + Δ_g), Δ_g = −(∇²G)⁻¹ r̂_g (group residuals,
    Hessian of the whole sample), i.e. the error of the f that :func:`solve_general` reports."""
    Phi = feats.phi(t)
    w = np.full(Phi.shape[0], 1.0 / Phi.shape[0])
    f_all, B = feats.stats(Phi, w, t)
    newton = _newton_solver(Phi, w, B, f_all, sa2, T)
    Phig = _by_group(Phi, keep, groups)
    fg = sa2 * np.einsum("gsp,gsq->gpq", Phig, Phig @ t) / Phig.shape[1]
    fc = np.array([Y - T * (t + newton(f + T * t - Y)) for f in fg])  # loop over the few groups
    return float(np.max(_group_mcse(fc)))


def _rhat(log_tilt: np.ndarray, keep: int, groups: int, smc: bool) -> float:
    """Stationarity diagnostic of the per-sample log tilt (rows ordered (keep, chains)).

    MCMC: split-R̂ over chains. SMC: R̂ over the independent particle groups (each group's
    samples as one chain): the clouds leave every mode with its weight only if they agree."""
    if not smc:
        return _split_rhat(log_tilt.reshape(keep, -1))
    return _split_rhat(_by_group(log_tilt, keep, groups).T)


def _by_group(X: np.ndarray, keep: int, groups: int) -> np.ndarray:
    """Rows ordered (keep, chains) → (groups, keep·chains/groups, ...), chains split in contiguous groups."""
    rest = X.shape[1:]
    return X.reshape(keep, groups, -1, *rest).swapaxes(0, 1).reshape(groups, -1, *rest)


def class_averages(spec: ModelSpec, rows: np.ndarray) -> np.ndarray:
    """Per-class means of the rows of a (P × ...) array (consecutive class blocks of ``spec``)."""
    lab = class_labels(spec.class_sizes)
    return np.array([rows[lab == c].mean(axis=0) for c in range(spec.m)])


def _group_mcse(values: np.ndarray) -> np.ndarray:
    """MCSE of the mean from per-group estimates (groups on axis 0)."""
    return values.std(axis=0, ddof=1) / np.sqrt(values.shape[0])


@dataclass
class TestPrediction:
    """Theory predictions on test inputs with Monte Carlo standard errors."""

    mean: np.ndarray  # f(x*) (n*, m)
    mean_error: np.ndarray  # MCSE (n*, m)
    cross_kernel: np.ndarray  # E_t[φ(h*) φ(h_μ)] (n*, P)
    test_kernel: np.ndarray | None = None  # E_t[φ(h*) φ(h*')] (n*, n*)
    test_kernel_error: np.ndarray | None = None
    activations: np.ndarray | None = None  # φ(h*) of sampled neurons (n_neurons, n*)
    readouts: np.ndarray | None = None  # their readout draws a (n_neurons, m)
    quadrature_error: float = 0.0


@dataclass
class GeneralSolution:
    """Solution of the general-input saddle point (module docstring); errors are MCSE."""

    spec: ModelSpec
    t: np.ndarray  # (P, m), one-step corrected
    outputs: np.ndarray  # f (P, m)
    outputs_error: np.ndarray
    readout_moment: np.ndarray  # U (m, m)
    readout_moment_error: np.ndarray
    kernel: np.ndarray  # K = E_t[φφᵀ] (P, P)
    kernel_error: np.ndarray
    residual: float  # max |r̂| at the final sampled t (before the one-step correction)
    residual_error: float  # MCSE of that entry
    z_rms: float  # rms of r̂/MCSE(r̂)
    rhat: float  # split-R̂ of the per-chain log tilt in the final round (stationarity)
    converged: bool
    rounds: int
    samples_per_round: int
    time_seconds: float
    log: list = field(default_factory=list)
    message: str = ""
    # state for predictions
    _H: np.ndarray | None = field(default=None, repr=False)  # (keep, C, P) final samples
    _t_sampled: np.ndarray | None = field(default=None, repr=False)
    _deltas: np.ndarray | None = field(default=None, repr=False)  # (groups, P, m)
    _groups: int = 16
    # condensate (homogeneous φ with the domain constraint active): unit directions u_j in the
    # sampler's z coordinates (k × r), masses λ_j = 2μ_j with K gaining Σ_j λ_j φ(Lu_j)φ(Lu_j)ᵀ
    condensate_directions: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    condensate_masses: np.ndarray = field(default_factory=lambda: np.zeros(0))
    condensate_masses_error: np.ndarray = field(default_factory=lambda: np.zeros(0))
    _cond_h: np.ndarray | None = field(default=None, repr=False)  # L u_j (k × P)
    _cond_mu: np.ndarray | None = field(default=None, repr=False)  # μ per group (G × k)


    @property
    def P(self) -> int:
        return self.spec.P

    def class_outputs(self) -> np.ndarray:
        """Class averages f_cr (m × m), comparable with the orthogonal solver's outputs."""
        return class_averages(self.spec, self.outputs)

    def predict(self, test_inputs: np.ndarray, test_kernel: bool = False, neurons: int = 0,
                max_kernel_inputs: int = 400, seed: int = 0) -> TestPrediction:
        """f(x*) = E_t[b(h) E[φ(h*)|h]] with MCSE; optionally the posterior-averaged test kernel
        (at most ``max_kernel_inputs`` test inputs) and φ(h*) of ``neurons`` sampled neurons."""
        spec = self.spec
        K0, ks, kss = input_kernels(spec.inputs, test_inputs)
        A, v = test_conditional(K0, ks, kss, spec.sigma_w)
        sa2 = spec.sigma_a**2
        G = self._groups
        H = self._H  # keep × C × P
        keep, C, P = H.shape
        Hg = H.reshape(keep, G, C // G, P).transpose(1, 0, 2, 3).reshape(G, -1, P)
        phi = get_nonlinearity(spec.nonlinearity)
        means, kerns, qerr = [], [], 0.0
        for g in range(G):  # loop over the few chain groups; each is vectorised over its samples
            Hs = Hg[g]
            Phi = phi(Hs)
            gs, e = gaussian_phi_mean(spec.nonlinearity, Hs @ A.T, v[None, :])
            qerr = max(qerr, e)
            Kx = gs.T @ Phi / Hs.shape[0]  # E_t[φ(h*) φ(h)ᵀ] from this group
            if self._cond_h is not None and len(self._cond_h):
                # condensate neurons: |h| → ∞ along L u_j, so h* → A h (φ positively homogeneous)
                Kx = Kx + (phi(self._cond_h @ A.T).T * (2.0 * self._cond_mu[g])) @ phi(self._cond_h)
            means.append(sa2 * Kx @ (self._t_sampled + self._deltas[g]))
            kerns.append(Kx)
        means = np.array(means)
        out = TestPrediction(mean=means.mean(axis=0), mean_error=_group_mcse(means),
                             cross_kernel=np.mean(kerns, axis=0), quadrature_error=qerr)
        rng = np.random.default_rng(seed)
        if test_kernel:
            n = ks.shape[0]
            idx = np.arange(n) if n <= max_kernel_inputs else np.linspace(0, n - 1, max_kernel_inputs).astype(int)
            Kstar = spec.sigma_w**2 * (test_inputs[idx] @ test_inputs[idx].T / spec.inputs.shape[1]) \
                - spec.sigma_w**2 * (A[idx] @ K0 @ A[idx].T)
            lam, Q = np.linalg.eigh(0.5 * (Kstar + Kstar.T))
            Lc = Q * np.sqrt(np.maximum(lam, 0.0))
            ks_g = []
            for g in range(G):
                Hs = Hg[g]
                hstar = Hs @ A[idx].T + rng.standard_normal((Hs.shape[0], len(idx))) @ Lc.T
                Ps = phi(hstar)
                ks_g.append(Ps.T @ Ps / Hs.shape[0])
            ks_g = np.array(ks_g)
            out.test_kernel, out.test_kernel_error = ks_g.mean(axis=0), _group_mcse(ks_g)
        if neurons:
            flat = H.reshape(-1, P)
            pick = rng.choice(flat.shape[0], size=min(neurons, flat.shape[0]), replace=False)
            Hs = flat[pick]
            hstar = Hs @ A.T + np.sqrt(v)[None, :] * rng.standard_normal((len(pick), A.shape[0]))
            out.activations = phi(hstar)
            b = sa2 * (phi(Hs) @ self._t_sampled)
            out.readouts = b + np.sqrt(sa2) * rng.standard_normal(b.shape)
        return out

    def to_json(self) -> dict:
        return {"converged": bool(self.converged), "residual": self.residual, "residual_error": self.residual_error,
                "z_rms": self.z_rms, "rhat": self.rhat, "rounds": self.rounds,
                "samples_per_round": self.samples_per_round,
                "time_seconds": self.time_seconds, "message": self.message,
                "readout_moment": self.readout_moment.tolist(),
                "readout_moment_error": self.readout_moment_error.tolist(),
                "class_outputs": self.class_outputs().tolist(),
                "outputs_error_max": float(self.outputs_error.max())}


# ----------------------------------------------------------------------------- solver
def _direction_quotients(Z, L, t, nl, sa2):
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


class _Features:
    """Per-sample estimator ingredients for a fixed sample z_1..z_S (rows of ``Z``).

    Plain form (any φ): φ_i = φ(L z_i), log tilt ℓ_t(h_i) = (σ_a²/2)||tᵀφ_i||², and
    f = σ_a² mean_i φ_i φ_iᵀ t, K = mean_i φ_i φ_iᵀ.

    Radial form (φ positively homogeneous, :func:`is_homogeneous`; d = rank of K0): write
    z = ρ u, |u| = 1, v = φ(L u), q_t(u) = σ_a²||tᵀv||². Then ℓ_t = ρ² q_t(u)/2 and the radius
    integrates out in closed form: p_t(u) ∝ (1 − q_t(u))^{−d/2} on the sphere and
    ρ²(1 − q_t(u)) | u ~ χ²_d, so E[ρ²|u] = s_t(u) = d/(1 − q_t(u)) and
    E[ρ⁴|u] = (1 + 2/d) s_t(u)². Every estimator uses the effective features
    φ̃_i = √s_t(u_i) v_i (f = σ_a² mean φ̃φ̃ᵀ t, K = mean φ̃φ̃ᵀ), with the rank-one Hessian term
    scaled by (1 + 2/d). The log tilt relative to the prior of u is −(d/2) log(1 − q_t(u)),
    which is +∞ for q ≥ 1: the importance-weighted surrogate then contains the exact domain
    barrier along every sampled direction (a plain h-sample surrogate is finite everywhere
    and lets Newton steps cross the boundary q(t) = 1), and its weights carry no radial noise.
    """

    def __init__(self, Z, L, nl, sa2, radial: bool):
        self.sa2, self.radial = sa2, radial
        self.d = L.shape[1]
        if radial:
            rho = np.maximum(np.sqrt(np.einsum("ij,ij->i", Z, Z)), 1e-300)
            self.V = nl((Z / rho[:, None]) @ L.T)
            self.b_scale = np.sqrt(1.0 + 2.0 / self.d)
        else:
            self.V = nl(Z @ L.T)
            self.b_scale = 1.0

    def q(self, t):
        """σ_a² ||tᵀ v_i||² per sample (the direction quotient in the radial form)."""
        B = self.V @ t
        return self.sa2 * np.einsum("ij,ij->i", B, B)

    def log_tilt(self, t):
        """Log tilt of each sample, up to a t-independent constant (+∞ outside the domain)."""
        q = self.q(t)
        if not self.radial:
            return 0.5 * q
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(q < 1.0, -0.5 * self.d * np.log1p(-np.minimum(q, 1.0)), np.inf)

    def phi(self, t):
        """Effective features φ̃ (S × P) at field t."""
        if not self.radial:
            return self.V
        return np.sqrt(self.d / (1.0 - self.q(t)))[:, None] * self.V

    def stats(self, Phi, w, t):
        """(f_w, B) for normalised weights w: f_w = σ_a² Σ w φ̃ φ̃ᵀ t, B the rank-one Hessian factor."""
        Bt = self.sa2 * (Phi @ t)
        return Phi.T @ (w[:, None] * Bt), self.b_scale * Bt


def _condensate_components(bank, L, t, nl, max_components: int = 16):
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


def _active_directions(bank, L, t, nl, sa2, q_active: float, max_active: int = 8):
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


def _constraint_gradients(V, t, sa2):
    """∇_t q_j = 2σ_a² v_j (v_jᵀ t), flattened (k × P·m) in the index order of t.ravel()."""
    return (2.0 * sa2 * V[:, :, None] * (V @ t)[:, None, :]).reshape(V.shape[0], t.size)


def _condensate_multipliers(A, r):
    """μ = argmin_{μ ≥ 0} ||r + Aᵀμ||² (non-negative least squares; A is k × n, r is n)."""
    if A.shape[0] == 0:
        return np.zeros(0)
    return nnls(A.T, -r.ravel())[0]


def _initial_field(spec, K0, L, nl, rng):
    """Start field, scaled so that the mean prior tilt is ≤ m/2 and q(t) ≤ 1/2 (linear-growth φ).

    Linear-growth φ: GP-like t = α (σ_a² K_prior + T I)⁻¹ Y. Bounded φ (erf, Φ, tanh): the class-
    aligned t = α Y. The GP field carries large within-class alternating components (from the small
    eigenvalues of K0 on real data); for bounded φ these make p_t strongly multimodal at the start
    (digits, P = 90, erf: tempered-SMC log Φ(t0) ≈ 90 with between-run sd 8–18) and the solver
    diverged from there (residual 9 → 58 in 25 rounds); from t = αY it converges in 11 rounds."""
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


def _start(spec, opt, t, L, nl, rng):
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
            sampler.set_components(_condensate_components(bank, L, t, nl))
            break
        t = t * np.sqrt(0.5 / qb)  # q is homogeneous of degree 2 in t
        sampler.Z = np.random.default_rng(rng.integers(2**63)).standard_normal(sampler.Z.shape)
        sampler.reset_reference()
        sampler.set_field(t)
    return sampler, t, bank, nb


def starting_field(spec: ModelSpec, options: GeneralOptions | None = None) -> np.ndarray:
    """The field t0 (P × m) at which :func:`solve_general` starts its first round (GP-like field,
    scaled into the domain as in :func:`_start`)."""
    opt = options or GeneralOptions()
    rng = np.random.default_rng(opt.seed)
    nl = get_nonlinearity(spec.nonlinearity)
    K0 = spec.input_kernel()
    L = _prior_factor(K0, spec.sigma_w)
    return _start(spec, opt, _initial_field(spec, K0, L, nl, rng), L, nl, rng)[1]


def solve_general(spec: ModelSpec, options: GeneralOptions | None = None, progress=None,
                  initial_field: np.ndarray | None = None) -> GeneralSolution:
    """Solve f = E_t[aφ(h)] = Y − T t on the inputs of ``spec`` (any φ, THEORY §2).

    ``progress(round, info_dict)`` is called after every round. ``initial_field`` (P × m) replaces
    the GP-like start (warm start, e.g. from a solution at a nearby temperature; it must lie in
    the domain). Raises :class:`SpecError` for invalid input (no inputs, T < 0 handled by the
    spec); non-convergence is reported in ``converged`` and ``message``, not raised.
    """
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec must be a ModelSpec (got {type(spec).__name__})")
    if spec.inputs is None:
        raise SpecError("solve_general needs explicit inputs (spec.inputs); for orthogonal data use solvers.solve")
    opt = options or GeneralOptions()
    start = time.perf_counter()
    rng = np.random.default_rng(opt.seed)
    nl = get_nonlinearity(spec.nonlinearity)
    radial = is_homogeneous(nl)
    K0 = spec.input_kernel()
    L = _prior_factor(K0, spec.sigma_w)
    Y, T, sa2, P, m = spec.targets(), spec.temperature, spec.sigma_a**2, spec.P, spec.m
    if initial_field is None:
        t = _initial_field(spec, K0, L, nl, rng)
    else:
        t = np.array(initial_field, dtype=np.float64)
        if t.shape != (P, m) or not np.all(np.isfinite(t)):
            raise SpecError(f"initial_field must be a finite array of shape (P, m) = ({P}, {m}) (got {t.shape})")
    sampler, t, bank, nb = _start(spec, opt, t, L, nl, rng)
    r_dim = L.shape[1]
    sampler.run(nb, 1, nb - 1)
    G = opt.groups
    sweeps = opt.sweeps
    smc = opt.sampler == "smc"
    keep = opt.smc_keep if smc else opt.keep  # stored states per chain (particle) per round
    n_part, smc_chains, f_mcse = opt.particles, None, np.inf

    def draw(tt):
        """One round's sample at field tt: (keep × C × r states, SMC diagnostics or None)."""
        nonlocal smc_chains
        if not smc:
            return sampler.run(sweeps, keep, int(opt.burn * sweeps)), None
        if smc_chains is None or smc_chains.Z.shape[0] != n_part:
            smc_chains = EllipticalSliceChains(L, spec.nonlinearity, spec.sigma_a, n_part, rng)
        res = smc_sample(smc_chains, tt, G, opt.cess, opt.smc_moves, keep, radial)
        return res.Z, res
    log, converged, message = [], False, ""
    H = None
    t_prev, Z_prev = None, None
    last_good = None
    # homogeneous φ: the surrogate holds the exact barrier along sampled directions; the refined
    # bound only guards unsampled ones, so it may approach 1 (the solution can lie close to it)
    margin = 1.0 - 1e-3 if radial else DOMAIN_MARGIN
    # homogeneous φ with a kink (ReLU): the domain constraint q(t) ≤ 1 is active at the solution
    # (condensate, module docstring); linear φ keeps a smooth barrier and an interior solution
    constrained = radial and not np.isclose(nl.slope_pos, nl.slope_neg)

    def _constrained_step(make_newton, g, bank, tt):
        """SQP step on the surrogate: min ½ΔᵀWΔ + gᵀΔ s.t. q_j(tt) + ∇q_jᵀΔ ≤ Q_CAP for the banked
        directions with q_j ≥ Q_ACTIVE (one per sign pattern, at most ``MAX_CUTS``), where
        W = ∇²Ĝ + Σ_j μ_j ∇²q_j is the Hessian of the Lagrangian (∇²q_j = 2σ_a² v_j v_jᵀ ⊗ I_m: the
        condensate's own kernel Σ_j λ_j v_j v_jᵀ, λ_j = 2μ_j, which carries an O(1) share of f; without
        it the step overshoots along the curved boundary, see the module docstring). Solved through the
        k-dimensional dual min_{μ≥0} ½μᵀMμ − μᵀ(AΔ₀ − b), M = A W⁻¹ Aᵀ, Δ = Δ₀ − W⁻¹Aᵀμ (Δ₀ = −W⁻¹g,
        b_j = Q_CAP − q_j), twice: μ starts from the NNLS fit of g + Aᵀμ ≈ 0 and is then the QP's."""
        _, Vall, qall = _active_directions(bank, L, tt, nl, sa2, 0.0, len(bank))  # one per sign pattern
        Aall = _constraint_gradients(Vall, tt, sa2)
        sel = np.flatnonzero(qall >= Q_ACTIVE)[:MAX_CUTS]
        mu = _condensate_multipliers(Aall[sel], g)
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

    def _restore(tn, qp):
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

    def _project(tn, bank):
        """Feasibility restoration after a step: q_j is homogeneous of degree 2 in t, so t ↦ t·√(Q_CAP/q_max)
        brings every banked direction to q_j ≤ Q_CAP (a second-order correction for a step that slides
        along the curved boundary, where q_j(t + αΔ) = Q_CAP + O(α²) for any α > 0)."""
        qm = float(np.max(_direction_quotients(bank, L, tn, nl, sa2))) if len(bank) else 0.0
        return tn * np.sqrt(Q_CAP / qm) if qm > Q_CAP else tn

    def residuals(feats, t):
        """KKT residual r̂ = f̂_bulk + T t − Y + Σ_j μ_j ∇q_j (μ from NNLS over the directions at
        the cap; none unless ``constrained``), its group MCSE, rms z, and (U, V, μ) of the condensate."""
        Phig = _by_group(feats.phi(t), keep, G)  # per-group residuals for the MCSE
        fg = sa2 * np.einsum("gsp,gsq->gpq", Phig, Phig @ t) / Phig.shape[1]
        r = fg.mean(axis=0) + T * t - Y
        se = _group_mcse(fg)
        cond = (np.zeros((0, r_dim)), np.zeros((0, P)), np.zeros(0))
        if constrained:
            Ua, Va, _ = _active_directions(bank, L, t, nl, sa2, Q_ON)
            mu = _condensate_multipliers(_constraint_gradients(Va, t, sa2), r)
            r = r + (_constraint_gradients(Va, t, sa2).T @ mu).reshape(r.shape)
            cond = (Ua, Va, mu)
        return r, se, float(np.sqrt(np.mean((r / np.maximum(se, 1e-300)) ** 2))), cond

    for rnd in range(1, opt.max_rounds + 1):
        sampler.t = t
        sampler.set_components(_condensate_components(bank, L, t, nl))
        sampler.set_field(t)
        sampler.indep_tried = sampler.indep_accepted = 0
        Z_start = sampler.Z.copy()
        try:
            Zs, sres = draw(t)  # keep × C × r
        except FloatingPointError:  # SMC: a particle crossed q_t(u) = 1, so Φ(t) = ∞
            Zs, sres = smc_chains.Z[None], None
        Zflat = Zs.reshape(-1, r_dim)
        if nl.linear_growth:
            # a direction with q ≥ 1 proves Φ(t) = ∞; the sampled directions of largest q, refined by
            # ascent, are the witnesses (escaping chains show the same for non-homogeneous φ)
            qs = _direction_quotients(Zflat, L, t, nl, sa2)
            qb, dirs = domain_lower_bound(t, L, nl.slope_pos, nl.slope_neg, spec.sigma_a, rng, starts=0, iters=0,
                                          directions=np.concatenate([Zflat, bank]), top=32, return_directions=True)
            bank = np.concatenate([dirs[:32], bank])[:256]
            escaped = (not radial) and np.max(np.sum(Zflat**2, axis=1)) > 50.0 * max(r_dim, 10)
            if qb >= 1.0 or escaped or (smc and sres is None):
                log.append({"round": rnd, "rejected": True, "q_witness": qb})
                if progress:
                    progress(rnd, {**log[-1], "samples": 0, "residual": float("nan"), "mcse": float("nan"),
                                   "z_rms": float("nan")})
                # back halfway toward the last field that sampled inside the domain (unless a witness
                # shows that it was outside too); q is homogeneous of degree 2 in t, so a rescaling
                # then brings every witness to q <= 0.9
                # (constrained: back to that field itself, the witness now being a cut)
                if t_prev is not None and np.max(_direction_quotients(bank, L, t_prev, nl, sa2)) >= 1.0:
                    t_prev = None
                if t_prev is not None:
                    t = t_prev.copy() if constrained else t_prev + 0.5 * (t - t_prev)
                qb = float(np.max(_direction_quotients(bank, L, t, nl, sa2)))
                cap = Q_CAP if constrained else 0.9
                t = t * np.sqrt(cap / max(qb, cap))
                if Z_prev is not None and not smc:
                    sampler.Z = Z_prev.copy()
                continue
        t_prev, Z_prev = t.copy(), Z_start
        H = Zs @ L.T  # keep × C × P
        feats = _Features(Zflat, L, nl, sa2, radial)
        S = Zflat.shape[0]
        r, se, z_rms, cond = residuals(feats, t)
        rhat = _rhat(feats.log_tilt(t), keep, G, smc)
        last_good = (t.copy(), Zs, H, feats, r, se, z_rms, rhat, cond)
        info = {"round": rnd, "samples": S, "sweeps": sweeps, "residual": float(np.max(np.abs(r))),
                "mcse": float(np.max(se)), "z_rms": z_rms, "rhat": rhat}
        if sres is not None:
            info.update(sres.diagnostics())
            info["f_mcse"] = f_mcse = _corrected_output_mcse(feats, t, Y, T, sa2, keep, G) if T > 0 else info["mcse"]
        if constrained:
            info["condensate"] = np.round(2.0 * cond[2], 4).tolist()
        if nl.linear_growth:
            info["q_sampled"], info["q_bound"] = float(qs.max()), qb
            if not smc:
                info["jump_acceptance"] = sampler.indep_accepted / max(sampler.indep_tried, 1)
        accurate = (f_mcse if smc else float(np.max(se))) <= opt.f_tol and rhat <= opt.rhat_tol
        if z_rms <= opt.z_tol and (smc or sweeps >= opt.final_sweeps) and accurate:
            converged, message = True, ""
            log.append(info)
            if progress:
                progress(rnd, info)
            break
        if smc and z_rms <= 4 * opt.z_tol and not accurate:
            n_part = min(2 * n_part, opt.max_particles)  # SMC: every round is at equilibrium, grow the cloud
        elif not smc and z_rms <= 4 * opt.z_tol:
            # grow the sample: to final_sweeps while the residual is not yet within its noise, then
            # up to max_sweeps while the noise (or the chains' disagreement) is above the target
            cap = opt.final_sweeps if (z_rms > opt.z_tol or accurate) else opt.max_sweeps
            sweeps = min(2 * sweeps, max(cap, sweeps))
        # Newton on the importance-weighted surrogate (fixed sample: common random numbers)
        lt0 = feats.log_tilt(t)
        for cut_round in range(CUT_ROUNDS if constrained else 1):
            tt = t.copy()

            def surrogate(tn):
                lw = feats.log_tilt(tn) - lt0
                if not np.all(np.isfinite(lw)):
                    return np.inf, None, 0.0
                mx = lw.max()
                e = np.exp(lw - mx)
                val = mx + np.log(e.mean()) - np.sum(tn * Y) + 0.5 * T * np.sum(tn * tn)
                wn = e / e.sum()
                return val, wn, 1.0 / (S * np.sum(wn * wn))

            val, w, _ = surrogate(tt)
            steps, limit, alpha = 0, "", 0.0
            for _ in range(opt.max_newton):
                Phi_t = feats.phi(tt)
                f_w, B = feats.stats(Phi_t, w, tt)
                g = f_w + T * tt - Y
                make_newton = _newton_factory(Phi_t, w, B, f_w, sa2, T)
                delta, qp = _constrained_step(make_newton, g, bank, tt) if constrained else (make_newton()(g), None)
                slope = float(np.sum(g * delta))
                if slope >= 0:
                    break
                alpha, accepted = 1.0, False
                for _ in range(30):
                    tn = tt + alpha * delta
                    if constrained:
                        tn = _project(_restore(tn, qp), bank)
                    vn, wn, essf = surrogate(tn)
                    if not np.isfinite(vn):
                        limit = "barrier"
                    elif essf < opt.min_ess_fraction:
                        limit = "ess"
                    elif vn > val + 1e-4 * alpha * slope:
                        limit = "armijo"
                    elif not constrained and nl.linear_growth and domain_lower_bound(
                            tn, L, nl.slope_pos, nl.slope_neg, spec.sigma_a, rng, starts=0, iters=0, directions=bank,
                            top=16, ascent=60) >= margin:
                        limit = "domain"
                    else:
                        accepted = True
                        break
                    alpha *= 0.5
                if not accepted:
                    break
                tt, val, w = tn, vn, wn
                steps += 1
                if alpha < 1.0 or -slope < 1e-12:
                    break
            if not (constrained and steps):
                break
            # cutting plane: directions of q > Q_CAP at the new field (ascent from the cuts and the
            # sample) join the bank and the step is recomputed from t with them; after the last
            # recomputation the step is halved until none is found
            qn, dn = domain_lower_bound(tt, L, nl.slope_pos, nl.slope_neg, spec.sigma_a, rng, starts=0, iters=0,
                                        directions=np.concatenate([bank, Zflat]), top=32, ascent=100,
                                        return_directions=True)
            bank = np.concatenate([dn[:16], bank])[:256]
            if qn <= margin:
                break
            limit = "cut added"
            if cut_round < CUT_ROUNDS - 1:
                continue
            tt = _project(tt, bank)  # the new cuts are in the bank: restore q ≤ Q_CAP on them
        if not smc:
            sampler.adapt(Zflat)
        info.update(newton_steps=steps, step=float(np.max(np.abs(tt - t))), alpha=alpha, limited_by=limit)
        log.append(info)
        if progress:
            progress(rnd, info)
        if steps == 0 and (n_part >= opt.max_particles if smc else sweeps >= opt.final_sweeps) and rnd > 2:
            message = "no descent step on the surrogate at the largest sample size"
        t = tt
    else:
        # not converged: sample once more at the final t so that the reported values belong to it
        # (or fall back to the last round that sampled inside the domain)
        sampler.set_field(t)
        try:
            Zs, sres = draw(t)
        except FloatingPointError:
            Zs = smc_chains.Z[None].repeat(keep, axis=0)
        if nl.linear_growth and np.max(_direction_quotients(Zs.reshape(-1, r_dim), L, t, nl, sa2)) >= 1.0:
            if last_good is None:
                raise RuntimeError("solve_general: no round sampled inside the domain q(t) < 1")
            t, Zs, H, feats, r, se, z_rms, rhat, cond = last_good
        else:
            H = Zs @ L.T
            feats = _Features(Zs.reshape(-1, r_dim), L, nl, sa2, radial)
            r, se, z_rms, cond = residuals(feats, t)
            rhat = _rhat(feats.log_tilt(t), keep, G, smc)
        message = message or (f"no convergence in {opt.max_rounds} rounds: rms residual/MCSE {z_rms:.2f} "
                              f"(tolerance {opt.z_tol}), max MCSE {float(np.max(se)):.2g} (target {opt.f_tol}), "
                              f"{'group' if smc else 'split'}-R̂ of the log tilt {rhat:.3f} (target {opt.rhat_tol})")
    # one-step correction per group, with the Hessian of the full final sample
    Phi = feats.phi(t)
    S = Phi.shape[0]
    w = np.full(S, 1.0 / S)
    f_all, B_all = feats.stats(Phi, w, t)
    Phig = _by_group(Phi, keep, G)
    Sg = Phig.shape[1]
    newton_step = _newton_solver(Phi, w, B_all, f_all, sa2, T)
    Ucond, Vcond, _ = cond
    Acond = _constraint_gradients(Vcond, t, sa2)
    deltas, fs, Ks, Us, mus = [], [], [], [], []
    for g in range(G):  # loop over the few chain groups only
        Pg = Phig[g]
        Bg = sa2 * (Pg @ t)
        fgv = Pg.T @ Bg / Sg
        rg = fgv + T * t - Y
        mug = _condensate_multipliers(Acond, rg)  # condensate masses 2μ_j of this group
        mus.append(mug)
        rg = rg + (Acond.T @ mug).reshape(rg.shape)
        dg = newton_step(rg)
        deltas.append(dg)
        tg = t + dg
        fs.append(Y - T * tg)
        Kg = Pg.T @ Pg / Sg + (Vcond.T * (2.0 * mug)) @ Vcond
        Ks.append(Kg)
        Us.append(sa2 * np.eye(m) + sa2**2 * tg.T @ Kg @ tg)
    fs, Ks, Us = np.array(fs), np.array(Ks), np.array(Us)
    if T == 0.0:  # f = Y exactly at T = 0; its error is the residual's
        f_err = se.copy()
    else:
        f_err = _group_mcse(fs)
    imax = np.unravel_index(np.argmax(np.abs(r)), r.shape)
    sol = GeneralSolution(
        spec=spec, t=t + np.mean(deltas, axis=0), outputs=fs.mean(axis=0), outputs_error=f_err,
        readout_moment=Us.mean(axis=0), readout_moment_error=_group_mcse(Us), kernel=Ks.mean(axis=0),
        kernel_error=_group_mcse(Ks), residual=float(np.abs(r[imax])), residual_error=float(se[imax]),
        z_rms=z_rms, rhat=rhat,
        converged=converged, rounds=len(log), samples_per_round=int(S), time_seconds=time.perf_counter() - start,
        log=log, message=message or f"converged: rms residual/MCSE {z_rms:.2f} <= {opt.z_tol}",
        _H=H, _t_sampled=t, _deltas=np.array(deltas), _groups=G,
        condensate_directions=Ucond, condensate_masses=2.0 * np.array(mus).mean(axis=0),
        condensate_masses_error=_group_mcse(2.0 * np.array(mus)) if len(Ucond) else np.zeros(0),
        _cond_h=Ucond @ L.T, _cond_mu=np.array(mus))
    return sol


def progress_printer(prefix: str = "[theory]"):
    """A ``progress`` callback printing one line per round on stderr."""
    def cb(rnd, info):
        print(f"{prefix} round {rnd:2d}: {info['samples']} samples, residual {info['residual']:.2e} "
              f"(MCSE {info['mcse']:.1e}, rms z {info['z_rms']:.2f})", file=sys.stderr, flush=True)
    return cb
