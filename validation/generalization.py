"""Sampled finite networks on real data: test predictions and generalization errors at width N.

Mean-field scaling (γ = 1, β = N/T, THEORY §1), one hidden layer of width N on the
training inputs of a :class:`~theory.spec.ModelSpec`. Each chain starts from the prior and
runs the collapsed sweep (:func:`validation.collapsed.collapsed_sweep`: MALA on W with
the readout integrated out, then a | W exactly); during burn-in the MALA step is adapted
toward acceptance 0.6 (multiplicatively, burn-in only, so the sampling phase is exact).

Every post-burn-in sweep records the test outputs f(x*) = N⁻¹ Σ_i a_i φ(w_i·x*/√N0). From
these draws (chains × draws × n* × m):

* mean predictor f̄(x*) = draw average, with its MCSE (batch means over chains and draws,
  :func:`validation.diagnostics.mcse`);
* posterior variance Σ_r Var[f_r(x*)] at width N (pooled over draws; it vanishes as
  N → ∞ in the mean-field scaling), with an MCSE from per-chain variances;
* per-class ``mean_predictor_error`` and ``bayes_error`` (:func:`theory.general.class_errors`),
  ESS and split-R̂ of the test outputs.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from theory.general import class_errors
from theory.spec import ModelSpec, SpecError

from .collapsed import collapsed_sweep
from .diagnostics import ess, mcse, split_rhat
from .networks import Network

__all__ = ["sample_generalization"]


def _test_outputs(net: Network, theta: np.ndarray, Xs_scaled: np.ndarray):
    W, a = net.unpack(theta)
    phi = net.nonlinearity(W @ Xs_scaled.T)  # N × n*
    return (a @ phi).T / net.width, phi


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
    draws, kern, accs, steps = [], 0.0, [], []
    acts = None
    n_kern = 0
    for c in range(chains):
        rng = np.random.default_rng([seed, width, c])
        net = Network(spec, width=width, scaling="mean-field")
        theta = net.prior_sample(rng)
        eps = step_size
        out = []
        acc_c = []
        for s in range(sweeps):
            theta, acc = collapsed_sweep(rng, net, theta, step_size=eps, n_mala=5)
            if s < burn:  # adapt during burn-in only
                eps *= float(np.exp(0.5 * (acc - 0.6)))
            else:
                acc_c.append(acc)
                f, phi = _test_outputs(net, theta, Xs_scaled)
                out.append(f)
                kern = kern + phi.T @ phi / width
                n_kern += 1
            if progress and (s + 1) % max(1, sweeps // 10) == 0:
                print(f"\r[sampling] chain {c + 1}/{chains}, sweep {s + 1}/{sweeps}, step {eps:.3g}",
                      end="", file=sys.stderr, flush=True)
        if c == 0:
            acts = phi[:neurons]
        draws.append(out)
        accs.append(float(np.mean(acc_c)))
        steps.append(eps)
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
            "ess_min": float(np.min(ess(flat))), "rhat_max": float(np.max(split_rhat(flat))),
            "acceptance": accs, "step_size": steps, "time_seconds": time.perf_counter() - start}
