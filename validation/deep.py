"""Deep theory against sampled deep networks, layer by layer (THEORY §5, §7): :func:`validate_deep`
(the deep linear closed form of :mod:`solvers.deep.linear`, or the class-block solver
:mod:`solvers.deep.nonlinear` for nonlinear φ; single width or 1/N extrapolation).

The deep sampling machinery lives in one module per concern and is re-exported here:
:mod:`validation.deep_network` (network, posterior, collapsed target), :mod:`validation.deep_sampler`
(collapsed MALA sweep), :mod:`validation.deep_chain` (chains), :mod:`validation.deep_observables`
(per-layer observables) and :mod:`validation.deep_drift` (drift of the neural patterns).
"""
from __future__ import annotations

import time

import numpy as np

from solvers.progress import restaged
from theory.checks import check_int
from theory.spec import ModelSpec, SpecError

from .compare import compare
from .deep_chain import code_fraction_difference, combine_chains, mean_code_fractions, run_deep_chain
from .deep_drift import active_mask, drift_curve, layer_drift, measure_drift
from .deep_network import DeepNetwork, gradient_flops
from .deep_observables import class_mean_activations, layer_observables, observables_vector, split_vector
from .deep_outliers import LastLayerOutliers, combine_outliers
from .deep_sampler import deep_collapsed_sweep, sample_readout
from .diagnostics import mcse, rhat_rule
from .layer_moves import check_layer_moves, check_layer_pairs, combine_layer_moves, layer_moves_text
from .reflections import check_reflections, combine_reflections, reflections_text
from .results import DeepValidationReport
from .tempering import T_MAX, check_tempering, combine_tempering, run_chain_with_moves

__all__ = ["DeepNetwork", "sample_readout", "deep_collapsed_sweep", "gradient_flops", "layer_observables",
           "observables_vector", "split_vector", "class_mean_activations", "layer_drift", "drift_curve", "active_mask",
           "run_deep_chain", "combine_chains", "validate_deep", "C_P_OVER_N", "measure_drift", "deep_theory",
           "is_linear_theory", "theory_error", "RHAT_MAX", "RHAT_WHY"]

# ----------------------------------------------------------------------------- theory against sampling
#: c of the single-width criterion |sampled − theory| <= 4 MCSE + c·max(1, |theory|)·P/N
C_P_OVER_N = 1.0
#: chains count as converged (and the report can pass) only when every rank-normalised R̂ is below this
#: (weaker than the target 1.01 of validation.diagnostics: RHAT_WHY says why; docs/devlog.md)
RHAT_MAX = 1.1
RHAT_WHY = ("R-hat < 1.01 is not reached at the default settings (L = 2, classes 8,4,4, T = 0.5, N = 100, "
            "2 chains x 600 sweeps: max 1.076 for relu, 1.047 for linear)")


def _theory_vector(theory, layers: int) -> np.ndarray:
    parts = [np.asarray(theory.outputs).ravel(), np.asarray(theory.readout_moment).ravel()]
    for ell in range(1, layers + 1):
        o = theory.layer_observables(ell)
        parts += [o.kernel_diagonal, o.kernel_blocks.ravel()]
    return np.concatenate(parts)


def _json_block(v, m, layers, errors=None) -> dict:
    d = split_vector(v, m, layers)
    e = split_vector(errors, m, layers) if errors is not None else None
    out = {"outputs": d["outputs"].tolist(), "readout_moment": d["readout_moment"].tolist(),
           "layers": [{"layer": ell + 1, "kernel_diagonal": lay["kernel_diagonal"].tolist(),
                       "kernel_blocks": lay["kernel_blocks"].tolist()} for ell, lay in enumerate(d["layers"])]}
    if e is not None:
        out["errors"] = {"outputs": e["outputs"].tolist(), "readout_moment": e["readout_moment"].tolist(),
                         "layers": [{"kernel_diagonal": lay["kernel_diagonal"].tolist(),
                                     "kernel_blocks": lay["kernel_blocks"].tolist()} for lay in e["layers"]]}
    return out


def deep_theory(spec: ModelSpec, layers: int, options=None, sigmas=None):
    """The deep theory of ``spec``: the linear closed form
    (:func:`solvers.deep.linear.solve_deep_linear_classes`) or :func:`solvers.deep.nonlinear.solve_deep_nonlinear`
    (raises :class:`solvers.deep.nonlinear.DeepNonlinearError` if it does not converge)."""
    if spec.nonlinearity == "linear":
        from solvers.deep.linear import solve_deep_linear_classes

        return solve_deep_linear_classes(spec, layers, sigmas)
    from solvers.deep.nonlinear import solve_deep_nonlinear

    return solve_deep_nonlinear(spec, layers, sigmas, options=options, raise_on_failure=True)


def is_linear_theory(theory) -> bool:
    """True for the deep linear closed form (no integration error, no codes)."""
    from solvers.deep.linear import DeepLinearClassSolution

    return isinstance(theory, DeepLinearClassSolution)


def theory_error(theory):
    """ε per observable (flat layout of :func:`observables_vector`): the nonlinear solver's integration-error
    estimate, None for the linear closed form."""
    return None if is_linear_theory(theory) else np.asarray(theory.errors, dtype=np.float64)


def _width_runs(spec, layers, widths, chains, sweeps, burn, seed, sigmas, step_size, outlier_moves=0, swaps=0,
                theory=None, tempering=0, t_max=T_MAX, progress=None, reflections=(0, 0, 0), layer_moves=0,
                layer_pairs=0) -> list:
    """Per width: chains from the prior, combined (:func:`combine_chains`), with mean code fractions
    and the last layer's outliers (:mod:`validation.deep_outliers`, ``outlier_moves`` pair rotations
    per sweep); ``swaps`` > 0: that many last-layer independence moves from ``theory`` per sweep
    (:func:`validation.deep_swaps.run_deep_chain_with_swaps`); ``tempering`` >= 2: that many rungs of
    replica exchange in T up to ``t_max`` (:func:`validation.tempering.run_tempered_chain`; 0: off);
    ``reflections``: (last-layer, hidden-layer, class-contrast) reflections per sweep
    (:mod:`validation.reflections`); ``layer_moves``: passes of :mod:`validation.layer_moves` per sweep,
    ``layer_pairs`` pair rotations per sweep (:mod:`validation.layer_pairs`)."""
    runs = []
    for N in widths:
        res, hooks = [], []
        for c in range(chains):
            hooks.append(LastLayerOutliers(outlier_moves))
            res.append(run_chain_with_moves(spec, N, layers, sweeps, burn, theory=theory, swaps=swaps, rungs=tempering,
                                            t_max=t_max, progress=restaged(progress, f"tempering N={N} chain {c}"),
                                            seed=seed + 1000 * c, step_size=step_size, sigmas=sigmas,
                                            after_sweep=hooks[-1], reflections=reflections[0],
                                            hidden_reflections=reflections[1], contrast_reflections=reflections[2],
                                            contrast_from=burn // 2, layer_moves=layer_moves,
                                            layer_pairs=layer_pairs))
        comb = combine_chains(res, spec.m, layers)
        runs.append({"width": N, **comb["flat"], "rhat_max": comb["rhat_max"], "chains": res,
                     "outliers": combine_outliers([h.summary() for h in hooks]),
                     "codes": mean_code_fractions(res, layers),
                     "acceptance": float(np.mean([r["acceptance"] for r in res])),
                     "step_size": float(np.mean([r["step_size"] for r in res]))})
        if swaps:
            runs[-1]["swap_acceptance"] = float(np.mean([r["swap_acceptance"] for r in res]))
        if tempering:
            runs[-1]["tempering"] = combine_tempering(res)
        if any(reflections):
            runs[-1]["reflections"] = combine_reflections([r["reflections"] for r in res])
        if layer_moves or layer_pairs:
            runs[-1]["layer_moves"] = combine_layer_moves([r["layer_moves"] for r in res])
    return runs


def _chain_block(res: dict) -> dict:
    """One chain's own mean and MCSE (flat layout of :func:`observables_vector`) and code fractions."""
    draws = np.asarray(res["draws"])
    return {"mean": draws.mean(axis=0), "mcse": mcse(draws[None]), "code_fractions": res["code_fractions"]}


def _width_json(r: dict, m: int, layers: int, per_chain: bool) -> dict:
    """One width's block of the report: means and MCSE (``"layers"`` schema), codes, sampler diagnostics and, where
    the moves ran, their acceptance records."""
    out = {"width": r["width"], **_json_block(r["mean"], m, layers, r["mcse"]), "code_fractions": r["codes"],
           "acceptance": r["acceptance"], "step_size": r["step_size"], "rhat_max": r["rhat_max"],
           "outliers": r["outliers"]}
    out.update({k: r[k] for k in ("swap_acceptance", "tempering", "reflections", "layer_moves") if k in r})
    if per_chain:
        out["chains"] = [_chain_block(ch) for ch in r["chains"]]
    return out


def _comparison_text(swaps, outlier_moves, reflections, layer_moves, layer_pairs, tempering, t_max) -> str:
    """The report's "comparison" sentence: how the chains were run."""
    return ("equilibrium, chains started from the prior"
            + (f", {swaps} last-layer swaps per sweep" if swaps else "")
            + (f", {outlier_moves} last-layer pair rotations per sweep" if outlier_moves else "")
            + reflections_text(*reflections) + layer_moves_text(layer_moves, pairs=layer_pairs)
            + (f", replica exchange in T over {tempering} rungs up to T = {t_max:g}" if tempering else ""))


def _checked_settings(spec, layers, widths, chains, outlier_moves, swaps, tempering, t_max, reflections, layer_moves,
                      layer_pairs) -> tuple:
    """The sampling settings of :func:`validate_deep` checked before the theory is solved (a clear error naming the
    parameter and its range): (widths, tempering, reflections, layer_moves, layer_pairs), normalised."""
    if spec.inputs is not None:
        raise SpecError("validate_deep samples orthogonal class-structured data (inputs=None)")
    if chains < 2:
        raise ValueError(f"chains must be >= 2 for R-hat (got {chains})")
    widths = [int(w) for w in widths]
    if not widths or min(widths) < 1:
        raise ValueError(f"widths must be integers >= 1 (got {widths})")
    check_int("outlier_moves", outlier_moves, 0)
    check_int("swaps", swaps, 0)
    if swaps and spec.nonlinearity == "linear":
        raise SpecError("swaps (last-layer independence moves) need a nonlinear φ (linear networks have no codes)")
    return (widths, check_tempering(tempering, spec.temperature, t_max),
            check_reflections(reflections[0], spec.nonlinearity, reflections[1], reflections[2]),
            check_layer_moves(layer_moves, layers, widths, spec.P), check_layer_pairs(layer_pairs, layers, widths, spec.P))


def validate_deep(spec: ModelSpec, layers: int = 2, widths=(100,), chains: int = 2, sweeps: int = 600,
                  burn: int = 150, seed: int = 0, sigmas=None, step_size: float = 0.1,
                  outlier_moves: int = 0, swaps: int = 0, tempering: int = 0, tempering_t_max: float = T_MAX,
                  progress=None, theory=None, per_chain: bool = False, reflections: int = 0,
                  hidden_reflections: int = 0, contrast_reflections: int = 0,
                  layer_moves: int = 0, layer_pairs: int = 0) -> DeepValidationReport:
    """Deep theory against sampled deep networks (orthogonal class data, random prior starts,
    :func:`run_deep_chain`), layer by layer: the deep linear closed form
    (:func:`solvers.deep.linear.solve_deep_linear_classes`) for linear φ, the class-block solver
    :func:`solvers.deep.nonlinear.solve_deep_nonlinear` otherwise (its integration-error
    estimate ε is added to the allowance: 4 ε, or in quadrature to the intercept error).

    One width: passed if every observable (f, U, each layer's kernel class diagonal and blocks) is
    within 4 MCSE + c·max(1, |theory|)·P/N (c = :data:`C_P_OVER_N`). Two or more widths: each
    observable is fitted by a + b/N (:func:`validation.compare.extrapolate`) and passes if the
    intercept's z-score is below 4 (:func:`validation.compare.compare`). Either way every
    rank-normalised split-R̂ must be below :data:`RHAT_MAX` ("rhat_rule" states it). Returns a
    :class:`validation.results.DeepValidationReport` (``converged`` = "passed") with JSON-ready entries
    "theory" and "sampling" in the ``"layers"`` schema, per-layer code fractions per width, the
    comparison made and, per observable, the z-scores ("z", flat layout of
    :func:`observables_vector`); for nonlinear φ also, per width and layer, the largest difference
    between the theory's and the sampled code fractions ("code_fractions_max_difference";
    informational, not part of "passed"). ``outlier_moves``: pair rotations of the last layer's
    weights per sweep (:mod:`validation.outlier_moves`, exact); per width "outliers" reports the last
    layer's outliers and top-5 % output share (:mod:`validation.deep_outliers`) with or without them.
    ``swaps`` (nonlinear φ): last-layer independence moves from the theory per sweep
    (:mod:`validation.deep_swaps`, exact), which let the last layer's codes change; per width
    "swap_acceptance". ``tempering`` = K >= 2: every chain is rung 0 of K replicas on a geometric ladder
    from T up to ``tempering_t_max`` that exchange states (:mod:`validation.tempering`, exact); per
    width "tempering" (ladder, exchange acceptance per pair, round trips); ``progress``: the
    :mod:`solvers.progress` callback, one stage per tempered chain. ``theory``: the deep theory of ``spec``
    already solved (default: :func:`deep_theory`); ``per_chain``: per width also "chains", each chain's own
    mean, MCSE and code fractions (for the multi-saddle rule of :mod:`validation.deep_saddles`).
    ``reflections`` = K > 0 (φ with φ(−h) = s − φ(h): normcdf, erf, tanh): K flips W^L_i → −W^L_i of the last
    layer per sweep (:mod:`validation.reflections`, exact); ``hidden_reflections`` = K: K joint flips
    (W^ℓ_i, W^{ℓ+1}_{:,i}) → −(...) in every hidden layer ℓ < L per sweep; per width "reflections" (acceptance
    per layer); ``contrast_reflections`` = K: K Householder reflections of last-layer rows along a class's
    contrast direction per sweep, from halfway through burn-in on (any φ; "reflections" then has "contrast").
    ``layer_moves`` = K: K passes per sweep of the moves of :mod:`validation.layer_moves` (each neuron of every
    hidden layer below the last changed at fixed next-layer preactivations, then the next layer's weights drawn
    again; exact), from halfway through burn-in on; per width "layer_moves" (acceptance per layer and kind).
    ``layer_pairs`` = K: K pair rotations per sweep in each of those layers (:mod:`validation.layer_pairs`, exact;
    they create, remove and move a layer's ReLU outliers), reported with the layer moves as kind "pair".
    """
    t0 = time.perf_counter()
    widths, tempering, reflections, layer_moves, layer_pairs = _checked_settings(
        spec, layers, widths, chains, outlier_moves, swaps, tempering, tempering_t_max,
        (reflections, hidden_reflections, contrast_reflections), layer_moves, layer_pairs)
    theory = theory if theory is not None else deep_theory(spec, layers, sigmas=sigmas)
    m = spec.m
    runs = _width_runs(spec, layers, widths, chains, sweeps, burn, seed, sigmas, step_size, outlier_moves, swaps,
                       theory, tempering, tempering_t_max, progress, reflections, layer_moves, layer_pairs)
    cmp = compare(_theory_vector(theory, layers), [r["mean"] for r in runs], [r["mcse"] for r in runs], widths,
                  c=C_P_OVER_N, size=spec.P, theory_error=theory_error(theory))
    rule = rhat_rule(max(r["rhat_max"] for r in runs), RHAT_MAX, RHAT_WHY)
    code_diff = None
    if getattr(theory, "code_fractions", None):  # theory neurons' codes (solvers.deep.nonlinear) vs sampled
        code_diff = [[code_fraction_difference(th, r["codes"][ell]) for ell, th in enumerate(theory.code_fractions)]
                     for r in runs]
    report = {"spec": {**spec.to_dict(), "layers": layers, "sigmas": list(theory.sigmas)},
              "code_fractions_max_difference": code_diff,
              "theory": theory.to_json(), "sampling": _json_block(cmp["estimate"], m, layers, cmp["error"]),
              "per_width": [_width_json(r, m, layers, per_chain) for r in runs],
              "comparison": _comparison_text(swaps, outlier_moves, reflections, layer_moves, layer_pairs, tempering,
                                             tempering_t_max) + ": " + cmp["rule"],
              "z_max": cmp["z_max"], "z": cmp["z"].tolist(), "rhat_max": rule["rhat_max"], "rhat_rule": rule,
              "passed": bool(cmp["passed"] and rule["met"])}
    return DeepValidationReport.from_dict(report, passed=report["passed"], message=report["comparison"],
                                          chains_mixed=rule["met"], time_seconds=time.perf_counter() - t0)
