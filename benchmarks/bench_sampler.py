"""Sampler throughput for N = 1000, P = 64 (classes 32,16,16), one hidden layer.

Printed, all measured in this run:
* gradient evaluations per second of the log posterior, and the FLOP rate
  they achieve (2 matmuls forward, 3 backward: ≈ 2(2NP·N0 + 2mNP) + 2NP·N0
  flops) as a fraction of the machine's matmul FLOP rate (a 1000 × 1000
  float64 matrix product, measured here);
* ESS per second on f and U (min over their entries) for Gibbs-within-MALA
  sweeps (exact readout, 5 MALA steps on W), 2 chains.

The NumPyro/BlackJAX comparison of the issue is not included yet (it needs
JAX; see README).

Run: python benchmarks/bench_sampler.py [--nonlinearity relu] [--temperature 0.05] [--sweeps 300]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from theory.spec import ModelSpec
from validation.diagnostics import ess
from validation.networks import Network, gibbs_sweep
from validation.observables import observables_vector


def matmul_flops(n: int = 1000, repeats: int = 5) -> float:
    A, B = np.random.default_rng(0).standard_normal((2, n, n))
    A @ B
    start = time.perf_counter()
    for _ in range(repeats):
        A @ B
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nonlinearity", default="relu")
    ap.add_argument("--temperature", type=float, default=0.05)
    ap.add_argument("--width", type=int, default=1000)
    ap.add_argument("--sweeps", type=int, default=300)
    args = ap.parse_args()
    spec = ModelSpec(args.nonlinearity, class_sizes=(32, 16, 16), temperature=args.temperature)
    net = Network(spec, width=args.width)
    rng = np.random.default_rng(0)
    theta = net.prior_sample(rng)
    net.logdensity_and_grad(theta)
    n_grad = 200
    start = time.perf_counter()
    for _ in range(n_grad):
        net.logdensity_and_grad(theta)
    grad_rate = n_grad / (time.perf_counter() - start)
    N, P, m = args.width, spec.P, spec.m
    flops_per_grad = 2 * (2 * N * P * P + 2 * m * N * P) + 2 * N * P * P
    peak = matmul_flops()

    draws, start = [], time.perf_counter()
    for chain in range(2):
        theta = net.prior_sample(rng)
        chain_draws = []
        for s in range(args.sweeps + 100):
            theta, _ = gibbs_sweep(rng, net, theta, step_size=0.3, n_mala=5)
            if s >= 100:
                chain_draws.append(observables_vector(net, theta))
        draws.append(chain_draws)
    elapsed = time.perf_counter() - start
    e = ess(np.array(draws))
    ess_f, ess_U = float(np.min(e[:m * m])), float(np.min(e[m * m:2 * m * m]))
    print("| quantity | value |")
    print("|---|---|")
    print(f"| gradient evaluations / s (N = {N}, P = {P}) | {grad_rate:.0f} |")
    print(f"| achieved FLOP rate / matmul FLOP rate | {grad_rate * flops_per_grad / 1e9:.2f} / {peak / 1e9:.1f} GFLOP/s"
          f" = {grad_rate * flops_per_grad / peak:.1%} |")
    print(f"| Gibbs sweeps / s (exact readout + 5 MALA steps) | {2 * (args.sweeps + 100) / elapsed:.1f} |")
    print(f"| ESS / s, f (min over entries) | {ess_f / elapsed:.2f} |")
    print(f"| ESS / s, U (min over entries) | {ess_U / elapsed:.2f} |")


if __name__ == "__main__":
    main()
