"""Outer integration rules over the layer variables y ~ N(0, I_d) and the Gaussian proposals they are
mapped through (THEORY §5; :mod:`theory.deep_blocks`, "Outer integrals over y"); mixtures of
Gaussians: :mod:`theory.deep_mixture`.

A rule is a set of standard-normal nodes x with log weights (tensor Gauss–Hermite, Smolyak sparse
grids, or scrambled Sobol' replicates mapped by the inverse normal CDF); a proposal maps them to
y = μ + C x, with importance log-weight log N(y; 0, I) − log N(x; 0, I) + log|det C| added by the layer.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np
from scipy.special import ndtri
from scipy.stats import qmc

from theory.deep_tilted import _gh_1d

__all__ = ["Rule", "Proposal", "gauss_hermite_rule", "smolyak_rule", "sobol_rule"]


@dataclass(frozen=True, eq=False)
class Rule:
    """Standard-normal nodes ``x`` (n, d) with log weights ``logw`` (n,), in ``groups`` contiguous
    equal replicate blocks, each normalised (logsumexp over a block = −log groups)."""

    x: np.ndarray
    logw: np.ndarray
    groups: int
    name: str
    sign: np.ndarray | None = None  # signs of the weights (sparse grids have negative ones); None: all +
    nested: bool = False  # every block's first 2^j nodes are themselves a rule (scrambled Sobol' nets)

    @property
    def n(self) -> int:
        return len(self.logw)

    def group(self, r: int) -> "Rule":
        """Replicate block r alone (normalised)."""
        k = self.n // self.groups
        sl = slice(r * k, (r + 1) * k)
        return Rule(self.x[sl], self.logw[sl] + math.log(self.groups), 1, f"{self.name} [replicate {r}]",
                    nested=self.nested)

    def prefix(self, n: int) -> "Rule":
        """The first ``n`` nodes of every replicate block, reweighted to the same total (nested rules only:
        a leading 2^j block of a scrambled Sobol' net is a net)."""
        if not self.nested:
            raise ValueError("prefix needs a nested rule (scrambled Sobol' replicates)")
        k = self.n // self.groups
        n = min(int(n), k)
        idx = (np.arange(self.groups)[:, None] * k + np.arange(n)[None, :]).ravel()
        return Rule(self.x[idx], self.logw[idx] + math.log(k / n), self.groups, f"{self.name} [first {n}]",
                    nested=True)


def gauss_hermite_rule(d: int, order: int) -> Rule:
    """Tensor probabilists' Gauss–Hermite rule, ``order``^d nodes (exact for polynomials of
    degree <= 2·order − 1 in each coordinate against N(0, I_d))."""
    z, logw = _gh_1d(order)
    grids = np.meshgrid(*([z] * d), indexing="ij")
    lw = np.meshgrid(*([logw] * d), indexing="ij")
    x = np.stack([g.ravel() for g in grids], axis=1)
    return Rule(np.ascontiguousarray(x), np.sum([v.ravel() for v in lw], axis=0), 1,
                f"Gauss–Hermite {order}^{d}")


def smolyak_rule(d: int, level: int) -> Rule:
    """Smolyak sparse grid (combination technique) of probabilists' Gauss–Hermite rules with
    n(k) = 2k − 1 points, k = 1..level+1: A(q, d) = Σ_{q−d+1 <= |k| <= q} (−1)^{q−|k|} C(d−1, q−|k|)
    ⊗_i U^{k_i}, q = d + level; exact for polynomials of total degree <= 2·level + 1 against N(0, I_d)
    (S. A. Smolyak, Soviet Math. Dokl. 4, 240 (1963); T. Gerstner and M. Griebel, Numer. Algorithms
    18, 209 (1998)). Coinciding nodes are merged; weights may be negative (``sign``)."""
    import itertools

    q = d + level
    one_d = {k: _gh_1d(2 * k - 1) for k in range(1, level + 2)}
    acc: dict = {}
    for k in itertools.product(range(1, level + 2), repeat=d):
        tot = sum(k)
        if tot < max(d, q - d + 1) or tot > q:
            continue
        coef = (-1) ** (q - tot) * math.comb(d - 1, q - tot)
        grids = np.meshgrid(*[one_d[ki][0] for ki in k], indexing="ij")
        wgrid = np.exp(np.sum(np.meshgrid(*[one_d[ki][1] for ki in k], indexing="ij"), axis=0))
        pts = np.stack([g.ravel() for g in grids], axis=1)
        for pt, w in zip(np.round(pts, 12), wgrid.ravel()):
            key = tuple(pt)
            acc[key] = acc.get(key, 0.0) + coef * w
    keys = [kk for kk, w in acc.items() if abs(w) > 1e-300]
    x = np.array(keys, dtype=np.float64)
    w = np.array([acc[kk] for kk in keys])
    return Rule(np.ascontiguousarray(x), np.log(np.abs(w)), 1, f"Smolyak Gauss–Hermite level {level} in {d}-D "
                f"({len(w)} nodes)", sign=np.sign(w))


def sobol_rule(d: int, log2n: int, replicates: int, seed: int = 0) -> Rule:
    """``replicates`` independently scrambled Sobol' nets of 2^log2n points each, mapped to N(0, I_d)
    by the inverse normal CDF (Owen scrambling; the replicate spread estimates the error)."""
    xs = []
    for r in range(replicates):
        pts = qmc.Sobol(d, scramble=True, seed=np.random.default_rng([seed, d, r])).random_base2(log2n)
        xs.append(ndtri(np.clip(pts, 1e-15, 1 - 1e-15)))
    n = replicates << log2n
    return Rule(np.ascontiguousarray(np.concatenate(xs)), np.full(n, -math.log(n)), replicates,
                f"scrambled Sobol' {replicates} × 2^{log2n}", nested=True)


@dataclass(frozen=True, eq=False)
class Proposal:
    """Gaussian proposal y = mean + chol x for the y-integral of one layer."""

    mean: np.ndarray
    chol: np.ndarray

    @staticmethod
    def standard(d: int) -> "Proposal":
        return Proposal(np.zeros(d), np.eye(d))

    @staticmethod
    def from_moments(mean, cov, inflate: float = 1.0) -> "Proposal":
        cov = 0.5 * (cov + cov.T) * inflate
        w, V = np.linalg.eigh(cov)
        w = np.maximum(w, 1e-6 * max(w.max(), 1e-12))
        return Proposal(np.array(mean, dtype=np.float64), np.linalg.cholesky((V * w) @ V.T))

    def distance(self, other) -> float:
        if not isinstance(other, Proposal):
            return math.inf
        return float(max(np.max(np.abs(self.mean - other.mean)), np.max(np.abs(self.chol - other.chol))))

    def map(self, rule: Rule):
        """(y, logw, base): the rule's nodes mapped to y = μ + C x, their log weights, and
        base = log N(y; 0, I) − log q(y) up to the shared constant (½|x|² − ½|y|² + log|det C|)."""
        x = rule.x
        y = self.mean + x @ self.chol.T
        logdet = float(np.sum(np.log(np.abs(np.diag(self.chol)))))
        return y, rule.logw, -0.5 * np.sum(y * y, axis=1) + 0.5 * np.sum(x * x, axis=1) + logdet

    def draw(self, rng, n: int):
        """(y, base): ``n`` random draws from the proposal and base = log N(y; 0, I) − log q(y) + const."""
        x = rng.standard_normal((int(n), len(self.mean)))
        y = self.mean + x @ self.chol.T
        return y, -0.5 * np.sum(y * y, axis=1) + 0.5 * np.sum(x * x, axis=1)
