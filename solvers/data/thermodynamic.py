"""The cumulant generating function Λ(g) of the tilted prior by thermodynamic integration (THEORY §4).

    Λ(g) = log E_{h~N(0,σ_1²K0)} e^{g·φ(h)} = ∫₀¹ g·m(s g) ds,   m(g) = E_{h|g}[φ(h)],

on Clenshaw–Curtis nodes (s = 0 in closed form: E_prior φ(h_μ) = E φ(N(0, σ_1²K0_μμ))), every node
sampled by :class:`solvers.data.tilted_chains.TiltedChains`. Error = MCSE from the independent chain
groups ⊕ |CC_n − CC_{n/2}| (nested rule).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solvers.data.estimators import group_mcse
from solvers.data.tilted_chains import TiltedChains
from theory.general import gaussian_phi_mean

__all__ = ["clenshaw_curtis", "BranchSample", "sample_tilts", "thermodynamic_lambda"]


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


def _prior_phi_mean(nonlinearity: str, K0: np.ndarray, sigma_w: float) -> np.ndarray:
    """E_prior φ(h_μ), h_μ ~ N(0, σ_1²K0_μμ) (closed form or Gauss–Hermite)."""
    d = sigma_w**2 * np.diag(K0)
    return gaussian_phi_mean(nonlinearity, np.zeros_like(d), d)[0]


@dataclass
class BranchSample:
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


def sample_tilts(L, nl_name, tilts, opt, rng, sweeps, state=None, adapt_rounds=1):
    """Sample p(h | g) for every row g of ``tilts``; returns (list of BranchSample, sampler state).

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
    out = [BranchSample(g=np.array(tilts[i], dtype=np.float64), H=H[i], Phi=phi(H[i]), groups=opt.groups)
           for i in range(len(tilts))]  # loop over tilt groups only
    return out, (chains.Z.copy(), chains.refs())


def thermodynamic_lambda(L, nl_name, K0, sigma_w, tilts, opt, rng, sweeps, state=None):
    """Λ(g) = log E_prior e^{g·φ(h)} = ∫₀¹ g·E_{sg}[φ] ds for every row g of ``tilts``.

    Clenshaw–Curtis with ``opt.nodes`` intervals (s = 0 in closed form); returns (Λ (n,),
    error (n,), samples at s = 1 (list of BranchSample), state). Error = MCSE from the chain
    groups (each group integrates on its own) ⊕ |CC_n − CC_{n/2}| (nested nodes)."""
    tilts = np.atleast_2d(tilts)
    n = tilts.shape[0]
    s, w = clenshaw_curtis(opt.nodes)
    s2, w2 = clenshaw_curtis(opt.nodes // 2)
    m0 = _prior_phi_mean(nl_name, K0, sigma_w)
    node_tilts = (s[1:, None, None] * tilts[None]).reshape(-1, tilts.shape[1])  # (nodes·n) × P
    if state is not None and state[0].shape[0] == node_tilts.shape[0] * opt.chains:
        samples, state = sample_tilts(L, nl_name, node_tilts, opt, rng, sweeps, state=state)
    else:
        # annealing: node j starts from the chains and references of node j − 1 (strong tilts are
        # concentrated far from the prior; fresh prior chains do not reach them in a short run)
        samples, parts = [], []
        prev = None
        for j in range(1, opt.nodes + 1):  # loop over the few nodes
            smp_j, prev = sample_tilts(L, nl_name, s[j] * tilts, opt, rng, sweeps, state=prev, adapt_rounds=2)
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
    err = np.sqrt(group_mcse(lam_g.T) ** 2 + (lam - lam2) ** 2)
    last = samples[(opt.nodes - 1) * n:]
    return lam, err, last, state
