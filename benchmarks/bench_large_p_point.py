"""Time per warm-started large-P point next to a cold solve, with the profile's top entries.

Task: erf, ρ = (1/2, 1/4, 1/4), σ̄_a = 1, σ_1 = 1, at temperatures T along a line (``--points``
values in [``--t-lo``, ``--t-hi``]). Each point is solved

* cold: :func:`solvers.large_p.solve.solve_large_p` from t = 0 (the smoothed-dual schedule);
* warm: the phase diagram's step (:func:`solvers.large_p.phase_diagram.warm_point`): Newton on the
  branches of the neighbouring point's solution, with the global-maximum check of S.

Both are timed in the same run (best of ``--rounds`` rounds, per point), and the warm step is profiled
under cProfile (top ``--top`` entries by own time). Wall and CPU time (process_time) per point.
Run: python benchmarks/bench_large_p_point.py [--record PATH]
"""
from __future__ import annotations

import argparse
import cProfile
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.record import Record, add_record_argument  # noqa: E402
from solvers.large_p.phase_diagram import warm_point  # noqa: E402
from solvers.large_p.problem import LargePProblem  # noqa: E402
from solvers.large_p.solve import solve_large_p  # noqa: E402


def _line(prob, temps):
    """Cold solutions along the line (the neighbours of the warm steps)."""
    return [solve_large_p(prob.replace(temperature=float(T))) for T in temps]


def _warm_sweep(prob, temps, cold):
    """Warm step to each T from the cold solution at the previous T; (seconds, solutions)."""
    t0 = time.perf_counter()
    out = [warm_point(prob.replace(temperature=float(T)), prev)[0] for T, prev in zip(temps[1:], cold[:-1])]
    return time.perf_counter() - t0, out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=21)
    ap.add_argument("--t-lo", type=float, default=0.05)
    ap.add_argument("--t-hi", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--top", type=int, default=5)
    add_record_argument(ap)
    args = ap.parse_args(argv)
    record = Record("bench_large_p_point")
    prob = LargePProblem(nonlinearity="erf", class_fractions=(0.5, 0.25, 0.25))
    temps = np.linspace(args.t_lo, args.t_hi, args.points)
    solve_large_p(prob)  # JIT and ψ table warm-up
    cold_best, warm_best = (np.inf, np.inf), (np.inf, np.inf)
    for _ in range(args.rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        cold = _line(prob, temps)
        cold_best = min(cold_best, ((time.perf_counter() - t0) / len(temps), (time.process_time() - c0) / len(temps)))
        c0 = time.process_time()
        dt, warm = _warm_sweep(prob, temps, cold)
        warm_best = min(warm_best, (dt / (len(temps) - 1), (time.process_time() - c0) / (len(temps) - 1)))
    dt = [float(np.max(np.abs(w.t - c.t))) for w, c in zip(warm, cold[1:])]
    record.table(f"Large-P point, erf, ρ = (1/2, 1/4, 1/4), {args.points} temperatures in [{args.t_lo:g}, {args.t_hi:g}] "
                 f"(best of {args.rounds} rounds)",
                 ["solve", "wall ms per point", "CPU ms per point", "max \\|t_warm − t_cold\\|"],
                 [["cold, `solve_large_p`", f"{1e3 * cold_best[0]:.1f}", f"{1e3 * cold_best[1]:.1f}", ""],
                  ["warm, phase-diagram step", f"{1e3 * warm_best[0]:.1f}", f"{1e3 * warm_best[1]:.1f}", f"{max(dt):.1e}"]],
                 note=f"cold / warm: {cold_best[1] / warm_best[1]:.1f}× (CPU); warm goal ≤ 5 ms: "
                      f"{'met' if warm_best[1] <= 5e-3 else f'not met ({warm_best[1] / 5e-3:.1f}× over, CPU)'}.")
    prof = cProfile.Profile()
    prof.enable()
    _warm_sweep(prob, temps, cold)
    prof.disable()
    record.profile(f"cProfile of the warm steps ({len(temps) - 1} points), top {args.top} by own time", prof, args.top)
    record.write(args.record)


if __name__ == "__main__":
    main()
