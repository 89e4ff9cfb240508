"""Time per warm finite-P solve next to its accuracy, against a plain numpy fixed-grid baseline.

Cases (m = 3, σ_1 = σ_a = 1): the default task (classes 32, 16, 16; T = 0.05), classes 8, 4, 4 at
T = 0.5 and at T = 0.05; nonlinearities linear, erf, normcdf, tanh, relu. Each is solved once to
warm the JIT and the ψ table, then timed as the best of ``--rounds`` warm solves
(``solvers.solve.solve``, default options). Accuracy is max |f − f_ref| / max(1, |f_ref|) over f, U
and the kernel against the closed form (linear φ, THEORY §2) or a reference solve at tol =
integral_tol = 1e-11 (--quick: 1e-9); the reported ``error_estimate`` is printed next to it.

The baseline integrates over a uniform n³ grid on [−L, L]³ in numpy (ψ from the same table) with
damped Newton and a finite-difference Jacobian from t = 0, L = 8 standard deviations of the
converged U (which favours it); its accuracy against the reference and its time at the grid sizes
24³, 48³, 96³ are printed with the ratio of its time to ours at the first grid size reaching our
accuracy (or at its most accurate grid, marked "≥", when none does).

Also printed: the whole-process time of ``codingschemes solve --nonlinearity normcdf --no-plot``
next to ``python -c "import numpy, scipy"``, and the top five entries (by own time) of a cProfile
of the slowest warm solve.

Run: python benchmarks/bench_solve.py [--quick] [--rounds N]
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import subprocess
import sys
import time

import numpy as np

from solvers.finite_p.problem import ClassProblem
from solvers.options import SolverOptions
from solvers.solve import solve
from theory.linear import linear_class_closed_form
from theory.spec import ModelSpec

CASES = (((32, 16, 16), 0.05), ((8, 4, 4), 0.5), ((8, 4, 4), 0.05))
NONLINEARITIES = ("linear", "erf", "normcdf", "tanh", "relu")
GRIDS = (24, 48, 96)


def observables(res) -> dict:
    return {"f": np.asarray(res.outputs), "U": np.asarray(res.readout_moment),
            "Kd": np.asarray(res.observables.kernel_diagonal), "Kb": np.asarray(res.observables.kernel_blocks)}


def relative_error(obs: dict, ref: dict) -> float:
    return max(float(np.max(np.abs(obs[k] - ref[k]))) / max(1.0, float(np.max(np.abs(ref[k])))) for k in ref)


def reference(spec: ModelSpec, tol: float) -> dict:
    if spec.nonlinearity == "linear":
        _, exact = linear_class_closed_form(spec)
        return {"f": exact.outputs, "U": exact.readout_moment, "Kd": exact.kernel_diagonal,
                "Kb": exact.kernel_blocks}
    return observables(solve(spec, SolverOptions(tol=tol, integral_tol=tol, max_order=144)))


def grid_moments(prob: ClassProblem, t: np.ndarray, n: int, half: float):
    """Fixed-grid baseline: f on a uniform n³ grid over [−half, half]³ (numpy)."""
    x = np.linspace(-half, half, n)
    A = np.stack(np.meshgrid(x, x, x, indexing="ij"), axis=-1).reshape(-1, 3)
    psi, d1, _ = prob.table()(A @ t.T)
    S = -0.5 * np.sum(A * A, axis=1) / prob.spec.sigma_a**2 + psi @ prob.class_sizes
    w = np.exp(S - S.max())
    return np.einsum("n,nc,nr->cr", w, d1, A) / w.sum()


def baseline_solve(prob, n, half, iters=60):
    """Damped Newton from t = 0 with a finite-difference Jacobian of the residual on the fixed grid."""
    t = np.zeros((3, 3))
    eye = np.eye(3)

    def residual(tt):
        return (grid_moments(prob, tt, n, half) - eye + prob.temperature * tt).ravel()

    r = residual(t)
    for _ in range(iters):
        if np.max(np.abs(r)) < 1e-10:
            break
        J = np.zeros((9, 9))
        for k in range(9):
            dt = np.zeros(9)
            dt[k] = 1e-6
            J[:, k] = (residual(t + dt.reshape(3, 3)) - r) / 1e-6
        step = np.linalg.solve(J, r).reshape(3, 3)
        r_new = r
        for _ in range(30):  # halve until the residual decreases
            r_new = residual(t - step)
            if np.all(np.isfinite(r_new)) and np.max(np.abs(r_new)) < np.max(np.abs(r)):
                break
            step = 0.5 * step
        t, r = t - step, r_new
    return grid_moments(prob, t, n, half)


def timed_solve(spec: ModelSpec, rounds: int):
    solve(spec)  # JIT warm-up, ψ table
    best, res = np.inf, None
    for _ in range(rounds):
        start = time.perf_counter()
        res = solve(spec)
        best = min(best, time.perf_counter() - start)
    return best, res


def process_times(rounds: int) -> tuple[float, float]:
    """Best wall times of the CLI solve and of a bare ``import numpy, scipy`` (warm caches)."""
    env = dict(os.environ)
    cli = [sys.executable, "-c", "import sys; from codingschemes.cli.main import main; sys.exit(main(sys.argv[1:]))",
           "solve", "--nonlinearity", "normcdf", "--no-plot"]
    bare = [sys.executable, "-c", "import numpy, scipy"]
    out = []
    for cmd in (cli, bare):
        subprocess.run(cmd, env=env, capture_output=True, check=False)  # warm
        best = np.inf
        for _ in range(rounds):
            start = time.perf_counter()
            subprocess.run(cmd, env=env, capture_output=True, check=False)
            best = min(best, time.perf_counter() - start)
        out.append(best)
    return out[0], out[1]


def profile_top(spec: ModelSpec, k: int = 5) -> str:
    pr = cProfile.Profile()
    pr.enable()
    solve(spec)
    pr.disable()
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(k)
    lines = [ln for ln in s.getvalue().splitlines() if ln.strip()]
    start = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls"))
    return "\n".join(lines[start:start + k + 1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="24³ baseline only, looser reference, one round")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    rounds = 1 if args.quick else args.rounds
    ref_tol = 1e-9 if args.quick else 1e-11
    print("| classes | T | φ | warm solve (ms) | iterations | rel. error vs reference | error_estimate | "
          "converged |")
    print("|---|---|---|---|---|---|---|---|")
    rows, slowest = {}, (0.0, None)
    for sizes, T in CASES:
        for name in NONLINEARITIES:
            spec = ModelSpec(name, class_sizes=sizes, temperature=T)
            sec, res = timed_solve(spec, rounds)
            ref = reference(spec, ref_tol)
            err = relative_error(observables(res), ref)
            rows[(sizes, T, name)] = (sec, err, res, ref)
            slowest = max(slowest, (sec, spec), key=lambda x: x[0])
            print(f"| {','.join(map(str, sizes))} | {T} | {name} | {1e3 * sec:.1f} | {res.iterations} | {err:.1e} | "
                  f"{res.error_estimate:.1e} | {res.converged} |", flush=True)
    print("\nBaseline (numpy fixed grid, default task):\n")
    print("| φ | grid | baseline time (s) | baseline rel. error on f | ours (ms) | our rel. error | ratio |")
    print("|---|---|---|---|---|---|---|")
    sizes, T = CASES[0]
    for name in NONLINEARITIES:
        sec, err, res, ref = rows[(sizes, T, name)]
        prob = ClassProblem.from_spec(res.spec)
        half = 8.0 * float(np.sqrt(np.max(np.diag(ref["U"])))) if name != "relu" else 12.0
        for n in GRIDS[:1] if args.quick else GRIDS:
            start = time.perf_counter()
            f_grid = baseline_solve(prob, n, half)
            base = time.perf_counter() - start
            berr = float(np.max(np.abs(f_grid - ref["f"]))) / max(1.0, float(np.max(np.abs(ref["f"]))))
            mark = "" if berr <= max(err, 1e-6) else "≥"
            print(f"| {name} | {n}³ | {base:.2f} | {berr:.1e} | {1e3 * sec:.1f} | {err:.1e} | {mark}{base / sec:.0f} |",
                  flush=True)
            if not mark:
                break
    cli, bare = process_times(1 if args.quick else 3)
    print(f"\nwhole process: `codingschemes solve --nonlinearity normcdf --no-plot` {cli:.2f} s, "
          f"`python -c \"import numpy, scipy\"` {bare:.2f} s, difference {cli - bare:.2f} s")
    print(f"\nprofile of the slowest warm solve ({slowest[1].nonlinearity}, classes {slowest[1].class_sizes}, "
          f"T = {slowest[1].temperature}), top five by own time:\n")
    print(profile_top(slowest[1]))


if __name__ == "__main__":
    main()
