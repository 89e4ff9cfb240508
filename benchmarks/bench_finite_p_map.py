"""Finite-P map throughput: warm-started rows against independent solves.

Task (issue 14): normcdf, classes 32,16,16, x = T in [0.02, 0.3], y = σ_a in [0.08, 0.3] (σ̄_a = σ_a √64
in [0.64, 2.4]), the exact finite-P theory (THEORY §3) with the default solver options.

* cold: :func:`solvers.solve.solve` from the solver's own start at ``--cold`` grid points (a sample
  of the grid), time per point;
* warm rows: :func:`solvers.finite_p.maps.finite_p_map` on an ``--ny`` × ``--nx`` grid (each row a
  sweep point, warm-started along T, the coding scheme of p(a) measured at every point) with
  ``--workers`` worker processes: points per second, and the 50 × 50 map extrapolated from it.

With ``--full`` the 50 × 50 map itself on 2 workers (the goal: at most 2 minutes). Every number is
measured in the same run; on a shared machine run the small grid and extrapolate.
With ``--workers 1`` the map runs in this process and its CPU time per point is reported too: on
a loaded machine that, not the wall time, extrapolates to 2 idle cores.
Run: python benchmarks/bench_finite_p_map.py [--nx 6 --ny 2 --cold 3] [--workers 1] [--full] [--record PATH]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.record import Record, add_record_argument  # noqa: E402
from solvers.finite_p.maps import finite_p_map  # noqa: E402
from solvers.solve import solve  # noqa: E402
from theory.spec import ModelSpec  # noqa: E402

T_RANGE, SIGMA_RANGE = (0.02, 0.3), (0.08, 0.3)


def _map(spec, nx, ny, workers):
    """(wall seconds, CPU seconds of this process, map); with one worker the map runs in this process
    (serial backend), so the CPU time is the map's, whatever else loads the machine."""
    xs, ys = np.linspace(*T_RANGE, nx), np.linspace(*SIGMA_RANGE, ny)
    with tempfile.TemporaryDirectory() as d:
        t0, c0 = time.perf_counter(), time.process_time()
        fmap = finite_p_map(spec, "temperature", xs, "sigma_a", ys, Path(d) / "map.jsonl", workers=workers,
                            backend="process" if workers > 1 else "serial", progress=False)
        return time.perf_counter() - t0, time.process_time() - c0, fmap


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nx", type=int, default=6)
    ap.add_argument("--ny", type=int, default=2)
    ap.add_argument("--cold", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--full", action="store_true", help="also the 50 × 50 map on 2 workers")
    add_record_argument(ap)
    args = ap.parse_args(argv)
    record = Record("bench_finite_p_map")
    spec = ModelSpec(nonlinearity="normcdf", class_sizes=(32, 16, 16), sigma_a=0.125, temperature=0.05)
    t0 = time.perf_counter()
    solve(spec)  # JIT, ψ table and numba cache warm-up
    print(f"warm-up solve: {time.perf_counter() - t0:.2f} s")
    rng = np.random.default_rng(0)
    cold = []
    for _ in range(args.cold):
        T, s = rng.uniform(*T_RANGE), rng.uniform(*SIGMA_RANGE)
        t0, c0 = time.perf_counter(), time.process_time()
        res = solve(spec.replace(temperature=float(T), sigma_a=float(s)))
        cold.append([f"{T:.3f}", f"{s:.3f}", f"{time.perf_counter() - t0:.2f}", f"{time.process_time() - c0:.2f}",
                     res.iterations, res.converged])
    record.table("Cold solves at random grid points (the solver's own start)",
                 ["T", "σ_a", "wall (s)", "CPU (s)", "Newton steps", "converged"], cold)
    dt, cpu, fmap = _map(spec, args.nx, args.ny, args.workers)
    n = args.nx * args.ny
    steps = [p["iterations"] for p in fmap.points()]
    per_point = [p["time_seconds"] for p in fmap.points()]
    rate = n / dt
    rows = [[f"warm point in a row (solve + measure), median wall", f"{np.median(per_point):.2f} s, "
             f"{np.median(steps):.0f} Newton steps"],
            [f"{args.ny} × {args.nx} map on {args.workers} workers, wall", f"{dt:.1f} s, {rate:.3f} points/s, "
             f"{sum(p['converged'] for p in fmap.points())}/{n} converged"],
            [f"50 × 50 map extrapolated from the wall time ({args.workers} workers)", f"{2500 / rate:.0f} s (goal 120 s)"]]
    if args.workers == 1:
        rows.append(["CPU time per point (this process)", f"{cpu / n:.2f} s; 50 × 50 on 2 idle cores: "
                     f"{2500 * cpu / n / 2:.0f} s (goal 120 s, {2500 * cpu / n / 2 / 120:.0f}× over)"])
    if args.full:
        dt, _, fmap = _map(spec, 50, 50, 2)
        rows.append(["50 × 50 map on 2 workers, measured", f"{dt:.1f} s"])
    record.table("Finite-P map, normcdf, classes 32,16,16, T ∈ [0.02, 0.3] × σ_a ∈ [0.08, 0.3]", ["quantity", "value"],
                 rows)
    record.write(args.record)


if __name__ == "__main__":
    main()
