"""Mixture-of-Gaussians importance proposals for one layer's y-integral (THEORY §5; the integral is
:func:`theory.deep_layer.layer_integral`, the single-Gaussian proposal :class:`theory.deep_rules.Proposal`).

At small T and large P a layer's tilted y-measure ∝ N(y; 0, I) e^{Σ_c P_c ζ_c} has one narrow mode
per code pattern (THEORY §4–5: the branches), so one Gaussian covers it badly. The mixture

    q(y) = Σ_k w_k N(y; μ_k, C_k C_kᵀ),   Σ_k w_k = 1,

is used with the balance heuristic of multiple importance sampling (E. Veach and L. Guibas,
SIGGRAPH 1995; A. Owen and Y. Zhou, JASA 95, 135 (2000)): every component k gets its own copy of
the standard-normal rule, y_ki = μ_k + C_k x_i, and

    E_{N(0,I)}[F] = Σ_k w_k Σ_i ω_i F(y_ki) N(y_ki; 0, I) / q(y_ki),

which is exact in expectation for any weights w_k (the estimator of one component alone is biased;
the sum over components is not). Besides Gaussians a component can be a slice needle
(:class:`theory.deep_needle.SliceNeedle`: a density along one needle of the measure near its domain
boundary, with its own map of the standard-normal nodes); it enters the sum in the same way. With a nested rule (scrambled Sobol' replicates) each component
uses the first n_g / 2^j nodes of every replicate block (2^j >= K), so the cost stays that of one
Gaussian and the replicate spread is still an honest error estimate; other rules (tensor
Gauss–Hermite) are used whole per component.

Adaptation (population Monte Carlo, O. Cappé et al., Stat. Comput. 18, 447 (2008)): with the
normalised importance weights p_i of the nodes and the responsibilities
r_ik = w_k N(y_i; μ_k, Σ_k) / q(y_i), the next mixture has w_k ∝ Σ_i p_i r_ik and (optionally) the
p r_k-weighted means and covariances; the solver keeps the components at the modes and adapts the
weights only. Component 0 is defensive: the moment-matched Gaussian of the
whole measure (inflated), with a fixed weight (T. Hesterberg, Technometrics 37, 185 (1995)), which
bounds the importance weights wherever the components are too narrow.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np
from scipy.linalg import solve_triangular
from scipy.special import logsumexp

from theory.deep_rules import Proposal, Rule

__all__ = ["MixtureProposal", "DEFENSIVE_WEIGHT"]

#: weight of the defensive (moment-matched, inflated) component 0
DEFENSIVE_WEIGHT = 0.2

_MIN_NODES = 64  # fewest nodes per replicate block and component


def _chol(cov) -> np.ndarray:
    """Cholesky factor of ``cov`` with its eigenvalues floored as in :meth:`Proposal.from_moments`."""
    return Proposal.from_moments(np.zeros(len(cov)), cov).chol


@dataclass(frozen=True, eq=False)
class MixtureProposal:
    """q(y) = Σ_k w_k N(y; μ_k, C_k C_kᵀ) (module docstring): ``means`` (K, d), ``chols`` (K, d, d)
    lower Cholesky factors, ``logw`` (K,) normalised log weights; component 0 is the defensive one.
    ``mean``/``chol`` are the moments of the whole mixture (a single-Gaussian summary, for code that
    wants one Gaussian, e.g. the independence swaps of :mod:`validation.deep_swaps`)."""

    means: np.ndarray
    chols: np.ndarray
    logw: np.ndarray
    needles: tuple = ()  # slice needle components (theory.deep_needle.SliceNeedle), after the Gaussians

    @property
    def size(self) -> int:
        return len(self.logw)

    @property
    def gaussians(self) -> int:
        return len(self.means)

    def _moments(self):
        w = np.exp(self.logw)
        if not self.needles:
            return self.means, np.einsum("k,kij,klj->il", w, self.chols, self.chols), w
        nm = [nd.moments() for nd in self.needles]
        means = np.concatenate([self.means, [a for a, _ in nm]])
        g = self.gaussians
        cov = np.einsum("k,kij,klj->il", w[:g], self.chols, self.chols) + sum(wk * c for wk, (_, c) in zip(w[g:], nm))
        return means, cov, w

    @property
    def mean(self) -> np.ndarray:
        means, _, w = self._moments()
        return w @ means

    @property
    def chol(self) -> np.ndarray:
        means, cov, w = self._moments()
        dm = means - w @ means
        return _chol(cov + (dm * w[:, None]).T @ dm)

    @staticmethod
    def build(defensive: Proposal, means, covs, weights, defensive_weight: float = DEFENSIVE_WEIGHT,
              inflate: float = 1.0) -> "MixtureProposal":
        """Component 0 = ``defensive`` (weight ``defensive_weight``), then N(means[k], inflate·covs[k]) with
        weights ∝ ``weights`` sharing the rest."""
        w = np.asarray(weights, dtype=np.float64)
        w = (1.0 - defensive_weight) * w / w.sum()
        means = np.concatenate([np.asarray(defensive.mean)[None, :], np.asarray(means, dtype=np.float64)])
        chols = np.stack([np.asarray(defensive.chol)] + [_chol(inflate * np.asarray(c)) for c in covs])
        return MixtureProposal(means, chols, np.log(np.concatenate([[defensive_weight], w])))

    def _nodes(self, rule: Rule) -> Rule:
        if not rule.nested:
            return rule
        per = rule.n // rule.groups
        n = max(min(_MIN_NODES, per), per >> math.ceil(math.log2(self.size)))
        return rule.prefix(n)

    def log_q(self, y) -> tuple[np.ndarray, np.ndarray]:
        """(log q̃(y), log of w_k q̃_k(y) per component (n, K)) with q̃ = (2π)^{d/2} q."""
        parts = np.empty((len(y), self.size))
        for k in range(self.gaussians):
            z = solve_triangular(self.chols[k], (y - self.means[k]).T, lower=True)
            logdet = float(np.sum(np.log(np.abs(np.diag(self.chols[k])))))
            parts[:, k] = self.logw[k] - 0.5 * np.sum(z * z, axis=0) - logdet
        for k, nd in enumerate(self.needles, start=self.gaussians):
            parts[:, k] = self.logw[k] + nd.log_density(y)
        return logsumexp(parts, axis=1), parts

    def map(self, rule: Rule):
        """(y, logw, base) as :meth:`theory.deep_rules.Proposal.map`: all components' nodes, their log
        weights log w_k + log ω_i, and base = −½|y|² − log q̃(y)."""
        r = self._nodes(rule)
        y = np.concatenate([self.means[k] + r.x @ self.chols[k].T for k in range(self.gaussians)]
                           + [nd.sample(r.x) for nd in self.needles])
        logw = np.concatenate([r.logw + self.logw[k] for k in range(self.size)])
        return y, logw, -0.5 * np.sum(y * y, axis=1) - self.log_q(y)[0]

    def draw(self, rng, n: int):
        """(y, base): ``n`` draws from q and base = −½|y|² − log q̃(y)."""
        k = rng.choice(self.size, size=int(n), p=np.exp(self.logw - logsumexp(self.logw)))
        x = rng.standard_normal((int(n), self.means.shape[1]))
        g = np.minimum(k, self.gaussians - 1)
        y = self.means[g] + np.einsum("nij,nj->ni", self.chols[g], x)
        for j, nd in enumerate(self.needles, start=self.gaussians):
            y[k == j] = nd.sample(x[k == j])
        return y, -0.5 * np.sum(y * y, axis=1) - self.log_q(y)[0]

    def adapt(self, y, p, y_mean, y_cov, inflate: float = 1.0, move: bool = False,
              drop: float = 1e-4) -> "MixtureProposal":
        """One population-Monte-Carlo update from nodes ``y`` with normalised weights ``p`` (module
        docstring): the defensive component becomes N(y_mean, inflate·y_cov), the weights w_k ∝ Σ_i p_i r_ik;
        with ``move`` also the component means and covariances (then components whose weight falls below
        ``drop`` are removed). Without ``move`` the components stay where they were placed (the solver
        places them at the modes of the measure, and its coverage check asks for exactly that)."""
        _, parts = self.log_q(y)
        resp = np.exp(parts - logsumexp(parts, axis=1, keepdims=True))
        pr = np.maximum(p, 0.0)[:, None] * resp[:, 1:]
        mass = pr.sum(axis=0)
        defensive = Proposal.from_moments(y_mean, y_cov, inflate)
        if not move:
            w = np.maximum(mass, drop * max(mass.sum(), 1e-300))
            w = (1.0 - math.exp(self.logw[0])) * w / w.sum()
            return MixtureProposal(np.concatenate([defensive.mean[None, :], self.means[1:]]),
                                   np.concatenate([defensive.chol[None], self.chols[1:]]),
                                   np.log(np.concatenate([[math.exp(self.logw[0])], w])), self.needles)
        if self.needles:
            raise ValueError("moving the components of a mixture with slice needles is not supported")
        keep = mass > drop * max(mass.sum(), 1e-300)
        means, covs = [], []
        for k in np.flatnonzero(keep):
            mu = pr[:, k] @ y / mass[k]
            yc = y - mu
            means.append(mu)
            covs.append((yc * pr[:, k, None]).T @ yc / mass[k])
        if not means:
            return MixtureProposal(defensive.mean[None, :], defensive.chol[None], np.zeros(1))
        return MixtureProposal.build(defensive, means, covs, mass[keep], math.exp(self.logw[0]), inflate)

    def distance(self, other) -> float:
        """Largest change of a component's mean, Cholesky factor or weight (inf for another shape)."""
        if not isinstance(other, MixtureProposal) or other.size != self.size or \
                any(a is not b for a, b in zip(self.needles, other.needles)):
            return math.inf
        return float(max(np.max(np.abs(self.means - other.means)), np.max(np.abs(self.chols - other.chols)),
                         np.max(np.abs(np.exp(self.logw) - np.exp(other.logw)))))

    def mix(self, other: "MixtureProposal", w: float) -> "MixtureProposal":
        """Componentwise interpolation (same number of components), weight ``w`` on ``other``."""
        if not isinstance(other, MixtureProposal) or other.size != self.size:
            return other
        lw = np.log((1 - w) * np.exp(self.logw) + w * np.exp(other.logw))
        return MixtureProposal((1 - w) * self.means + w * other.means, (1 - w) * self.chols + w * other.chols, lw,
                               other.needles)
