"""Figure of a large-P continuation: f_cc, U_cc and the number of occupied readouts along the parameter.

Input is a :class:`solvers.large_p.continuation.LargePContinuation` or its
``to_json()`` dictionary. Each followed branch is drawn per class c (one
colour per class): solid where it is the global solution (the minimiser of
G∞), dashed where it is only a constrained stationary point; symmetry images
found by branch switching are not drawn again. Special points are vertical
lines, styled by kind (branch point, stability change, fold, ...), labelled
with their parameter value. Used by ``codingschemes continue --out DIR`` (PNG + PDF + JSON
sidecar with the special points, the branch ends and the problem).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .style import PALETTE, axis_label, color, figsize, pyplot, save, write_sidecar

__all__ = ["plot_continuation"]

#: special points by kind: (Okabe–Ito colour, line style)
_KIND_STYLE = {
    "branch-point": (PALETTE[6], "--"),
    "stability-change": (PALETTE[1], ":"),
    "fold": (PALETTE[7], "-."),
    "domain-boundary": ("0.5", "--"),
    "structure-change": (PALETTE[3], ":"),
}


def _segments(mask):
    """Index runs (start, stop) where ``mask`` is True, extended by one point so runs join up."""
    out, i, k = [], 0, len(mask)
    while i < k:
        if mask[i]:
            j = i
            while j + 1 < k and mask[j + 1]:
                j += 1
            out.append((max(i - 1, 0) if i > 0 and not mask[i - 1] else i, j + 1))
            i = j + 1
        else:
            i += 1
    return out


def plot_continuation(result, path) -> Path:
    """Write PNG + PDF + sidecar with f_cc, U_cc and occupations along the continued parameter, special
    points marked; returns the PNG path."""
    from matplotlib.lines import Line2D

    data = result.to_json() if hasattr(result, "to_json") else dict(result)
    plt = pyplot()
    par = data["parameter"]
    m = len(data["problem"]["class_fractions"])
    fig, axes = plt.subplots(3, 1, figsize=figsize(2, 4.4), sharex=True)
    for b in data["branches"]:
        if b.get("duplicate_of") is not None or len(b["parameter"]) < 2:
            continue
        _draw_branch(axes, b, m)
    kinds = {}
    for s in data["special_points"]:
        colour, ls = kinds.setdefault(s["kind"], _KIND_STYLE.get(s["kind"], ("k", ":")))
        for ax in axes:
            ax.axvline(s["parameter"], color=colour, ls=ls, lw=0.8)
        axes[0].annotate(f"{s['parameter']:.4g}", (s["parameter"], 1.0), xycoords=("data", "axes fraction"),
                         rotation=90, va="top", ha="right", color=colour)
    axes[0].set_ylabel(r"output $f_{cc}$")
    axes[1].set_ylabel(r"$U_{cc} = E[a_c^2]$")
    axes[2].set_ylabel("occupied readouts")
    axes[2].set_xlabel(axis_label(par))
    handles = [Line2D([], [], color=color(c), label=f"class {c}") for c in range(m)]
    handles += [Line2D([], [], color="k", ls="-", label="global solution"),
                Line2D([], [], color="k", ls="--", lw=0.7, label="constrained")]
    handles += [Line2D([], [], color=c, ls=ls, lw=0.8, label=k) for k, (c, ls) in kinds.items()]
    axes[0].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    if data["from"] > data["to"]:
        axes[2].invert_xaxis()
    pr = data["problem"]
    axes[0].set_title(f"large P, {pr['nonlinearity']}")
    png = save(fig, path)
    write_sidecar(png, "codingschemes continue", None,
                  {"problem": pr, "parameter": par, "from": data["from"], "to": data["to"]},
                  {"special_points": [{k: s.get(k) for k in ("kind", "parameter", "bracket")}
                                      for s in data["special_points"]],
                   "branches": [{"kind_first": b["kind"][0], "kind_last": b["kind"][-1],
                                 "parameter": [b["parameter"][0], b["parameter"][-1]],
                                 "f_diag_end": np.diag(np.asarray(b["f"][-1], dtype=float)),
                                 "n_occupied_end": b["n_occupied"][-1]}
                                for b in data["branches"] if b.get("duplicate_of") is None and len(b["parameter"])]})
    return png


def _draw_branch(axes, b, m):
    """One followed branch: f_cc and U_cc per class, solid where global, dashed where constrained."""
    p = np.asarray(b["parameter"], dtype=float)
    f = np.asarray(b["f"], dtype=float)
    U = np.asarray(b["U"], dtype=float)
    glob = np.array([k in ("global", "linear-gaussian") for k in b["kind"]])
    for style, mask in (("-", glob), ("--", ~glob)):
        for i0, i1 in _segments(mask):
            sl = np.arange(i0, i1)
            if len(sl) < 2:
                continue
            for c in range(m):
                lw = (1.8 - 0.4 * (c % 3)) if style == "-" else 0.7  # thinner on top: equal classes show
                axes[0].plot(p[sl], f[sl, c, c], style, color=color(c), lw=lw)
                axes[1].plot(p[sl], U[sl, c, c], style, color=color(c), lw=lw)
            axes[2].step(p[sl], np.asarray(b["n_occupied"])[sl], style, where="post", color="k",
                         lw=1.2 if style == "-" else 0.7)
