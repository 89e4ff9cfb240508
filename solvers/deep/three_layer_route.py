"""The three-layer deep ReLU saddle in the paper's regime as a KKT point: the homotopy in P with every layer's
condensate as an unknown, the complementarity δ → 0, independent Sobol' replicas, continuation in T, and each
layer's condensate read off (THEORY §4 condensate, §5; the equations: :mod:`solvers.deep.complementarity`, the middle
layers' terms: :mod:`solvers.deep.hidden_condensate`, the start at small P: :mod:`solvers.deep.small_p_start`).

The homotopy in P (class sizes s·P_c/min P_c at fixed σ_a² P) runs in two phases:

1. from the start of :func:`solvers.deep.small_p_start.small_p_start` with the proposals moment-matched after every
   step (:func:`solvers.deep.complementarity.follow_sizes`' default solve) up to ``hold_from`` · P;
2. from there with the proposals held (:func:`solvers.deep.layer_symmetry.solve_kkt_step` with ``hold``), the first
   step of 1 % from the secant of the last two points, steps growing to ``ratio``; where the equations with newly
   found maximisers (the middle layer's two-class 110, 101, 011 from P ≈ 23 on) do not solve, the route goes on with
   the tracked ones. Near P ≈ 19 all three layers
   approach their boundaries together (margins 2e-3 … 0.04) and the first layer's one-class condensates switch on;
   there a re-matched proposal moves the residual by more than a step of 1 % in P does, and Newton from the secant
   predictor fails (docs/devlog.md, relu3l2).

Both phases (and the start at small P where it runs in the block-symmetric subspace) carry the Newton Jacobian from
step to step (:class:`solvers.deep.newton.JacobianMemory`: Broyden updates across the solves, a fresh
finite-difference Jacobian only where a step contracts the residual poorly) and extrapolate the multipliers with the
secant too: a Newton iteration then costs one or two model evaluations instead of the n + 1 of a finite-difference
Jacobian.

In both phases the maximisers are refreshed by :func:`solvers.deep.layer_symmetry.closed_refresh` (the tracked ones
kept, new ones added only with their images under the class permutations): the full searches of the domains miss
tracked maximisers (the readout's 010 at P = 19) and find marginal two-class maxima (110) whose images are not
local maxima, which :func:`solvers.deep.complementarity.refreshed` swaps in, and the model with them does not
evaluate (a marginal maximum is lost by its tracking under the next change of the tilt).

Each layer's condensate (:func:`layer_condensates`): the codes of its maximisers, multipliers μ and the share of
each class's kernel diagonal the outliers carry (layer ℓ's K_ℓ gains 2μ ∂q_ℓ/∂K̃_ℓ,
:func:`solvers.deep.hidden_condensate.hidden_terms`; the first layer's by :func:`solvers.deep.kkt._first_layer_sums`),
and the readout's masses 2 μ σ_a² σ_L² and shares of f_cc (:func:`solvers.deep.kkt.condensate_terms`).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from solvers.deep.complementarity import KKTModel, follow_delta, follow_sizes
from solvers.deep.hidden_condensate import hidden_fields, hidden_terms
from solvers.deep.kkt import _first_layer_sums, _readout_layer, condensate_terms
from solvers.deep.layer_symmetry import closed_refresh, solve_kkt_step

__all__ = ["DELTA", "HOLD_FROM", "MEMORY_RATIO", "follow_three_layers", "held_solve", "delta_path", "layer_condensates",
           "seed_replicas", "replica_bound", "continue_in_temperature"]

#: the smoothing of the homotopy in P
DELTA = 0.003
#: the fraction of the target P from which the proposals are held (phase 2 of the module docstring)
HOLD_FROM = 0.29
#: the largest step ratio of phase 2 when the Jacobian is carried from step to step (its steps grow while they need
#: no fresh Jacobian; steps of 2 % already fail near the onsets of the first layer's condensates and are halved)
MEMORY_RATIO = 1.03


def held_solve(model, x, props, log, label, symmetric=False, **kw):
    """:func:`solvers.deep.layer_symmetry.solve_kkt_step` with the proposals held (one Newton solve)."""
    return solve_kkt_step(model, x, props, log, label, symmetric, hold=True, **kw)


def follow_three_layers(spec, sigmas, options, log, delta: float = DELTA, hold_from: float = HOLD_FROM,
                        ratio: float = 1.1, start=None, previous=None, progress=None, on_point=None,
                        symmetric: float = np.inf, memory=True, until=None):
    """The homotopy in P of the module docstring to the spec's class sizes: (Path, the KKT model of its last
    point). ``start`` (model, x, proposals) and ``previous`` (P, x): go on from a saved point in phase 2 instead
    (the start at small P is then not run); ``on_point`` (model, P, x, proposals) at every solved point;
    ``progress`` (:mod:`solvers.progress`) as in :func:`solvers.deep.complementarity.follow_sizes`;
    ``symmetric``: the steps at P >= this solved in the block-symmetric subspace
    (:func:`solvers.deep.layer_symmetry.block_symmetric_solve`; with ``options.symmetric_rule`` the estimates are
    then exactly class-symmetric there). ``memory``: the Jacobian carried from step to step (True: a new
    :class:`solvers.deep.newton.JacobianMemory`, or one given; False: a fresh finite-difference Jacobian at the start
    of every Newton solve, the route as it ran before), with the secant on the multipliers too and phase 2's steps
    growing up to :data:`MEMORY_RATIO` (:func:`solvers.deep.complementarity.follow_sizes`). ``until``: end at this P
    (default the spec's; phase 2 only, i.e. with ``start``)."""
    from solvers.deep.barrier_path import Path
    from solvers.deep.newton import JacobianMemory
    from solvers.deep.small_p_start import small_p_start
    from solvers.progress import report

    total = float(np.sum(spec.class_sizes))
    memory = JacobianMemory() if memory is True else (memory or None)
    kept = {} if memory is None else {"memory": memory}
    if start is None:
        in_subspace = dict(solve=lambda *a, **kw: solve_kkt_step(*a, True, **kept, **kw), refresh=closed_refresh)
        first = small_p_start(spec, sigmas, options, delta, log, **({} if symmetric > 0 else in_subspace))
        if first is None:
            return Path(stopped="the start at small P by continuation in T failed"), None

        def phase_one(event):
            return event.values.get("p", 0.0) < hold_from * total and report(progress, event.stage, event.step,
                                                                             event.total, **event.values)

        path, model = follow_sizes(spec, sigmas, options, delta, log, start=first, refresh=closed_refresh,
                                   progress=phase_one, on_point=on_point, symmetric=symmetric, solve=solve_kkt_step,
                                   memory=memory)
        if model is None or (path.stopped and "stopped by the caller" not in path.stopped):
            return path, model
        if path.last.p >= total * (1 - 1e-12):
            return path, model
        a, b = path.points[-2:] if len(path.points) >= 2 else (None, path.last)
        start, previous = (model, b.x, b.props), (None if a is None else (a.p, a.x))
    cap = ratio if memory is None else min(ratio, MEMORY_RATIO)
    return follow_sizes(spec, sigmas, options, delta, log, ratio=cap, first_ratio=1.01, start=start,
                        previous=previous, solve=held_solve, refresh=closed_refresh, progress=progress,
                        on_point=on_point, symmetric=symmetric, keep_on_refresh_failure=True, memory=memory,
                        until=until)


def delta_path(model: KKTModel, x, props, log, deltas=(1e-3, 3e-4, 0.0), symmetric: bool = False):
    """The complementarity δ → 0 (``deltas``) from the solved point at ``model.delta`` with the truncated bulk and
    the proposals held (:func:`solvers.deep.complementarity.follow_delta`; ``symmetric``: in the block-symmetric
    subspace, group-averaged proposals): (points, '' or where it stopped)."""
    model.truncated, model.condensate.check = True, False

    def solve(mdl, xs, ps, label):
        out = held_solve(mdl, xs, ps, log, label, symmetric, tol=1e-9, maxiter=25)
        return None if out is None else (out[0], out[4])

    return follow_delta(model, x, props, deltas, log, label="δ", solve=solve)


def _first_layer(model: KKTModel, x, ev, mu):
    hook = model.condensate
    up, low = ev["layers"][1], ev["layers"][0]
    B, A, dirs, q = hook.first_layer(up.kt_in, up.dt_in, model.sigmas[0], model.sizes)
    k1 = np.diag(low.k) + low.delta
    shares = [(np.diag(dk) + dd) / k1 for dk, dd in
              (_first_layer_sums(B, A, model.sigmas[0], model.sizes, dirs[j:j + 1], q[j:j + 1], mu[j:j + 1])
               for j in range(len(dirs)))]
    return {"codes": ["".join("1" if u > 0 else "0" for u in B @ v) for v in dirs], "multipliers": mu.tolist(),
            "margins": (1.0 - q).tolist(), "kernel_diagonal_shares": np.reshape(shares, (-1, model.m)).tolist()}


def _middle_layer(model: KKTModel, ell: int, block: int, x, ev, mu):
    _, ker = model.unpack(np.asarray(x)[:model.n_base])
    up, own = ev["layers"][ell], ev["layers"][ell - 1]
    R, delta = ker[ell - 2]
    fields = hidden_fields(up.kt_in, up.dt_in, model.sigmas[ell - 1], R, delta)
    doms = [fields.domain(model.sizes, previous=y[None, :]) for y in model.condensate.tracked[block]]
    kd = np.diag(own.k) + own.delta
    shares = []
    for dom, m in zip(doms, mu):
        dk, dd, _, _ = hidden_terms(fields, model.sizes, dom.directions, [m])
        shares.append((np.diag(dk) + dd) / kd)
    return {"codes": [d.code_strings()[0] for d in doms], "multipliers": mu.tolist(),
            "margins": [float(1.0 - d.q[0]) for d in doms],
            "kernel_diagonal_shares": np.reshape(shares, (-1, model.m)).tolist()}


def layer_condensates(model: KKTModel, x, props) -> dict | None:
    """Every layer's condensate at the KKT point ``x`` (module docstring): {"readout": codes, multipliers, masses,
    output shares, margins; "layer 1", "layer 2", ...: codes, multipliers, margins, kernel-diagonal shares per
    maximiser}, plus f_cc and each layer's kernel diagonal; None if ``x`` does not evaluate."""
    ev = model.safe_eval(x, props)
    if ev is None:
        return None
    hook, mu = model.condensate, model.multipliers(x)
    t, ker = model.unpack(np.asarray(x)[:model.n_base])
    R, delta, hidden = _readout_layer(model, ker)
    dom = hook.readout_domain(model, t, ker)
    f = ev["layers"][-1].outputs
    c = condensate_terms(dom, mu[hook.slice(0)], t, model.spec.sigma_a, R, delta, model.sigmas[-1], model.sizes,
                         hidden)
    out = {"f_cc": np.diag(f).tolist(),
           "kernel_diagonals": [(np.diag(r.k) + r.delta).tolist() for r in ev["layers"]],
           "readout": {"codes": dom.code_strings(), "multipliers": mu[hook.slice(0)].tolist(),
                       "masses": c.mass.tolist(), "output_shares": c.output_shares(f).tolist(),
                       "margins": (1.0 - dom.q).tolist()}}
    if model.L >= 2:
        out["layer 1"] = _first_layer(model, x, ev, mu[hook.slice(1)])
    for block, ell in enumerate(hook.hidden, start=2):
        out[f"layer {ell}"] = _middle_layer(model, ell, block, x, ev, mu[hook.slice(block)])
    return out


def seed_replicas(model: KKTModel, x, props, log, seeds, log2n: int, symmetric: bool = False):
    """The KKT point re-solved from ``x`` at δ = 0 (truncated bulk, proposals held; ``symmetric``: in the
    block-symmetric subspace by :func:`solvers.deep.kkt_route._resolve`, which falls back to the path δ → 0 where
    the direct solve fails) with the Sobol' scrambles ``seeds`` (rules and needle slices) of 8 × 2^``log2n`` points:
    [(seed, x, evaluation, model)] of those that converged. The maximisers are tracked from their positions at ``x``
    (a stale reference loses them: docs/devlog.md, relu3l4)."""
    from solvers.deep.kkt_route import _resolve

    out = []
    if model.safe_eval(x, props) is None:
        return out
    hook = model.condensate
    tracked = (hook.tracked[0], hook.tracked[1], dict(zip(hook.hidden, hook.tracked[2:])))
    for seed in seeds:
        opt = replace(model.opt, seed=int(seed), qmc_log2n=log2n, qmc_log2n_max=max(log2n, model.opt.qmc_log2n_max))
        label = f"seed {seed}, 8 × 2^{log2n}"
        if symmetric:
            res = _resolve(model, opt, tracked, x, props, log, label, None, average=False)
            if res is not None:
                out.append((seed, res[0], res[1], res[3]))
            continue
        rep = KKTModel(model.spec, model.sigmas, opt, *tracked[:2], 0.0, sizes=model.sizes, hidden=tracked[2])
        rep.T = model.T
        res = held_solve(rep, x, props, log, label, False, tol=1e-9, maxiter=25)
        if res is not None and rep.safe_eval(res[0], res[4]) is not None:  # the proposals it solved with
            rep.condensate.retrack()
            out.append((seed, res[0], rep.safe_eval(res[0], res[4]), rep))
    return out


def replica_bound(replicas, m: int, L: int, perms) -> dict:
    """The error bound of :func:`seed_replicas`' results (as :mod:`solvers.deep.kkt_route`'s replicas): the
    observables (f, U, each layer's kernel diagonal and blocks) averaged over the class permutations ``perms``, their
    mean over the R replicas and the bound t_{0.975,R−1} sd/√R per entry; "bound" its largest entry, "argmax" where."""
    from solvers.deep.kkt_route import replica_error

    mean, err = replica_error([ev for _, _, ev, _ in replicas], m, L, perms)[:2]
    return {"replicas": len(replicas), "mean": mean, "error": err, "bound": float(np.max(err)),
            "argmax": int(np.argmax(err))}


def continue_in_temperature(model: KKTModel, x, props, log, T_end: float, ratio: float = 0.8, halvings: int = 4,
                            symmetric: bool = False):
    """Natural continuation of the KKT point down in T to ``T_end`` (steps of a factor ``ratio``, halved in log T
    on failure up to ``halvings`` times in a row; proposals held; ``symmetric``: in the block-symmetric subspace):
    ([(T, x)], '' or where it stopped)."""
    T, step, fails, points = model.T, np.log(ratio), 0, []
    while T > T_end * (1 + 1e-12):
        Tn = max(T_end, T * np.exp(step))
        model.T = Tn
        out = held_solve(model, x, props, log, f"T = {Tn:.4g}", symmetric, tol=1e-9, maxiter=25)
        if out is None:
            model.T, fails, step = T, fails + 1, step / 2.0
            if fails > halvings:
                return points, f"continuation in T: Newton failed at T = {Tn:.4g}, last solved {T:.4g}"
            continue
        T, fails, x = Tn, 0, out[0]
        model.safe_eval(x, props)
        model.condensate.retrack()
        points.append((T, x))
    return points, ""
