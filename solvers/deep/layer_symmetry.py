"""Class symmetry for a KKT model with condensates in every hidden layer (L >= 3): the maximisers' codes per domain,
the symmetric subspace with the multipliers permuted within each domain, and a refresh of the maximisers that keeps
their list closed under the class permutations (THEORY §3, §5; the equations: :mod:`solvers.deep.complementarity`,
the middle layers' terms: :mod:`solvers.deep.hidden_condensate`; the subspace at L = 2:
:mod:`solvers.deep.class_symmetry`).

A permutation π of equal-size classes maps a maximiser of one domain (the readout's, the first layer's, a middle
layer ℓ's) to a maximiser of the same domain whose code (the classes on) is the image π(code); its multiplier maps
likewise, μ_j ↦ μ_π(j). The images are looked up within each domain only: the same code (say 010) occurs in
several layers, and a lookup across them (:func:`solvers.deep.class_symmetry._multiplier_images` pools every hidden
layer into one) would find two. The symmetric subspace is then that of :class:`solvers.deep.class_symmetry.
SymmetricModel` with these images.

A refresh (the maximisers found afresh along a homotopy) that adds a maximiser whose image is not in the list
removes every permutation that moves it from the imposed group; :func:`closed_refresh` therefore keeps the tracked
maximisers, adds new ones only with their images, and starts their multipliers by a non-negative least-squares fit
of the residual at fixed x (:func:`solvers.deep.complementarity.fitted_multipliers` restricted to the new ones).
"""
from __future__ import annotations

import numpy as np

from solvers.deep.class_symmetry import SymmetricModel, class_permutations, symmetric_solve
from solvers.deep.complementarity import KKTModel, Q_MIN, _active_maximisers, truncated_bulk
from solvers.deep.hidden_condensate import hidden_fields

__all__ = ["block_codes", "block_images", "BlockSymmetricModel", "block_symmetric_solve", "closed_refresh",
           "solve_kkt_step"]


def block_codes(model: KKTModel, x, props) -> list | None:
    """[[codes of the readout's maximisers], [the first layer's], [middle layer 2's], ...] (tuples of the classes
    on) at the tracked maximisers of ``model`` at ``x``; None if ``x`` does not evaluate."""
    ev = model.safe_eval(x, props)
    if ev is None:
        return None
    hook = model.condensate
    t, ker = model.unpack(np.asarray(x)[:model.n_base])
    out = [list(hook.readout_domain(model, t, ker).codes) if len(hook.last) else []]
    if len(hook.first):
        up = ev["layers"][1]
        B, _, dirs, _ = hook.first_layer(up.kt_in, up.dt_in, model.sigmas[0], model.sizes)
        out.append([tuple(int(c) for c in np.flatnonzero(B @ v > 0.0)) for v in dirs])
    else:
        out.append([])
    for block, ell in enumerate(hook.hidden, start=2):
        up = ev["layers"][ell]
        R, delta = ker[ell - 2]
        fields = hidden_fields(up.kt_in, up.dt_in, model.sigmas[ell - 1], R, delta)
        out.append([fields.domain(model.sizes, previous=y[None, :]).codes[0] for y in hook.tracked[block]])
    return out


def block_images(blocks, perm) -> np.ndarray | None:
    """The index map j ↦ π(j) of the multipliers (the blocks' codes concatenated) under the class permutation
    ``perm``, each image looked up within its own domain; None if some image code is missing or not unique."""
    out, off = [], 0
    for codes in blocks:
        keys = [tuple(sorted(c)) for c in codes]
        for code in codes:
            image = tuple(sorted(int(perm[c]) for c in code))
            hits = [i for i, k in enumerate(keys) if k == image]
            if len(hits) != 1:
                return None
            out.append(off + hits[0])
        off += len(codes)
    return np.array(out, dtype=int)


class BlockSymmetricModel(SymmetricModel):
    """:class:`solvers.deep.class_symmetry.SymmetricModel` of a KKT model whose multipliers are permuted within
    each domain (``blocks``: :func:`block_codes`); the permutations without images for some code are not imposed
    (``imposed`` lists those that are)."""

    def __init__(self, base, blocks):
        self.base = base
        self.opt, self.exact = base.opt, base.exact
        self.n_mu = base.n_mu
        actions, self.imposed = [], []
        for perm in class_permutations(base.sizes):
            images = block_images(blocks, perm)
            if images is not None:
                actions.append(self._action(perm, images))
                self.imposed.append(perm)
        w, V = np.linalg.eigh(np.mean(actions, axis=0))  # the group average: a symmetric projector
        self.Q = V[:, w > 0.5]
        self.projector = self.Q @ self.Q.T
        self.n, self.nw = self.Q.shape[1], len(V)
        self._m, self._L = base.m, base.L


def block_symmetric_solve(model: KKTModel, x, props, log, label, **kw):
    """:func:`solvers.deep.newton.solve_at` (options ``kw``) in the symmetric subspace of :class:`BlockSymmetricModel`
    from the symmetric part of ``x`` with group-averaged proposals
    (:func:`solvers.deep.class_symmetry.symmetric_proposals`); (x in ``model``'s coordinates, the symmetric
    evaluation, None, None, the proposals solve_at returned) — the shape of ``follow_sizes``' solves — or None."""
    blocks = block_codes(model, x, props)
    if blocks is None:
        return None
    out = symmetric_solve(model, x, props, log, label, wrapper=BlockSymmetricModel(model, blocks), **kw)
    return None if out is None else (out[0], out[1], None, None, out[3])


def solve_kkt_step(model: KKTModel, x, props, log, label, symmetric: bool, hold: bool = False, **kw):
    """The ``solve`` hook of :func:`solvers.deep.complementarity.follow_sizes` for L >= 3: the full equations
    (:func:`solvers.deep.newton.solve_at`), or with ``symmetric`` :func:`block_symmetric_solve` with the truncated
    bulk (at a symmetric point the rule's asymmetry can put one of two equal maximisers' q past 1). ``hold``: one
    Newton solve with the proposals ``props`` held, and for the full equations returned (near three boundaries at
    once the moment-matched proposals of the next round move the residual by more than a step of 1 % in P does)."""
    from solvers.deep.newton import solve_at

    if hold:
        kw["rounds"] = 1
    if not symmetric:
        out = solve_at(model, x, props, log, label, jacobians=False, **kw)
    else:
        with truncated_bulk(model):
            out = block_symmetric_solve(model, x, props, log, label + " (symmetric)", **kw)
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
    blocks = block_codes(trial, xt, props)
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
