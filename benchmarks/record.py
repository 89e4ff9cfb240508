"""Benchmark records: what one benchmark run measured, as JSON, and its Markdown rendering.

A benchmark script makes one :class:`Record`, adds its tables (:meth:`Record.table`), notes and
profiles (:meth:`Record.profile`) as it measures (each is printed at once), and with ``--record
PATH`` writes the record: the command line, the date, the machine (``os.cpu_count()``, the load
average at the start and at the end, platform, Python and numpy versions, the git commit), the
run's wall and CPU time (this process and its finished children) and the tables. ``render``
turns a record into the Markdown that ``docs/gen_results.py`` puts into docs/results.md, so the
tables there are the measured ones, never typed.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["Record", "add_record_argument", "render", "markdown_table", "profile_rows", "cpu_seconds"]

ROOT = Path(__file__).resolve().parents[1]


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (user + system), seconds."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=False, timeout=10)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=False, timeout=10)
        return out.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _cell(v) -> str:
    return "" if v is None else str(v)


def markdown_table(columns, rows) -> str:
    """A Markdown table; numbers must already be formatted as the page shows them."""
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(out)


def profile_rows(profile, top: int = 5) -> list[list]:
    """The top entries of a cProfile run by own time: [function, calls, own s, cumulative s]."""
    import pstats

    stats = pstats.Stats(profile).stats
    entries = sorted(stats.items(), key=lambda kv: -kv[1][2])[:top]
    rows = []
    for (path, line, func), (_, ncalls, tottime, cumtime, _) in entries:
        where = f"{Path(path).name}:{line}" if path != "~" else "built-in"
        rows.append([f"`{func}` ({where})", ncalls, f"{tottime:.3f}", f"{cumtime:.3f}"])
    return rows


class Record:
    """The tables, notes and profiles of one benchmark run (printed as they are added)."""

    def __init__(self, name: str, argv=None, echo: bool = True):
        self.name, self.echo = name, echo
        self.argv = list(sys.argv if argv is None else argv)
        self.items: list[dict] = []
        self._wall, self._cpu = time.perf_counter(), cpu_seconds()
        self.started = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        self.load_start = [round(v, 2) for v in os.getloadavg()]

    def _add(self, item: dict) -> None:
        self.items.append(item)
        if self.echo:
            print(_render_item(item) + "\n", flush=True)

    def table(self, title: str, columns, rows, note: str | None = None) -> None:
        self._add(self.table_item(title, columns, rows, note))

    def note(self, text: str) -> None:
        self._add({"kind": "note", "text": text})

    def profile(self, title: str, profile, top: int = 5) -> None:
        self._add({"kind": "table", "title": title, "columns": ["function", "calls", "own time (s)",
                                                                  "cumulative (s)"],
                   "rows": [[_cell(v) for v in r] for r in profile_rows(profile, top)], "note": None})

    def to_json(self) -> dict:
        import numpy

        return {"name": self.name, "command": " ".join(["python", *[str(a) for a in self.argv]]),
                "date": self.started,
                "machine": {"cpu_count": os.cpu_count(), "load_average_start": self.load_start,
                            "load_average_end": [round(v, 2) for v in os.getloadavg()],
                            "platform": platform.platform(), "python": platform.python_version(),
                            "numpy": numpy.__version__, "commit": _commit()},
                "wall_seconds": round(time.perf_counter() - self._wall, 2),
                "cpu_seconds": round(cpu_seconds() - self._cpu, 2), "items": self.items}

    def write(self, path, partial: list[dict] | None = None) -> Path | None:
        """Write the record as JSON to ``path`` (nothing when ``path`` is None). ``partial``: items of a
        run still in progress (a checkpoint, marked ``"complete": false``), so a run stopped early
        leaves what it measured."""
        if path is None:
            return None
        data = self.to_json()
        data["complete"] = partial is None
        data["items"] = data["items"] + list(partial or [])
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        if self.echo and partial is None:
            print(f"record: {path}", file=sys.stderr)
        return path

    @staticmethod
    def table_item(title: str, columns, rows, note: str | None = None) -> dict:
        """A table item not (yet) added: for a checkpoint of a table still being filled."""
        return {"kind": "table", "title": title, "columns": list(columns), "rows": [[_cell(v) for v in r] for r in rows],
                "note": note}


def add_record_argument(parser) -> None:
    parser.add_argument("--record", default=None, metavar="PATH",
                        help="write the tables, command line, date and machine as JSON to PATH "
                             "(docs/gen_results.py renders docs/measurements/*.json into docs/results.md)")


def _render_item(item: dict) -> str:
    if item["kind"] == "note":
        return item["text"]
    parts = [f"**{item['title']}**", "", markdown_table(item["columns"], item["rows"])]
    if item.get("note"):
        parts += ["", item["note"]]
    return "\n".join(parts)


def render(record: dict) -> str:
    """The Markdown of a record: where and how it was measured, then its items in order."""
    m = record["machine"]
    load = f"{m['load_average_start'][0]:g} at the start, {m['load_average_end'][0]:g} at the end"
    stopped = "" if record.get("complete", True) else " **The run was stopped before its end: the tables hold what it finished.**"
    head = (f"Measured with `{record['command']}` on {record['date']}; {m['cpu_count']} cores, load average "
            f"(1 min) {load}; commit {m['commit']}, Python {m['python']}, numpy {m['numpy']}. The run took "
            f"{record['wall_seconds']:.0f} s of wall time and {record['cpu_seconds']:.0f} s of CPU "
            "(this process and its finished children). Generated from "
            f"`docs/measurements/{record['name']}.json` by `docs/gen_results.py`; do not edit by hand." + stopped)
    return "\n\n".join([head, *(_render_item(it) for it in record["items"])])
