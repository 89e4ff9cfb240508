"""Monte Carlo standard errors of chain averages.

:func:`mcse` uses non-overlapping batch means over all chains: with B
batches of length b per chain, the variance of the overall mean is
Var(batch means) / (number of batches). Batches of length ~√n make the
estimate consistent for geometrically ergodic chains. ESS and R-hat for the
validation reports are still to come (ArviZ, issue "Validation").
"""
from __future__ import annotations

import numpy as np

__all__ = ["mcse"]


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
