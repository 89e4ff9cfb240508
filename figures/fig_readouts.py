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
ReLU (the condensate). Each panel states the fraction of neurons whose norm exceeds 4× the median
(outliers in the sense of :mod:`validation.sparse`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import common
from .style import pyplot, save

__all__ = ["main"]

NAME = "fig_readout_distributions.png"
MAX_POINTS = 3000


def _thin(X, n, rng):
    return X if len(X) <= n else X[rng.choice(len(X), n, replace=False)]


def main(out_dir, quick: bool = True) -> list:
    from validation.coding import theory_population

    plt = pyplot()
    out = Path(out_dir)
    s = common.settings(quick)
    fig, axes = plt.subplots(3, 2, figsize=(9, 8.4), gridspec_kw={"width_ratios": [1, 1.3]})
    rng = np.random.default_rng(2)
    for row, nl in zip(axes, common.NONLINEARITIES):
        common.log(f"readout distributions: {nl}")
        spec = common.paper_spec(nl)
        st = common.theory(spec, quick)
        ch = common.chain(spec, quick)
        N = ch.net.width
        th = np.vstack([theory_population(st, N, rng).readouts.T for _ in range(s["theory_draws"])])
        sa = np.vstack([a.T for a in ch.readouts])
        name = common.DISPLAY[nl]
        ax = row[0]
        t_pts, s_pts = _thin(th, MAX_POINTS, rng), _thin(sa, MAX_POINTS, rng)
        ax.plot(t_pts[:, 0], t_pts[:, 1], ".", ms=2, color="0.6", alpha=0.5, label="theory")
        ax.plot(s_pts[:, 0], s_pts[:, 1], ".", ms=2, color="C3", alpha=0.5, label="sampled")
        ax.set_xlabel("a_0", fontsize=7)
        ax.set_ylabel("a_1", fontsize=7)
        ax.set_title(f"{name}: readouts (a_0, a_1) of all neurons", fontsize=8)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=6, markerscale=4, loc="upper right")
        ax = row[1]
        hi = float(max(np.abs(th).max(), np.abs(sa).max())) * 1.1
        lin = 1.0
        symlog = hi > 4.0  # outliers: linear within ±1, logarithmic beyond
        if symlog:
            outer = np.geomspace(lin, hi, 30)[1:]
            bins = np.concatenate([-outer[::-1], np.linspace(-lin, lin, 41), outer])
        else:
            bins = np.linspace(-hi, hi, 81)
        ax.hist(th.ravel(), bins=bins, density=True, histtype="stepfilled", color="0.75", label="theory")
        ax.hist(sa.ravel(), bins=bins, density=True, histtype="step", color="C3", lw=1.2, label="sampled")
        if symlog:
            ax.set_xscale("symlog", linthresh=lin, linscale=1.5)
        ax.set_yscale("log")
        if st.branches:
            for a, _, _ in st.branches:
                for v in a:
                    ax.axvline(v, color="k", ls=":", lw=0.7)
        if st.condensate is not None:
            for d, lam in zip(*st.condensate):
                for v in np.sqrt(N * lam) / spec.sigma_w * d:
                    ax.axvline(v, color="C0", ls=":", lw=1.0)
        nt, ns = np.linalg.norm(th, axis=1), np.linalg.norm(sa, axis=1)
        frac = [float(np.mean(x > 4 * np.median(x))) for x in (nt, ns)]
        ax.set_title(f"{name}: all a_ri; |a_i| > 4× median: theory {frac[0]:.3f}, sampled {frac[1]:.3f}",
                     fontsize=8)
        ax.set_xlabel("a_ri" + (" (symlog)" if symlog else "") + ("; dotted: theory branches a_γ" if st.branches else "")
                      + ("; blue: outliers r_j â_j, r_j = √(Nλ_j)/σ_1" if st.condensate is not None else ""),
                      fontsize=7)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=6)
    fig.suptitle(f"Readout weights, classes 32/16/16, T = 0.02, σ_a² = 1/64: sampled N = {s['width']} "
                 f"({s['start']} start), theory {s['theory_draws']} populations of N", fontsize=9)
    return [save(fig, out / NAME, dpi=75)]


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(main(sys.argv[1] if len(sys.argv) > 1 else "codingschemes_out/figures", "--full" not in sys.argv))
