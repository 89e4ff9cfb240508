"""Phase diagram: a categorical map of a label over a swept (x, y) grid, with boundary curves.

Input is a sweep file written by :func:`solvers.sweep.run_sweep` (or its
records). Each grid cell is coloured by the label of its point (e.g. the
coding scheme found there); points that failed or were not computed are
left blank. The grid may be non-uniform: cell edges lie halfway between
neighbouring values (geometrically halfway on a log axis). Written as PNG + PDF + JSON sidecar
(the points per label, the grid, the boundary curves drawn and the given settings).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from solvers.sweep import load_sweep, record_value, to_grid

from .style import axis_label, figsize, pyplot, save, write_sidecar

__all__ = ["plot_phase_diagram", "cell_edges"]

_LINESTYLES = ("-", "--", ":", "-.")
#: region colours: light tints that stay distinct for colour-blind readers (Okabe–Ito family) and under black curves
REGION_COLORS = ("#cfe6f5", "#f7d9a8", "#b9e3cf", "#e8c4d8", "#f3efa0", "#9cc3e0", "#f2b9a0", "#d9d9d9",
                 "#7fb8a4", "#c9a2c9")


def cell_edges(values, scale: str = "linear") -> np.ndarray:
    """n + 1 cell edges around n sorted centres: midpoints inside, mirrored half-steps at the ends.

    ``scale="log"`` takes geometric midpoints (values must be positive). A
    single value gets a cell of width 1 (a factor 10 on a log axis).
    """
    v = np.asarray(values, dtype=np.float64)
    if scale not in ("linear", "log"):
        raise ValueError(f"scale must be 'linear' or 'log', got {scale!r}")
    if v.ndim != 1 or v.size == 0:
        raise ValueError("cell_edges needs a non-empty 1-d sequence of values")
    if scale == "log":
        if np.any(v <= 0):
            raise ValueError(f"a log axis needs positive values, got minimum {v.min():g}")
        return np.exp(cell_edges(np.log(v), "linear") if v.size > 1 else np.log(v[0]) + np.array([-0.5, 0.5]) * math.log(10))
    if v.size == 1:
        return v[0] + np.array([-0.5, 0.5])
    if np.any(np.diff(v) <= 0):
        raise ValueError("cell_edges needs strictly increasing values")
    mid = 0.5 * (v[1:] + v[:-1])
    return np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]])


def _label_text(value) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _sort_key(value):
    return (0, float(value), "") if isinstance(value, (int, float)) and not isinstance(value, bool) else (1, 0.0, str(value))


def _axis(values, scale, name):
    """Numeric cell edges and tick settings for one axis (positions 0..n-1 for non-numeric values)."""
    if values.dtype != object:
        return cell_edges(values, scale), None
    if scale != "linear":
        raise ValueError(f"{name} values are not numbers; a {scale} axis needs numbers")
    return cell_edges(np.arange(len(values), dtype=np.float64)), [str(v) for v in values]


def _check_boundaries(boundaries):
    out = []
    for k, b in enumerate(boundaries or []):
        if not isinstance(b, dict) or not {"x", "y"} <= set(b):
            raise ValueError(f"boundaries[{k}] must be a dict with keys 'x', 'y' and optionally 'kind'")
        bx, by = np.asarray(b["x"], dtype=np.float64), np.asarray(b["y"], dtype=np.float64)
        if bx.shape != by.shape or bx.ndim != 1:
            raise ValueError(f"boundaries[{k}]: 'x' and 'y' must be 1-d of equal length, got {bx.shape} and {by.shape}")
        out.append((bx, by, str(b.get("kind", "boundary"))))
    return out


def plot_phase_diagram(source, x: str, y: str, label_key, *, boundaries=None,
                       out="codingschemes_out/phase_diagram.png", title: str | None = None,
                       xscale: str = "linear", yscale: str = "linear", label_order=None,
                       colors=None, settings: dict | None = None) -> Path:
    """Write a PNG (and PDF, JSON sidecar) of the label at each (x, y) point of a sweep; returns its path.

    Parameters
    ----------
    source
        Path of a sweep file, or its records (from ``run_sweep``/``load_sweep``).
        With a file whose header has a grid over ``x`` and ``y``, all grid
        values are shown, including rows or columns not computed yet.
    x, y
        Parameter names for the horizontal and vertical axes.
    label_key
        Result key (``"a.b"`` for nested; or a parameter name; or a callable
        ``f(record)``) whose value is the phase label. Labels are shown as
        strings in the legend; cells with status ``"error"`` or without a
        record are blank.
    boundaries
        Curves to draw over the map: ``[{"x": [...], "y": [...], "kind": str}]``,
        one line style per kind, each kind once in the legend.
    out
        PNG file to write (its folder is created).
    xscale, yscale
        ``"linear"`` or ``"log"``.
    label_order, colors
        Optional order of labels in the colour map/legend (others follow,
        sorted) and matching colours (any matplotlib colour specs).
    settings
        Stored in the sidecar's "settings" (e.g. the model), next to the grid.
    """
    xs, ys, codes, ordered = _label_grid(source, x, y, label_key, label_order)
    png = _draw(xs, ys, codes, ordered, x, y, label_key, boundaries=boundaries, out=out, title=title,
                xscale=xscale, yscale=yscale, colors=colors)
    counts = np.bincount(codes.compressed(), minlength=len(ordered))
    drawn = [b for b in _check_boundaries(boundaries) if (np.isfinite(b[0]) & np.isfinite(b[1])).sum() >= 2]
    write_sidecar(png, "codingschemes phase-diagram", None,
                  {**(settings or {}), "x": x, "y": y, "x_values": xs, "y_values": ys, "xscale": xscale,
                   "yscale": yscale},
                  {"labels": {t: int(n) for t, n in zip(ordered, counts)}, "points": int(codes.size),
                   "missing": int(np.ma.count_masked(codes)),
                   "curves": [{"kind": kind, "points": int(len(bx))} for bx, _, kind in drawn]})
    return png


def _label_grid(source, x: str, y: str, label_key, label_order):
    """(x values, y values, masked label codes (ny, nx), label texts in code order) of a sweep."""
    header = None
    if isinstance(source, (str, os.PathLike)):
        header, records = load_sweep(source)
    else:
        records = list(source)
    grid = (header or {}).get("grid") or {}
    axis_values = {g["name"]: g["values"] for g in (grid.get("x"), grid.get("y")) if g}
    key = label_key if callable(label_key) else (lambda rec: record_value(rec, label_key))
    # wrapped in a list so that to_grid keeps the raw values (bools, ints) instead of making floats
    xs, ys, Z = to_grid(records, x, y, lambda rec: [key(rec)], x_values=axis_values.get(x),
                        y_values=axis_values.get(y))
    Z = np.vectorize(lambda v: v[0] if isinstance(v, list) else None, otypes=[object])(Z)
    present = {}
    for v in Z.ravel():
        if v is not None:
            present.setdefault(_label_text(v), v)
    ordered = sorted(present, key=lambda t: _sort_key(present[t]))
    if label_order is not None:
        wanted = [_label_text(v) for v in label_order]
        ordered = [t for t in wanted if t in present] + [t for t in ordered if t not in wanted]
    if not ordered:
        raise ValueError(f"no point has a label {label_key!r} (all points missing or failed)")
    code = {t: k for k, t in enumerate(ordered)}
    codes = np.ma.masked_all(Z.shape, dtype=np.int64)
    for idx, v in np.ndenumerate(Z):
        if v is not None:
            codes[idx] = code[_label_text(v)]
    return xs, ys, codes, ordered


def _draw(xs, ys, codes, ordered, x, y, label_key, *, boundaries, out, title, xscale, yscale, colors) -> Path:
    """The map of label codes with its legend and boundary curves, written to ``out`` (PNG + PDF).

    Regions are filled cells; transitions are drawn as black curves on top (one line style per
    kind). A boundary kind without a drawable curve (fewer than two finite points) is left out of
    the legend.
    """
    plt = pyplot()
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    n = len(ordered)
    if colors is None:
        colors = [REGION_COLORS[k % len(REGION_COLORS)] for k in range(n)]
    elif len(colors) < n:
        raise ValueError(f"{len(colors)} colors given for {n} labels {ordered}")
    cmap = ListedColormap(list(colors)[:n]).with_extremes(bad=(1.0, 1.0, 1.0, 0.0))
    norm = BoundaryNorm(np.arange(n + 1) - 0.5, n)

    xe, xticks = _axis(xs, xscale, x)
    ye, yticks = _axis(ys, yscale, y)
    fig, ax = plt.subplots(figsize=figsize(2, 3.2))
    ax.pcolormesh(xe, ye, codes, cmap=cmap, norm=norm, shading="flat", edgecolors="none", rasterized=True)
    ax.set_xscale(xscale)
    ax.set_yscale(yscale)
    if xticks is not None:
        ax.set_xticks(np.arange(len(xticks)), xticks)
    if yticks is not None:
        ax.set_yticks(np.arange(len(yticks)), yticks)
    ax.set_xlim(xe[0], xe[-1])
    ax.set_ylim(ye[0], ye[-1])

    handles = [Patch(facecolor=colors[k], edgecolor="none", label=t) for k, t in enumerate(ordered)]
    if np.ma.count_masked(codes):
        handles.append(Patch(facecolor="white", edgecolor="0.5", label="missing / error"))
    styles = {}
    for bx, by, kind in _check_boundaries(boundaries):
        ok = np.isfinite(bx) & np.isfinite(by)
        if ok.sum() < 2:
            continue
        style = styles.setdefault(kind, _LINESTYLES[len(styles) % len(_LINESTYLES)])
        ax.plot(bx[ok], by[ok], color="black", linestyle=style, linewidth=1.2)
    handles += [Line2D([], [], color="black", linestyle=s, label=kind) for kind, s in styles.items()]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0),
              title=label_key if isinstance(label_key, str) else None)
    ax.set_xlabel(axis_label(x))
    ax.set_ylabel(axis_label(y))
    done = int(codes.count())
    ax.set_title(title if title is not None else f"{label_key if isinstance(label_key, str) else 'label'} "
                 f"over ({x}, {y}); {done}/{codes.size} points")
    return save(fig, out)
