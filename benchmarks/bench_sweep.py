"""Throughput of the sweep runner: serial against 1 and 2 worker processes (and Dask if installed).

The same sweep (a grid of ``--nx × --ny`` points) is run from scratch into
a temporary file with backend ``serial``, then ``process`` with 1 and 2
workers (start method ``--context``, default forkserver), and printed as
points per second with ratios to serial and to 1 worker. The function is
given by import path (``--function module:name``, called with a dict
``{x_name: x, y_name: y}``); the default, :func:`cheap_point`, does a few
milliseconds of float64 numpy work (elementwise, so it uses one core).

A second table shows the fixed costs: the time to the first finished point
of a sweep of a no-op function (pool start-up: fork server or fresh
interpreters importing the package, plus the first round trip) and the
per-point overhead after the first point of a 400-point sweep of the no-op
function (pickling, queues, the fsync of each record).

Run: python benchmarks/bench_sweep.py [--quick] [--function pkg.module:name --x T=0.01:1:8 --y s=0.5:3:8]
"""
from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from solvers.sweep import grid_points, run_sweep  # noqa: E402


def cheap_point(point: dict) -> dict:
    """A few ms of float64 work: a Gaussian-damped oscillatory integral on 2·10⁵ nodes, 4 times."""
    x, y = float(point["x"]), float(point["y"])
    t = np.linspace(0.0, 8.0, 200_001, dtype=np.float64)
    total = 0.0
    for k in range(4):
        f = np.exp(-x * t * t) * np.cos((y + 0.1 * k) * t)
        total += float(np.sum(f[1:] + f[:-1]) * 0.5 * (t[1] - t[0]))
    return {"integral": total, "label": "pos" if total > 0 else "neg"}


def noop(point: dict) -> dict:
    return {}


def _resolve(spec: str):
    if ":" not in spec:
        raise SystemExit(f"--function must be module:name, got {spec!r}")
    module, name = spec.split(":", 1)
    return getattr(importlib.import_module(module), name)


def _axis(spec: str, default_name: str):
    name, _, rng = spec.rpartition("=")
    lo, hi, n = rng.split(":")
    return name or default_name, np.linspace(float(lo), float(hi), int(n))


class _FirstPoint:
    """Progress callback that notes when the first point of this call finished."""

    def __init__(self):
        self.start = time.perf_counter()
        self.first = math.nan

    def __call__(self, p):
        if p.record is not None and math.isnan(self.first):
            self.first = time.perf_counter() - self.start


def _timed(function, points, **kw):
    with tempfile.TemporaryDirectory() as d:
        probe = _FirstPoint()
        start = time.perf_counter()
        records = run_sweep(function, points, Path(d) / "bench.jsonl", progress=probe, **kw)
        wall = time.perf_counter() - start
    errors = sum(r["status"] != "ok" for r in records)
    if errors:
        first = next(r for r in records if r["status"] != "ok")
        raise SystemExit(f"{errors} points failed, e.g. {first['point']}: {first['error']}")
    return wall, probe.first, float(np.mean([r["wall_time"] for r in records]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--function", default="bench_sweep:cheap_point", help="module:name of the point function")
    ap.add_argument("--x", default="x=0.05:2:10", help="NAME=lo:hi:n of the x axis (default x=0.05:2:10)")
    ap.add_argument("--y", default="y=0.5:6:10", help="NAME=lo:hi:n of the y axis (default y=0.5:6:10)")
    ap.add_argument("--context", default=None, help="start method: forkserver (default), spawn or fork")
    ap.add_argument("--dask", action="store_true", help="also time a local Dask cluster of 2 processes")
    ap.add_argument("--quick", action="store_true", help="a 6 x 6 grid")
    args = ap.parse_args()
    if args.quick:
        args.x, args.y = args.x.rsplit(":", 1)[0] + ":6", args.y.rsplit(":", 1)[0] + ":6"
    function = _resolve(args.function)
    (xn, xv), (yn, yv) = _axis(args.x, "x"), _axis(args.y, "y")
    points = grid_points(xn, xv, yn, yv)
    ctx = {"mp_context": args.context} if args.context else {}
    print(f"function {args.function}, {len(points)} points, {os.cpu_count()} cores, python {sys.version.split()[0]}, "
          f"load average {os.getloadavg()[0]:.2f} (other processes compete for the cores above ~0)")

    # fixed costs first, while no fork server is running yet
    overhead = []
    for context in ("forkserver", "spawn", "fork"):
        first_sweep = _timed(noop, [{"i": i} for i in range(2)], workers=2, mp_context=context)
        again = _timed(noop, [{"i": i} for i in range(2)], workers=2, mp_context=context)
        many = _timed(noop, [{"i": i} for i in range(400)], workers=2, mp_context=context)
        overhead.append((context, first_sweep[1], again[1], (many[0] - many[1]) / 399))
    serial_many = _timed(noop, [{"i": i} for i in range(400)], backend="serial")
    print("\nfixed costs (no-op function, 2 workers)")
    print(f"{'start method':>13} {'first point, first sweep (s)':>29} {'first point, next sweep (s)':>28} "
          f"{'per further point (ms)':>23}")
    for context, first, later, per in overhead:
        print(f"{context:>13} {first:29.3f} {later:28.3f} {per * 1e3:23.2f}")
    print(f"{'serial':>13} {'':>29} {'':>28} {serial_many[0] / 400 * 1e3:23.2f}")

    function(dict(points[0]))  # warm-up (imports, JIT) in this process, for the serial run
    rows = [("serial", 1) + _timed(function, points, backend="serial")]
    for workers in (1, 2):
        rows.append(("process", workers) + _timed(function, points, workers=workers, **ctx))
    if args.dask:
        rows.append(("dask", 2) + _timed(function, points, backend="dask", workers=2))
    serial_rate = len(points) / rows[0][2]
    one_rate = len(points) / rows[1][2]
    print(f"\nthroughput ({len(points)} points; wall includes pool start-up)")
    print(f"{'backend':>8} {'workers':>7} {'wall (s)':>9} {'points/s':>9} {'vs serial':>9} {'vs 1 worker':>11} "
          f"{'mean time in function (ms)':>27}")
    for backend, workers, wall, _, mean_fn in rows:
        rate = len(points) / wall
        print(f"{backend:>8} {workers:7d} {wall:9.2f} {rate:9.2f} {rate / serial_rate:9.2f} {rate / one_rate:11.2f} "
              f"{mean_fn * 1e3:27.2f}")


if __name__ == "__main__":
    main()
