"""Coding schemes on the 3-class task (classes 1/2, 1/4, 1/4): the paper's Fig. 2 analogue.

Task: classes 32, 16, 16, T = 0.02, σ_a² = 1/64 (THEORY §4: σ̄_a = 1), mean-field scaling.
Rows: linear, sigmoid (normcdf), ReLU. Columns:

1. readout vectors a_i (rows: outputs r; columns: neurons), theory neurons above the black line
   (:func:`validation.coding.theory_population`, ReLU outliers included), sampled ones below;
2. activations φ(h_iμ) of the same neurons on all training inputs, sorted by class;
3. the network output f_r(x_μ) on every training input: sampled posterior mean (markers) and the
   theory's class value f_cr (lines).

Neurons shown: a random subset sorted by code (linear, sigmoid) or the most active ones, largest
output contribution first (ReLU). Each row title gives the label of
:func:`validation.coding.analyse_population` for the theory population and for the sampled network,
with the top-5 % share and the participation ratio.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import common
from .style import pyplot, save

__all__ = ["main"]

NAME = "fig_coding_schemes.png"
SHOW = 20


def _stacked(ax, A, B, title, xlabel, signed=None):
    gap = np.full((1, A.shape[1]), np.nan)
    M = np.vstack([A, gap, B])
    vmax = float(np.nanmax(np.abs(M))) or 1.0
    if signed is None:
        signed = float(np.nanmin(M)) < -0.02 * vmax
    im = ax.imshow(M, cmap="RdBu_r" if signed else "magma", vmin=-vmax if signed else 0.0, vmax=vmax,
                   aspect="auto", interpolation="nearest")
    ax.axhline(len(A), color="k", lw=2)
    ax.set_yticks([(len(A) - 1) / 2, len(A) + 1 + (len(B) - 1) / 2], ["theory", "sampled"], fontsize=7)
    ax.set_title(title, fontsize=8)
    ax.set_xlabel(xlabel, fontsize=7)
    ax.tick_params(axis="x", labelsize=6)
    ax.figure.colorbar(im, ax=ax, fraction=0.04, pad=0.02).ax.tick_params(labelsize=6)


def main(out_dir, quick: bool = True) -> list:
    from validation.coding import theory_population

    plt = pyplot()
    out = Path(out_dir)
    fig, axes = plt.subplots(3, 3, figsize=(12, 8.2), gridspec_kw={"width_ratios": [1.0, 1.5, 1.2]})
    s = common.settings(quick)
    for row, nl in zip(axes, common.NONLINEARITIES):
        common.log(f"coding schemes: {nl}")
        spec = common.paper_spec(nl)
        st = common.theory(spec, quick)
        ch = common.chain(spec, quick)
        sampled = ch.population()
        th = theory_population(st, ch.net.width, np.random.default_rng(1))
        by = "active" if nl == "relu" else "code"
        i_th = common.order_neurons(th.readouts, th.class_means, spec.class_sizes, SHOW, by)
        i_sa = common.order_neurons(sampled.readouts, sampled.class_means, spec.class_sizes, SHOW, by)
        a_th, a_sa = th.analyse(), sampled.analyse()
        name = common.DISPLAY[nl]
        _stacked(row[0], th.readouts[:, i_th], sampled.readouts[:, i_sa],
                 f"{name}: readouts a_ri (3 rows each)", "neuron" + (" (most active first)" if by == "active" else
                                                                      " (sorted by code)"), signed=True)
        row[0].set_yticks([1, 5], ["theory", "sampled"], fontsize=7)
        _stacked(row[1], th.activations[i_th], sampled.activations[i_sa],
                 f"{name}: activations φ(h_iμ) of {SHOW} neurons each", "training input μ (sorted by class)")
        ax = row[2]
        f = ch.mean_output()
        labels = np.repeat(np.arange(spec.m), spec.class_sizes)
        f_th = np.asarray(st.observables.outputs)[labels]  # theory f_{c(μ), r}
        for r in range(spec.m):
            ax.plot(np.arange(spec.P), f[:, r], ".", ms=3, color=f"C{r}")
            ax.plot(np.arange(spec.P), f_th[:, r], "-", lw=1, color=f"C{r}")
        ax.set_ylim(-0.3, 1.3)
        ax.set_xlabel("training input μ (sorted by class)", fontsize=7)
        ax.set_title(f"{name}: outputs r = 0, 1, 2 (blue, orange, green)\ndots: sampled f_r(x_μ), lines: theory",
                     fontsize=8)
        ax.tick_params(labelsize=6)
        ax.text(0.5, 0.5, f"theory: {a_th.label} (top-{a_th.top_k} {a_th.top_k_share:.2f}, PR "
                f"{a_th.participation_ratio:.2f})\nsampled: {a_sa.label} (top-{a_sa.top_k} {a_sa.top_k_share:.2f}, "
                f"PR {a_sa.participation_ratio:.2f})", transform=ax.transAxes, fontsize=6.5, va="center", ha="center",
                bbox=dict(fc="w", ec="0.7", alpha=0.9))
        common.log(f"  {nl}: theory {a_th.summary()}; sampled {a_sa.summary()}")
    src = {nl: common.theory(common.paper_spec(nl), quick).source for nl in common.NONLINEARITIES}
    fig.suptitle(f"Coding schemes, classes 32/16/16, T = 0.02, σ_a² = 1/64; sampled N = {s['width']} "
                 f"({s['start']} start, {s['sweeps']} sweeps); theory: ReLU/sigmoid {src['relu'].split(' (')[0]}",
                 fontsize=9)
    return [save(fig, out / NAME, dpi=75)]


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(main(sys.argv[1] if len(sys.argv) > 1 else "codingschemes_out/figures", "--full" not in sys.argv))
