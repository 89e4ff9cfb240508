"""Chain diagnostics: MCSE, ESS and split-R̂ on observables.

:func:`mcse` uses non-overlapping batch means over all chains: with B
batches of length b per chain, the variance of the overall mean is
Var(batch means) / (number of batches). Batches of length ~√n make the
estimate consistent for geometrically ergodic chains. :func:`ess` follows
from it, :func:`split_rhat` compares half-chains. These three formulas are
written out here rather than taken from ArviZ, which would add xarray and
pandas to the install for them.
"""
from __future__ import annotations

import numpy as np

__all__ = ["mcse", "ess", "split_rhat"]


def mcse(draws: np.ndarray) -> np.ndarray:
    """MCSE of the mean over chains and draws; ``draws`` is (chains, n, ...)."""
    draws = np.asarray(draws, dtype=np.float64)
    if draws.ndim < 2 or draws.shape[1] < 4:
        raise ValueError(f"draws must be (chains, n >= 4, ...) (got shape {draws.shape})")
    n = draws.shape[1]
    b = max(1, int(np.sqrt(n)))
    k = n // b
    batches = draws[:, :k * b].reshape(draws.shape[0], k, b, *draws.shape[2:]).mean(axis=2)
    flat = batches.reshape(-1, *draws.shape[2:])
    return flat.std(axis=0, ddof=1) / np.sqrt(flat.shape[0])


def ess(draws: np.ndarray) -> np.ndarray:
    """Effective sample size from batch means: n_total · Var / (n_total · MCSE²)."""
    draws = np.asarray(draws, dtype=np.float64)
    n_total = draws.shape[0] * draws.shape[1]
    var = draws.reshape(n_total, *draws.shape[2:]).var(axis=0, ddof=1)
    return var / np.maximum(mcse(draws) ** 2, 1e-300)


def split_rhat(draws: np.ndarray) -> np.ndarray:
    """Split-R̂ (Gelman et al., Bayesian Data Analysis, 3rd ed., §11.4) over chains split in halves."""
    draws = np.asarray(draws, dtype=np.float64)
    n = draws.shape[1] // 2
    halves = np.concatenate([draws[:, :n], draws[:, n:2 * n]], axis=0)  # (2 chains, n, ...)
    chain_means = halves.mean(axis=1)
    W = halves.var(axis=1, ddof=1).mean(axis=0)
    B = n * chain_means.var(axis=0, ddof=1)
    var_plus = (n - 1) / n * W + B / n
    return np.sqrt(var_plus / np.maximum(W, 1e-300))
