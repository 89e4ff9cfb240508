"""Sampler benchmark: N = 1000, P = 64 (classes 32,16,16), one hidden layer, ReLU, T = 0.05.

Everything is measured in one run, on this machine, with the same number of
threads for every method (``--threads``, default 1: chains are independent,
so one chain per core is how the cores are best used, and single-thread
rates are stable when other processes share the machine).

1. Gradient table. Wall time of one evaluation of (log p, ∇ log p) over all
   of θ = (W, a), best of several rounds interleaved with the reference
   (a 1000 × 1000 float64 matrix product, 2·1000³ flops), for
   * ours: :meth:`validation.networks.Network.logdensity_and_grad`;
   * JAX: ``jax.jit(jax.value_and_grad(log posterior))`` (if jax is installed);
   each on two inputs:
   * "orthogonal": X = √N0·I (the benchmark problem): h = W, no product is
     needed; flops counted 6·m·N·P (readout forward and backward), the rest
     is elementwise (φ, φ', priors), so the fraction of the matmul rate is
     low by construction and the time per gradient is what counts;
   * "dense": X = √N0·Q, Q a random orthogonal matrix (the same posterior in a
     rotated basis, K0 = I) that needs the two first-layer products; flops
     counted 4·N·N0·P + 6·m·N·P = 17.5 Mflop at N = 1000, N0 = P = 64, m = 3
     (h = W Xᵀ/√N0 and g_W = g_h X/√N0: 2·N·N0·P each; f = N^{-1} a φ,
     g_a = err φᵀ, aᵀ err: 2·m·N·P each). The achieved rate over the matmul
     rate is the "fraction of the matmul FLOP rate".

2. Sampler table, chains started from the same prior draws for both methods,
   the same sampler time per chain (``--seconds``):
   * ours (Gibbs): Gibbs-within-MALA sweeps (:func:`validation.networks.gibbs_sweep`:
     exact readout a | W, then 5 MALA steps on W | a; 6 gradients per sweep),
     as ``codingschemes validate --sampler gibbs`` runs them;
   * ours (collapsed, ``--samplers collapsed``): 5 MALA steps on the marginal
     of W with the readout integrated out, then a | W exactly
     (:func:`validation.collapsed.collapsed_sweep`, the default sampler of
     ``codingschemes validate``; one marginal gradient costs O(NP² + P³));
   for both, the MALA step is
     adapted (dual averaging to acceptance 0.574, :class:`validation.samplers.
     StepSizeAdaptation`) during the first ``--burn`` fraction of the time and
     then frozen: at T = 0.05 the fixed ε = 0.3 of ``validate`` is never
     accepted (this is measured and printed too);
   * NumPyro NUTS (``--samplers numpyro``; skipped with a message if jax or
     numpyro is missing): default NUTS (diagonal mass matrix, step size
     adapted to acceptance 0.8, tree depth ≤ 10) on the same posterior,
     ``--nuts-warmup`` warm-up iterations, then draws until the time is used.
   ESS (:func:`validation.diagnostics.ess`, batch means, the same estimator
   for both) is taken on the post-warm-up draws of f (m × m class-mean
   outputs) and U = (1/N) Σ_i a_i a_iᵀ, min over entries, divided by the total
   sampler time (warm-up included; compilation and observables excluded).
   R̂ is the largest split-R̂ over the entries of f and U.

Run: python benchmarks/bench_sampler.py [--seconds 120] [--chains 2] [--threads 1]
     [--samplers ours,numpyro] [--nuts-warmup 100] [--temperature 0.05] [--width 1000]
Default settings take about 7 minutes on an idle 2-core machine (11 minutes
measured while other jobs kept the load average near 8); NUTS then
gets only a few dozen draws per chain after its warm-up (about 500 leapfrog
steps per draw at T = 0.05), so its ESS is rough: ``--seconds 400`` (about
30 minutes) gives ~150 draws per chain.
"""
from __future__ import annotations

import os
import sys


def _set_threads(argv):
    """Fix the BLAS and XLA thread counts before numpy or jax is imported."""
    n = "1"
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            n = argv[i + 1]
        elif arg.startswith("--threads="):
            n = arg.split("=", 1)[1]
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = n
    if n == "1":
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()


if __name__ == "__main__":
    _set_threads(sys.argv[1:])
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from theory.spec import ModelSpec  # noqa: E402
from validation.diagnostics import ess, mcse, split_rhat  # noqa: E402
from validation.collapsed import collapsed_sweep  # noqa: E402
from validation.networks import Network, gibbs_sweep  # noqa: E402
from validation.observables import observables_vector  # noqa: E402
from validation.samplers import StepSizeAdaptation  # noqa: E402

import bench_numpyro  # noqa: E402


OURS_NAME, NUTS_NAME = "ours: exact a given W, 5 MALA on W", "NumPyro NUTS"
COLLAPSED_NAME = "ours collapsed: 5 MALA on W with a integrated out, then a given W"


def gradient_flops(N: int, N0: int, P: int, m: int, dense: bool) -> int:
    """Flops of the products in one gradient (elementwise work not counted)."""
    return (4 * N * N0 * P if dense else 0) + 6 * m * N * P


def time_interleaved(timers: dict, rounds: int = 5, target_s: float = 0.25):
    """Best time per call of each timer and the best matmul FLOP rate, measured in alternation."""
    A, B = np.random.default_rng(0).standard_normal((2, 1000, 1000))
    A @ B
    reps = {}
    for name, fn in timers.items():
        fn()
        t = time.perf_counter()
        fn()
        reps[name] = max(3, int(target_s / max(time.perf_counter() - t, 1e-6)))
    best = dict.fromkeys(timers, np.inf)
    peak = 0.0
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(3):
            A @ B
        peak = max(peak, 3 * 2e9 / (time.perf_counter() - t))
        for name, fn in timers.items():
            t = time.perf_counter()
            for _ in range(reps[name]):
                fn()
            best[name] = min(best[name], (time.perf_counter() - t) / reps[name])
    return best, peak


def ours_chain(net, theta, seconds, burn_fraction, rng, observable, step_size=0.3, progress=True, label="",
               sweep=gibbs_sweep):
    """One chain of ``sweep`` (Gibbs-within-MALA or collapsed MALA); the MALA step is adapted while the
    sampler time is below burn_fraction·seconds, then frozen, and observables are recorded after every
    later sweep."""
    adapt = StepSizeAdaptation(step_size)
    eps, draws, accepts, chain_s, warm_s, s, warm = step_size, [], [], 0.0, 0.0, 0, True
    while chain_s < seconds:
        t = time.perf_counter()
        theta, acc = sweep(rng, net, theta, step_size=eps, n_mala=5)
        chain_s += time.perf_counter() - t
        s += 1
        if warm:
            eps = adapt.update(acc)
            if chain_s >= burn_fraction * seconds:
                warm, eps, warm_s = False, adapt.final_step_size, chain_s
        else:
            accepts.append(acc)
            draws.append(observable(theta))
        if progress and s % 200 == 0:
            print(f"\r[ours] chain {label}: sweep {s}, {chain_s:.0f} s, ε = {eps:.3g}", end="", file=sys.stderr,
                  flush=True)
    if progress:
        print("", file=sys.stderr)
    return {"draws": np.array(draws), "seconds": chain_s, "warmup_seconds": warm_s, "gradients": 6 * s,
            "sweeps": s, "acceptance": accepts, "step_size": eps}


def combine(chains):
    """Per-chain results → one run: draws (chains, common n, …), summed times and counts."""
    n = min(len(c["draws"]) for c in chains)
    out = {"draws": np.array([c["draws"][:n] for c in chains])}
    for key in ("seconds", "warmup_seconds", "gradients", "divergences"):
        if key in chains[0]:
            out[key] = sum(c[key] for c in chains)
    out["acceptance"] = float(np.mean(np.concatenate([c["acceptance"] for c in chains])))
    out["step_size"] = float(np.mean([c["step_size"] for c in chains]))
    if "tree_sizes" in chains[0]:
        out["tree_size"] = float(np.mean(np.concatenate([c["tree_sizes"] for c in chains])))
    return out


def summarize(run, m):
    d = run["draws"]
    k = m * m
    e = ess(d)
    r = split_rhat(d)
    return {"ess_f": float(np.min(e[:k])), "ess_U": float(np.min(e[k:2 * k])),
            "ess_f_median": float(np.median(e[:k])), "rhat": float(np.max(r[:2 * k])), "n": d.shape[1]}


def main(argv=None):
    ap = argparse.ArgumentParser(description="Sampler benchmark (see the module docstring)")
    ap.add_argument("--nonlinearity", default="relu")
    ap.add_argument("--temperature", type=float, default=0.05)
    ap.add_argument("--width", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=120.0, help="sampler time per chain and method")
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--burn", type=float, default=0.25, help="warm-up fraction of our chains' time")
    ap.add_argument("--nuts-warmup", type=int, default=100)
    ap.add_argument("--nuts-max-tree-depth", type=int, default=10)
    ap.add_argument("--samplers", default="ours,collapsed,numpyro",
                    help="comma-separated: ours (Gibbs), collapsed, numpyro (or none)")
    ap.add_argument("--threads", type=int, default=1, help="BLAS/XLA threads (set before numpy is imported)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    samplers = {s.strip() for s in args.samplers.split(",") if s.strip() and s.strip() != "none"}

    spec = ModelSpec(args.nonlinearity, class_sizes=(32, 16, 16), temperature=args.temperature)
    N, P, m = args.width, spec.P, spec.m
    rng = np.random.default_rng(args.seed)
    Q = np.linalg.qr(rng.standard_normal((P, P)))[0]
    nets = {"orthogonal": Network(spec, width=N),
            "dense": Network(spec.replace(inputs=np.sqrt(P) * Q), width=N)}
    theta = nets["orthogonal"].prior_sample(rng)

    skip = bench_numpyro.unavailable()
    if skip is None and args.nonlinearity not in bench_numpyro.JAX_NONLINEARITIES:
        skip = f"NumPyro comparison skipped: no JAX form for nonlinearity {args.nonlinearity!r}"
    print(f"# N = {N}, P = N0 = {P}, m = {m}, {args.nonlinearity}, T = {args.temperature}, mean-field β = N/T; "
          f"threads = {args.threads}; load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("# " + (skip or bench_numpyro.versions()))

    peak = gradient_table(nets, theta, skip, N, P, m)
    if not samplers:
        return
    runs, nuts = sampler_runs(nets["orthogonal"], samplers, skip, args, rng)
    sampler_table(runs, nuts, peak, N, P, m)


def gradient_table(nets, theta, skip, N, P, m):
    """Print the gradient table; return the best matmul FLOP rate of the run."""
    timers = {}
    for kind, net in nets.items():
        timers[("ours", kind)] = (lambda n=net: n.logdensity_and_grad(theta))
        if skip is None:
            timers[("JAX", kind)] = bench_numpyro.jax_gradient(net, theta)
    best, peak = time_interleaved(timers)
    print(f"\nMatmul reference (1000 × 1000 float64, best of 5): {peak / 1e9:.1f} GFLOP/s\n")
    print("| gradient of log p (all of θ) | inputs | µs / eval | evals / s | flops / eval | GFLOP/s "
          "| fraction of matmul rate |")
    print("|---|---|---|---|---|---|---|")
    for (who, kind), t in best.items():
        fl = gradient_flops(N, P, P, m, kind == "dense")
        print(f"| {who} | {kind} | {t * 1e6:.0f} | {1 / t:.0f} | {fl / 1e6:.2f} M | {fl / t / 1e9:.1f} "
              f"| {fl / t / peak:.1%} |")
    return peak


def sampler_runs(net, samplers, skip, args, rng):
    """Run the chains of every requested sampler from the same prior starts; return (runs, NUTS driver)."""
    starts = [net.prior_sample(rng) for _ in range(args.chains)]
    obs = (lambda th: observables_vector(net, th))
    chains = {}
    if "ours" in samplers:
        th, acc = starts[0], []
        for _ in range(20):
            th, a = gibbs_sweep(np.random.default_rng(1), net, th, step_size=0.3, n_mala=5)
            acc.append(a)
        print(f"\n# validate's fixed MALA step ε = 0.3: acceptance on W over 20 sweeps from the prior = "
              f"{np.mean(acc):.2f}")
        chains[OURS_NAME] = []
    if "collapsed" in samplers:
        chains[COLLAPSED_NAME] = []
    nuts = None
    if "numpyro" in samplers:
        if skip is not None:
            print(f"\n# {skip}")
        else:
            nuts = bench_numpyro.NutsChains(net, num_warmup=args.nuts_warmup, max_tree_depth=args.nuts_max_tree_depth,
                                            seed=args.seed, observable=obs)
            chains[NUTS_NAME] = []
    ours_rng = np.random.default_rng(args.seed + 1)
    for c, theta0 in enumerate(starts):  # alternate the methods chain by chain: same machine load for both
        if OURS_NAME in chains:
            chains[OURS_NAME].append(ours_chain(net, theta0, args.seconds, args.burn, ours_rng, obs,
                                                label=f"{c + 1}/{len(starts)}"))
        if COLLAPSED_NAME in chains:
            chains[COLLAPSED_NAME].append(ours_chain(net, theta0, args.seconds, args.burn, ours_rng, obs,
                                                     label=f"collapsed {c + 1}/{len(starts)}", sweep=collapsed_sweep))
        if nuts is not None:
            chains[NUTS_NAME].append(nuts.chain(theta0, args.seconds))
    return {name: combine(ch) for name, ch in chains.items()}, nuts


def sampler_table(runs, nuts, peak, N, P, m):
    """Print the sampler table, the ratios against the baseline and the posterior means."""
    print("\n| sampler | grad evals / s (in sampler) | fraction of matmul rate | ESS / s, f (min; median) "
          "| ESS / s, U (min) | max split-R̂ (f, U) | draws / chain | sampler time (warm-up) | notes |")
    print("|---|---|---|---|---|---|---|---|---|")
    summaries = {}
    fl = gradient_flops(N, P, P, m, False)
    for name, run in runs.items():
        sm = summaries[name] = summarize(run, m)
        t = run["seconds"]
        g = run["gradients"] / t
        if name in (OURS_NAME, COLLAPSED_NAME):
            note = f"MALA acceptance {run['acceptance']:.2f}, ε = {run['step_size']:.3g}"
        else:
            note = (f"ε = {run['step_size']:.3g}, mean tree {run['tree_size']:.0f} leapfrogs, acceptance "
                    f"{run['acceptance']:.2f}, {run['divergences']} divergences; compile {nuts.compile_seconds:.0f}"
                    " s (not counted)")
        print(f"| {name} | {g:.0f} | {g * fl / peak:.2%} | {sm['ess_f'] / t:.3g}; {sm['ess_f_median'] / t:.3g} "
              f"| {sm['ess_U'] / t:.3g} | {sm['rhat']:.3f} | {sm['n']} | {t:.0f} s ({run['warmup_seconds']:.0f} s) "
              f"| {note} |")
    baseline = NUTS_NAME if NUTS_NAME in runs else (OURS_NAME if COLLAPSED_NAME in runs else None)
    for name in (OURS_NAME, COLLAPSED_NAME):
        if baseline is None or name == baseline or name not in runs:
            continue
        a, b, ra, rb = summaries[name], summaries[baseline], runs[name], runs[baseline]
        print(f"| ratio {name.split(':')[0]} / {baseline.split(':')[0]} "
              f"| {ra['gradients'] / ra['seconds'] / (rb['gradients'] / rb['seconds']):.2g} | "
              f"| {(a['ess_f'] / ra['seconds']) / (b['ess_f'] / rb['seconds']):.3g} "
              f"| {(a['ess_U'] / ra['seconds']) / (b['ess_U'] / rb['seconds']):.3g} | | | | |")
    for name, run in runs.items():
        d = run["draws"]
        k = m * m
        mean, err = d.mean(axis=(0, 1)), mcse(d)
        f_str = np.array2string(mean[:k].reshape(m, m), precision=3).replace("\n", "")
        u_str = np.array2string(np.diag(mean[k:2 * k].reshape(m, m)), precision=3)
        print(f"\n# {name}: mean f = {f_str} (MCSE max {err[:k].max():.2g}); mean diag U = {u_str} "
              f"(MCSE max {err[k:2 * k].max():.2g})")
    few = [name for name, run in runs.items() if run["draws"].shape[1] < 100]
    if few:
        print(f"\n# fewer than 100 draws per chain for {', '.join(few)}: its ESS (batch means) is a rough estimate; "
              "use a larger --seconds")
    print("\n(fraction of matmul rate in the sampler table: gradients per second in the sampler × "
          f"{fl / 1e6:.2f} Mflop (orthogonal inputs) over the matmul rate; ESS is meaningful only where R̂ < 1.1)")


if __name__ == "__main__":
    main()
