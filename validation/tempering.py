"""Replica exchange (parallel tempering) in the temperature T for deep chains (THEORY §7).

Local MALA steps do not change the fractions of neurons per code (THEORY §7, ergodicity), so a
chain started from the prior keeps the code composition it reaches first. At a higher T the same
sampler mixes; replica exchange carries that mixing down to the target T with an exact acceptance
rule.

Targets. Replica k samples the readout-integrated posterior of :mod:`validation.deep_network` at its
own temperature T_k (K rungs, T_0 the target T < T_1 < ... < T_{K-1}):

    π_k(W) = exp[ℓ_{T_k}(W)] p₀(W) / Z_k,
    ℓ_T(W) = −(m/2) log det M_T − (β_T/2) tr(Yᵀ M_T⁻¹ Y),   M_T = I_P + c_T Φ_Lᵀ Φ_L,
    c_T = σ_a² β_T N^{-2γ},   β_T = N/T (mean-field) or 1/T (standard),
    p₀(W) = Π_ℓ N(W^ℓ; 0, σ_ℓ² I).

The prior p₀ does not depend on T, and ℓ_T depends on W only through the Gram matrix
Φ_LᵀΦ_L of the last layer's activations, so one forward pass gives ℓ_T(W) at every rung
(:func:`tempered_loglik`).

Exchange. The chain runs on the product space with density Π_k π_k(W_k). The move that exchanges
the states of rungs i and j, (W_i, W_j) → (W_j, W_i), is a deterministic involution with unit
Jacobian, so Metropolis–Hastings accepts it with probability

    min(1, π_i(W_j) π_j(W_i) / (π_i(W_i) π_j(W_j)))
      = min(1, exp[ℓ_{T_i}(W_j) + ℓ_{T_j}(W_i) − ℓ_{T_i}(W_i) − ℓ_{T_j}(W_j)])

(:func:`exchange_log_ratio`): the prior factors p₀ and the normalisations Z_k cancel. Each rung's
MALA sweep (:func:`validation.deep_sampler.deep_collapsed_sweep`) leaves its π_k invariant, hence
the product; so does every exchange. After an exchange that moves rung 0, its readout a is drawn
again from a | W at T_0 (exact Gibbs step), so the joint posterior π(W, a) at the target T is the
marginal of rung 0.

Schedule. Sweep s attempts the neighbour pairs (k, k+1) with k ≡ s (mod 2), each with the rule
above (deterministic even–odd exchange; a composition of exact moves).

Ladder. Geometric, T_k = T_0 (T_max/T_0)^{k/(K−1)} (:func:`geometric_ladder`). During burn-in only,
every ``adapt_every`` sweeps the log-gaps g_k = log T_{k+1} − log T_k are equalised in exchange
acceptance, g_k ← g_k exp(κ (A_k − Ā)), renormalised to Σ g_k = log(T_max/T_0) (A_k: mean
acceptance probability of pair k since the last update, Ā their mean; κ = ``adapt_gain``). After
burn-in the ladder is frozen, so the kept draws come from one fixed exact kernel.

:class:`ReplicaExchange` is an ``after_sweep`` hook of :func:`validation.deep_chain.run_deep_chain`:
the chain itself is rung 0 (its draws, step adaptation and records are the plain chain's); the hook
runs one sweep of every other rung and then the exchanges. :func:`run_tempered_chain` runs it.
"""
from __future__ import annotations

import math

import numpy as np

from solvers.progress import report
from theory.checks import check_float, check_int
from theory.codes import code_fractions, neuron_codes
from theory.spec import ModelSpec, SpecError

from .deep_chain import run_deep_chain
from .deep_network import DeepNetwork
from .deep_observables import class_mean_activations
from .deep_sampler import deep_collapsed_sweep, sample_readout
from .deep_swaps import run_deep_chain_with_swaps
from .layer_moves import LayerMoves
from .reflections import Reflections
from .samplers import StepSizeAdaptation

__all__ = ["geometric_ladder", "check_tempering", "last_layer_gram", "tempered_loglik", "exchange_log_ratio",
           "ReplicaExchange", "run_tempered_chain", "run_chain_with_moves", "combine_tempering", "T_MAX", "ADAPT_GAIN"]

#: default top of the ladder: at T = 0.5 the deep chains mix (swaps accepted at 59 %, docs/devlog.md)
T_MAX = 0.5
#: gain κ of the burn-in equalisation of the ladder's log-gaps
ADAPT_GAIN = 1.5


def geometric_ladder(temperature: float, rungs: int, t_max: float = T_MAX) -> np.ndarray:
    """T_k = T (t_max/T)^{k/(K−1)}, k = 0..K−1 (``rungs`` = K >= 2, t_max > T)."""
    check_int("tempering", rungs, 2)
    check_float("t_max", t_max, temperature, lo_open=True)
    return temperature * (t_max / temperature) ** (np.arange(rungs) / (rungs - 1))


def check_tempering(rungs, temperature: float, t_max: float = T_MAX) -> int:
    """``rungs`` as an int: 0 (off) or >= 2, with ``t_max`` above ``temperature`` (SpecError otherwise)."""
    rungs = check_int("tempering", rungs, 0)
    if rungs == 1:
        raise SpecError("tempering: the number of rungs must be 0 (off) or >= 2 (the target T and hotter ones), got 1")
    if rungs and not (math.isfinite(t_max) and t_max > temperature):
        raise SpecError(f"tempering: the top temperature t_max must be above T = {temperature:g} (got {t_max!r})")
    return rungs


def last_layer_gram(net: DeepNetwork, w: np.ndarray) -> np.ndarray:
    """Φ_LᵀΦ_L (P × P) of the flat hidden weights ``w``: all the T-dependent part of the collapsed
    density needs."""
    phi = net.forward(net.unpack_hidden(np.ascontiguousarray(w, dtype=np.float64)))[-1][1]
    return phi.T @ phi


def tempered_loglik(net: DeepNetwork, gram: np.ndarray) -> float:
    """ℓ_T = −(m/2) log det M − (β/2) tr(Yᵀ M⁻¹ Y), M = I + c Φ_LᵀΦ_L, c = σ_a² β N^{-2γ}, at the
    temperature of ``net`` (module docstring); −inf where M is not positive definite."""
    return net.readout_loglik(net.readout_factor(gram))


def exchange_log_ratio(net_i: DeepNetwork, net_j: DeepNetwork, gram_i: np.ndarray, gram_j: np.ndarray) -> float:
    """log of π_i(W_j) π_j(W_i) / (π_i(W_i) π_j(W_j)) = ℓ_{T_i}(W_j) + ℓ_{T_j}(W_i) − ℓ_{T_i}(W_i) −
    ℓ_{T_j}(W_j), with ``gram_k`` = Φ_LᵀΦ_L of the state of rung k (:func:`last_layer_gram`)."""
    return (tempered_loglik(net_i, gram_j) + tempered_loglik(net_j, gram_i)
            - tempered_loglik(net_i, gram_i) - tempered_loglik(net_j, gram_j))


class ReplicaExchange:
    """``after_sweep`` hook of :func:`validation.deep_chain.run_deep_chain` whose chain is rung 0
    (module docstring): one collapsed sweep of every hotter rung (own step, adapted during burn-in),
    the even–odd exchanges, then ``after`` (a further hook, on rung 0).

    ``temperatures``: the ladder (T_0 = the chain's T first, increasing); ``adapt_ladder``: equalise
    the log-gaps in acceptance during burn-in. :meth:`summary` gives the JSON-ready statistics.
    """

    def __init__(self, spec: ModelSpec, width: int, layers: int, temperatures, *, sigmas=None,
                 scaling: str = "mean-field", step_size: float = 0.1, n_mala: int = 5, adapt_ladder: bool = True,
                 adapt_every: int = 20, adapt_gain: float = ADAPT_GAIN, after=None, progress=None, total=None):
        temps = np.asarray(temperatures, dtype=np.float64)
        if temps.ndim != 1 or len(temps) < 2 or not np.all(np.diff(temps) > 0):
            raise SpecError(f"temperatures must be an increasing ladder of >= 2 rungs (got {temperatures!r})")
        if not math.isclose(temps[0], spec.temperature, rel_tol=1e-12):
            raise SpecError(f"the ladder must start at the chain's T = {spec.temperature:g} (got {temps[0]:g})")
        self.spec, self.width, self.layers, self.sigmas, self.scaling = spec, width, layers, sigmas, scaling
        self.n_mala, self.adapt_ladder, self.adapt_every = n_mala, adapt_ladder, int(adapt_every)
        self.gain, self.after, self.progress, self.total = float(adapt_gain), after, progress, total
        self.temps = temps
        self.nets = [self._net(T) for T in temps]
        K = len(temps)
        self.thetas = None  # rungs 1..K-1, initialised from rung 0 at the first call
        self.steps = [float(step_size)] * K
        self.adapters = [StepSizeAdaptation(step_size) for _ in range(K)]
        self.sweep = 0
        self.walker = np.arange(K)  # which replica sits at each rung: round trips 0 → K-1 → 0
        self.been_top = np.zeros(K, dtype=bool)
        self.round_trips = 0
        self._window = np.zeros((2, K - 1))  # burn-in window for the ladder: Σ acceptance, attempts
        self.acc_sum, self.acc_n = np.zeros(K - 1), np.zeros(K - 1)  # after burn-in
        self.mala_sum, self.mala_n = np.zeros(K), 0
        self.codes, self.n_codes, self.codes_every = [dict() for _ in range(K - 1)], 0, 10

    def _net(self, T):
        return DeepNetwork(self.spec.replace(temperature=float(T)), width=self.width, layers=self.layers,
                           sigmas=self.sigmas, scaling=self.scaling)

    def __call__(self, rng, net, theta, burning: bool):
        K = len(self.temps)
        if self.thetas is None:
            self.thetas = [np.array(theta, dtype=np.float64) for _ in range(K - 1)]
        states = [np.asarray(theta, dtype=np.float64)] + self.thetas
        mala = np.zeros(K)
        for k in range(1, K):
            if not burning and self.adapters[k] is not None:  # burn-in over: freeze the step
                self.steps[k], self.adapters[k] = self.adapters[k].final_step_size, None
            states[k], mala[k] = deep_collapsed_sweep(rng, self.nets[k], states[k], self.steps[k], self.n_mala)
            if burning:
                self.steps[k] = self.adapters[k].update(mala[k])
        if self._exchanges(rng, states, burning):  # rung 0 got a new W: its readout from a | W at the target T
            n = net.dim_hidden
            a = sample_readout(rng, net, net.unpack_hidden(states[0][:n]))
            states[0] = np.concatenate([states[0][:n], a.ravel()])
        self.thetas = states[1:]
        if burning:
            self._adapt_ladder()
        else:
            self.mala_sum[1:] += mala[1:]
            if self.mala_n % self.codes_every == 0:
                self._record_codes(states)
            self.mala_n += 1
        self.sweep += 1
        if self.progress is not None and self.sweep % 10 == 0:
            report(self.progress, "tempering", self.sweep, self.total, round_trips=self.round_trips,
                   **{f"x{k}{k + 1}": (a if a is not None else float("nan")) for k, a in enumerate(self.acceptance())})
        return states[0] if self.after is None else self.after(rng, net, states[0], burning)

    def _exchanges(self, rng, states, burning) -> bool:
        """The even–odd exchanges of this sweep; True if rung 0's state changed."""
        K, n = len(self.temps), self.nets[0].dim_hidden
        grams = [last_layer_gram(self.nets[k], states[k][:n]) for k in range(K)]
        moved0 = False
        for k in range(self.sweep % 2, K - 1, 2):
            lr = exchange_log_ratio(self.nets[k], self.nets[k + 1], grams[k], grams[k + 1])
            prob = math.exp(min(0.0, lr)) if not math.isnan(lr) else 0.0
            if burning:
                self._window[:, k] += (prob, 1.0)
            else:
                self.acc_sum[k] += prob
                self.acc_n[k] += 1
            if rng.random() < prob:
                states[k], states[k + 1] = states[k + 1], states[k]
                grams[k], grams[k + 1] = grams[k + 1], grams[k]
                self.walker[[k, k + 1]] = self.walker[[k + 1, k]]
                moved0 |= k == 0
        if not burning:
            self._count_round_trips()
        return moved0

    def _count_round_trips(self):
        """After burn-in: a replica completes a round trip when it arrives at rung 0 having been at the
        top rung since its last visit to rung 0."""
        top, bottom = int(self.walker[-1]), int(self.walker[0])
        self.been_top[top] = True
        if self.been_top[bottom]:
            self.round_trips += 1
            self.been_top[bottom] = False

    def _adapt_ladder(self):
        """Burn-in only: every ``adapt_every`` sweeps, equalise the log-gaps in acceptance (docstring)."""
        if not self.adapt_ladder or self.sweep % self.adapt_every != self.adapt_every - 1:
            return
        s, n = self._window
        if np.any(n == 0):
            return
        A = s / n
        gaps = np.diff(np.log(self.temps)) * np.exp(self.gain * (A - A.mean()))
        gaps *= math.log(self.temps[-1] / self.temps[0]) / gaps.sum()
        temps = self.temps[0] * np.exp(np.concatenate([[0.0], np.cumsum(gaps)]))
        temps[-1] = self.temps[-1]
        self.temps = temps
        self.nets[1:] = [self._net(T) for T in temps[1:]]
        self._window[:] = 0.0

    def _record_codes(self, states):
        """Last hidden layer's code fractions of every hotter rung (every ``codes_every`` kept sweeps)."""
        for k in range(1, len(self.temps)):
            cm = class_mean_activations(self.nets[k], states[k])[-1]
            for code, frac in code_fractions(neuron_codes(cm), self.spec.m).items():
                self.codes[k - 1][code] = self.codes[k - 1].get(code, 0.0) + frac
        self.n_codes += 1

    def acceptance(self) -> list:
        """Mean exchange acceptance probability per neighbour pair after burn-in (None if not attempted)."""
        return [float(s / n) if n else None for s, n in zip(self.acc_sum, self.acc_n)]

    def summary(self) -> dict:
        """{"temperatures" (the ladder after burn-in), "exchange_acceptance" (per pair), "round_trips",
        "step_sizes", "mala_acceptance", "code_fractions" (the last hidden layer's; rungs >= 1, rung 0
        is the chain's own)}."""
        return {"temperatures": self.temps.tolist(), "exchange_acceptance": self.acceptance(),
                "round_trips": int(self.round_trips), "step_sizes": [float(s) for s in self.steps[1:]],
                "mala_acceptance": (self.mala_sum[1:] / max(self.mala_n, 1)).tolist(),
                "code_fractions": [{c: v / max(self.n_codes, 1) for c, v in sorted(d.items())} for d in self.codes]}


def run_tempered_chain(spec: ModelSpec, width: int, layers: int, sweeps: int, burn: int, *, rungs: int,
                       t_max: float = T_MAX, seed: int = 0, sigmas=None, step_size: float = 0.1, n_mala: int = 5,
                       theta0=None, codes_every: int = 10, after_sweep=None, adapt_ladder: bool = True,
                       progress=None, runner=None, **runner_kw) -> dict:
    """:func:`validation.deep_chain.run_deep_chain` at ``spec``'s T with ``rungs`` - 1 hotter replicas
    on the geometric ladder up to ``t_max`` (:class:`ReplicaExchange`); ``after_sweep`` acts on rung 0
    after the exchanges. ``runner``: the chain function (default :func:`run_deep_chain`; e.g.
    :func:`validation.deep_swaps.run_deep_chain_with_swaps` with its keywords ``runner_kw``).
    Adds "tempering" (:meth:`ReplicaExchange.summary`) to the chain's result."""
    rungs = check_tempering(rungs, spec.temperature, t_max)
    if rungs == 0:
        raise SpecError("run_tempered_chain needs rungs >= 2 (use run_deep_chain without tempering)")
    hook = ReplicaExchange(spec, width, layers, geometric_ladder(spec.temperature, rungs, t_max), sigmas=sigmas,
                           step_size=step_size, n_mala=n_mala, adapt_ladder=adapt_ladder, after=after_sweep,
                           progress=progress, total=sweeps)
    runner = run_deep_chain if runner is None else runner
    out = runner(spec, width, layers, sweeps, burn, seed=seed, sigmas=sigmas, step_size=step_size, n_mala=n_mala,
                 theta0=theta0, codes_every=codes_every, after_sweep=hook, **runner_kw)
    out["tempering"] = hook.summary()
    return out


def run_chain_with_moves(spec: ModelSpec, width: int, layers: int, sweeps: int, burn: int, *, theory=None,
                         swaps: int = 0, rungs: int = 0, t_max: float = T_MAX, progress=None, reflections: int = 0,
                         hidden_reflections: int = 0, contrast_reflections: int = 0, contrast_from: int = 0,
                         layer_moves: int = 0, layer_pairs: int = 0, **chain_kw) -> dict:
    """One deep chain with the mode-changing moves asked for: ``swaps`` last-layer independence moves from
    ``theory`` per sweep (:func:`validation.deep_swaps.run_deep_chain_with_swaps`), replica exchange in T over
    ``rungs`` >= 2 rungs up to ``t_max`` (:func:`run_tempered_chain`, reporting to ``progress``), both, or
    neither (:func:`run_deep_chain`); ``chain_kw`` go to the chain (seed, theta0, after_sweep, ...).
    ``reflections`` / ``hidden_reflections`` / ``contrast_reflections`` > 0: that many last-layer sign flips /
    hidden-layer flips / last-layer class-contrast reflections per sweep (:class:`validation.reflections.Reflections`,
    before ``after_sweep``; on rung 0 after the exchanges), reported as "reflections" in the result.
    ``layer_moves`` > 0: that many passes of :class:`validation.layer_moves.LayerMoves` per sweep in every hidden
    layer below the last (from sweep ``contrast_from`` on, after the reflections), reported as "layer_moves";
    ``layer_pairs`` > 0: that many pair rotations per sweep in each of those layers (:mod:`validation.layer_pairs`)."""
    if layer_moves or layer_pairs:
        hook = LayerMoves(layer_moves, layers, spec.nonlinearity, after=chain_kw.pop("after_sweep", None),
                          start=contrast_from, pairs=layer_pairs)
        out = run_chain_with_moves(spec, width, layers, sweeps, burn, theory=theory, swaps=swaps, rungs=rungs,
                                   t_max=t_max, progress=progress, reflections=reflections,
                                   hidden_reflections=hidden_reflections, contrast_reflections=contrast_reflections,
                                   contrast_from=contrast_from, after_sweep=hook, **chain_kw)
        out["layer_moves"] = hook.summary()
        return out
    if reflections or hidden_reflections or contrast_reflections:
        hook = Reflections(reflections, spec.nonlinearity, after=chain_kw.pop("after_sweep", None),
                           hidden=hidden_reflections, contrasts=contrast_reflections, contrast_from=contrast_from)
        out = run_chain_with_moves(spec, width, layers, sweeps, burn, theory=theory, swaps=swaps, rungs=rungs,
                                   t_max=t_max, progress=progress, after_sweep=hook, **chain_kw)
        out["reflections"] = hook.summary()
        return out
    swap_kw = dict(theory=theory, swaps=swaps) if swaps else {}
    if rungs:
        if swaps:
            swap_kw["runner"] = run_deep_chain_with_swaps
        return run_tempered_chain(spec, width, layers, sweeps, burn, rungs=rungs, t_max=t_max, progress=progress,
                                  **swap_kw, **chain_kw)
    if swaps:
        return run_deep_chain_with_swaps(spec, width, layers, sweeps, burn, **swap_kw, **chain_kw)
    return run_deep_chain(spec, width, layers, sweeps, burn, **chain_kw)


def combine_tempering(results: list) -> dict:
    """The JSON block ``tempering`` of several tempered chains: per chain the ladder and per pair the
    exchange acceptance, round trips; and their means over chains."""
    per = [r["tempering"] for r in results]
    acc = np.array([[np.nan if a is None else a for a in p["exchange_acceptance"]] for p in per])
    return {"rungs": len(per[0]["temperatures"]), "exchange_acceptance": np.nanmean(acc, axis=0).tolist(),
            "exchange_acceptance_min": float(np.nanmin(acc)), "round_trips": [p["round_trips"] for p in per],
            "temperatures": np.mean([p["temperatures"] for p in per], axis=0).tolist(), "per_chain": per}
