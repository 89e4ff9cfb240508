"""Benchmark: large-P branch form vs the finite-P MCMC theory vs sampled networks on digits.

Digits classes 0, 1, 2 (pixel-standardised), σ_1 = 1, σ_a = σ̄_a/√P with σ̄_a = 1, normcdf, T = 0.05,
P = 99 (33 per class) and 300 (100 per class). For each method: wall time, the achieved Monte Carlo
standard error of the test predictor f(x*) (max over 60 test inputs × 3 outputs) and the time scaled
to a common target MCSE (``--target``, default 0.01) as time·(MCSE/target)² (MCSE ∝ time^{-1/2} for
a converged Monte Carlo estimate; the solve's fixed overhead makes this a lower bound for the
solvers). Ratios are relative to the branch form. Also the max |f̄(x*)| gap of each method to the
branch form. Run: ``python benchmarks/bench_general_branches.py [--quick]``.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from solvers.data.branches import GeneralBranchOptions, solve_general_branches
from solvers.data.solve import GeneralOptions, solve_general
from theory.datasets import load_digits_dataset
from validation.generalization import sample_generalization


def run(per: int, nl: str, T: float, width: int, sweeps: int, rounds: int):
    ds = load_digits_dataset((0, 1, 2), train_per_class=per, test_per_class=20, seed=0)
    P = 3 * per
    spec = ds.spec(nl, 1.0, 1.0 / np.sqrt(P), T)
    rows = []
    t0 = time.perf_counter()
    br = solve_general_branches(spec, GeneralBranchOptions())
    pb = br.predict(ds.test_inputs)
    rows.append(("branches", time.perf_counter() - t0, float(pb.mean_error.max()), br.converged, pb.mean))
    t0 = time.perf_counter()
    gd = solve_general(spec, GeneralOptions(max_rounds=rounds, sampler="mcmc"))
    pg = gd.predict(ds.test_inputs)
    rows.append(("general_data", time.perf_counter() - t0, float(pg.mean_error.max()), gd.converged, pg.mean))
    t0 = time.perf_counter()
    sm = sample_generalization(spec, ds.test_inputs, ds.test_labels, width=width, chains=2, sweeps=sweeps)
    rows.append((f"sampling N={width}", time.perf_counter() - t0, float(np.max(sm["mean_predictor_mcse"])), True,
                 np.asarray(sm["mean_predictor"])))
    return P, rows, br


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="P = 99 only")
    ap.add_argument("--target", type=float, default=0.01)
    ap.add_argument("--nonlinearity", default="normcdf")
    ap.add_argument("--temperature", type=float, default=0.05)
    ap.add_argument("--width", type=int, default=200)
    ap.add_argument("--sweeps", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=15, help="max rounds of general_data.solve_general")
    a = ap.parse_args()
    print(f"{'P':>4} {'method':<16} {'time/s':>8} {'MCSE f*':>9} {'conv':>5} {'t@target/s':>11} {'ratio':>7} "
          f"{'max|Δf*|':>9} {'mean|Δf*|':>10}")
    for per in ((33,) if a.quick else (33, 100)):
        P, rows, br = run(per, a.nonlinearity, a.temperature, a.width, a.sweeps, a.rounds)
        ref_t = rows[0][1] * (rows[0][2] / a.target) ** 2
        for name, sec, err, conv, mean in rows:
            scaled = sec * (err / a.target) ** 2
            print(f"{P:>4} {name:<16} {sec:8.1f} {err:9.2g} {str(bool(conv)):>5} {scaled:11.1f} "
                  f"{scaled / ref_t:7.2f} {np.max(np.abs(mean - rows[0][4])):9.3f} "
                  f"{np.mean(np.abs(mean - rows[0][4])):10.3f}", flush=True)
        print(f"     branches: {len(br.branches)} codes {br.codes} occupations "
              f"{np.round(br.occupations, 3).tolist()}; {br.message}", flush=True)


if __name__ == "__main__":
    main()
