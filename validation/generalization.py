"""Sampled finite networks on real data: test predictions and generalization errors at width N.

Mean-field scaling (γ = 1, β = N/T, THEORY §1), one hidden layer of width N on the
training inputs of a :class:`~theory.spec.ModelSpec`. Each chain starts from the prior and
runs the collapsed sweep (:func:`validation.collapsed.collapsed_sweep`: MALA on W with
the readout integrated out, then a | W exactly); during burn-in the MALA step is adapted
toward acceptance 0.6 (multiplicatively, burn-in only, so the sampling phase is exact).

Every post-burn-in sweep records the test outputs f(x*) = N⁻¹ Σ_i a_i φ(w_i·x*/√N0). From
these draws (chains × draws × n* × m):

* mean predictor f̄(x*) = draw average, with its MCSE (sd/√ESS over chains and draws,
  :func:`validation.diagnostics.mcse`);
* posterior variance Σ_r Var[f_r(x*)] at width N (pooled over draws; it vanishes as
  N → ∞ in the mean-field scaling), with an MCSE from per-chain variances;
* per-class ``mean_predictor_error`` and ``bayes_error`` (:func:`theory.general.class_errors`),
  bulk ESS and rank-normalised split-R̂ of the test outputs.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from threadpoolctl import threadpool_limits

from theory.general import class_errors
from theory.nonlinearities import get_nonlinearity
from theory.spec import ModelSpec, SpecError

from .collapsed import collapsed_sweep
from .diagnostics import ess, mcse, rhat_rank
from .networks import Network
from .results import GeneralizationReport

__all__ = ["sample_generalization", "generalization_report"]


def _test_outputs(net: Network, theta: np.ndarray, Xs_scaled: np.ndarray):
    W, a = net.unpack(theta)
    phi = net.nonlinearity(W @ Xs_scaled.T)  # N × n*
    return (a @ phi).T / net.width, phi


def _chain(spec, Xs_scaled, width, c, chains, sweeps, burn, step_size, seed, progress, kern):
    """Chain ``c`` of ``chains``: (test outputs per kept sweep, ``kern`` plus φ(h*)ᵀφ(h*)/N of every
    kept sweep, φ(h*) at the last sweep, mean acceptance after burn-in, final step size)."""
    rng = np.random.default_rng([seed, width, c])
    net = Network(spec, width=width, scaling="mean-field")
    theta = net.prior_sample(rng)
    eps = step_size
    out, acc_c = [], []
    for s in range(sweeps):
        theta, acc = collapsed_sweep(rng, net, theta, step_size=eps, n_mala=5)
        if s < burn:  # adapt during burn-in only
            eps *= float(np.exp(0.5 * (acc - 0.6)))
        else:
            acc_c.append(acc)
            f, phi = _test_outputs(net, theta, Xs_scaled)
            out.append(f)
            kern = kern + phi.T @ phi / width
        if progress and (s + 1) % max(1, sweeps // 10) == 0:
            print(f"\r[sampling] chain {c + 1}/{chains}, sweep {s + 1}/{sweeps}, step {eps:.3g}",
                  end="", file=sys.stderr, flush=True)
    return out, kern, phi, float(np.mean(acc_c)), eps


def sample_generalization(spec: ModelSpec, test_inputs: np.ndarray, test_labels: np.ndarray, width: int = 200,
                          chains: int = 2, sweeps: int = 400, burn: int | None = None, step_size: float = 0.05,
                          seed: int = 0, progress: bool = False, neurons: int = 20) -> dict:
    """Sample mean-field networks of width ``width`` on ``spec.inputs``; JSON-ready report.

    Returns ``mean_predictor`` (n* × m), ``mean_predictor_mcse``, ``posterior_variance``
    (Σ_r Var f_r(x*), n*), the per-class errors with MCSE, ``test_kernel`` (draw average of
    φ(h*)ᵀφ(h*)/N on the test inputs), ``activations`` (φ(h*) of ``neurons`` neurons at the
    last draw of chain 0), diagnostics (ESS, split-R̂, acceptance) and ``time_seconds``.
    """
    if spec.inputs is None:
        raise SpecError("sample_generalization needs explicit training inputs (spec.inputs)")
    if not (isinstance(chains, int) and chains >= 2):
        raise SpecError(f"chains must be an integer >= 2 (for R-hat and the MCSE) (got {chains!r})")
    if not (isinstance(sweeps, int) and sweeps >= 20):
        raise SpecError(f"sweeps must be an integer >= 20 (got {sweeps!r})")
    burn = sweeps // 3 if burn is None else burn
    if not 0 <= burn <= sweeps - 8:
        raise SpecError(f"burn must be in [0, sweeps - 8] = [0, {sweeps - 8}] (got {burn})")
    Xs = np.asarray(test_inputs, dtype=np.float64)
    if Xs.ndim != 2 or Xs.shape[1] != spec.inputs.shape[1]:
        raise SpecError(f"test_inputs must have {spec.inputs.shape[1]} columns (got shape {Xs.shape})")
    start = time.perf_counter()
    Xs_scaled = Xs / np.sqrt(Xs.shape[1])
    with threadpool_limits(limits=1):  # N × P and P × P products: BLAS threads only oversubscribe the cores
        kern, runs = 0.0, []
        for c in range(chains):  # the kernel sum runs on through the chains, in order
            runs.append(_chain(spec, Xs_scaled, width, c, chains, sweeps, burn, step_size, seed, progress, kern))
            kern = runs[-1][1]
    draws = [r[0] for r in runs]
    n_kern = sum(len(r[0]) for r in runs)
    acts = runs[0][2][:neurons]
    accs = [r[3] for r in runs]
    steps = [r[4] for r in runs]
    if progress:
        print(file=sys.stderr)
    D = np.array(draws)  # chains × n × n* × m
    nc, nd, ns, m = D.shape
    flat = D.reshape(nc, nd, ns * m)
    mean = D.mean(axis=(0, 1))
    se = mcse(flat).reshape(ns, m)
    var = D.reshape(nc * nd, ns, m).var(axis=0, ddof=1).sum(axis=1)
    var_chain = D.var(axis=1, ddof=1).sum(axis=2)  # chains × n*
    var_se = var_chain.std(axis=0, ddof=1) / np.sqrt(nc)
    errs = class_errors(mean, test_labels, m, variance=var, mean_error=se, variance_error=var_se)
    return {**errs, "mean_predictor": mean.tolist(), "mean_predictor_mcse": se.tolist(),
            "posterior_variance": var.tolist(), "width": width, "chains": chains, "sweeps": sweeps, "burn": burn,
            "test_kernel": (kern / max(n_kern, 1)).tolist(), "activations": np.asarray(acts).tolist(),
            "ess_min": float(np.min(ess(flat))), "rhat_max": float(np.max(rhat_rank(flat))),
            "acceptance": accs, "step_size": steps, "time_seconds": time.perf_counter() - start}


def _linear_theory(ds, spec: ModelSpec, neurons: int, seed: int, max_kernel_inputs: int = 400) -> tuple:
    """The exact theory for linear φ (THEORY §2), in closed form instead of by Monte Carlo.

    p_t(a) = N(0, U) and, given a, h* ~ N(σ_1² k*ᵀ t a, σ_1² k**) (the tilt e^{(ta)·h} shifts the
    prior mean only), so f(x*) = σ_1² k*ᵀ t U, the posterior test kernel is
    E[h* h*'] = σ_1² k**' + σ_1⁴ k*ᵀ t U tᵀ k*', and neurons are drawn exactly. Returns (theory
    dict, solution)."""
    from solvers.data.linear import solve_linear

    sol = solve_linear(spec)
    s2 = spec.sigma_w**2
    Xs = np.asarray(ds.test_inputs, dtype=np.float64)
    X = np.asarray(ds.train_inputs, dtype=np.float64)
    n0 = X.shape[1]
    mean = sol.predict(Xs)
    n = len(Xs)
    idx = np.arange(n) if n <= max_kernel_inputs else np.linspace(0, n - 1, max_kernel_inputs).astype(int)
    kt = (Xs @ X.T / n0) @ sol.range_t  # k*ᵀ t, (n*, m)
    test_kernel = s2 * (Xs[idx] @ Xs[idx].T / n0) + s2**2 * kt[idx] @ sol.readout_moment @ kt[idx].T
    rng = np.random.default_rng(seed)
    a = rng.multivariate_normal(np.zeros(spec.m), sol.readout_moment, size=neurons)
    sd = np.sqrt(s2 * np.sum(Xs * Xs, axis=1) / n0)
    activations = s2 * a @ kt.T + sd[None, :] * rng.standard_normal((neurons, n))
    th = class_errors(mean, ds.test_labels, ds.m, mean_error=np.zeros_like(mean))
    theory = {**th, "mean_predictor": mean.tolist(), "mean_predictor_mcse": np.zeros_like(mean).tolist(),
              "posterior_variance": "0 (N = ∞ mean-field limit)", "test_kernel": test_kernel.tolist(),
              "activations": activations.tolist(), "method": "finite-p", "sampler": "closed form",
              **sol.to_json()}
    return theory, sol


def _sampled_theory(ds, sol, theory_method: str, theory_sampler: str, seed: int) -> dict:
    """The theory entry of the report from a Monte Carlo solution (finite-P or branch form)."""
    pred = sol.predict(ds.test_inputs, test_kernel=True, neurons=30, seed=seed)
    th = class_errors(pred.mean, ds.test_labels, ds.m, mean_error=pred.mean_error)
    return {**th, "mean_predictor": pred.mean.tolist(), "mean_predictor_mcse": pred.mean_error.tolist(),
            "posterior_variance": "0 (N = ∞ mean-field limit)", "test_kernel": np.asarray(pred.test_kernel).tolist(),
            "activations": np.asarray(pred.activations).tolist(), "method": theory_method,
            "sampler": theory_sampler if theory_method == "finite-p" else "tilted slice chains per branch",
            **sol.to_json(), **_prediction_verdict(sol, pred)}


def _prediction_verdict(sol, pred) -> dict:
    """The test predictions' bias checks (:func:`solvers.data.replicas.check_predictions`): a theory
    whose predictions disagree with its replicas' or the closed form's is not converged."""
    checks = list(getattr(pred, "bias_checks", ()))
    if not checks or all(c["agree"] for c in checks):
        return {"prediction_checks": checks}
    worst = max(checks, key=lambda c: c["max_z"] / c["critical_z"])
    return {"prediction_checks": checks, "converged": False, "status": "replicas-disagree",
            "message": f"{sol.message}; test predictions disagree with {worst['against']}: max |Δ|/error "
                       f"{worst['max_z']:.2f} > {worst['critical_z']:.2f}"}


def _theory(ds, spec, theory_method, theory_sampler, theory_chains, theory_rounds, seed, theory_progress):
    """(theory entry of the report, solution): the closed form for linear φ with ``theory_sampler``
    "auto", else the finite-P solver or the branch form (see :func:`generalization_report`)."""
    from solvers.data.branches import GeneralBranchOptions, solve_general_branches
    from solvers.data.options import resolve_sampler
    from solvers.data.solve import GeneralOptions, solve_general

    linear = get_nonlinearity(spec.nonlinearity).name == "linear"
    if theory_method == "finite-p" and linear and theory_sampler == "auto":
        return _linear_theory(ds, spec, neurons=30, seed=seed)
    if theory_method == "branches":
        sol = solve_general_branches(spec, GeneralBranchOptions(max_rounds=theory_rounds, seed=seed),
                                     progress=theory_progress)
    else:
        theory_sampler = resolve_sampler(theory_sampler, spec.nonlinearity)
        opts = GeneralOptions(chains=theory_chains, max_rounds=theory_rounds, seed=seed, sampler=theory_sampler)
        sol = solve_general(spec, opts, progress=theory_progress)
    return _sampled_theory(ds, sol, theory_method, theory_sampler, seed), sol


def generalization_report(ds, spec: ModelSpec, *, theory_chains: int = 256, theory_rounds: int = 25, width: int = 200,
                          chains: int = 2, sweeps: int = 300, sampling: bool = True, seed: int = 0,
                          say=None, theory_progress=None, theory_method: str = "finite-p",
                          theory_sampler: str = "auto") -> GeneralizationReport:
    """Theory, GP and sampled networks on one dataset: the ``codingschemes generalize`` engine.

    Runs the general-input mean-field theory (:func:`solvers.data.solve.solve_general`,
    THEORY §2), the NNGP baseline (:func:`theory.general.gp_generalization`, THEORY §6) and,
    if ``sampling``, sampled mean-field networks of width ``width`` (:func:`sample_generalization`).
    Returns the report (:class:`validation.results.GeneralizationReport`, ``converged`` the theory
    solver's) with JSON-ready entries "dataset" (with "test_labels"), "spec", "theory",
    "gp", "sampling" (None without sampling), each holding per-class "mean_predictor_error",
    "bayes_error", "accuracy" and "mean_predictor"; "theory" and "sampling" also hold the
    posterior-averaged "test_kernel" and "activations" of a few neurons on the test inputs, and
    "theory" the solver's "converged" and "message".

    ``theory_method``: "finite-p" (the exact N → ∞ theory at this P, sampled by ``theory_sampler``
    "mcmc" or "smc", :mod:`solvers.data.solve`) or "branches" (the large-P branch form with
    σ̄_a = σ_a√P, :func:`solvers.data.branches.solve_general_branches`; bounded φ and linear).
    ``theory_sampler="auto"`` is the exact closed form for linear φ (THEORY §2; "mcmc" or "smc" run
    the Monte Carlo solver on it as a check) and otherwise the rule of
    :func:`solvers.data.options.resolve_sampler` (SMC): on digits
    the MCMC chains met their criteria for erf at a wrong fixed point (residuals up to 0.66 under SMC;
    they do not balance the weights of the code modes) and do not converge for ReLU, where SMC does;
    for normcdf both agree and MCMC is faster (``theory_sampler="mcmc"``; docs/devlog.md).
    """
    from theory.general import gp_generalization

    if theory_method not in ("finite-p", "branches"):
        raise SpecError(f"theory_method must be 'finite-p' or 'branches' (got {theory_method!r})")

    t0 = time.perf_counter()
    say = say or (lambda msg: None)
    Y = spec.targets()
    gp = gp_generalization(ds.train_inputs, Y, ds.test_inputs, ds.test_labels, spec.nonlinearity, spec.sigma_w,
                           spec.sigma_a, spec.temperature)
    say(f"[gp] mean-predictor error {np.round(gp.errors['mean_predictor_error'], 4).tolist()}")
    with threadpool_limits(limits=1):  # (samples × P) products: BLAS threads only oversubscribe the cores
        theory, sol = _theory(ds, spec, theory_method, theory_sampler, theory_chains, theory_rounds, seed,
                              theory_progress)
    say(f"[theory] {sol.message}; mean-predictor error {np.round(theory['mean_predictor_error'], 4).tolist()}")
    sampled = None
    if sampling:
        sampled = sample_generalization(spec, ds.test_inputs, ds.test_labels, width=width, chains=max(chains, 2),
                                        sweeps=max(sweeps, 20), seed=seed, progress=theory_progress is not None)
        say(f"[sampling] N = {width}: mean-predictor error {np.round(sampled['mean_predictor_error'], 4).tolist()}, "
            f"bayes error {np.round(sampled['bayes_error'], 4).tolist()} (R-hat {sampled['rhat_max']:.2f})")
    report = {"dataset": {**ds.to_dict(), "test_labels": np.asarray(ds.test_labels).tolist()},
              "spec": spec.to_dict(), "theory": theory, "gp": gp.to_json(), "sampling": sampled}
    # the theory entry's verdict includes the test predictions' bias checks (:func:`_prediction_verdict`)
    return GeneralizationReport(data=report, converged=bool(theory.get("converged", sol.converged)),
                                status=theory.get("status", sol.status), message=theory.get("message", sol.message),
                                iterations=sol.iterations, residual=sol.residual, error_estimate=sol.error_estimate,
                                time_seconds=time.perf_counter() - t0)
