"""Deep large-P solve times (solvers.deep.large_p) next to the one-layer large-P solver.

For φ in normcdf, erf and tanh, classes 32,16,16 (ρ = .5, .25, .25), σ̄_a = 1, T = 0.05 (the paper
regime) and T = 0.3: the median wall time of :func:`solvers.deep.large_p.solve_deep_large_p` for
L = 1 (= :func:`solvers.large_p.solve.solve_large_p`), 2 and 3 (saturated readout problem + prior kernels
+ 4000 sampled prior neurons for the lower layers' codes), with the branch-system residual, the
number of occupied patterns and the last layer's leading codes. One BLAS thread.

Run: OMP_NUM_THREADS=1 python benchmarks/bench_deep_large_p.py [--rounds 3]
"""
from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from solvers.deep.large_p import solve_deep_large_p
from theory.spec import ModelSpec


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    sizes = (32, 16, 16)
    print(f"{'phi':8s} {'T':>5s} {'L':>2s} {'median s':>9s} {'residual':>9s} {'branches':>8s}  last-layer codes")
    with threadpool_limits(limits=1):
        for name in ("normcdf", "erf", "tanh"):
            for T in (0.05, 0.3):
                spec = ModelSpec(nonlinearity=name, class_sizes=sizes, temperature=T, sigma_w=1.0,
                                 sigma_a=1.0 / math.sqrt(sum(sizes)))
                for L in (1, 2, 3):
                    times = []
                    for _ in range(args.rounds):
                        t0 = time.perf_counter()
                        sol = solve_deep_large_p(spec, L)
                        times.append(time.perf_counter() - t0)
                    codes = sorted(sol.code_fractions[-1].items(), key=lambda kv: -kv[1])[:4]
                    print(f"{name:8s} {T:5.2f} {L:2d} {statistics.median(times):9.3f} {sol.residual:9.1e} "
                          f"{len(sol.branches[-1]):8d}  " + ", ".join(f"{k}:{v:.3f}" for k, v in codes)
                          + ("" if sol.converged else "  NOT CONVERGED"))
    np.set_printoptions()


if __name__ == "__main__":
    main()
