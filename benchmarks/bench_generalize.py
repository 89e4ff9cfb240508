"""Theory solve time against the sampling time to reach the same error bar on the test predictor.

For each P (digits, m classes × P/m training inputs, 40 test inputs per class), in the same run:

1. the general-input mean-field theory (:func:`solvers.general_data.solve_general` + predict):
   wall time and the median MCSE of f(x*) over test inputs and outputs;
2. sampled mean-field networks of width N (two chains, collapsed sweeps): sweeps are added
   in blocks until the median MCSE of the sampled mean predictor (batch means,
   :func:`validation.diagnostics.mcse`) reaches the theory's, or the time budget is spent.

Note that the two error bars measure different things: the theory's is the Monte Carlo
error of the N = ∞ prediction, the sampling one the Monte Carlo error at width N (which
also carries O(1/N) finite-size bias, not included).

    python benchmarks/bench_generalize.py [--sizes 100,300] [--nonlinearity relu] [--budget 600]
"""
from __future__ import annotations

import argparse
from pathlib import Path
import sys
import time

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from solvers.general_data import GeneralOptions, solve_general  # noqa: E402
from theory.datasets import load_digits_dataset  # noqa: E402
from validation.collapsed import collapsed_sweep  # noqa: E402
from validation.diagnostics import mcse  # noqa: E402
from validation.networks import Network  # noqa: E402


def sampling_until(spec, Xs, target, width, budget, seed=0, block=20, burn=60):
    """Sweeps (2 chains, interleaved blocks) until median MCSE(f̄(x*)) <= target or ``budget`` seconds."""
    start = time.perf_counter()
    nets = [Network(spec, width=width, scaling="mean-field") for _ in range(2)]
    rngs = [np.random.default_rng([seed, c]) for c in range(2)]
    thetas = [n.prior_sample(r) for n, r in zip(nets, rngs)]
    eps = [0.05, 0.05]
    Xsc = Xs / np.sqrt(Xs.shape[1])
    draws = [[], []]
    sweeps = 0
    se = np.inf
    while True:
        for c in range(2):
            for _ in range(block):
                thetas[c], acc = collapsed_sweep(rngs[c], nets[c], thetas[c], step_size=eps[c], n_mala=5)
                if sweeps < burn:
                    eps[c] *= float(np.exp(0.5 * (acc - 0.6)))
                else:
                    W, a = nets[c].unpack(thetas[c])
                    draws[c].append(((a @ nets[c].nonlinearity(W @ Xsc.T)).T / width).ravel())
        sweeps += block
        if len(draws[0]) >= 16:
            se = float(np.median(mcse(np.array(draws))))
            if se <= target:
                break
        if time.perf_counter() - start > budget:
            break
    return time.perf_counter() - start, sweeps, se


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,300")
    ap.add_argument("--nonlinearity", default="relu")
    ap.add_argument("--temperature", type=float, default=0.5)
    ap.add_argument("--width", type=int, default=200)
    ap.add_argument("--budget", type=float, default=600.0, help="sampling time budget per size, seconds")
    args = ap.parse_args(argv)
    rows = []
    for P in [int(s) for s in args.sizes.split(",")]:
        m = 4 if P == 100 else 3
        ds = load_digits_dataset(tuple(range(m)), train_per_class=P // m, test_per_class=40, seed=0)
        spec = ds.spec(args.nonlinearity, 1.0, 1.0, args.temperature)
        t0 = time.perf_counter()
        sol = solve_general(spec, GeneralOptions(seed=0))
        pred = sol.predict(ds.test_inputs)
        t_theory = time.perf_counter() - t0
        target = float(np.median(pred.mean_error))
        print(f"P = {ds.P}: theory {t_theory:.1f} s ({sol.rounds} rounds, converged {sol.converged}), "
              f"median MCSE of f(x*) {target:.2e}", file=sys.stderr, flush=True)
        t_samp, sweeps, se = sampling_until(spec, ds.test_inputs, target, args.width, args.budget)
        rows.append((ds.P, t_theory, sol.converged, target, t_samp, sweeps, se))
        print(f"P = {ds.P}: sampling N = {args.width}: {t_samp:.1f} s, {sweeps} sweeps/chain, MCSE {se:.2e}",
              file=sys.stderr, flush=True)
    print(f"| P | theory time (s) | converged | theory MCSE f(x*) | sampling time (s), N = {args.width} "
          "| sweeps/chain | sampling MCSE | reached |")
    print("|---|---|---|---|---|---|---|---|")
    for P, tt, conv, tgt, ts, sw, se in rows:
        print(f"| {P} | {tt:.1f} | {conv} | {tgt:.2e} | {ts:.1f} | {sw} | {se:.2e} | {se <= tgt} |")


if __name__ == "__main__":
    main()
