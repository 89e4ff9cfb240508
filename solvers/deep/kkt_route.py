"""The deep ReLU saddle as a converged KKT point: the route of the deep search for ReLU at L = 2 when the plain
equations stop at a domain boundary (THEORY §4 condensate, §5; the KKT equations:
:mod:`solvers.deep.complementarity`).

It runs by default (``DeepOptions.kkt_route``; False switches it off). Every layer integral of the route uses the
class-symmetric rule (:mod:`theory.deep_symmetric_rule`, :func:`route_options`), so at a symmetric point the
equations are exactly equivariant. Steps, all from scratch inside the solve:

1. the homotopy in P with both condensates' multipliers as unknowns (:func:`solvers.deep.complementarity.follow_sizes`,
   smoothing δ = :data:`DELTA`, the domain checks on) in the subspace symmetric under permutations of equal-size
   classes (:mod:`solvers.deep.class_symmetry`) from its start, at T, or at T_w = ``warm_ratio`` T below
   :data:`KKT_TEMPERATURE` (as the search's warm start for small T);
2. the complementarity δ → 0 (:data:`DELTAS`) with the truncated bulk in the symmetric subspace with group-averaged
   proposals held fixed (re-matching them to the truncated integrand can run away along a needle beyond q = 1);
3. one symmetric re-solve at T_w with the readout's needle split (``needle_split``, else :data:`NEEDLE_SPLIT`;
   :mod:`theory.deep_needle_tail`, class-symmetric slices): the readout's integral is the rule inside the
   half-spaces {ŷ_j·y < r_c} of its tracked maximisers plus 1-D slice integrals along each needle, so the split of
   the outliers' contribution between the bulk's needle and the condensate (the multiplier, the excess beyond the
   whole needle) no longer depends on where a rule's nodes stop (from the point of step 2 at T = 0.02 Newton does
   not reach it in 25 iterations; at T_w it does);
4. below T_w, continuation down in T (steps of a factor at most 0.8, halved on failure) with the split on;
5. R = ``kkt_replicas`` independent Sobol' scrambles (seeds seed + 1 … seed + R, rule and slices) of 8 × 2^n points,
   n from ``qmc_log2n_max`` up to ``kkt_log2n_max`` while the error bound exceeds ``error_tol``: the symmetric KKT
   solve with the split re-solved with each, from the point of steps 3–4 at the first n and from the replica's own
   solution at the previous n after that (the nets are nested), along δ → 0 where the direct solve at δ = 0 fails.
   Each replica's observables o_r are group-averaged over the class permutations. Reported: the mean ō of the R
   symmetrised replicas, with error

       e = t_{0.975, R−1} · sd_r(o_r) / √R   (Student's t: a 95 % interval for the mean),

   and the converged flag only when max e <= ``error_tol``; the replicas re-solve the multipliers, so e includes
   their effect on the observables;
6. the stability of the constrained saddle at the first replica (:mod:`solvers.deep.kkt_stability`).

The readout's condensate: without the split the bulk's integral over the readout's y is truncated where the rule's
nodes end, and along an active maximiser the needle of the tilted measure is long (its density falls like e^{−κr},
κ ≈ 0.1–0.25, and carries about a quarter of the measure), so each replica put another part of it into the
multiplier: f hardly moved, but the last hidden layer's kernel did by ~0.15 and the bound stayed at 0.08
(docs/devlog.md, deeprelu14). With the split the needle is integrated to r_max and the multiplier is the excess
beyond it. The readout's masses λ_j = 2 μ_j σ_a² σ_L² and output shares are reported with their range over the
replicas; the first layer's multipliers the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
import math

import numpy as np
from scipy.stats import t as student_t

from solvers.deep.class_symmetry import class_permutations, maximiser_codes, symmetric_solve
from solvers.deep.complementarity import KKTModel, follow_delta, follow_sizes
from solvers.deep.kkt import _first_layer_sums, _readout_layer, condensate_terms
from solvers.deep.kkt_stability import constrained_stability

__all__ = ["KKTPoint", "KKT_TEMPERATURE", "DELTA", "DELTAS", "kkt_candidate", "replica_error",
           "symmetrised_observables"]

#: below this T the homotopy in P runs at T_w = warm_ratio · T and the KKT point is continued down in T (docs/devlog.md:
#: at T = 0.02 the homotopy in P fails at its first step, the class-contrast branch continues smoothly from T = 0.05)
KKT_TEMPERATURE = 0.05
#: the smoothing of the homotopy in P, and the path δ → 0 after it
DELTA = 0.003
DELTAS = (1e-3, 3e-4, 0.0)
#: the cut r_c of the readout's needle split in the route's last solves (:class:`theory.deep_needle_tail.Needles`)
NEEDLE_SPLIT = 3.0


def route_options(options, split: bool = False):
    """The route's options: ``options`` with the class-symmetric rule (:mod:`theory.deep_symmetric_rule`) for every
    layer integral of the homotopy, the δ path, the continuation in T and the replicas; with ``split`` also the
    readout's needle split (``options.needle_split``, or :data:`NEEDLE_SPLIT` where that is 0)."""
    return replace(options, symmetric_rule=True, needle_split=(options.needle_split or NEEDLE_SPLIT) if split else 0.0)


@dataclass(frozen=True)
class KKTPoint:
    """What validation needs to draw a KKT solution's outliers: the :class:`solvers.deep.complementarity.KKTModel`
    (its ``condensate`` holds the tracked maximisers), its unknowns ``x`` (packed x, then the multipliers μ of the
    readout's and the first layer's maximisers) and the integration ``proposals``."""

    model: KKTModel
    x: np.ndarray
    proposals: list


def symmetrised_observables(obs, m: int, L: int, perms) -> np.ndarray:
    """The flat observables (f, U, per layer diag K_ℓ and k_ℓ; :meth:`solvers.deep.model.DeepModel.evaluate`)
    averaged over the class permutations ``perms`` (f, U, k ↦ Π · Πᵀ, diag ↦ Π ·)."""
    obs = np.asarray(obs, dtype=np.float64)
    out = np.zeros(2 * m * m + L * (m + m * m))
    for perm in perms:
        ix = np.ix_(perm, perm)
        parts = [obs[:m * m].reshape(m, m)[ix].ravel(), obs[m * m:2 * m * m].reshape(m, m)[ix].ravel()]
        off = 2 * m * m
        for _ in range(L):
            parts += [obs[off:off + m][perm], obs[off + m:off + m + m * m].reshape(m, m)[ix].ravel()]
            off += m + m * m
        out += np.concatenate(parts)
    return out / len(perms)


def _symmetric_solve(model: KKTModel, x, props, log, label, codes=None, average: bool = True):
    """(x, ev, proposals, the symmetric wrapper) of the KKT point of ``model`` in the symmetric subspace from ``x``
    with group-averaged ``props`` (``average``; else as given) held fixed, or None."""
    out = symmetric_solve(model, x, props, log, label, codes, average=average, rounds=1, tol=1e-9, maxiter=25)
    if out is None:
        return None
    x, props, sym = out[0], out[2], out[4]
    ev = model.safe_eval(x, props)
    if ev is None:
        return None
    ev.update(asymmetry=out[1]["asymmetry"], symmetric_residual=float(np.max(np.abs(out[1]["residual"]))))
    model.condensate.retrack()
    return x, ev, props, sym


def _warm_route(search, T_w: float):
    """Steps 1–2 of the module docstring: (KKT model at T_w, x, proposals, its codes) or (None, message)."""
    spec, sig, opt, log = search.spec, search.sig, route_options(search.opt), search.log
    path, model = follow_sizes(spec.replace(temperature=T_w), sig, opt, DELTA, log, progress=search.log.progress,
                               symmetric=0.0)  # every step symmetric: the rule is exactly symmetric
    if path.stopped or model is None:
        return None, f"KKT route: {path.stopped or 'no start'}"
    x, props = path.last.x, path.last.props
    kkt = KKTModel(spec.replace(temperature=T_w), sig, opt, model.condensate.last, model.condensate.first, DELTA)
    codes = maximiser_codes(kkt, x, props)

    def symmetric(mdl, xs, ps, label):
        out = _symmetric_solve(mdl, xs, ps, log, label, codes)
        return None if out is None else (out[0], out[2])

    # δ → 0, first at the homotopy's δ with the proposals group-averaged and held
    points, stopped = follow_delta(kkt, x, props, [DELTA, *DELTAS], log, label="KKT route: symmetric subspace, δ",
                                   solve=symmetric)
    if stopped:
        return None, f"{stopped} (T = {T_w:.4g})"
    _, x, props, _ = points[-1]
    return (kkt, x, props, codes), ""


def _down_in_t(kkt: KKTModel, x, props, codes, spec, log):
    """Step 4 of the module docstring: the symmetric KKT point of ``kkt`` (at its T) continued down to
    ``spec.temperature`` in steps of a factor at most 0.8, halved on failure: ((x, proposals), "") with ``kkt`` at the
    target, or (None, message)."""
    T, step, halvings = kkt.T, math.log(0.8), 0
    while T > spec.temperature * (1 + 1e-12):
        Tk = max(spec.temperature, T * math.exp(step))
        kkt.T = Tk
        out = _symmetric_solve(kkt, x, props, log, f"KKT route: T = {Tk:.4g}", codes)
        if out is None:
            kkt.T, step, halvings = T, step / 2, halvings + 1
            if halvings > 4:
                return None, f"KKT route: continuation in T failed at T = {Tk:.4g}, last solved {T:.4g}"
            continue
        T, halvings = Tk, 0
        x, _, props, _ = out
    kkt.spec = spec
    return (x, props), ""


def _condensates(model: KKTModel, x, ev) -> dict:
    """Per direction: the readout's multipliers, masses 2 μ σ_a² σ_L² and shares of f_cc; the first layer's
    multipliers, codes and shares of each class's K_1 diagonal carried (:func:`solvers.deep.kkt._first_layer_sums`)."""
    hook, mu = model.condensate, model.multipliers(x)
    kL = len(hook.last)
    t, ker = model.unpack(np.asarray(x)[:model.n_base])
    R, delta, hidden = _readout_layer(model, ker)
    dom = hook.readout_domain(model, t, ker)
    f = ev["layers"][-1].outputs
    c = condensate_terms(dom, mu[:kL], t, model.spec.sigma_a, R, delta, model.sigmas[-1], model.sizes, hidden)
    up, low = ev["layers"][1], ev["layers"][0]
    B, A, dirs, q = hook.first_layer(up.kt_in, up.dt_in, model.sigmas[0], model.sizes)
    k1 = np.diag(low.k) + low.delta
    shares = [(np.diag(dk) + dd) / k1 for dk, dd in
              (_first_layer_sums(B, A, model.sigmas[0], model.sizes, dirs[j:j + 1], q[j:j + 1], mu[kL + j:kL + j + 1])
               for j in range(len(dirs)))]
    return {"readout_codes": dom.code_strings(), "readout_multipliers": mu[:kL], "readout_mass": c.mass,
            "readout_output_shares": c.output_shares(f), "readout_directions": dom.readout,
            "first_codes": ["".join("1" if u > 0 else "0" for u in B @ v) for v in dirs],
            "first_multipliers": mu[kL:], "first_shares": np.array(shares).reshape(-1, model.m)}


def _resolve(base: KKTModel, options, maximisers, x, props, log, label, codes, average: bool = True):
    """The symmetric KKT point of a :class:`KKTModel` like ``base`` (its T and class sizes) with ``options`` and the
    tracked ``maximisers`` (readout's, first layer's[, the middle layers' {ℓ: rows} at L >= 3]), solved at δ = 0
    from ``x`` with ``props`` group-averaged (``average``) or as given, or along δ → 0 where the direct solve fails
    (near the kink of φ_0 at an inactive constraint): (x, ev, proposals, model) or None."""
    last, first, *hidden = maximisers
    model = KKTModel(base.spec, base.sigmas, options, last, first, 0.0, sizes=base.sizes,
                     hidden=hidden[0] if hidden else None)
    model.T = base.T
    res = _symmetric_solve(model, x, props, log, label, codes, average)
    if res is None:
        res = _along_delta(model, x, props, log, label, codes, average)
    return None if res is None else (res[0], res[1], res[2], model)


def _split_solve(search, base: KKTModel, x, props, codes):
    """Step 3 of the module docstring: the symmetric KKT point of ``base`` re-solved with the readout's needle split
    (seed ``options.seed``, 8 × 2^qmc_log2n_max points) from ``x``: (x, ev, proposals, model) or None."""
    opt = route_options(search.opt, split=True)
    opt = replace(opt, qmc_log2n=opt.qmc_log2n_max)
    label = f"KKT route: needle split r_c = {opt.needle_split:g}"
    return _resolve(base, opt, (base.condensate.last, base.condensate.first), x, props, search.log, label, codes)


def _replicas(search, base: KKTModel, x, props, codes, log2n: int, previous=None):
    """The symmetric KKT solve re-solved with ``kkt_replicas`` independent Sobol' seeds of 8 × 2^log2n points, each
    from its own solution with 2^(log2n − 1) points in ``previous`` (the nets are nested: the first half of the larger
    one is the smaller one) where there is one, else from ``x``: [(x, ev, proposals, model) or None] per replica."""
    opt, out = route_options(search.opt, split=True), []
    for r in range(opt.kkt_replicas):
        o = replace(opt, seed=opt.seed + 1 + r, qmc_log2n=log2n, qmc_log2n_max=max(log2n, opt.qmc_log2n_max))
        start = previous[r] if previous is not None and previous[r] is not None else None
        last, first = (base.condensate.last, base.condensate.first) if start is None else \
            (start[3].condensate.tracked[0], start[3].condensate.tracked[1])
        label = f"KKT replica {r + 1}, seed {o.seed}, 8 × 2^{log2n}"
        x0, p0 = (x, props) if start is None else (start[0], start[2])
        res = _resolve(base, o, (last, first), x0, p0, search.log, label, codes)
        if res is not None:
            readout = res[3].multipliers(res[0])[:len(last)]
            search.log.append(f"{label}: readout multipliers {np.array2string(readout, precision=4)}")
        out.append(res)
    return out


def _along_delta(model: KKTModel, x, props, log, label, codes, average: bool = True):
    """:func:`_symmetric_solve` at δ = 0 reached along the smoothings :data:`DELTAS` from δ = DELTAS[0] (a replica
    whose inactive constraint sits at the kink μ = s = 0 of the complementarity), or None."""
    last = []

    def symmetric(mdl, xs, ps, lab):
        res = _symmetric_solve(mdl, xs, ps, log, lab, codes, average)
        last[:] = [] if res is None else [res]
        return None if res is None else (res[0], res[2])

    model.delta = DELTAS[0]
    points, stopped = follow_delta(model, x, props, DELTAS, log, label=f"{label}, δ", solve=symmetric)
    model.delta = 0.0
    return None if stopped or not points or not last else last[0]


def replica_error(evaluations, m: int, L: int, perms) -> tuple:
    """(mean of the replicas' symmetrised observables, its error t_{0.975,R−1} sd/√R per entry, mean action, its
    error) over the R replicas' ``evaluations`` (:meth:`solvers.deep.model.DeepModel.evaluate` results)."""
    nobs = 2 * m * m + L * (m + m * m)
    obs = np.array([symmetrised_observables(ev["obs"][:nobs], m, L, perms) for ev in evaluations])
    acts = np.array([ev["action"] for ev in evaluations])
    R = len(obs)
    q = float(student_t.ppf(0.975, R - 1)) / math.sqrt(R)
    return obs.mean(axis=0), q * obs.std(axis=0, ddof=1), float(acts.mean()), q * float(acts.std(ddof=1))


def kkt_candidate(search) -> dict | None:
    """The KKT route of the module docstring for the search ``search`` (:class:`solvers.deep.nonlinear._Search`):
    a candidate dict of the search (with the keys :func:`solvers.deep.nonlinear_result.build_solution` reads, and
    ``kkt``: the :class:`KKTPoint`, ``replicas``, ``condensate_json``), or None (the reason in ``search.tried``)."""
    spec, opt = search.spec, search.opt
    T = spec.temperature
    T_w = T if T >= KKT_TEMPERATURE else opt.warm_ratio * T
    found, why = _warm_route(search, T_w)
    if found is None:
        search.tried.append(why)
        search.log.append(why)
        return None
    kkt, x, props, codes = found
    split = _split_solve(search, kkt, x, props, codes)
    if split is None:
        search.tried.append(f"KKT route: the re-solve with the needle split failed (T = {T_w:.4g})")
        return None
    x, _, props, kkt = split
    down, why = _down_in_t(kkt, x, props, codes, spec, search.log)
    if down is None:
        search.tried.append(why)
        search.log.append(why)
        return None
    x, props = down
    m, L, perms = kkt.m, kkt.L, class_permutations(kkt.sizes)
    log2n, solved = opt.qmc_log2n_max, None
    while True:
        solved = _replicas(search, kkt, x, props, codes, log2n, solved)
        reps = [rep for rep in solved if rep is not None]
        if len(reps) < max(3, opt.kkt_replicas - 1):
            search.tried.append(f"KKT route: only {len(reps)} of {opt.kkt_replicas} replicas solved at 8 × 2^{log2n}")
            return None
        mean, err, action, action_err = replica_error([rep[1] for rep in reps], m, L, perms)
        search.log.append(f"KKT replicas at 8 × 2^{log2n}: {len(reps)} solved, error bound {np.max(err):.2e} "
                          f"(observable {int(np.argmax(err))} = {mean[int(np.argmax(err))]:.4g})")
        if np.max(err) <= opt.error_tol or log2n >= opt.kkt_log2n_max:
            break
        log2n += 1
    x1, ev1, props1, model1 = reps[0]
    stab = constrained_stability(model1, x1, ev1, props1)
    search.log.append(f"KKT stability: {stab['message']}")
    conds = [_condensates(mdl, xr, evr) for xr, evr, _, mdl in reps]
    return {"x": x1[:model1.n_base], "ev": ev1, "props": props1, "label": "KKT route (both condensates)",
            "eig": np.asarray(stab["eigenvalues"]), "stable": bool(stab["stable"]), "errors": err,
            "free_energy_error": action_err, "covered": True, "coverage": [],
            "error_sources": {"kkt replicas": float(np.max(err))}, "linearised_replicates": 0,
            "kkt": KKTPoint(model1, x1, props1), "mean_observables": mean, "action": action,
            "condensate_json": _condensate_json(conds, stab, reps, ev1, log2n, np.max(err)), "model": model1}


def _range(values) -> list:
    a = np.asarray(values, dtype=np.float64)
    return [np.min(a, axis=0).tolist(), np.max(a, axis=0).tolist()]


def _condensate_json(conds, stab, reps, ev, log2n, bound) -> dict:
    """The ``condensate`` block of a KKT solution's JSON: the readout's and the first layer's condensates (replica
    means and ranges), the stability record, the replicas and the asymmetry of the rule."""
    mean = {k: np.mean([c[k] for c in conds], axis=0) for k in conds[0] if not k.endswith("codes")}
    c0 = conds[0]
    first = [{"code": code, "multiplier": float(mean["first_multipliers"][j]),
              "multiplier_range": _range([c["first_multipliers"][j] for c in conds]),
              "kernel_diagonal_share": mean["first_shares"][j].tolist(),
              "kernel_diagonal_share_range": _range([c["first_shares"][j] for c in conds])}
             for j, code in enumerate(c0["first_codes"])]
    return {"kind": "kkt", "codes": c0["readout_codes"], "multipliers": mean["readout_multipliers"].tolist(),
            "multipliers_range": _range([c["readout_multipliers"] for c in conds]),
            "mass": mean["readout_mass"].tolist(), "mass_range": _range([c["readout_mass"] for c in conds]),
            "output_shares": mean["readout_output_shares"].tolist(),
            "output_shares_range": _range([c["readout_output_shares"] for c in conds]),
            "readout_directions": c0["readout_directions"].tolist(), "margins": (1.0 - ev["q"]).tolist(),
            "first_layer": first, "stability": dict(stab),
            "replicas": {"count": len(reps), "points_log2": int(log2n), "sobol_groups": 8,
                         "error_bound": float(bound),
                         "rule_asymmetry": float(max(e["asymmetry"] for _, e, _, _ in reps))}}
