"""Continuation points per second against independent solves at the same parameter values.

The large-P solution (erf, m = 3 classes with ρ = (1/2, 1/4, 1/4), σ_1 =
σ̄_a = 1) is followed in T from 1 to 0.1 by
:func:`solvers.large_p.continuation.continue_solution` (pseudo-arclength on
the n-branch equations, physical stability check at every point, two
transitions: the pitchfork at T_c,0 and the split at T_c,1). Then
:func:`solvers.large_p.solve.solve_large_p` is called independently at the
parameter values of the accepted continuation points (the same number of
points, measured in the same run), and the table prints points per second
of both and their ratio, plus how many points agree to 1e-6 in f and U.

"Points" are accepted continuation points on all traced branches
(``LargePContinuation.n_points``: bisection evaluations at special points
and switching probes are extra work counted in the continuation's time,
not as points). ``--repeat`` takes the best of several runs.

Run: python benchmarks/bench_continuation.py [--repeat 3] [--max-solves N]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from solvers.large_p.solve import solve_large_p  # noqa: E402
from solvers.large_p.continuation import continue_solution  # noqa: E402
from solvers.large_p.problem import LargePProblem  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="continuation runs, best time reported (default 3)")
    ap.add_argument("--max-solves", type=int, default=0,
                    help="independent solves at at most this many of the points (0: all; the rate is per solve)")
    ap.add_argument("--from", dest="p_from", type=float, default=1.0)
    ap.add_argument("--to", dest="p_to", type=float, default=0.1)
    args = ap.parse_args(argv)

    prob = LargePProblem(nonlinearity="erf", sigma_w=1.0, sigma_a_bar=1.0, temperature=args.p_from,
                         class_fractions=(0.5, 0.25, 0.25))
    solve_large_p(prob)  # warm the ψ table and numba caches
    best, res = np.inf, None
    for _ in range(max(1, args.repeat)):
        start = time.perf_counter()
        r = continue_solution(prob, "temperature", args.p_from, args.p_to)
        dt = time.perf_counter() - start
        if dt < best:
            best, res = dt, r
    assert res is not None and res.success, res.message
    # parameter values of the accepted points on all traces (the work the continuation did)
    points = [(b, i) for b in res.branches for i in range(1, len(b)) if b.special[i] == ""]
    n_pts = res.n_points
    path_rows = [(b, i) for b, i in points if b.kind[i] == "global" and b.duplicate_of is None]
    sample = path_rows if not args.max_solves else [path_rows[j] for j in np.unique(
        np.linspace(0, len(path_rows) - 1, min(args.max_solves, len(path_rows))).round().astype(int))]
    start = time.perf_counter()
    sols = [solve_large_p(prob.with_parameter("temperature", float(b.parameter[i]))) for b, i in sample]
    dt_solve = time.perf_counter() - start
    agree = sum(1 for (b, i), s in zip(sample, sols)
                if np.max(np.abs(b.f[i] - s.outputs)) < 1e-6 and np.max(np.abs(b.U[i] - s.readout_moment)) < 1e-6)
    per_solve = dt_solve / len(sample)
    cont_rate = n_pts / best
    solve_rate = 1.0 / per_solve
    print(f"erf, rho = (1/2, 1/4, 1/4), T from {args.p_from:g} to {args.p_to:g}: "
          f"{len(res.special_points)} special points at T = "
          + ", ".join(f"{s.parameter:.6f} ({s.kind})" for s in res.special_points))
    print(f"{'':34s} {'points':>7s} {'time [s]':>9s} {'points/s':>9s}")
    print(f"{'continuation (best of %d)' % args.repeat:34s} {n_pts:7d} {best:9.3f} {cont_rate:9.1f}")
    print(f"{'independent solve_large_p':34s} {len(sample):7d} {dt_solve:9.3f} {solve_rate:9.1f}")
    print(f"{'solve_large_p, projected to all':34s} {n_pts:7d} {per_solve * n_pts:9.3f} {solve_rate:9.1f}")
    print(f"ratio continuation / independent solves (points per second): {cont_rate / solve_rate:.1f}x")
    print(f"{agree} of {len(sample)} global points agree with the independent solves to 1e-6 in f and U; "
          f"{res.n_evaluations} stability evaluations (bisection included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
