"""Figure of a theory-against-sampling report (``codingschemes validate``).

Left: every observable, sampled estimate (N → ∞ intercept, or the single
width) against the theory, with error bars, on the diagonal y = x. Right: the
diagonal outputs f_cc and readout moments U_cc at each width against 1/N,
with the theory at 1/N = 0.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .style import pyplot, save

__all__ = ["plot_validation"]

_KEYS = ("outputs", "readout_moment", "kernel_diagonal", "kernel_blocks")


def _flat(obs: dict) -> np.ndarray:
    return np.concatenate([np.ravel(obs[k]) for k in _KEYS])


def _plot_row(ax1, ax2, th, sa, title, comparison):
    colors = {"outputs": "C0", "readout_moment": "C1", "kernel_diagonal": "C2", "kernel_blocks": "C3"}
    for k in _KEYS:
        x, y = np.ravel(th[k]), np.ravel(sa[k])
        e = np.ravel(sa["errors"][k]) if "errors" in sa else None
        ax1.errorbar(x, y, yerr=e, fmt="o", ms=4, color=colors[k], label=k)
    lim = [min(_flat(th).min(), _flat(sa).min()), max(_flat(th).max(), _flat(sa).max())]
    ax1.plot(lim, lim, "k--", lw=0.8)
    ax1.set_xlabel("theory (N → ∞)")
    ax1.set_ylabel("sampling")
    ax1.set_title(title, fontsize=10)
    ax1.legend(fontsize=7)
    widths = [w["width"] for w in sa["per_width"]]
    inv = 1.0 / np.array(widths, dtype=float)
    m = len(th["outputs"])
    for c in range(m):
        for key, style in (("outputs", "o-"), ("readout_moment", "s--")):
            vals = [w[key][c][c] for w in sa["per_width"]]
            errs = [w["errors"][key][c][c] for w in sa["per_width"]]
            line = ax2.errorbar(inv, vals, yerr=errs, fmt=style, ms=4, label=f"{'f' if key == 'outputs' else 'U'}[{c},{c}]")
            ax2.plot([0.0], [th[key][c][c]], "*", ms=10, color=line[0].get_color())
    ax2.set_xlabel("1/N  (stars: theory at N → ∞)")
    ax2.set_xlim(left=-0.05 * inv.max())
    ax2.legend(fontsize=7, ncol=2)
    ax2.set_title(comparison[:70], fontsize=8)


def plot_validation(report: dict, path) -> Path:
    """One row per chain start (random and/or theory starts side by side, ``report["by_start"]``)."""
    plt = pyplot()
    rows = report.get("by_start") or {"": {"sampling": report["sampling"], "passed": report["passed"],
                                           "comparison": report["comparison"]}}
    fig, axes = plt.subplots(len(rows), 2, figsize=(10, 4.2 * len(rows)), squeeze=False)
    name = report["spec"]["nonlinearity"]
    for (start, entry), (ax1, ax2) in zip(rows.items(), axes):
        title = f"{name}{', ' + start + ' starts' if start else ''}: passed = {entry['passed']}"
        _plot_row(ax1, ax2, report["theory"], entry["sampling"], title, entry["comparison"])
    return save(fig, path)
