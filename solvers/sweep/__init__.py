"""Resumable, parallel parameter sweeps (phase diagrams) written point by point.

``run_sweep(function, points, path)`` calls ``function(point) -> dict`` for every point (a dict
of parameter values), in parallel, and appends one line per finished point to a JSON Lines file.
Killing the sweep at any moment loses at most the points that were being computed; calling
``run_sweep`` again with the same arguments resumes it: points already in the file are not
recomputed, and no point is written twice.

* :mod:`.run` — :func:`run_sweep`, the entry point;
* :mod:`.fileformat` — the file format (``codingschemes-sweep`` version 1) and :func:`load_sweep`;
* :mod:`.store` — the locked file while a sweep runs (append, resume, truncate a cut-off line);
* :mod:`.backends` — ``"serial"``, ``"process"`` (default) and ``"dask"``;
* :mod:`.grid` — :func:`grid_points`, :func:`to_grid`, :func:`record_value`;
* :mod:`.progress_line` — :class:`SweepProgress` events and the stderr progress line.
"""
from solvers.sweep.backends import BACKENDS, DASK_HINT
from solvers.sweep.fileformat import FORMAT_NAME, FORMAT_VERSION, SweepError, SweepMismatchError, load_sweep
from solvers.sweep.grid import GridPoints, grid_points, record_value, to_grid
from solvers.sweep.progress_line import SweepProgress
from solvers.sweep.run import run_sweep

__all__ = [
    "BACKENDS",
    "DASK_HINT",
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
