"""Randomised quasi-Monte Carlo for the readout moments (default for m >= 5; works to m = 10).

Self-normalised importance sampling from the mixture of Student-t (ν = 5) components of the
placement on R independent scrambled Sobol sequences. The nodes are fixed for a given seed
(common random numbers), so Φ stays smooth and convex in t for the outer Newton solve; the
spread over replicates is the error bar (THEORY §3).
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np
from scipy import special

from solvers.finite_p.readout_kernels import Layout, assemble, combine, kernel_args, log_prior_norm, weighted_sums

__all__ = ["QMCNodes", "qmc_moments"]

_QMC_NU = 5.0


@dataclass(frozen=True)
class QMCNodes:
    """Fixed standardised Student-t (ν = 5) nodes, R replicates × n, from scrambled Sobol sequences."""

    z: np.ndarray  # (R, n, m)

    @classmethod
    def make(cls, m: int, n: int = 4096, replicates: int = 8, seed: int = 0) -> "QMCNodes":
        from scipy.stats import qmc  # scipy.stats costs ~0.3 s to import; only this rule needs it
        zs = []
        for r in range(replicates):
            u = qmc.Sobol(d=m + 1, scramble=True, seed=seed + 7919 * r).random(n)
            u = np.clip(u, 1e-12, 1 - 1e-12)
            zs.append(special.ndtri(u[:, :m]) / np.sqrt(special.chdtri(_QMC_NU, u[:, m]) / _QMC_NU)[:, None])
        return cls(np.array(zs))


def _log_t_density(comp, A):
    m, nu = len(comp.mu), _QMC_NU
    Z = np.linalg.solve(comp.L, (A - comp.mu).T)
    return (special.gammaln((nu + m) / 2) - special.gammaln(nu / 2) - 0.5 * m * math.log(nu * math.pi)
            - float(np.sum(np.log(np.diag(comp.L)))) - 0.5 * (nu + m) * np.log1p(np.sum(Z * Z, axis=0) / nu))


def qmc_moments(prob, t, placement, nodes: QMCNodes, hessian):
    placement = placement.as_gaussian_mixture()
    m = prob.m
    lay = Layout(m, hessian)
    args = kernel_args(prob, t)
    R, n, _ = nodes.z.shape
    comps = placement.components
    J = len(comps)
    per_rep, ess, reps = [], 0.0, []
    for r in range(R):
        # deterministic mixture: n/J nodes from each Student-t component, balance-heuristic weights
        idx = np.array_split(np.arange(n), J)
        A = np.concatenate([comps[j].mu[None, :] + nodes.z[r, idx[j]] @ comps[j].L.T for j in range(J)])
        logs = np.array([_log_t_density(c, A) for c in comps])
        top = logs.max(axis=0)
        logq = top + np.log(np.mean(np.exp(logs - top), axis=0))
        s_r, ref_r, w2 = weighted_sums(np.ascontiguousarray(A), -logq - math.log(n), *args, hessian, lay.size)
        reps.append((s_r, ref_r))
        per_rep.append(s_r / s_r[0])
        ess += s_r[0] ** 2 / w2
    total, top = combine(reps)
    vals = total / total[0]
    per_rep = np.array(per_rep)
    err = per_rep.std(axis=0, ddof=1) / math.sqrt(R)
    log_zr = np.array([ref + math.log(s[0]) for s, ref in reps])
    err[0] = float(np.std(log_zr, ddof=1) / math.sqrt(R))
    log_z = top + math.log(total[0] / R) + log_prior_norm(prob)
    return assemble(prob, lay, t, vals, err, log_z,
                     f"qmc importance sampling (ESS {ess:.0f} of {R * n}) × {placement.describe()}",
                     R * n, True, prob.table().error_estimate)
