"""Tempered sequential Monte Carlo for the single-neuron measure of the general-input theory.

Target (THEORY §2, readout integrated out as in :mod:`solvers.data.solve`): in whitened
coordinates h = L z (L Lᵀ = σ_1² K0),

    p_{t,β}(z) ∝ N(z; 0, I) exp(β ℓ_t(Lz)),   ℓ_t(h) = (σ_a²/2) ||tᵀφ(h)||²,   0 ≤ β ≤ 1.

β = 0 is the Gaussian prior, sampled exactly; β = 1 is p_t. Tempered SMC (Del Moral, Doucet &
Jasra 2006; adaptive steps: Jasra et al. 2011, Zhou, Johansen & Aston 2016) moves a particle
cloud along this path:

1. choose Δβ per group by bisection so that the effective sample size of the incremental
   weights w_i = exp(Δβ ℓ_i) is ``cess`` × n (the weights are uniform before each step, so this
   is the conditional ESS);
2. log-evidence increment log mean_i w_i (so Σ of them estimates Φ_β(t) = log E_prior e^{βℓ_t},
   unbiased in exp);
3. systematic resampling within the group (Carpenter, Clifford & Fearnhead 1999);
4. ``moves`` generalised elliptical slice sampling updates at the new β (Murray, Adams & MacKay
   2010; Nishihara, Murray & Adams 2014), which leave p_{t,β} invariant. The ellipses are drawn
   around a Gaussian reference N(μ_g, S_g) fitted to group g's resampled cloud (mean and covariance
   shrunk by 5% toward the prior; the kernel then depends on the previous population only, as in
   adaptive SMC), because p_{t,β} moves far from the prior for large tilts (measured on digits:
   ``docs/devlog.md``), where prior-centred ellipses take tiny steps.

Because every mode of p_t is reached from the prior, which covers all of them, the final cloud
holds the modes with their correct relative weights (as n → ∞), unlike a local chain started in
one of them. ``groups`` independent clouds are run side by side (vectorised); between-group
spread of any estimator is its Monte Carlo standard error, with no autocorrelation model.

Radial form (φ = α₊h₊ + α₋h₋, ``radial``): with z = ρu the radius integrates out,
p_{t,β}(u) ∝ (1 − β q_t(u))^{−d/2} on the sphere and ρ²(1 − β q_t(u)) | u ~ χ²_d
(d = dim z, q_t(u) = σ_a² ||tᵀφ(Lu)||²). The incremental weights are then the Rao–Blackwellised
ratios ((1 − β q)/(1 − β' q))^{d/2} and each step redraws the radius exactly from its conditional
(a Gibbs move), so the weights carry no radial noise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from theory.spec import SpecError

from solvers.data.elliptical_slice import elliptical_slice_update, fit_gaussian_references
from solvers.data.estimators import group_mcse

__all__ = ["SMCResult", "smc_sample", "systematic_resample", "next_increment", "tempered_log_weights"]


@dataclass
class SMCResult:
    """Output of :func:`smc_sample`.

    Z: stored states (keep, groups·n, r), groups contiguous along axis 1; log_evidence: per-group
    estimate of Φ(t) = log E_prior e^{ℓ_t} (groups,); betas: the β schedule of group 0; steps: β
    steps per group; min_ess: smallest incremental ESS fraction seen; unique: fraction of distinct
    ancestors after the last resampling (mean over groups); evaluations: ℓ evaluations per particle.
    """

    Z: np.ndarray
    log_evidence: np.ndarray
    betas: np.ndarray
    steps: np.ndarray
    min_ess: float
    unique: float
    evaluations: float

    @property
    def log_evidence_mcse(self) -> float:
        """MCSE of the mean log-evidence over groups."""
        return float(group_mcse(self.log_evidence))

    def diagnostics(self) -> dict:
        return {"smc_steps": int(self.steps.max()), "log_evidence_sd": float(self.log_evidence.std(ddof=1)),
                "min_ess": self.min_ess, "unique": self.unique, "evaluations": self.evaluations}


def tempered_log_weights(stat: np.ndarray, beta: np.ndarray, dbeta: np.ndarray, radial: bool, d: int) -> np.ndarray:
    """Log incremental weights of the step β → β + Δβ (groups × n).

    Plain form: stat = ℓ_t and log w = Δβ ℓ_t. Radial form: stat = q_t(u) and
    log w = (d/2) [log(1 − β q) − log(1 − (β + Δβ) q)] (−∞ weight is never produced inside the
    domain β q < 1; +∞ marks a particle outside it)."""
    b, db = beta[:, None], dbeta[:, None]
    if not radial:
        return db * stat
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = np.log1p(-np.minimum(b * stat, 1.0))
        hi = np.log1p(-np.minimum((b + db) * stat, 1.0))
        return np.where((b + db) * stat < 1.0, 0.5 * d * (lo - hi), np.inf)


def _ess_fraction(lw: np.ndarray) -> np.ndarray:
    """ESS/n of log weights per row: (Σw)² / (n Σw²)."""
    mx = np.max(lw, axis=1, keepdims=True)
    w = np.exp(lw - np.where(np.isfinite(mx), mx, 0.0))
    s1, s2 = w.sum(axis=1), (w * w).sum(axis=1)
    with np.errstate(invalid="ignore"):
        out = s1 * s1 / (lw.shape[1] * s2)
    return np.where(np.isfinite(out), out, 0.0)


def next_increment(stat: np.ndarray, beta: np.ndarray, target: float, radial: bool = False, d: int = 1,
                   iters: int = 60) -> np.ndarray:
    """Δβ ∈ (0, 1 − β] per group with incremental ESS fraction ≈ ``target`` (bisection; the whole
    remainder if it already keeps the ESS above the target)."""
    rem = 1.0 - beta
    full = _ess_fraction(tempered_log_weights(stat, beta, rem, radial, d)) >= target
    lo, hi = np.zeros_like(beta), rem.copy()
    for _ in range(iters):  # vectorised over groups
        mid = 0.5 * (lo + hi)
        ok = _ess_fraction(tempered_log_weights(stat, beta, mid, radial, d)) >= target
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    step = np.where(full, rem, np.maximum(lo, 1e-12 * np.maximum(rem, 1e-300)))
    return np.where(rem > 0, np.minimum(step, rem), 0.0)


def systematic_resample(lw: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Systematic resampling per row of log weights ``lw`` (groups × n); returns ancestor indices
    (groups × n) into each row."""
    G, n = lw.shape
    mx = np.max(lw, axis=1, keepdims=True)
    w = np.exp(lw - mx)
    c = np.cumsum(w, axis=1)
    c /= c[:, -1:]
    u = (rng.random((G, 1)) + np.arange(n)[None, :]) / n
    idx = np.empty((G, n), dtype=np.int64)
    for g in range(G):  # loop over the few groups; searchsorted is vectorised over particles
        idx[g] = np.searchsorted(c[g], u[g], side="left")
    return np.minimum(idx, n - 1)


def _fit_references(Z: np.ndarray, groups: int, shrink: float = 0.05):
    """Per-group Gaussian reference of the particles (groups contiguous): μ (G × r), Cholesky-type
    factor C (G × r × r) of S and S⁻¹ − I (:func:`solvers.data.elliptical_slice.fit_gaussian_references`)."""
    return fit_gaussian_references(Z.reshape(groups, -1, Z.shape[1]), shrink)[:3]


def _log_ratio(chains, t, beta_rows, ref, gi, X, rows):
    """log of target/reference, β ℓ_t(Lx) − |x|²/2 − log N(x; μ_g, S_g) + const, for rows ``rows``."""
    chains.evaluations += X.shape[0]
    if ref is None:  # prior reference: the Gaussian factors cancel
        return beta_rows[rows] * chains.loglik(X @ chains.L.T, t)
    mu, _, Dprec = ref
    g = gi[rows]
    D = X - mu[g]
    quad = np.empty(len(rows))
    cuts = np.searchsorted(g, np.arange(mu.shape[0] + 1))  # rows are sorted, groups contiguous
    for k in range(mu.shape[0]):  # loop over the few groups; each is one matrix product
        a, b = cuts[k], cuts[k + 1]
        if b > a:
            quad[a:b] = np.einsum("ij,ij->i", D[a:b] @ Dprec[k], D[a:b])
    return (beta_rows[rows] * chains.loglik(X @ chains.L.T, t) - 0.5 * np.einsum("ij,ij->i", X, X)
            + 0.5 * np.einsum("ij,ij->i", D, D) + 0.5 * quad)


def _grouped_ess_step(chains, t, beta_rows, groups, ref, ll):
    """One generalised elliptical slice update of every particle (rows grouped contiguously),
    target N(z; 0, I) e^{β ℓ_t(Lz)}, reference N(μ_g, S_g) of its group; ``ll`` is the current
    log(target/reference). Returns (Z, ll). Shrinkage loop vectorised over still-active particles."""
    rng, Z = chains.rng, chains.Z
    C, r = Z.shape
    n = C // groups
    gi = np.repeat(np.arange(groups), n)
    if ref is None:
        mu, nu = np.zeros((groups, r)), rng.standard_normal((C, r))
    else:
        mu, Cf, _ = ref
        nu = np.einsum("gij,gnj->gni", Cf, rng.standard_normal((groups, n, r))).reshape(C, r)
    if ll is None:
        ll = _log_ratio(chains, t, beta_rows, ref, gi, Z, np.arange(C))

    newZ, newll, _ = elliptical_slice_update(rng, Z, ll, mu[gi], nu,
                                             lambda prop, rows: _log_ratio(chains, t, beta_rows, ref, gi, prop, rows))
    if not np.all(np.isfinite(newll)):
        raise FloatingPointError("tempered SMC: non-finite log likelihood (outside the domain)")
    return newZ, newll


def smc_sample(chains, t: np.ndarray, groups: int, cess: float = 0.5, moves: int = 2, keep: int = 4,
               radial: bool = False, max_steps: int = 2000, adapt_reference: bool = True) -> SMCResult:
    """Run ``groups`` independent tempered SMC clouds from the prior (β = 0) to p_t (β = 1).

    ``chains`` is an :class:`solvers.data.solve.EllipticalSliceChains` whose ``Z`` (groups·n × r)
    holds the particles; its reference must be the prior (μ = 0, S = I), which it is reset to.
    After β = 1, ``keep`` further slice moves are stored. Returns :class:`SMCResult`.
    """
    if not 0.0 < cess < 1.0:
        raise SpecError(f"cess must be in (0, 1) (got {cess!r})")
    if moves < 1 or keep < 1:
        raise SpecError(f"moves and keep must be >= 1 (got {moves}, {keep})")
    C, r = chains.Z.shape
    if C % groups:
        raise SpecError(f"particles ({C}) must be a multiple of groups ({groups})")
    n = C // groups
    rng, L = chains.rng, chains.L
    chains.Z = rng.standard_normal((C, r))  # exact draws from the prior
    chains.reset_reference()
    beta = np.zeros(groups)
    ev0 = chains.evaluations

    def stat_of(Z):
        if radial:
            U = Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-300)
            B = chains.phi(U @ L.T) @ t
            return chains.sa2 * np.einsum("ij,ij->i", B, B)
        return chains.loglik(Z @ L.T, t)

    stat = stat_of(chains.Z).reshape(groups, n)
    log_ev = np.zeros(groups)
    steps = np.zeros(groups, dtype=np.int64)
    sched, min_ess, unique = [0.0], 1.0, 1.0
    for _ in range(max_steps):
        if np.all(beta >= 1.0):
            break
        db = next_increment(stat, beta, cess, radial, r)
        lw = tempered_log_weights(stat, beta, db, radial, r)
        if not np.all(np.isfinite(lw)):
            raise FloatingPointError("tempered SMC: a particle lies outside the domain β q_t(u) < 1")
        mx = lw.max(axis=1)
        log_ev += mx + np.log(np.mean(np.exp(lw - mx[:, None]), axis=1))
        min_ess = min(min_ess, float(_ess_fraction(lw).min()))
        idx = systematic_resample(lw, rng)
        unique = float(np.mean([np.unique(i).size for i in idx])) / n
        Z = chains.Z.reshape(groups, n, r)[np.arange(groups)[:, None], idx].reshape(C, r)
        steps += db > 0
        beta = np.where(1.0 - (beta + db) < 1e-12, 1.0, beta + db)
        sched.append(float(beta[0]))
        if radial:  # exact Gibbs redraw of the radius: ρ² (1 − β q) | u ~ χ²_d
            q = stat.reshape(groups, n)[np.arange(groups)[:, None], idx].ravel()
            U = Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-300)
            rho = np.sqrt(rng.chisquare(r, size=C) / (1.0 - np.repeat(beta, n) * q))
            Z = U * rho[:, None]
        chains.Z = Z
        brow = np.repeat(beta, n)
        ref = _fit_references(Z, groups) if adapt_reference else None
        ll = None
        for _ in range(moves):
            chains.Z, ll = _grouped_ess_step(chains, t, brow, groups, ref, ll)
        stat = stat_of(chains.Z).reshape(groups, n)
    else:
        raise RuntimeError(f"tempered SMC did not reach β = 1 in {max_steps} steps (β = {beta.min():.3g})")
    out = []
    ref = _fit_references(chains.Z, groups) if adapt_reference else None
    ll = None
    for _ in range(keep):
        chains.Z, ll = _grouped_ess_step(chains, t, np.ones(C), groups, ref, ll)
        out.append(chains.Z.copy())
    return SMCResult(Z=np.array(out), log_evidence=log_ev, betas=np.array(sched), steps=steps, min_ess=min_ess,
                     unique=unique, evaluations=(chains.evaluations - ev0) / C)
