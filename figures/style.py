"""The one figure style: sizes, fonts, palettes, colour bars, and one way to save a figure.

Print sizes are those of a two-column journal: :data:`ONE_COLUMN` (3.4 in) and :data:`TWO_COLUMNS`
(7 in) wide. Fonts are :data:`FONT_PT` (7 pt) or larger at that size (set once in the rcParams by
:func:`pyplot`). Lines and markers use the Okabe–Ito palette (:data:`PALETTE`), which stays distinct
for the common colour-vision deficiencies; maps use :data:`SEQUENTIAL` (viridis) for non-negative
values and :data:`DIVERGING` (RdBu_r, a ColorBrewer diverging map that is safe for red–green
deficiency) for signed ones, each with a colour bar (:func:`heatmap`).

:func:`save` writes every figure twice, as a vector PDF and as a PNG at :data:`DPI` (300) dots per
inch at print size, and :func:`write_sidecar` writes the JSON sidecar ``<name>.json`` with the
numbers the figure shows and the settings that made them (captions are generated from it,
docs/gen_gallery.py).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["ONE_COLUMN", "TWO_COLUMNS", "FONT_PT", "DPI", "PALETTE", "SEQUENTIAL", "DIVERGING", "pyplot",
           "figsize", "color", "axis_label", "AXIS_LABELS", "heatmap", "save", "write_sidecar", "sidecar_path"]

ONE_COLUMN = 3.4  # inches
TWO_COLUMNS = 7.0
FONT_PT = 7.0
DPI = 300
#: Okabe & Ito (2008): black, orange, sky blue, bluish green, yellow, blue, vermillion, reddish purple
PALETTE = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")
#: the line colours in the order used (black last: it is kept for theory lines and references)
LINES = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
SEQUENTIAL = "viridis"
DIVERGING = "RdBu_r"

_RC = {
    "font.size": FONT_PT, "axes.titlesize": FONT_PT + 0.5, "axes.labelsize": FONT_PT,
    "xtick.labelsize": FONT_PT, "ytick.labelsize": FONT_PT, "legend.fontsize": FONT_PT,
    "legend.title_fontsize": FONT_PT, "figure.titlesize": FONT_PT + 1, "axes.linewidth": 0.6,
    "lines.linewidth": 1.0, "lines.markersize": 3.0, "xtick.major.width": 0.6, "ytick.major.width": 0.6,
    "legend.frameon": False, "savefig.dpi": DPI, "pdf.fonttype": 42, "ps.fonttype": 42,
    "image.cmap": SEQUENTIAL, "axes.titlepad": 3.0,
}


def pyplot():
    """matplotlib.pyplot on the Agg backend with the rcParams of this style (set on every call)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from cycler import cycler

    plt.rcParams.update(_RC)
    plt.rcParams["axes.prop_cycle"] = cycler(color=list(LINES))
    return plt


def figsize(columns: int = 2, height: float | None = None) -> tuple:
    """(width, height) in inches for one or two journal columns; height defaults to 0.75 × width."""
    width = ONE_COLUMN if columns == 1 else TWO_COLUMNS
    return (width, 0.75 * width if height is None else float(height))


#: axis labels of the swept parameters (never the variable name)
AXIS_LABELS = {"temperature": "temperature T", "sigma_a": r"readout prior $\sigma_a$",
               "sigma_a_bar": r"$\bar\sigma_a = \sigma_a\sqrt{P}$", "sigma_w": r"first-layer prior $\sigma_1$"}


def axis_label(name: str) -> str:
    """The axis label of parameter ``name`` (:data:`AXIS_LABELS`, else the name itself)."""
    return AXIS_LABELS.get(name, name)


def color(k: int) -> str:
    """The k-th line colour (Okabe–Ito, cycling)."""
    return LINES[int(k) % len(LINES)]


def heatmap(ax, M, *, signed=None, vmax=None, label: str | None = None, **imshow):
    """``imshow`` of ``M`` with the style's map (diverging and centred at 0 if ``signed``, else
    sequential from 0, or from min(M) when M has negative entries) and a colour bar labelled ``label``."""
    M = np.asarray(M, dtype=np.float64)
    finite = M[np.isfinite(M)]
    top = float(vmax) if vmax is not None else (float(np.max(np.abs(finite))) if finite.size else 1.0) or 1.0
    if signed is None:
        signed = finite.size > 0 and float(finite.min()) < -0.02 * top
    lo = -top if signed else min(0.0, float(finite.min()) if finite.size else 0.0)
    opts = dict(aspect="auto", interpolation="nearest")
    opts.update(imshow)
    im = ax.imshow(M, cmap=DIVERGING if signed else SEQUENTIAL, vmin=lo, vmax=top, **opts)
    bar = ax.figure.colorbar(im, ax=ax, fraction=0.05, pad=0.02)
    bar.outline.set_linewidth(0.4)
    if label:
        bar.set_label(label)
    return im


def save(fig, path, dpi: int | None = None, palette: bool = True, layout: bool = True) -> Path:
    """Lay out, write ``path`` as PNG (at least :data:`DPI` dots per inch) and its ``.pdf`` sibling
    (vector), close the figure; returns the PNG path.

    ``layout=False`` keeps the figure's own layout (e.g. constrained layout).
    ``palette=True`` re-encodes the PNG with a 256-colour palette (Pillow, a matplotlib dependency):
    several times smaller for figures full of colour-mapped images, visually unchanged.
    """
    path = Path(path).with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    if layout:
        fig.tight_layout()
    fig.savefig(path, dpi=max(int(dpi or DPI), DPI))
    fig.savefig(path.with_suffix(".pdf"))
    fig.clf()
    import matplotlib.pyplot as plt

    plt.close(fig)
    if palette:
        from PIL import Image

        with Image.open(path) as im:
            small = im.convert("RGB").quantize(256)
        small.save(path, optimize=True)
    return path


def sidecar_path(png) -> Path:
    return Path(png).with_suffix(".json")


def write_sidecar(png, script: str, quick: bool | None, settings: dict, numbers: dict, **extra) -> Path:
    """``<name>.json`` next to the figure ``png``: {"figure", "script", "mode", "settings", "numbers",
    ...extra} via :func:`theory.jsonio.dumps` (numpy → JSON, non-finite floats as strings).

    ``quick`` is the gallery mode ("quick" or "full"); ``None`` for the figure of a command
    (``script`` is then the command, e.g. "codingschemes solve"), whose sidecar has no "mode"."""
    from theory.jsonio import dumps

    png = Path(png)
    doc = {"figure": png.name, "script": script, "mode": "quick" if quick else "full",
           "settings": settings, "numbers": numbers}
    if quick is None:
        del doc["mode"]
    doc.update(extra)
    out = sidecar_path(png)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dumps(doc, indent=1) + "\n")
    return out
