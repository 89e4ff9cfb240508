"""Deep networks started from the theory's per-layer single-neuron measures; the stationarity test.

THEORY §5 and §7. The neurons of layer ℓ decouple, each drawing its preactivations on the P
training inputs from the layer measure; for a linear network these are Gaussian:

    layers ℓ < L:  h^ℓ ~ N(0, K_ℓ)   (K_ℓ = (K_{ℓ-1}⁻¹/σ_ℓ² − K̃_ℓ)⁻¹, self-consistently the kernel),
    layer L:       a ~ N(0, U),   h^L | a ~ N(σ_L² K_{L-1} t a, σ_L² K_{L-1}),

with K_0 = I for orthogonal class data and the class-block K_ℓ, U, t of
:func:`solvers.deep.linear.solve_deep_linear_classes`.

Weights realising the drawn preactivations: the posterior depends on W^ℓ only through
H^ℓ = W^ℓ Φ_{ℓ-1}/√N, so W^ℓ | H^ℓ is the prior conditioned on that linear constraint
(Matheron's rule, exact): with Z ~ prior,

    W^ℓ = Z + (H^ℓ − Z Φ_{ℓ-1}/√N) (Φ_{ℓ-1}ᵀΦ_{ℓ-1}/N)⁻¹ Φ_{ℓ-1}ᵀ/√N,

built layer by layer on the activations Φ_{ℓ-1} = φ(H^{ℓ-1}) actually realised. For orthogonal
inputs x_μ = √P e_μ (N0 = P), H¹ = W¹, so W¹ = H¹.

:func:`deep_stationarity`: chains started there must stay at the theory (f, U, every layer's
kernel) within 4 MCSE + c·max(1, |theory|)/N, c = :data:`validation.report.C_OVER_N` (the
one-layer stationarity criterion, :func:`validation.compare.compare`: the right theory starts at
equilibrium, so only the O(1/N) finite-width bias separates it from the chains); a theory for
another temperature, used as start and reference, must fail.

Nonlinear φ (relu and smooth bounded φ): the theory is :func:`solvers.deep.nonlinear.solve_deep_nonlinear`
and each layer's neurons come from its class-block single-neuron measure
(:mod:`validation.deep_theory_sample`: y = (v, w) by importance resampling from the solver's
proposal, ESS reported; h_μ = ξ_c + s_c z_μ with z_μ from the 1-D tilted law); the weights are
conditioned on Φ_{ℓ-1} = φ(H^{ℓ-1}) as above, and the allowance adds 4 ε (the theory's
integration-error estimate). A deep ReLU saddle that is a KKT point (``theory.kkt``) starts its truncated bulk plus
one outlier per active maximiser of the first layer's and the readout's condensate
(:mod:`validation.deep_condensate_start`). Each chain keeps the O(N^{-1/2}) code fractions of its own theory
draw (no drift in the last layer, THEORY §7), so R̂ over chains is reported but not part of the
rule; ``swaps`` last-layer independence moves per sweep (:mod:`validation.deep_swaps`) let the
last layer's codes mix. Measured ratios and R̂: docs/devlog.md.
"""
from __future__ import annotations

import time

import numpy as np

from solvers.progress import restaged
from theory.nonlinearities import get_nonlinearity
from theory.observables import full_kernel
from theory.checks import check_int
from theory.spec import ModelSpec, SpecError, class_labels

from .compare import compare
from .deep import (DeepNetwork, _json_block, _theory_vector, combine_chains, deep_theory, is_linear_theory,
                   theory_error)
from .deep_chain import code_fraction_difference, mean_code_fractions
from .deep_condensate_start import condensate_prediction, kkt_of
from .deep_outliers import LastLayerOutliers, combine_outliers, lower_summary
from .layer_moves import check_layer_moves, check_layer_pairs, combine_layer_moves, layer_moves_text
from .observables import code_fractions, neuron_codes
from .reflections import check_reflections, combine_reflections, reflections_text
from .report import C_OVER_N
from .results import DeepStationarityReport
from .tempering import T_MAX, check_tempering, combine_tempering, run_chain_with_moves

__all__ = ["layer_preactivations", "theory_layer_code_fractions", "deep_theory_state", "deep_theory",
           "deep_stationarity"]


def _gaussian_rows(rng, n, cov):
    w, V = np.linalg.eigh(0.5 * (cov + cov.T))
    if w.min() < -1e-10 * max(1.0, w.max()):
        raise SpecError(f"theory kernel is not positive semi-definite (smallest eigenvalue {w.min():.3g})")
    return rng.standard_normal((n, len(w))) * np.sqrt(np.clip(w, 0, None)) @ V.T


def _condition_weights(rng, H, Phi_prev, sigma):
    """Rows w_i ~ N(0, σ² I) conditioned on w_i Φ/√N = h_i (Matheron's rule)."""
    N = Phi_prev.shape[0]
    A = Phi_prev / np.sqrt(N)  # N × P
    Z = sigma * rng.standard_normal((H.shape[0], N))
    G = A.T @ A
    return Z + np.linalg.solve(G, (H - Z @ A).T).T @ A.T


def _check_theory(spec: ModelSpec, theory, sigmas):
    if spec.inputs is not None:
        raise SpecError("deep theory starts are implemented for orthogonal class data (inputs=None)")
    if is_linear_theory(theory):
        if spec.nonlinearity != "linear":
            raise SpecError(f"a deep linear theory (DeepLinearClassSolution) cannot start a {spec.nonlinearity!r} "
                            "network: use solvers.deep.nonlinear.solve_deep_nonlinear for nonlinear φ")
    elif theory.spec.nonlinearity != spec.nonlinearity:
        raise SpecError(f"theory is for φ = {theory.spec.nonlinearity!r}, the network has {spec.nonlinearity!r}")
    if len(theory.sigmas) != len(sigmas) or theory.spec.class_sizes != spec.class_sizes:
        raise SpecError(f"theory has layers = {len(theory.sigmas)} and classes {theory.spec.class_sizes}; the network "
                        f"{len(sigmas)} and {spec.class_sizes}")


def layer_preactivations(spec: ModelSpec, theory, sigmas, n: int, rng: np.random.Generator):
    """Preactivations of ``n`` neurons per hidden layer on the P training inputs, drawn from the deep
    theory's per-layer measures (module docstring): ([H¹, ..., H^L], each n × P; readouts a, m × n).
    ``theory``: a :class:`solvers.deep.linear.DeepLinearClassSolution` (linear φ, Gaussian layers) or a
    :class:`solvers.deep.nonlinear.DeepNonlinearSolution` (:mod:`validation.deep_theory_sample`)."""
    _check_theory(spec, theory, sigmas)
    if not is_linear_theory(theory):
        from .deep_theory_sample import nonlinear_layer_neurons

        layers = nonlinear_layer_neurons(theory, n, rng)
        return [lay["h"] for lay in layers], layers[-1]["a"].T
    L, sizes, lab = len(sigmas), spec.class_sizes, class_labels(spec.class_sizes)
    kernels = [full_kernel(sizes, o.kernel_diagonal, o.kernel_blocks)
               for o in (theory.layer_observables(ell) for ell in range(1, L + 1))]
    Hs = [_gaussian_rows(rng, n, kernels[ell]) for ell in range(L - 1)]
    a = _gaussian_rows(rng, n, np.asarray(theory.readout_moment)).T  # m × n
    K_prev = kernels[L - 2] if L >= 2 else np.eye(spec.P)
    t = np.zeros((spec.P, spec.m))
    t[np.arange(spec.P), lab] = np.asarray(theory.tau)[lab]
    s2 = sigmas[L - 1] ** 2
    Hs.append((s2 * K_prev @ t @ a).T + _gaussian_rows(rng, n, s2 * K_prev))
    return Hs, a


def theory_layer_code_fractions(spec: ModelSpec, theory, sigmas, n: int = 20000, seed: int = 0) -> list:
    """Per hidden layer, the theory's fraction of neurons per code: ``n`` neurons from the layer
    measure, coded like the sampled network (class-mean activations φ over the P_c inputs of each
    class, :func:`validation.observables.neuron_codes`); statistical error about √(f(1−f)/n)."""
    Hs, _ = layer_preactivations(spec, theory, sigmas, n, np.random.default_rng(seed))
    lab = class_labels(spec.class_sizes)
    phi = get_nonlinearity(spec.nonlinearity)
    out = []
    for H in Hs:
        A = phi(H)
        means = np.stack([A[:, lab == c].mean(axis=1) for c in range(spec.m)], axis=1)
        out.append(code_fractions(neuron_codes(means), spec.m))
    return out


def deep_theory_state(net: DeepNetwork, theory, rng: np.random.Generator) -> np.ndarray:
    """θ of ``net`` with every layer's neurons drawn from the deep theory (module docstring): W¹ = H¹,
    W^ℓ conditioned on H^ℓ = W^ℓ φ(H^{ℓ-1})/√N (needs N >= P)."""
    spec = net.spec
    if net.shapes[0][1] != spec.P:
        raise SpecError("orthogonal inputs expected (N0 = P)")
    if net.layers >= 2 and net.width < spec.P:
        raise SpecError(f"width must be >= P = {spec.P} to condition the weights on the drawn preactivations "
                        f"(got {net.width})")
    Hs, a = layer_preactivations(spec, theory, net.sigmas, net.width, rng)
    Ws = [Hs[0] * np.sqrt(spec.P) / net.inputs[0, 0]]  # H¹ = W¹ Xᵀ/√N0 = W¹ (x_μ = √P e_μ)
    for ell in range(2, net.layers + 1):
        Phi = Hs[ell - 2] if spec.nonlinearity == "linear" else net.nonlinearity(Hs[ell - 2])
        Ws.append(_condition_weights(rng, Hs[ell - 1], Phi, net.sigmas[ell - 1]))
    return net.pack(Ws, a)


def _layer_ess(theory, seed: int) -> list:
    """Per layer, the Kish ESS fraction of the importance resampling of (v, w) (2000 neurons)."""
    from .deep_theory_sample import nonlinear_layer_neurons

    return [lay["ess"] for lay in nonlinear_layer_neurons(theory, 2000, np.random.default_rng([seed, 3]))]


def deep_stationarity(spec: ModelSpec, layers: int = 2, width: int = 200, chains: int = 2, sweeps: int = 300,
                      burn: int = 50, init_spec: ModelSpec | None = None, seed: int = 0, theory=None,
                      swaps: int = 0, outlier_moves: int = 0, tempering: int = 0, tempering_t_max: float = T_MAX,
                      progress=None, reflections: int = 0, hidden_reflections: int = 0,
                      contrast_reflections: int = 0, layer_moves: int = 0,
                      layer_pairs: int = 0) -> DeepStationarityReport:
    """Start chains at the deep theory of ``init_spec`` (default ``spec``; or the given ``theory``),
    sample ``spec``.

    The first ``burn`` sweeps adapt the step only (the state starts at equilibrium if the theory is
    right); all later sweeps are compared with that theory within 4 MCSE + 4 ε + C_OVER_N·max(1,
    |theory|)/N (ε: the theory's integration-error estimate, 0 for linear φ). Returns a
    :class:`validation.results.DeepStationarityReport` (``converged`` = "passed") with entries {"passed",
    "z_max", "worst" (largest |sampled − theory| / allowed), "ratio" (per observable, flat layout of
    :func:`validation.deep.observables_vector`), "rhat_max", "sampling" (with MCSE), "theory",
    "code_fractions" (per layer: theory neurons, sampled chains, largest difference; informational),
    "ess" (nonlinear φ: per layer importance-resampling ESS fraction), "comparison"}. ``swaps`` > 0
    (nonlinear φ): that many last-layer independence moves per sweep (:mod:`validation.deep_swaps`);
    ``outlier_moves`` > 0: that many pair rotations of the last layer's weights per sweep
    (:mod:`validation.outlier_moves`). "outliers": the last layer's outliers and top-5 % output share
    (:mod:`validation.deep_outliers`). ``tempering`` = K >= 2: each chain is rung 0 of K replicas up to
    ``tempering_t_max`` exchanging states (:mod:`validation.tempering`; the hotter rungs start at the
    chain's theory draw); "tempering" reports the ladder, exchange acceptance per pair and round trips.
    ``reflections`` = K > 0: K last-layer flips W^L_i → −W^L_i per sweep, ``hidden_reflections``: joint flips
    of (W^ℓ_i, W^{ℓ+1}_{:,i}) per hidden layer ℓ < L, ``contrast_reflections``: last-layer class-contrast
    reflections (:mod:`validation.reflections`); "reflections" reports the acceptance per layer. ``layer_moves`` = K:
    K passes per sweep of :mod:`validation.layer_moves` in every hidden layer below the last; "layer_moves" reports
    their acceptance per layer and kind; ``layer_pairs`` = K: K pair rotations per sweep in each of those layers
    (:mod:`validation.layer_pairs`). A theory with ``kkt`` (deep ReLU KKT saddle) adds "condensate":
    {"theory": :func:`validation.deep_condensate_start.condensate_prediction`, "sampling":
    :func:`validation.deep_outliers.lower_summary` of every record (the lower layers' outlier rows and codes)}.
    """
    check_int("swaps", swaps, 0)
    check_int("outlier_moves", outlier_moves, 0)
    tempering = check_tempering(tempering, spec.temperature, tempering_t_max)
    reflections = check_reflections(reflections, spec.nonlinearity, hidden_reflections, contrast_reflections)
    layer_moves = check_layer_moves(layer_moves, layers, (width,), spec.P)
    layer_pairs = check_layer_pairs(layer_pairs, layers, (width,), spec.P)
    t0 = time.perf_counter()
    init_spec = init_spec or spec
    theory = theory if theory is not None else deep_theory(init_spec, layers)
    if swaps > 0 and is_linear_theory(theory):
        raise SpecError("swaps (last-layer independence moves) need the class-block theory of a nonlinear φ "
                        "(linear networks have no codes to change)")
    net = DeepNetwork(spec, width=width, layers=layers)
    kkt = kkt_of(theory)
    hooks = [LastLayerOutliers(outlier_moves, lower=kkt is not None) for _ in range(chains)]
    temper = {"rungs": tempering, "t_max": tempering_t_max, "progress": progress} if tempering else None
    res = [_stationarity_chain(spec, net, theory, c, sweeps, burn, seed, swaps, hooks[c], temper, reflections,
                               (layer_moves, layer_pairs))
           for c in range(chains)]
    comb = combine_chains(res, spec.m, layers)
    mean, err = comb["flat"]["mean"], comb["flat"]["mcse"]
    cmp = compare(_theory_vector(theory, layers), mean, err, width, c=C_OVER_N,
                  theory_error=theory_error(theory))
    th_codes = theory_layer_code_fractions(theory.spec, theory, net.sigmas, n=20000, seed=seed)
    sa_codes = mean_code_fractions(res, layers)
    diff = [code_fraction_difference(th, sa) for th, sa in zip(th_codes, sa_codes)]
    report = {"passed": cmp["passed"], "worst": cmp["worst"], "z_max": cmp["z_max"], "rhat_max": comb["rhat_max"],
              "ratio": cmp["ratio"].tolist(), "rhat": comb["flat"]["rhat"].tolist(),
              "sampling": _json_block(mean, spec.m, layers, err), "theory": theory.to_json(),
              "swap_acceptance": [r.get("swap_acceptance") for r in res] if swaps > 0 else None,
              "code_fractions": {"theory": th_codes, "sampling": sa_codes, "max_difference": diff},
              "outliers": combine_outliers([h.summary() for h in hooks]),
              **({"condensate": _condensate_report(kkt, hooks)} if kkt is not None else {}),
              **({"tempering": combine_tempering(res)} if tempering else {}),
              **({"reflections": combine_reflections([r["reflections"] for r in res])} if any(reflections) else {}),
              **({"layer_moves": combine_layer_moves([r["layer_moves"] for r in res])}
                 if layer_moves or layer_pairs else {}),
              "ess": None if is_linear_theory(theory) else _layer_ess(theory, seed),
              "comparison": (f"stationarity: chains started from the theory of T = {init_spec.temperature:g}, "
                             + (f"{outlier_moves} last-layer pair rotations per sweep, " if outlier_moves else "")
                             + reflections_text(*reflections, lead="", tail=", ")
                             + layer_moves_text(layer_moves, lead="", tail=", ", pairs=layer_pairs)
                             + (f"replica exchange in T over {tempering} rungs up to T = {tempering_t_max:g}, "
                                if tempering else "")
                             + f"{cmp['criterion']}, N = {width}")}
    return DeepStationarityReport.from_dict(report, passed=cmp["passed"], message=report["comparison"],
                                            time_seconds=time.perf_counter() - t0)


def _condensate_report(kkt, hooks) -> dict:
    """The ``condensate`` block of :func:`deep_stationarity`: what the KKT saddle ``kkt`` predicts
    (:func:`validation.deep_condensate_start.condensate_prediction`) and what the chains' ``hooks`` recorded in the
    layers below the last (:func:`validation.deep_outliers.lower_summary` over every record)."""
    return {"theory": condensate_prediction(kkt), "sampling": lower_summary([h.summary() for h in hooks], 1.0)}


def _stationarity_chain(spec, net, theory, c, sweeps, burn, seed, swaps, hook, temper=None,
                        reflections=(0, 0, 0), layer_moves=(0, 0)):
    """Chain ``c`` of :func:`deep_stationarity`: from a theory draw, with last-layer swaps if ``swaps``,
    then the :class:`validation.deep_outliers.LastLayerOutliers` ``hook`` after every sweep; ``temper``
    ({"rungs", "t_max", "progress"}): replica exchange in T (:func:`validation.tempering.run_tempered_chain`);
    ``reflections``: (last-layer, hidden-layer, class-contrast) reflections per sweep
    (:mod:`validation.reflections`); ``layer_moves``: (passes of :mod:`validation.layer_moves`, pair rotations of
    :mod:`validation.layer_pairs`) per sweep."""
    rng = np.random.default_rng([seed, c, 7])
    theta0 = deep_theory_state(net, theory, rng)
    temper = temper or {"rungs": 0, "t_max": T_MAX, "progress": None}
    return run_chain_with_moves(spec, net.width, net.layers, sweeps, burn, theory=theory, swaps=swaps,
                                rungs=temper["rungs"], t_max=temper["t_max"],
                                progress=restaged(temper["progress"], f"tempering chain {c}"),
                                seed=seed + 1000 * c, theta0=theta0, after_sweep=hook,
                                reflections=reflections[0], hidden_reflections=reflections[1],
                                contrast_reflections=reflections[2], contrast_from=burn // 2,
                                layer_moves=layer_moves[0], layer_pairs=layer_moves[1])
