"""Deep networks: sampler gradient throughput (N = 500, L = 2) and deep linear solve time (L = 1, 2, 3).

Everything is measured in one run, on this machine, with one BLAS thread (threadpoolctl; chains run
one per core).

1. Gradient table. Wall time of one collapsed gradient
   (:meth:`validation.deep.DeepNetwork.marginal_logdensity_and_grad`, readout integrated out, the
   target of the deep sampler) for N = 500, L = 2, P = 64 (classes 32,16,16), m = 3, T = 0.05,
   best of several rounds (sweeps and references too: the machine may be shared), on two inputs:
   * "orthogonal": X = √P·I (H¹ = W¹ elementwise, no first-layer product);
   * "dense": X = √N0·Q with a random orthogonal Q (the same K0 = I in a rotated basis, N0 = P),
     which needs the two first-layer products.
   Flops counted (:func:`validation.deep.gradient_flops`): 6 (L−1) N² P for the hidden layers
   (H² = W²Φ₁/√N, ∂W² = G_H Φ₁ᵀ/√N, G_Φ₁ = W²ᵀ G_H/√N; 2 N² P each) + 4 N N0 P (dense layer 1)
   + 4 N P² (Gram Φ_LᵀΦ_L and Φ_L R) + P³/3 (Cholesky): 104.3 Mflop (orthogonal) and
   112.5 Mflop (dense) at N = 500, P = N0 = 64. The reference rates are measured in the same
   run, interleaved: the dominant product (500 × 500) @ (500 × 64) and a 1000 × 1000 square
   product (2·1000³ flops). "fraction" = achieved gradient flop rate / reference rate.
   The sweep rate (5 MALA steps + exact readout draw, :func:`validation.deep.deep_collapsed_sweep`,
   5 gradients per sweep) is reported as gradients per second including the sampler overhead, next
   to the time of the d = N·N0 + (L−1)N² standard normals each MALA step draws (numpy's
   Generator): at N = 500 the random numbers cost about as much as the gradient.

2. Solve table (m = 3): :func:`solvers.deep.linear.solve_deep_linear_classes` (orthogonal data,
   classes 32,16,16, T = 0.05, all roots per class by bracketing) and
   :func:`solvers.deep.linear.solve_deep_linear` (general inputs: P = 64 Gaussian inputs, N0 = 100,
   root search from 9 starts in the shared m × m matrix X), for L = 1, 2, 3, next to the one-layer
   solvers :func:`theory.linear.linear_class_closed_form` and :func:`solvers.data.linear.solve_linear`.
   Median of repeated solves.

3. Nonlinear solve table (m = 3, classes 4,2,2, T = 0.5, the sampling-validation regime):
   :func:`solvers.deep.nonlinear.solve_deep_nonlinear` (class-block reduction, Gauss–Hermite / Sobol'
   y-integrals, continuation and saddle search on) for L = 1, 2, 3, next to the one-layer solver
   :func:`solvers.solve.solve`, for normcdf and relu; one solve each (they take seconds to minutes),
   with the solver's own integration-error estimate. ``--no-nonlinear`` skips it.

Run: python benchmarks/bench_deep.py [--width 500] [--rounds 20] [--quick] [--no-nonlinear]
Measured (2-core machine shared with other jobs, load average 4-6, one BLAS thread): see the
report of the commit that added this file; rerun for your machine.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from threadpoolctl import threadpool_limits  # noqa: E402

from solvers.deep.linear import solve_deep_linear, solve_deep_linear_classes  # noqa: E402
from theory.linear import linear_class_closed_form
from solvers.data.linear import solve_linear  # noqa: E402
from theory.spec import ModelSpec  # noqa: E402
from validation.deep import DeepNetwork, deep_collapsed_sweep, gradient_flops  # noqa: E402

CLASSES = (32, 16, 16)


def _best(fn, rounds):
    best = np.inf
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _median(fn, rounds):
    ts = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def gradient_table(width: int, rounds: int, nonlinearity: str = "relu"):
    rng = np.random.default_rng(0)
    P = sum(CLASSES)
    Q, _ = np.linalg.qr(rng.standard_normal((P, P)))
    A = rng.standard_normal((width, width))
    B = rng.standard_normal((width, P))
    S1, S2 = rng.standard_normal((1000, 1000)), rng.standard_normal((1000, 1000))
    rows = []
    for kind, inputs in (("orthogonal", None), ("dense", np.sqrt(P) * Q)):
        spec = ModelSpec(nonlinearity=nonlinearity, class_sizes=CLASSES, temperature=0.05, sigma_a=1.0,
                         inputs=inputs)
        net = DeepNetwork(spec, width=width, layers=2)
        theta = net.prior_sample(rng)
        w = theta[:net.dim_hidden]
        net.marginal_logdensity_and_grad(w)  # warm-up (φ kernels)
        t_grad, t_small, t_big = np.inf, np.inf, np.inf
        for _ in range(rounds):  # interleaved with the references
            t_grad = min(t_grad, _best(lambda: net.marginal_logdensity_and_grad(w), 3))
            t_small = min(t_small, _best(lambda: A @ B, 3))
            t_big = min(t_big, _best(lambda: S1 @ S2, 1))
        flops = gradient_flops(net)
        rate = flops / t_grad
        r_small = 2.0 * width * width * P / t_small
        r_big = 2.0 * 1000**3 / t_big
        theta_s = theta.copy()
        theta_s, _ = deep_collapsed_sweep(rng, net, theta_s, 0.02, n_mala=5)
        t_sweep = np.inf
        for _ in range(max(5, rounds)):  # best of, like the gradient (the machine may be shared)
            t0 = time.perf_counter()
            theta_s, _ = deep_collapsed_sweep(rng, net, theta_s, 0.02, n_mala=5)
            t_sweep = min(t_sweep, time.perf_counter() - t0)
        t_rng = _best(lambda: rng.standard_normal(net.dim_hidden), 5)
        rows.append({"inputs": kind, "ms_per_gradient": 1e3 * t_grad, "gradients_per_s": 1.0 / t_grad,
                     "mflop": flops / 1e6, "gflop_s": rate / 1e9, "ref_500x500x64_gflop_s": r_small / 1e9,
                     "ref_1000cubed_gflop_s": r_big / 1e9, "fraction_of_500x500x64": rate / r_small,
                     "fraction_of_1000cubed": rate / r_big, "sweep_gradients_per_s": 5.0 / t_sweep,
                     "ms_per_sweep": 1e3 * t_sweep, "ms_normals_per_step": 1e3 * t_rng})
    return rows


def solve_table(rounds: int):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((sum(CLASSES), 100))
    orth = ModelSpec(nonlinearity="linear", class_sizes=CLASSES, temperature=0.05)
    gen = orth.replace(inputs=X)
    rows = [{"solver": "one-layer linear_class_closed_form (orthogonal)", "layers": 1,
             "ms": 1e3 * _median(lambda: linear_class_closed_form(orth), rounds)},
            {"solver": "one-layer solve_linear (general inputs)", "layers": 1,
             "ms": 1e3 * _median(lambda: solve_linear(gen), rounds)}]
    for L in (1, 2, 3):
        rows.append({"solver": "solve_deep_linear_classes (orthogonal)", "layers": L,
                     "ms": 1e3 * _median(lambda: solve_deep_linear_classes(orth, L), rounds)})
    for L in (1, 2, 3):
        rows.append({"solver": "solve_deep_linear (general inputs)", "layers": L,
                     "ms": 1e3 * _median(lambda: solve_deep_linear(gen, L), max(3, rounds // 4))})
    return rows


def nonlinear_solve_table(names=("normcdf", "relu"), layers=(1, 2, 3)):
    from solvers.deep.nonlinear import solve_deep_nonlinear
    from solvers.solve import solve

    rows = []
    for name in names:
        spec = ModelSpec(nonlinearity=name, class_sizes=(4, 2, 2), temperature=0.5)
        t0 = time.perf_counter()
        r = solve(spec)
        rows.append({"solver": f"one-layer solvers.solve.solve ({name})", "layers": 1,
                     "s": time.perf_counter() - t0, "converged": bool(r.success), "error": float(r.error_estimate)})
        for L in layers:
            t0 = time.perf_counter()
            sol = solve_deep_nonlinear(spec, L)
            rows.append({"solver": f"solve_deep_nonlinear ({name})", "layers": L, "s": time.perf_counter() - t0,
                         "converged": bool(sol.converged), "error": float(sol.error_estimate),
                         "saddles": len(sol.saddles)})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="few rounds (smoke run)")
    ap.add_argument("--no-nonlinear", action="store_true", help="skip the deep nonlinear solve table")
    args = ap.parse_args(argv)
    rounds = 3 if args.quick else args.rounds
    with threadpool_limits(limits=1):
        g = gradient_table(args.width, rounds)
        s = solve_table(rounds)
    print(f"Collapsed gradient, N = {args.width}, L = 2, P = {sum(CLASSES)}, m = 3, relu, one BLAS thread")
    print(f"{'inputs':<11} {'ms/grad':>8} {'grad/s':>8} {'Mflop':>7} {'Gflop/s':>8} {'ref 500²×64':>11} "
          f"{'frac':>5} {'ref 1000³':>9} {'frac':>5} {'ms/sweep':>8} {'sweep grad/s':>12} {'ms ξ/step':>9}")
    for r in g:
        print(f"{r['inputs']:<11} {r['ms_per_gradient']:8.2f} {r['gradients_per_s']:8.1f} {r['mflop']:7.1f} "
              f"{r['gflop_s']:8.2f} {r['ref_500x500x64_gflop_s']:11.2f} {r['fraction_of_500x500x64']:5.2f} "
              f"{r['ref_1000cubed_gflop_s']:9.2f} {r['fraction_of_1000cubed']:5.2f} {r['ms_per_sweep']:8.1f} "
              f"{r['sweep_gradients_per_s']:12.1f} {r['ms_normals_per_step']:9.2f}")
    print("\nDeep linear solve time, m = 3 (classes 32,16,16; general: P = 64, N0 = 100), T = 0.05")
    for r in s:
        print(f"{r['solver']:<50} L = {r['layers']}  {r['ms']:8.2f} ms")
    if not args.no_nonlinear:
        with threadpool_limits(limits=1):
            nl = nonlinear_solve_table()
        print("\nDeep nonlinear solve time, m = 3 (classes 4,2,2), T = 0.5, one BLAS thread")
        for r in nl:
            extra = f"  saddles {r['saddles']}" if "saddles" in r else ""
            print(f"{r['solver']:<50} L = {r['layers']}  {r['s']:8.2f} s  converged {r['converged']}  "
                  f"error estimate {r['error']:.1e}{extra}")


if __name__ == "__main__":
    main()
