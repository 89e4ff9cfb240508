"""``run_sweep``: evaluate a function at every point, appending each result to the sweep file.

Killing the sweep at any moment loses at most the points that were being computed; calling
``run_sweep`` again with the same arguments resumes it: points already in the file are not
recomputed, and no point is written twice. Backends: :mod:`solvers.sweep.backends`; file
format: :mod:`solvers.sweep.fileformat`; progress: :mod:`solvers.sweep.progress_line`.
"""
from __future__ import annotations

import importlib.util
import math
import multiprocessing
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Callable

import numpy as np

from solvers.sweep.backends import BACKENDS, DASK_HINT, check_picklable, default_context, failure_message, \
    run_backend
from solvers.sweep.fileformat import make_header, now
from solvers.sweep.grid import check_points
from solvers.sweep.progress_line import StderrProgress, SweepProgress, send
from solvers.sweep.store import SweepFile
from theory.jsonio import decode_nonfinite, jsonable

__all__ = ["run_sweep"]


def _check_arguments(function, backend, workers, dask_address, mp_context, progress, path, metadata):
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
    if path.is_dir():
        raise ValueError(f"path {str(path)!r} is a directory; give a file name such as {str(path / 'sweep.jsonl')!r}")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")


class _Recorder:
    """Writes each finished point to the file and reports progress; False from ``on_result`` = stop."""

    def __init__(self, sweep: SweepFile, points, resumed: int, progress):
        self.sweep, self.points, self.resumed, self.progress = sweep, points, resumed, progress
        self.start = time.perf_counter()
        self.new = 0

    def notify(self, record) -> bool:
        if self.progress is None:
            return True
        elapsed = time.perf_counter() - self.start
        done, total = self.resumed + self.new, len(self.points)
        rate = self.new / elapsed if self.new and elapsed > 0 else math.nan
        eta = (total - done) / rate if rate > 0 else (0.0 if done == total else math.nan)
        errors = sum(1 for r in self.sweep.records.values() if r["status"] == "error")
        return send(self.progress, SweepProgress(done=done, total=total, resumed=self.resumed, errors=errors,
                                                 elapsed=elapsed, rate=rate, eta=eta, record=record))

    def on_result(self, out) -> bool:
        i = out["index"]
        record = {"index": i, "point": self.points[i], "status": out["status"], "result": out["result"],
                  "error": out["error"], "traceback": out["traceback"], "wall_time": out["wall_time"],
                  "finished": now(), "worker": out["worker"]}
        self.sweep.write(record)
        self.new += 1
        return self.notify(record)


def run_sweep(function: Callable[[dict], Mapping], points, path, *, workers: int | None = None,
              backend: str = "process", dask_address=None, progress=True, metadata: Mapping | None = None,
              retry_errors: bool = False, grid: Mapping | None = None, mp_context: str | None = None
              ) -> list[dict]:
    """Evaluate ``function`` at every point, appending each result to ``path`` as it finishes; resumable.

    ``function(point: dict) -> dict`` of JSON-serialisable results (numpy scalars and arrays are
    converted); exceptions it raises are recorded with status ``"error"`` and the sweep goes on.
    ``points``: list of dicts of parameter values (JSON-serialisable, all with the same names, no
    duplicates), e.g. from :func:`grid_points`. ``path``: the sweep file (JSON Lines, see
    :mod:`solvers.sweep.fileformat`), created with its folder if missing; if it holds this sweep,
    finished points are skipped; if it holds another sweep, :class:`SweepMismatchError`.
    ``workers``: parallel workers (integer ≥ 1); default ``os.cpu_count()`` for ``"process"``,
    the cluster's threads for ``"dask"``; ``None`` or 1 for ``"serial"``. ``backend``:
    ``"process"`` (default), ``"serial"`` or ``"dask"`` (:mod:`solvers.sweep.backends`).
    ``dask_address``: Dask scheduler address or ``distributed.Client`` (backend ``"dask"`` only);
    ``None`` starts a local cluster of ``workers`` processes. ``progress``: ``True`` a progress
    line on stderr (points done/total, rate, ETA); ``False``/``None`` silent; a callable gets a
    :class:`SweepProgress` event (the protocol of :mod:`solvers.progress`) after every point and
    once at the start, and stops the sweep (after the points in flight) by returning ``False``.
    ``metadata``: JSON-serialisable dict stored in the header (e.g. the fixed model settings),
    part of the sweep's identity when resuming. ``retry_errors``: recompute points whose record
    has status ``"error"``. ``grid``: grid definition for the header; default ``points.grid``
    when ``points`` came from :func:`grid_points`. ``mp_context``: start method for
    ``"process"``: ``"forkserver"`` (default where available), ``"spawn"`` or ``"fork"``.

    Returns the records of all points (one per index, the latest), sorted by index.
    """
    path = Path(path)
    _check_arguments(function, backend, workers, dask_address, mp_context, progress, path, metadata)
    metadata = jsonable(dict(metadata or {}), "metadata")
    if grid is None:
        grid = getattr(points, "grid", None)
    grid = jsonable(dict(grid), "grid") if grid is not None else None
    points, names = check_points(points)
    if backend == "dask" and importlib.util.find_spec("distributed") is None:
        raise ImportError(DASK_HINT)
    context = mp_context or default_context()
    if backend == "process":
        check_picklable(function, backend, context)
        workers = workers or os.cpu_count() or 1

    path.parent.mkdir(parents=True, exist_ok=True)
    sweep = SweepFile(path, make_header(function, points, names, grid, metadata))
    try:
        def skip(rec):
            return rec["status"] == "ok" or not retry_errors

        resumed = sum(1 for r in sweep.records.values() if skip(r))
        todo = [i for i in range(len(points)) if i not in sweep.records or not skip(sweep.records[i])]
        recorder = _Recorder(sweep, points, resumed, StderrProgress(path.name) if progress is True
                             else (progress or None))
        if recorder.notify(None):
            run_backend(backend, function, points, todo, workers=workers, context=context,
                        dask_address=dask_address, on_result=recorder.on_result,
                        describe=failure_message(path, lambda: len(sweep.records)))
        return [decode_nonfinite(sweep.records[i]) for i in sorted(sweep.records)]
    finally:
        sweep.close()
