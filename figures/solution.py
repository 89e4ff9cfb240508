"""Figure of mean-field solutions: outputs f, readout moment U and kernel blocks.

One row per solution, three heat maps with colour bars: f[c, r] (class c, output r),
U = E[a aᵀ] and the class-block kernel K_cd (inputs μ ∈ c, ν ∈ d, μ ≠ ν); the diagonal K_μμ
per class is in the sidecar. Used by ``codingschemes solve`` (``OUT/solve.png``, ``.pdf`` and the
JSON sidecar ``.json`` with the numbers shown and the model settings).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .style import figsize, heatmap, pyplot, save, write_sidecar

__all__ = ["plot_solutions"]

#: annotate the cells with their values up to this many classes (beyond, the numbers do not fit)
_ANNOTATE = 6


def _panel(ax, M, title, label, signed):
    M = np.asarray(M, dtype=float)
    M = np.where(np.abs(M) < 1e-12 * max(1.0, float(np.max(np.abs(M)))), 0.0, M)  # round-off prints as 0
    heatmap(ax, M, signed=signed, label=label)
    ax.set_title(title)
    ax.set_xticks(range(M.shape[1]))
    ax.set_yticks(range(M.shape[0]))
    if max(M.shape) <= _ANNOTATE:
        top = float(np.max(np.abs(M))) or 1.0
        for (i, j), v in np.ndenumerate(M):
            dark = abs(v) > 0.6 * top if signed else v < 0.5 * top  # dark cell: RdBu_r ends, viridis low end
            ax.text(j, i, f"{v:.3g}", ha="center", va="center", color="white" if dark else "black")


def plot_solutions(results, path) -> Path:
    """Write PNG + PDF + sidecar with f, U and the kernel for each :class:`~solvers.results.SolveResult`;
    returns the PNG path."""
    plt = pyplot()
    results = list(results)
    fig, axes = plt.subplots(len(results), 3, figsize=figsize(2, 2.3 * len(results)), squeeze=False)
    for row, res in zip(axes, results):
        _panel(row[0], res.outputs, "outputs f[c, r]", "f", True)
        _panel(row[1], res.readout_moment, r"readout moment $U = E[a a^T]$", "U", True)
        _panel(row[2], res.kernel_blocks, r"kernel blocks $K_{cd}$", "K", False)
        row[0].set_xlabel("output r")
        row[0].set_ylabel(f"{res.spec.nonlinearity}\nclass c")
        row[1].set_xlabel("output r")
        row[1].set_ylabel("output r")
        row[2].set_xlabel("class d")
        row[2].set_ylabel("class c")
    png = save(fig, path)
    spec = results[0].spec
    write_sidecar(png, "codingschemes solve", None,
                  {"class_sizes": list(spec.class_sizes), "temperature": spec.temperature,
                   "solutions": [r.spec.to_dict() for r in results]},
                  {"solutions": [{"nonlinearity": r.spec.nonlinearity, "converged": bool(r.success),
                                  "outputs": r.outputs, "readout_moment": r.readout_moment,
                                  "kernel_blocks": r.kernel_blocks, "kernel_diagonal": r.kernel_diagonal}
                                 for r in results]})
    return png
