"""The sweep file (``codingschemes-sweep``, version 1): header, record lines, reading.

UTF-8 JSON Lines: every line is one JSON object (RFC 8259, compact, no
``NaN`` tokens) followed by ``"\\n"``. A line that does not end in ``"\\n"``
was cut off by a kill and is ignored (``run_sweep`` truncates it away before
appending); blank lines are ignored. Keys may be added to the header or
records without a new version; a reader should ignore keys it does not know
and reject a ``version`` it does not know. Non-finite floats anywhere in a point or result are written as
the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (:mod:`theory.jsonio`); :func:`load_sweep`
turns these three strings back into floats.

Line 1, the header, with keys in this order::

    format          "codingschemes-sweep"
    version         1
    created         ISO 8601 UTC time the sweep was started, "2025-01-31T12:00:00.123456Z"
    package         "codingschemes"
    package_version version of codingschemes that created the file ("unknown" if not found)
    function        "module:qualname" of the function (of its .func for a functools.partial)
    function_args   null, or {"args": [...], "keywords": {...}} of a functools.partial
                    (values that are not JSON become their repr, memory addresses removed)
    parameters      parameter names, in the order of the first point's keys
    n_points        number of points in the sweep
    points_sha256   SHA-256 (hex) of the canonical JSON of the list of points
                    (json.dumps(points, sort_keys=True, separators=(",", ":"),
                    allow_nan=False) after the non-finite encoding above, UTF-8)
    grid            null, or the grid definition from grid_points:
                    {"x": {"name": str, "values": [...]},
                     "y": {"name": str, "values": [...]}, "fixed": {...}}
    metadata        the caller's metadata dict ({} if none)

Every further line is one finished point::

    index      position of the point in the list of points (0 ≤ index < n_points)
    point      the point's parameters {name: value}
    status     "ok" or "error" (the function raised, or returned something
               that is not a dict of JSON-serialisable values)
    result     the function's returned dict (numpy scalars and arrays become
               numbers and nested lists), or null if status is "error"
    error      null, or "ExceptionType: message"
    traceback  null, or the formatted traceback from the worker
    wall_time  seconds the function took in the worker (float)
    finished   ISO 8601 UTC time the parent wrote the line
    worker     "host:pid" of the process that computed the point

Records appear in the order the points finished, not in index order. An
index appears at most once, except that a point whose record has status
``"error"`` gets a second line when it is rerun with ``retry_errors=True``;
the later line then supersedes the earlier one (the file is only ever
appended to). :func:`load_sweep` returns one record per index, the last.

Resuming compares the header of the file with the one the new call would
write: ``format``, ``version``, ``function``, ``function_args``,
``parameters``, ``n_points``, ``points_sha256``, ``grid`` and ``metadata``
must all be equal, or :class:`SweepMismatchError` names the ones that differ.
A different ``package_version`` only warns.
"""
from __future__ import annotations

import datetime
import functools
import hashlib
import importlib.metadata
import json
import re
import warnings
from pathlib import Path

from theory.jsonio import decode_nonfinite, dumps, jsonable

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "SweepError", "SweepMismatchError", "load_sweep"]

FORMAT_NAME = "codingschemes-sweep"
FORMAT_VERSION = 1

# header keys that must agree between the file and a resuming call
_IDENTITY_KEYS = ("function", "function_args", "parameters", "n_points", "points_sha256", "grid", "metadata")


class SweepError(Exception):
    """A sweep file cannot be used (not a sweep, corrupt, locked) or a worker died."""


class SweepMismatchError(SweepError):
    """The file at ``path`` holds a different sweep than the one requested."""


def compact(obj) -> str:
    """One line of the file: compact JSON, UTF-8 kept, non-finite floats as strings."""
    return dumps(obj, separators=(",", ":"), ensure_ascii=False)


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------------------------------------------------
# header


def _points_sha256(points: list[dict]) -> str:
    text = json.dumps(points, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _package_version() -> str:
    try:
        return importlib.metadata.version("codingschemes")
    except importlib.metadata.PackageNotFoundError:
        pass
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    try:
        m = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(), re.MULTILINE)
    except OSError:
        m = None
    return m.group(1) if m else "unknown"


def _stable(value):
    """JSON form of a partial's argument: as is when JSON-able, else its repr without memory addresses."""
    try:
        return jsonable(value)
    except TypeError:
        return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


def _describe_function(function) -> tuple[str, dict | None]:
    args = None
    if isinstance(function, functools.partial):
        args = {"args": [_stable(a) for a in function.args],
                "keywords": {k: _stable(v) for k, v in sorted(function.keywords.items())}}
        function = function.func
    target = function if hasattr(function, "__qualname__") else type(function)
    module = getattr(target, "__module__", None) or "?"
    return f"{module}:{target.__qualname__}", args


def make_header(function, points, names, grid, metadata) -> dict:
    """The header line a sweep of ``function`` over ``points`` writes (as read back from JSON)."""
    fname, fargs = _describe_function(function)
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "created": now(),
        "package": "codingschemes",
        "package_version": _package_version(),
        "function": fname,
        "function_args": fargs,
        "parameters": names,
        "n_points": len(points),
        "points_sha256": _points_sha256(points),
        "grid": grid,
        "metadata": metadata,
    }
    return json.loads(compact(header))


def _check_header(found: dict, path) -> None:
    if not isinstance(found, dict) or found.get("format") != FORMAT_NAME:
        raise SweepError(f"{path} is not a {FORMAT_NAME} file (its first line has no "
                         f'"format": "{FORMAT_NAME}")')
    version = found.get("version")
    if version != FORMAT_VERSION:
        raise SweepError(f"{path} has {FORMAT_NAME} version {version!r}; this codingschemes reads version "
                         f"{FORMAT_VERSION} only")


def _short(value, limit=120) -> str:
    text = compact(value)
    return text if len(text) <= limit else text[:limit] + "…"


def compare_headers(found: dict, wanted: dict, path) -> None:
    """Raise :class:`SweepMismatchError` naming the identity keys that differ; warn on another version."""
    diffs = [k for k in _IDENTITY_KEYS if found.get(k) != wanted.get(k)]
    if diffs:
        lines = [f"  {k}: file has {_short(found.get(k))}, this call has {_short(wanted.get(k))}" for k in diffs]
        raise SweepMismatchError(
            f"{path} holds a different sweep (created {found.get('created')}):\n" + "\n".join(lines)
            + "\nUse another path, or delete the file to start this sweep afresh.")
    if found.get("package_version") != wanted.get("package_version"):
        warnings.warn(f"{path} was written by codingschemes {found.get('package_version')}; resuming it with "
                      f"{wanted.get('package_version')}", stacklevel=3)


# ---------------------------------------------------------------------------------------------------------
# reading


def _split_lines(data: bytes):
    """Complete lines with their 1-based numbers, and the byte length of the complete part."""
    end = data.rfind(b"\n") + 1
    lines = data[:end].split(b"\n")[:-1]
    return list(enumerate(lines, start=1)), end


def _parse_line(raw: bytes, number: int, path):
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SweepError(f"{path}, line {number}: not valid JSON ({exc}); the file is corrupt") from None
    if not isinstance(obj, dict):
        raise SweepError(f"{path}, line {number}: expected a JSON object, got {type(obj).__name__}")
    return obj


def parse(data: bytes, path):
    """(header or None, [(line number, record)], byte length of complete lines)."""
    numbered, end = _split_lines(data)
    if not numbered:
        return None, [], 0
    header = _parse_line(numbered[0][1], 1, path)
    _check_header(header, path)
    records = []
    for number, raw in numbered[1:]:
        if not raw.strip():
            continue
        rec = _parse_line(raw, number, path)
        index = rec.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < header["n_points"]:
            raise SweepError(f"{path}, line {number}: index {index!r} is not in 0..{header['n_points'] - 1}")
        if rec.get("status") not in ("ok", "error"):
            raise SweepError(f"{path}, line {number}: status {rec.get('status')!r} is neither 'ok' nor 'error'")
        records.append((number, rec))
    return header, records, end


def latest(records) -> dict[int, dict]:
    """The last record of every index."""
    out = {}
    for _, rec in records:
        out[rec["index"]] = rec
    return out


def load_sweep(path) -> tuple[dict, list[dict]]:
    """Read a sweep file: ``(header, records)``, one record per point index (the last), sorted by index.

    Points not (yet) computed have no record. A cut-off last line (a sweep
    killed mid-write, or one still running) is ignored; the file is not
    modified. The strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` become floats.
    """
    path = Path(path)
    if path.is_dir():
        raise SweepError(f"path {str(path)!r} is a directory, expected a sweep file")
    data = path.read_bytes()
    header, records, _ = parse(data, path)
    if header is None:
        raise SweepError(f"{path} has no complete header line (empty, or cut off while it was created)")
    last = latest(records)
    return header, [decode_nonfinite(last[i]) for i in sorted(last)]
