"""Deep theory against sampled deep networks, layer by layer (THEORY §5, §7): :func:`validate_deep`
(the deep linear closed form of :mod:`solvers.deep.linear`, or the class-block solver
:mod:`solvers.deep.nonlinear` for nonlinear φ; single width or 1/N extrapolation).

The deep sampling machinery lives in one module per concern and is re-exported here:
:mod:`validation.deep_network` (network, posterior, collapsed target), :mod:`validation.deep_sampler`
(collapsed MALA sweep), :mod:`validation.deep_chain` (chains), :mod:`validation.deep_observables`
(per-layer observables) and :mod:`validation.deep_drift` (drift of the neural patterns).
"""
from __future__ import annotations

import numpy as np

from theory.spec import ModelSpec, SpecError

from .deep_chain import combine_chains, run_deep_chain
from .deep_drift import active_mask, drift_curve, layer_drift, measure_drift
from .deep_network import DeepNetwork, gradient_flops
from .deep_observables import class_mean_activations, layer_observables, observables_vector, split_vector
from .deep_sampler import deep_collapsed_sweep, sample_readout

__all__ = ["DeepNetwork", "sample_readout", "deep_collapsed_sweep", "gradient_flops", "layer_observables",
           "observables_vector", "split_vector", "class_mean_activations", "layer_drift", "drift_curve", "active_mask",
           "run_deep_chain", "combine_chains", "validate_deep", "C_P_OVER_N", "measure_drift"]

# ----------------------------------------------------------------------------- theory against sampling
#: c of the single-width criterion |sampled − theory| <= 4 MCSE + c·max(1, |theory|)·P/N
C_P_OVER_N = 1.0


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


def validate_deep(spec: ModelSpec, layers: int = 2, widths=(100,), chains: int = 2, sweeps: int = 600,
                  burn: int = 150, seed: int = 0, sigmas=None, step_size: float = 0.1) -> dict:
    """Deep theory against sampled deep networks (orthogonal class data, random prior starts,
    :func:`run_deep_chain`), layer by layer: the deep linear closed form
    (:func:`solvers.deep.linear.solve_deep_linear_classes`) for linear φ, the class-block solver
    :func:`solvers.deep.nonlinear.solve_deep_nonlinear` otherwise (its integration-error
    estimate ε is added to the allowance: 4 ε, or in quadrature to the intercept error).

    One width: passed if every observable (f, U, each layer's kernel class diagonal and blocks) is
    within 4 MCSE + c·max(1, |theory|)·P/N (c = :data:`C_P_OVER_N`). Two or more widths: each
    observable is fitted by a + b/N (:func:`validation.compare.extrapolate`) and passes if the
    intercept's z-score is below 4. Either way all split-R̂ must be below 1.1. JSON-ready dict with
    "theory" and "sampling" in the ``"layers"`` schema, per-layer code fractions per width, the
    comparison made and, per observable, the z-scores ("z", flat layout of
    :func:`observables_vector`); for nonlinear φ also, per width and layer, the largest difference
    between the theory's and the sampled code fractions ("code_fractions_max_difference";
    informational, not part of "passed").
    """
    from solvers.deep.linear import solve_deep_linear_classes

    from .compare import extrapolate

    if spec.inputs is not None:
        raise SpecError("validate_deep samples orthogonal class-structured data (inputs=None)")
    if chains < 2:
        raise ValueError(f"chains must be >= 2 for R-hat (got {chains})")
    widths = [int(w) for w in widths]
    if not widths or min(widths) < 1:
        raise ValueError(f"widths must be integers >= 1 (got {widths})")
    if spec.nonlinearity == "linear":
        theory = solve_deep_linear_classes(spec, layers, sigmas)
        tv = _theory_vector(theory, layers)
        terr = np.zeros_like(tv)
    else:
        from solvers.deep.nonlinear import solve_deep_nonlinear

        theory = solve_deep_nonlinear(spec, layers, sigmas, raise_on_failure=True)
        tv = _theory_vector(theory, layers)
        terr = np.asarray(theory.errors, dtype=np.float64)
    m = spec.m
    runs = []
    for N in widths:
        res = [run_deep_chain(spec, N, layers, sweeps, burn, seed=seed + 1000 * c, sigmas=sigmas,
                              step_size=step_size) for c in range(chains)]
        comb = combine_chains(res, m, layers)
        codes = [{k: float(np.mean([r["code_fractions"][ell].get(k, 0.0) for r in res]))
                  for k in sorted(set().union(*(r["code_fractions"][ell] for r in res)))} for ell in range(layers)]
        runs.append({"width": N, **comb["flat"], "rhat_max": comb["rhat_max"], "codes": codes,
                     "acceptance": float(np.mean([r["acceptance"] for r in res])),
                     "step_size": float(np.mean([r["step_size"] for r in res]))})
    if len(widths) >= 2:
        a, sa, _, _ = extrapolate(widths, [r["mean"] for r in runs], [r["mcse"] for r in runs])
        z = np.abs(a - tv) / np.maximum(np.hypot(sa, terr), 1e-12)
        ok = bool(np.all(z < 4.0))
        est, err = a, sa
        comparison = f"1/N extrapolation over N = {widths}: intercept z-scores < 4"
    else:
        r = runs[0]
        allowed = 4 * r["mcse"] + 4 * terr + C_P_OVER_N * np.maximum(1.0, np.abs(tv)) * spec.P / widths[0]
        ok = bool(np.all(np.abs(r["mean"] - tv) <= allowed))
        est, err = r["mean"], r["mcse"]
        z = np.abs(est - tv) / np.maximum(err, 1e-12)
        comparison = (f"single width N = {widths[0]}: |sampled − theory| <= 4 MCSE + "
                      f"{C_P_OVER_N:g}·max(1, |theory|)·P/N")
    rhat = max(r["rhat_max"] for r in runs)
    code_diff = None
    if getattr(theory, "code_fractions", None):  # theory neurons' codes (solvers.deep.nonlinear) vs sampled
        code_diff = [[max(abs(th.get(k, 0.0) - r["codes"][ell].get(k, 0.0)) for k in set(th) | set(r["codes"][ell]))
                      for ell, th in enumerate(theory.code_fractions)] for r in runs]
    return {"spec": {**spec.to_dict(), "layers": layers, "sigmas": list(theory.sigmas)},
            "code_fractions_max_difference": code_diff,
            "theory": theory.to_json(), "sampling": _json_block(est, m, layers, err),
            "per_width": [{"width": r["width"], **_json_block(r["mean"], m, layers, r["mcse"]),
                           "code_fractions": r["codes"], "acceptance": r["acceptance"], "step_size": r["step_size"],
                           "rhat_max": r["rhat_max"]} for r in runs],
            "comparison": "equilibrium, chains started from the prior: " + comparison,
            "z_max": float(np.max(z)), "z": z.tolist(), "rhat_max": rhat, "passed": ok and rhat < 1.1}
