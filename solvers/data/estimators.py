"""Monte Carlo error bars of the explicit-input theory: chain groups, group MCSE and R̂ (THEORY §2).

Chains (or SMC particle clouds) are split into ``groups`` contiguous groups; every estimator is
computed per group and its Monte Carlo standard error is

    MCSE = sd_g(estimate_g) / √groups,

which needs no autocorrelation model (the groups are independent). Stationarity within a round is
checked by the rank-normalised split-R̂ of the per-sample log tilt (:func:`rhat`, Vehtari et al.
2021, from arviz-stats via :mod:`solvers.chain_stats`).
"""
from __future__ import annotations

import numpy as np

from solvers.chain_stats import rhat as rank_rhat
from solvers.data.surrogate import newton_solver
from theory.spec import ModelSpec, class_labels

__all__ = ["by_group", "group_mcse", "class_averages", "corrected_output_mcse", "rhat"]


def corrected_output_mcse(feats, t, Y, T, sa2, keep, groups) -> float:
    """Max MCSE of the one-step outputs f_g = Y − T(t + Δ_g), Δ_g = −(∇²G)⁻¹ r̂_g (group residuals,
    Hessian of the whole sample), i.e. the error of the f that :func:`solve_general` reports."""
    Phi = feats.phi(t)
    w = np.full(Phi.shape[0], 1.0 / Phi.shape[0])
    f_all, B = feats.stats(Phi, w, t)
    newton = newton_solver(Phi, w, B, f_all, sa2, T)
    Phig = by_group(Phi, keep, groups)
    fg = sa2 * np.einsum("gsp,gsq->gpq", Phig, Phig @ t) / Phig.shape[1]
    fc = np.array([Y - T * (t + newton(f + T * t - Y)) for f in fg])  # loop over the few groups
    return float(np.max(group_mcse(fc)))


def rhat(log_tilt: np.ndarray, keep: int, groups: int, smc: bool) -> float:
    """Stationarity diagnostic of the per-sample log tilt (rows ordered (keep, chains)): rank-normalised
    split-R̂ (:func:`solvers.chain_stats.rhat`), NaN with fewer than 4 draws per chain.

    MCMC: over the chains (draws in sampling order). SMC: over the independent particle groups (each
    group's samples as one chain): the clouds leave every mode with its weight only if they agree."""
    x = log_tilt.reshape(keep, -1).T if not smc else by_group(log_tilt, keep, groups)  # chains × draws
    if x.shape[1] < 4:
        return float("nan")
    return rank_rhat(x)


def by_group(X: np.ndarray, keep: int, groups: int) -> np.ndarray:
    """Rows ordered (keep, chains) → (groups, keep·chains/groups, ...), chains split in contiguous groups."""
    rest = X.shape[1:]
    return X.reshape(keep, groups, -1, *rest).swapaxes(0, 1).reshape(groups, -1, *rest)


def class_averages(spec: ModelSpec, rows: np.ndarray) -> np.ndarray:
    """Per-class means of the rows of a (P × ...) array (consecutive class blocks of ``spec``)."""
    lab = class_labels(spec.class_sizes)
    return np.array([rows[lab == c].mean(axis=0) for c in range(spec.m)])


def group_mcse(values: np.ndarray) -> np.ndarray:
    """MCSE of the mean from per-group estimates (groups on axis 0)."""
    return values.std(axis=0, ddof=1) / np.sqrt(values.shape[0])
