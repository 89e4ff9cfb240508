"""Figure of mean-field solutions: outputs f, readout moment U and kernel blocks.

One row per solution, three heat maps: f[c, r] (class c, output r),
U = E[a aᵀ] and the class-block kernel K_μν (μ ∈ c, ν ∈ d, μ ≠ ν), with the
diagonal K_μμ per class under it. Used by ``codingschemes solve``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .style import pyplot, save

__all__ = ["plot_solutions"]


def _heatmap(ax, M, title, cmap="RdBu_r", signed=True):
    M = np.asarray(M, dtype=float)
    M = np.where(np.abs(M) < 1e-12 * max(1.0, float(np.max(np.abs(M)))), 0.0, M)  # round-off prints as 0
    vmax = float(np.max(np.abs(M))) or 1.0
    im = ax.imshow(M, cmap=cmap, vmin=-vmax if signed else min(0.0, float(M.min())), vmax=vmax)
    ax.set_title(title, fontsize=9)
    m = M.shape[0]
    ax.set_xticks(range(M.shape[1]))
    ax.set_yticks(range(m))
    for i in range(m):
        for j in range(M.shape[1]):
            ax.text(j, i, f"{M[i, j]:.3g}", ha="center", va="center", fontsize=7)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)


def plot_solutions(results, path) -> Path:
    """Write a PNG with f, U and the kernel for each :class:`~solvers.results.SolveResult`."""
    plt = pyplot()

    results = list(results)
    fig, axes = plt.subplots(len(results), 3, figsize=(10, 3.1 * len(results)), squeeze=False)
    for row, res in zip(axes, results):
        name = res.spec.nonlinearity
        _heatmap(row[0], res.outputs, f"{name}: outputs f[c, r]")
        _heatmap(row[1], res.readout_moment, f"{name}: U = E[a aᵀ]")
        _heatmap(row[2], res.kernel_blocks, f"{name}: kernel blocks K_μν (μ∈c, ν∈d, μ≠ν)", cmap="viridis",
                 signed=False)
        row[0].set_xlabel("output r", fontsize=8)
        row[1].set_xlabel("r", fontsize=8)
        diag = ", ".join(f"{v:.3g}" for v in res.kernel_diagonal)
        row[2].set_xlabel(f"class d;  K_μμ per class: {diag}", fontsize=8)
        for ax in row:
            ax.set_ylabel("class c" if ax is not row[1] else "r", fontsize=8)
    T, sizes = results[0].spec.temperature, results[0].spec.class_sizes
    fig.suptitle(f"mean-field solution, class sizes {list(sizes)}, T = {T:g}", fontsize=10)
    return save(fig, path)
