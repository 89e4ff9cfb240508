"""Lazy against non-lazy (rich) networks on a binary task: kernels and last-hidden-layer activations
(the paper's Fig. 1 with one hidden layer; THEORY §2–3, §6).

Rows: linear, sigmoid (normcdf), ReLU. Columns: the kernel K_μν = N^{-1} Σ_i φ(h_iμ) φ(h_iν) of the
lazy network (standard scaling, γ = 1/2: the NNGP kernel E[φφ] of the prior, THEORY §6) and of the
mean-field network (γ = 1: the class-block kernel of the theory, THEORY §3), each drawn with the
theory in the upper triangle and a sampled network in the lower one; next to each kernel the
activations φ(h_iμ) of neurons (rows) on all training inputs (columns, sorted by class), theory
neurons above the white line and sampled neurons below, each neuron scaled by its largest |φ|.
Theory neurons: the prior for the lazy network (features do not move as N → ∞), the mean-field
single-neuron measure (:func:`validation.coding.theory_population`) for the rich one; for ReLU the
rich column shows the most active neurons (the condensate outliers first).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from theory.observables import full_kernel

from . import common
from .style import pyplot, save

__all__ = ["main"]

NAME = "fig_lazy_vs_rich.png"
SHOW = 16  # neurons per block in the activation panels


def _theory_kernels(nl: str, quick: bool):
    from theory.gp import feature_kernel

    spec_lazy = common.binary_spec(nl, quick, lazy=True)
    E, _ = feature_kernel(nl, spec_lazy.sigma_w**2 * spec_lazy.input_kernel())
    spec = common.binary_spec(nl, quick)
    st = common.theory(spec, quick)
    o = st.observables
    return E, full_kernel(spec.class_sizes, o.kernel_diagonal, o.kernel_blocks), st


def _sampled_kernel(ch) -> np.ndarray:
    W, _ = ch.net.unpack(ch.theta)
    phi, _ = ch.net.nonlinearity.eval(ch.net.preactivations(W))
    return phi.T @ phi / ch.net.width


def _split(ax, K_theory, K_sampled, title):
    M = np.triu(K_theory) + np.tril(K_sampled, -1)
    vmax = float(np.max(np.abs(M))) or 1.0
    signed = float(np.min(M)) < -0.05 * vmax
    im = ax.imshow(M, cmap="RdBu_r" if signed else "magma", vmin=-vmax if signed else 0.0, vmax=vmax,
                   interpolation="nearest")
    ax.plot([-0.5, len(M) - 0.5], [-0.5, len(M) - 0.5], color="0.5", lw=0.6)
    ax.set_title(title, fontsize=8)
    box = dict(boxstyle="round,pad=0.15", fc="w", ec="none", alpha=0.8)
    ax.text(0.97, 0.05, "sampled", transform=ax.transAxes, ha="right", fontsize=7, bbox=box)
    ax.text(0.03, 0.92, "theory", transform=ax.transAxes, ha="left", fontsize=7, bbox=box)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.03).ax.tick_params(labelsize=6)


def _raster(ax, rows_theory, rows_sampled, title):
    def norm(X):
        X = np.asarray(X, dtype=float)
        return X / np.maximum(np.max(np.abs(X), axis=1, keepdims=True), 1e-12)

    A, B = norm(rows_theory), norm(rows_sampled)
    gap = np.full((1, A.shape[1]), np.nan)
    M = np.vstack([A, gap, B])
    signed = np.nanmin(M) < -1e-9
    ax.imshow(M, cmap="RdBu_r" if signed else "viridis", vmin=-1 if signed else 0, vmax=1, aspect="auto",
              interpolation="nearest")
    ax.axhline(len(A), color="k", lw=2)
    ax.set_title(title, fontsize=8)
    ax.set_yticks([len(A) / 2, len(A) + 1 + len(B) / 2], ["theory", "sampled"], fontsize=7)
    ax.set_xlabel("training input (sorted by class)", fontsize=7)
    ax.tick_params(axis="x", labelsize=6)


def main(out_dir, quick: bool = True) -> list:
    from validation.coding import theory_population

    plt = pyplot()
    out = Path(out_dir)
    fig, axes = plt.subplots(3, 4, figsize=(11.5, 7.6), gridspec_kw={"width_ratios": [1, 1.25, 1, 1.25]})
    rng = np.random.default_rng(0)
    for row, nl in zip(axes, common.NONLINEARITIES):
        common.log(f"lazy vs rich: {nl}")
        E, K_rich, st = _theory_kernels(nl, quick)
        spec = common.binary_spec(nl, quick)
        spec_lazy = common.binary_spec(nl, quick, lazy=True)
        ch_lazy = common.chain(spec_lazy, quick, scaling="standard")
        ch_rich = common.chain(spec, quick)
        # lazy theory neurons: the prior (h ~ N(0, σ_1²) on orthogonal inputs)
        phi_prior = ch_lazy.net.nonlinearity(spec.sigma_w * rng.standard_normal((SHOW, spec.P)))
        lazy_pop = ch_lazy.population()
        rich_pop = ch_rich.population()
        th_pop = theory_population(st, ch_rich.net.width, rng)
        by = "active" if nl == "relu" else "code"
        i_th = common.order_neurons(th_pop.readouts, th_pop.class_means, spec.class_sizes, SHOW, by)
        i_sa = common.order_neurons(rich_pop.readouts, rich_pop.class_means, spec.class_sizes, SHOW, by)
        i_lz = common.order_neurons(lazy_pop.readouts, lazy_pop.class_means, spec.class_sizes, SHOW, "code")
        name = common.DISPLAY[nl]
        _split(row[0], E, _sampled_kernel(ch_lazy), f"{name}: lazy kernel")
        _raster(row[1], phi_prior, lazy_pop.activations[i_lz], f"{name}: lazy activations")
        _split(row[2], K_rich, _sampled_kernel(ch_rich), f"{name}: rich (mean-field) kernel")
        an_th, an_sa = th_pop.analyse(), rich_pop.analyse()
        _raster(row[3], th_pop.activations[i_th], rich_pop.activations[i_sa],
                f"{name}: rich activations{' (most active)' if by == 'active' else ''}\n"
                f"theory {an_th.label}, sampled {an_sa.label}")
    s = common.settings(quick)
    fig.suptitle(f"Lazy (γ = 1/2, σ_a = 1) vs rich (γ = 1, σ_a² = 1/P) networks, classes "
                 f"{list(s['binary_sizes'])}, T = {common.PAPER['temperature']:g}; sampled N = {s['binary_width']} "
                 f"({'theory' if s['start'] == 'theory' else 'prior'} start for rich, prior for lazy); activation rows scaled to "
                 "their max |φ|", fontsize=9)
    return [save(fig, out / NAME, dpi=75)]


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(main(sys.argv[1] if len(sys.argv) > 1 else "codingschemes_out/figures", "--full" not in sys.argv))
