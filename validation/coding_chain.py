"""One chain of collapsed sweeps of a one-layer network with snapshots of its neurons (THEORY §7):
the sampling behind the coding-scheme figures (:func:`run_chain`).

The W step size is adapted by dual averaging to MALA's acceptance 0.574 during burn-in only; the
chain starts from the prior or from a theory population (:mod:`validation.populations`).
"""
from __future__ import annotations

from dataclasses import dataclass
import sys
import time

import numpy as np

from theory.spec import ModelSpec

from .networks import Network
from .populations import Population, TheoryState, network_population, theory_population

__all__ = ["ChainResult", "run_chain"]


@dataclass
class ChainResult:
    """One collapsed-MALA chain: its final state, snapshots and settings."""

    spec: ModelSpec
    net: Network
    theta: np.ndarray  # final state
    snapshot_sweeps: list  # sweep index of each snapshot
    class_means: list  # per snapshot, N × m
    readouts: list  # per snapshot, m × N
    outputs: list  # per snapshot, P × m
    acceptance: float
    step_size: float
    seconds: float
    start: str

    def population(self) -> Population:
        return network_population(self.net, self.theta)

    def mean_output(self) -> np.ndarray:
        """Posterior mean of f (P × m) over the snapshots."""
        return np.mean(self.outputs, axis=0)


def run_chain(spec: ModelSpec, width: int, sweeps: int, burn: int, *, seed: int = 0, scaling: str = "mean-field",
              start: str = "random", theory: TheoryState | None = None, snapshot_every: int = 5,
              step_size: float = 0.05, n_mala: int = 5, label: str = "", progress: bool = False) -> ChainResult:
    """A chain of collapsed sweeps (:func:`validation.collapsed.collapsed_sweep`).

    The W step size is adapted by dual averaging to MALA's acceptance 0.574 during ``burn`` sweeps,
    then frozen (as :func:`validation.report.chain_job`). ``start``: "random" (prior draw) or
    "theory" (neurons from :func:`theory_population` of ``theory``, outliers included). Snapshots of
    the class-mean activations, readouts and outputs every ``snapshot_every`` sweeps after burn-in.
    """
    if not 0 <= burn < sweeps:
        raise ValueError(f"burn must be in [0, sweeps={sweeps}) (got {burn})")
    net = Network(spec, width=width, scaling=scaling)
    rng = np.random.default_rng([seed, width, 0 if start == "random" else 1])
    if start == "random":
        theta = net.prior_sample(rng)
    elif start == "theory":
        if theory is None:
            raise ValueError("start='theory' needs a TheoryState")
        pop = theory_population(theory, width, rng)
        theta = net.pack(pop.preactivations, pop.readouts)  # orthogonal inputs with N0 = P: W = h
    else:
        raise ValueError(f"start must be 'random' or 'theory' (got {start!r})")
    with _one_blas_thread():
        return _run(spec, net, theta, rng, sweeps, burn, snapshot_every, step_size, n_mala, label, progress, start)


def _one_blas_thread():
    """BLAS limited to one thread: the matrices are small (P × P, N × P) and threads only
    oversubscribe the cores (docs/devlog.md)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


def _run(spec, net, theta, rng, sweeps, burn, snapshot_every, step_size, n_mala, label, progress, start):
    from .collapsed import collapsed_sweep
    from .samplers import StepSizeAdaptation

    width = net.width
    t0 = time.perf_counter()
    adapt = StepSizeAdaptation(step_size) if burn > 0 else None
    step = step_size
    acc = []
    snaps_s, cms, ros, fs = [], [], [], []
    labels = np.repeat(np.arange(spec.m), spec.class_sizes)
    for s in range(sweeps):
        theta, a = collapsed_sweep(rng, net, theta, step_size=step, n_mala=n_mala)
        if adapt is not None and s < burn:
            adapt.update(a)
            step = adapt.step_size if s < burn - 1 else adapt.final_step_size
        else:
            acc.append(a)
        if s >= burn and (s - burn) % snapshot_every == 0:
            W, ro = net.unpack(theta)
            phi, _ = net.nonlinearity.eval(net.preactivations(W))
            snaps_s.append(s)
            cms.append(np.stack([phi[:, labels == c].mean(axis=1) for c in range(spec.m)], axis=1))
            ros.append(np.array(ro))
            fs.append((ro @ phi).T / width**net.gamma)
        if progress and (s + 1) % max(1, sweeps // 10) == 0:
            print(f"\r[chain {label}] sweep {s + 1}/{sweeps}", end="", file=sys.stderr, flush=True)
    if progress:
        print(f"\r[chain {label}] {sweeps} sweeps, {time.perf_counter() - t0:.1f} s, acceptance "
              f"{np.mean(acc) if acc else float('nan'):.2f}", file=sys.stderr)
    return ChainResult(spec=spec, net=net, theta=theta, snapshot_sweeps=snaps_s, class_means=cms, readouts=ros,
                       outputs=fs, acceptance=float(np.mean(acc)) if acc else float("nan"), step_size=step,
                       seconds=time.perf_counter() - t0, start=start)
