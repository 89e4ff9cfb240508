"""Large-P branch form of the mean-field theory on arbitrary inputs (THEORY §2 + §4, issue 5).

Scaling σ_a² = σ̄_a²/P (σ̄_a = ``spec.sigma_a``·√P), the readout a ∈ R^m of one neuron has the
marginal p_t(a) ∝ exp(P·S(a; t)) with (van Meegen & Sompolinsky, Nat. Commun. 16, 3354 (2025))

    S(a; t) = −||a||²/(2σ̄_a²) + Λ(t a)/P,      Λ(g) = log E_{h~N(0,σ_1²K0)} exp(g·φ(h)),  g ∈ R^P.

For K0 = I and class-constant t this is THEORY §4's S (Λ = Σ_c P_c ψ(t_c·a)); the module
generalises :mod:`solvers.large_p.solve` to any input kernel K0. As P → ∞ the measure concentrates on
the global maxima a_γ of S (branches) with occupations P_γ ≥ 0, Σ P_γ = 1; given a_γ the
preactivations follow the tilted Gaussian p(h | a_γ) ∝ N(h; 0, σ_1²K0) e^{g_γ·φ(h)}, g_γ = t a_γ.
With m_γ = E_{h|a_γ}[φ(h)] (P-vector) and C_γ = Cov_{h|a_γ}[φ(h)], the equations are

    ∇_a S(a_γ) = 0     ⇔  a_γ = (σ̄_a²/P) tᵀ m_γ
    S(a_γ) = λ         (equal global maxima)
    f = Σ_γ P_γ m_γ a_γᵀ = Y − T t,       Σ_γ P_γ = 1,

the KKT conditions of the convex, non-smooth dual G∞(t) = max_a S − tr(tᵀY)/P + (T/2P)||t||².
Observables: U = Σ P_γ a_γ a_γᵀ, K = Σ P_γ E_{h|a_γ}[φφᵀ], test predictor
f(x*) = Σ P_γ a_γ E_{h|a_γ}[E[φ(h*) | h]] (h* | h Gaussian, :func:`theory.general.test_conditional`,
:func:`theory.general.gaussian_phi_mean`). Odd φ: S(−a) = S(a) and every observable is even in a,
so a branch stands for the mirror orbit {a_γ, −a_γ} with its occupation split equally.

Numerics:

* **Tilted sampler** (:class:`TiltedChains`): generalised elliptical slice sampling (Murray,
  Adams & MacKay 2010; Nishihara, Murray & Adams 2014) of p(z) ∝ N(z; 0, I) e^{g_c·φ(Lz)},
  σ_1²K0 = LLᵀ, many tilt vectors g_c at once (one per chain; chains grouped by tilt), with a
  Gaussian reference N(μ_k, S_k) per tilt group fitted between runs (exact for any reference).
* **Λ by thermodynamic integration**: Λ(g) = ∫₀¹ g·m(s g) ds on Clenshaw–Curtis nodes (s = 0
  in closed form, E_prior φ(h_μ) = E φ(N(0, σ_1²K0_μμ))); error = Monte Carlo standard error
  (MCSE, from independent chain groups) ⊕ |CC_n − CC_{n/2}| (nested rule).
* **Branch search** (:func:`find_maxima`): the minorise–maximise fixed point
  a ← (σ̄_a²/P) tᵀ m(t a) (S ≥ its linearisation in the convex Λ, so S never decreases) from
  sign-pattern starts in {−1, 0, 1}^m (m ≤ 4) plus random starts, all sampled in one batch;
  end points clustered (modulo a → −a for odd φ); a local maximum needs ∇²S = −I/σ̄_a² +
  tᵀC t/P ≺ 0; heights by thermodynamic integration.
* **Outer solve** (:func:`solve_general_branches`): Newton on the full KKT system in
  (t, a_γ, P_γ, λ) with the sampled Jacobian (C_γ from the samples); between samplings the
  Newton iterations use the importance-weighted surrogate of each branch (common random
  numbers: m_γ, C_γ and Λ_γ at a new g_γ by reweighting the fixed sample; the trust region is an
  importance-sampling ESS ≥ ``min_ess_fraction``). Branches whose occupation turns negative are
  dropped; at convergence the branch search runs again at the final t and a maximum above the
  occupied ones (by more than 3 errors) is added and the solve continues.
* **Convergence**: rms of r̂/MCSE(r̂) ≤ ``z_tol`` for the f-equation r̂ = Σ P_γ m_γ a_γᵀ + T t − Y,
  max MCSE(r̂) ≤ ``f_tol``, the stationarity ‖∇_a S‖ and the height differences within 3 MCSE.
  The reported f = Σ P_γ m_γ a_γᵀ at the last sampled point; its error is MCSE ⊕ |r̂| per entry
  (the group MCSE alone misses the noise that (t, a_γ, P_γ) carry from the previous round's
  sample: on K0 = I single entries were off by 5 MCSE with the rms z ≈ 1.8).

Linear φ: Λ = σ_1² gᵀK0 g/2 exactly, S is quadratic with its maximum at a = 0 inside the domain
σ̄_a²σ_1² tᵀK0t/P ⪯ I; the solution is one Gaussian branch (a = 0, h | a the prior) whose readout
covariance U is the multiplier of that constraint: f = σ_1² K0 t U = Y − T t, U ⪰ 0,
U (I − σ̄_a²σ_1² tᵀK0t/P) = 0. Solved without sampling as the concave dual
max_{U⪰0} −½ vec(Y)ᵀ(T I + σ_1² U ⊗ K0)⁻¹vec(Y) − (P/2σ̄_a²) tr U (:func:`linear_branch_form`);
for K0 = I it is :func:`solvers.large_p.solve.linear_large_p`.

ReLU (and other φ with linear growth): the condensate of THEORY §4 is not implemented here;
:func:`solve_general_branches` raises :class:`SpecError`.

Measured (σ_1 = 1, σ̄_a = 1, 2 cores shared, default options):

* K0 = I (x_μ = √P e_μ, P = 12), T = 0.05, start 20% off: erf 4 mirror orbits ±(1.01, ±1.01, ±1.01),
  P_γ = 0.25 ± 0.01, f_cc 0.813 ± 0.003 (large_p: 0.8125), U_cc 1.015 (1.0155); normcdf 3 codes
  1-1-0 with P_γ = 1/3, f 0.676/0.102 (0.6761/0.1022), U 1.320/−0.310 (1.3208/−0.3094); 8–20 s.
* Digits 0/1/2 (pixel-standardised), normcdf, T = 0.05: P = 30 (39 s), 90 (107–135 s), 300 (422 s)
  all converge with three codes 0-1-1/1-1-0/1-0-1, P_γ ≈ 0.34/0.33/0.33, f_cc ≈ 0.72–0.74 with
  MCSE ≤ 0.002. The finite-P MCMC solver (:func:`solvers.data.solve.solve_general`,
  σ_a² = 1/P) agrees on the class-averaged f within 0.002 (P = 30, converged), 0.002 (P = 90,
  not converged, R̂ 1.67) and 0.003–0.09 (P = 300, not converged).
* Digits, erf, T = 0.05: P = 30 converges (41 s, 4 orbits +−−/++−/+−+/+++, P_γ 0.34/0.33/0.29/0.04;
  class f within 0.001 of the finite-P solver). P = 90 converged once with 8 TI nodes (188 s,
  4 orbits, P_γ 0.35/0.32/0.28/0.05, f_cc 0.80; the +++ orbit lies 0.5–0.7 above the others at the
  template start and is added by the final branch search) but NOT with the current defaults
  (40 rounds, 539 s): once rounds reach 320 sweeps the chains find further modes of the tilted
  p(h | a_γ) (odd φ on correlated inputs), the residual jumps from 0.07 to 0.64 and the height
  spread from 0.04 to 0.31 between rounds. Its class f is still within 0.006 of the (also not
  converged) finite-P solver. The independence moves do not mix these modes reliably.
* Digits, T = 0.5, P = 90: erf 3 orbits (P_γ 0.45/0.27/0.28), class f within 0.006 of the converged
  finite-P solver; normcdf 2 branches 0-1-1/1-1-1 (classes 1 and 2 share both codes), class f
  within 0.02 of the finite-P solver, which separates classes 1 and 2 slightly (0.149/0.118
  against 0.138/0.136). U differs from the finite-P U by ≈ σ_a² = 1/P (the Gaussian spread of a
  given h, absent at P = ∞).

Limits: the branch search explores sign-pattern starts only (m ≤ 4 exhaustively); heights carry
TI errors that grow with P (S error ≈ 0.002 at P = 300); the Newton trust region (importance
ESS) makes rounds short but many when a branch has to be added far from the solution.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import itertools
import time

import numpy as np
from scipy.optimize import minimize, nnls

from theory.general import gaussian_phi_mean, input_kernels, test_conditional
from theory.nonlinearities import get_nonlinearity
from theory.spec import ModelSpec, SpecError

from solvers.data.elliptical_slice import elliptical_slice_update, fit_gaussian_references
from solvers.data.solve import TestPrediction, _group_mcse, _prior_factor, class_averages

__all__ = ["GeneralBranchOptions", "GeneralBranch", "GeneralBranchSolution", "TiltedChains", "find_maxima",
           "solve_general_branches", "linear_branch_form", "clenshaw_curtis"]


# ----------------------------------------------------------------------------- options
@dataclass(frozen=True)
class GeneralBranchOptions:
    """Settings of :func:`solve_general_branches` (validated on construction).

    chains: chains per tilt vector (branch or integration node), a multiple of ``groups``;
    groups: independent chain groups per tilt for the MCSE (≥ 4); sweeps: ESS sweeps per round
    (doubled up to ``max_sweeps`` once the residual is within 4·z_tol of its noise); keep: stored
    states per chain; nodes: Clenshaw–Curtis intervals of the Λ integration (even, ≥ 4);
    search_starts: random starts of the branch search on top of the sign patterns;
    search_iters: fixed-point iterations of the search; max_rounds: outer samplings.
    """

    chains: int = 64
    groups: int = 8
    sweeps: int = 40
    max_sweeps: int = 320
    keep: int = 10
    nodes: int = 16
    search_starts: int = 6
    search_iters: int = 40
    max_rounds: int = 40
    max_newton: int = 6
    z_tol: float = 2.0
    f_tol: float = 0.02
    min_ess_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self):
        for name in ("chains", "groups", "sweeps", "max_sweeps", "keep", "nodes", "search_iters", "max_rounds",
                     "max_newton"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise SpecError(f"{name} must be an integer >= 1 (got {v!r})")
        if isinstance(self.search_starts, bool) or not isinstance(self.search_starts, (int, np.integer)) \
                or self.search_starts < 0:
            raise SpecError(f"search_starts must be an integer >= 0 (got {self.search_starts!r})")
        if self.groups < 4 or self.chains % self.groups:
            raise SpecError(f"groups must be >= 4 and divide chains = {self.chains} (got {self.groups})")
        if self.nodes < 4 or self.nodes % 2:
            raise SpecError(f"nodes must be an even integer >= 4 (got {self.nodes})")
        if self.max_sweeps < self.sweeps:
            raise SpecError(f"max_sweeps must be >= sweeps = {self.sweeps} (got {self.max_sweeps})")
        if self.keep > self.sweeps:
            raise SpecError(f"keep must be <= sweeps = {self.sweeps} (got {self.keep})")
        if not (self.z_tol > 0 and self.f_tol > 0):
            raise SpecError(f"z_tol and f_tol must be > 0 (got {self.z_tol!r}, {self.f_tol!r})")
        if not 0.0 < self.min_ess_fraction < 1.0:
            raise SpecError(f"min_ess_fraction must be in (0, 1) (got {self.min_ess_fraction!r})")


# ----------------------------------------------------------------------------- quadrature
def clenshaw_curtis(n: int):
    """Clenshaw–Curtis nodes s_j = (1 − cos(jπ/n))/2, j = 0..n, and weights on [0, 1].

    Weights from the Chebyshev moments ∫_{−1}^{1} T_k = 2/(1 − k²) (k even), solved exactly on
    the n + 1 nodes (the rule integrates polynomials of degree n exactly)."""
    j = np.arange(n + 1)
    x = -np.cos(np.pi * j / n)  # ascending in [−1, 1]
    k = np.arange(n + 1)
    Tm = np.cos(np.outer(k, np.arccos(np.clip(x, -1.0, 1.0))))  # T_k(x_j)
    mom = np.where(k % 2 == 0, 2.0 / (1.0 - k.astype(float) ** 2 + (k % 2)), 0.0)
    w = np.linalg.solve(Tm, mom)
    return 0.5 * (x + 1.0), 0.5 * w


# ----------------------------------------------------------------------------- sampler
class TiltedChains:
    """Generalised elliptical slice sampling of many tilted Gaussians at once.

    Chain c targets π_c(z) ∝ N(z; 0, I) exp(g_c·φ(L z)) (z ∈ R^r, h = L z, σ_1²K0 = LLᵀ). Chains
    come in consecutive blocks of ``per`` chains sharing a tilt (a "tilt group"); each tilt group k
    has a Gaussian reference N(μ_k, S_k) (prior at first, :meth:`adapt` fits it to samples between
    runs): the ellipse is drawn around μ_k with ν ~ N(0, S_k) and the slice uses π_c/N(·; μ_k, S_k),
    which is exact for any S_k ≻ 0. Every operation is vectorised over chains; the only Python loop
    is over the tilt groups in the reference products (a few dozen at most).
    """

    def __init__(self, L: np.ndarray, nonlinearity: str, tilts: np.ndarray, per: int, rng: np.random.Generator):
        self.L = np.ascontiguousarray(L, dtype=np.float64)
        self.phi = get_nonlinearity(nonlinearity)
        self.rng = rng
        self.per = int(per)
        r = self.L.shape[1]
        self.r = r
        self.set_tilts(tilts, reset=True)
        self.evaluations = 0
        self.shrinks = 0
        self.tried = self.accepted = 0

    @property
    def k(self) -> int:
        return self.G.shape[0]

    def set_tilts(self, tilts: np.ndarray, reset: bool = False, Z: np.ndarray | None = None, refs=None):
        """Tilt vectors (k × P), one per tilt group; ``reset`` draws fresh prior states and prior
        references, ``Z``/``refs`` warm-start them (refs = (μ (k×r), Ls (k×r×r), Dprec (k×r×r)))."""
        G = np.atleast_2d(np.asarray(tilts, dtype=np.float64))
        k, r = G.shape[0], self.r
        self.G = G
        self.Gc = np.repeat(G, self.per, axis=0)
        if reset or Z is None:
            self.Z = self.rng.standard_normal((k * self.per, r))
        else:
            self.Z = np.array(Z, dtype=np.float64)
        if refs is None:
            self.mu = np.zeros((k, r))
            self.Ls = np.repeat(np.eye(r)[None], k, axis=0)
            self.Dprec = np.zeros((k, r, r))
        else:
            self.mu, self.Ls, self.Dprec = (np.array(x, dtype=np.float64) for x in refs)
        self.ll = self._loglik(self.Z)

    def refs(self):
        return self.mu.copy(), self.Ls.copy(), self.Dprec.copy()

    def _blockwise(self, X: np.ndarray, M: np.ndarray, transpose: bool) -> np.ndarray:
        """Row block k of X times M_k (or M_kᵀ): one matrix product per tilt group."""
        Xb = X.reshape(self.k, self.per, self.r)
        return np.einsum("kcj,kij->kci" if transpose else "kcj,kji->kci", Xb, M).reshape(-1, self.r)

    def _loglik(self, Z: np.ndarray) -> np.ndarray:
        """g_c·φ(L z) − |z|²/2 − log N(z; μ_k, S_k) + const, per chain."""
        self.evaluations = getattr(self, "evaluations", 0) + Z.shape[0]
        D = Z - np.repeat(self.mu, self.per, axis=0)
        tilt = np.einsum("ij,ij->i", self.Gc, self.phi(Z @ self.L.T))
        return (tilt - 0.5 * np.einsum("ij,ij->i", Z, Z) + 0.5 * np.einsum("ij,ij->i", D, D)
                + 0.5 * np.einsum("ij,ij->i", self._blockwise(D, self.Dprec, False), D))

    def step(self):
        """One elliptical slice update of every chain (leaves each π_c invariant)."""
        rng = self.rng
        C = self.Z.shape[0]
        mu = np.repeat(self.mu, self.per, axis=0)
        nu = self._blockwise(rng.standard_normal((C, self.r)), self.Ls, True)
        self.Z, self.ll, rejections = elliptical_slice_update(rng, self.Z, self.ll, mu, nu, self._loglik_rows,
                                                              max_rounds=100)
        self.shrinks += rejections

    def independence_step(self):
        """Independence Metropolis–Hastings with each group's reference N(μ_k, S_k) as proposal:
        accept z' with min(1, e^{ℓ(z') − ℓ(z)}), ℓ = log π_c − log N(·; μ_k, S_k) (the slice
        likelihood). Exact for any reference; it moves chains between separated modes of a
        multimodal p(h | g) (odd φ on correlated inputs) once the fitted reference covers them."""
        rng = self.rng
        C = self.Z.shape[0]
        prop = np.repeat(self.mu, self.per, axis=0) + self._blockwise(rng.standard_normal((C, self.r)), self.Ls, True)
        lp = self._loglik(prop)
        acc = np.log(rng.random(C)) < lp - self.ll
        self.tried += C
        self.accepted += int(acc.sum())
        self.Z[acc], self.ll[acc] = prop[acc], lp[acc]

    def _loglik_rows(self, Zr: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """_loglik for a subset of chains ``rows``."""
        self.evaluations += Zr.shape[0]
        grp = rows // self.per
        D = Zr - self.mu[grp]
        tilt = np.einsum("ij,ij->i", self.Gc[rows], self.phi(Zr @ self.L.T))
        Dq = np.einsum("ij,ijk->ik", D, self.Dprec[grp]) if rows.size < 4 * self.per else \
            self._blockwise_rows(D, grp)
        return tilt - 0.5 * np.einsum("ij,ij->i", Zr, Zr) + 0.5 * np.einsum("ij,ij->i", D, D) \
            + 0.5 * np.einsum("ij,ij->i", Dq, D)

    def _blockwise_rows(self, D, grp):
        out = np.empty_like(D)
        for k in np.unique(grp):  # loop over tilt groups only
            sel = grp == k
            out[sel] = D[sel] @ self.Dprec[k]
        return out

    def run(self, n_steps: int, keep: int) -> np.ndarray:
        """``n_steps`` updates; returns the last ``keep`` states thinned evenly over the second
        half of the run, shape (keep, chains, r)."""
        burn = n_steps // 2
        thin = max(1, (n_steps - burn) // keep)
        out = []
        for s in range(n_steps):
            self.step()
            self.independence_step()
            if s >= burn and (s - burn) % thin == thin - 1 and len(out) < keep:
                out.append(self.Z.copy())
        while len(out) < keep:
            self.step()
            self.independence_step()
            out.append(self.Z.copy())
        return np.array(out)

    def adapt(self, Zs: np.ndarray, shrink: float = 0.05):
        """Reference N(μ_k, S_k) per tilt group from samples (keep × chains × r), shrunk toward I."""
        keep = Zs.shape[0]
        Zg = Zs.reshape(keep, self.k, self.per, self.r).transpose(1, 0, 2, 3).reshape(self.k, -1, self.r)
        self.mu, self.Ls, self.Dprec, _ = fit_gaussian_references(Zg, shrink)
        self.ll = self._loglik(self.Z)

    def features(self, Zs: np.ndarray) -> np.ndarray:
        """φ(h) of samples (keep × chains × r) as (k, groups-ready samples, P): tilt group first,
        rows ordered (chain within the group, draw) so that contiguous row blocks are chain groups."""
        keep = Zs.shape[0]
        H = Zs @ self.L.T  # keep × C × P
        H = H.reshape(keep, self.k, self.per, -1).transpose(1, 2, 0, 3).reshape(self.k, self.per * keep, -1)
        return H


# ----------------------------------------------------------------------------- statistics
def _prior_phi_mean(nonlinearity: str, K0: np.ndarray, sigma_w: float) -> np.ndarray:
    """E_prior φ(h_μ), h_μ ~ N(0, σ_1²K0_μμ) (closed form or Gauss–Hermite)."""
    d = sigma_w**2 * np.diag(K0)
    return gaussian_phi_mean(nonlinearity, np.zeros_like(d), d)[0]


@dataclass
class _BranchSample:
    """Samples of p(h | g) at one tilt g: preactivations H (S × P) and φ(H), groups contiguous."""

    g: np.ndarray
    H: np.ndarray
    Phi: np.ndarray
    groups: int

    def mean(self, w=None) -> np.ndarray:
        return self.Phi.mean(axis=0) if w is None else w @ self.Phi

    def group_means(self) -> np.ndarray:
        return self.Phi.reshape(self.groups, -1, self.Phi.shape[1]).mean(axis=1)

    def cov(self, w=None) -> np.ndarray:
        if w is None:
            w = np.full(self.Phi.shape[0], 1.0 / self.Phi.shape[0])
        m = w @ self.Phi
        D = self.Phi - m
        return D.T @ (w[:, None] * D)

    def reweight(self, g_new: np.ndarray):
        """(log mean e^{(g'−g)·φ}, normalised weights, ESS fraction) for the tilt g'."""
        lw = self.Phi @ (g_new - self.g)
        mx = lw.max()
        e = np.exp(lw - mx)
        w = e / e.sum()
        return mx + np.log(e.mean()), w, 1.0 / (lw.size * np.sum(w * w))


def _sample_tilts(L, nl_name, tilts, opt, rng, sweeps, state=None, adapt_rounds=1):
    """Sample p(h | g) for every row g of ``tilts``; returns (list of _BranchSample, sampler state).

    ``state`` = (Z, refs) of a previous run with the same number of tilts warm-starts chains and
    references; otherwise ``adapt_rounds`` short runs fit the references first."""
    chains = TiltedChains(L, nl_name, tilts, opt.chains, rng)
    if state is not None and state[0].shape[0] == chains.Z.shape[0]:
        chains.set_tilts(tilts, Z=state[0], refs=state[1])
    else:
        for _ in range(adapt_rounds):
            Zs = chains.run(max(sweeps // 2, 10), min(opt.keep, max(sweeps // 4, 1)))
            chains.adapt(Zs)
    Zs = chains.run(sweeps, opt.keep)
    chains.adapt(Zs)  # for the next (warm-started) run only; this run's samples are exact
    H = chains.features(Zs)
    phi = chains.phi
    out = [_BranchSample(g=np.array(tilts[i], dtype=np.float64), H=H[i], Phi=phi(H[i]), groups=opt.groups)
           for i in range(len(tilts))]  # loop over tilt groups only
    return out, (chains.Z.copy(), chains.refs())


def thermodynamic_lambda(L, nl_name, K0, sigma_w, tilts, opt, rng, sweeps, state=None):
    """Λ(g) = log E_prior e^{g·φ(h)} = ∫₀¹ g·E_{sg}[φ] ds for every row g of ``tilts``.

    Clenshaw–Curtis with ``opt.nodes`` intervals (s = 0 in closed form); returns (Λ (n,),
    error (n,), samples at s = 1 (list of _BranchSample), state). Error = MCSE from the chain
    groups (each group integrates on its own) ⊕ |CC_n − CC_{n/2}| (nested nodes)."""
    tilts = np.atleast_2d(tilts)
    n = tilts.shape[0]
    s, w = clenshaw_curtis(opt.nodes)
    s2, w2 = clenshaw_curtis(opt.nodes // 2)
    m0 = _prior_phi_mean(nl_name, K0, sigma_w)
    node_tilts = (s[1:, None, None] * tilts[None]).reshape(-1, tilts.shape[1])  # (nodes·n) × P
    if state is not None and state[0].shape[0] == node_tilts.shape[0] * opt.chains:
        samples, state = _sample_tilts(L, nl_name, node_tilts, opt, rng, sweeps, state=state)
    else:
        # annealing: node j starts from the chains and references of node j − 1 (strong tilts are
        # concentrated far from the prior; fresh prior chains do not reach them in a short run)
        samples, parts = [], []
        prev = None
        for j in range(1, opt.nodes + 1):  # loop over the few nodes
            smp_j, prev = _sample_tilts(L, nl_name, s[j] * tilts, opt, rng, sweeps, state=prev, adapt_rounds=2)
            samples += smp_j
            parts.append(prev)
        Zall = np.concatenate([p_[0] for p_ in parts])
        refs = tuple(np.concatenate([p_[1][i] for p_ in parts]) for i in range(3))
        state = (Zall, refs)
    G = opt.groups
    # integrand per node, branch and group: g·m_group(s g)
    vals = np.array([smp.group_means() @ smp.g / max(sv, 1e-300) for smp, sv in
                     zip(samples, np.repeat(s[1:], n))]).reshape(opt.nodes, n, G)
    v0 = np.broadcast_to((tilts @ m0)[None, :, None], (1, n, G))
    V = np.concatenate([v0, vals], axis=0)  # (nodes+1) × n × G
    lam_g = np.einsum("j,jng->ng", w, V)
    lam2 = np.einsum("j,jn->n", w2, V[::2].mean(axis=2))
    lam = lam_g.mean(axis=1)
    err = np.sqrt(_group_mcse(lam_g.T) ** 2 + (lam - lam2) ** 2)
    last = samples[(opt.nodes - 1) * n:]
    return lam, err, last, state


# ----------------------------------------------------------------------------- branch search
@dataclass
class Maximum:
    """A local maximum of S(·; t): a, S(a) with error, Hessian eigenvalues of S."""

    a: np.ndarray
    value: float
    value_error: float
    hessian_eigenvalues: np.ndarray
    gradient: float


def _sign_starts(m: int, odd: bool, scale: float, n_random: int, rng) -> np.ndarray:
    """Starts for the search: {−1, 0, 1}^m \\ {0} (m ≤ 4; modulo ± for odd φ) times ``scale``,
    plus ``n_random`` Gaussian starts."""
    starts = []
    if m <= 4:
        for p in itertools.product((-1, 0, 1), repeat=m):
            v = np.array(p, dtype=np.float64)
            if not v.any():
                continue
            if odd and v[np.flatnonzero(v)[0]] < 0:
                continue
            starts.append(scale * v)
    else:
        eye = np.eye(m)
        starts += [scale * e for e in eye] + [-scale * e for e in eye] + [scale * np.ones(m)]
    starts += [scale * rng.standard_normal(m) for _ in range(n_random)]
    return np.array(starts)


def find_maxima(spec: ModelSpec, t: np.ndarray, opt: GeneralBranchOptions | None = None, starts=None,
                rng=None, L=None, K0=None) -> list:
    """Local maxima of S(a; t) (module docstring), best first, with TI heights and errors.

    Fixed point a ← (σ̄_a²/P) tᵀ m(t a) from all starts at once (``opt.chains`` chains each,
    warm-started between iterations), stopped when every start moves less than 1e-3·(1 + |a|);
    end points closer than 0.05·(1 + |a|) (modulo sign for odd φ) are merged; a point with a
    Hessian eigenvalue ≥ 0 (within 3 MCSE) is not a maximum and is dropped."""
    opt = opt or GeneralBranchOptions()
    rng = rng or np.random.default_rng(opt.seed)
    nl = get_nonlinearity(spec.nonlinearity)
    K0 = spec.input_kernel() if K0 is None else K0
    L = _prior_factor(K0, spec.sigma_w) if L is None else L
    P = spec.P
    sb2 = spec.sigma_a**2 * P
    t = np.asarray(t, dtype=np.float64)
    A = _sign_starts(spec.m, nl.odd, np.sqrt(sb2), opt.search_starts, rng) if starts is None else \
        np.atleast_2d(np.asarray(starts, dtype=np.float64))
    sopt = GeneralBranchOptions(chains=max(opt.chains // 2, 16), groups=4, sweeps=10, keep=5,
                                nodes=opt.nodes, seed=opt.seed)
    state = None
    for it in range(opt.search_iters):  # fixed-point iterations (each one batched sampling)
        smp, state = _sample_tilts(L, spec.nonlinearity, A @ t.T, sopt, rng, 10 if it else 20, state=state)
        Anew = np.array([sb2 / P * (t.T @ s.mean()) for s in smp])
        done = np.max(np.linalg.norm(Anew - A, axis=1) / (1.0 + np.linalg.norm(A, axis=1))) < 1e-3
        A = Anew
        if done:
            break
    # merge
    reps = []
    for a in A:
        for r in reps:
            tol = 0.05 * (1.0 + np.linalg.norm(r))
            if np.linalg.norm(a - r) < tol or (nl.odd and np.linalg.norm(a + r) < tol):
                break
        else:
            reps.append(a)
    reps = np.array(reps)
    if nl.odd:  # representatives with the first non-zero entry positive
        for i, a in enumerate(reps):
            nz = np.flatnonzero(np.abs(a) > 1e-9)
            if nz.size and a[nz[0]] < 0:
                reps[i] = -a
    lam, lerr, smp, _ = thermodynamic_lambda(L, spec.nonlinearity, K0, spec.sigma_w, reps @ t.T, opt, rng,
                                             opt.sweeps)
    out = []
    for a, la, le, s in zip(reps, lam, lerr, smp):  # loop over the few maxima
        C = s.cov()
        Hs = -np.eye(spec.m) / sb2 + t.T @ C @ t / P
        ev = np.linalg.eigvalsh(Hs)
        grad = float(np.linalg.norm(-a / sb2 + t.T @ s.mean() / P))
        out.append(Maximum(a=a, value=float(-a @ a / (2 * sb2) + la / P), value_error=float(le / P),
                           hessian_eigenvalues=ev, gradient=grad))
    out = [mx for mx in out if mx.hessian_eigenvalues[-1] < 0.0]
    out.sort(key=lambda mx: -mx.value)
    return out


# ----------------------------------------------------------------------------- KKT system
class _System:
    """KKT residual and Jacobian of the branch equations on fixed per-branch samples.

    Unknowns x = (vec t (P·m, index μ·m + r), a_γ (n·m), P_γ (n), λ). Residual blocks:
    E1 = Σ P_γ m_γ a_γᵀ + T t − Y; E2_γ = tᵀm_γ/P − a_γ/σ̄_a² (= ∇_a S); E3_γ = S_γ − λ;
    E4 = Σ P_γ − 1. m_γ, C_γ, Λ_γ at g_γ = t a_γ come from the importance-weighted sample of
    branch γ (base tilt g⁰_γ, Λ_γ(g⁰_γ) by thermodynamic integration)."""

    def __init__(self, spec, samples, lam0):
        self.spec = spec
        self.P, self.m = spec.P, spec.m
        self.n = len(samples)
        self.sb2 = spec.sigma_a**2 * spec.P
        self.T = spec.temperature
        self.Y = spec.targets()
        self.samples = samples
        self.lam0 = np.asarray(lam0, dtype=np.float64)

    def pack(self, t, A, pi, lam):
        return np.concatenate([t.ravel(), A.ravel(), pi, [lam]])

    def unpack(self, x):
        P, m, n = self.P, self.m, self.n
        t = x[:P * m].reshape(P, m)
        A = x[P * m:P * m + n * m].reshape(n, m)
        pi = x[P * m + n * m:P * m + n * m + n]
        return t, A, pi, x[-1]

    def branch_stats(self, t, A, need_cov=True):
        """(m_γ (n × P), C_γ list, Λ_γ (n,), min ESS fraction)."""
        ms, Cs, lams, essf = [], [], [], 1.0
        for smp, a, l0 in zip(self.samples, A, self.lam0):  # loop over branches
            dl, w, ef = smp.reweight(t @ a)
            ms.append(smp.mean(w))
            Cs.append(smp.cov(w) if need_cov else None)
            lams.append(l0 + dl)
            essf = min(essf, ef)
        return np.array(ms), Cs, np.array(lams), essf

    def residual(self, x, stats=None):
        t, A, pi, lam = self.unpack(x)
        M, _, Lam, essf = stats if stats is not None else self.branch_stats(t, A, need_cov=False)
        E1 = np.einsum("g,gp,gr->pr", pi, M, A) + self.T * t - self.Y
        E2 = (M @ t) / self.P - A / self.sb2
        E3 = Lam / self.P - np.sum(A * A, axis=1) / (2 * self.sb2) - lam
        E4 = np.sum(pi) - 1.0
        return np.concatenate([E1.ravel(), E2.ravel(), E3, [E4]]), essf

    def jacobian(self, x, stats):
        P, m, n, sb2 = self.P, self.m, self.n, self.sb2
        t, A, pi, _ = self.unpack(x)
        M, Cs, _, _ = stats
        N1, N2 = P * m, n * m
        N = N1 + N2 + n + 1
        J = np.zeros((N, N))
        Im = np.eye(m)
        J1 = self.T * np.eye(N1)
        for g in range(n):  # loop over branches; each block is a dense product
            a, Mg, C = A[g], M[g], Cs[g]
            J1 += pi[g] * np.kron(C, np.outer(a, a))
            Ct = C @ t  # P × m
            # ∂E1_{μr}/∂a_s = π (m_μ δ_rs + a_r (C t)_{μs})
            blk = pi[g] * (np.einsum("p,rs->prs", Mg, Im) + np.einsum("r,ps->prs", a, Ct))
            J[:N1, N1 + g * m:N1 + (g + 1) * m] = blk.reshape(N1, m)
            J[:N1, N1 + N2 + g] = np.outer(Mg, a).ravel()
            # E2_γ = tᵀm/P − a/σ̄²: ∂/∂t_{νs} = (δ_rs m_ν + (tᵀC)_{rν} a_s)/P
            d2t = (np.einsum("rs,v->rvs", Im, Mg) + np.einsum("rv,s->rvs", Ct.T, a)) / P
            J[N1 + g * m:N1 + (g + 1) * m, :N1] = d2t.reshape(m, N1)
            J[N1 + g * m:N1 + (g + 1) * m, N1 + g * m:N1 + (g + 1) * m] = t.T @ Ct / P - Im / sb2
            # E3_γ = Λ/P − |a|²/2σ̄² − λ
            J[N1 + N2 + g, :N1] = np.outer(Mg, a).ravel() / P
            J[N1 + N2 + g, N1 + g * m:N1 + (g + 1) * m] = t.T @ Mg / P - a / sb2
            J[N1 + N2 + g, -1] = -1.0
        J[:N1, :N1] = J1
        J[-1, N1 + N2:N1 + N2 + n] = 1.0
        return J

    def merit(self, R):
        P, m, n = self.P, self.m, self.n
        N1, N2 = P * m, n * m
        return float(np.mean(R[:N1] ** 2) + np.mean((self.sb2 * R[N1:N1 + N2]) ** 2)
                     + np.mean(R[N1 + N2:] ** 2))


# ----------------------------------------------------------------------------- solution
@dataclass
class GeneralBranch:
    """One branch: readout a_γ (mirror orbit {±a_γ} for odd φ), occupation P_γ, S(a_γ) ± error."""

    a: np.ndarray
    occupation: float
    value: float
    value_error: float
    mirror: bool
    code: str  # sign pattern of a (odd φ) or 1/0 pattern of a_r > 0 (non-negative φ)

    def to_json(self) -> dict:
        return {"a": self.a.tolist(), "occupation": self.occupation, "S": self.value, "S_error": self.value_error,
                "mirror": self.mirror, "code": self.code}


@dataclass
class GeneralBranchSolution:
    """Large-P branch solution on general inputs (module docstring); errors are MCSE."""

    spec: ModelSpec
    t: np.ndarray  # (P, m)
    branches: list
    outputs: np.ndarray  # f = Σ P_γ m_γ a_γᵀ (P, m)
    outputs_error: np.ndarray  # MCSE ⊕ |residual| per entry
    readout_moment: np.ndarray  # U (m, m)
    kernel: np.ndarray  # Σ P_γ E[φφᵀ] (P, P)
    residual: float  # max |f + T t − Y|
    residual_error: float  # MCSE of that entry
    z_rms: float
    stationarity: float  # max_γ |∇_a S(a_γ)|·σ̄_a²
    height_spread: float  # max_γ S_γ − min_γ S_γ
    height_error: float
    converged: bool
    rounds: int
    time_seconds: float
    message: str = ""
    log: list = field(default_factory=list)
    _samples: list | None = field(default=None, repr=False)
    _linear_U: np.ndarray | None = field(default=None, repr=False)

    @property
    def P(self) -> int:
        return self.spec.P

    @property
    def occupations(self) -> np.ndarray:
        return np.array([b.occupation for b in self.branches])

    @property
    def readouts(self) -> np.ndarray:
        return np.array([b.a for b in self.branches])

    @property
    def codes(self) -> list:
        return [b.code for b in self.branches]

    def class_outputs(self) -> np.ndarray:
        return class_averages(self.spec, self.outputs)

    def class_outputs_error(self) -> np.ndarray:
        """Error of the class averages, independent per-entry errors: sqrt(mean of e²/n_c)."""
        sizes = np.asarray(self.spec.class_sizes)[:, None]
        return np.sqrt(class_averages(self.spec, self.outputs_error ** 2) / sizes)

    def predict(self, test_inputs: np.ndarray, test_kernel: bool = False, neurons: int = 0,
                max_kernel_inputs: int = 400, seed: int = 0) -> TestPrediction:
        """f(x*) = Σ_γ P_γ a_γ E_{h|a_γ}[E[φ(h*)|h]] with MCSE over chain groups; optionally the
        test kernel Σ_γ P_γ E[φ(h*)φ(h*')] and ``neurons`` sampled neurons (branch drawn with P_γ,
        its sign at random for odd φ, readout a_γ, h from the branch sample, h* | h drawn)."""
        spec = self.spec
        X = np.asarray(test_inputs, dtype=np.float64)
        K0, ks, kss = input_kernels(spec.inputs, X)
        A, v = test_conditional(K0, ks, kss, spec.sigma_w)
        phi = get_nonlinearity(spec.nonlinearity)
        rng = np.random.default_rng(seed)
        n_star, m = X.shape[0], spec.m
        if self._linear_U is not None:  # one Gaussian branch: f(x*) = σ_1² k*ᵀ t U, exact
            mean = spec.sigma_w**2 * ks @ self.t @ self._linear_U
            out = TestPrediction(mean=mean, mean_error=np.zeros_like(mean),
                                 cross_kernel=spec.sigma_w**2 * ks + spec.sigma_w**4 * ks @ self.t @ self._linear_U
                                 @ self.t.T @ K0)
            if test_kernel:
                Kss = spec.sigma_w**2 * X @ X.T / X.shape[1]
                ksT = spec.sigma_w**2 * ks @ self.t
                out.test_kernel = Kss + ksT @ self._linear_U @ ksT.T
                out.test_kernel_error = np.zeros_like(out.test_kernel)
            return out
        G = self._samples[0].groups
        means = np.zeros((G, n_star, m))
        cross = np.zeros((n_star, spec.P))
        qerr = 0.0
        for b, smp in zip(self.branches, self._samples):  # loop over branches
            Hg = smp.H.reshape(G, -1, spec.P)
            gs, e = gaussian_phi_mean(spec.nonlinearity, smp.H @ A.T, v[None, :])
            qerr = max(qerr, e)
            gmean = gs.reshape(G, -1, n_star).mean(axis=1)  # G × n*
            means += b.occupation * gmean[:, :, None] * b.a[None, None, :]
            cross += b.occupation * gs.T @ smp.Phi / Hg.shape[0] / G
        out = TestPrediction(mean=means.mean(axis=0), mean_error=_group_mcse(means), cross_kernel=cross,
                             quadrature_error=qerr)
        if test_kernel:
            idx = np.arange(n_star) if n_star <= max_kernel_inputs else \
                np.linspace(0, n_star - 1, max_kernel_inputs).astype(int)
            Kstar = spec.sigma_w**2 * (X[idx] @ X[idx].T / X.shape[1]) - spec.sigma_w**2 * (A[idx] @ K0 @ A[idx].T)
            lam, Q = np.linalg.eigh(0.5 * (Kstar + Kstar.T))
            Lc = Q * np.sqrt(np.maximum(lam, 0.0))
            kg = np.zeros((G, len(idx), len(idx)))
            for b, smp in zip(self.branches, self._samples):  # loop over branches
                hstar = smp.H @ A[idx].T + rng.standard_normal((smp.H.shape[0], len(idx))) @ Lc.T
                Ps = phi(hstar).reshape(G, -1, len(idx))
                kg += b.occupation * np.einsum("gsi,gsj->gij", Ps, Ps) / Ps.shape[1]
            out.test_kernel, out.test_kernel_error = kg.mean(axis=0), _group_mcse(kg)
        if neurons:
            occ = np.maximum(self.occupations, 0.0)
            pick = rng.choice(len(self.branches), size=neurons, p=occ / occ.sum())
            acts, reads = [], []
            for g in range(len(self.branches)):  # loop over branches
                k = int(np.sum(pick == g))
                if k == 0:
                    continue
                smp = self._samples[g]
                rows = rng.choice(smp.H.shape[0], size=k, replace=k > smp.H.shape[0])
                Hs = smp.H[rows]
                sign = rng.choice([-1.0, 1.0], size=k) if self.branches[g].mirror else np.ones(k)
                Hs = sign[:, None] * Hs  # mirror image: h → −h with a → −a (odd φ)
                hstar = Hs @ A.T + np.sqrt(v)[None, :] * rng.standard_normal((k, n_star))
                acts.append(phi(hstar))
                reads.append(sign[:, None] * self.branches[g].a[None, :])
            out.activations, out.readouts = np.concatenate(acts), np.concatenate(reads)
        return out

    def to_json(self) -> dict:
        return {"theory": "branches", "converged": bool(self.converged), "message": self.message,
                "residual": self.residual, "residual_error": self.residual_error, "z_rms": self.z_rms,
                "stationarity": self.stationarity, "height_spread": self.height_spread,
                "height_error": self.height_error, "rounds": self.rounds, "time_seconds": self.time_seconds,
                "branches": [b.to_json() for b in self.branches],
                "readout_moment": self.readout_moment.tolist(), "class_outputs": self.class_outputs().tolist(),
                "outputs_error_max": float(np.max(self.outputs_error)) if self.outputs_error.size else 0.0}


def _code(a: np.ndarray, odd: bool) -> str:
    if odd:
        return "".join("+" if x > 1e-3 else ("-" if x < -1e-3 else "0") for x in a)
    return "-".join("1" if x > 1e-3 else "0" for x in a)


# ----------------------------------------------------------------------------- linear φ
def linear_branch_form(spec: ModelSpec) -> GeneralBranchSolution:
    """Linear φ: the single Gaussian branch (module docstring), without sampling.

    Maximises the concave dual d(U) = −½ vec(Y)ᵀ(T I + σ_1² U⊗K0)⁻¹vec(Y) − (P/2σ̄_a²) tr U over
    U = RRᵀ ⪰ 0 (L-BFGS on R; ∇_U d = ½σ_1² tᵀK0t − (P/2σ̄_a²) I). Then t solves
    (T + σ_1² K0 t U) = Y column-wise in the eigenbases, f = σ_1² K0 t U, kernel
    K = σ_1² K0 + σ_1⁴ K0 t U tᵀ K0. The reported ``stationarity`` is the complementary-slackness
    residual ‖U(I − σ̄_a²σ_1² tᵀK0t/P)‖ and ``height_spread`` the domain excess
    max(0, λ_max(σ̄_a²σ_1² tᵀK0t/P) − 1)."""
    start = time.perf_counter()
    K0 = spec.input_kernel()
    Y, T, P, m = spec.targets(), spec.temperature, spec.P, spec.m
    s2, sb2 = spec.sigma_w**2, spec.sigma_a**2 * spec.P
    kap, Q = np.linalg.eigh(K0)
    kap = np.maximum(kap, 0.0)
    Yt = Q.T @ Y
    tri = np.tril_indices(m)

    def t_of(U):
        u, V = np.linalg.eigh(U)
        u = np.maximum(u, 0.0)
        den = T + s2 * np.outer(kap, u)  # P × m
        with np.errstate(divide="ignore", invalid="ignore"):
            X = np.where(den > 0, (Yt @ V) / np.where(den > 0, den, 1.0), 0.0)
        return Q @ X @ V.T, den, V

    def neg_dual(r):
        R = np.zeros((m, m))
        R[tri] = r
        U = R @ R.T
        t, den, V = t_of(U)
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.where(den > 0, ((Yt @ V) ** 2) / np.where(den > 0, den, 1.0), 0.0)
        d = -0.5 * q.sum() - P / (2 * sb2) * np.trace(U)
        gU = 0.5 * s2 * t.T @ K0 @ t - P / (2 * sb2) * np.eye(m)
        gR = 2.0 * gU @ R
        return -d, -gR[tri]

    if T == 0.0:
        raise SpecError("linear branch form needs temperature > 0 (at T = 0 use solvers.data.linear.solve_linear)")
    best = None
    for scale in (1e-2, 1.0, 10.0):  # a few starts of the (benign) Burer–Monteiro factorisation
        r0 = np.zeros(len(tri[0]))
        r0[[i for i, (a, b) in enumerate(zip(*tri)) if a == b]] = np.sqrt(scale)
        res = minimize(neg_dual, r0, jac=True, method="L-BFGS-B", options={"maxiter": 5000, "gtol": 1e-12,
                                                                           "ftol": 1e-15})
        if best is None or res.fun < best.fun:
            best = res
    R = np.zeros((m, m))
    R[tri] = best.x
    U = R @ R.T
    t = t_of(U)[0]
    f = s2 * K0 @ t @ U
    Mq = sb2 * s2 * t.T @ K0 @ t / P
    slack = float(np.max(np.abs(U @ (np.eye(m) - Mq))))
    excess = max(0.0, float(np.linalg.eigvalsh(Mq)[-1]) - 1.0)
    res = float(np.max(np.abs(f + T * t - Y)))
    ok = res < 1e-6 and slack < 1e-6 and excess < 1e-6
    branch = GeneralBranch(a=np.zeros(m), occupation=1.0, value=0.0, value_error=0.0, mirror=False,
                           code="gaussian")
    return GeneralBranchSolution(
        spec=spec, t=t, branches=[branch], outputs=f, outputs_error=np.zeros_like(f), readout_moment=U,
        kernel=s2 * K0 + s2**2 * K0 @ t @ U @ t.T @ K0, residual=res, residual_error=0.0, z_rms=0.0,
        stationarity=slack, height_spread=excess, height_error=0.0, converged=ok, rounds=int(best.nit),
        time_seconds=time.perf_counter() - start, _linear_U=U,
        message=("linear φ: one Gaussian branch a = 0 with readout covariance U (closed form, dual L-BFGS); "
                 f"max|f + Tt − Y| = {res:.1e}, slackness {slack:.1e}, domain excess {excess:.1e}"))


# ----------------------------------------------------------------------------- driver
def _check_spec(spec):
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec must be a ModelSpec (got {type(spec).__name__})")
    if spec.inputs is None:
        raise SpecError("solve_general_branches needs explicit inputs (spec.inputs); for orthogonal data use "
                        "solvers.large_p.solve.solve_large_p")
    nl = get_nonlinearity(spec.nonlinearity)
    if nl.linear_growth and nl.name != "linear":
        raise SpecError(f"large-P branch form for ReLU on general data not implemented (nonlinearity "
                        f"{spec.nonlinearity!r} grows linearly: its condensate, THEORY §4, is not handled here); "
                        "use a bounded φ (erf, normcdf, tanh), linear, or solvers.data.solve.solve_general")
    if spec.temperature <= 0.0:
        raise SpecError(f"temperature must be > 0 for the branch solver (got {spec.temperature})")
    return nl


def _template_field(spec):
    """t_μ = t∞_{c(μ)} of the orthogonal-data large-P solution (same ρ_c, σ_1, σ̄_a, T); τ₀Y with
    τ₀ = min(1/T, 3) if that solve does not converge."""
    from solvers.large_p.solve import solve_large_p
    from solvers.large_p.problem import LargePProblem

    Y = spec.targets()
    prob = LargePProblem(nonlinearity=spec.nonlinearity, sigma_w=spec.sigma_w,
                         sigma_a_bar=spec.sigma_a * np.sqrt(spec.P), temperature=spec.temperature,
                         class_fractions=tuple(spec.class_fractions))
    ref = solve_large_p(prob)
    if not ref.converged:
        return min(1.0 / spec.temperature, 3.0) * Y
    return Y @ ref.t


def _initial(spec, opt, rng, L, K0, t0, progress):
    """Start: field t0 (default: the orthogonal-data large-P field t_c of the same class fractions,
    σ_1, σ̄_a and T, :func:`solvers.large_p.solve.solve_large_p`, copied to every input of class c, which is
    exact for K0 = I), its maxima, occupations by NNLS on the f-equation (the minimum-norm
    subgradient of G∞ over the simplex)."""
    Y, T = spec.targets(), spec.temperature
    if t0 is None:
        t = _template_field(spec)
    else:
        t = np.array(t0, dtype=np.float64)
        if t.shape != Y.shape or not np.all(np.isfinite(t)):
            raise SpecError(f"initial_field must be a finite array of shape (P, m) = {Y.shape} (got {t.shape})")
    mx = find_maxima(spec, t, opt, rng=rng, L=L, K0=K0)
    if not mx:
        raise RuntimeError("solve_general_branches: the branch search found no local maximum of S at the start")
    A = np.array([x.a for x in mx])
    lam, _, smp, _ = thermodynamic_lambda(L, spec.nonlinearity, K0, spec.sigma_w, A @ t.T, opt, rng, opt.sweeps)
    # NNLS on the f-equation with Σπ = 1 enforced by a heavy row
    cols = np.array([np.outer(s.mean(), a).ravel() for s, a in zip(smp, A)]).T
    w = 10.0 * np.sqrt(cols.shape[0])
    Aeq = np.vstack([cols, w * np.ones(len(A))])
    beq = np.concatenate([(Y - T * t).ravel(), [w]])
    pi = nnls(Aeq, beq)[0]
    start_info = {"start_maxima": [(np.round(x.a, 3).tolist(), round(x.value, 5)) for x in mx],
                  "occupations": np.round(pi, 4).tolist()}
    keep = pi > 1e-3
    if not keep.any():
        keep[0] = True
        pi[0] = 1.0
    return t, A[keep], pi[keep] / pi[keep].sum(), start_info


def solve_general_branches(spec: ModelSpec, options: GeneralBranchOptions | None = None, progress=None,
                           initial_field: np.ndarray | None = None) -> GeneralBranchSolution:
    """Large-P branch solution on the inputs of ``spec`` (σ̄_a = σ_a√P; module docstring).

    ``progress(round, info)`` is called after every round (info has "samples", "residual", "mcse",
    "z_rms", so :func:`solvers.data.solve.progress_printer` works). ``initial_field`` (P × m)
    replaces the template start. Raises :class:`SpecError` for ReLU-type
    φ, T = 0 and missing inputs; non-convergence is reported in ``converged``/``message``."""
    nl = _check_spec(spec)
    opt = options or GeneralBranchOptions()
    if nl.name == "linear":
        return linear_branch_form(spec)
    start = time.perf_counter()
    rng = np.random.default_rng(opt.seed)
    K0 = spec.input_kernel()
    L = _prior_factor(K0, spec.sigma_w)
    P, T, Y = spec.P, spec.temperature, spec.targets()
    sb2 = spec.sigma_a**2 * P
    t, A, pi, start_info = _initial(spec, opt, rng, L, K0, initial_field, progress)
    lam_mult = 0.0
    sweeps = opt.sweeps
    log, converged, message = [start_info], False, ""
    state = None
    added = 0
    for rnd in range(1, opt.max_rounds + 1):
        n = len(A)
        lam0, lerr, smp, state = thermodynamic_lambda(L, spec.nonlinearity, K0, spec.sigma_w, A @ t.T, opt, rng,
                                                      sweeps, state=state if state and
                                                      state[0].shape[0] == opt.nodes * n * opt.chains else None)
        sys_ = _System(spec, smp, lam0)
        sampled = (t.copy(), A.copy(), pi.copy())  # the point the reported observables belong to
        # residuals at the sampled point, with group MCSE
        Mg = np.array([s.group_means() for s in smp])  # n × G × P
        Fg = np.einsum("g,gkp,gr->kpr", pi, Mg, A)  # G × P × m
        r = Fg.mean(axis=0) + T * t - Y
        se = _group_mcse(Fg)
        z_rms = float(np.sqrt(np.mean((r / np.maximum(se, 1e-300)) ** 2)))
        grad_g = np.einsum("gkp,pr->gkr", Mg, t) / P - A[:, None, :] / sb2  # n × G × m
        grad, grad_se = grad_g.mean(axis=1), _group_mcse(grad_g.transpose(1, 0, 2))
        S = lam0 / P - np.sum(A * A, axis=1) / (2 * sb2)
        S_err = lerr / P
        spread = float(S.max() - S.min())
        spread_err = float(np.sqrt(np.sort(S_err)[-2:] @ np.sort(S_err)[-2:])) if n > 1 else 0.0
        stat_ok = bool(np.all(np.abs(grad) <= 3 * grad_se + 1e-3 / sb2 * (1 + np.abs(A))))
        height_ok = spread <= 3 * spread_err + 1e-6
        info = {"round": rnd, "branches": n, "sweeps": sweeps, "samples": int(n * opt.chains * opt.keep),
                "residual": float(np.max(np.abs(r))),
                "mcse": float(np.max(se)), "z_rms": z_rms, "grad": float(np.max(np.abs(grad)) * sb2),
                "height_spread": spread, "height_error": spread_err, "occupations": np.round(pi, 4).tolist(),
                "a": np.round(A, 3).tolist()}
        if z_rms <= opt.z_tol and float(np.max(se)) <= opt.f_tol and stat_ok and height_ok:
            # final check: no maximum of S above the occupied branches
            mx = find_maxima(spec, t, opt, rng=rng, L=L, K0=K0)
            higher = [x for x in mx if x.value > S.max() + 3 * np.hypot(x.value_error, S_err.max()) + 1e-6
                      and not any(np.linalg.norm(x.a - a) < 0.05 * (1 + np.linalg.norm(a))
                                  or (nl.odd and np.linalg.norm(x.a + a) < 0.05 * (1 + np.linalg.norm(a)))
                                  for a in A)]
            if not higher or added >= 4:
                converged = True
                message = "" if not higher else "a higher maximum of S remains after 4 additions"
                info["check_maxima"] = len(mx)
                log.append(info)
                if progress:
                    progress(rnd, info)
                break
            A = np.vstack([A, higher[0].a])
            pi = np.concatenate([pi, [0.0]])
            added += 1
            sweeps = opt.sweeps  # far from the solution again: short rounds until the residual is small
            info["added"] = np.round(higher[0].a, 3).tolist()
            log.append(info)
            if progress:
                progress(rnd, info)
            state = None
            continue
        if z_rms <= 4 * opt.z_tol:
            sweeps = min(2 * sweeps, opt.max_sweeps)
        # Newton on the surrogate KKT system (fixed samples)
        lam_mult = float(np.mean(S)) if rnd == 1 else lam_mult
        x = sys_.pack(t, A, pi, lam_mult)
        stats = sys_.branch_stats(t, A)
        R, _ = sys_.residual(x, stats)
        val = sys_.merit(R)
        steps, alpha, limit = 0, 0.0, ""
        for _ in range(opt.max_newton):
            J = sys_.jacobian(x, stats)
            try:
                dx = np.linalg.solve(J, -R)
            except np.linalg.LinAlgError:
                dx = np.linalg.lstsq(J, -R, rcond=1e-12)[0]
            if not np.all(np.isfinite(dx)):
                dx = np.linalg.lstsq(J, -R, rcond=1e-12)[0]
            alpha, ok = 1.0, False
            for _ in range(20):
                xn = x + alpha * dx
                tn, An, _, _ = sys_.unpack(xn)
                st = sys_.branch_stats(tn, An)
                Rn, essf = sys_.residual(xn, st)
                if essf < opt.min_ess_fraction:
                    limit = "ess"
                elif sys_.merit(Rn) > (1 - 1e-4 * alpha) * val:
                    limit = "merit"
                else:
                    ok = True
                    break
                alpha *= 0.5
            if not ok:
                break
            x, stats, R, val = xn, st, Rn, sys_.merit(Rn)
            steps += 1
            if alpha < 1.0:
                break
        t, A, pi, lam_mult = sys_.unpack(x)
        t, A, pi = t.copy(), A.copy(), pi.copy()
        info.update(newton_steps=steps, alpha=alpha, limited_by=limit)
        if np.any(pi < 0):
            # a branch strictly above all others (by 3 errors) must stay occupied: clip it; any other
            # branch with P_γ < 0 is dropped (complementarity: P_γ = 0 where S_γ may lie below λ)
            Sn = sys_.branch_stats(t, A, need_cov=False)[2] / P - np.sum(A * A, axis=1) / (2 * sb2)
            second = np.array([np.max(np.delete(Sn, i)) if len(Sn) > 1 else -np.inf for i in range(len(Sn))])
            top = Sn > second + 3 * float(np.max(S_err))
            cand = np.flatnonzero((pi < 0) & ~top)
            if cand.size == 0:
                pi = np.maximum(pi, 0.0)
                pi = pi / pi.sum()
        if np.any(pi < 0):
            drop = int(cand[np.argmin(pi[cand])])
            info["dropped"] = np.round(A[drop], 3).tolist()
            keep = np.arange(len(A)) != drop
            A, pi = A[keep], np.maximum(pi[keep], 0.0)
            pi = pi / pi.sum()
            state = None
        log.append(info)
        if progress:
            progress(rnd, info)
    else:
        message = (f"no convergence in {opt.max_rounds} rounds: rms residual/MCSE {z_rms:.2f} (tolerance "
                   f"{opt.z_tol}), max MCSE {float(np.max(se)):.2g} (target {opt.f_tol}), stationarity "
                   f"{'ok' if stat_ok else 'not met'}, height spread {spread:.2g} ± {spread_err:.1g}")
    # observables at the last sampled point
    t, A, pi = sampled
    G = opt.groups
    Kg = np.zeros((G, P, P))
    for p_, s in zip(pi, smp):  # loop over branches
        Pg = s.Phi.reshape(G, -1, P)
        Kg += p_ * np.einsum("gsi,gsj->gij", Pg, Pg) / Pg.shape[1]
    odd = nl.odd
    branches = [GeneralBranch(a=a.copy(), occupation=float(p_), value=float(sv), value_error=float(se_),
                              mirror=bool(odd and np.linalg.norm(a) > 1e-9), code=_code(a, odd))
                for a, p_, sv, se_ in zip(A, pi, S, S_err)]
    imax = np.unravel_index(np.argmax(np.abs(r)), r.shape)
    return GeneralBranchSolution(
        spec=spec, t=t, branches=branches, outputs=Fg.mean(axis=0), outputs_error=np.sqrt(se**2 + r**2),
        readout_moment=np.einsum("g,gr,gs->rs", pi, A, A), kernel=Kg.mean(axis=0), residual=float(abs(r[imax])),
        residual_error=float(se[imax]), z_rms=z_rms, stationarity=float(np.max(np.abs(grad)) * sb2),
        height_spread=spread, height_error=spread_err, converged=converged, rounds=len(log) - 1,
        time_seconds=time.perf_counter() - start, log=log,
        message=message or f"converged: {len(A)} branches, rms residual/MCSE {z_rms:.2f} <= {opt.z_tol}",
        _samples=smp)
