"""Figure of a theory-against-sampling report (``codingschemes validate``).

Left: every observable, sampled estimate (N → ∞ intercept, or the single width) against the
theory, with error bars, on the diagonal y = x. Right: the diagonal outputs f_cc and readout
moments U_cc at each width against 1/N, with the theory at 1/N = 0 (stars). One row per chain
start (random and theory starts side by side with ``--init both``). Written as PNG + PDF + JSON
sidecar (the numbers shown, the verdict and the model settings).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .style import color, figsize, pyplot, save, write_sidecar

__all__ = ["plot_validation"]

_KEYS = ("outputs", "readout_moment", "kernel_diagonal", "kernel_blocks")
_NAMES = {"outputs": "outputs f", "readout_moment": "readout moment U", "kernel_diagonal": "kernel diagonal",
          "kernel_blocks": "kernel blocks"}


def _flat(obs: dict) -> np.ndarray:
    return np.concatenate([np.ravel(obs[k]) for k in _KEYS])


def _plot_row(ax1, ax2, th, sa, title):
    for k, key in enumerate(_KEYS):
        x, y = np.ravel(th[key]), np.ravel(sa[key])
        e = np.ravel(sa["errors"][key]) if "errors" in sa else None
        ax1.errorbar(x, y, yerr=e, fmt="o", color=color(k), label=_NAMES[key])
    lim = [min(_flat(th).min(), _flat(sa).min()), max(_flat(th).max(), _flat(sa).max())]
    ax1.plot(lim, lim, "k--", lw=0.6, label="y = x")
    ax1.set_xlabel("theory (N → ∞)")
    ax1.set_ylabel("sampling")
    ax1.set_title(title)
    ax1.legend()
    inv = 1.0 / np.array([w["width"] for w in sa["per_width"]], dtype=float)
    for c in range(len(th["outputs"])):
        for key, style in (("outputs", "o-"), ("readout_moment", "s--")):
            vals = [w[key][c][c] for w in sa["per_width"]]
            errs = [w["errors"][key][c][c] for w in sa["per_width"]]
            ax2.errorbar(inv, vals, yerr=errs, fmt=style, color=color(c),
                         label=f"{'f' if key == 'outputs' else 'U'}$_{{{c}{c}}}$")
            ax2.plot([0.0], [th[key][c][c]], "*", ms=6, color=color(c))
    ax2.plot([], [], "k*", ms=6, label="theory")
    ax2.set_xlabel("1/N")
    ax2.set_xlim(left=-0.05 * inv.max())
    ax2.legend(ncol=2)
    ax2.set_title("finite width")


def plot_validation(report: dict, path) -> Path:
    """One row per chain start (``report["by_start"]``); returns the PNG path."""
    plt = pyplot()
    rows = report.get("by_start") or {"": {"sampling": report["sampling"], "passed": report["passed"],
                                           "comparison": report["comparison"]}}
    fig, axes = plt.subplots(len(rows), 2, figsize=figsize(2, 3.0 * len(rows)), squeeze=False)
    name = report["spec"]["nonlinearity"]
    for (start, entry), (ax1, ax2) in zip(rows.items(), axes):
        verdict = "passed" if entry["passed"] else "failed"
        _plot_row(ax1, ax2, report["theory"], entry["sampling"],
                  f"{name}{', ' + start + ' starts' if start else ''}: {verdict}")
    png = save(fig, path)
    write_sidecar(png, "codingschemes validate", None, dict(report["spec"]), {
        "passed": bool(report["passed"]), "comparison": report["comparison"], "z_max": report.get("z_max"),
        "theory": {k: report["theory"][k] for k in _KEYS},
        "by_start": {start or "chains": {"passed": bool(e["passed"]), "comparison": e["comparison"],
                                         "sampling": {k: e["sampling"][k] for k in _KEYS},
                                         "widths": [w["width"] for w in e["sampling"]["per_width"]]}
                     for start, e in rows.items()}})
    return png
