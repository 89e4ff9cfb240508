"""Class symmetry along the homotopy of a KKT model with condensates in every hidden layer (L >= 3): the solve hook
of the homotopy in P, full or in the symmetric subspace, and a refresh of the maximisers that keeps their list closed
under the class permutations (THEORY §3, §5; the equations: :mod:`solvers.deep.complementarity`, the middle layers'
terms: :mod:`solvers.deep.hidden_condensate`; the symmetric subspace, with each multiplier's image looked up within
its own domain: :mod:`solvers.deep.class_symmetry`).

A refresh (the maximisers found afresh along a homotopy) that adds a maximiser whose image is not in the list
removes every permutation that moves it from the imposed group; :func:`closed_refresh` therefore keeps the tracked
maximisers, adds new ones only with their images, and starts their multipliers by a non-negative least-squares fit
of the residual at fixed x (:func:`solvers.deep.complementarity.fitted_multipliers` restricted to the new ones).
"""
from __future__ import annotations

import numpy as np

from solvers.deep.class_symmetry import class_permutations, maximiser_codes, symmetric_solve
from solvers.deep.complementarity import KKTModel, Q_MIN, _active_maximisers, truncated_bulk

__all__ = ["block_symmetric_solve", "closed_refresh", "solve_kkt_step"]


def block_symmetric_solve(model: KKTModel, x, props, log, label, held: bool = False, **kw):
    """:func:`solvers.deep.class_symmetry.symmetric_solve` (options ``kw``) with the multipliers permuted within
    each domain, in the return shape of ``follow_sizes``' solves: (x in ``model``'s coordinates, the symmetric
    evaluation, None, None, the proposals solve_at returned) or None. ``held``: with the rule exactly symmetric
    (``model.class_perms``) ``props`` are held as they are and returned (group-averaging again is not idempotent
    and moves a constraint at margin ~1e-5 past q = 1), else the group-averaged ones it solved with are returned."""
    exact = held and model.class_perms is not None
    out = symmetric_solve(model, x, props, log, label, average=not exact, **kw)
    return None if out is None else (out[0], out[1], None, None, out[2] if held else out[3])


def solve_kkt_step(model: KKTModel, x, props, log, label, symmetric: bool, hold: bool = False, **kw):
    """The ``solve`` hook of :func:`solvers.deep.complementarity.follow_sizes` for L >= 3: the full equations
    (:func:`solvers.deep.newton.solve_at`), or with ``symmetric`` :func:`block_symmetric_solve` with the truncated
    bulk (at a symmetric point the rule's asymmetry can put one of two equal maximisers' q past 1). ``hold``: one
    Newton solve with the proposals ``props`` (group-averaged in the symmetric subspace) held and returned (near
    three boundaries at once the moment-matched proposals of the next round move the residual by more than a step
    of 1 % in P does)."""
    from solvers.deep.newton import solve_at

    if hold:
        kw["rounds"] = 1
    if not symmetric:
        out = solve_at(model, x, props, log, label, jacobians=False, **kw)
    else:
        with truncated_bulk(model):
            out = block_symmetric_solve(model, x, props, log, label + " (symmetric)", held=hold, **kw)
    return out if out is None or not hold or symmetric else out[:4] + (props,)


def _with_sets(model: KKTModel, sets) -> KKTModel:
    out = KKTModel(model.spec, model.sigmas, model.opt, sets[0], sets[1], model.delta, sizes=model.sizes,
                   truncated=model.truncated, hidden={ell: y for ell, y in enumerate(sets[2:], start=2)})
    out.T = model.T
    return out


def _new_multipliers(model: KKTModel, x, props, new: np.ndarray) -> np.ndarray:
    """μ of the indices ``new`` fitted by non-negative least squares to the deep residual at fixed x and the other
    multipliers (the residual is affine in μ at fixed x: one evaluation per new multiplier)."""
    from scipy.optimize import nnls

    x = np.asarray(x, dtype=np.float64).copy()
    x[model.n_base + new] = 0.0
    ev0 = model.safe_eval(x, props)
    if ev0 is None or not len(new):
        return np.zeros(len(new))
    nb = len(ev0["residual"]) - model.n_mu
    cols = []
    for j in new:
        xj = x.copy()
        xj[model.n_base + j] = 1.0
        ev = model.safe_eval(xj, props)
        cols.append(np.zeros(nb) if ev is None else ev["residual"][:nb] - ev0["residual"][:nb])
    return nnls(np.array(cols).T.reshape(nb, len(new)), -ev0["residual"][:nb])[0]


def closed_refresh(model: KKTModel, x, props, q_min: float = Q_MIN, fit: bool = True):
    """(``model`` with the maximisers found afresh at ``x`` added, its x) or (``model``, ``x``) unchanged — the
    ``refresh`` hook of :func:`solvers.deep.complementarity.follow_sizes` (module docstring): every tracked maximiser
    is kept with its multiplier; a maximiser of the full searches (q >= ``q_min``, local maxima) farther than cosine
    1e-6 from the tracked ones of its domain is a candidate; candidates are added, with their images under the class
    permutations among them, only if the model with them evaluates at ``x`` and every added code's images are in its
    domain's list; their multipliers start at the fit of :func:`_new_multipliers` (``fit``) or on the central path
    μ = δ²/(1 − q)."""
    ev = model.safe_eval(x, props)
    if ev is None:
        return model, x
    found, _ = _active_maximisers(model, np.asarray(x)[:model.n_base], ev, q_min)
    have = list(model.condensate.tracked)
    tracked = have + [np.zeros((0, np.shape(y)[-1])) for y in found[len(have):]]
    cand = [np.array([y for y in f if not len(t) or np.max(t @ y) < 1.0 - 1e-6]).reshape(-1, np.shape(f)[-1])
            for f, t in zip(found, tracked)]
    if not sum(len(c) for c in cand):
        return model, x
    sets = [np.concatenate([t, c]) for t, c in zip(tracked, cand)]
    trial = _with_sets(model, sets)
    mu = np.concatenate([np.concatenate([model.multipliers(x)[model.condensate.slice(b)], np.zeros(len(c))])
                         if b < len(model.condensate.sets) else np.zeros(len(c)) for b, c in enumerate(cand)])
    xt = trial.with_multipliers(x, mu)
    blocks = maximiser_codes(trial, xt, props)
    if blocks is None:
        return model, x
    perms = class_permutations(model.sizes)
    keep = []
    for b, (codes, t) in enumerate(zip(blocks, tracked)):
        mine = [tuple(sorted(c)) for c in codes]
        added = set(range(len(t), len(codes)))
        closed = [j for j in added if all(tuple(sorted(int(p[c]) for c in codes[j])) in mine for p in perms)]
        keep.append(list(range(len(t))) + sorted(closed))
    if all(len(k) == len(t) for k, t in zip(keep, tracked)):
        return model, x
    sets = [s[k] for s, k in zip(sets, keep)]
    out = _with_sets(model, sets)
    offs = np.cumsum([0] + [len(s) for s in trial.condensate.sets])
    mu = np.concatenate([mu[offs[b] + np.array(k, dtype=int)] for b, k in enumerate(keep)])
    xo = out.with_multipliers(x, mu)
    new = np.concatenate([offs2 + np.arange(len(t), len(k)) for offs2, t, k in
                          zip(np.cumsum([0] + [len(k) for k in keep])[:-1], tracked, keep)]).astype(int)
    if out.safe_eval(xo, props) is None:
        return model, x
    if fit:
        mu[new] = _new_multipliers(out, xo, props, new)
    else:
        q = out.safe_eval(xo, props)["q"]
        mu[new] = model.delta**2 / np.maximum(1.0 - q[new], model.delta)
    return out, out.with_multipliers(x, mu)
