"""Fig. 6 analogue: generalization on real data, theory against GP and sampling.

Panels: (a) per-class mean-predictor error (bars) and Bayes error (markers) for the
mean-field theory, the GP (lazy) baseline and sampled networks; (b) the mean predictor
of one output on the test inputs (sorted by class); (c) the posterior-averaged kernel on
test inputs (theory); (d) activations φ(h*) on test inputs of neurons drawn from the
theory's single-neuron measure. Written as PNG + PDF + JSON sidecar (the errors per class and
method, the dataset and the model settings); used by ``codingschemes generalize``.
"""
from __future__ import annotations

import numpy as np

from .style import color, figsize, heatmap, pyplot, save, write_sidecar

__all__ = ["plot_generalization"]

COLORS = {"theory": color(0), "gp": color(1), "sampling": color(2)}
NAMES = {"theory": "mean-field theory", "gp": "GP (lazy)", "sampling": "sampled networks"}


def plot_generalization(report: dict, out, output_class: int = 0, kernel=None, activations=None,
                        test_labels=None):
    """Write PNG + PDF + sidecar for a ``codingschemes generalize`` report; returns the PNG path."""
    plt = pyplot()
    fig, ax = plt.subplots(2, 2, figsize=figsize(2, 5.4))
    names = [k for k in ("theory", "gp", "sampling") if report.get(k)]
    m = len(report[names[0]]["mean_predictor_error"])
    width = 0.8 / len(names)
    for j, k in enumerate(names):
        e = report[k]
        x = np.arange(m) + (j - (len(names) - 1) / 2) * width
        ax[0, 0].bar(x, e["mean_predictor_error"], width, color=COLORS[k], label=NAMES[k],
                     yerr=e.get("mean_predictor_error_mcse"))
        ax[0, 0].plot(x, e["bayes_error"], "k_", ms=8, mew=1.2)
    ax[0, 0].plot([], [], "k_", ms=8, mew=1.2, label="Bayes error")
    ax[0, 0].set_xticks(range(m), [str(c) for c in report["dataset"]["classes"]])
    ax[0, 0].set_xlabel("class")
    ax[0, 0].set_ylabel("squared error per test input")
    ax[0, 0].legend()
    ax[0, 0].set_title("(a) error per class")
    for k in names:
        f = np.asarray(report[k]["mean_predictor"])[:, output_class]
        ax[0, 1].plot(f, ".", ms=2, color=COLORS[k], label=NAMES[k])
    if test_labels is not None:
        ax[0, 1].plot((np.asarray(test_labels) == output_class).astype(float), "k-", lw=0.8, label="target")
    ax[0, 1].set_xlabel("test input (sorted by class)")
    ax[0, 1].set_ylabel(f"mean predictor $f_{output_class}(x^*)$")
    ax[0, 1].legend()
    ax[0, 1].set_title(f"(b) mean predictor, output {report['dataset']['classes'][output_class]}")
    if kernel is not None:
        heatmap(ax[1, 0], kernel, label=r"$E[\phi(h^*)\phi(h^{*\prime})]$", aspect="equal")
        ax[1, 0].set_xlabel("test input")
        ax[1, 0].set_ylabel("test input")
    ax[1, 0].set_title("(c) posterior kernel, test inputs")
    if activations is not None:
        heatmap(ax[1, 1], activations, label=r"$\phi(h^*)$")
        ax[1, 1].set_xlabel("test input (sorted by class)")
        ax[1, 1].set_ylabel("neuron")
    ax[1, 1].set_title("(d) activations of theory neurons")
    sp = report["spec"]
    fig.suptitle(f"{report['dataset']['description']}; {sp['nonlinearity']}, T = {sp['temperature']:g}")
    png = save(fig, out)
    keys = ("mean_predictor_error", "bayes_error", "mean_predictor_error_mcse")
    write_sidecar(png, "codingschemes generalize", None,
                  {"spec": report["spec"], "output_class": output_class,
                   "dataset": {k: v for k, v in report["dataset"].items() if k != "test_labels"}},
                  {k: {key: report[k].get(key) for key in keys if key in report[k]} for k in names})
    return png
