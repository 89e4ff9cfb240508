"""Fig. 6 analogue: generalization on real data, theory against GP and sampling.

Panels: (a) per-class mean-predictor error (bars) and Bayes error (markers) for the
mean-field theory, the GP (lazy) baseline and sampled networks; (b) the mean predictor
of one output on the test inputs (sorted by class); (c) the posterior-averaged kernel on
test inputs (theory); (d) activations φ(h*) on test inputs of neurons drawn from the
theory's single-neuron measure.
"""
from __future__ import annotations

import numpy as np

from .style import pyplot, save

__all__ = ["plot_generalization"]

COLORS = {"theory": "C0", "gp": "C1", "sampling": "C2"}


def plot_generalization(report: dict, out, output_class: int = 0, kernel=None, activations=None,
                        test_labels=None):
    """Write the PNG for a ``codingschemes generalize`` report; returns the path."""
    plt = pyplot()
    fig, ax = plt.subplots(2, 2, figsize=(11, 8))
    names = [k for k in ("theory", "gp", "sampling") if report.get(k)]
    m = len(report[names[0]]["mean_predictor_error"])
    width = 0.8 / len(names)
    for j, k in enumerate(names):
        e = report[k]
        x = np.arange(m) + (j - (len(names) - 1) / 2) * width
        ax[0, 0].bar(x, e["mean_predictor_error"], width, color=COLORS[k], label=f"{k}: mean predictor",
                     yerr=e.get("mean_predictor_error_mcse"))
        ax[0, 0].plot(x, e["bayes_error"], "k_", ms=14, mew=2)
    ax[0, 0].plot([], [], "k_", ms=14, mew=2, label="Bayes error (adds posterior variance)")
    ax[0, 0].set_xticks(range(m), [str(c) for c in report["dataset"]["classes"]])
    ax[0, 0].set_xlabel("class")
    ax[0, 0].set_ylabel("squared error per test input")
    ax[0, 0].legend(fontsize=8)
    ax[0, 0].set_title("(a) per-class generalization error")
    for k in names:
        f = np.asarray(report[k]["mean_predictor"])[:, output_class]
        ax[0, 1].plot(f, ".", ms=3, color=COLORS[k], label=k)
    if test_labels is not None:
        ax[0, 1].plot((np.asarray(test_labels) == output_class).astype(float), "k-", lw=0.8, label="target")
    ax[0, 1].set_xlabel("test input (sorted by class)")
    ax[0, 1].set_ylabel(f"mean predictor f_{output_class}(x*)")
    ax[0, 1].legend(fontsize=8)
    ax[0, 1].set_title(f"(b) mean predictor, output {report['dataset']['classes'][output_class]}")
    if kernel is not None:
        im = ax[1, 0].imshow(kernel, cmap="viridis")
        fig.colorbar(im, ax=ax[1, 0])
    ax[1, 0].set_title("(c) posterior kernel E[φ(h*)φ(h*')] on test inputs")
    if activations is not None:
        A = np.asarray(activations)
        im = ax[1, 1].imshow(A, aspect="auto", cmap="magma", interpolation="nearest")
        fig.colorbar(im, ax=ax[1, 1])
        ax[1, 1].set_xlabel("test input (sorted by class)")
        ax[1, 1].set_ylabel("neuron")
    ax[1, 1].set_title("(d) activations φ(h*) of theory neurons")
    s = report["spec"]
    fig.suptitle(f"{report['dataset']['description']}; φ = {s['nonlinearity']}, T = {s['temperature']:g}, "
                 f"σ_1 = {s['sigma_w']:g}, σ_a = {s['sigma_a']:g}", fontsize=9)
    return save(fig, out)
