"""Finite-P maps and lines: the coding scheme of the single-neuron measure p_t(a) (THEORY §3–4).

:func:`plot_finite_p_map` draws a :class:`solvers.finite_p.maps.FiniteMap` as four panels: the
coding-scheme label of p_t (modes and their codes, the ReLU condensate), the readout spread
tr Cov_p(a) (zero in the symmetric phase as P → ∞), the mass of the heaviest mode, and the
output f_00 of class 0. :func:`plot_finite_p_line` draws a
:class:`solvers.finite_p.maps.FiniteContinuation`: f_cc, U_cc, the spread and the mode masses per
code against the parameter. Both write a PNG and a PDF (same name) sized for print (7 × 5.6 in).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .phase_diagram import cell_edges
from .style import AXIS_LABELS, pyplot, save

__all__ = ["plot_finite_p_map", "plot_finite_p_line", "AXIS_LABELS"]


def _scale(values) -> str:
    v = np.asarray(values, dtype=np.float64)
    ok = v.size > 2 and np.all(v > 0) and v.max() / v.min() > 20
    return "log" if ok else "linear"


def _labels_panel(ax, fmap, xe, ye, plt):
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    labels = fmap.grid("label", fill=None)
    names = sorted({lab for lab in labels.ravel() if lab is not None})
    code = np.ma.masked_invalid(np.array([[np.nan if lab is None else names.index(lab) for lab in row]
                                          for row in labels], dtype=np.float64))
    base = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    colors = [base(k % base.N) for k in range(max(1, len(names)))]
    cmap = ListedColormap(colors).with_extremes(bad=(1, 1, 1, 0))
    ax.pcolormesh(xe, ye, code, cmap=cmap, norm=BoundaryNorm(np.arange(len(colors) + 1) - 0.5, len(colors)),
                  shading="flat")
    ax.set_title("coding scheme of p(a)", fontsize=10)
    return [Patch(facecolor=colors[k], label=n) for k, n in enumerate(names)]


def plot_finite_p_map(fmap, out, title: str | None = None) -> Path:
    """Four panels of a finite-P map (module docstring); returns the PNG path (the PDF is next to it)."""
    plt = pyplot()
    xs, ys = np.asarray(fmap.x), np.asarray(fmap.y)
    xscale, yscale = _scale(xs), _scale(ys)
    xe, ye = cell_edges(np.sort(xs), xscale), cell_edges(np.sort(ys), yscale)
    fig, axes = plt.subplots(2, 2, figsize=(7.0, 7.4))
    handles = _labels_panel(axes[0, 0], fmap, xe, ye, plt)
    panels = ((axes[0, 1], "spread", r"spread tr Cov$_p$(a)", "viridis"),
              (axes[1, 0], lambda p: p["mode_masses"][0] if p["mode_masses"] else np.nan,
               "mass of the heaviest mode", "magma"),
              (axes[1, 1], lambda p: p["f_diag"][0], r"output $f_{00}$", "cividis"))
    for ax, key, name, cmap in panels:
        Z = np.ma.masked_invalid(fmap.grid(key).astype(np.float64))
        mesh = ax.pcolormesh(xe, ye, Z, cmap=cmap, shading="flat")
        fig.colorbar(mesh, ax=ax, fraction=0.05)
        ax.set_title(name, fontsize=10)
    for ax in axes.ravel():
        ax.set_xscale(xscale)
        ax.set_yscale(yscale)
        ax.set_xlabel(AXIS_LABELS.get(fmap.x_name, fmap.x_name), fontsize=9)
        ax.set_ylabel(AXIS_LABELS.get(fmap.y_name, fmap.y_name), fontsize=9)
        ax.tick_params(labelsize=8)
    spec = fmap.spec
    fig.suptitle(title or f"finite P: {spec.nonlinearity}, classes {','.join(map(str, spec.class_sizes))}",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0.04 + 0.025 * ((len(handles) + 1) // 2), 1, 1))
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=7, frameon=False)
    return save(fig, out, layout=False)


def plot_finite_p_line(cont, out, title: str | None = None) -> Path:
    """f_cc, U_cc, the spread and the mode masses per code along a finite-P continuation."""
    plt = pyplot()
    v = np.asarray(cont.values, dtype=np.float64)
    pts = cont.points
    m = len(cont.spec.class_sizes)
    fig, axes = plt.subplots(2, 2, figsize=(7.0, 5.6), sharex=True)

    def col(key, c):
        return np.array([np.nan if p is None else p[key][c] for p in pts])

    for c in range(m):
        axes[0, 0].plot(v, col("f_diag", c), marker=".", label=f"class {c}")
        axes[0, 1].plot(v, col("U_diag", c), marker=".", label=f"class {c}")
    axes[0, 0].set_ylabel(r"output $f_{cc}$")
    axes[0, 1].set_ylabel(r"readout moment $U_{cc}$")
    axes[0, 0].legend(fontsize=7)
    axes[1, 0].plot(v, cont.series("spread"), marker=".", color="k")
    axes[1, 0].set_ylabel(r"spread tr Cov$_p$(a)")
    codes = sorted({c for p in pts if p is not None for c in p["code_masses"]})
    for code in codes:
        axes[1, 1].plot(v, [np.nan if p is None else p["code_masses"].get(code, 0.0) for p in pts], marker=".",
                        label=code)
    axes[1, 1].set_ylabel("mode mass per code")
    if codes:
        axes[1, 1].legend(fontsize=7, ncol=2)
    for ax in axes[1]:
        ax.set_xlabel(AXIS_LABELS.get(cont.parameter, cont.parameter))
    for ax in axes.ravel():
        ax.tick_params(labelsize=8)
    spec = cont.spec
    fig.suptitle(title or f"finite P: {spec.nonlinearity}, classes {','.join(map(str, spec.class_sizes))}",
                 fontsize=11)
    return save(fig, out)
