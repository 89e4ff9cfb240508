"""Parallel elliptical slice chains for the single-neuron measure of the explicit-input theory (THEORY §2).

Target, in whitened coordinates h = L z (L Lᵀ = σ_1² K0, r = rank K0):

    π(z) ∝ N(z; 0, I) e^{β ℓ_t(Lz)},   ℓ_t(h) = (σ_a²/2) ||tᵀφ(h)||²   (β = 1 unless tempered).

Generalised elliptical slice sampling (Murray, Adams & MacKay 2010; Nishihara, Murray & Adams 2014)
around an adapted Gaussian reference N(μ, S), ``chains`` parallel chains advanced together (one
matrix product draws all the prior vectors; no Python loop over chains). Degenerate K0 (P > N0) is
handled by sampling in the range of K0 (:func:`prior_factor`). Moves added to the slice update:
independence Metropolis–Hastings with a mixture of the reference and the condensate Gaussians of
φ = α₊h₊ + α₋h₋ (exact on each sign-pattern cone), and replica exchange between tempering levels.
"""
from __future__ import annotations

import numpy as np

from solvers.data.elliptical_slice import elliptical_slice_update, fit_gaussian_references
from theory.nonlinearities import get_nonlinearity
from theory.spec import SpecError

__all__ = ["EllipticalSliceChains", "prior_factor"]


class EllipticalSliceChains:
    """Parallel elliptical slice sampling of p_t(h) ∝ N(h; 0, L Lᵀ) e^{ℓ_t(h)} (:mod:`solvers.data.chains`).

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


def prior_factor(K0: np.ndarray, sigma_w: float, rcond: float = 1e-10) -> np.ndarray:
    """L (P × r) with L Lᵀ = σ_1² K0, restricted to eigenvalues > rcond·λ_max."""
    lam, Q = np.linalg.eigh(K0)
    keep = lam > rcond * max(float(lam.max()), 1e-300)
    return Q[:, keep] * (sigma_w * np.sqrt(lam[keep]))
