"""Shared settings, caches and helpers of the figure scripts (figures/fig_*.py).

Every script has ``main(out_dir, quick) -> list of written paths``. Within one Python process the
theory solutions and sampled chains are cached here, so :func:`figures.gallery.run_all` solves and
samples each task once for all figures.

Tasks (THEORY §3, orthogonal class data):
* the paper's regime: classes 32, 16, 16 (ρ = 1/2, 1/4, 1/4), T = 0.02, σ_1 = 1,
  σ_a² = 1/64 (σ̄_a = 1);
* a binary task: classes P/2, P/2 with σ_a² = 1/P in the mean-field scaling and σ_a = 1 in the
  standard ("lazy") scaling, same T.

Modes:
* quick: theory from the large-P solution (ReLU, normcdf; seconds) and the finite-P closed form
  (linear); chains of N = 100 started from the theory's population (a stationarity run: the sampler
  is checked to stay there) with a short burn-in for the step size;
* full: theory from the exact finite-P solver where it converges (falling back to large P, stated
  in the titles); chains of N = 300 started from the prior (random starts) with a long burn-in.
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np

from theory.spec import ModelSpec

__all__ = ["NONLINEARITIES", "DISPLAY", "settings", "paper_spec", "binary_spec", "theory", "chain", "log",
           "order_neurons", "chain_info", "analysis_info", "block_contrast"]

NONLINEARITIES = ("linear", "normcdf", "relu")
DISPLAY = {"linear": "linear", "normcdf": "sigmoid (normcdf)", "relu": "ReLU"}
PAPER = dict(sigma_w=1.0, sigma_a=0.125, temperature=0.02, class_sizes=(32, 16, 16))

_SETTINGS = {
    True: dict(width=100, sweeps=500, burn=150, every=5, start="theory", source="large-p", binary_sizes=(16, 16),
               binary_width=100, binary_sweeps=300, binary_burn=100, theory_draws=20),
    False: dict(width=300, sweeps=4000, burn=2000, every=20, start="random", source="auto", binary_sizes=(32, 32),
                binary_width=300, binary_sweeps=2000, binary_burn=1000, theory_draws=20),
}
_THEORY: dict = {}
_CHAINS: dict = {}
_CHAIN_SETTINGS: dict = {}  # id(chain) -> the settings that made it (for the sidecars)
_T0 = time.perf_counter()


def settings(quick: bool) -> dict:
    return dict(_SETTINGS[bool(quick)])


def log(msg: str) -> None:
    """Progress on stderr with the time since the first figure started."""
    print(f"[figures {time.perf_counter() - _T0:6.1f} s] {msg}", file=sys.stderr, flush=True)


def paper_spec(nonlinearity: str) -> ModelSpec:
    return ModelSpec(nonlinearity=nonlinearity, **PAPER)


def binary_spec(nonlinearity: str, quick: bool, lazy: bool = False) -> ModelSpec:
    sizes = settings(quick)["binary_sizes"]
    P = sum(sizes)
    return ModelSpec(nonlinearity=nonlinearity, sigma_w=1.0, sigma_a=1.0 if lazy else 1.0 / math.sqrt(P),
                     temperature=PAPER["temperature"], class_sizes=sizes)


def theory(spec: ModelSpec, quick: bool):
    """The cached :class:`validation.coding.TheoryState` of ``spec`` for this mode."""
    from validation.coding import theory_state

    source = settings(quick)["source"] if spec.nonlinearity != "linear" else "auto"
    return theory_state(spec, source=source, cache=_THEORY, progress=log)


def chain(spec: ModelSpec, quick: bool, *, width=None, sweeps=None, burn=None, start=None,
          scaling: str = "mean-field", seed: int = 0):
    """The cached :class:`validation.coding.ChainResult` of ``spec`` (settings of the mode unless given)."""
    from validation.coding import run_chain

    s = settings(quick)
    binary = spec.m == 2
    width = width or s["binary_width" if binary else "width"]
    sweeps = sweeps or s["binary_sweeps" if binary else "sweeps"]
    burn = burn if burn is not None else s["binary_burn" if binary else "burn"]
    start = start or (s["start"] if scaling == "mean-field" else "random")
    every = max(1, s["every"] if not binary else 5)
    key = (tuple(sorted((k, str(v)) for k, v in spec.to_dict().items())), width, sweeps, burn, start, scaling, seed,
           every)
    if key not in _CHAINS:
        th = theory(spec, quick) if start == "theory" else None
        t0 = time.perf_counter()
        _CHAINS[key] = run_chain(spec, width, sweeps, burn, seed=seed, scaling=scaling, start=start, theory=th,
                                 snapshot_every=every)
        ch = _CHAINS[key]
        _CHAIN_SETTINGS[id(ch)] = dict(width=width, sweeps=sweeps, burn=burn, start=start, scaling=scaling,
                                       seed=seed, snapshot_every=every)
        log(f"chain {spec.nonlinearity} {scaling} P = {spec.P} N = {width}: {sweeps} sweeps from {start} start "
            f"in {time.perf_counter() - t0:.1f} s (acceptance {ch.acceptance:.2f}, step {ch.step_size:.3g})")
    return _CHAINS[key]


def order_neurons(readouts, class_means, class_sizes, n: int, by: str = "code") -> np.ndarray:
    """Indices of ``n`` neurons to show: ``by="active"`` the largest output contributions (ReLU: the
    most active neurons), else a random subset sorted by code and then by strongest class."""
    from validation.coding import neuron_code_strings, output_contributions

    N = np.asarray(readouts).shape[1]
    n = min(n, N)
    if by == "active":
        c = output_contributions(readouts, class_means, class_sizes)
        return np.argsort(-c)[:n]
    idx = np.random.default_rng(0).choice(N, n, replace=False)
    codes = neuron_code_strings(class_means)[idx]
    top = np.argmax(np.abs(np.asarray(class_means)[idx]), axis=1)
    return idx[np.lexsort((top, codes))]


def chain_info(ch) -> dict:
    """The settings and sampler numbers of a chain of :func:`chain` (for the JSON sidecars)."""
    out = dict(_CHAIN_SETTINGS.get(id(ch), {}))
    out.update(acceptance=float(ch.acceptance), step_size=float(ch.step_size), seconds=round(float(ch.seconds), 1),
               snapshots=len(ch.class_means))
    return out


def analysis_info(an) -> dict:
    """The numbers of a :class:`validation.coding.CodingAnalysis` shown in figures and captions."""
    return {"label": an.label, "top_k": int(an.top_k), "top_k_share": float(an.top_k_share),
            "participation_ratio": float(an.participation_ratio), "code_robustness": float(an.code_robustness),
            "codes": {k: float(v) for k, v in list(an.code_fractions.items())[:4]}}


def block_contrast(K, class_sizes) -> float:
    """(mean within-class off-diagonal − mean between-class entry) / mean diagonal of a kernel: 0 for a
    kernel without class structure, 1 for a perfect class-block kernel."""
    K = np.asarray(K, dtype=np.float64)
    labels = np.repeat(np.arange(len(class_sizes)), class_sizes)
    same = labels[:, None] == labels[None, :]
    off = ~np.eye(len(K), dtype=bool)
    return float((K[same & off].mean() - K[~same].mean()) / np.mean(np.diag(K)))
