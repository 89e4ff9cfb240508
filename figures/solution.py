"""Figure of mean-field solutions: outputs f, readout moment U and kernel blocks.

One row per solution, three heat maps: f[c, r] (class c, output r), U = E[a aᵀ]
and the class-block kernel (diagonal entries K_μμ on the diagonal of the
plot, off-diagonal blocks K_μν elsewhere). Used by ``codingschemes solve``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_solutions"]


def _heatmap(ax, M, title, cmap="RdBu_r"):
    M = np.asarray(M)
    vmax = float(np.max(np.abs(M))) or 1.0
    im = ax.imshow(M, cmap=cmap, vmin=-vmax, vmax=vmax)
    ax.set_title(title, fontsize=9)
    m = M.shape[0]
    ax.set_xticks(range(M.shape[1]))
    ax.set_yticks(range(m))
    for i in range(m):
        for j in range(M.shape[1]):
            ax.text(j, i, f"{M[i, j]:.3g}", ha="center", va="center", fontsize=7)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)


def plot_solutions(results, path) -> Path:
    """Write a PNG with f, U and the kernel for each :class:`~solvers.result.SolveResult`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = list(results)
    fig, axes = plt.subplots(len(results), 3, figsize=(10, 3.1 * len(results)), squeeze=False)
    for row, res in zip(axes, results):
        kernel = np.array(res.kernel_blocks, dtype=float)
        np.fill_diagonal(kernel, res.kernel_diagonal)
        name = res.spec.nonlinearity
        _heatmap(row[0], res.outputs, f"{name}: outputs f[c, r]")
        _heatmap(row[1], res.readout_moment, f"{name}: U = E[a aᵀ]")
        _heatmap(row[2], kernel, f"{name}: kernel (diag: K_μμ)", cmap="viridis")
        for ax in row:
            ax.set_xlabel("r / d", fontsize=8)
            ax.set_ylabel("c", fontsize=8)
    T, sizes = results[0].spec.temperature, results[0].spec.class_sizes
    fig.suptitle(f"mean-field solution, class sizes {list(sizes)}, T = {T:g}", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
