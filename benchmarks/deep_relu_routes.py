"""Deep ReLU routes (L = 2; L = 3 for ``kkt``) towards the paper's regime, with the integration floor (issue 17).

Two routes of the deep class-block solver (:mod:`solvers.deep.nonlinear`), each printing, at every solved point, the
floor of :func:`solvers.deep.floors.integration_floor` (which layer's integral limits the equations, each layer's
q = 2 × growth rate) with the proposals the point solves with:

* ``shape``: the homotopy in φ's shape from the deep linear saddle (leaky ReLU with slope 1 − σ) with the proposals
  checked after every step, as the search runs it (:meth:`_Search.from_shape`); with ``--needles`` (Sobol' rules in
  every layer: ``--options '{"integrator": "qmc"}'``) slice needles along each layer's growth maximisers with margin
  below 0.05 are placed after every step too (:func:`solvers.deep.condensate.with_needles`);
* ``temperature``: the prior start at the first temperature of ``--start-t`` where it converges, then natural
  continuation down in T (steps of a factor ``--ratio``, halved up to four times on failure) to ``--temperature``;
  with ``--first-layer-needles`` the first layer on Sobol' points with slice needles re-placed at every step.

    PYTHONPATH=. python benchmarks/deep_relu_routes.py shape --temperature 0.05
    PYTHONPATH=. python benchmarks/deep_relu_routes.py shape --needles --options '{"integrator": "qmc"}'
    PYTHONPATH=. python benchmarks/deep_relu_routes.py temperature --start-t 1.0 --options '{"integrator": "qmc"}' \
        --first-layer-needles
    PYTHONPATH=. python benchmarks/deep_relu_routes.py kkt --delta 0.003 --seeds 4 --qmc-final 15 --t-end 0.02
    PYTHONPATH=. python benchmarks/deep_relu_routes.py kkt --layers 3 --seeds 3 --qmc-final 13 --t-end 0.02 \
        --save-dir /tmp/kkt3 [--resume /tmp/kkt3/P019.0735.pkl] [--symmetric] [--fresh-jacobians]
    PYTHONPATH=. python benchmarks/deep_relu_routes.py kkt3-stretch --resume /tmp/relu3l3/pts_s2/P024.9521.pkl \
        --until 30

* ``kkt``: the homotopy in P with both condensates as KKT unknowns (:func:`solvers.deep.complementarity.follow_sizes`,
  smoothing ``--delta``, the domain checks on; at ``--layers 3`` the route of
  :mod:`solvers.deep.three_layer_route`: every hidden layer's condensate, the start at the smallest P by continuation
  in T, the proposals held from P ≈ 19 on, 8 × 2^13 Sobol' points unless ``--options`` says otherwise, δ → 0, each
  layer's condensate and the constrained stability printed; ``--save-dir`` pickles every point, ``--resume`` goes
  on from one; ``--symmetric``: every step in the block-symmetric subspace with the exactly class-symmetric rule,
  :mod:`solvers.deep.class_symmetry`), optionally δ → ``--delta-end`` with the truncated bulk, then the point
  re-solved with ``--seeds`` independent Sobol'
  rules of 8 × 2^``--qmc-final`` points (their spread is the integration error), then continued down in T to
  ``--t-end`` (steps of a factor 0.8);
* ``kkt3-stretch``: the CPU cost of a stretch of the L = 3 symmetric route (phase 2, from ``--resume`` to P =
  ``--until``) with a fresh Jacobian at every Newton solve and with the Jacobian carried from step to step, measured
  in the same run; prints both, their ratio and the distance of their end points.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from solvers.deep.common import layer_sigmas  # noqa: E402
from solvers.deep.condensate import with_needles  # noqa: E402
from solvers.deep.floors import integration_floor  # noqa: E402
from solvers.deep.model import DeepModel  # noqa: E402
from solvers.deep.newton import BudgetSpent, SolveLog, solve_at  # noqa: E402
from solvers.deep.nonlinear import DeepOptions, _Search  # noqa: E402
from solvers.deep.shape_homotopy import follow_shape, linear_point, shaped_model  # noqa: E402
from theory.spec import ModelSpec  # noqa: E402


class _Log(SolveLog):
    """The solve's log, printed with CPU seconds and Newton iterations as it is written."""

    def append(self, line) -> None:
        super().append(line)
        print(f"[{time.process_time():7.1f} cpu s, {self.iterations} its] {line}", flush=True)


def _report(label, model, x, props) -> None:
    fl = integration_floor(model, x, props)
    ev = model.safe_eval(x, props)
    f = np.diag(ev["layers"][-1].outputs) if ev is not None else None
    print(f"   {label}: {fl.summary() if fl is not None else 'does not evaluate'}; f_cc {np.round(f, 4)}", flush=True)


def shape_route(spec, opt, budget, needles: bool, switch=None) -> None:
    """The shape homotopy; with ``switch`` = (σ_s, options) it stops at σ_s and goes on to σ = 1 with the equations
    of those options (e.g. the condensate barrier of :mod:`solvers.deep.kkt`, whose ReLU domain formulas hold
    only near σ = 1), from the point and proposals reached."""
    search = _Search(spec, layer_sigmas(spec, 2), opt)
    search.log = _Log()
    search.log.set_budget(0, budget)
    model = search.model
    x0 = linear_point(model)

    def remix(mdl, x, props):
        mixed = search.premixed(x, props, mdl, floor=opt.error_tol)
        return with_needles(mdl, x, mixed, kind="slice") if needles else mixed

    def on_step(mdl, x, props):
        _report(f"σ = {mdl.oned.shape:.4g}", mdl, x, props)

    path = follow_shape(model, x0, shaped_model(model, 0.0).initial_proposals(x0, search.inflate), search.log,
                        maxiter=25, every_step=True, remix=remix, on_step=on_step,
                        target=1.0 if switch is None else switch[0])
    print(path.message, flush=True)
    if switch is None or path.reached < switch[0]:
        return
    later = DeepModel(spec, layer_sigmas(spec, 2), switch[1])
    path = follow_shape(later, path.x, path.proposals, search.log, maxiter=25, every_step=True, remix=remix,
                        on_step=on_step, start=switch[0], first_step=1.0 / 64)
    print(path.message, flush=True)


def _placed(model, x, props, needles: bool):
    """(x, props) with the first layer's slice needles placed at x (``needles``), else unchanged."""
    if not needles:
        return x, props
    new = with_needles(model, x, props, kind="slice")
    return (x, new) if new is not props and model.safe_eval(x, new) is not None else (x, props)


def temperature_route(spec, opt, starts, T_end, ratio, needles, budget) -> None:
    sig = layer_sigmas(spec, 2)
    log = _Log()
    log.set_budget(0, budget)
    point = None
    for T in starts:
        search = _Search(spec.replace(temperature=T), sig, opt)
        search.log = log
        if search.from_prior():
            c = search.cands[-1]
            point = (T, c["x"], c["props"])
            _report(f"T = {T:.4g} (prior start)", search.model, c["x"], c["props"])
            break
        print(f"prior start at T = {T:g}: no solution", flush=True)
    if point is None:
        return
    T, x, props = point
    step, halvings = math.log(ratio), 0
    while T > T_end * (1 + 1e-12):
        Tk = max(T_end, T * math.exp(step))
        model = DeepModel(spec.replace(temperature=Tk), sig, opt)
        x1, p1 = _placed(model, x, props, needles)
        out = solve_at(model, x1, p1, log, f"T = {Tk:.5g}", jacobians=False)
        if out is not None and needles:  # the needles re-placed at the solution, solved again
            x2, p2 = _placed(model, out[0], out[4], needles)
            again = solve_at(model, x2, p2, log, f"T = {Tk:.5g} (needles re-placed)", jacobians=False)
            out = again if again is not None else out
        if out is None:
            if halvings == 4:
                print(f"stopped: Newton failed at T = {Tk:.5g}; last solved T = {T:.5g}", flush=True)
                return
            step, halvings = step / 2.0, halvings + 1
            continue
        x, props, T = out[0], out[4], Tk
        _report(f"T = {T:.5g}", model, x, out[4])
    print(f"reached T = {T:.5g}", flush=True)


def _kkt_summary(label, model, x, props) -> None:
    ev = model.safe_eval(x, props)
    if ev is None:
        print(f"   {label}: does not evaluate", flush=True)
        return
    o = ev["obs"]
    diags = " ".join(f"K_{ell} diag {np.round(o[18 + 12 * (ell - 1):21 + 12 * (ell - 1)], 4)}"
                     for ell in range(1, model.L + 1))
    print(f"   {label}: f_cc {np.round(np.diag(ev['layers'][-1].outputs), 4)} U_cc {np.round(o[9:18:4], 4)} "
          f"{diags} μ readout / first layer / middle layers {np.round(model.multipliers(x), 4)} (maximisers "
          f"{[len(a) for a in model.condensate.sets]}) margins {np.array2string(1 - ev['q'], precision=2)}",
          flush=True)


def kkt_route(spec, opt, delta, seeds, qmc_final, t_end, delta_end=None, layers: int = 2, start_t=0.2) -> None:
    from dataclasses import replace

    from solvers.deep.complementarity import KKTModel, follow_delta, follow_sizes
    from solvers.deep.small_p_start import small_p_start

    sig = layer_sigmas(spec, layers)
    log = _Log()
    start = None
    if layers >= 3:  # the prior start does not solve at small P and T: continuation in T there first
        start = small_p_start(spec, sig, opt, delta, log, T_start=start_t)
        if start is None:
            print(f"the start at small P by continuation in T from T = {start_t:g} failed", flush=True)
            return
    path, model = follow_sizes(spec, sig, opt, delta, log, start=start)
    for pt in path.points:
        print(f"P = {pt.p:.4g} ({pt.iterations} Newton iterations)", flush=True)
    print(path.stopped or f"reached P = {path.last.p:.4g}", flush=True)
    if path.stopped:
        return
    x, props = path.last.x, path.last.props
    _kkt_summary(f"P = {path.last.p:.4g}, δ = {delta:g}", model, x, props)
    if delta_end is not None:  # δ → δ_end with the truncated bulk (KKTModel's default; fragile beyond q = 1)
        model = KKTModel(spec, sig, opt, model.condensate.last, model.condensate.first, delta,
                         hidden=model.condensate.hidden)
        points, stopped = follow_delta(model, x, props, [delta_end], log)
        print(stopped or f"δ = {delta_end:g} reached", flush=True)
        if points:
            x, props = points[-1][1], points[-1][2]
            _kkt_summary(f"δ = {points[-1][0]:g}", model, x, props)
    obs, nobs = [], 18 + 12 * layers
    for seed in range(seeds):
        o = replace(opt, seed=seed, qmc_log2n=qmc_final, qmc_log2n_max=max(qmc_final, opt.qmc_log2n_max))
        kkt = KKTModel(spec, sig, o, model.condensate.last, model.condensate.first, model.delta,
                       truncated=model.truncated, hidden=model.condensate.hidden)
        out = solve_at(kkt, x, props, log, f"seed {seed}, 8 × 2^{qmc_final}", rounds=3, tol=1e-9, jacobians=False)
        if out is None:
            continue
        obs.append(np.concatenate([out[1]["obs"][:nobs], kkt.multipliers(out[0])]))
        _kkt_summary(f"seed {seed}", kkt, out[0], out[4])
    if len(obs) >= 2:
        sd = np.std(obs, axis=0, ddof=1)
        ks = ", ".join(f"K_{ell} {np.max(sd[6 + 12 * ell:18 + 12 * ell]):.1e}" for ell in range(1, layers + 1))
        print(f"spread over {len(obs)} seeds (sd): f {np.max(sd[:9]):.1e}, U {np.max(sd[9:18]):.1e}, {ks} (max over "
              f"f, U, K: {np.max(sd[:nobs]):.1e}); multipliers {np.array2string(sd[nobs:], precision=2)}", flush=True)
    T = spec.temperature
    while t_end and T > t_end * (1 + 1e-12):
        T = max(t_end, 0.8 * T)
        model.T = T
        out = solve_at(model, x, props, log, f"T = {T:.4g}", rounds=2, tol=1e-9, jacobians=False)
        if out is None:
            print(f"continuation in T: Newton failed at T = {T:.4g}", flush=True)
            return
        x = out[0]
        props = out[4] if model.safe_eval(x, out[4]) is not None else props
        model.safe_eval(x, props)
        model.condensate.retrack()
        _kkt_summary(f"T = {T:.4g}", model, x, props)


def _saver(save_dir):
    """on_point hook: each solved point of the homotopy pickled to ``save_dir`` (a resumable state), or None."""
    if not save_dir:
        return None
    import pickle

    os.makedirs(save_dir, exist_ok=True)
    previous = []

    def save(model, P, x, props):
        state = dict(P=float(P), T=model.T, x=x, props=props, last=model.condensate.last,
                     first=model.condensate.first, hidden=model.condensate.hidden, delta=model.delta,
                     previous=previous[-1] if previous else None)
        with open(os.path.join(save_dir, f"P{P:08.4f}.pkl"), "wb") as fh:
            pickle.dump(state, fh)
        previous.append((float(P), np.asarray(x)))
    return save


def _resumed(spec, opt, resume):
    """((KKT model, x, proposals), previous (P, x) or None) of a point pickled by ``--save-dir``."""
    import pickle

    from solvers.deep.complementarity import KKTModel

    with open(resume, "rb") as fh:
        st = pickle.load(fh)
    P, total = st["P"], float(np.sum(spec.class_sizes))
    sizes = np.asarray(spec.class_sizes, dtype=np.float64) * P / total
    model = KKTModel(spec.replace(sigma_a=spec.sigma_a * np.sqrt(total / P)), layer_sigmas(spec, 3), opt, st["last"],
                     st["first"], st["delta"], sizes=sizes, truncated=False, hidden=st["hidden"])
    model.T = spec.temperature
    return (model, st["x"], st["props"]), st.get("previous")


def kkt3_stretch(spec, opt, resume, until, methods=("fresh", "memory")) -> None:
    """The CPU cost of phase 2 of the L = 3 route (the block-symmetric subspace, the exactly class-symmetric rule)
    from the pickled point ``resume`` to P = ``until``, measured in one run for each of ``methods``: "fresh" (a
    fresh finite-difference Jacobian at the start of every Newton solve, the route as relu3l3 ran it) and "memory"
    (the Jacobian carried from step to step, :class:`solvers.deep.newton.JacobianMemory`); prints each method's CPU
    s, steps and Newton iterations, the ratio, and how far the end points are apart."""
    from dataclasses import replace

    from solvers.deep import three_layer_route as route
    from solvers.deep.newton import JacobianMemory

    opt = replace(opt, symmetric_rule=True)
    ends = {}
    for method in methods:
        log, memory = _Log(), (JacobianMemory() if method == "memory" else False)
        start, previous = _resumed(spec, opt, resume)
        c0 = time.process_time()
        path, model = route.follow_three_layers(spec, layer_sigmas(spec, 3), opt, log, start=start, previous=previous,
                                                symmetric=0.0, memory=memory, until=until)
        cpu = time.process_time() - c0
        ev = model.safe_eval(path.last.x, path.last.props) if model is not None and path.points else None
        ends[method] = (cpu, path.last.x if path.points else np.zeros(0), ev)
        counts = (f", fresh Jacobians {memory.fresh}, Broyden updates {memory.updates}" if memory else "")
        print(f"{method}: {path.stopped or f'reached P = {path.last.p:.6g}'}; {cpu:.1f} cpu s, "
              f"{len(path.points) - 1 - (previous is not None)} steps, {log.iterations} Newton iterations{counts}",
              flush=True)
        if ev is not None:
            print(f"   f_cc {np.round(np.diag(ev['layers'][-1].outputs), 6).tolist()}, kernel diagonals "
                  f"{[np.round(np.diag(r.k) + r.delta, 5).tolist() for r in ev['layers']]}, "
                  f"max|residual| {np.max(np.abs(ev['residual'])):.1e}", flush=True)
    if len(ends) == 2:
        (ca, xa, ea), (cb, xb, eb) = ends.values()
        dist = np.max(np.abs(np.asarray(xa) - np.asarray(xb))) if len(xa) == len(xb) else float("nan")
        dobs = np.max(np.abs(ea["obs"] - eb["obs"])) if ea is not None and eb is not None else float("nan")
        print(f"CPU ratio {' / '.join(ends)}: {ca / cb:.2f} ({ca:.1f} / {cb:.1f} s); end points: max|Δx| {dist:.1e}, "
              f"max|Δ observables| {dobs:.1e}", flush=True)


def kkt3_route(spec, opt, seeds, qmc_final, t_end, save_dir=None, resume=None, symmetric=False,
               memory=True) -> None:
    """The L = 3 route of :mod:`solvers.deep.three_layer_route`: the homotopy in P (or from the pickled point
    ``resume`` of an earlier run's ``--save-dir``), δ → 0, each layer's condensate and the constrained stability,
    ``seeds`` Sobol' replicas at 8 × 2^``qmc_final`` and their error bound, continuation in T to ``t_end``;
    ``symmetric``: every step in the block-symmetric subspace with the exactly class-symmetric rule; ``memory``
    False: a fresh Jacobian at the start of every Newton solve of the homotopy."""
    from solvers.deep.kkt_stability import constrained_stability
    from solvers.deep import three_layer_route as route

    from dataclasses import replace

    from solvers.deep.class_symmetry import class_permutations

    sig, log = layer_sigmas(spec, 3), _Log()
    opt = replace(opt, symmetric_rule=True) if symmetric else opt
    start, previous = _resumed(spec, opt, resume) if resume else (None, None)
    path, model = route.follow_three_layers(spec, sig, opt, log, start=start, previous=previous,
                                            on_point=_saver(save_dir), symmetric=0.0 if symmetric else np.inf,
                                            memory=memory)
    print(path.stopped or f"reached P = {path.last.p:.4g}", flush=True)
    if path.stopped:
        return
    x, props = path.last.x, path.last.props

    def show(label, mdl, xs):
        c = route.layer_condensates(mdl, xs, props)
        stab = constrained_stability(mdl, xs, mdl.safe_eval(xs, props), props)
        print(f"   {label}: {json.dumps(c)}\n   stability: {stab['message']}, stable {stab['stable']}", flush=True)

    points, stopped = route.delta_path(model, x, props, log, symmetric=symmetric)
    print(stopped or "δ = 0 reached", flush=True)
    if points:
        x = points[-1][1]
    show(f"T = {model.T:g}, δ = {model.delta:g}", model, x)
    reps = route.seed_replicas(model, x, props, log, range(1, seeds + 1), qmc_final, symmetric=symmetric)
    for seed, xr, _, rep in reps:
        show(f"seed {seed}, 8 × 2^{qmc_final}", rep, xr)
    if len(reps) >= 2:
        b = route.replica_bound(reps, model.m, model.L, class_permutations(model.sizes))
        print(f"   replica bound ({b['replicas']} of {seeds} solved): {b['bound']:.3g} at observable {b['argmax']}; "
              f"mean {np.round(b['mean'], 4).tolist()}; error {np.round(b['error'], 5).tolist()}", flush=True)
    if t_end:
        model.safe_eval(x, props)
        model.condensate.retrack()
        pts, stopped = route.continue_in_temperature(model, x, props, log, t_end, symmetric=symmetric)
        print(stopped or f"T = {t_end:g} reached", flush=True)
        if pts and not stopped:
            show(f"T = {model.T:g}, δ = {model.delta:g}", model, pts[-1][1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("route", choices=("shape", "temperature", "kkt", "kkt3-stretch"))
    p.add_argument("--class-sizes", default="32,16,16")
    p.add_argument("--sigma-a", type=float, default=0.125)
    p.add_argument("--temperature", type=float, default=0.05, help="target T")
    p.add_argument("--start-t", default="1.0", help="temperature route: prior-start temperatures tried in order")
    p.add_argument("--ratio", type=float, default=0.8, help="temperature route: step factor in T (< 1)")
    p.add_argument("--first-layer-needles", action="store_true", help="temperature route: first-layer slice needles")
    p.add_argument("--needles", action="store_true", help="shape route: slice needles in every layer")
    p.add_argument("--switch-at", type=float, default=None, help="shape route: σ where --switch-options take over")
    p.add_argument("--switch-options", default="{}", help="shape route: DeepOptions fields (JSON) from --switch-at on")
    p.add_argument("--options", default="{}", help="DeepOptions fields as JSON")
    p.add_argument("--budget", type=float, default=900.0, help="CPU seconds")
    p.add_argument("--delta", type=float, default=0.003, help="kkt route: smoothing δ of the homotopy in P")
    p.add_argument("--seeds", type=int, default=4, help="kkt route: independent Sobol' seeds at the end")
    p.add_argument("--qmc-final", type=int, default=15, help="kkt route: log2 of the final Sobol' points per replicate")
    p.add_argument("--delta-end", type=float, default=None, help="kkt route: then δ → this, truncated bulk")
    p.add_argument("--t-end", type=float, default=0.0, help="kkt route: continue down in T to this (0: no)")
    p.add_argument("--layers", type=int, default=2, help="kkt route: hidden layers L (3: the start at small P by "
                   "continuation in T from --kkt-start-t, every hidden layer's condensate a KKT unknown)")
    p.add_argument("--kkt-start-t", type=float, default=0.2, help="kkt route, L >= 3: T of the prior start at small P")
    p.add_argument("--save-dir", default=None, help="kkt route, L >= 3: pickle every solved point of the homotopy here")
    p.add_argument("--resume", default=None, help="kkt route, L >= 3: go on from a point pickled by --save-dir")
    p.add_argument("--symmetric", action="store_true", help="kkt route, L >= 3: every step in the block-symmetric "
                   "subspace with the exactly class-symmetric rule")
    p.add_argument("--fresh-jacobians", action="store_true", help="kkt route, L >= 3: a fresh Jacobian at the start "
                   "of every Newton solve (the route before the Jacobian was carried from step to step)")
    p.add_argument("--until", type=float, default=None, help="kkt3-stretch: the P where the stretch from --resume ends")
    a = p.parse_args(argv)
    spec = ModelSpec(nonlinearity="relu", sigma_a=a.sigma_a, temperature=a.temperature,
                     class_sizes=tuple(int(v) for v in a.class_sizes.split(",")))
    options = json.loads(a.options)
    if a.route == "kkt3-stretch" or (a.route == "kkt" and a.layers >= 3):  # 8 × 2^11 Sobol' points follow an
        # artefact of the rule at L = 3
        options = {"qmc_log2n": 13, "qmc_log2n_max": 13, **options}
    opt = DeepOptions(search=False, code_neurons=0, **options)
    with threadpool_limits(limits=1, user_api="blas"):
        try:
            if a.route == "shape":
                switch = None if a.switch_at is None else (
                    a.switch_at, DeepOptions(search=False, code_neurons=0,
                                             **{**json.loads(a.options), **json.loads(a.switch_options)}))
                shape_route(spec, opt, a.budget, a.needles, switch)
            elif a.route == "kkt3-stretch":
                if not a.resume or not a.until:
                    p.error("kkt3-stretch needs --resume (a pickled point) and --until (the P where it ends)")
                kkt3_stretch(spec, opt, a.resume, a.until)
            elif a.route == "kkt" and a.layers >= 3:
                kkt3_route(spec, opt, a.seeds, a.qmc_final, a.t_end, a.save_dir, a.resume, a.symmetric,
                           memory=not a.fresh_jacobians)
            elif a.route == "kkt":
                kkt_route(spec, opt, a.delta, a.seeds, a.qmc_final, a.t_end, a.delta_end, a.layers, a.kkt_start_t)
            else:
                temperature_route(spec, opt, [float(v) for v in a.start_t.split(",")], a.temperature, a.ratio,
                                  a.first_layer_needles, a.budget)
        except BudgetSpent as spent:
            print(spent, flush=True)
    print(f"total {time.process_time():.1f} cpu s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
