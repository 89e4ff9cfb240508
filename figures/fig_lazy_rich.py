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

In quick mode the rich chains start at the theory's population, so their agreement with the theory
is a stationarity check (the panel titles and the caption say so); in full mode they start from the
prior (random starts).
"""
from __future__ import annotations

from pathlib import Path
import time

import numpy as np

from theory.observables import full_kernel

from . import common
from .style import figsize, heatmap, pyplot, save, write_sidecar

__all__ = ["main", "caption"]

NAME = "fig_lazy_vs_rich.png"
SCRIPT = "fig_lazy_rich"
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
    heatmap(ax, M, label="K_μν", aspect="equal")
    ax.plot([-0.5, len(M) - 0.5], [-0.5, len(M) - 0.5], color="0.5", lw=0.5)
    ax.set_title(title)
    box = dict(boxstyle="round,pad=0.15", fc="w", ec="none", alpha=0.8)
    ax.text(0.97, 0.03, "sampled", transform=ax.transAxes, ha="right", va="bottom", bbox=box)
    ax.text(0.03, 0.97, "theory", transform=ax.transAxes, ha="left", va="top", bbox=box)
    ax.set_xticks([])
    ax.set_yticks([])


def _raster(ax, rows_theory, rows_sampled, title):
    def norm(X):
        X = np.asarray(X, dtype=float)
        return X / np.maximum(np.max(np.abs(X), axis=1, keepdims=True), 1e-12)

    A, B = norm(rows_theory), norm(rows_sampled)
    M = np.vstack([A, np.full((1, A.shape[1]), np.nan), B])
    heatmap(ax, M, vmax=1.0, label="φ / max|φ|")
    ax.axhline(len(A), color="k", lw=1.5)
    ax.set_title(title)
    ax.set_yticks([len(A) / 2, len(A) + 1 + len(B) / 2], ["theory", "sampled"])
    ax.set_xlabel("training input (by class)")


def main(out_dir, quick: bool = True) -> list:
    from validation.coding import theory_population

    plt = pyplot()
    out = Path(out_dir)
    t0 = time.perf_counter()
    s = common.settings(quick)
    check = " (stationarity)" if s["start"] == "theory" else ""
    fig, axes = plt.subplots(3, 4, figsize=figsize(2, 6.6), gridspec_kw={"width_ratios": [1.1, 1, 1.1, 1]})
    rng = np.random.default_rng(0)
    numbers, chains = {}, {}
    for row, nl in zip(axes, common.NONLINEARITIES):
        common.log(f"lazy vs rich: {nl}")
        E, K_rich, st = _theory_kernels(nl, quick)
        spec = common.binary_spec(nl, quick)
        spec_lazy = common.binary_spec(nl, quick, lazy=True)
        ch_lazy = common.chain(spec_lazy, quick, scaling="standard")
        ch_rich = common.chain(spec, quick)
        # lazy theory neurons: the prior (h ~ N(0, σ_1²) on orthogonal inputs)
        phi_prior = ch_lazy.net.nonlinearity(spec.sigma_w * rng.standard_normal((SHOW, spec.P)))
        lazy_pop, rich_pop = ch_lazy.population(), ch_rich.population()
        th_pop = theory_population(st, ch_rich.net.width, rng)
        by = "active" if nl == "relu" else "code"
        i_th = common.order_neurons(th_pop.readouts, th_pop.class_means, spec.class_sizes, SHOW, by)
        i_sa = common.order_neurons(rich_pop.readouts, rich_pop.class_means, spec.class_sizes, SHOW, by)
        i_lz = common.order_neurons(lazy_pop.readouts, lazy_pop.class_means, spec.class_sizes, SHOW, "code")
        name = common.DISPLAY[nl]
        K_lazy_sa, K_rich_sa = _sampled_kernel(ch_lazy), _sampled_kernel(ch_rich)
        _split(row[0], E, K_lazy_sa, "lazy kernel")
        row[0].set_ylabel(name, fontsize=8)
        _raster(row[1], phi_prior, lazy_pop.activations[i_lz], "lazy activations")
        _split(row[2], K_rich, K_rich_sa, f"rich kernel{check}")
        an_th, an_sa = th_pop.analyse(), rich_pop.analyse()
        _raster(row[3], th_pop.activations[i_th], rich_pop.activations[i_sa],
                "rich activations" + (" (most active)" if by == "active" else ""))
        numbers[nl] = {"contrast": {"lazy_theory": common.block_contrast(E, spec.class_sizes),
                                    "lazy_sampled": common.block_contrast(K_lazy_sa, spec.class_sizes),
                                    "rich_theory": common.block_contrast(K_rich, spec.class_sizes),
                                    "rich_sampled": common.block_contrast(K_rich_sa, spec.class_sizes)},
                       "rich_theory": common.analysis_info(an_th), "rich_sampled": common.analysis_info(an_sa),
                       "theory_source": st.source}
        chains[nl] = {"lazy": common.chain_info(ch_lazy), "rich": common.chain_info(ch_rich)}
    png = save(fig, out / NAME)
    write_sidecar(png, SCRIPT, quick, {"classes": list(s["binary_sizes"]), "temperature": common.PAPER["temperature"],
                                       "width": s["binary_width"], "sweeps": s["binary_sweeps"],
                                       "burn": s["binary_burn"], "rich_start": s["start"], "lazy_start": "random",
                                       "shown_neurons": SHOW, "chains": chains},
                  numbers, build_seconds=round(time.perf_counter() - t0, 1))
    return [png]


def caption(side: dict) -> str:
    """The gallery caption of the sidecar of this figure."""
    st, nb = side["settings"], side["numbers"]
    start = ("The rich chains start at the theory's population, so their agreement with the theory is a "
             "stationarity check, not a test of convergence from random starts." if st["rich_start"] == "theory"
             else "Both chains start from the prior (random starts).")
    rows = "; ".join(f"{common.DISPLAY[nl]}: lazy {v['contrast']['lazy_theory']:.2f} (theory) / "
                     f"{v['contrast']['lazy_sampled']:.2f} (sampled), rich {v['contrast']['rich_theory']:.2f} / "
                     f"{v['contrast']['rich_sampled']:.2f}, rich scheme {v['rich_theory']['label']} / "
                     f"{v['rich_sampled']['label']}" for nl, v in nb.items())
    return (f"Lazy (standard scaling, σ_a = 1) against rich (mean-field, σ_a² = 1/P) networks with one hidden layer "
            f"on a binary task (classes {'/'.join(map(str, st['classes']))}, T = {st['temperature']:g}). Kernels: "
            f"theory above the diagonal, one sampled network (N = {st['width']}, {st['sweeps']} sweeps, "
            f"{st['burn']} burn-in) below; activations of {st['shown_neurons']} neurons per block, each row scaled "
            f"to its largest |φ|. {start} Block contrast of the kernel (0: no class structure, 1: class blocks) and "
            f"label: {rows}.")


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(main(sys.argv[1] if len(sys.argv) > 1 else "codingschemes_out/figures", "--full" not in sys.argv))
