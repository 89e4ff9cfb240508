"""Render the gallery captions of docs/guide/figures.md from the figures' JSON sidecars.

    python docs/gen_gallery.py            # rewrite the generated section in place
    python docs/gen_gallery.py --check    # exit 1 if the page differs from the sidecars

The text between ``<!-- generated:gallery -->`` and ``<!-- /generated:gallery -->`` in
docs/guide/figures.md is replaced by :func:`figures.gallery.render_gallery` of docs/gallery/: each
caption is made by its figure script's ``caption(sidecar)`` from the numbers and settings the figure
was drawn with, never typed. Everything outside the markers is left as it is.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "guide" / "figures.md"
GALLERY = ROOT / "docs" / "gallery"
sys.path.insert(0, str(ROOT))

from figures.gallery import render_gallery  # noqa: E402

__all__ = ["render_page", "main"]

_BLOCK = re.compile(r"(^<!-- generated:gallery -->\n).*?(^<!-- /generated:gallery -->$)", re.DOTALL | re.M)


def render_page(text: str, folder: Path = GALLERY) -> str:
    """``text`` with the generated gallery section replaced (ValueError without the markers)."""
    if not _BLOCK.search(text):
        raise ValueError("docs/guide/figures.md: no <!-- generated:gallery --> ... <!-- /generated:gallery --> block")
    return _BLOCK.sub(lambda m: m.group(1) + "\n" + render_gallery(folder) + "\n\n" + m.group(2), text, count=1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 if the page is out of date")
    args = ap.parse_args(argv)
    text = PAGE.read_text(encoding="utf-8")
    new = render_page(text)
    if args.check:
        if new != text:
            print("docs/guide/figures.md is out of date: run python docs/gen_gallery.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
