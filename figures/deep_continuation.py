"""Figure of ``codingschemes continue --layers L``: deep linear root curves, folds and jumps.

Left: x_c (the class eigenvalue of X, THEORY §5) along every root curve against the parameter,
stable roots solid, unstable dashed, folds as circles, first-order transitions as dotted
lines. Right: the selected solution's class outputs f_cc and its action S on the grid.
"""
from __future__ import annotations

import numpy as np

from .style import pyplot, save

__all__ = ["plot_deep_continuation"]


def plot_deep_continuation(result, out):
    """Write the PNG for a :class:`solvers.deep.continuation.DeepContinuation`; returns the path."""
    plt = pyplot()
    fig, ax = plt.subplots(1, 2, figsize=(11, 4.2))
    if result.spec.nonlinearity != "linear":
        return _plot_sequential(plt, fig, ax, result, out)
    for b in result.branches:
        p, x, st = np.asarray(b["p"]), np.asarray(b["x"]), np.asarray(b["stable"])
        color = f"C{b['class']}"
        for mask, style in ((st, "-"), (~st, "--")):
            xm = np.where(mask, x, np.nan)
            ax[0].plot(p, xm, style, color=color, lw=1.4)
    for c in sorted({b["class"] for b in result.branches}):
        ax[0].plot([], [], "-", color=f"C{c}", label=f"class {c} (P_c = {result.spec.class_sizes[c]})")
    ax[0].plot([], [], "k--", label="unstable root")
    for sp in result.special_points:
        if sp["kind"] == "fold":
            ax[0].plot(sp["p"], sp["x"], "o", color=f"C{sp['class']}", mfc="none")
        else:
            ax[0].axvline(sp["p"], color=f"C{sp['class']}", ls=":", lw=1)
    ax[0].set_xlabel(result.parameter)
    ax[0].set_ylabel("x_c (class eigenvalue of X)")
    ax[0].set_title("root curves: folds (o), first-order transitions (dotted)", fontsize=9)
    ax[0].legend(fontsize=7)
    ps = np.array([s["p"] for s in result.selected])
    f = np.array([np.diag(np.asarray(s["outputs"])) for s in result.selected])
    for c in range(f.shape[1]):
        ax[1].plot(ps, f[:, c], ".-", color=f"C{c}", ms=3, label=f"f_{c}{c}")
    ax2 = ax[1].twinx()
    ax2.plot(ps, [s["free_energy"] for s in result.selected], "k-", lw=0.8)
    ax2.set_ylabel("action S of the selected root (black)")
    ax[1].set_xlabel(result.parameter)
    ax[1].set_ylabel("class output f_cc")
    ax[1].legend(fontsize=7)
    ax[1].set_title("selected (largest-S stable) solution", fontsize=9)
    s = result.spec
    fig.suptitle(f"deep linear, L = {result.layers}, classes {tuple(s.class_sizes)}, σ_a = {s.sigma_a:g}, "
                 f"σ_w = {s.sigma_w:g}, T = {s.temperature:g} (where not continued)", fontsize=9)
    return save(fig, out)


def _plot_sequential(plt, fig, ax, result, out):
    """Nonlinear φ: f_cc and the action along the warm-started grid (open markers: unstable)."""
    pts = result.selected
    ps = np.array([r["p"] for r in pts])
    f = np.array([np.diag(np.asarray(r["outputs"])) for r in pts]).reshape(len(pts), -1)
    st = np.array([r["stable"] for r in pts], dtype=bool)
    for c in range(f.shape[1]):
        ax[0].plot(ps, f[:, c], "-", color=f"C{c}", lw=1, label=f"f_{c}{c}")
        ax[0].plot(ps[st], f[st, c], "o", color=f"C{c}", ms=4)
        ax[0].plot(ps[~st], f[~st, c], "o", color=f"C{c}", mfc="none", ms=4)
    for sp in result.special_points:
        ax[0].axvspan(*sorted(sp["bracket_p"]), color="0.85", zorder=0)
    ax[0].set_xlabel(result.parameter)
    ax[0].set_ylabel("class output f_cc")
    ax[0].set_title("warm-started solves (open: unstable; grey: bracketed changes)", fontsize=9)
    ax[0].legend(fontsize=7)
    ax[1].errorbar(ps, [r["free_energy"] for r in pts], yerr=[r["free_energy_error"] for r in pts], fmt="k.-")
    ax[1].set_xlabel(result.parameter)
    ax[1].set_ylabel("action S of the selected saddle")
    s = result.spec
    fig.suptitle(f"{s.nonlinearity}, L = {result.layers}, classes {tuple(s.class_sizes)}, σ_a = {s.sigma_a:g}, "
                 f"σ_w = {s.sigma_w:g}, T = {s.temperature:g} (where not continued)", fontsize=9)
    return save(fig, out)
