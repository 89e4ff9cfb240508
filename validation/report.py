"""Theory-against-sampling report (the engine of ``codingschemes validate``; THEORY §7).

For each width N, several chains start from the prior (random starts), the
theory's single-neuron measure, or both. Each sweep is, by default, the
collapsed sweep (:func:`validation.collapsed.collapsed_sweep`: MALA on the
marginal of W with the readout integrated out, then a | W exactly); the
Gibbs-within-MALA sweep (:func:`validation.networks.gibbs_sweep`: a | W
exactly, MALA on W | a) is ``sampler="gibbs"``. In the collapsed sweep a neuron
with a large readout moves along the ridge a ∝ φ(h) instead of being pinned by
the output constraint, so it mixes where the Gibbs sweep freezes (docs/devlog.md).
Every chain is one point of a sweep (:func:`solvers.sweep.run_sweep`),
written to a checkpoint file as it finishes, so an interrupted run resumes. The observables f, U and the kernel are
averaged after burn-in, with MCSE, bulk ESS and rank-normalised split-R̂ (:mod:`validation.diagnostics`).
Theory and sampling are compared by :func:`validation.compare.compare`: with two or more widths
each observable is extrapolated as a + b/N and its intercept compared with
the solver (z-score < 4); with one width the comparison allows the O(1/N) bias
explicitly: |sampled − theory| <= 4 MCSE + c·max(1, |theory|)/N with c = 4 (the bias
of U is about 2.3·|theory|/N). Either way a report passes only if every R̂ < :data:`RHAT_MAX`
(stated in the report as ``diagnostics.rhat_rule``): chains frozen in different code fractions
(THEORY §7) inflate the MCSE and could otherwise "agree".

Per width the report also gives the sampled code fractions (codes by
:func:`validation.observables.neuron_codes`, threshold 0.5 of a neuron's
largest class-mean activation), their total-variation distance to the
theory's code fractions (10000 neurons from the single-neuron measure; not
for condensed ReLU solutions) and the participation ratio of the neurons'
contributions to the output. The comparison made is stated in the report:
"equilibrium, random starts".
Chains can also start from the theory's single-neuron measure
(``init="theory"``); :func:`stationarity` is the sharp test built on that.
``swaps`` adds Metropolis independence moves that redraw a whole neuron
from a theory-based proposal (:class:`validation.theory_init.NeuronProposal`),
so neurons can change code; without them, in symmetry-broken phases
random-start chains may freeze code fractions away from equilibrium.
``outlier_moves`` adds pair rotations (:mod:`validation.outlier_moves`) that
create, remove and move the outliers of a ReLU condensate; theory starts place
those outliers (:func:`validation.populations.theory_start`). The report
states the start and the moves used.
"""
from __future__ import annotations

from functools import lru_cache
import json
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

from solvers.solve import solve, solve_lazy
from solvers.sweep import run_sweep
from theory.spec import ModelSpec

from .compare import K_MCSE, compare
from .diagnostics import ess, ess_tail, mcse, rhat_rank, rhat_rule
from .collapsed import collapsed_sweep
from .networks import Network, gibbs_sweep
from .samplers import StepSizeAdaptation
from .sparse import OUTLIER_FACTOR, outlier_summary, theory_outlier_share
from .outlier_moves import pair_rotation_moves
from .populations import theory_start
from .theory_init import NeuronProposal, neuron_swap, theory_code_fractions
from .results import SamplingReport, StationarityReport
from .observables import (class_mean_activations, code_fractions, from_vector, neuron_codes, observables_vector,
                          output_contributions, participation_ratio)

__all__ = ["validate", "stationarity", "C_OVER_N", "RHAT_MAX", "RHAT_WHY"]

#: the constant c of the single-width criterion |Δ| <= 4 MCSE + c·max(1, |theory|)/N
C_OVER_N = 4.0
Z_MAX = K_MCSE
#: sweeps by name: "gibbs" (a | W exact, MALA on W | a) and "collapsed" (MALA on the marginal of W, then a | W)
SWEEPS = {"gibbs": gibbs_sweep, "collapsed": collapsed_sweep}
#: chains count as converged (and a report can pass) only when every rank-normalised R̂ is below this
#: (weaker than the target 1.01 of validation.diagnostics: RHAT_WHY says why; docs/devlog.md)
RHAT_MAX = 1.1
RHAT_WHY = ("R-hat < 1.01 is not reached at the default settings (relu, classes 8,4,4, T = 0.5, N = 400, "
            "4 chains x 1500 sweeps: max 1.014); 1.1 still flags chains frozen in different code fractions "
            "(R-hat > 2)")


def _theory(spec: ModelSpec, scaling: str):
    return solve(spec) if scaling == "mean-field" else solve_lazy(spec)


@lru_cache(maxsize=4)
def _job_theory(spec_json: str, scaling: str):
    """The theory a chain starts from or proposes with, solved once per process (not once per chain:
    a ReLU solve at P = 64 takes minutes)."""
    d = json.loads(spec_json)
    spec = ModelSpec(nonlinearity=d["nonlinearity"], sigma_w=d["sigma_w"], sigma_a=d["sigma_a"],
                     temperature=d["temperature"], class_sizes=tuple(d["class_sizes"]))
    return _theory(spec, scaling)


def chain_job(job: dict) -> dict:
    """Run one chain (a point of the validation sweep); JSON-ready result.

    ``job``: spec (``ModelSpec.to_dict()`` of orthogonal data), scaling, width, chain, start
    ("random" or "theory"), sweeps, burn, step_size, swaps, seed. Returns the post-burn-in
    observable vectors (``draws``), the W-acceptance, the swap acceptance, the summed code
    fractions of every 10th draw and their participation ratios. The W step size starts at
    ``step_size`` and is adapted by dual averaging to acceptance 0.574 during burn-in only, then
    frozen (reported as ``step_size``).
    """
    with threadpool_limits(limits=1):  # small matrices: BLAS threads only oversubscribe the cores
        return _chain(job)


def _chain(job: dict) -> dict:
    spec = ModelSpec(nonlinearity=job["spec"]["nonlinearity"], sigma_w=job["spec"]["sigma_w"],
                     sigma_a=job["spec"]["sigma_a"], temperature=job["spec"]["temperature"],
                     class_sizes=tuple(job["spec"]["class_sizes"]))
    width, sweeps, burn, swaps = job["width"], job["sweeps"], job["burn"], job["swaps"]
    net = Network(spec, width=width, scaling="mean-field" if job["scaling"] == "mean-field" else "standard")
    theory = (_job_theory(json.dumps(job["spec"], sort_keys=True), job["scaling"])
              if (swaps or job["start"] == "theory") else None)
    proposal = NeuronProposal(theory) if swaps else None
    rng = np.random.default_rng([job["seed"], width, job["chain"], 0 if job["start"] == "random" else 1])
    theta = net.prior_sample(rng) if job["start"] == "random" else theory_start(net, theory, rng)
    n_pair = job.get("outlier_moves", 0)
    draws, acc, swap_acc, fractions, prs, outliers, outlier_codes = [], [], [], {}, [], [], {}
    pair_acc = []
    # dual averaging of the W step size to MALA's optimal acceptance 0.574, during burn-in only
    adapt = StepSizeAdaptation(job["step_size"]) if burn > 0 else None
    step = job["step_size"]
    for s in range(sweeps):
        theta, a = SWEEPS[job["sampler"]](rng, net, theta, step_size=step, n_mala=5)
        if adapt is not None and s < burn:
            adapt.update(a)
            step = adapt.step_size if s < burn - 1 else adapt.final_step_size
        acc.append(a)
        for _ in range(swaps):
            theta, ok = neuron_swap(rng, net, theta, proposal)
            swap_acc.append(ok)
        if n_pair:
            theta, k = pair_rotation_moves(rng, net, theta, n_pair)
            pair_acc.append(k / n_pair)
        if s >= burn:
            draws.append(observables_vector(net, theta).tolist())
            if (s - burn) % 10 == 0:
                codes = neuron_codes(class_mean_activations(net, theta))
                for code, frac in code_fractions(codes, spec.m).items():
                    fractions[code] = fractions.get(code, 0.0) + frac
                prs.append(participation_ratio(output_contributions(net, theta)))
                o = outlier_summary(net, theta)
                outliers.append([o["count"], *o["share"].tolist()])
                for code in o["codes"]:
                    key = "".join("1" if (code >> c) & 1 else "0" for c in range(spec.m))
                    outlier_codes[key] = outlier_codes.get(key, 0) + 1
    return {"draws": draws, "acceptance": float(np.mean(acc[burn:])), "step_size": step,
            "swap_acceptance": float(np.mean(swap_acc)) if swap_acc else None,
            "code_fractions_sum": fractions, "participation_ratios": prs, "outliers": outliers,
            "outlier_codes": outlier_codes, "outlier_move_acceptance": float(np.mean(pair_acc)) if pair_acc else None}


def _combine_chains(width: int, results: list[dict]) -> dict:
    """Per-width summary of several chains: mean, MCSE, ESS, split-R̂, codes, participation ratio."""
    out = np.array([r["draws"] for r in results])  # chains × draws × observables
    fractions: dict = {}
    for r in results:
        for k, v in r["code_fractions_sum"].items():
            fractions[k] = fractions.get(k, 0.0) + v
    prs = [p for r in results for p in r["participation_ratios"]]
    swaps = [r["swap_acceptance"] for r in results if r["swap_acceptance"] is not None]
    pairs = [r["outlier_move_acceptance"] for r in results if r.get("outlier_move_acceptance") is not None]
    out_arr = np.array([row for r in results for row in r["outliers"]])  # draws × (count, share_c...)
    out_codes: dict = {}
    for r in results:
        for k, v in r["outlier_codes"].items():
            out_codes[k] = out_codes.get(k, 0) + v
    n_out = sum(out_codes.values())
    return {"width": width, "mean": out.mean(axis=(0, 1)), "mcse": mcse(out), "ess": ess(out),
            "ess_tail": ess_tail(out),
            "rhat": rhat_rank(out), "acceptance": float(np.mean([r["acceptance"] for r in results])),
            "step_size": float(np.mean([r["step_size"] for r in results])),
            "code_fractions": {k: v / len(prs) for k, v in sorted(fractions.items())},
            "participation_ratio": float(np.mean(prs)),
            "outliers": {"criterion": f"readout norm > {OUTLIER_FACTOR:g} × median", "count": float(out_arr[:, 0].mean()),
                         "share": out_arr[:, 1:].mean(axis=0).tolist(),
                         "code_fractions": {k: v / n_out for k, v in sorted(out_codes.items())} if n_out else {}},
            "swap_acceptance": float(np.mean(swaps)) if swaps else None,
            "outlier_move_acceptance": float(np.mean(pairs)) if pairs else None}


def _compare(widths, runs, t_obs, m):
    """Theory against the sampled runs of one start (:func:`validation.compare.compare`) and the R̂ rule."""
    cmp = compare(t_obs, [r["mean"] for r in runs], [r["mcse"] for r in runs], widths, c=C_OVER_N)
    rhat_max = float(max(np.max(r["rhat"]) for r in runs))
    rule = rhat_rule(rhat_max, RHAT_MAX, RHAT_WHY)
    sampling = {**from_vector(cmp["estimate"], m, cmp["error"]).to_json(), "per_width": [
        {"width": r["width"], **from_vector(r["mean"], m, r["mcse"]).to_json(),
         "acceptance": r["acceptance"], "step_size": r["step_size"], "swap_acceptance": r["swap_acceptance"],
         "code_fractions": r["code_fractions"],
         "participation_ratio": r["participation_ratio"], "outliers": r["outliers"],
         **({} if r["outlier_move_acceptance"] is None else {"outlier_move_acceptance": r["outlier_move_acceptance"]})}
        for r in runs]}
    if cmp["slope"] is not None:
        sampling["slope_1_over_n"] = from_vector(cmp["slope"], m).to_json()
    diagnostics = {"ess_min": float(min(np.min(r["ess"]) for r in runs)),
                   "ess_tail_min": float(min(np.min(r["ess_tail"]) for r in runs)), "rhat_max": rhat_max,
                   "chains_converged": rule["met"], "rhat_rule": rule,
                   "per_width": [{"width": r["width"], "ess": r["ess"].tolist(), "ess_tail": r["ess_tail"].tolist(),
                                  "rhat": r["rhat"].tolist()}
                                 for r in runs]}
    return {"sampling": sampling, "diagnostics": diagnostics, "z_max": cmp["z_max"],
            "passed": bool(cmp["passed"] and rule["met"]), "comparison": cmp["rule"]}


def _check_arguments(spec, widths, chains, sweeps, burn, step_size, init, swaps, scaling, sampler,
                     outlier_moves=0) -> list:
    """The arguments of :func:`validate`, checked (ValueError naming the bad one); the widths as ints."""
    if not isinstance(swaps, int) or swaps < 0:
        raise ValueError(f"swaps must be an integer >= 0 (got {swaps!r})")
    if not isinstance(outlier_moves, int) or outlier_moves < 0:
        raise ValueError(f"outlier_moves must be an integer >= 0 (got {outlier_moves!r})")
    if init not in ("random", "theory", "both"):
        raise ValueError(f"init must be 'random', 'theory' or 'both' (got {init!r})")
    if sampler not in SWEEPS:
        raise ValueError(f"sampler must be one of {sorted(SWEEPS)} (got {sampler!r})")
    if scaling not in ("mean-field", "lazy"):
        raise ValueError(f"scaling must be 'mean-field' or 'lazy' (got {scaling!r})")
    if scaling == "lazy" and (swaps or init != "random"):
        raise ValueError("scaling 'lazy' supports init='random' and swaps=0 only (the theory-based starts "
                         "and swaps use the mean-field single-neuron measure)")
    if spec.inputs is not None:
        raise ValueError("validate samples orthogonal class-structured data (inputs=None)")
    widths = [int(w) for w in widths]
    if not widths or min(widths) < 1:
        raise ValueError(f"widths must be positive integers (got {widths})")
    if chains < 2:
        raise ValueError(f"chains must be >= 2 for R-hat (got {chains})")
    if not (0 <= burn < sweeps):
        raise ValueError(f"burn must be in [0, sweeps={sweeps}) (got {burn})")
    if not (np.isfinite(step_size) and step_size > 0):
        raise ValueError(f"step_size must be a finite number > 0 (got {step_size!r})")
    return widths


def validate(spec: ModelSpec, widths=(400,), chains: int = 4, sweeps: int = 1500, burn: int = 300,
             step_size: float = 0.3, seed: int = 0, progress: bool = True, init: str = "random",
             swaps: int = 0, scaling: str = "mean-field", checkpoint=None, workers: int = 1,
             sampler: str = "collapsed", outlier_moves: int = 0) -> SamplingReport:
    """Run the comparison; returns the report (:class:`validation.results.SamplingReport`, ``converged``
    = "passed"; its entries JSON-ready, arrays as lists).

    ``init``: "random" (prior draws), "theory" (neurons from the theory's single-neuron measure,
    :mod:`validation.theory_init`) or "both" (both sets of chains, reported side by side; the
    report passes only if both do). ``swaps``: Metropolis independence moves per sweep that redraw
    one neuron from a theory-based proposal (mode-changing moves, THEORY §7). ``scaling``:
    "mean-field" (γ = 1, β = N/T, compared with :func:`solvers.solve`) or "lazy" (γ = 1/2,
    β = 1/T, compared with the NNGP baseline :func:`solvers.solve.solve_lazy`). Every chain is one
    ``outlier_moves``: pair-rotation moves per sweep (:mod:`validation.outlier_moves`: they create,
    remove and move the outliers of a ReLU condensate; exact, with the readout integrated out). Every chain is one
    point of a sweep written to ``checkpoint`` (JSON Lines) as it finishes; rerunning with the same
    settings and file resumes without recomputing finished chains. ``workers`` chains run in parallel.
    """
    t0 = time.perf_counter()
    widths = _check_arguments(spec, widths, chains, sweeps, burn, step_size, init, swaps, scaling, sampler,
                              outlier_moves)
    theory = _theory(spec, scaling)
    m = spec.m
    t_obs = theory.observables
    starts = ["random", "theory"] if init == "both" else [init]
    jobs = [{"spec": spec.to_dict(), "scaling": scaling, "width": N, "chain": c, "start": st, "sweeps": sweeps,
             "burn": burn, "step_size": step_size, "swaps": swaps, "seed": seed, "sampler": sampler}
            for st in starts for N in widths for c in range(chains)]
    if outlier_moves:  # the key only when used: earlier checkpoints keep their settings hash
        jobs = [{**j, "outlier_moves": outlier_moves} for j in jobs]
    results = _run_jobs(jobs, checkpoint, workers, progress)
    by_start = {}
    for st in starts:
        runs = [_combine_chains(N, [results[i] for i, j in enumerate(jobs) if j["start"] == st and j["width"] == N])
                for N in widths]
        by_start[st] = _compare(widths, runs, t_obs, m)
    main = by_start[starts[0]]
    moves = (f"; {swaps} neuron swaps per sweep (mode-changing moves)" if swaps
             else "; no mode-changing moves: in broken phases code fractions may be frozen")
    if outlier_moves:
        moves += f"; {outlier_moves} pair-rotation (outlier) moves per sweep"
    start_text = {"random": "chains started from the prior",
                  "theory": "chains started from the theory's single-neuron measure"}
    report = {
        "spec": {**spec.to_dict(), "scaling": scaling},
        "comparison": ("equilibrium: " + main["comparison"] + "; " + start_text[starts[0]] + moves
                       + ("; theory-start chains reported side by side in by_start" if init == "both" else "")),
        "theory": theory.to_json(),
        "sampling": main["sampling"],
        "diagnostics": main["diagnostics"],
        "z_max": main["z_max"],
        "passed": bool(all(v["passed"] for v in by_start.values())),
    }
    if init == "both":
        report["by_start"] = by_start
    if "condensate" in theory.extra and spec.nonlinearity == "relu":
        report["theory"]["outlier_share"] = theory_outlier_share(theory.t, t_obs.outputs,
                                                                 theory.extra["condensate"]).tolist()
    if scaling == "mean-field" and "condensate" not in theory.extra:
        tcf = theory_code_fractions(theory, seed=seed)
        report["theory"]["code_fractions"] = tcf
        for entry in by_start.values():
            for w in entry["sampling"]["per_width"]:
                codes = set(tcf) | set(w["code_fractions"])
                w["code_fraction_distance"] = 0.5 * sum(abs(tcf.get(k, 0.0) - w["code_fractions"].get(k, 0.0))
                                                        for k in codes)
    return SamplingReport.from_dict(report, passed=report["passed"], message=report["comparison"],
                                    chains_mixed=all(v["diagnostics"]["chains_converged"] for v in by_start.values()),
                                    time_seconds=time.perf_counter() - t0)


def _run_jobs(jobs, checkpoint, workers, progress):
    """Run the chain jobs through :func:`solvers.sweep.run_sweep` (written to ``checkpoint`` as they
    finish, resumable), or in this process without a file when ``checkpoint`` is None."""
    if checkpoint is None and workers == 1:
        out = []
        for i, job in enumerate(jobs):
            out.append(chain_job(job))
            if progress:
                print(f"\r[validate] chain {i + 1}/{len(jobs)} done", end="", file=sys.stderr, flush=True)
        if progress:
            print("", file=sys.stderr)
        return out
    if checkpoint is None:
        raise ValueError("workers > 1 needs a checkpoint file (the sweep's results file)")
    records = run_sweep(chain_job, jobs, checkpoint, workers=workers,
                        backend="serial" if workers == 1 else "process", progress=progress,
                        metadata={"kind": "codingschemes validate chains"})
    failed = [r for r in records if r["status"] != "ok"]
    if failed:
        raise RuntimeError(f"{len(failed)} chain(s) failed, first: {failed[0]['error']} (see {checkpoint})")
    return [r["result"] for r in records]


def stationarity(spec: ModelSpec, width: int, init_spec: ModelSpec | None = None, chains: int = 4,
                 sweeps: int = 400, step_size: float = 0.3, seed: int = 0,
                 sampler: str = "collapsed") -> StationarityReport:
    """Start every chain from the theory's single-neuron measure and check that it stays there.

    The chains sample the posterior of ``spec``; they start from, and are compared with, the
    theory of ``init_spec`` (default: ``spec``). Passed when every observable averaged over all
    sweeps (no burn-in: stationarity is the claim) is within 4 MCSE + c·max(1, |theory|)/N of that
    theory. A wrong theory (``init_spec`` ≠ ``spec``) should fail: the chains relax away from it.
    Returns a :class:`validation.results.StationarityReport` (``converged`` = "passed").
    """
    t0 = time.perf_counter()
    init_spec = init_spec or spec
    theory = solve(init_spec)
    t_obs = theory.observables
    net = Network(spec, width=width)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(chains):
        theta = theory_start(net, theory, rng)
        draws = [observables_vector(net, theta)]
        for _ in range(sweeps):
            theta, _ = SWEEPS[sampler](rng, net, theta, step_size=step_size, n_mala=5)
            draws.append(observables_vector(net, theta))
        out.append(draws)
    out = np.array(out)
    mean, err = out.mean(axis=(0, 1)), mcse(out)
    cmp = compare(t_obs, mean, err, width, c=C_OVER_N)
    report = {"passed": cmp["passed"], "worst_ratio": cmp["worst"],
              "sampled": from_vector(mean, spec.m, err).to_json(), "theory": t_obs.to_json(),
              "initial": from_vector(out[:, 0].mean(axis=0), spec.m).to_json()}
    return StationarityReport.from_dict(report, passed=cmp["passed"], message=cmp["rule"],
                                        time_seconds=time.perf_counter() - t0)
