"""Drift of neuron-by-neuron activation patterns during sampling (THEORY §7, the paper's drift claim).

Chains on the 3-class task (classes 32, 16, 16, T = 0.02, σ_a² = 1/64) start from the theory's
single-neuron measure, i.e. at equilibrium, so what changes over sampler time is drift, not
relaxation. Neuron i's pattern is its class-mean activation vector x_i(s) ∈ R³ at sweep s. Rows:
linear, sigmoid (normcdf), ReLU. Columns:

1. the patterns of 30 neurons (columns) at the first snapshot s₀ (top three rows) and at s₀ + Δ_max
   (bottom three rows), same neurons in the same order (ReLU: the most active neurons at s₀);
2. x_ic(s₀ + Δ_max) against x_ic(s₀) for every neuron and class (on the diagonal: no change);
3. the drift D(Δ) = Σ_i |x_i(s+Δ) − x_i(s)|² / Σ_i ⟨|x_j(s+Δ) − x_i(s)|²⟩_j, averaged over s
   (:func:`validation.coding.drift_curve`): 0 when every neuron keeps its pattern, 1 when the
   patterns are as different as those of reshuffled neurons; for ReLU also over the bulk alone
   (outliers, readout norm > 4× median, removed), whose neurons are interchangeable.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import common
from .style import pyplot, save

__all__ = ["main", "drift_values"]

NAME = "fig_drift.png"
SHOW = 30


def _chain(nl, quick):
    spec = common.paper_spec(nl)
    if quick:
        return common.chain(spec, quick, start="theory")
    return common.chain(spec, quick, start="theory", sweeps=2400, burn=400)


def drift_values(quick: bool = True) -> dict:
    """{nonlinearity: drift_curve dict with "sweeps"} of the drift chains of this mode."""
    from validation.coding import drift_curve

    out = {}
    for nl in common.NONLINEARITIES:
        ch = _chain(nl, quick)
        every = ch.snapshot_sweeps[1] - ch.snapshot_sweeps[0]
        n = len(ch.class_means)
        lags = sorted({int(v) for v in np.unique(np.geomspace(1, max(1, int(0.8 * n)), 12).astype(int))})
        d = drift_curve(ch.class_means, lags, ch.readouts[0])
        d["sweeps"] = [lag * every for lag in lags]
        out[nl] = d
    return out


def main(out_dir, quick: bool = True) -> list:
    plt = pyplot()
    out = Path(out_dir)
    fig, axes = plt.subplots(3, 3, figsize=(11.5, 7.6), gridspec_kw={"width_ratios": [1.5, 0.8, 1.0]})
    values = drift_values(quick)
    for row, nl in zip(axes, common.NONLINEARITIES):
        common.log(f"drift: {nl}")
        ch = _chain(nl, quick)
        spec = ch.spec
        d = values[nl]
        lag = d["lags"][-1]
        x0, x1 = ch.class_means[0], ch.class_means[lag]
        idx = common.order_neurons(ch.readouts[0], x0, spec.class_sizes, SHOW, "active" if nl == "relu" else "code")
        name = common.DISPLAY[nl]
        ax = row[0]
        M = np.vstack([x0[idx].T, np.full((1, len(idx)), np.nan), x1[idx].T])
        vmax = float(np.nanmax(np.abs(M))) or 1.0
        signed = float(np.nanmin(M)) < -0.02 * vmax
        im = ax.imshow(M, cmap="RdBu_r" if signed else "magma", vmin=-vmax if signed else 0, vmax=vmax,
                       aspect="auto", interpolation="nearest")
        ax.axhline(3, color="k", lw=2)
        ax.set_yticks([1, 5], [f"sweep {ch.snapshot_sweeps[0]}", f"+{d['sweeps'][-1]}"], fontsize=7)
        ax.set_xlabel("neuron" + (" (most active at the start)" if nl == "relu" else " (sorted by code at the start)"),
                      fontsize=7)
        ax.set_title(f"{name}: class-mean activations (3 classes) of the same neurons", fontsize=8)
        ax.tick_params(axis="x", labelsize=6)
        fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02).ax.tick_params(labelsize=6)
        ax = row[1]
        for c in range(spec.m):
            ax.plot(x0[:, c], x1[:, c], ".", ms=2.5, color=f"C{c}", alpha=0.6, label=f"class {c}")
        lim = [min(x0.min(), x1.min()), max(x0.max(), x1.max())]
        ax.plot(lim, lim, "k-", lw=0.6)
        ax.set_xlabel("x_ic at the start", fontsize=7)
        ax.set_ylabel(f"x_ic after {d['sweeps'][-1]} sweeps", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.set_title(f"{name}: per neuron, start vs later", fontsize=8)
        if nl == common.NONLINEARITIES[0]:
            ax.legend(fontsize=6, markerscale=3)
        ax = row[2]
        ax.plot(d["sweeps"], d["drift"], "o-", ms=3, color="C3", label="all neurons")
        if nl == "relu":
            ax.plot(d["sweeps"], d["drift_bulk"], "s--", ms=3, color="0.4", label="bulk (outliers removed)")
        ax.axhline(1.0, color="k", ls=":", lw=0.8, label="reshuffled neurons")
        ax.set_xscale("log")
        ax.set_ylim(0, 1.15)
        ax.set_xlabel("Δ (sweeps)", fontsize=7)
        ax.set_ylabel("drift D(Δ)", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=6, loc="upper left")
        ax.set_title(f"{name}: D({d['sweeps'][-1]}) = {d['drift'][-1]:.3f}", fontsize=8)
        common.log(f"  drift {nl}: D({d['sweeps'][-1]} sweeps) = {d['drift'][-1]:.4f}"
                   + (f", bulk {d['drift_bulk'][-1]:.3f}" if nl == "relu" else ""))
    ch = _chain("linear", quick)
    fig.suptitle(f"Drift during sampling, classes 32/16/16, T = 0.02, σ_a² = 1/64; N = {ch.net.width}, chains "
                 f"started from the theory's population (equilibrium); {len(ch.class_means)} snapshots", fontsize=9)
    return [save(fig, out / NAME, dpi=75)]


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(main(sys.argv[1] if len(sys.argv) > 1 else "codingschemes_out/figures", "--full" not in sys.argv))
