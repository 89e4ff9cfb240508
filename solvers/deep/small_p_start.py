"""The start of the deep ReLU homotopy in P with every condensate as a KKT unknown at L >= 3: the smallest P reached
from a warmer T by continuation in T (THEORY §4, §5; the equations: :mod:`solvers.deep.complementarity`, the middle
layers' terms: :mod:`solvers.deep.hidden_condensate`).

At L = 3 (classes 32,16,16 scaled to 2,1,1, σ_a² P = 1) the prior start with t solved at fixed kernels
(:func:`solvers.deep.newton.t_only`, the start at L = 2) does not solve at T = 0.05: the t it needs tilts the first
layer out of its domain (q_1 = 0.998, K_1's diagonal 16.7, residual 15). The plain equations do solve from the
prior start at T = 0.2; from there every layer's maximisers with q >= ½ get multipliers and T is lowered.
"""
from __future__ import annotations

import numpy as np

from solvers.deep.complementarity import kkt_model, refreshed
from solvers.deep.model import DeepModel
from solvers.deep.newton import solve_at

__all__ = ["small_p_start"]


def small_p_start(spec, sigmas, options, delta: float, log, T_start: float = 0.2, ratio: float = 0.85,
                  halvings: int = 4, solve=None, refresh=None):
    """(:class:`solvers.deep.complementarity.KKTModel`, x, proposals) at the smallest P of the homotopy in P
    (class sizes P_c/min P_c, σ_a² P as in ``spec``) and the spec's T, or None: the plain equations solved from
    the prior start at the warmer ``T_start`` (at L = 3 the prior start does not solve at T = 0.05, because the
    t it needs tilts the first layer out of its domain: module docstring), then every maximiser with q >= ½ of every layer given a
    multiplier (:func:`solvers.deep.complementarity.kkt_model`, domain checks on) and T lowered by factors
    ``ratio`` (halved in log T on failure, up to ``halvings`` times in a row), the maximisers found afresh after
    every step (:func:`solvers.deep.complementarity.refreshed`). ``solve`` (model, x, proposals, log, label,
    **options) and ``refresh`` (model, x, proposals): the KKT steps' solver and the maximisers' refresh, with the
    returns of :func:`solvers.deep.newton.solve_at` and :func:`solvers.deep.complementarity.refreshed` (default:
    those two; in the block-symmetric subspace: :mod:`solvers.deep.layer_symmetry`, where a symmetric two-class
    maximiser that any asymmetric perturbation loses would break the full equations' finite differences)."""
    from solvers.deep.nonlinear import _prior_start

    sizes = np.asarray(spec.class_sizes, dtype=np.float64)
    lo, total = float(np.min(sizes)), float(np.sum(sizes))
    plain = DeepModel(spec.replace(sigma_a=spec.sigma_a * np.sqrt(lo), temperature=T_start), sigmas, options,
                      sizes=sizes / lo)
    x = _prior_start(plain, T_start)
    props = plain.initial_proposals(x, options.inflate if options.inflate is not None else 1.5)
    out = solve_at(plain, x, props, log, f"P = {total / lo:.4g}, T = {T_start:.4g} (prior start)", rounds=3,
                   tol=1e-9, jacobians=False)
    if out is None:
        return None
    x, props = out[0], _evaluating(plain, out[0], out[4], props)
    model, x = kkt_model(plain, x, props, delta, truncated=False)
    solve = solve or (lambda *a, **kw: solve_at(*a, jacobians=False, **kw))
    refresh = refresh or refreshed
    T, step, fails = T_start, np.log(ratio), 0
    while T > spec.temperature * (1 + 1e-12):
        Tn = max(spec.temperature, T * np.exp(step))
        model.T = Tn
        out = solve(model, x, props, log, f"P = {total / lo:.4g}, KKT T = {Tn:.4g}", rounds=2, tol=1e-9)
        if out is None:
            fails += 1
            if fails > halvings:
                return None
            model.T, step = T, step / 2.0
            continue
        T, fails, x, props = Tn, 0, out[0], _evaluating(model, out[0], out[4], props)
        model.safe_eval(x, props)
        model.condensate.retrack()
        new, xr = refresh(model, x, props)
        if new is not model:
            out = solve(new, xr, props, log, f"P = {total / lo:.4g}, KKT T = {T:.4g}, maximisers refreshed",
                        rounds=2, tol=1e-9)
            if out is None:
                return None
            model, x = new, out[0]
            model.safe_eval(x, props)
            model.condensate.retrack()
    return model, x, props


def _evaluating(model, x, proposals, fallback):
    """``proposals`` if ``model`` evaluates at ``x`` with them, else ``fallback``."""
    return proposals if model.safe_eval(x, proposals) is not None else fallback
