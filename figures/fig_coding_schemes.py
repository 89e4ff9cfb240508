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
:func:`validation.coding.analyse_population`; the top-5 % share and the participation ratio of the
theory population and of the sampled network are in the sidecar ``fig_coding_schemes.json`` and the
generated caption.
"""
from __future__ import annotations

from pathlib import Path
import time

import numpy as np

from . import common
from .style import figsize, heatmap, pyplot, save, write_sidecar

__all__ = ["main", "caption"]

NAME = "fig_coding_schemes.png"
SCRIPT = "fig_coding_schemes"
SHOW = 20


def _stacked(ax, A, B, title, xlabel, bar, signed=None):
    gap = np.full((1, A.shape[1]), np.nan)
    heatmap(ax, np.vstack([A, gap, B]), signed=signed, label=bar)
    ax.axhline(len(A), color="k", lw=1.5)
    ax.set_yticks([(len(A) - 1) / 2, len(A) + 1 + (len(B) - 1) / 2], ["theory", "sampled"])
    ax.set_title(title)
    ax.set_xlabel(xlabel)


def _outputs(ax, spec, f, f_th, first):
    for r in range(spec.m):
        ax.plot(np.arange(spec.P), f[:, r], ".", ms=2.5, color=f"C{r}", label=f"output {r}" if first else None)
        ax.plot(np.arange(spec.P), f_th[:, r], "-", lw=1, color=f"C{r}")
    ax.plot([], [], "k.", label="sampled" if first else None)
    ax.plot([], [], "k-", label="theory" if first else None)
    ax.set_ylim(-0.3, 1.3)
    ax.set_xlabel("training input μ (by class)")
    ax.set_ylabel("f_r(x_μ)")
    if first:
        ax.legend(ncol=2, loc="upper right", handlelength=1.2, columnspacing=0.8)


def main(out_dir, quick: bool = True) -> list:
    from validation.coding import theory_population

    plt = pyplot()
    out = Path(out_dir)
    t0 = time.perf_counter()
    fig, axes = plt.subplots(3, 3, figsize=figsize(2, 7.0), gridspec_kw={"width_ratios": [1.0, 1.5, 1.1]})
    numbers, chains, sources = {}, {}, {}
    for k, (row, nl) in enumerate(zip(axes, common.NONLINEARITIES)):
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
        scheme = a_th.label if a_th.label == a_sa.label else f"{a_th.label} (theory), {a_sa.label} (sampled)"
        _stacked(row[0], th.readouts[:, i_th], sampled.readouts[:, i_sa], f"{name}: {scheme}",
                 "neuron" + (" (most active first)" if by == "active" else " (by code)"), "readout a_ri", signed=True)
        row[0].set_yticks([1, 5], ["theory", "sampled"])
        _stacked(row[1], th.activations[i_th], sampled.activations[i_sa], "activations φ(h_iμ)",
                 "training input μ (by class)", "φ")
        f_th = np.asarray(st.observables.outputs)[np.repeat(np.arange(spec.m), spec.class_sizes)]
        _outputs(row[2], spec, ch.mean_output(), f_th, k == 0)
        row[2].set_title("outputs")
        numbers[nl] = {"theory": common.analysis_info(a_th), "sampled": common.analysis_info(a_sa),
                       "f_cc_theory": np.diag(np.asarray(st.observables.outputs)).tolist(),
                       "f_cc_sampled": [float(np.mean(ch.mean_output()[np.repeat(np.arange(spec.m), spec.class_sizes)
                                                                        == c, c])) for c in range(spec.m)]}
        chains[nl] = common.chain_info(ch)
        sources[nl] = st.source
        common.log(f"  {nl}: theory {a_th.summary()}; sampled {a_sa.summary()}")
    png = save(fig, out / NAME)
    s = common.settings(quick)
    write_sidecar(png, SCRIPT, quick, {"task": "classes 32/16/16, T = 0.02, σ_a² = 1/64, σ_1 = 1, mean-field",
                                       "width": s["width"], "sweeps": s["sweeps"], "burn": s["burn"],
                                       "start": s["start"], "shown_neurons": SHOW, "theory_source": sources,
                                       "chains": chains}, numbers, build_seconds=round(time.perf_counter() - t0, 1))
    return [png]


def caption(side: dict) -> str:
    """The gallery caption of the sidecar of this figure."""
    st, nb = side["settings"], side["numbers"]
    rows = []
    for nl, v in nb.items():
        th, sa = v["theory"], v["sampled"]
        rows.append(f"{common.DISPLAY[nl]}: theory {th['label']} (top-{th['top_k']} share {th['top_k_share']:.2f}, "
                    f"PR {th['participation_ratio']:.2f}), sampled {sa['label']} (top-{sa['top_k']} share "
                    f"{sa['top_k_share']:.2f}, PR {sa['participation_ratio']:.2f})")
    start = ("started at the theory's population, so agreement is a stationarity check" if st["start"] == "theory"
             else "started from the prior (random starts)")
    return (f"Coding schemes in the paper's regime ({st['task']}). Rows: linear, sigmoid, ReLU. Left: readouts of "
            f"{st['shown_neurons']} neurons (theory above the line, one sampled network below; ReLU: most active "
            f"first); middle: their activations on the training inputs; right: the outputs, sampled (dots) and "
            f"theory (lines). Sampled networks: N = {st['width']}, {st['sweeps']} sweeps ({st['burn']} burn-in), "
            f"{start}. " + "; ".join(rows) + ".")


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(main(sys.argv[1] if len(sys.argv) > 1 else "codingschemes_out/figures", "--full" not in sys.argv))
