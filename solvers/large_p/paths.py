"""Large-P paths along a parameter without the branch equations (THEORY §4): linear φ and sequential solves.

Linear φ (:func:`linear_path`): S is quadratic with the single maximum a = 0; the closed form
:func:`~solvers.large_p.solve.linear_large_p` is evaluated on a grid, and the one event recorded is
the onset of the O(1) Gaussian readout variance along e_c where the domain constraint starts to
bind, σ̄_a σ_1 √ρ_c = T (kind ``"domain-boundary"``, located by bisection).

Linearly growing φ (ReLU) carries a condensate on q(t) = 1 that the branch system does not
describe (:func:`sequential_path`): independent :func:`~solvers.large_p.solve.solve_large_p`
solves on a grid (warm-started with the previous field), with changes of the structure (number of
branches and condensate directions) located by bisection of solves.
"""
from __future__ import annotations

import numpy as np

from solvers.progress import report
from solvers.large_p.solve import LargePSolution, linear_large_p, solve_large_p
from solvers.large_p.records import LargePBranchTrace, LargePSpecialPoint
from solvers.large_p.stability import count_occupied

__all__ = ["linear_path", "sequential_path"]

def _solution_arrays(sols, params, label, origin, odd, status, message):
    k = len(sols)
    n = max(s.n_branches for s in sols)
    m = sols[0].problem.m
    A = np.full((k, n, m), np.nan)
    P = np.full((k, n), np.nan)
    for i, s in enumerate(sols):
        for g, b in enumerate(s.branches):
            A[i, g], P[i, g] = b.a, b.occupation
    nocc = []
    for i, s in enumerate(sols):
        cnt = count_occupied(A[i, :s.n_branches], P[i, :s.n_branches], odd)
        nocc.append(cnt + n_condensate(s))
    stab = np.array([0 if (s.converged and s.kind in ("global", "linear-gaussian")) else 1 for s in sols])
    residuals = np.array([s.residual_norm for s in sols])
    return LargePBranchTrace(
        converged=status == "reached-boundary", status=status, iterations=k - 1, residual=float(np.max(residuals)),
        time_seconds=float(sum(s.time_seconds for s in sols)), label=label, n_branches=n, parameter=np.asarray(params, dtype=np.float64),
        t=np.array([s.t for s in sols]), a=A, occupation=P, f=np.array([s.outputs for s in sols]),
        U=np.array([s.readout_moment for s in sols]),
        kernel_diagonal=np.array([s.observables.kernel_diagonal for s in sols]),
        kernel_blocks=np.array([s.observables.kernel_blocks for s in sols]),
        free_energy=np.array([s.free_energy for s in sols]), n_occupied=np.array(nocc, dtype=int),
        stability=stab, hessian_max=np.array([max(float(np.max(b.hessian_eigenvalues)) for b in s.branches)
                                              for s in sols]),
        kind=[s.kind if s.converged else "failed" for s in sols],
        arclength=np.abs(np.asarray(params) - params[0]), residuals=residuals,
        message=message, origin=origin, special=[""] * k)


def linear_path(problem, parameter, p_from, p_to, n_points, progress):
    """Closed form along the parameter (linear φ): one branch a = 0; records where σ̄_a σ_1 √ρ_c = T."""
    grid = np.linspace(p_from, p_to, n_points)

    def margin(p):  # > 0 while class c has f_cc = 0, per class
        pr = problem.with_parameter(parameter, p)
        return pr.temperature - pr.sigma_a_bar * pr.sigma_w * np.sqrt(pr.rho)

    marg = np.array([margin(p) for p in grid])
    specials = []
    for c in range(problem.m):
        for i in np.flatnonzero(np.sign(marg[:-1, c]) != np.sign(marg[1:, c])):
            lo, hi = float(grid[i]), float(grid[i + 1])
            f_lo = margin(lo)[c]
            for _ in range(200):
                if abs(hi - lo) <= 1e-12 * max(1.0, abs(lo)):
                    break
                mid = 0.5 * (lo + hi)
                if np.sign(margin(mid)[c]) == np.sign(f_lo):
                    lo = mid
                else:
                    hi = mid
            p_star = 0.5 * (lo + hi)
            onset = np.sign(marg[i + 1, c]) < 0
            specials.append(LargePSpecialPoint(
                kind="domain-boundary", parameter=p_star, bracket=(min(lo, hi), max(lo, hi)),
                bracket_arclength=(abs(lo - p_from), abs(hi - p_from)), width=abs(hi - lo), converged=True,
                residual=0.0, branch="linear", branch_index=0,
                description=(f"linear φ: the domain constraint q(t) = 1 {'starts' if onset else 'stops'} to bind along "
                             f"class {c} (σ̄_a σ_1 √ρ_{c} = T): an O(1) Gaussian readout variance U_{c}{c} "
                             f"{'appears' if onset else 'disappears'}; the single branch a = 0 persists "
                             "(analog coding, no symmetry breaking)"),
                n_occupied_before=1, n_occupied_after=1, n_branches_before=1, n_branches_after=1,
                stability_before=0, stability_after=0, classes=[c],
                formula={"class": c, "value": p_star, "expression": "σ̄_a σ_1 √ρ_c = T"}))
    merged = []
    for sp in sorted(specials, key=lambda s: s.parameter):
        if merged and abs(sp.parameter - merged[-1].parameter) <= 1e-12 * max(1.0, abs(sp.parameter)) \
                and sp.description.split("class")[0] == merged[-1].description.split("class")[0]:
            prev = merged[-1]
            prev.classes = sorted(set(prev.classes) | set(sp.classes))
            cl = ", ".join(map(str, prev.classes))
            prev.description = prev.description.replace(f"along class {prev.classes[0]} ", f"along classes {cl} ")
            prev.description = prev.description.replace(f"√ρ_{prev.classes[0]} = T", "√ρ_c = T")
            prev.description = prev.description.replace(f"variance U_{prev.classes[0]}{prev.classes[0]}",
                                                        "variance U_cc")
            continue
        merged.append(sp)
    specials = merged
    params = sorted(set(grid.tolist()) | {s.parameter for s in specials}, key=lambda v: (v - p_from) * np.sign(p_to - p_from))
    sols = []
    for i, p in enumerate(params):
        sols.append(linear_large_p(problem.with_parameter(parameter, p)))
        report(progress, "continuation", i + 1, len(params), parameter=p, branch="linear", n_branches=1,
               stability=0, kind="linear-gaussian", special_points=len(specials))
    tr = _solution_arrays(sols, params, "linear", {"kind": "closed-form"}, True, "reached-boundary",
                          "linear φ: closed form (solvers.large_p.solve.linear_large_p) on a grid")
    tr.n_occupied[:] = 1
    specials.sort(key=lambda s: (s.parameter - p_from) * np.sign(p_to - p_from))
    return tr, specials


def n_condensate(sol: LargePSolution) -> int:
    """Number of condensate directions â_j (ReLU-like φ), 0 without a condensate."""
    if sol.condensate is None:
        return 0
    return int(np.atleast_2d(np.asarray(sol.condensate.directions)).shape[0])


def _structure(sol: LargePSolution) -> tuple:
    return (sol.n_branches, n_condensate(sol), sol.converged)


def _solve_warm(problem, t0, notes):
    """solve_large_p warm-started at field t0; on an exception or no convergence, again from t = 0."""
    if t0 is not None:
        try:
            s = solve_large_p(problem, t0=t0)
            if s.converged:
                return s
        except (RuntimeError, ValueError, TypeError, ArithmeticError, np.linalg.LinAlgError) as exc:
            notes.append(f"warm-started solve failed at {problem.to_dict()}: {type(exc).__name__}: {exc}")
    return solve_large_p(problem)


def sequential_path(problem, parameter, p_from, p_to, n_points, progress, locate_tol, notes):
    """Independent solve_large_p solves on a grid (warm start: the previous field); structure changes
    (number of branches, condensate directions) located by bisection of solves to ``locate_tol``."""
    grid = np.linspace(p_from, p_to, n_points)
    sols, params, specials = [], [], []
    t0 = None
    for i, p in enumerate(grid):
        s = _solve_warm(problem.with_parameter(parameter, p), t0, notes)
        if s.converged:
            t0 = s.t
        if sols and _structure(s) != _structure(sols[-1]):
            lo, hi, s_lo, s_hi = params[-1], float(p), sols[-1], s
            while abs(hi - lo) > locate_tol:
                mid = 0.5 * (lo + hi)
                s_mid = _solve_warm(problem.with_parameter(parameter, mid), s_lo.t, notes)
                if _structure(s_mid) == _structure(s_lo):
                    lo, s_lo = mid, s_mid
                else:
                    hi, s_hi = mid, s_mid
            nb, nd, _ = _structure(s_lo)
            na, nda, _ = _structure(s_hi)
            specials.append(LargePSpecialPoint(
                kind="structure-change", parameter=0.5 * (lo + hi), bracket=(min(lo, hi), max(lo, hi)),
                bracket_arclength=(abs(lo - p_from), abs(hi - p_from)), width=abs(hi - lo), converged=True,
                residual=max(s_lo.residual_norm, s_hi.residual_norm), branch="sequential", branch_index=0,
                description=(f"the solution changes from {nb} branch(es) and {nd} condensate direction(s) to "
                             f"{na} branch(es) and {nda} condensate direction(s)"),
                n_occupied_before=count_occupied(np.array([b.a for b in s_lo.branches]),
                                              np.array([b.occupation for b in s_lo.branches]), problem.phi.odd) + nd,
                n_occupied_after=count_occupied(np.array([b.a for b in s_hi.branches]),
                                             np.array([b.occupation for b in s_hi.branches]), problem.phi.odd) + nda,
                n_branches_before=nb, n_branches_after=na, stability_before=0, stability_after=0,
                action="re-solved", state={"t": s_hi.t}))
            params += [lo, hi]
            sols += [s_lo, s_hi]
        params.append(float(p))
        sols.append(s)
        if not report(progress, "continuation", i + 1, n_points, parameter=float(p), branch="sequential",
                      n_branches=s.n_branches, stability=0 if s.converged else 1, kind=s.kind,
                      special_points=len(specials)):
            break
    order = np.argsort([(p - p_from) * np.sign(p_to - p_from) for p in params], kind="stable")
    sols, params = [sols[i] for i in order], [params[i] for i in order]
    ok = all(s.converged for s in sols)
    tr = _solution_arrays(sols, params, "sequential", {"kind": "sequential"}, problem.phi.odd,
                          "reached-boundary" if ok else "not-converged",
                          "independent solve_large_p solves" + ("" if ok else "; some did not converge"))
    return tr, specials
