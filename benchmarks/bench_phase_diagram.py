"""Phase-diagram throughput: warm-started rows against a naive grid of independent solves.

Task: erf, ρ = (1/2, 1/4, 1/4), x = T in [0.05, 1], y = σ̄_a in [0.5, 2] (large-P theory).

* naive: :func:`solvers.large_p.solve.solve_large_p` from scratch at ``--naive`` grid points (random
  sample of the grid), time per point;
* rows: :func:`solvers.large_p.phase_diagram.phase_diagram` on an ``--ny`` × ``--nx`` grid (rows warm-started,
  transitions bisected 8 times) with 1 and with 2 worker processes, points per second (grid points
  only; the bisection solves are extra work inside the same time).

With ``--full`` also the 100 × 100 diagram on 2 workers (the goal: at most 60 s). ``--top`` prints the
top entries by own time of a cProfile of one row (``--nx`` points, in-process). Every number is
measured in the same run. Run: python benchmarks/bench_phase_diagram.py [--nx 30 --ny 30] [--full]
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from solvers.large_p.solve import solve_large_p  # noqa: E402
from solvers.large_p.problem import LargePProblem  # noqa: E402
from solvers.large_p.phase_diagram import phase_diagram, phase_row  # noqa: E402


def _diagram(prob, nx, ny, workers):
    xs, ys = np.linspace(0.05, 1.0, nx), np.linspace(0.5, 2.0, ny)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        pd = phase_diagram(prob, "temperature", xs, "sigma_a_bar", ys, Path(d) / "pd.jsonl", workers=workers,
                           progress=False)
        dt = time.perf_counter() - t0
    assert all(r is not None for r in pd.rows)
    return dt, pd


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nx", type=int, default=50)
    ap.add_argument("--ny", type=int, default=10)
    ap.add_argument("--naive", type=int, default=12)
    ap.add_argument("--full", action="store_true", help="also the 100 × 100 diagram on 2 workers")
    ap.add_argument("--top", type=int, default=5, help="cProfile entries of one row to print (0: none)")
    args = ap.parse_args(argv)
    prob = LargePProblem(nonlinearity="erf", class_fractions=(0.5, 0.25, 0.25))
    solve_large_p(prob)  # JIT and ψ table warm-up
    rng = np.random.default_rng(0)
    T = rng.uniform(0.05, 1.0, args.naive)
    S = rng.uniform(0.5, 2.0, args.naive)
    t0 = time.perf_counter()
    for x, y in zip(T, S):
        solve_large_p(prob.replace(temperature=float(x), sigma_a_bar=float(y)))
    naive = (time.perf_counter() - t0) / args.naive
    n = args.nx * args.ny
    t1, _ = _diagram(prob, args.nx, args.ny, 1)
    t2, pd = _diagram(prob, args.nx, args.ny, 2)
    rows = [("naive grid, independent solve_large_p", 1, 1.0 / naive, 1.0),
            (f"rows, warm start ({args.ny}×{args.nx})", 1, n / t1, naive * n / t1),
            (f"rows, warm start ({args.ny}×{args.nx})", 2, n / t2, naive * n / t2)]
    print("| method | workers | points/s | speed-up over naive |")
    print("|---|---|---|---|")
    for name, w, rate, ratio in rows:
        print(f"| {name} | {w} | {rate:.1f} | {ratio:.1f}× |")
    print(f"2 workers / 1 worker: {t1 / t2:.2f}×; {len(pd.boundary_points)} transitions located")
    if args.full:
        tf, pdf = _diagram(prob, 100, 100, 2)
        print(f"100 × 100 diagram, 2 workers: {tf:.1f} s ({1e4 / tf:.1f} points/s), "
              f"{len(pdf.boundary_points)} transitions located, goal ≤ 60 s: {'met' if tf <= 60 else 'not met'}")
    if args.top > 0:
        _profile_row(prob, args.nx, args.top)


def _profile_row(prob, nx, top):
    """cProfile of the middle row (σ̄_a = 1.25) of the diagram, top ``top`` entries by own time."""
    job = {"problem": prob.to_dict(), "x_name": "temperature", "x_values": np.linspace(0.05, 1.0, nx).tolist(),
           "y_name": "sigma_a_bar", "y": 1.25, "refine": 8}
    prof = cProfile.Profile()
    prof.enable()
    row = phase_row(job)
    prof.disable()
    print(f"\ncProfile of one row ({nx} points, {len(row['boundaries'])} transitions bisected, "
          f"{row['global_solves']} global solves), top {top} by own time:")
    pstats.Stats(prof).sort_stats("tottime").print_stats(top)


if __name__ == "__main__":
    main()
