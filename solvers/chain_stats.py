"""Chain statistics of every Monte Carlo method in the package, from arviz-stats (Vehtari et al. 2021).

For draws x[c, n] of C chains with N draws each (after splitting every chain in halves):

* R̂ (:func:`rhat`): rank-normalised split-R̂, the larger of the bulk R̂ (on the normal scores of
  the pooled ranks) and the tail R̂ (the same on the folded draws |x − median|); 1 at convergence.
* ESS (:func:`ess`): bulk effective sample size, from the rank-normalised draws' autocorrelations
  combined over chains (Geyer's initial monotone sequence); ``method="tail"`` for the tail ESS.
* MCSE (:func:`mcse`): Monte Carlo standard error of the mean, sd / √ESS_mean.

Every function takes an array shaped (chains, draws, ...) and returns one value per trailing index
(a float for 2-d input). Draws that are constant over all chains and draws have R̂ = 1, ESS = the
number of draws and MCSE = 0 (arviz-stats returns NaN there). Shared machinery: it knows no
problem family; :mod:`validation.diagnostics` exposes the same statistics to the validation code.
"""
from __future__ import annotations

import numpy as np
from arviz_stats.base import array_stats

__all__ = ["rhat", "ess", "mcse", "TAIL_PROB"]

#: the quantiles whose indicator ESS is the tail ESS
TAIL_PROB = (0.05, 0.95)


def _draws(draws) -> np.ndarray:
    x = np.asarray(draws, dtype=np.float64)
    if x.ndim < 2 or x.shape[0] < 1 or x.shape[1] < 4:
        raise ValueError(f"draws must be shaped (chains, draws >= 4, ...) (got shape {x.shape})")
    return x


def _scalar(v):
    v = np.asarray(v, dtype=np.float64)
    return float(v) if v.ndim == 0 else v


def _constant(x: np.ndarray) -> np.ndarray:
    return np.ptp(x.reshape(-1, *x.shape[2:]), axis=0) == 0


def rhat(draws) -> float | np.ndarray:
    """Rank-normalised split-R̂ (max of bulk and tail) over axis 0 (chains) and axis 1 (draws)."""
    x = _draws(draws)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.asarray(array_stats.rhat(x, chain_axis=0, draw_axis=1, method="rank"), dtype=np.float64)
    return _scalar(np.where(_constant(x), 1.0, r))


def ess(draws, method: str = "bulk", prob=TAIL_PROB) -> float | np.ndarray:
    """Effective sample size over chains and draws: ``"bulk"`` (rank-normalised) or ``"tail"`` (the
    smaller of the ESS of the indicators of the ``prob`` quantiles, default 5% and 95%)."""
    if method not in ("bulk", "tail"):
        raise ValueError(f"method must be 'bulk' or 'tail' (got {method!r})")
    x = _draws(draws)
    extra = {"prob": tuple(prob)} if method == "tail" else {}
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.asarray(array_stats.ess(x, chain_axis=0, draw_axis=1, method=method, **extra), dtype=np.float64)
    return _scalar(np.where(_constant(x), float(x.shape[0] * x.shape[1]), out))


def mcse(draws) -> float | np.ndarray:
    """Monte Carlo standard error of the mean over chains and draws, sd / √ESS_mean."""
    x = _draws(draws)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.asarray(array_stats.mcse(x, chain_axis=0, draw_axis=1, method="mean"), dtype=np.float64)
    return _scalar(np.where(_constant(x), 0.0, out))
