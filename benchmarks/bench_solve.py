"""Time per solve (m = 3) and accuracy, against a plain numpy fixed-grid baseline.

For each nonlinearity the default task (classes 32, 16, 16; T = 0.05;
σ_1 = σ_a = 1) is solved after JIT warm-up by ``solvers.solve``. The
baseline solves the same equations with the same Newton iteration, but
integrates over a uniform tensor grid in a on [−L, L]³ with numpy (ψ from
the same table), starting from t = 0 like the solver; L is 8 standard
deviations of the solver's converged U (information the baseline would not
have, so this favours it). Its accuracy is measured against our solution at
grid sizes 24³, 48³, 96³. Printed: time per solve, max |f − f_ref| and the ratio
of baseline to solver time at matched accuracy.

Run: python benchmarks/bench_solve.py [--quick]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from solvers.finite_p.problem import ClassProblem
from solvers.solve import solve
from theory.spec import ModelSpec


def grid_moments(prob: ClassProblem, t: np.ndarray, n: int, half: float):
    """Fixed-grid baseline: f and U on a uniform n³ grid over [−half, half]³ (numpy)."""
    x = np.linspace(-half, half, n)
    A = np.stack(np.meshgrid(x, x, x, indexing="ij"), axis=-1).reshape(-1, 3)
    psi, d1, d2 = prob.table()(A @ t.T)
    S = -0.5 * np.sum(A * A, axis=1) / prob.spec.sigma_a**2 + psi @ prob.class_sizes
    w = np.exp(S - S.max())
    Z = w.sum()
    f = np.einsum("n,nc,nr->cr", w, d1, A) / Z
    U = np.einsum("n,nr,ns->rs", w, A, A) / Z
    return f, U


def baseline_solve(prob, n, half, t0, iters=60):
    """Damped Newton with a finite-difference Jacobian of the saddle-point residual on the fixed grid."""
    t = t0.copy()
    eye = np.eye(3)

    def residual(tt):
        return (grid_moments(prob, tt, n, half)[0] - eye + prob.temperature * tt).ravel()

    r = residual(t)
    for _ in range(iters):
        if np.max(np.abs(r)) < 1e-10:
            break
        J = np.zeros((9, 9))
        for k in range(9):
            dt = np.zeros(9)
            dt[k] = 1e-6
            fk, _ = grid_moments(prob, t + dt.reshape(3, 3), n, half)
            J[:, k] = ((fk - eye + prob.temperature * (t + dt.reshape(3, 3))).ravel() - r) / 1e-6
        step = np.linalg.solve(J, r).reshape(3, 3)
        for _ in range(30):  # halve until the residual decreases
            r_new = residual(t - step)
            if np.all(np.isfinite(r_new)) and np.max(np.abs(r_new)) < np.max(np.abs(r)):
                break
            step = 0.5 * step
        t, r = t - step, r_new
    return t, grid_moments(prob, t, n, half)[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    rows = []
    for name in ("linear", "normcdf", "relu"):
        spec = ModelSpec(name, class_sizes=(32, 16, 16), temperature=0.05)
        solve(spec)  # JIT warm-up, tables
        start = time.perf_counter()
        res = solve(spec)
        ours = time.perf_counter() - start
        prob = ClassProblem.from_spec(spec)
        half = 8.0 * float(np.sqrt(np.max(np.diag(res.readout_moment)))) if name != "relu" else 12.0
        for n in ((24,) if args.quick else (24, 48, 96)):
            start = time.perf_counter()
            _, f_grid = baseline_solve(prob, n, half, np.zeros((3, 3)))
            base = time.perf_counter() - start
            err = float(np.max(np.abs(f_grid - res.outputs)))
            rows.append((name, ours, res.error_estimate, res.success, n, base, err))
    print("| nonlinearity | solver time (s) | solver error estimate | converged | baseline grid | "
          "baseline time (s) | baseline max abs error on f | time ratio baseline/solver |")
    print("|---|---|---|---|---|---|---|---|")
    for name, ours, est, ok, n, base, err in rows:
        print(f"| {name} | {ours:.3f} | {est:.1e} | {ok} | {n}³ | {base:.3f} | {err:.1e} | {base / ours:.2f} |")


if __name__ == "__main__":
    main()
