"""Shared figure plumbing: a non-interactive backend and one way to save."""
from __future__ import annotations

from pathlib import Path

__all__ = ["pyplot", "save"]


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path, dpi: int = 110, palette: bool = False) -> Path:
    """Tight layout, create the folder, write the PNG, close the figure.

    ``palette=True`` re-encodes the PNG with a 256-colour palette (Pillow, a matplotlib
    dependency): about 3× smaller for figures full of colour-mapped images, visually unchanged.
    """
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    fig.clf()
    import matplotlib.pyplot as plt

    plt.close(fig)
    if palette:
        from PIL import Image

        with Image.open(path) as im:
            small = im.convert("RGB").quantize(256)
        small.save(path, optimize=True)
    return path
