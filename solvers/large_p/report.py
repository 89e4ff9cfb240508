"""Prose of the large-P continuation (THEORY §4): the physical reading of special points and the summary table.

:func:`describe` reads a located special point of an n-branch solution: which branch loses
stability in which direction (classes), a pitchfork of a = 0 to codes ± (odd φ), a split of a
maximum, an occupation crossing 0, another maximum overtaking the occupied ones (first-order
change of the code), or a fold where readouts merge; for odd φ the class-r instability
σ̄_a² ρ_r E[φ²] = T² is solved for the parameter (:func:`_formula`).
:func:`continuation_table` is the human-readable summary of a whole run.
"""
from __future__ import annotations

import math

import numpy as np

from theory.spec import SpecError

from solvers.continuation import Branch
from solvers.large_p.problem import LargePProblem, parameter_range, phi_second_moment
from solvers.large_p.stability import OCC_TOL, BranchEvaluator, count_occupied

__all__ = ["describe", "continuation_table"]

def _vec(v, digits=3) -> str:
    v = np.where(np.abs(v) < 0.5 * 10.0**-digits, 0.0, v)
    return "(" + ", ".join(f"{x:.{digits}g}" for x in v) + ")"


def _branch_text(a, n, odd) -> str:
    if np.linalg.norm(a) < 1e-7:
        return "symmetric branch a = 0" if n == 1 else "branch a = 0"
    return f"branch {'±' if odd else ''}a = {_vec(a)}"


def _closest_readouts(A, P, odd, scale):
    """(distance / scale, text) of the closest pair of occupied readouts, mirror images included (for
    odd φ, a_γ and −a_γ merge at a = 0); (inf, "") if there is no pair."""
    pts = [(g, 1, a) for g, a in enumerate(A) if P[g] > OCC_TOL]
    if odd:
        pts += [(g, -1, -a) for g, a, in enumerate(A) if P[g] > OCC_TOL]
    scale = max(scale, 1e-300)
    best, text = math.inf, ""
    for i in range(len(pts)):
        for j in range(i + 1, len(pts)):
            (g, s1, a), (h, s2, b) = pts[i], pts[j]
            if g == h and s1 == s2:
                continue
            d = float(np.linalg.norm(a - b)) / scale
            if d < best:
                best = d
                text = (f"the mirror images ±a_{g} merge at a = 0" if g == h else
                        f"readouts a_{g} and {'−' if s1 * s2 < 0 else ''}a_{h} merge")
    return best, text


def _formula(problem: LargePProblem, parameter: str, r: int, p_star: float) -> dict | None:
    """Value of the parameter where σ̄_a² ρ_r E[φ²] = T² (odd φ; the class-r instability of THEORY §4)."""
    if not problem.phi.odd or problem.nonlinearity == "linear":
        return None

    def g(p):
        pr = problem.with_parameter(parameter, p)
        return pr.sigma_a_bar**2 * pr.rho[r] * phi_second_moment(pr.nonlinearity, pr.sigma_w) - pr.temperature**2

    lo_b, hi_b, _ = parameter_range(parameter, problem.m)
    lo, hi = p_star * (1 - 1e-3), p_star * (1 + 1e-3)
    for _ in range(12):
        lo_c, hi_c = max(lo, lo_b + 1e-12), min(hi, hi_b - 1e-12) if math.isfinite(hi_b) else hi
        try:
            if g(lo_c) * g(hi_c) <= 0:
                from scipy.optimize import brentq
                v = brentq(g, lo_c, hi_c, xtol=1e-15, rtol=4 * np.finfo(float).eps)
                return {"class": int(r), "value": float(v),
                        "expression": "σ̄_a² ρ_r E[φ(h)²] = T²  (T_c,r = σ̄_a (ρ_r E[φ²])^{1/2})"}
        except SpecError:
            return None
        lo, hi = p_star - 2 * (p_star - lo), p_star + 2 * (hi - p_star)
    return None


def describe(ev: BranchEvaluator, sp, br: Branch, parameter: str, problem: LargePProblem) -> dict:
    """Physical reading of a special point: description, unstable directions, classes, formula value."""
    n = ev.system.n
    i0 = max(0, min(sp.index, len(br.p) - 2))
    before = ev.details(br.x[i0], br.p[i0])
    after = ev.details(br.x[i0 + 1], br.p[i0 + 1])
    at = ev.details(sp.x, sp.p)
    A = before["A"]  # the branch as it was just before the point (the located point may sit off it)
    texts, dirs, classes, formula = [], [], set(), None
    groups = {}  # (gained, where) -> branch descriptions: branches that change alike are described once
    for g in range(n):
        gained = int(after["n_pos"][g]) - int(before["n_pos"][g])
        if gained == 0:
            continue
        # the eigenvalues that cross: the |gained| ones closest to zero at the located point
        V = at["V"][g][:, np.sort(np.argsort(np.abs(at["w"][g]))[:abs(gained)])]
        proj = np.einsum("rk,rk->r", V, V)
        cls = [int(c) for c in np.flatnonzero(proj > 0.25)]
        classes.update(cls)
        for j in range(V.shape[1]):
            dirs.append(V[:, j])
        cl = f"class{'es' if len(cls) > 1 else ''} {', '.join(map(str, cls))}"
        v = V[:, 0] * np.sign(V[np.argmax(np.abs(V[:, 0])), 0])  # sign fixed: largest component > 0
        where = (f"direction {_vec(v)} ({cl})" if V.shape[1] == 1
                 else f"{V.shape[1]} directions (spanning {cl})")
        groups.setdefault((gained, where, bool(np.linalg.norm(A[g]) < 1e-7)), []).append(
            _branch_text(A[g], n, ev.odd))
        if ev.odd and problem.nonlinearity != "linear":
            for c in cls:
                if np.all(np.abs(A[:, c]) < 1e-6 * (1.0 + np.max(np.abs(A)))):
                    formula = formula or _formula(problem, parameter, c, float(sp.p))
    for (gained, where, at_zero), descs in groups.items():
        desc = descs[0] if len(descs) == 1 else f"all {len(descs)} branches ({'; '.join(descs)})"
        verb = "loses" if len(descs) == 1 else "lose"
        k = abs(gained)
        if gained > 0:
            if sp.kind == "branch-point" and ev.odd and at_zero:
                texts.append(f"{desc} {verb} stability in {where}: pitchfork to codes ±")
            elif sp.kind == "branch-point":
                texts.append(f"{desc} {verb} stability in {where}: branch point, symmetry-broken branches "
                             "of the n-branch system cross here")
            else:
                texts.append(f"{desc} stop{'s' if len(descs) == 1 else ''} being a local maximum of S in {where}: "
                             f"each such readout splits into {2 ** k}"
                             + (" (equal-fraction classes break together)" if k > 1 else ""))
        else:
            texts.append(f"{desc} become{'s' if len(descs) == 1 else ''} a local maximum of S again in {where}")
    for g in np.flatnonzero(before["negative"] != after["negative"]):
        texts.append(f"occupation P_{g} of {_branch_text(A[g], n, ev.odd)} crosses 0: the branch "
                     + ("empties" if after["negative"][g] else "fills again"))
    if before["higher_found"] != after["higher_found"]:
        best = (after if after["higher_found"] else before)["best"]
        other = "" if best is None or best[0] is None else f" at a = {_vec(best[0])}"
        texts.append(f"another local maximum of S{other} " + ("becomes higher than" if after["higher_found"] else
                     "falls below") + " the occupied branches: first-order change of the code")
    m = ev.system.m
    scale = float(np.max(np.linalg.norm(np.asarray(br.x)[:, m * m:m * m + n * m].reshape(len(br.p), n, m), axis=2)))
    gap, pair = _closest_readouts(A, before["P"], ev.odd, scale)
    gap_at, _ = _closest_readouts(at["A"], at["P"], ev.odd, scale)
    merging = min(gap, gap_at) < 0.1
    if sp.kind == "fold":
        texts.insert(0, f"fold: the {n}-branch solution turns back in {parameter}"
                     + (f" where {pair} (relative distance {gap:.2g} just before): the reverse of a split, "
                        "the number of occupied readouts drops" if merging else ""))
    elif sp.kind == "branch-point" and merging and not texts:
        texts.append(f"branch point where {pair}: with coinciding readouts the {n}-branch system has a family "
                     "of degenerate solutions (occupations undetermined); part of the merge")
    if not texts:
        texts.append(f"{sp.kind} of the {n}-branch system (stability {sp.stability_before} -> {sp.stability_after})")
    return {"description": "; ".join(texts), "unstable_directions": [d.tolist() for d in dirs],
            "classes": sorted(classes), "formula": formula,
            "state": {"t": at["t"], "a": A, "P": at["P"]},
            "n_occupied_before": count_occupied(before["A"], before["P"], ev.odd),
            "n_occupied_after": count_occupied(after["A"], after["P"], ev.odd)}


def continuation_table(result) -> str:
    """Human-readable summary of a :class:`~solvers.large_p.records.LargePContinuation`: special points,
    then the global path at up to 12 parameter values."""
    lines = [f"continuation of the large-P solution in {result.parameter} from {result.p_from:g} to {result.p_to:g} "
             f"({result.problem.nonlinearity}, ρ = {[round(float(r), 6) for r in result.problem.rho]}, "
             f"σ_1 = {result.problem.sigma_w:g}, σ̄_a = {result.problem.sigma_a_bar:g}, T = {result.problem.temperature:g})",
             f"  {len(result.branches)} branch trace(s), {result.n_points} points, {result.time_seconds:.2f} s; "
             f"{'reached the end' if result.success else 'NOT COMPLETE: ' + result.message}"]
    lines.append("  special points:")
    if not result.special_points:
        lines.append("    none")
    for s in result.special_points:
        lines.append(f"    {s.kind:17s} {result.parameter} = {s.parameter:.8f}  bracket [{s.bracket[0]:.10f}, "
                     f"{s.bracket[1]:.10f}]  occupied {s.n_occupied_before} -> {s.n_occupied_after}  "
                     f"({s.action}, branch {s.branch})")
        lines.append(f"      {s.description}")
    path = result.global_path()
    k = len(path["parameter"])
    m = result.problem.m
    if k:
        lines.append(f"  global solution ({k} points):")
        lines.append(f"    {result.parameter:>12s} " + " ".join(f"f_{c}{c}".rjust(9) for c in range(m)) + " "
                     + " ".join(f"U_{c}{c}".rjust(9) for c in range(m)) + "  n_occ        G∞")
        for i in np.unique(np.linspace(0, k - 1, min(k, 12)).round().astype(int)):
            lines.append(f"    {path['parameter'][i]:12.6f} "
                         + " ".join(f"{path['f'][i][c, c]:9.5f}" for c in range(m)) + " "
                         + " ".join(f"{path['U'][i][c, c]:9.5f}" for c in range(m))
                         + f"  {path['n_occupied'][i]:5d} {path['free_energy'][i]:9.5f}")
    return "\n".join(lines)
