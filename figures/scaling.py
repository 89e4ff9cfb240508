"""Finite-size scaling figure: the finite-P crossover sharpening into the large-P transition (THEORY §4).

Three panels from a :class:`solvers.finite_p.scaling.ScalingResult`: the order parameter (the
readout spread s = tr Cov_p(a)) against T at every P with the large-P curve s_∞(T); the collapse
s·P^x against (T − T_c)·P^x with the fitted exponents of the height and of the equivalent width
J/χ_max of the susceptibility; the widths, shifts and heights against P on log axes with their
power-law fits. PNG (300 dpi), PDF and the JSON sidecar (T_c, the fitted exponents, the crossovers
per P and the problem), two journal columns wide.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .style import SEQUENTIAL, figsize, pyplot, save, write_sidecar

__all__ = ["plot_scaling"]


def _curve(line):
    T = np.array([p["temperature"] for p in line["points"]])
    s = np.array([p["spread"] for p in line["points"]])
    order = np.argsort(T)
    return T[order], s[order]


def plot_scaling(result, out) -> Path:
    """The three panels of the module docstring; returns the PNG path (the PDF is next to it)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=figsize(2, 2.7))
    cmap = plt.get_cmap(SEQUENTIAL)
    tc = result.tc
    xw, xh = (result.fits.get(k, {}).get("exponent", np.nan) for k in ("equivalent_width", "height"))
    xw, xh = (0.5 if not np.isfinite(v) else v for v in (xw, xh))
    n = max(1, len(result.P) - 1)
    for k, (P, line) in enumerate(zip(result.P, result.lines)):
        if line is None:
            continue
        T, s = _curve(line)
        color = cmap(k / n)
        axes[0].plot(T, s, ".-", color=color, label=f"P = {P}", lw=0.8, ms=2)
        axes[1].plot((T - tc) * P**xw, s * P**xh, ".-", color=color, lw=0.8, ms=2)
    ref = result.large_p
    axes[0].plot(ref["temperature"], ref["spread"], "k--", lw=1.2, label="P → ∞")
    for ax in axes[:2]:
        ax.axvline(tc if ax is axes[0] else 0.0, color="0.6", lw=0.8)
    axes[0].set_xlabel("temperature T")
    axes[0].set_ylabel(r"spread $s$ = tr Cov$_p$(a)")
    axes[0].legend(ncol=2)
    axes[1].set_xlabel(rf"$(T - T_c)\,P^{{{xw:.2f}}}$")
    axes[1].set_ylabel(rf"$s\,P^{{{xh:.2f}}}$")
    axes[1].set_title("collapse")
    P = np.array(result.P, dtype=float)
    chis = result.susceptibilities or [None] * len(result.P)
    for key, marker in (("equivalent_width", "o"), ("susceptibility_shift", "D"), ("height", "^"),
                        ("spread_at_tc", "v"), ("shift", "s")):
        rows = chis if key.startswith(("equivalent", "susceptibility")) else result.crossovers
        if key not in result.fits:
            continue
        vals = np.array([np.nan if c is None else abs(c[key]) for c in rows])
        fit = result.fits[key]
        label = {"shift": "|split − T_c|", "susceptibility_shift": "|T* − T_c| (χ peak)",
                 "equivalent_width": "width J/χ_max"}.get(key, key)
        line, = axes[2].loglog(P, vals, marker, ms=3,
                               label=f"{label}: x = {fit['exponent']:.2f} ± {fit['exponent_error']:.2f}")
        if np.isfinite(fit["exponent"]):
            axes[2].loglog(P, fit["amplitude"] * P ** -fit["exponent"], "-", color=line.get_color(), lw=0.8)
    from matplotlib.ticker import NullFormatter

    axes[2].xaxis.set_minor_formatter(NullFormatter())
    axes[2].set_xlabel("P")
    axes[2].set_ylabel("widths, shifts (T); height, s(T_c)")
    axes[2].legend()
    axes[0].set_title(f"{result.problem.nonlinearity}, $T_c$ = {tc:.4g}")
    png = save(fig, out)
    write_sidecar(png, "codingschemes scaling", None,
                  {"problem": result.problem.to_dict(), "P": list(result.P), "tc_source": result.tc_source},
                  {"tc": tc, "fits": result.fits, "crossovers": result.crossovers,
                   "susceptibilities": result.susceptibilities,
                   "points_per_P": [None if line is None else len(line["points"]) for line in result.lines]})
    return png
