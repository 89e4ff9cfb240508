"""Theory solve time against the sampling time to reach the same error bar on the test predictor.

For each P (digits, classes 0..m−1, P/m training inputs per class, 40 test inputs per class),
in the same run and on the same data:

1. the general-input mean-field theory (:func:`solvers.data.solve.solve_general` +
   :meth:`~solvers.data.solve.GeneralSolution.predict`; at most 40 rounds, since the ReLU
   condensate's cutting plane needs more than the default 25): wall time, convergence (rounds,
   rms residual/MCSE z, split-R̂ of the log tilt, max MCSE of the training residual) and the
   median MCSE of f(x*) over test inputs and outputs, the *target* error bar;
2. sampled mean-field networks of width N (:func:`validation.generalization.sample_generalization`,
   two chains of collapsed sweeps): a pilot run gives the MCSE of the sampled mean predictor
   after ``pilot`` = 200 sweeps (a third burn-in; fewer draws make the batch-means MCSE itself
   unreliable); since the MCSE falls like (draws)^{-1/2}, the sweeps needed for the
   target are extrapolated and a second run with that many sweeps (capped by ``--budget``
   seconds, from the pilot's time per sweep) measures the time and the MCSE actually reached.
   If the cap binds, the table also gives the extrapolated time (time × (MCSE/target)²).

The two error bars measure different things: the theory's is the Monte Carlo error of the
N = ∞ prediction; the sampling one the Monte Carlo error at width N, which also carries an
O(1/N) finite-size bias that is not included. BLAS runs single-threaded (threadpoolctl).

    nice python benchmarks/bench_generalize.py [--sizes 100,300] [--nonlinearity relu] [--budget 300] \
        [--sampler smc]
"""
from __future__ import annotations

import argparse
from pathlib import Path
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from solvers.data.solve import GeneralOptions, solve_general  # noqa: E402
from theory.datasets import load_digits_dataset  # noqa: E402
from validation.generalization import sample_generalization  # noqa: E402


def sampling_to_target(spec, ds, target, width, budget, pilot=200, seed=0):
    """(time, sweeps, MCSE reached, extrapolated time) for the median MCSE of f̄(x*) to reach ``target``."""
    def run(sweeps):
        out = sample_generalization(spec, ds.test_inputs, ds.test_labels, width=width, chains=2, sweeps=sweeps,
                                    burn=sweeps // 3, seed=seed)
        return out["time_seconds"], float(np.median(out["mean_predictor_mcse"]))

    t_p, se_p = run(pilot)
    if se_p <= target:
        return t_p, pilot, se_p, t_p
    draws_p = pilot - pilot // 3
    need = int(np.ceil(draws_p * (se_p / target) ** 2 * 1.5))  # sampling draws (chains × draws fixed at 2)
    sweeps = int(np.ceil(need * 1.5))  # a third of the sweeps are burn-in
    sweeps = min(sweeps, max(pilot, int(budget / (t_p / pilot))))
    t_s, se_s = run(sweeps)
    return t_s, sweeps, se_s, t_s * max(se_s / target, 1.0) ** 2


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,300")
    ap.add_argument("--nonlinearity", default="relu")
    ap.add_argument("--temperature", type=float, default=0.5)
    ap.add_argument("--width", type=int, default=200)
    ap.add_argument("--budget", type=float, default=300.0, help="sampling time cap per size, seconds")
    ap.add_argument("--sampler", choices=("mcmc", "smc"), default="mcmc", help="theory's single-neuron sampler")
    ap.add_argument("--max-particles", type=int, default=65536, help="SMC: largest particle cloud")
    args = ap.parse_args(argv)
    rows = []
    with threadpool_limits(1):
        for P in [int(s) for s in args.sizes.split(",")]:
            m = 4 if P == 100 else 3
            ds = load_digits_dataset(tuple(range(m)), train_per_class=P // m, test_per_class=40, seed=0)
            spec = ds.spec(args.nonlinearity, 1.0, 1.0, args.temperature)
            t0 = time.perf_counter()
            opts = dict(sampler="smc", particles=4096, max_particles=args.max_particles, smc_moves=5) \
                if args.sampler == "smc" else dict(sampler="mcmc")
            sol = solve_general(spec, GeneralOptions(seed=0, max_rounds=40, **opts))
            pred = sol.predict(ds.test_inputs)
            t_theory = time.perf_counter() - t0
            target = float(np.median(pred.mean_error))
            print(f"P = {ds.P}: theory {t_theory:.1f} s, {sol.message}; median MCSE of f(x*) {target:.2e}",
                  file=sys.stderr, flush=True)
            t_samp, sweeps, se, t_extra = sampling_to_target(spec, ds, target, args.width, args.budget)
            rows.append((ds.P, m, t_theory, sol, target, t_samp, sweeps, se, t_extra))
            print(f"P = {ds.P}: sampling N = {args.width}: {t_samp:.1f} s, {sweeps} sweeps/chain, MCSE {se:.2e}",
                  file=sys.stderr, flush=True)
    print(f"φ = {args.nonlinearity}, T = {args.temperature:g}, σ_w = σ_a = 1, digits, theory sampler {args.sampler}")
    print(f"| P (m) | theory time (s) | converged | rounds | z | split-R̂ | max MCSE r̂ (last round) | theory MCSE f(x*) "
          f"| sampling time (s), N = {args.width} | sweeps/chain | sampling MCSE | reached | time to target (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for P, m, tt, sol, tgt, ts, sw, se, tx in rows:
        mc = float(np.max([e["mcse"] for e in sol.log if "mcse" in e and np.isfinite(e["mcse"])][-1:] or [np.nan]))
        print(f"| {P} ({m}) | {tt:.1f} | {sol.converged} | {sol.rounds} | {sol.z_rms:.2f} | {sol.rhat:.3f} | "
              f"{mc:.2g} | {tgt:.2e} | {ts:.1f} | {sw} | {se:.2e} | {se <= tgt} | {tx:.0f} |")


if __name__ == "__main__":
    main()
