"""Finite-P maps and lines: the coding scheme of the single-neuron measure p_t(a) (THEORY §3–4).

:func:`plot_finite_p_map` draws a :class:`solvers.finite_p.maps.FiniteMap` as four panels: the
coding-scheme label of p_t (modes and their codes, the ReLU condensate), the readout spread
tr Cov_p(a) (zero in the symmetric phase as P → ∞), the mass of the heaviest mode, and the
output f_00 of class 0. :func:`plot_finite_p_line` draws a
:class:`solvers.finite_p.maps.FiniteContinuation`: f_cc, U_cc, the spread and the mode masses per
code against the parameter. Both write a PNG, a PDF and a JSON sidecar (same name; the numbers
shown and the settings), two journal columns wide.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .phase_diagram import REGION_COLORS, cell_edges
from .style import AXIS_LABELS, SEQUENTIAL, axis_label, figsize, pyplot, save, write_sidecar

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
    colors = [REGION_COLORS[k % len(REGION_COLORS)] for k in range(max(1, len(names)))]
    cmap = ListedColormap(colors).with_extremes(bad=(1, 1, 1, 0))
    ax.pcolormesh(xe, ye, code, cmap=cmap, norm=BoundaryNorm(np.arange(len(colors) + 1) - 0.5, len(colors)),
                  shading="flat")
    ax.set_title("coding scheme of p(a)")
    return [Patch(facecolor=colors[k], label=n) for k, n in enumerate(names)]


def plot_finite_p_map(fmap, out, title: str | None = None) -> Path:
    """Four panels of a finite-P map (module docstring); returns the PNG path (the PDF is next to it)."""
    plt = pyplot()
    xs, ys = np.asarray(fmap.x), np.asarray(fmap.y)
    xscale, yscale = _scale(xs), _scale(ys)
    xe, ye = cell_edges(np.sort(xs), xscale), cell_edges(np.sort(ys), yscale)
    fig, axes = plt.subplots(2, 2, figsize=figsize(2, 6.0))
    handles = _labels_panel(axes[0, 0], fmap, xe, ye, plt)
    panels = ((axes[0, 1], "spread", r"spread tr Cov$_p$(a)"),
              (axes[1, 0], lambda p: p["mode_masses"][0] if p["mode_masses"] else np.nan,
               "mass of the heaviest mode"),
              (axes[1, 1], lambda p: p["f_diag"][0], r"output $f_{00}$"))
    for ax, key, name in panels:
        Z = np.ma.masked_invalid(fmap.grid(key).astype(np.float64))
        mesh = ax.pcolormesh(xe, ye, Z, cmap=SEQUENTIAL, shading="flat", rasterized=True)
        fig.colorbar(mesh, ax=ax, fraction=0.05).set_label(name)
    for ax in axes.ravel():
        ax.set_xscale(xscale)
        ax.set_yscale(yscale)
        ax.set_xlabel(axis_label(fmap.x_name))
        ax.set_ylabel(axis_label(fmap.y_name))
    spec = fmap.spec
    fig.suptitle(title or f"finite P: {spec.nonlinearity}, classes {','.join(map(str, spec.class_sizes))}")
    fig.tight_layout(rect=(0, 0.04 + 0.025 * ((len(handles) + 1) // 2), 1, 1))
    fig.legend(handles=handles, loc="lower center", ncol=2)
    png = save(fig, out, layout=False)
    labels = [lab for lab in fmap.grid("label", fill=None).ravel() if lab is not None]
    write_sidecar(png, "codingschemes phase-diagram --finite-p", None,
                  {**spec.to_dict(), "x": fmap.x_name, "x_values": xs, "y": fmap.y_name, "y_values": ys},
                  {"labels": {lab: labels.count(lab) for lab in sorted(set(labels))}, "points": int(xs.size * ys.size),
                   "computed": len(labels), "spread": fmap.grid("spread").astype(np.float64)})
    return png


def plot_finite_p_line(cont, out, title: str | None = None) -> Path:
    """f_cc, U_cc, the spread and the mode masses per code along a finite-P continuation."""
    plt = pyplot()
    v = np.asarray(cont.values, dtype=np.float64)
    pts = cont.points
    m = len(cont.spec.class_sizes)
    fig, axes = plt.subplots(2, 2, figsize=figsize(2, 4.8), sharex=True)

    def col(key, c):
        return np.array([np.nan if p is None else p[key][c] for p in pts])

    for c in range(m):
        axes[0, 0].plot(v, col("f_diag", c), marker=".", label=f"class {c}")
        axes[0, 1].plot(v, col("U_diag", c), marker=".", label=f"class {c}")
    axes[0, 0].set_ylabel(r"output $f_{cc}$")
    axes[0, 1].set_ylabel(r"readout moment $U_{cc}$")
    axes[0, 0].legend()
    axes[1, 0].plot(v, cont.series("spread"), marker=".", color="k")
    axes[1, 0].set_ylabel(r"spread tr Cov$_p$(a)")
    codes = sorted({c for p in pts if p is not None for c in p["code_masses"]})
    for code in codes:
        axes[1, 1].plot(v, [np.nan if p is None else p["code_masses"].get(code, 0.0) for p in pts], marker=".",
                        label=code)
    axes[1, 1].set_ylabel("mode mass per code")
    if codes:
        axes[1, 1].legend(ncol=2)
    for ax in axes[1]:
        ax.set_xlabel(axis_label(cont.parameter))
    spec = cont.spec
    fig.suptitle(title or f"finite P: {spec.nonlinearity}, classes {','.join(map(str, spec.class_sizes))}")
    png = save(fig, out)
    write_sidecar(png, "codingschemes continue --finite-p", None,
                  {**spec.to_dict(), "parameter": cont.parameter, "values": v},
                  {"f_diag": [None if p is None else p["f_diag"] for p in pts],
                   "U_diag": [None if p is None else p["U_diag"] for p in pts], "spread": cont.series("spread"),
                   "code_masses": [None if p is None else p["code_masses"] for p in pts]})
    return png
