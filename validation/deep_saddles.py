"""Several stable saddles of the deep class-block theory against prior-start chains: the opt-in
multi-saddle rule of ``codingschemes validate --layers L --saddles T_a,...`` (THEORY §5, §7).

Below a first-order change of the last layer's code composition the deep theory has more than one
stable saddle at the same T (normcdf, L = 2, classes 32,16,16, σ_a = 0.125: the separated and the merged
saddles coexist for 0.05 <= T <= 0.115; docs/devlog.md). Local moves keep a chain's code fractions
(THEORY §7), so a chain started from the prior settles near one of them, not necessarily the
equilibrium, and the default rule of :func:`validation.deep.validate_deep` (every chain at the one
saddle of the default solve) fails.

Saddles (:func:`theory_saddles`, the one collection): the default solve at T, and for each anchor
temperature T_a the default solve at T_a followed to T by warm starts (``search=False``) on a
geometric path with ratio at most ``max_ratio`` per step (:func:`warm_path`). A path that leaves its
branch (a step not reached by the warm start) is dropped. Kept: the converged, stable saddles at T;
two are one when |θ_a − θ_b| <= DEDUP_REL·max(1, |θ_a|) + 2 (ε_a + ε_b) for every observable θ (f, U,
every layer's kernel blocks; ε the integration-error estimates).

Assignment (:func:`assign_chains`): chain c's mean x_c and MCSE s_c (its own draws) are compared with
saddle k by the prior-start allowance of :func:`validation.deep.validate_deep`,

    r_ck = max_i |x_ci − θ_ki| / (4 s_ci + 4 ε_ki + c·max(1, |θ_ki|)·P/N),

the chain is assigned to k*(c) = argmin_k r_ck and passes if r_ck* <= 1; the rule passes if every
chain does. R̂ is not part of it: each chain keeps its own O(N^{-1/2}) code fractions.

Which saddle is the equilibrium: the largest action S_k (log Z per neuron; ± e_k, the solver's
estimate). Saddle k is "metastable" if S_eq − S_k > 2 (e_eq + e_k), "equilibrium" if it is the
largest, and "equal within errors" otherwise.

A pass says that every chain sits at a stable saddle of the theory, some possibly metastable; it is
not evidence that prior-start chains sample the equilibrium (the default rule tests that).
"""
from __future__ import annotations

import math
import time

import numpy as np

from solvers.progress import report as report_progress
from theory.checks import check_float
from theory.codes import code_fraction_difference
from theory.spec import ModelSpec, SpecError

from .compare import compare
from .deep import C_P_OVER_N, _theory_vector, deep_theory, theory_error, validate_deep
from .results import DeepValidationReport

__all__ = ["warm_path", "check_anchors", "theory_saddles", "assign_chains", "saddle_rule", "validate_deep_saddles",
           "DEDUP_REL", "MAX_RATIO", "METASTABLE_FACTOR", "RULE_TEXT"]

#: relative tolerance under which two saddles' observables are one saddle (plus 2 (ε_a + ε_b))
DEDUP_REL = 0.02
#: largest T_{k+1}/T_k (or its inverse) of one warm-start step
MAX_RATIO = 1.12
#: a saddle is metastable when its S is below the equilibrium's by more than this × the summed errors
METASTABLE_FACTOR = 2.0
RULE_TEXT = ("multi-saddle rule (opt-in): every prior-start chain is within the allowance of its nearest stable "
             "theory saddle; a pass means the chains sit at theory saddles, some possibly metastable, "
             "not that they sample the equilibrium")


def warm_path(t_from: float, t_to: float, max_ratio: float = MAX_RATIO) -> np.ndarray:
    """Geometric temperatures after ``t_from`` ending at ``t_to``, each step's ratio at most ``max_ratio``
    (empty if they are equal)."""
    check_float("max_ratio", max_ratio, 1.0, lo_open=True)
    if t_from == t_to:
        return np.empty(0)
    n = max(1, math.ceil(abs(math.log(t_to / t_from)) / math.log(max_ratio) - 1e-12))
    return t_from * (t_to / t_from) ** (np.arange(1, n + 1) / n)


def check_anchors(anchors) -> list[float]:
    """The anchor temperatures as floats, each checked > 0 (before any solve)."""
    return [check_float("saddle anchor temperature", float(a), 0.0, lo_open=True) for a in anchors]


def _selected(sol) -> dict:
    return next((s for s in sol.saddles if s.get("selected")), sol.saddles[0] if sol.saddles else {})


def _follow(sol, spec: ModelSpec, layers: int, sigmas, temperatures, log: list):
    """Warm starts from ``sol`` along ``temperatures``; None when a step leaves the branch."""
    from solvers.deep.nonlinear import DeepOptions, solve_deep_nonlinear

    for T in temperatures:
        sol = solve_deep_nonlinear(spec.replace(temperature=float(T)), layers, sigmas, start=sol,
                                   options=DeepOptions(search=False))
        how = _selected(sol).get("found_by", "")
        if not (sol.found and how.startswith("warm start")):
            log.append(f"left the branch at T = {T:.4g} ({how or sol.status})")
            return None
    return sol


def _same(a, b, layers) -> bool:
    va, vb = _theory_vector(a, layers), _theory_vector(b, layers)
    ea, eb = theory_error(a), theory_error(b)
    tol = DEDUP_REL * np.maximum(1.0, np.abs(va)) + 2.0 * ((0 if ea is None else ea) + (0 if eb is None else eb))
    return bool(np.all(np.abs(va - vb) <= tol))


def theory_saddles(spec: ModelSpec, layers: int, anchors=(), *, first=None, sigmas=None,
                   max_ratio: float = MAX_RATIO, progress=None, keep_dropped: bool = False) -> list:
    """The stable saddles at ``spec``'s T (module docstring): ``first`` (default: the default solve at T)
    and, per anchor temperature, the default solve there followed to T by warm starts. Returns a list of
    {"solution", "anchor", "found_by", "log", "dropped" (None)}, distinct, converged and stable, the default
    solve's first; ``keep_dropped``: every candidate, "dropped" saying why one is not kept."""
    from solvers.deep.nonlinear import solve_deep_nonlinear

    anchors = check_anchors(anchors)
    T = spec.temperature
    first = first if first is not None else deep_theory(spec, layers, sigmas=sigmas)
    found = [{"solution": first, "anchor": T, "found_by": "default solve at T", "log": []}]
    for i, Ta in enumerate(anchors):
        report_progress(progress, "saddles", i, len(anchors), anchor=Ta)
        log: list = []
        path = warm_path(Ta, T, max_ratio)
        sol = solve_deep_nonlinear(spec.replace(temperature=Ta), layers, sigmas)
        if not sol.found:
            log.append(f"default solve at T = {Ta:g}: {sol.status}")
        else:
            sol = _follow(sol, spec, layers, sigmas, path, log)
        found.append({"solution": sol, "anchor": Ta, "log": log,
                      "found_by": f"default solve at T = {Ta:g}, then {len(path)} warm starts"})
    kept = []
    for cand in found:
        sol = cand["solution"]
        why = ("no saddle reached" if sol is None else f"not converged ({sol.status})" if not sol.converged
               else "unstable" if not sol.stable else None)
        if why is None and any(_same(sol, k["solution"], layers) for k in kept):
            why = "the same saddle as an earlier one"
        cand["dropped"] = why
        kept += [cand] if why is None else []
    return kept if not keep_dropped else found


def assign_chains(theory_vectors, theory_errors, means, mcses, width: int, size: float,
                  c: float = C_P_OVER_N) -> dict:
    """Each chain to its nearest saddle by the allowance ratio r_ck (module docstring). ``theory_vectors``,
    ``theory_errors``: (saddles, d); ``means``, ``mcses``: (chains, d). Returns {"ratio": (chains, saddles)
    array, "saddle": per chain k*, "worst": per chain r_ck*, "passed": per chain r_ck* <= 1}."""
    th, te = np.atleast_2d(theory_vectors), np.atleast_2d(theory_errors)
    mu, se = np.atleast_2d(means), np.atleast_2d(mcses)
    if th.shape != te.shape or mu.shape != se.shape or th.shape[1] != mu.shape[1]:
        raise ValueError(f"shapes differ: saddles {th.shape}/{te.shape}, chains {mu.shape}/{se.shape}")
    ratio = np.array([[compare(th[k], mu[j], se[j], width, c=c, size=size, theory_error=te[k])["worst"]
                       for k in range(len(th))] for j in range(len(mu))])
    best = np.argmin(ratio, axis=1)
    worst = ratio[np.arange(len(mu)), best]
    return {"ratio": ratio, "saddle": best, "worst": worst, "passed": worst <= 1.0}


def _standing(S, e) -> list:
    """Per saddle "equilibrium", "metastable" or "equal within errors" (module docstring)."""
    eq = int(np.argmax(S))
    return ["equilibrium" if k == eq else
            "metastable" if S[eq] - S[k] > METASTABLE_FACTOR * (e[eq] + e[k]) else "equal within errors"
            for k in range(len(S))]


def saddle_rule(saddles: list, per_width: list, spec: ModelSpec, layers: int) -> dict:
    """The JSON block ``saddle_rule``: ``saddles`` from :func:`theory_saddles` (those with a "dropped" reason
    are listed under "dropped"), ``per_width`` the ``per_width`` entries of :func:`validate_deep` with
    ``per_chain=True``."""
    dropped = [{"anchor": s["anchor"], "found_by": s["found_by"], "why": s["dropped"], "log": s["log"]}
               for s in saddles if s.get("dropped")]
    saddles = [s for s in saddles if not s.get("dropped")]
    if not saddles:
        return {"rule": RULE_TEXT, "passed": False, "saddles": [], "equilibrium": None, "dropped": dropped,
                "per_width": [], "any_chain_metastable": False, "summary": "no converged stable saddle of the theory"}
    sols = [s["solution"] for s in saddles]
    S = np.array([s.free_energy for s in sols])
    e = np.array([s.free_energy_error for s in sols])
    standing = _standing(S, e)
    th = np.array([_theory_vector(s, layers) for s in sols])
    te = np.array([theory_error(s) for s in sols])
    widths, metastable = [], []
    for w in per_width:
        chains = w["chains"]
        a = assign_chains(th, te, [ch["mean"] for ch in chains], [ch["mcse"] for ch in chains], w["width"], spec.P)
        rows = []
        for j, ch in enumerate(chains):
            k = int(a["saddle"][j])
            rows.append({"chain": j, "saddle": k, "standing": standing[k], "free_energy": float(S[k]),
                         "worst": float(a["worst"][j]), "passed": bool(a["passed"][j]),
                         "worst_per_saddle": a["ratio"][j].tolist(), "code_fractions": ch["code_fractions"],
                         "code_fractions_max_difference": code_fraction_difference(
                             sols[k].code_fractions[-1], ch["code_fractions"][-1]) if sols[k].code_fractions else None})
            metastable += [j] if standing[k] == "metastable" else []
        widths.append({"width": w["width"], "chains": rows, "passed": bool(np.all(a["passed"]))})
    eq = int(np.argmax(S))
    return {"rule": RULE_TEXT, "passed": all(w["passed"] for w in widths),
            "saddles": [{"saddle": k, "anchor": s["anchor"], "found_by": s["found_by"], "free_energy": float(S[k]),
                         "free_energy_error": float(e[k]), "standing": standing[k], "stable": bool(sols[k].stable),
                         "error_estimate": sols[k].error_estimate, "outputs": np.asarray(sols[k].outputs).tolist(),
                         "code_fractions": sols[k].code_fractions, "log": s["log"]} for k, s in enumerate(saddles)],
            "equilibrium": {"saddle": eq, "free_energy": float(S[eq]), "free_energy_error": float(e[eq])},
            "dropped": dropped, "per_width": widths, "any_chain_metastable": bool(metastable),
            "summary": _summary(widths, standing, S, e)}


def _summary(widths, standing, S, e) -> str:
    eq = int(np.argmax(S))
    parts = [f"equilibrium: saddle {eq} (S = {S[eq]:.2f} ± {e[eq]:.2f})"]
    for w in widths:
        chains = ", ".join(f"chain {r['chain']} → saddle {r['saddle']} ({r['standing']}, worst {r['worst']:.2f})"
                           for r in w["chains"])
        parts.append(f"N = {w['width']}: {chains}")
    return "; ".join(parts)


def validate_deep_saddles(spec: ModelSpec, layers: int, anchors=(), *, sigmas=None, max_ratio: float = MAX_RATIO,
                          progress=None, **validate_kw) -> DeepValidationReport:
    """:func:`validation.deep.validate_deep` (its default rule and ``passed`` unchanged) plus the block
    ``saddle_rule`` of the multi-saddle rule (module docstring), with the theory's saddles from
    :func:`theory_saddles` (the default solve is shared by both rules)."""
    t0 = time.perf_counter()
    if spec.nonlinearity == "linear":
        raise SpecError("the multi-saddle rule needs a nonlinear φ (the deep linear theory has one saddle)")
    anchors = check_anchors(anchors)
    theory = deep_theory(spec, layers, sigmas=sigmas)
    saddles = theory_saddles(spec, layers, anchors, first=theory, sigmas=sigmas, max_ratio=max_ratio,
                             progress=progress, keep_dropped=True)
    rep = validate_deep(spec, layers, sigmas=sigmas, theory=theory, per_chain=True, progress=progress, **validate_kw)
    data = {**rep.data, "saddle_rule": saddle_rule(saddles, rep["per_width"], spec, layers)}
    return DeepValidationReport.from_dict(data, passed=rep.converged, message=rep.message,
                                          chains_mixed=rep.status != "not-converged",
                                          time_seconds=time.perf_counter() - t0)
