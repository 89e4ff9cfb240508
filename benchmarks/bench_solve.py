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

Also measured: the whole-process wall and CPU time of ``codingschemes solve --nonlinearity normcdf
--no-plot`` next to ``python -c "import numpy, scipy"``, and the top five entries (by own time) of a
cProfile of the slowest warm solve (by CPU time). Wall and CPU (process_time: all threads) are
both reported: on a shared machine the CPU time is the solve's own.

The default task runs first, then the baseline and the whole-process times, then the other two cases; with
``--record`` the record is rewritten after each step (marked incomplete until the end).

Run: python benchmarks/bench_solve.py [--quick] [--rounds N] [--grids 24,48,96] [--nonlinearities ...]
[--record docs/measurements/bench_solve.json]
"""
from __future__ import annotations

import argparse
import cProfile
import os
import subprocess
import sys
import time

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.record import Record, add_record_argument, cpu_seconds  # noqa: E402
from solvers.finite_p.problem import ClassProblem  # noqa: E402
from solvers.options import SolverOptions  # noqa: E402
from solvers.solve import solve  # noqa: E402
from theory.linear import linear_class_closed_form  # noqa: E402
from theory.spec import ModelSpec  # noqa: E402

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
    """(best wall seconds, CPU seconds of that round, result) of ``rounds`` warm solves."""
    solve(spec)  # JIT warm-up, ψ table
    best, cpu, res = np.inf, np.inf, None
    for _ in range(rounds):
        start, c0 = time.perf_counter(), time.process_time()
        res = solve(spec)
        wall = time.perf_counter() - start
        if wall < best:
            best, cpu = wall, time.process_time() - c0
    return best, cpu, res


def process_times(rounds: int) -> list[tuple[float, float]]:
    """Best (wall, CPU) seconds of the CLI solve and of a bare ``import numpy, scipy`` (warm caches)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    cli = [sys.executable, "-c", "import sys; from codingschemes.cli.main import main; sys.exit(main(sys.argv[1:]))",
           "solve", "--nonlinearity", "normcdf", "--no-plot"]
    bare = [sys.executable, "-c", "import numpy, scipy"]
    out = []
    for cmd in (cli, bare):
        subprocess.run(cmd, env=env, capture_output=True, check=False)  # warm
        best = (np.inf, np.inf)
        for _ in range(rounds):
            start, c0 = time.perf_counter(), cpu_seconds()
            subprocess.run(cmd, env=env, capture_output=True, check=False)
            best = min(best, (time.perf_counter() - start, cpu_seconds() - c0))
        out.append(best)
    return out


SOLVE_TITLE = "Warm solves (best of the rounds; accuracy against the closed form or the reference solve)"
SOLVE_COLUMNS = ["classes", "T", "φ", "wall (ms)", "CPU (ms)", "iterations", "rel. error vs reference",
                 "error_estimate", "converged", "goal ≤ 50 ms at 1e-6 (CPU)"]


def solve_rows(cases, names, rounds: int, ref_tol: float):
    """Warm solve time and accuracy of every case; yields (key, (wall, CPU, err, res, ref), table row)."""
    table = []
    for sizes, T in cases:
        for name in names:
            spec = ModelSpec(name, class_sizes=sizes, temperature=T)
            sec, cpu, res = timed_solve(spec, rounds)
            ref = reference(spec, ref_tol)
            err = relative_error(observables(res), ref)
            table.append([",".join(map(str, sizes)), T, name, f"{1e3 * sec:.0f}", f"{1e3 * cpu:.0f}", res.iterations,
                          f"{err:.1e}", f"{res.error_estimate:.1e}", res.converged,
                          "met" if cpu <= 0.05 and err <= 1e-6 else f"{cpu / 0.05:.0f}× over"])
            print(table[-1], flush=True)
            yield (sizes, T, name), (sec, cpu, err, res, ref), table[-1]


def baseline_table(record, rows, grids, names):
    """The numpy fixed-grid baseline on the default task against our warm solve (same run)."""
    table = []
    sizes, T = CASES[0]
    for name in names:
        sec, cpu, err, res, ref = rows[(sizes, T, name)]
        prob = ClassProblem.from_spec(res.spec)
        half = 8.0 * float(np.sqrt(np.max(np.diag(ref["U"])))) if name != "relu" else 12.0
        for n in grids:
            start, c0 = time.perf_counter(), time.process_time()
            f_grid = baseline_solve(prob, n, half)
            base, base_cpu = time.perf_counter() - start, time.process_time() - c0
            berr = float(np.max(np.abs(f_grid - ref["f"]))) / max(1.0, float(np.max(np.abs(ref["f"]))))
            mark = "" if berr <= max(err, 1e-6) else "≥"
            table.append([name, f"{n}³", f"{base:.2f}", f"{base_cpu:.2f}", f"{berr:.1e}", f"{1e3 * sec:.0f}",
                          f"{1e3 * cpu:.0f}", f"{err:.1e}", f"{mark}{base / sec:.1f}", f"{mark}{base_cpu / cpu:.1f}"])
            print(table[-1], flush=True)
            if not mark:
                break
    record.table("Fixed-grid numpy baseline, default task (classes 32,16,16, T = 0.05), same run",
                 ["φ", "grid", "baseline wall (s)", "baseline CPU (s)", "baseline rel. error on f", "ours wall (ms)",
                  "ours CPU (ms)", "our rel. error", "baseline / ours (wall)", "baseline / ours (CPU)"], table,
                 note="The ratio is taken at the first grid that reaches our accuracy (or max(our error, 1e-6)); "
                      "\"≥\" marks a baseline that reaches it on no grid (the ratio at its largest grid). "
                      "Goal: ≥ 20× at equal accuracy.")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="24³ baseline only, looser reference, one round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--nonlinearities", default=",".join(NONLINEARITIES), help="comma-separated φ (default: all five)")
    ap.add_argument("--grids", default=",".join(map(str, GRIDS)), help="baseline grid sizes n (n³ nodes)")
    add_record_argument(ap)
    args = ap.parse_args(argv)
    names = [v for v in args.nonlinearities.split(",") if v]
    grids = [int(v) for v in args.grids.split(",") if v]
    record = Record(Path(args.record).stem if args.record else "bench_solve")
    rounds = 1 if args.quick else args.rounds
    ref_tol = 1e-9 if args.quick else 1e-11
    done, rows = [], {}

    def checkpoint():  # a run stopped early leaves what it measured
        record.write(args.record, partial=[Record.table_item(SOLVE_TITLE, SOLVE_COLUMNS, done)])

    # the default task first: the baseline and the whole-process times need only it
    for key, value, row in solve_rows(CASES[:1], names, rounds, ref_tol):
        rows[key] = value
        done.append(row)
        checkpoint()
    baseline_table(record, rows, grids[:1] if args.quick else grids, names)
    checkpoint()
    (cli, cli_cpu), (bare, bare_cpu) = process_times(1 if args.quick else 3)
    record.table("Whole process, warm caches (best of the rounds)", ["command", "wall (s)", "CPU (s)"],
                 [["`codingschemes solve --nonlinearity normcdf --no-plot`", f"{cli:.2f}", f"{cli_cpu:.2f}"],
                  ["`python -c \"import numpy, scipy\"`", f"{bare:.2f}", f"{bare_cpu:.2f}"],
                  ["difference (goal ≤ 1 s)", f"{cli - bare:.2f}", f"{cli_cpu - bare_cpu:.2f}"]])
    checkpoint()
    for key, value, row in solve_rows(CASES[1:], names, rounds, ref_tol):
        rows[key] = value
        done.append(row)
        checkpoint()
    record.items.insert(0, Record.table_item(SOLVE_TITLE, SOLVE_COLUMNS, done))
    slowest = max(rows.items(), key=lambda kv: kv[1][1])[1][3].spec
    prof = cProfile.Profile()
    prof.enable()
    solve(slowest)
    prof.disable()
    record.profile(f"cProfile of the slowest warm solve ({slowest.nonlinearity}, classes "
                   f"{','.join(map(str, slowest.class_sizes))}, T = {slowest.temperature}), top five by own time",
                   prof, 5)
    record.write(args.record)


if __name__ == "__main__":
    main()
