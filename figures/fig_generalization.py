"""Fig. 6 analogue: generalization on digits for linear, sigmoidal and ReLU networks.

One row per nonlinearity (linear, normcdf, ReLU), scikit-learn digits 0/1/2 (offline), T = 0.5,
σ_1 = σ_a = 1, one hidden layer. Columns:

1. activations φ(h*) on the test inputs of neurons drawn from the theory's single-neuron measure
   p_t(a, h) (h* | h Gaussian, THEORY §2), test inputs sorted by class;
2. the same for neurons of one sampled network of width N (mean-field scaling);
3. the theory's posterior-averaged kernel E_t[φ(h*) φ(h*')] on the test inputs;
4. the mean predictor of output 0 on the test inputs: theory, GP (NNGP, THEORY §6) and sampling;
5. the per-class error of the mean predictor (bars) and the Bayes error, which adds the
   posterior variance Σ_r Var f_r(x*) (markers): zero for the N = ∞ theory, finite for the GP
   and for the sampled networks at width N.

Everything comes from :func:`validation.generalization.generalization_report`, the engine of
``codingschemes generalize``. Quick mode: 15 training and 15 test inputs per class, N = 60, short chains;
full mode: 30 training inputs per class, all remaining test inputs, N = 200 and longer chains.
The reports are also written as ``fig_generalization.json``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import common
from .style import pyplot, save

__all__ = ["main", "SETTINGS"]

SETTINGS = {
    True: dict(train_per_class=15, test_per_class=15, theory_chains=64, theory_rounds=12, width=60, chains=2,
               sweeps=80),
    False: dict(train_per_class=30, test_per_class=None, theory_chains=256, theory_rounds=25, width=200, chains=4,
                sweeps=600),
}
CLASSES = (0, 1, 2)
TEMPERATURE = 0.5
COLORS = {"theory": "C0", "gp": "C1", "sampling": "C2"}


def _reports(quick: bool, nonlinearities=common.NONLINEARITIES, seed: int = 0) -> dict:
    """{nonlinearity: JSON report of :func:`validation.generalization.generalization_report`}."""
    from theory.datasets import load_digits_dataset
    from validation.generalization import generalization_report

    cfg = SETTINGS[bool(quick)]
    ds = load_digits_dataset(CLASSES, train_per_class=cfg["train_per_class"], test_per_class=cfg["test_per_class"],
                             seed=seed)
    out = {}
    for nl in nonlinearities:
        common.log(f"generalization: {nl} on {ds.description} (P = {ds.P}, {ds.n_test} test inputs)")
        spec = ds.spec(nl, 1.0, 1.0, TEMPERATURE)
        out[nl] = generalization_report(
            ds, spec, theory_chains=cfg["theory_chains"], theory_rounds=cfg["theory_rounds"], width=cfg["width"],
            chains=cfg["chains"], sweeps=cfg["sweeps"], seed=seed, say=common.log).to_json()
    return out


def _raster(ax, A, title):
    A = np.asarray(A)
    ax.imshow(A, aspect="auto", cmap="magma", interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.set_ylabel("neuron")
    ax.set_xlabel("test input (sorted by class)")


def plot(reports: dict, out, quick: bool = True):
    """Draw the figure from ``{nonlinearity: report}`` (JSON reports of ``generalization_report``)."""
    plt = pyplot()
    names = list(reports)
    first = reports[names[0]]
    labels = np.asarray(first["dataset"]["test_labels"])
    classes = first["dataset"]["classes"]
    boundaries = np.cumsum(np.bincount(labels, minlength=len(classes)))[:-1] - 0.5
    fig, axes = plt.subplots(len(names), 5, figsize=(17, 3.0 * len(names)), squeeze=False)
    for row, nl in zip(axes, names):
        report = reports[nl]
        th, gp, sa = report["theory"], report["gp"], report["sampling"]
        conv = "" if th["converged"] else " (NOT converged)"
        _raster(row[0], np.asarray(th["activations"])[:30],
                f"{common.DISPLAY.get(nl, nl)}: theory neurons φ(h*){conv}")
        _raster(row[1], np.asarray(sa["activations"])[:30],
                f"sampled network, N = {sa['width']} (R̂ {sa['rhat_max']:.2f})")
        row[2].imshow(th["test_kernel"], cmap="viridis")
        row[2].set_title("theory kernel E[φ(h*)φ(h*')] on test inputs", fontsize=8)
        for b in boundaries:
            for ax in row[:2]:
                ax.axvline(b, color="w", lw=0.6)
        for k, e in (("theory", th), ("gp", gp), ("sampling", sa)):
            row[3].plot(np.asarray(e["mean_predictor"])[:, 0], ".", ms=3, color=COLORS[k], label=k)
        row[3].plot((labels == 0).astype(float), "k-", lw=0.8, label="target")
        row[3].set_title(f"mean predictor of output {classes[0]}", fontsize=8)
        row[3].set_xlabel("test input (sorted by class)")
        row[3].legend(fontsize=7)
        width = 0.26
        for j, (k, e) in enumerate((("theory", th), ("gp", gp), ("sampling", sa))):
            x = np.arange(len(classes)) + (j - 1) * width
            row[4].bar(x, e["mean_predictor_error"], width, color=COLORS[k], label=k,
                       yerr=e.get("mean_predictor_error_mcse"))
            row[4].plot(x, e["bayes_error"], "k_", ms=12, mew=2)
        row[4].plot([], [], "k_", ms=12, mew=2, label="Bayes error")
        row[4].set_xticks(range(len(classes)), [str(c) for c in classes])
        row[4].set_xlabel("class")
        row[4].set_title("error per class: mean predictor (bars), Bayes (—)", fontsize=8)
        row[4].legend(fontsize=7)
    sp = first["spec"]
    fig.suptitle(f"{first['dataset']['description']}: P = {sum(sp['class_sizes'])}, T = {sp['temperature']:g}, "
                 f"σ_1 = {sp['sigma_w']:g}, σ_a = {sp['sigma_a']:g}, one hidden layer "
                 f"({'quick' if quick else 'full'} mode)", fontsize=10)
    return save(fig, out, dpi=80, palette=True)


def main(out_dir, quick: bool = True) -> list:
    """Write ``fig_generalization.png`` and the reports ``fig_generalization.json`` to ``out_dir``."""
    reports = _reports(quick)
    out = Path(out_dir)
    js = out / "fig_generalization.json"
    out.mkdir(parents=True, exist_ok=True)
    js.write_text(json.dumps(reports))
    return [plot(reports, out / "fig_generalization.png", quick), js]
