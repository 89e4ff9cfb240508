"""Chain diagnostics: rank-normalised split-R̂, bulk and tail ESS, MCSE of the mean (THEORY §7).

All of validation computes its chain statistics here, from arviz-stats (array interface, numpy and
scipy only; Vehtari, Gelman, Simpson, Carpenter & Bürkner, Bayesian Analysis 16, 667 (2021)).
Draws are arrays (chains, n, ...); every statistic is elementwise over the trailing dimensions.

* :func:`rhat_rank`: chains split in halves, draws replaced by their normal scores
  z = Φ⁻¹((rank − 3/8)/(S + 1/4)) over all S draws, then the split-R̂ of Gelman et al.,
  R̂ = √(((n−1)/n W + B/n) / W) (W: mean within-half variance, B: n × variance of the half means),
  for the bulk and for the draws folded at the median; R̂ = max of the two. Converged: R̂ < 1.01.
* :func:`ess`: bulk ESS, S / τ with the integrated autocorrelation time τ = 1 + 2 Σ_t ρ_t of the
  rank-normalised split chains (Geyer's initial monotone sequence); for an AR(1) chain with
  coefficient ρ, ESS → S (1 − ρ)/(1 + ρ).
* :func:`ess_tail`: the smaller ESS of the indicators of the 5 % and 95 % quantiles.
* :func:`mcse`: MCSE of the mean, sd / √ESS_mean (ESS of the split chains without ranks).

Observables that are constant over all draws have R̂ = 1, ESS = S and MCSE = 0 (arviz-stats
returns NaN for R̂ there). :func:`split_rhat` is the old name of :func:`rhat_rank`.
"""
from __future__ import annotations

import numpy as np
from arviz_stats.base import array_stats

__all__ = ["rhat_rank", "ess", "ess_bulk", "ess_tail", "mcse", "split_rhat", "rhat_rule", "RHAT_TARGET",
           "TAIL_PROB"]

#: the target rule of Vehtari et al. (2021): chains count as converged when every R̂ is below this
RHAT_TARGET = 1.01
#: the quantiles whose indicator ESS is the tail ESS
TAIL_PROB = (0.05, 0.95)


def _draws(draws, min_draws: int = 4) -> np.ndarray:
    draws = np.asarray(draws, dtype=np.float64)
    if draws.ndim < 2 or draws.shape[1] < min_draws:
        raise ValueError(f"draws must be (chains, n >= {min_draws}, ...) (got shape {draws.shape})")
    return draws


def _constant(draws: np.ndarray) -> np.ndarray:
    return np.all(draws == draws[:1, :1], axis=(0, 1))


def rhat_rank(draws) -> np.ndarray:
    """Rank-normalised split-R̂ (max of bulk and folded); ``draws`` is (chains >= 2, n >= 4, ...)."""
    draws = _draws(draws)
    if draws.shape[0] < 2:
        raise ValueError(f"R-hat needs at least 2 chains (got shape {draws.shape})")
    const = _constant(draws)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.asarray(array_stats.rhat(draws, chain_axis=0, draw_axis=1, method="rank"), dtype=np.float64)
    return np.where(const, 1.0, out)


def ess(draws) -> np.ndarray:
    """Bulk effective sample size (rank-normalised split chains) over chains and draws."""
    draws = _draws(draws)
    n_total = float(draws.shape[0] * draws.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.asarray(array_stats.ess(draws, chain_axis=0, draw_axis=1, method="bulk"), dtype=np.float64)
    return np.where(_constant(draws), n_total, out)


def ess_tail(draws, prob=TAIL_PROB) -> np.ndarray:
    """Tail ESS: the smaller ESS of the indicators of the ``prob`` quantiles (default 5 % and 95 %)."""
    draws = _draws(draws)
    n_total = float(draws.shape[0] * draws.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.asarray(array_stats.ess(draws, chain_axis=0, draw_axis=1, method="tail", prob=tuple(prob)),
                         dtype=np.float64)
    return np.where(_constant(draws), n_total, out)


def mcse(draws) -> np.ndarray:
    """MCSE of the mean over chains and draws, sd / √ESS_mean; ``draws`` is (chains, n >= 4, ...)."""
    draws = _draws(draws)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.asarray(array_stats.mcse(draws, chain_axis=0, draw_axis=1, method="mean"), dtype=np.float64)
    return np.where(_constant(draws), 0.0, out)


def rhat_rule(rhat_max: float, threshold: float = RHAT_TARGET, why: str | None = None) -> dict:
    """The R̂ rule a report applies, stated in the report: {"statistic", "threshold", "target",
    "rhat_max", "met" (rhat_max < threshold), "why"}; ``why`` says why a threshold above the target
    :data:`RHAT_TARGET` is used."""
    if threshold > RHAT_TARGET and not why:
        raise ValueError(f"a threshold above the target R-hat < {RHAT_TARGET} needs a reason")
    return {"statistic": "rank-normalised split-R-hat (Vehtari et al. 2021)", "threshold": float(threshold),
            "target": RHAT_TARGET, "rhat_max": float(rhat_max), "met": bool(rhat_max < threshold),
            "why": why or "the target rule"}


#: the bulk ESS under its explicit name
ess_bulk = ess
#: old name of :func:`rhat_rank` (it was the plain split-R̂; now rank-normalised)
split_rhat = rhat_rank
