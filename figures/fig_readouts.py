"""Readout-weight distributions across neurons, theory against sampling (THEORY §2–4).

Task: classes 32, 16, 16, T = 0.02, σ_a² = 1/64, mean-field scaling. Rows: linear, sigmoid
(normcdf), ReLU. Left: the readouts (a_0, a_1) of every neuron, theory neurons in grey
(:func:`validation.coding.theory_population`, several populations of the sampled width N pooled)
and sampled neurons in colour (all snapshots after burn-in pooled). Right: histogram of all readout
components a_ri (on a symlog axis, linear within ±1, when some |a_ri| > 4), theory against sampling, with the components
of the theory's branches a_γ (large-P source) and, for ReLU, of the outliers r_j â_j,
r_j = (N λ_j)^{1/2}/σ_1, as dotted lines.
The expected pictures: a Gaussian cloud for linear (p(a) = N(0, U)), discrete branches for the
sigmoid (one mode per code, THEORY §4), a bulk at the prior scale plus a few outliers O(√N) for
ReLU (the condensate). The fraction of neurons whose norm exceeds 4× the median (outliers in the
sense of :mod:`validation.sparse`) is written to the sidecar and the generated caption.
"""
from __future__ import annotations

from pathlib import Path
import time

import numpy as np

from . import common
from .style import figsize, pyplot, save, write_sidecar

__all__ = ["main", "caption"]

NAME = "fig_readout_distributions.png"
SCRIPT = "fig_readouts"
MAX_POINTS = 2000


def _thin(X, n, rng):
    return X if len(X) <= n else X[rng.choice(len(X), n, replace=False)]


def _scatter(ax, th, sa, name, rng, first):
    t_pts, s_pts = _thin(th, MAX_POINTS, rng), _thin(sa, MAX_POINTS, rng)
    ax.plot(t_pts[:, 0], t_pts[:, 1], ".", ms=1.0, color="0.65", label="theory", rasterized=True)
    ax.plot(s_pts[:, 0], s_pts[:, 1], ".", ms=1.0, color="C1", label="sampled", rasterized=True)
    ax.set_xlabel("a_0")
    ax.set_ylabel("a_1")
    ax.set_title(f"{name}: (a_0, a_1) per neuron")
    if first:
        ax.legend(markerscale=4, loc="upper right")


def _histogram(ax, th, sa, st, spec, N, name, first):
    hi = float(max(np.abs(th).max(), np.abs(sa).max())) * 1.1
    lin = 1.0
    symlog = hi > 4.0  # outliers: linear within ±1, logarithmic beyond
    if symlog:
        outer = np.geomspace(lin, hi, 30)[1:]
        bins = np.concatenate([-outer[::-1], np.linspace(-lin, lin, 41), outer])
    else:
        bins = np.linspace(-hi, hi, 81)
    ax.hist(th.ravel(), bins=bins, density=True, histtype="stepfilled", color="0.8", label="theory")
    ax.hist(sa.ravel(), bins=bins, density=True, histtype="step", color="C1", lw=1.0, label="sampled")
    if symlog:
        ax.set_xscale("symlog", linthresh=lin, linscale=1.5)
    ax.set_yscale("log")
    for a, _, _ in st.branches or ():
        for v in a:
            ax.axvline(v, color="k", ls=":", lw=0.7)
    if st.branches:
        ax.plot([], [], "k:", lw=0.7, label="branches a_γ")
    if st.condensate is not None:
        for d, lam in zip(*st.condensate):
            for v in np.sqrt(N * lam) / spec.sigma_w * d:
                ax.axvline(v, color="C0", ls="--", lw=0.8)
        ax.plot([], [], "--", color="C0", lw=0.8, label="outliers r_j â_j")
    ax.set_title(f"{name}: all components a_ri")
    ax.set_xlabel("a_ri" + (" (symlog)" if symlog else ""))
    ax.set_ylabel("density")
    if first or st.branches or st.condensate is not None:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), handlelength=1.5)


def main(out_dir, quick: bool = True) -> list:
    from validation.coding import theory_population

    plt = pyplot()
    out = Path(out_dir)
    t0 = time.perf_counter()
    s = common.settings(quick)
    fig, axes = plt.subplots(3, 2, figsize=figsize(2, 7.0), gridspec_kw={"width_ratios": [1, 1.25]})
    rng = np.random.default_rng(2)
    numbers, chains = {}, {}
    for k, (row, nl) in enumerate(zip(axes, common.NONLINEARITIES)):
        common.log(f"readout distributions: {nl}")
        spec = common.paper_spec(nl)
        st = common.theory(spec, quick)
        ch = common.chain(spec, quick)
        N = ch.net.width
        th = np.vstack([theory_population(st, N, rng).readouts.T for _ in range(s["theory_draws"])])
        sa = np.vstack([a.T for a in ch.readouts])
        name = common.DISPLAY[nl]
        _scatter(row[0], th, sa, name, rng, k == 0)
        _histogram(row[1], th, sa, st, spec, N, name, k == 0)
        nt, ns = np.linalg.norm(th, axis=1), np.linalg.norm(sa, axis=1)
        frac = [float(np.mean(x > 4 * np.median(x))) for x in (nt, ns)]
        numbers[nl] = {"outlier_fraction_theory": frac[0], "outlier_fraction_sampled": frac[1],
                       "std_theory": float(th.std()), "std_sampled": float(sa.std()),
                       "max_abs_theory": float(np.abs(th).max()), "max_abs_sampled": float(np.abs(sa).max()),
                       "theory_source": st.source, "branches": len(st.branches or ()),
                       "outliers": 0 if st.condensate is None else len(st.condensate[1])}
        chains[nl] = common.chain_info(ch)
    png = save(fig, out / NAME)
    write_sidecar(png, SCRIPT, quick, {"task": "classes 32/16/16, T = 0.02, σ_a² = 1/64, σ_1 = 1, mean-field",
                                       "width": s["width"], "sweeps": s["sweeps"], "burn": s["burn"],
                                       "start": s["start"], "theory_draws": s["theory_draws"], "chains": chains},
                  numbers, build_seconds=round(time.perf_counter() - t0, 1))
    return [png]


def caption(side: dict) -> str:
    """The gallery caption of the sidecar of this figure."""
    st, nb = side["settings"], side["numbers"]
    start = "theory start: a stationarity check" if st["start"] == "theory" else "random starts"
    rows = "; ".join(f"{common.DISPLAY[nl]}: outlier fraction (|a_i| > 4× median) theory "
                     f"{v['outlier_fraction_theory']:.3f}, sampled {v['outlier_fraction_sampled']:.3f}, std of a_ri "
                     f"{v['std_theory']:.2f} / {v['std_sampled']:.2f}" for nl, v in nb.items())
    return (f"Readout weights in the paper's regime ({st['task']}): a Gaussian cloud (linear), discrete branches "
            f"(sigmoid, dotted: the large-P branches a_γ), a bulk plus O(√N) outliers (ReLU, dashed: r_j â_j). "
            f"Grey: {st['theory_draws']} theory populations of N = {st['width']} pooled; orange: one sampled "
            f"network, N = {st['width']}, {st['sweeps']} sweeps ({start}), all snapshots pooled. {rows}.")


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(main(sys.argv[1] if len(sys.argv) > 1 else "codingschemes_out/figures", "--full" not in sys.argv))
