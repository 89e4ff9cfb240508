"""Figure of a large-P continuation: f_cc, U_cc and the number of occupied readouts along the parameter.

Input is a :class:`solvers.large_p.continuation.LargePContinuation` or its
``to_json()`` dictionary. Each followed branch is drawn per class c (one
colour per class): solid where it is the global solution (the minimiser of
G∞), dashed where it is only a constrained stationary point; symmetry images
found by branch switching are not drawn again. Special points are vertical
lines, styled by kind (branch point, stability change, fold, ...), labelled
with their parameter value. Used by ``codingschemes continue --out DIR``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .style import pyplot, save

__all__ = ["plot_continuation"]

_KIND_STYLE = {
    "branch-point": ("tab:red", "--"),
    "stability-change": ("tab:orange", ":"),
    "fold": ("tab:purple", "-."),
    "domain-boundary": ("tab:gray", "--"),
    "structure-change": ("tab:green", ":"),
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
    """Write a PNG with f_cc, U_cc and occupations along the continued parameter, special points marked."""
    data = result.to_json() if hasattr(result, "to_json") else dict(result)
    plt = pyplot()
    par = data["parameter"]
    m = len(data["problem"]["class_fractions"])
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, axes = plt.subplots(3, 1, figsize=(7.5, 8.2), sharex=True)
    drawn = set()
    for b in data["branches"]:
        if b.get("duplicate_of") is not None or len(b["parameter"]) < 2:
            continue
        p = np.asarray(b["parameter"], dtype=float)
        f = np.asarray(b["f"], dtype=float)
        U = np.asarray(b["U"], dtype=float)
        glob = np.array([k in ("global", "linear-gaussian") for k in b["kind"]])
        order = np.arange(len(p))
        for style, mask in (("-", glob), ("--", ~glob)):
            for i0, i1 in _segments(mask):
                sl = order[i0:i1]
                if len(sl) < 2:
                    continue
                for c in range(m):
                    lab = f"class {c}" if (c, style) not in drawn and style == "-" else None
                    drawn.add((c, style))
                    lw = (2.6 - 0.6 * (c % 3)) if style == "-" else 0.9  # thinner on top: equal classes show
                    axes[0].plot(p[sl], f[sl, c, c], style, color=colours[c % len(colours)], lw=lw, label=lab)
                    axes[1].plot(p[sl], U[sl, c, c], style, color=colours[c % len(colours)], lw=lw)
                axes[2].step(p[sl], np.asarray(b["n_occupied"])[sl], style, where="post", color="k",
                             lw=1.6 if style == "-" else 0.9)
    for s in data["special_points"]:
        colour, ls = _KIND_STYLE.get(s["kind"], ("k", ":"))
        for ax in axes:
            ax.axvline(s["parameter"], color=colour, ls=ls, lw=1.0)
        axes[0].annotate(f"{s['kind']}\n{s['parameter']:.5g}", (s["parameter"], 1.0),
                         xycoords=("data", "axes fraction"), rotation=90, fontsize=6.5, va="top", ha="right",
                         color=colour)
    axes[0].set_ylabel("f_cc  (mean output on class c)")
    axes[1].set_ylabel("U_cc = E[a_c²]")
    axes[2].set_ylabel("occupied readouts")
    axes[2].set_xlabel(par)
    axes[0].legend(fontsize=7, loc="best")
    if data["from"] > data["to"]:
        axes[2].invert_xaxis()
    pr = data["problem"]
    fig.suptitle(f"large-P continuation in {par}: {pr['nonlinearity']}, ρ = "
                 f"{[round(x, 3) for x in pr['class_fractions']]}, σ_1 = {pr['sigma_w']:g}, σ̄_a = {pr['sigma_a_bar']:g}"
                 + ("" if par == "temperature" else f", T = {pr['temperature']:g}")
                 + "\nsolid: global solution, dashed: constrained (not the minimiser of G∞)", fontsize=9)
    return save(fig, path)
