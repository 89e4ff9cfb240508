"""Samplers as ``init(position, logdensity_and_grad) -> State`` and
``step(rng, state, logdensity_and_grad, ...) -> (State, Info)``.

Every step takes the random generator as an argument and hides nothing;
state and diagnostics are named tuples (in the spirit of BlackJAX). The
target is any callable θ ↦ (log p(θ), ∇ log p(θ)) on R^d, for example
:meth:`validation.networks.Network.logdensity_and_grad`. ``inv_mass`` is a
diagonal preconditioner M⁻¹ (1 by default).

* :func:`mala_step`: Metropolis-adjusted Langevin,
  θ' = θ + (ε²/2) M⁻¹∇ log p + ε M^{-1/2} ξ, accepted with the MH ratio
  including both proposal densities (exact).
* :func:`ula_step`: the same proposal, always accepted (biased by O(ε²); cheap).
* :func:`hmc_step`: Hamiltonian Monte Carlo with ``n_leapfrog`` leapfrog
  steps and an MH correction (exact).
* :class:`StepSizeAdaptation`: dual averaging of log ε towards a target
  acceptance (Hoffman & Gelman 2014, §3.2), used during warm-up only.
* :func:`run_chains`: warm-up with adaptation, then sampling with the step
  frozen, several chains, progress on stderr.

Bad settings raise ``ValueError`` naming the parameter: step ≤ 0, too few
steps for the requested warm-up, a non-finite log density at the start.
"""
from __future__ import annotations

import math
import sys
from typing import Callable, NamedTuple

import numpy as np

__all__ = ["State", "Info", "mala_init", "mala_step", "ula_step", "hmc_step", "StepSizeAdaptation",
           "run_chains"]


class State(NamedTuple):
    position: np.ndarray
    logdensity: float
    grad: np.ndarray


class Info(NamedTuple):
    accepted: bool
    acceptance_probability: float
    step_size: float


def mala_init(position: np.ndarray, logdensity_and_grad: Callable) -> State:
    """State at ``position``; raises if the log density is not finite there."""
    position = np.asarray(position, dtype=np.float64).copy()
    logp, grad = logdensity_and_grad(position)
    if not (np.isfinite(logp) and np.all(np.isfinite(grad))):
        raise ValueError("initial position: the log density or its gradient is not finite; "
                         "start the chain where the posterior is finite")
    return State(position, float(logp), np.asarray(grad, dtype=np.float64))


def _check_step(step_size: float):
    if not (isinstance(step_size, (int, float)) and math.isfinite(step_size) and step_size > 0):
        raise ValueError(f"step_size must be a finite number > 0 (got {step_size!r})")


def _langevin_proposal(rng, state: State, step_size, inv_mass):
    noise = rng.standard_normal(state.position.shape)
    return state.position + 0.5 * step_size**2 * inv_mass * state.grad + step_size * np.sqrt(inv_mass) * noise


def _log_q(to, frm: State, step_size, inv_mass):
    """log density (up to a constant) of proposing ``to`` from ``frm``."""
    mean = frm.position + 0.5 * step_size**2 * inv_mass * frm.grad
    d = to - mean
    return -0.5 * float(np.sum(d * d / inv_mass)) / step_size**2


def _langevin_move(rng, state: State, logdensity_and_grad, step_size, inv_mass):
    """(proposed State or None if its density is not finite, broadcast inverse mass)."""
    _check_step(step_size)
    inv_mass = np.broadcast_to(np.asarray(inv_mass, dtype=np.float64), state.position.shape)
    prop = _langevin_proposal(rng, state, step_size, inv_mass)
    logp, grad = logdensity_and_grad(prop)
    if not np.isfinite(logp) or not np.all(np.isfinite(grad)):
        return None, inv_mass  # a non-finite proposal is a rejection, not a crash
    return State(prop, float(logp), grad), inv_mass


def mala_step(rng: np.random.Generator, state: State, logdensity_and_grad: Callable, step_size: float,
              inv_mass=1.0):
    new, inv_mass = _langevin_move(rng, state, logdensity_and_grad, step_size, inv_mass)
    if new is None:
        return state, Info(False, 0.0, step_size)
    log_ratio = new.logdensity - state.logdensity + _log_q(state.position, new, step_size, inv_mass) - _log_q(
        new.position, state, step_size, inv_mass)
    prob = math.exp(min(0.0, log_ratio))
    if rng.random() < prob:
        return new, Info(True, prob, step_size)
    return state, Info(False, prob, step_size)


def ula_step(rng: np.random.Generator, state: State, logdensity_and_grad: Callable, step_size: float,
             inv_mass=1.0):
    new, _ = _langevin_move(rng, state, logdensity_and_grad, step_size, inv_mass)
    if new is None:
        return state, Info(False, 0.0, step_size)
    return new, Info(True, 1.0, step_size)


def hmc_step(rng: np.random.Generator, state: State, logdensity_and_grad: Callable, step_size: float,
             inv_mass=1.0, n_leapfrog: int = 10):
    _check_step(step_size)
    if not isinstance(n_leapfrog, int) or n_leapfrog < 1:
        raise ValueError(f"n_leapfrog must be an integer >= 1 (got {n_leapfrog!r})")
    inv_mass = np.broadcast_to(np.asarray(inv_mass, dtype=np.float64), state.position.shape)
    p = rng.standard_normal(state.position.shape) / np.sqrt(inv_mass)
    kinetic0 = 0.5 * float(np.sum(p * p * inv_mass))
    x, g = state.position.copy(), state.grad
    p = p + 0.5 * step_size * g
    logp = state.logdensity
    for k in range(n_leapfrog):
        x = x + step_size * inv_mass * p
        logp, g = logdensity_and_grad(x)
        if not np.isfinite(logp) or not np.all(np.isfinite(g)):
            return state, Info(False, 0.0, step_size)
        p = p + (step_size if k < n_leapfrog - 1 else 0.5 * step_size) * g
    kinetic1 = 0.5 * float(np.sum(p * p * inv_mass))
    log_ratio = (logp - kinetic1) - (state.logdensity - kinetic0)
    prob = math.exp(min(0.0, log_ratio)) if np.isfinite(log_ratio) else 0.0
    if rng.random() < prob:
        return State(x, float(logp), np.asarray(g)), Info(True, prob, step_size)
    return state, Info(False, prob, step_size)


class StepSizeAdaptation:
    """Dual averaging of log ε to a target acceptance probability (warm-up only)."""

    def __init__(self, step_size: float, target: float = 0.574, gamma: float = 0.05, t0: float = 10.0,
                 kappa: float = 0.75):
        _check_step(step_size)
        if not 0.0 < target < 1.0:
            raise ValueError(f"target acceptance must be in (0, 1) (got {target!r})")
        self.mu = math.log(10 * step_size)
        self.target, self.gamma, self.t0, self.kappa = target, gamma, t0, kappa
        self.h_bar, self.log_eps_bar, self.n = 0.0, math.log(step_size), 0
        self.log_eps = math.log(step_size)

    @property
    def step_size(self) -> float:
        return math.exp(self.log_eps)

    @property
    def final_step_size(self) -> float:
        return math.exp(self.log_eps_bar)

    def update(self, acceptance_probability: float) -> float:
        self.n += 1
        n = self.n
        self.h_bar += ((self.target - acceptance_probability) - self.h_bar) / (n + self.t0)
        self.log_eps = self.mu - math.sqrt(n) / self.gamma * self.h_bar
        w = n ** (-self.kappa)
        self.log_eps_bar = w * self.log_eps + (1 - w) * self.log_eps_bar
        return self.step_size


def run_chains(rng: np.random.Generator, positions, logdensity_and_grad: Callable, step=mala_step,
               step_size: float = 1e-2, n_warmup: int = 500, n_samples: int = 1000, thin: int = 1,
               target_acceptance: float = 0.574, observable: Callable | None = None, progress: bool = True,
               **step_kwargs):
    """Run one chain per row of ``positions``: adapt the step during ``n_warmup``, then sample.

    ULA has no acceptance statistic, so its step is never adapted (warm-up just burns in).

    Returns (draws (chains, n_samples//thin, …) of ``observable(position)`` or of the
    position, acceptance rate per chain, final step size per chain).
    """
    _check_step(step_size)
    if not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be an integer >= 1 (got {n_samples!r})")
    if not isinstance(n_warmup, int) or n_warmup < 0:
        raise ValueError(f"n_warmup must be an integer >= 0 (got {n_warmup!r})")
    if not isinstance(thin, int) or thin < 1 or thin > n_samples:
        raise ValueError(f"thin must be an integer in [1, n_samples={n_samples}] (got {thin!r})")
    observable = observable or (lambda x: x)
    positions = np.atleast_2d(np.asarray(positions, dtype=np.float64))
    draws, rates, steps = [], [], []
    total = len(positions) * (n_warmup + n_samples)
    done = 0
    for c, x0 in enumerate(positions):
        state = mala_init(x0, logdensity_and_grad)
        adapt = StepSizeAdaptation(step_size, target_acceptance)
        eps = step_size
        adapting = step is not ula_step and n_warmup > 0
        for _ in range(n_warmup):
            state, info = step(rng, state, logdensity_and_grad, eps, **step_kwargs)
            if adapting:
                eps = adapt.update(info.acceptance_probability)
            done += 1
        eps = adapt.final_step_size if adapting else step_size
        chain, accepted = [], 0
        for i in range(n_samples):
            state, info = step(rng, state, logdensity_and_grad, eps, **step_kwargs)
            accepted += info.accepted
            if (i + 1) % thin == 0:
                chain.append(observable(state.position))
            done += 1
            if progress and done % max(1, total // 50) == 0:
                print(f"\r[sampling] chain {c + 1}/{len(positions)}  {100 * done / total:5.1f}%", end="",
                      file=sys.stderr, flush=True)
        draws.append(np.array(chain))
        rates.append(accepted / n_samples)
        steps.append(eps)
    if progress:
        print("", file=sys.stderr)
    return np.array(draws), np.array(rates), np.array(steps)
