"""Resumable, parallel parameter sweeps (phase diagrams) written point by point.

``run_sweep(function, points, path)`` calls ``function(point) -> dict`` for
every point (a dict of parameter values), in parallel, and appends one line
per finished point to a JSON Lines file. Killing the sweep at any moment
loses at most the points that were being computed; calling ``run_sweep``
again with the same arguments resumes it: points already in the file are
not recomputed, and no point is written twice.

Backends
--------
``"process"`` (default)
    Local worker processes (``concurrent.futures.ProcessPoolExecutor``),
    ``workers`` of them (default ``os.cpu_count()``), started with the
    ``"forkserver"`` method where the platform has it, else ``"spawn"``
    (``mp_context`` overrides). A forked child of a process that has started
    threads (numba's threading layer, a Dask client, OpenMP) can deadlock, so
    ``"fork"`` is not the default. With ``"forkserver"``, this module and the
    function's module are imported once in the fork server
    (``set_forkserver_preload``, which applies only when this process first
    starts its fork server), so after the first sweep of a process a pool
    starts in milliseconds; ``"spawn"`` re-imports them in every worker of
    every sweep (~1 s with numba). Workers exit by themselves within a
    second when the sweep process is killed. ``function`` must be picklable: a
    module-level function, an instance of a module-level class, or a
    ``functools.partial`` of one. Workers import the function's module.
``"serial"``
    In this process, one point after the other (for debugging and for
    functions that cannot be pickled).
``"dask"``
    ``dask.distributed`` (optional extra: ``pip install "codingschemes[dask]"``).
    ``dask_address`` is a scheduler address (``"tcp://host:8786"``) or an
    existing ``distributed.Client``; with ``None`` a ``LocalCluster`` of
    ``workers`` single-threaded processes is started and closed afterwards.
    At most ``2 * workers`` points (default: 2 × the cluster's threads) are
    in flight at a time. The workers must be able to import the function's
    module (install ``codingschemes`` on every machine).

Whatever the backend, only the calling process writes the file.

File format (``codingschemes-sweep``, version 1)
------------------------------------------------
UTF-8 JSON Lines: every line is one JSON object (RFC 8259, compact, no
``NaN`` tokens) followed by ``"\\n"``. A line that does not end in ``"\\n"``
was cut off by a kill and is ignored (``run_sweep`` truncates it away before
appending); blank lines are ignored. Keys may be added to the header or
records without a new version; a reader should ignore keys it does not know
and reject a ``version`` it does not know. Non-finite floats anywhere in a point or result are written as
the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``; :func:`load_sweep`
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
A different ``package_version`` only warns. While a sweep runs it holds an
exclusive ``flock`` on the file, so a second ``run_sweep`` on the same file
fails at once instead of duplicating points.
"""
from __future__ import annotations

import concurrent.futures
import datetime
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import math
import multiprocessing
import os
import pickle
import re
import socket
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "GridPoints",
    "SweepError",
    "SweepMismatchError",
    "SweepProgress",
    "grid_points",
    "load_sweep",
    "record_value",
    "run_sweep",
    "to_grid",
]

FORMAT_NAME = "codingschemes-sweep"
FORMAT_VERSION = 1
BACKENDS = ("process", "serial", "dask")
DASK_HINT = 'backend="dask" needs dask.distributed: pip install "codingschemes[dask]"'

# header keys that must agree between the file and a resuming call
_IDENTITY_KEYS = ("function", "function_args", "parameters", "n_points", "points_sha256", "grid", "metadata")
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class SweepError(Exception):
    """A sweep file cannot be used (not a sweep, corrupt, locked) or a worker died."""


class SweepMismatchError(SweepError):
    """The file at ``path`` holds a different sweep than the one requested."""


# ---------------------------------------------------------------------------------------------------------
# JSON conversion


def _jsonable(obj, where: str = "value"):
    """Plain JSON types from numpy scalars/arrays, tuples, mappings; non-finite floats as strings."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)) and not isinstance(obj, np.bool_):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        if math.isnan(x):
            return "NaN"
        if math.isinf(x):
            return "Infinity" if x > 0 else "-Infinity"
        return x
    if isinstance(obj, np.ndarray):
        return [_jsonable(v, where) for v in obj.tolist()] if obj.ndim else _jsonable(obj.item(), where)
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: key {k!r} is not a string (JSON object keys must be strings)")
            out[k] = _jsonable(v, f"{where}[{k!r}]")
        return out
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    raise TypeError(f"{where} of type {type(obj).__name__} is not JSON-serialisable")


def _decode_nonfinite(obj):
    if isinstance(obj, str):
        return _NONFINITE.get(obj, obj)
    if isinstance(obj, dict):
        return {k: _decode_nonfinite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode_nonfinite(v) for v in obj]
    return obj


def _dumps(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------------------------------------------------
# points and grids


class GridPoints(list):
    """A list of point dicts that also carries its grid definition (``.grid``), as made by :func:`grid_points`."""

    def __init__(self, points, grid: dict):
        super().__init__(points)
        self.grid = grid

    def __reduce__(self):
        return (GridPoints, (list(self), self.grid))


def grid_points(x_name: str, x_values, y_name: str, y_values, *, fixed: Mapping | None = None) -> GridPoints:
    """All points of the ``x_values × y_values`` grid, x varying fastest.

    Each point is ``{x_name: x, y_name: y, **fixed}``. Values are converted to
    plain Python numbers (numpy float64 → float). The returned list carries the
    grid definition, which :func:`run_sweep` writes to the file's header.
    """
    for label, name in (("x_name", x_name), ("y_name", y_name)):
        if not isinstance(name, str) or not name:
            raise ValueError(f"{label} must be a non-empty string, got {name!r}")
    if x_name == y_name:
        raise ValueError(f"x_name and y_name must differ, both are {x_name!r}")
    fixed = _jsonable(dict(fixed or {}), "fixed")
    for name in (x_name, y_name):
        if name in fixed:
            raise ValueError(f"fixed parameter {name!r} is also a grid axis")
    axes = {}
    for label, name, values in (("x_values", x_name, x_values), ("y_values", y_name, y_values)):
        vals = _jsonable(list(np.asarray(values).ravel()) if isinstance(values, np.ndarray) else list(values),
                         label)
        if not vals:
            raise ValueError(f"{label} ({name}) is empty")
        seen = set()
        for v in vals:
            key = _dumps(v)
            if key in seen:
                raise ValueError(f"{label} ({name}) contains {v!r} twice")
            seen.add(key)
        axes[label] = vals
    points = [{x_name: x, y_name: y, **fixed} for y in axes["y_values"] for x in axes["x_values"]]
    grid = {"x": {"name": x_name, "values": axes["x_values"]},
            "y": {"name": y_name, "values": axes["y_values"]},
            "fixed": fixed}
    return GridPoints(points, grid)


def _check_points(points) -> tuple[list[dict], list[str]]:
    if isinstance(points, Mapping) or isinstance(points, (str, bytes)):
        raise TypeError("points must be a list of dicts (one dict of parameter values per point)")
    points = list(points)
    if not points:
        raise ValueError("points is empty: nothing to sweep")
    out, seen = [], {}
    names = None
    for i, p in enumerate(points):
        if not isinstance(p, Mapping):
            raise TypeError(f"points[{i}] is a {type(p).__name__}, expected a dict of parameter values")
        p = _jsonable(dict(p), f"points[{i}]")
        if names is None:
            names = list(p)
        elif set(p) != set(names):
            raise ValueError(f"points[{i}] has parameters {sorted(p)}, but points[0] has {sorted(names)}; "
                             "all points must name the same parameters")
        key = _dumps(dict(sorted(p.items())))
        if key in seen:
            raise ValueError(f"points[{i}] = {p} duplicates points[{seen[key]}]")
        seen[key] = i
        out.append(p)
    return out, names


def _points_sha256(points: list[dict]) -> str:
    text = json.dumps(points, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------------------
# header


def _package_version() -> str:
    try:
        return importlib.metadata.version("codingschemes")
    except importlib.metadata.PackageNotFoundError:
        pass
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    try:
        m = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(), re.MULTILINE)
    except OSError:
        m = None
    return m.group(1) if m else "unknown"


def _stable(value):
    """JSON form of a partial's argument: as is when JSON-able, else its repr without memory addresses."""
    try:
        return _jsonable(value)
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


def _make_header(function, points, names, grid, metadata) -> dict:
    fname, fargs = _describe_function(function)
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "created": _now(),
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


def _check_header(found: dict, path) -> None:
    if not isinstance(found, dict) or found.get("format") != FORMAT_NAME:
        raise SweepError(f"{path} is not a {FORMAT_NAME} file (its first line has no "
                         f'"format": "{FORMAT_NAME}")')
    version = found.get("version")
    if version != FORMAT_VERSION:
        raise SweepError(f"{path} has {FORMAT_NAME} version {version!r}; this codingschemes reads version "
                         f"{FORMAT_VERSION} only")


def _short(value, limit=120) -> str:
    text = _dumps(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _compare_headers(found: dict, wanted: dict, path) -> None:
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


def _parse(data: bytes, path):
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


def _latest(records) -> dict[int, dict]:
    latest = {}
    for _, rec in records:
        latest[rec["index"]] = rec
    return latest


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
    header, records, _ = _parse(data, path)
    if header is None:
        raise SweepError(f"{path} has no complete header line (empty, or cut off while it was created)")
    latest = _latest(records)
    return header, [_decode_nonfinite(latest[i]) for i in sorted(latest)]


# ---------------------------------------------------------------------------------------------------------
# evaluation (runs in the workers)


def _evaluate(function, index: int, point: dict) -> dict:
    """Call ``function(point)``; never raises for errors inside it."""
    start = time.perf_counter()
    result = error = tb = None
    try:
        out = function(dict(point))
        if not isinstance(out, Mapping):
            raise TypeError(f"the function returned a {type(out).__name__}, expected a dict of results")
        result = _jsonable(dict(out), "result")
        status = "ok"
    except Exception as exc:  # recorded per point; KeyboardInterrupt/SystemExit propagate
        status = "error"
        error = f"{type(exc).__name__}: {exc}"
        tb = traceback.format_exc()
        result = None
    wall = time.perf_counter() - start
    return {"index": index, "status": status, "result": result, "error": error, "traceback": tb,
            "wall_time": float(wall), "worker": f"{socket.gethostname()}:{os.getpid()}"}


# ---------------------------------------------------------------------------------------------------------
# progress


@dataclass(frozen=True)
class SweepProgress:
    """State passed to a ``progress`` callback after each finished point.

    ``done`` counts all points with a record (including those resumed from the
    file, ``resumed``); ``errors`` those whose latest record is an error;
    ``rate`` is points per second computed in this call, ``eta`` the
    estimated seconds left (``nan`` before the first point finishes).
    """

    done: int
    total: int
    resumed: int
    errors: int
    elapsed: float
    rate: float
    eta: float
    record: dict | None


def _format_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else (f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s")


class _StderrProgress:
    """One updating line on a terminal; otherwise a line at most every 10 s and at the end."""

    def __init__(self, label: str, stream=None):
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.last = -math.inf
        self.width = 0

    def __call__(self, p: SweepProgress):
        rate = f"{p.rate:.3g}" if math.isfinite(p.rate) else "?"
        text = (f"sweep {self.label}: {p.done}/{p.total} points ({p.errors} errors, {p.resumed} resumed), "
                f"{rate} points/s, ETA {_format_seconds(p.eta)}")
        final = p.done == p.total
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + text.ljust(self.width) + ("\n" if final else ""))
            self.width = len(text)
        elif final or now - self.last >= 10.0:
            self.stream.write(text + "\n")
            self.last = now
        self.stream.flush()


# ---------------------------------------------------------------------------------------------------------
# the file while running


class _SweepFile:
    """The open, locked sweep file: checks or writes the header, appends records durably."""

    def __init__(self, path: Path, header: dict):
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            self._lock()
            self.header, self.records = self._open(header)
        except BaseException:
            os.close(self.fd)
            raise

    def _lock(self):
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SweepError(f"{self.path} is being written by another running sweep (it is locked); "
                             "wait for it to finish or stop it first") from None

    def _read_all(self) -> bytes:
        chunks, offset = [], 0
        while True:
            chunk = os.pread(self.fd, 1 << 20, offset)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            offset += len(chunk)

    def _open(self, wanted: dict):
        data = self._read_all()
        if b"\n" not in data:
            prefix = _dumps({"format": FORMAT_NAME})[:-1].encode()
            if data and not (prefix.startswith(data) or data.startswith(prefix)):
                raise SweepError(f"{self.path} exists and is not a {FORMAT_NAME} file; refusing to overwrite it")
            if data:  # header cut off while the sweep was being created
                os.ftruncate(self.fd, 0)
            self._append(_dumps(wanted) + "\n")
            self._fsync_dir()
            return wanted, {}
        header, records, end = _parse(data, self.path)
        _compare_headers(header, wanted, self.path)
        if end < len(data):  # a record cut off by a kill
            os.ftruncate(self.fd, end)
            os.fsync(self.fd)
        return header, _latest(records)

    def _fsync_dir(self):
        try:
            dfd = os.open(self.path.parent, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dfd)
        except OSError:
            pass
        finally:
            os.close(dfd)

    def _append(self, line: str):
        data = line.encode("utf-8")
        while data:
            n = os.write(self.fd, data)
            data = data[n:]
        os.fsync(self.fd)

    def write(self, record: dict):
        self._append(_dumps(record) + "\n")
        self.records[record["index"]] = record

    def close(self):
        os.close(self.fd)


# ---------------------------------------------------------------------------------------------------------
# driving the executors


def _drive(submit: Callable, wait_first: Callable, todo: list[int], in_flight: int, on_result: Callable,
           describe_failure: Callable):
    pending: dict[Any, int] = {}
    queue = iter(todo)

    def fill():
        while len(pending) < in_flight:
            i = next(queue, None)
            if i is None:
                return
            pending[submit(i)] = i

    fill()
    while pending:
        done, _ = wait_first(list(pending))
        finished, failure, failed = [], None, []
        for fut in done:
            i = pending.pop(fut)
            try:
                finished.append(fut.result())
            except Exception as exc:
                failure = failure or exc
                failed.append(i)
        if failure is None:
            fill()
        for out in sorted(finished, key=lambda r: r["index"]):
            on_result(out)  # results that arrived with a failure are still saved
        if failure is not None:
            raise SweepError(describe_failure(failure, sorted(failed + list(pending.values())))) from failure


def _failure_message(path, n_done):
    def describe(exc, indices):
        return (f"the sweep stopped: {type(exc).__name__}: {exc} (a worker died — killed, out of memory or "
                f"crashed — or could not run the function), while computing points {indices[:10]}"
                f"{' …' if len(indices) > 10 else ''}. The {n_done()} finished points are saved in {path}; "
                "run the same run_sweep call again to resume.")
    return describe


def _default_context() -> str:
    methods = multiprocessing.get_all_start_methods()
    return "forkserver" if "forkserver" in methods else "spawn"


def _check_picklable(function, backend, context):
    try:
        pickle.dumps(function)
    except Exception as exc:
        raise TypeError(f"function cannot be sent to worker processes (backend={backend!r}): {exc}. Use a "
                        "module-level function or a functools.partial of one, or backend='serial'") from None
    base = function.func if isinstance(function, functools.partial) else function
    module = getattr(base, "__module__", None) or getattr(type(base), "__module__", None)
    main = sys.modules.get("__main__")
    if module == "__main__" and context != "fork" and not getattr(main, "__file__", None):
        raise TypeError(f"function {getattr(base, '__qualname__', base)!r} is defined in an interactive "
                        f"__main__ (python -c, a REPL or a notebook), which {context!r} worker processes cannot "
                        "import; move it into a module, or use backend='serial'")


def _watch_parent(pid: int, interval: float = 0.5):
    """Worker initializer: exit when the sweep process is gone.

    A worker of a killed sweep would otherwise wait forever on its task queue
    (a fork-server or spawn child holds both ends of the queue's pipe).
    """
    def watch():
        while True:
            time.sleep(interval)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(3)
            except OSError:  # exists, owned by someone else (pid reused): keep going
                pass

    threading.Thread(target=watch, name="sweep-parent-watchdog", daemon=True).start()


def _run_process(function, points, todo, workers, context, on_result, describe):
    ctx = multiprocessing.get_context(context)
    if context == "forkserver":
        # import this module (and the function's) once in the fork server, not in every worker
        base = function.func if isinstance(function, functools.partial) else function
        module = getattr(base, "__module__", None)
        preload = ["__main__", __name__] + ([module] if module and module not in ("__main__", __name__) else [])
        ctx.set_forkserver_preload(preload)
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx,
                                                  initializer=_watch_parent, initargs=(os.getpid(),))
    clean = False
    try:
        _drive(lambda i: pool.submit(_evaluate, function, i, points[i]),
               lambda fs: concurrent.futures.wait(fs, return_when=concurrent.futures.FIRST_COMPLETED),
               todo, 2 * workers, on_result, describe)
        clean = True
    finally:
        pool.shutdown(wait=clean, cancel_futures=True)


def _run_dask(function, points, todo, workers, address, on_result, describe):
    try:
        import distributed
    except ImportError:
        raise ImportError(DASK_HINT) from None
    cluster = own_client = None
    if isinstance(address, distributed.Client):
        client = address
    elif address is None:
        import logging

        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=logging.ERROR)
        client = own_client = distributed.Client(cluster)
    else:
        client = own_client = distributed.Client(address)
    try:
        slots = workers if address is not None and workers is not None else sum(client.nthreads().values())
        token = f"{os.getpid()}-{time.time_ns()}"
        _drive(lambda i: client.submit(_evaluate, function, i, points[i], pure=False, key=f"sweep-{token}-{i}"),
               lambda fs: distributed.wait(fs, return_when="FIRST_COMPLETED"),
               todo, 2 * max(1, slots), on_result, describe)
    finally:
        if own_client is not None:
            own_client.close()
        if cluster is not None:
            cluster.close()


# ---------------------------------------------------------------------------------------------------------
# public entry point


def run_sweep(function: Callable[[dict], Mapping], points, path, *, workers: int | None = None,
              backend: str = "process", dask_address=None, progress=True, metadata: Mapping | None = None,
              retry_errors: bool = False, grid: Mapping | None = None, mp_context: str | None = None
              ) -> list[dict]:
    """Evaluate ``function`` at every point, appending each result to ``path`` as it finishes; resumable.

    Parameters
    ----------
    function
        ``function(point: dict) -> dict`` of JSON-serialisable results (numpy
        scalars and arrays are converted). Exceptions it raises are recorded
        with status ``"error"`` and the sweep goes on.
    points
        List of dicts of parameter values (JSON-serialisable, all with the
        same names, no duplicates), e.g. from :func:`grid_points`.
    path
        The sweep file (JSON Lines, see the module docstring). Created with
        its folder if missing; if it holds this sweep, finished points are
        skipped; if it holds another sweep, :class:`SweepMismatchError`.
    workers
        Parallel workers (integer ≥ 1); default ``os.cpu_count()`` for
        ``"process"``, the cluster's threads for ``"dask"``. Must be ``None``
        or 1 for ``"serial"``.
    backend
        ``"process"`` (default), ``"serial"`` or ``"dask"``.
    dask_address
        Dask scheduler address or ``distributed.Client`` (backend ``"dask"``
        only); ``None`` starts a local cluster of ``workers`` processes.
    progress
        ``True``: a progress line on stderr (points done/total, rate, ETA);
        ``False``/``None``: silent; a callable: called with a
        :class:`SweepProgress` after every point (and once at the start).
    metadata
        JSON-serialisable dict stored in the header (e.g. the fixed model
        settings); part of the sweep's identity when resuming.
    retry_errors
        Recompute points whose record has status ``"error"``.
    grid
        Grid definition for the header; default ``points.grid`` when
        ``points`` came from :func:`grid_points`.
    mp_context
        Start method for ``"process"``: ``"forkserver"`` (default where
        available), ``"spawn"`` or ``"fork"``.

    Returns
    -------
    The records of all points (one per index, the latest), sorted by index.
    """
    if not callable(function):
        raise TypeError(f"function must be callable, got {type(function).__name__}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}; got {backend!r}")
    if workers is not None and (not isinstance(workers, (int, np.integer)) or isinstance(workers, bool)
                                or workers < 1):
        raise ValueError(f"workers must be an integer >= 1 (or None for the default), got {workers!r}")
    if backend == "serial" and workers not in (None, 1):
        raise ValueError(f"workers={workers} has no effect with backend='serial' (one point at a time); "
                         "use backend='process' for parallel workers")
    if dask_address is not None and backend != "dask":
        raise ValueError(f"dask_address is only used with backend='dask', not backend={backend!r}")
    if mp_context is not None and backend != "process":
        raise ValueError(f"mp_context is only used with backend='process', not backend={backend!r}")
    if mp_context is not None and mp_context not in multiprocessing.get_all_start_methods():
        raise ValueError(f"mp_context must be one of {multiprocessing.get_all_start_methods()}, got {mp_context!r}")
    if not (progress is None or isinstance(progress, bool) or callable(progress)):
        raise TypeError(f"progress must be True, False, None or a callable, got {type(progress).__name__}")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"path {str(path)!r} is a directory; give a file name such as {str(path / 'sweep.jsonl')!r}")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
    metadata = _jsonable(dict(metadata or {}), "metadata")
    if grid is None:
        grid = getattr(points, "grid", None)
    grid = _jsonable(dict(grid), "grid") if grid is not None else None
    points, names = _check_points(points)
    if backend == "dask" and importlib.util.find_spec("distributed") is None:
        raise ImportError(DASK_HINT)
    context = mp_context or _default_context()
    if backend == "process":
        _check_picklable(function, backend, context)
        workers = workers or os.cpu_count() or 1

    path.parent.mkdir(parents=True, exist_ok=True)
    wanted = json.loads(_dumps(_make_header(function, points, names, grid, metadata)))
    sweep = _SweepFile(path, wanted)
    try:
        def skip(rec):
            return rec["status"] == "ok" or not retry_errors

        resumed = sum(1 for r in sweep.records.values() if skip(r))
        todo = [i for i in range(len(points)) if i not in sweep.records or not skip(sweep.records[i])]
        report = (_StderrProgress(path.name) if progress is True else (progress or None))
        start = time.perf_counter()
        state = {"new": 0}

        def notify(record):
            if report is None:
                return
            elapsed = time.perf_counter() - start
            done = resumed + state["new"]
            rate = state["new"] / elapsed if state["new"] and elapsed > 0 else math.nan
            eta = (len(points) - done) / rate if rate > 0 else (0.0 if done == len(points) else math.nan)
            errors = sum(1 for r in sweep.records.values() if r["status"] == "error")
            report(SweepProgress(done=done, total=len(points), resumed=resumed, errors=errors,
                                 elapsed=elapsed, rate=rate, eta=eta, record=record))

        def on_result(out):
            i = out["index"]
            record = {"index": i, "point": points[i], "status": out["status"], "result": out["result"],
                      "error": out["error"], "traceback": out["traceback"], "wall_time": out["wall_time"],
                      "finished": _now(), "worker": out["worker"]}
            sweep.write(record)
            state["new"] += 1
            notify(record)

        notify(None)
        describe = _failure_message(path, lambda: len(sweep.records))
        if todo:
            if backend == "serial":
                for i in todo:
                    on_result(_evaluate(function, i, points[i]))
            elif backend == "process":
                _run_process(function, points, todo, workers, context, on_result, describe)
            else:
                _run_dask(function, points, todo, workers, dask_address, on_result, describe)
        return [_decode_nonfinite(sweep.records[i]) for i in sorted(sweep.records)]
    finally:
        sweep.close()


# ---------------------------------------------------------------------------------------------------------
# records → arrays


def record_value(record: Mapping, key: str):
    """``record["result"][key]``, else ``record["point"][key]``; ``"a.b"`` reads nested dicts. ``KeyError`` if absent."""
    for source in (record.get("result") or {}, record.get("point") or {}):
        node, found = source, True
        for part in str(key).split("."):
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            else:
                found = False
                break
        if found:
            return node
    raise KeyError(f"key {key!r} is in neither the result nor the point of record {record.get('index')} "
                   f"(result keys: {sorted((record.get('result') or {}).keys())}, "
                   f"parameters: {sorted((record.get('point') or {}).keys())})")


def to_grid(records, x_name: str, y_name: str, key, *, x_values=None, y_values=None, fill=None):
    """Arrange one quantity of the records on the (x, y) grid: ``(x, y, Z)`` with ``Z[j, i]`` at ``(x[i], y[j])``.

    ``key`` names an entry of ``record["result"]`` (``"a.b"`` for nested
    dicts), or of ``record["point"]``, or is a callable ``key(record)``.
    ``x``/``y`` are the sorted distinct values in the records unless
    ``x_values``/``y_values`` are given (e.g. ``header["grid"]["x"]["values"]``,
    so that missing rows stay visible). Records with status ``"error"`` and
    points without a record are missing. If every value is a number (or bool),
    ``Z`` is a float64 array with missing entries ``fill`` (default NaN);
    otherwise it is an object array with missing entries ``fill`` (default
    None). Two records on the same (x, y) (a third parameter varies) raise
    ``ValueError``: filter the records first.
    """
    records = list(records)

    def value_of(rec):
        return key(rec) if callable(key) else record_value(rec, key)

    def axis(name, given):
        if given is not None:
            return list(given)
        vals = []
        for rec in records:
            if name not in rec.get("point", {}):
                raise KeyError(f"parameter {name!r} is not in record {rec.get('index')} "
                               f"(parameters: {sorted(rec.get('point', {}))})")
            vals.append(rec["point"][name])
        try:
            return sorted(set(vals))
        except TypeError:
            return list(dict.fromkeys(vals))

    xs, ys = axis(x_name, x_values), axis(y_name, y_values)
    xi = {_dumps(_jsonable(v)): i for i, v in enumerate(xs)}
    yi = {_dumps(_jsonable(v)): j for j, v in enumerate(ys)}
    cells: dict[tuple[int, int], Any] = {}
    for rec in records:
        point = rec.get("point", {})
        kx, ky = _dumps(_jsonable(point.get(x_name))), _dumps(_jsonable(point.get(y_name)))
        if kx not in xi or ky not in yi:
            continue
        cell = (yi[ky], xi[kx])
        if cell in cells:
            raise ValueError(f"two records at {x_name}={point.get(x_name)!r}, {y_name}={point.get(y_name)!r} "
                             "(another parameter varies); filter the records to one value of it first")
        cells[cell] = value_of(rec) if rec.get("status") == "ok" else _MISSING
    values = [v for v in cells.values() if v is not _MISSING]
    numeric = all(isinstance(v, (int, float, np.integer, np.floating, bool, np.bool_)) for v in values)
    if numeric:
        Z = np.full((len(ys), len(xs)), np.nan if fill is None else fill, dtype=np.float64)
    else:
        Z = np.empty((len(ys), len(xs)), dtype=object)
        Z[...] = fill
    for (j, i), v in cells.items():
        if v is not _MISSING:
            Z[j, i] = v
    x_arr = np.asarray(xs, dtype=np.float64) if all(isinstance(v, (int, float)) for v in xs) else np.asarray(xs, dtype=object)
    y_arr = np.asarray(ys, dtype=np.float64) if all(isinstance(v, (int, float)) for v in ys) else np.asarray(ys, dtype=object)
    return x_arr, y_arr, Z


_MISSING = object()
