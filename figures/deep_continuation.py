"""Figure of ``codingschemes continue --layers L``: deep linear root curves, folds and jumps.

Left: x_c (the class eigenvalue of X, THEORY §5) along every root curve against the parameter,
stable roots solid, unstable dashed, folds as circles, first-order transitions as dotted
lines. Right: the selected solution's class outputs f_cc and its action S on the grid. Written
as PNG + PDF + JSON sidecar (the selected outputs and actions, the special points, the settings).
"""
from __future__ import annotations

import numpy as np

from .style import axis_label, color, figsize, pyplot, save, write_sidecar

__all__ = ["plot_deep_continuation"]


def plot_deep_continuation(result, out):
    """Write the PNG for a :class:`solvers.deep.continuation.DeepContinuation`; returns the path."""
    plt = pyplot()
    fig, ax = plt.subplots(1, 2, figsize=figsize(2, 2.8))
    if result.spec.nonlinearity != "linear":
        _plot_sequential(ax, result)
    else:
        _plot_roots(ax, result)
    s = result.spec
    fig.suptitle(f"{s.nonlinearity}, L = {result.layers}, classes {','.join(map(str, s.class_sizes))}")
    png = save(fig, out)
    sel = result.selected
    write_sidecar(png, "codingschemes continue --layers", None,
                  {**s.to_dict(), "layers": result.layers, "parameter": result.parameter},
                  {"p": [r["p"] for r in sel], "f_diag": [np.diag(np.asarray(r["outputs"])) for r in sel],
                   "action": [r["free_energy"] for r in sel],
                   "special_points": [{k: sp[k] for k in ("kind", "class", "p", "bracket_p")}
                                      for sp in result.special_points]})
    return png


def _plot_roots(ax, result):
    """Deep linear: every root curve x_c(p), stable solid, unstable dashed; f_cc and S of the selected root."""
    from matplotlib.lines import Line2D

    for b in result.branches:
        p, x, st = np.asarray(b["p"]), np.asarray(b["x"]), np.asarray(b["stable"])
        for mask, style in ((st, "-"), (~st, "--")):
            ax[0].plot(p, np.where(mask, x, np.nan), style, color=color(b["class"]), lw=1.0)
    handles = [Line2D([], [], color=color(c), label=f"class {c} ($P_c$ = {result.spec.class_sizes[c]})")
               for c in sorted({b["class"] for b in result.branches})]
    handles += [Line2D([], [], color="k", ls="--", label="unstable root"),
                Line2D([], [], color="k", marker="o", mfc="none", ls="none", label="fold"),
                Line2D([], [], color="k", ls=":", label="first-order transition")]
    for sp in result.special_points:
        if sp["kind"] == "fold":
            ax[0].plot(sp["p"], sp["x"], "o", color=color(sp["class"]), mfc="none")
        else:
            ax[0].axvline(sp["p"], color=color(sp["class"]), ls=":", lw=0.8)
    ax[0].set_xlabel(axis_label(result.parameter))
    ax[0].set_ylabel(r"class eigenvalue $x_c$ of X")
    ax[0].set_title("root curves")
    ax[0].legend(handles=handles)
    ps = np.array([s["p"] for s in result.selected])
    f = np.array([np.diag(np.asarray(s["outputs"])) for s in result.selected])
    for c in range(f.shape[1]):
        ax[1].plot(ps, f[:, c], ".-", color=color(c), label=f"$f_{{{c}{c}}}$")
    ax2 = ax[1].twinx()
    ax2.plot(ps, [s["free_energy"] for s in result.selected], "k-", lw=0.8)
    ax2.set_ylabel("action S (black)")
    ax[1].set_xlabel(axis_label(result.parameter))
    ax[1].set_ylabel(r"class output $f_{cc}$")
    ax[1].legend()
    ax[1].set_title("selected solution (largest S, stable)")


def _plot_sequential(ax, result):
    """Nonlinear φ: f_cc and the action along the warm-started grid (open markers: unstable)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    pts = result.selected
    ps = np.array([r["p"] for r in pts])
    f = np.array([np.diag(np.asarray(r["outputs"])) for r in pts]).reshape(len(pts), -1)
    st = np.array([r["stable"] for r in pts], dtype=bool)
    for c in range(f.shape[1]):
        ax[0].plot(ps, f[:, c], "-", color=color(c), lw=0.8)
        ax[0].plot(ps[st], f[st, c], "o", color=color(c))
        ax[0].plot(ps[~st], f[~st, c], "o", color=color(c), mfc="none")
    for sp in result.special_points:
        ax[0].axvspan(*sorted(sp["bracket_p"]), color="0.85", zorder=0)
    handles = [Line2D([], [], color=color(c), marker="o", label=f"$f_{{{c}{c}}}$") for c in range(f.shape[1])]
    handles += [Line2D([], [], color="k", marker="o", mfc="none", ls="none", label="unstable"),
                Patch(color="0.85", label="bracketed change")]
    ax[0].set_xlabel(axis_label(result.parameter))
    ax[0].set_ylabel(r"class output $f_{cc}$")
    ax[0].set_title("warm-started solves")
    ax[0].legend(handles=handles)
    ax[1].errorbar(ps, [r["free_energy"] for r in pts], yerr=[r["free_energy_error"] for r in pts], fmt="k.-")
    ax[1].set_xlabel(axis_label(result.parameter))
    ax[1].set_ylabel("action S of the selected saddle")
