"""Phase-diagram throughput: warm-started rows against a naive grid of independent solves.

Task: erf, ρ = (1/2, 1/4, 1/4), x = T in [0.05, 1], y = σ̄_a in [0.5, 2] (large-P theory).

* naive: :func:`solvers.large_p.solve.solve_large_p` from scratch at ``--naive`` grid points (random
  sample of the grid), time per point;
* rows: :func:`solvers.large_p.phase_diagram.phase_diagram` on an ``--ny`` × ``--nx`` grid (rows warm-started,
  transitions bisected 8 times) with 1 and with 2 worker processes, points per second (grid points
  only; the bisection solves are extra work inside the same time).

With ``--full`` also the 100 × 100 diagram on 2 workers (the goal: at most 60 s). ``--top`` prints the
top entries by own time of a cProfile of one row (``--nx`` points, in-process). Every number is
measured in the same run; wall time, and CPU time where the work runs in this process.
Run: python benchmarks/bench_phase_diagram.py [--nx 30 --ny 30] [--full] [--record PATH]
"""
from __future__ import annotations

import argparse
import cProfile
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.record import Record, add_record_argument, cpu_seconds  # noqa: E402
from solvers.large_p.solve import solve_large_p  # noqa: E402
from solvers.large_p.problem import LargePProblem  # noqa: E402
from solvers.large_p.phase_diagram import phase_diagram, phase_row  # noqa: E402


def _diagram(prob, nx, ny, workers):
    """(wall s, CPU s or None, diagram) of an ny × nx diagram. One worker runs in this process (serial
    backend), so its CPU time is the diagram's own whatever else loads the machine; the CPU time of
    worker processes is not counted here (None)."""
    xs, ys = np.linspace(0.05, 1.0, nx), np.linspace(0.5, 2.0, ny)
    with tempfile.TemporaryDirectory() as d:
        t0, c0 = time.perf_counter(), cpu_seconds()
        pd = phase_diagram(prob, "temperature", xs, "sigma_a_bar", ys, Path(d) / "pd.jsonl", workers=workers,
                           backend="serial" if workers == 1 else "process", progress=False)
        dt, cpu = time.perf_counter() - t0, (cpu_seconds() - c0 if workers == 1 else None)
    assert all(r is not None for r in pd.rows)
    return dt, cpu, pd


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nx", type=int, default=50)
    ap.add_argument("--ny", type=int, default=10)
    ap.add_argument("--naive", type=int, default=12)
    ap.add_argument("--full", action="store_true", help="also the 100 × 100 diagram on 2 workers")
    ap.add_argument("--top", type=int, default=5, help="cProfile entries of one row to print (0: none)")
    add_record_argument(ap)
    args = ap.parse_args(argv)
    record = Record("bench_phase_diagram")
    prob = LargePProblem(nonlinearity="erf", class_fractions=(0.5, 0.25, 0.25))
    solve_large_p(prob)  # JIT and ψ table warm-up
    rng = np.random.default_rng(0)
    T = rng.uniform(0.05, 1.0, args.naive)
    S = rng.uniform(0.5, 2.0, args.naive)
    t0, c0 = time.perf_counter(), cpu_seconds()
    for x, y in zip(T, S):
        solve_large_p(prob.replace(temperature=float(x), sigma_a_bar=float(y)))
    naive, naive_cpu = (time.perf_counter() - t0) / args.naive, (cpu_seconds() - c0) / args.naive
    n = args.nx * args.ny
    t1, c1, _ = _diagram(prob, args.nx, args.ny, 1)
    t2, _, pd = _diagram(prob, args.nx, args.ny, 2)
    grid = f"{args.ny}×{args.nx}"
    rows = [["naive grid, independent `solve_large_p`", 1, f"{1 / naive:.1f}", f"{1e3 * naive_cpu:.0f}", "1.0×"],
            [f"rows, warm start ({grid})", 1, f"{n / t1:.1f}", f"{1e3 * c1 / n:.0f}", f"{naive * n / t1:.1f}×"],
            [f"rows, warm start ({grid})", 2, f"{n / t2:.1f}", "", f"{naive * n / t2:.1f}×"]]
    notes = [f"2 workers / 1 worker: {t1 / t2:.2f}× (wall); {len(pd.boundary_points)} transitions located. "
             f"100 × 100 extrapolated from the CPU time of the {grid} rows on 1 worker, spread over 2 idle cores: "
             f"{1e4 * c1 / n / 2:.0f} s (goal ≤ 60 s)."]
    if args.full:
        tf, _, pdf = _diagram(prob, 100, 100, 2)
        rows.append(["rows, warm start (100×100)", 2, f"{1e4 / tf:.1f}", "", f"{naive * 1e4 / tf:.1f}×"])
        notes.append(f"100 × 100 diagram, 2 workers: {tf:.1f} s wall, {len(pdf.boundary_points)} "
                     f"transitions located; goal ≤ 60 s: {'met' if tf <= 60 else f'not met ({tf / 60:.1f}× over)'}.")
    record.table("Large-P phase diagram, erf, ρ = (1/2, 1/4, 1/4), T ∈ [0.05, 1] × σ̄_a ∈ [0.5, 2]",
                 ["method", "workers", "points/s (wall)", "CPU ms per point", "speed-up over naive (wall)"], rows,
                 note=" ".join(notes) + " CPU time is measured where the work runs in this process (naive solves, "
                      "1 worker); the 2-worker rows give wall time only.")
    if args.top > 0:
        _profile_row(record, prob, args.nx, args.top)
    record.write(args.record)


def _profile_row(record, prob, nx, top):
    """cProfile of the middle row (σ̄_a = 1.25) of the diagram, top ``top`` entries by own time."""
    job = {"problem": prob.to_dict(), "x_name": "temperature", "x_values": np.linspace(0.05, 1.0, nx).tolist(),
           "y_name": "sigma_a_bar", "y": 1.25, "refine": 8}
    prof = cProfile.Profile()
    prof.enable()
    row = phase_row(job)
    prof.disable()
    record.profile(f"cProfile of one row ({nx} points, {len(row['boundaries'])} transitions bisected, "
                   f"{row['global_solves']} global solves), top {top} by own time", prof, top)


if __name__ == "__main__":
    main()
