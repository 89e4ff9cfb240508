"""Render the benchmark records of docs/measurements/ into docs/results.md and README.md.

    python docs/gen_results.py            # rewrite the generated sections in place
    python docs/gen_results.py --check    # exit 1 if a page differs from its records

Each record ``docs/measurements/NAME.json`` (written by ``benchmarks/*.py --record``) replaces the
text between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->`` on the page that holds
the marker (one of :data:`PAGES`; README.md holds ``headline``) with
``benchmarks.record.render(record)``; each marker stands on a line of its own. Everything
outside the markers is left as it is.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the pages with generated sections, relative to the repository root
PAGES = ("docs/results.md", "README.md")
MEASUREMENTS = ROOT / "docs" / "measurements"
sys.path.insert(0, str(ROOT))

from benchmarks.record import render  # noqa: E402

__all__ = ["PAGES", "records", "render_pages", "render_page", "main"]


def records(folder: Path = MEASUREMENTS) -> dict[str, dict]:
    """{name: record} of every ``*.json`` in ``folder``."""
    out = {}
    for path in sorted(folder.glob("*.json")):
        rec = json.loads(path.read_text(encoding="utf-8"))
        out[rec.get("name", path.stem)] = rec
    return out


def _markers(text: str) -> list[str]:
    return re.findall(r"^<!-- generated:([A-Za-z0-9_.-]+) -->$", text, flags=re.M)


def _fill(text: str, recs: dict[str, dict], page: str) -> str:
    """``text`` with every generated section replaced; a marker without a record is a ValueError."""
    names = _markers(text)
    missing = sorted(set(names) - set(recs))
    if missing:
        raise ValueError(f"{page} markers without a record: {missing}")
    for name in names:
        pattern = re.compile(rf"(^<!-- generated:{re.escape(name)} -->\n)(?:.*?\n)?(<!-- /generated:{re.escape(name)} -->$)",
                             re.DOTALL | re.M)
        if not pattern.search(text):
            raise ValueError(f"{page}: no closing marker <!-- /generated:{name} -->")
        text = pattern.sub(lambda m, n=name: m.group(1) + "\n" + render(recs[n]) + "\n\n" + m.group(2), text, count=1)
    return text


def render_pages(texts: dict[str, str], recs: dict[str, dict]) -> dict[str, str]:
    """{page: text} with every generated section of every page replaced by its record's rendering.
    A marker without a record, or a record with a marker on none of the pages, is a ValueError."""
    unused = sorted(set(recs) - {n for text in texts.values() for n in _markers(text)})
    if unused:
        raise ValueError(f"records without a marker on {', '.join(texts)}: {unused}")
    return {page: _fill(text, recs, page) for page, text in texts.items()}


def render_page(text: str, recs: dict[str, dict], page: str = "docs/results.md") -> str:
    """One page: :func:`render_pages` of ``{page: text}`` (every record needs a marker on it)."""
    return render_pages({page: text}, recs)[page]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 if a page is out of date")
    args = ap.parse_args(argv)
    texts = {page: (ROOT / page).read_text(encoding="utf-8") for page in PAGES}
    new = render_pages(texts, records())
    stale = [page for page in PAGES if new[page] != texts[page]]
    if args.check:
        if stale:
            print(f"{', '.join(stale)} differ from docs/measurements/*.json: run python docs/gen_results.py",
                  file=sys.stderr)
            return 1
        return 0
    for page in stale:
        (ROOT / page).write_text(new[page], encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
