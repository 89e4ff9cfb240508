"""One chain of the deep collapsed sweep and the combination of several (THEORY §7).

:func:`run_deep_chain` runs :func:`validation.deep_sampler.deep_collapsed_sweep` from the prior (or a
given state), adapts the step by dual averaging to acceptance 0.574 during burn-in only, with one
BLAS thread per chain, and records the observables of :mod:`validation.deep_observables`, the
per-layer code fractions and snapshots of the class-mean activations. :func:`combine_chains` gives
their mean, MCSE and rank-normalised split-R̂ (:mod:`validation.diagnostics`).
"""
from __future__ import annotations

import math
import time

import numpy as np
from threadpoolctl import threadpool_limits

from theory.codes import code_fraction_difference, code_fractions, neuron_codes  # (re-exported)
from theory.spec import ModelSpec

from .deep_network import DeepNetwork
from .deep_observables import class_mean_activations, observables_vector, split_vector
from .deep_sampler import deep_collapsed_sweep
from .diagnostics import mcse, rhat_rank
from .samplers import StepSizeAdaptation

__all__ = ["run_deep_chain", "combine_chains", "mean_code_fractions", "code_fraction_difference"]


def run_deep_chain(spec: ModelSpec, width: int, layers: int, sweeps: int, burn: int, *, seed: int = 0,
                   sigmas=None, scaling: str = "mean-field", step_size: float = 0.1, n_mala: int = 5,
                   snapshot_every: int = 0, codes_every: int = 10, theta0=None, adapt: bool = True,
                   after_sweep=None, rng: np.random.Generator | None = None) -> dict:
    """One chain of :func:`deep_collapsed_sweep`, one BLAS thread (threadpoolctl).

    The step (prior units) starts at ``step_size`` and is adapted by dual averaging to acceptance
    0.574 during the ``burn`` sweeps only, then frozen (``adapt=False``: fixed ``step_size``, e.g.
    to compare drift between networks at the same step). Returns {"draws": (sweeps − burn) ×
    observables_vector, "acceptance", "step_size", "code_fractions": per layer {code: mean fraction},
    "snapshots": per layer (S × N × m) class-mean activations every ``snapshot_every`` sweeps after
    burn-in (if > 0), "theta": final state, "seconds", "gradients"}.
    ``after_sweep(rng, net, theta, burning) -> θ``: an extra exact move after every sweep (e.g. the
    mode-changing swaps of :mod:`validation.deep_swaps`). ``rng``: the generator (default
    ``default_rng([seed, width, layers])``).
    """
    if isinstance(sweeps, bool) or not isinstance(sweeps, (int, np.integer)) or sweeps < 1:
        raise ValueError(f"sweeps must be an integer >= 1 (got {sweeps!r})")
    if not (isinstance(burn, (int, np.integer)) and 0 <= burn < sweeps):
        raise ValueError(f"burn must be an integer in [0, sweeps={sweeps}) (got {burn!r})")
    if not (isinstance(n_mala, (int, np.integer)) and n_mala >= 1):
        raise ValueError(f"n_mala must be an integer >= 1 (got {n_mala!r})")
    if not (math.isfinite(step_size) and step_size > 0):
        raise ValueError(f"step_size must be a finite number > 0 (got {step_size!r})")
    net = DeepNetwork(spec, width=width, layers=layers, sigmas=sigmas, scaling=scaling)
    rng = np.random.default_rng([seed, width, layers]) if rng is None else rng
    theta = net.prior_sample(rng) if theta0 is None else np.array(theta0, dtype=np.float64)
    if theta.shape != (net.dim,):
        raise ValueError(f"theta0 must have {net.dim} entries (got shape {theta.shape})")
    t0 = time.perf_counter()
    adapter = StepSizeAdaptation(step_size) if (burn > 0 and adapt) else None
    step, acc, draws = step_size, [], []
    fractions = [dict() for _ in range(layers)]
    n_codes = 0
    snaps = [[] for _ in range(layers)]
    with threadpool_limits(limits=1):
        for s in range(sweeps):
            theta, a = deep_collapsed_sweep(rng, net, theta, step, n_mala)
            if after_sweep is not None:
                theta = after_sweep(rng, net, theta, s < burn)
            if s < burn:
                if adapter is not None:
                    adapter.update(a)
                    step = adapter.step_size if s < burn - 1 else adapter.final_step_size
                continue
            acc.append(a)
            draws.append(observables_vector(net, theta))
            k = s - burn
            need_snap = snapshot_every > 0 and k % snapshot_every == 0
            need_codes = codes_every > 0 and k % codes_every == 0
            if need_snap or need_codes:
                cms = class_mean_activations(net, theta)
                for ell, cm in enumerate(cms):
                    if need_snap:
                        snaps[ell].append(cm)
                    if need_codes:
                        for code, frac in code_fractions(neuron_codes(cm), spec.m).items():
                            fractions[ell][code] = fractions[ell].get(code, 0.0) + frac
                n_codes += need_codes
    return {"draws": np.array(draws), "acceptance": float(np.mean(acc)), "step_size": step,
            "code_fractions": [{k: v / max(n_codes, 1) for k, v in sorted(f.items())} for f in fractions],
            "snapshots": [np.array(sn) for sn in snaps] if snapshot_every > 0 else None,
            "theta": theta, "seconds": time.perf_counter() - t0, "gradients": sweeps * (n_mala + 1)}


def combine_chains(results: list, m: int, layers: int) -> dict:
    """Mean, MCSE and split-R̂ of the observables over chains (each a :func:`run_deep_chain` result),
    as {"mean", "mcse", "rhat"} dicts shaped by :func:`split_vector`, plus the flat arrays."""
    n = min(len(r["draws"]) for r in results)
    draws = np.array([r["draws"][:n] for r in results])
    mean, err, rhat = draws.mean(axis=(0, 1)), mcse(draws), rhat_rank(draws)
    return {"mean": split_vector(mean, m, layers), "mcse": split_vector(err, m, layers),
            "rhat": split_vector(rhat, m, layers), "flat": {"mean": mean, "mcse": err, "rhat": rhat},
            "rhat_max": float(np.max(rhat)), "draws_per_chain": n, "chains": len(results)}


def mean_code_fractions(results: list, layers: int) -> list:
    """Per layer, {code: fraction} averaged over chains (each a :func:`run_deep_chain` result)."""
    return [{k: float(np.mean([r["code_fractions"][ell].get(k, 0.0) for r in results]))
             for k in sorted(set().union(*(r["code_fractions"][ell] for r in results)))} for ell in range(layers)]
