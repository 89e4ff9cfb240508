"""Shared settings, caches and helpers of the deep-network figures (fig_deep_*.py; THEORY §5, §7).

Like :mod:`figures.common`, chains are cached per process, so a figure run samples each deep task
once. Deep networks are sampled with :func:`validation.deep.run_deep_chain` (collapsed MALA on all
hidden layers, exact readout draws, one BLAS thread) from the prior (random start): there is no
deep nonlinear theory to start from, and the deep linear theory (:mod:`solvers.deep.linear`) is
drawn next to the sampled linear networks.

Tasks: orthogonal class data, readout prior scaled with the data, σ_a² = 1/P (mean-field) as in the
paper's regime (THEORY §4), σ_ℓ = 1 in every hidden layer.

:func:`deep_chain` runs the burn-in (step adapted to acceptance 0.574, then frozen) and then
``states`` chunks of ``every`` sweeps, keeping each chunk's end state: every hidden layer's
activations Φ_ℓ (N × P) and the readout a (m × N). Kernels are averaged over these states; codes,
top-5 % shares and labels (:func:`validation.coding.analyse_population`) are computed per state.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
import math
import time

import numpy as np

from theory.observables import full_kernel
from theory.spec import ModelSpec

from . import common
from .style import SEQUENTIAL, heatmap

__all__ = ["deep_spec", "DeepChain", "deep_chain", "layer_analysis", "activity_analysis", "layer_summary",
           "split_kernel", "raster", "order_rows", "deep_nngp_kernels", "deep_linear_kernels", "deep_nonlinear_kernels",
           "SINGLE_CHAIN"]

#: title text of every deep figure: each network is sampled by one chain, so no R̂ can be computed
SINGLE_CHAIN = "one chain per network: convergence not diagnosed (no R̂)"

_CHAINS: dict = {}


def deep_spec(nonlinearity: str, class_sizes, temperature: float, lazy: bool = False) -> ModelSpec:
    """Orthogonal class data; σ_a² = 1/P (mean-field) or σ_a = 1 (lazy, standard scaling)."""
    P = int(sum(class_sizes))
    return ModelSpec(nonlinearity=nonlinearity, sigma_w=1.0, sigma_a=1.0 if lazy else 1.0 / math.sqrt(P),
                     temperature=temperature, class_sizes=tuple(int(c) for c in class_sizes))


@dataclass
class DeepChain:
    """The kept states of one deep chain (module docstring)."""

    spec: ModelSpec
    width: int
    layers: int
    scaling: str
    burn: int
    every: int
    step_size: float
    acceptance: float
    seconds: float
    activations: list = field(default_factory=list)  # per state: [Φ_1, ..., Φ_L] (N × P each)
    readouts: list = field(default_factory=list)  # per state: a (m × N)
    draws: list = field(default_factory=list)  # per sweep after burn-in: validation.deep.observables_vector

    @property
    def sweeps(self) -> int:
        return self.burn + self.every * len(self.activations)

    def kernel(self, ell: int, state=None) -> np.ndarray:
        """K_ℓ = Φ_ℓᵀΦ_ℓ/N (P × P) of layer ``ell`` (1..L): mean over the kept states, or one state."""
        states = range(len(self.activations)) if state is None else [state]
        return np.mean([self.activations[s][ell - 1].T @ self.activations[s][ell - 1] for s in states],
                       axis=0) / self.width

    def class_means(self, ell: int, state: int = -1) -> np.ndarray:
        labels = np.repeat(np.arange(self.spec.m), self.spec.class_sizes)
        phi = self.activations[state][ell - 1]
        return np.stack([phi[:, labels == c].mean(axis=1) for c in range(self.spec.m)], axis=1)

    def mean_outputs(self) -> np.ndarray:
        """Posterior-mean f per class (m × m, [c, r]) from the draws."""
        m = self.spec.m
        return np.mean(np.asarray(self.draws)[:, :m * m], axis=0).reshape(m, m)


def deep_chain(spec: ModelSpec, width: int, layers: int, burn: int, states: int, every: int, *,
               scaling: str = "mean-field", seed: int = 0, progress=common.log) -> DeepChain:
    """Cached :class:`DeepChain`: ``burn`` adaptive sweeps from the prior, then ``states`` × ``every``
    sweeps at the frozen step, keeping the state after each chunk."""
    from validation.deep import run_deep_chain

    key = (tuple(sorted((k, str(v)) for k, v in spec.to_dict().items())), width, layers, burn, states, every,
           scaling, seed)
    if key in _CHAINS:
        return _CHAINS[key]
    t0 = time.perf_counter()
    r = run_deep_chain(spec, width, layers, burn + 1, burn, seed=seed, scaling=scaling, codes_every=0)
    step = r["step_size"]
    out = DeepChain(spec=spec, width=width, layers=layers, scaling=scaling, burn=burn + 1, every=every,
                    step_size=step, acceptance=0.0, seconds=0.0)
    theta, acc = r["theta"], []
    for k in range(states):
        r = run_deep_chain(spec, width, layers, every, 0, seed=seed * 100_003 + k + 1, scaling=scaling,
                           step_size=step, codes_every=0, theta0=theta, adapt=False)
        theta = r["theta"]
        acc.append(r["acceptance"])
        out.draws.extend(r["draws"])
        acts, a = _state(spec, width, layers, scaling, theta)
        out.activations.append(acts)
        out.readouts.append(a)
    out.acceptance = float(np.mean(acc)) if acc else float("nan")
    out.seconds = time.perf_counter() - t0
    if progress is not None:
        progress(f"deep chain {spec.nonlinearity} {scaling} L = {layers} classes {list(spec.class_sizes)} "
                 f"N = {width}: {out.sweeps} sweeps in {out.seconds:.1f} s (acceptance {out.acceptance:.2f}, "
                 f"step {step:.3g})")
    _CHAINS[key] = out
    return out


def _state(spec, width, layers, scaling, theta):
    from validation.deep import DeepNetwork

    net = DeepNetwork(spec, width=width, layers=layers, scaling=scaling)
    _, a = net.unpack(theta)
    return [np.array(phi) for phi in net.activations(theta)], np.array(a)


def layer_analysis(chain: DeepChain, ell: int, state: int = -1):
    """:func:`validation.coding.analyse_population` of layer ``ell`` in one state.

    The last hidden layer uses its readout (top-5 % share of the output). A layer below it has no
    readout of its own: all readouts are set to 1, so the contribution of neuron i is its class-
    weighted mean |activation| Σ_c ρ_c |φ̄_ic| and the top-5 % share is a share of the activity.
    """
    from validation.coding import analyse_population

    x = chain.class_means(ell, state)
    a = chain.readouts[state] if ell == chain.layers else np.ones((chain.spec.m, chain.width))
    return analyse_population(a, x, chain.spec.class_sizes)


def activity_analysis(chain: DeepChain, ell: int, state: int = -1):
    """As :func:`layer_analysis` with readouts 1 in every layer (the activity share)."""
    from validation.coding import analyse_population

    return analyse_population(np.ones((chain.spec.m, chain.width)), chain.class_means(ell, state),
                              chain.spec.class_sizes)


def layer_summary(chain: DeepChain, ell: int, states=None) -> dict:
    """Label counts, mean top-5 % share (output share in the last layer, activity share below),
    mean activity top-5 % share, mean code robustness and the code fractions of the last state,
    over the last ``states`` kept states (all by default)."""
    n = len(chain.activations)
    idx = range(n - (states or n), n)
    an = [layer_analysis(chain, ell, s) for s in idx]
    act = [activity_analysis(chain, ell, s) for s in idx]
    labels = [a.label for a in an]
    top = Counter(labels).most_common(1)[0][0]  # ties: the label seen first (deterministic)
    k = labels.count(top)
    return {"layer": ell, "label": top, "label_share": k / len(labels),
            "label_text": top if k == len(labels) else f"{top} ({k}/{len(labels)} states)",
            "top_share": float(np.mean([a.top_k_share for a in an])),
            "activity_share": float(np.mean([a.top_k_share for a in act])),
            "robustness": float(np.mean([a.code_robustness for a in an])),
            "codes": an[-1].code_fractions, "top_k": an[-1].top_k, "output": ell == chain.layers}


def order_rows(class_means, contributions, n: int, by: str = "code") -> np.ndarray:
    """``n`` neurons to show: ``by="active"`` the largest contributions first; else a random subset
    sorted by code and then by strongest class (as :func:`figures.common.order_neurons`)."""
    from validation.coding import neuron_code_strings

    x = np.asarray(class_means)
    N = len(x)
    n = min(n, N)
    if by == "active":
        return np.argsort(-np.asarray(contributions))[:n]
    idx = np.random.default_rng(0).choice(N, n, replace=False)
    codes = neuron_code_strings(x)[idx]
    top = np.argmax(np.abs(x[idx]), axis=1)
    return idx[np.lexsort((top, codes))]


def split_kernel(ax, upper, lower, title, upper_label="theory", lower_label="sampled"):
    """Kernel panel: ``upper`` in the upper triangle (with diagonal), ``lower`` below it; one colour scale."""
    M = np.triu(upper) + np.tril(lower, -1)
    heatmap(ax, M)
    if upper_label != lower_label:
        ax.plot([-0.5, len(M) - 0.5], [-0.5, len(M) - 0.5], color="0.5", lw=0.5)
        box = dict(boxstyle="round,pad=0.15", fc="w", ec="none", alpha=0.8)
        ax.text(0.97, 0.03, lower_label, transform=ax.transAxes, ha="right", va="bottom", bbox=box)
        ax.text(0.03, 0.97, upper_label, transform=ax.transAxes, ha="left", va="top", bbox=box)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])


def raster(ax, rows, class_sizes, title, xlabel="training input μ (by class)", normalise=False):
    """Activations of neurons (rows) on all training inputs (columns, sorted by class); class borders
    as white lines. ``normalise``: each row divided by its largest |φ|."""
    X = np.asarray(rows, dtype=float)
    if normalise:
        X = X / np.maximum(np.max(np.abs(X), axis=1, keepdims=True), 1e-12)
    im = heatmap(ax, X, label="φ / max|φ|" if normalise else None)
    signed = im.get_cmap().name != SEQUENTIAL
    for b in np.cumsum(class_sizes)[:-1]:
        ax.axvline(b - 0.5, color="w" if not signed else "k", lw=0.6)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("neuron")


def deep_nngp_kernels(nonlinearity: str, P: int, layers: int, sigmas=None) -> list:
    """Lazy (N → ∞, standard scaling) kernels of every hidden layer on orthogonal inputs (K0 = I):
    K_ℓ = E[φ(h)φ(h)ᵀ], h ~ N(0, σ_ℓ² K_{ℓ-1}) (THEORY §6, layer by layer; the lazy posterior does
    not move the hidden layers)."""
    from theory.gp import feature_kernel

    sig = sigmas or (1.0,) * layers
    K, out = np.eye(P), []
    for s in sig:
        K, _ = feature_kernel(nonlinearity, s * s * K)
        out.append(K)
    return out


def deep_linear_kernels(spec: ModelSpec, layers: int) -> list:
    """Deep linear mean-field theory (:func:`solvers.deep.linear.solve_deep_linear_classes`): the P × P
    kernel of every hidden layer, and the solution."""
    from solvers.deep.linear import solve_deep_linear_classes

    sol = solve_deep_linear_classes(spec, layers)
    ks = []
    for ell in range(1, layers + 1):
        o = sol.layer_observables(ell)
        ks.append(full_kernel(spec.class_sizes, o.kernel_diagonal, o.kernel_blocks))
    return ks, sol


def deep_nonlinear_kernels(spec: ModelSpec, layers: int):
    """Deep nonlinear class-block theory (:func:`solvers.deep.nonlinear.solve_deep_nonlinear`, THEORY §5):
    the P × P kernel of every hidden layer and the solution, or ``(None, solution)`` when the solve did
    not converge (the figure then shows sampling only)."""
    from solvers.deep.nonlinear import solve_deep_nonlinear

    sol = solve_deep_nonlinear(spec, layers)
    if not sol.converged:
        return None, sol
    ks = []
    for ell in range(1, layers + 1):
        o = sol.layer_observables(ell)
        ks.append(full_kernel(spec.class_sizes, o.kernel_diagonal, o.kernel_blocks))
    return ks, sol
