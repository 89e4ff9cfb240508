"""Render the benchmark records of docs/measurements/ into docs/results.md.

    python docs/gen_results.py            # rewrite the generated sections in place
    python docs/gen_results.py --check    # exit 1 if the page differs from its records

Each record ``docs/measurements/NAME.json`` (written by ``benchmarks/*.py --record``) replaces the
text between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->`` in docs/results.md with
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
PAGE = ROOT / "docs" / "results.md"
MEASUREMENTS = ROOT / "docs" / "measurements"
sys.path.insert(0, str(ROOT))

from benchmarks.record import render  # noqa: E402

__all__ = ["records", "render_page", "main"]


def records(folder: Path = MEASUREMENTS) -> dict[str, dict]:
    """{name: record} of every ``*.json`` in ``folder``."""
    out = {}
    for path in sorted(folder.glob("*.json")):
        rec = json.loads(path.read_text(encoding="utf-8"))
        out[rec.get("name", path.stem)] = rec
    return out


def render_page(text: str, recs: dict[str, dict]) -> str:
    """``text`` with every generated section replaced by its record's rendering. A marker without a
    record, or a record without a marker, is an error (ValueError naming it)."""
    names = re.findall(r"^<!-- generated:([A-Za-z0-9_.-]+) -->$", text, flags=re.M)
    missing = sorted(set(names) - set(recs))
    unused = sorted(set(recs) - set(names))
    if missing or unused:
        raise ValueError(f"docs/results.md markers without a record: {missing}; records without a marker: {unused}")
    for name in names:
        pattern = re.compile(rf"(^<!-- generated:{re.escape(name)} -->\n)(?:.*?\n)?(<!-- /generated:{re.escape(name)} -->$)",
                             re.DOTALL | re.M)
        if not pattern.search(text):
            raise ValueError(f"docs/results.md: no closing marker <!-- /generated:{name} -->")
        text = pattern.sub(lambda m, n=name: m.group(1) + "\n" + render(recs[n]) + "\n\n" + m.group(2), text, count=1)
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 if the page is out of date")
    args = ap.parse_args(argv)
    text = PAGE.read_text(encoding="utf-8")
    new = render_page(text, records())
    if args.check:
        if new != text:
            print("docs/results.md differs from docs/measurements/*.json: run python docs/gen_results.py",
                  file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
