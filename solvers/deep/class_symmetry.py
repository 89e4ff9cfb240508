"""The deep class-block equations restricted to the subspace symmetric under permutations of equal-size classes
(THEORY §3, §5: relabelling classes of equal size maps a solution to a solution; :mod:`solvers.deep.model`).

A permutation π of the classes with P_π(c) = P_c acts on the natural coordinates

    w = (t (m × m), per hidden layer tril k_ℓ and log δ_ℓ, the multipliers μ of a KKT model)

by t ↦ Π t Πᵀ, k_ℓ ↦ Π k_ℓ Πᵀ, δ_ℓ ↦ Π δ_ℓ and μ_j ↦ μ_π(j), where the maximiser π(j) of a domain constraint
(:mod:`solvers.deep.complementarity`) is the one of the same domain (the readout's, the first layer's, a middle
layer's: the same code occurs in several layers) whose code (the classes on) is the image of j's code. The
residual of :meth:`solvers.deep.model.DeepModel.evaluate` (f + T t − Y; tril(k^new − k), δ^new − δ; φ_δ(μ_j,
1 − q_j)) is laid out like w and transforms the same way, so its restriction to the fixed subspace V = {w : g w =
w for every g} is a square system: with Q an orthonormal basis of V (the range of the group average of the
actions, an orthogonal projector), unknowns z = Qᵀ w and equations Qᵀ r(Q z). Exact integration makes r
equivariant, so the symmetric solution solves the full system; a Sobol' rule breaks the symmetry at the level of
its integration error, and the antisymmetric part |(I − QQᵀ) r| at the solution (``asymmetry``) measures it.
Whether a symmetry-broken solution is preferred is a question of stability in the antisymmetric directions, which
the stability test of the full coordinates answers (:mod:`solvers.deep.kkt_stability`).

:class:`SymmetricModel` wraps a model with the interface the Newton solver uses (``n``, ``opt``, ``exact``,
``safe_eval``, ``adapt``), so :func:`solvers.deep.newton.solve_at` solves in the symmetric subspace unchanged.
"""
from __future__ import annotations

import numpy as np

from solvers.deep.model import DeepModel
from theory.deep_fields import tril_pack, tril_unpack
from theory.deep_symmetric_rule import equal_size_permutations, permutation_matrix, pulled_back

__all__ = ["class_permutations", "maximiser_codes", "multiplier_images", "SymmetricModel", "symmetric_proposals",
           "symmetric_solve"]


def class_permutations(sizes) -> list:
    """Every permutation π of the classes with P_π(c) = P_c (the identity first;
    :func:`theory.deep_symmetric_rule.equal_size_permutations`)."""
    return equal_size_permutations(sizes)


def maximiser_codes(model, x, props) -> list | None:
    """The codes (tuples of the classes on) of a KKT model's tracked maximisers at ``x``, one list per domain:
    [[the readout's], [the first layer's], [middle layer 2's], ...] (:class:`solvers.deep.complementarity.
    Multipliers`); None if ``x`` does not evaluate."""
    from solvers.deep.hidden_condensate import hidden_fields

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


def symmetric_proposals(model, x, ev, props, perms) -> list:
    """Each layer's Gaussian proposal averaged over the class permutations ``perms``: the moments of the mixture of
    its images under the action of π on the layer's y = (v, w) (:mod:`theory.deep_layer`): the readout's
    u = σ_a t v and every layer's ξ = σ R_in w permute classes when v ↦ Π v (readout; t symmetric),
    v ↦ B⁻¹ Π B v (hidden layer, B = chol of the group-averaged tilt k̃ of ``ev``) and w ↦ R_in⁻¹ Π R_in w (k_in
    symmetric). A proposal invariant under the group integrates the symmetric problem with the same truncation of
    its needles for classes of equal size (module docstring). Mixture proposals are returned unchanged."""
    from theory.deep_rules import Proposal

    t, ker = model.unpack(np.asarray(x)[:getattr(model, "n_base", model.n)])
    out = []
    for ell, pr in enumerate(props, start=1):
        if not isinstance(pr, Proposal):
            out.append(pr)
            continue
        acts, Pis = [], [permutation_matrix(perm) for perm in perms]
        if ell < model.L:  # the group-averaged tilt k̃
            kt = np.mean([Pi @ ev["layers"][ell].kt_in @ Pi.T for Pi in Pis], axis=0)
            B = np.linalg.cholesky(0.5 * (kt + kt.T))
        for Pi in Pis:
            A = [Pi] if ell == model.L else [pulled_back(B, Pi, orthogonal=False)]
            if ell >= 2:
                A.append(pulled_back(ker[ell - 2][0], Pi, orthogonal=False))
            acts.append(np.block([[a if i == j else np.zeros((len(a), len(b))) for j, b in enumerate(A)]
                                  for i, a in enumerate(A)]))
        mean = np.mean([A @ pr.mean for A in acts], axis=0)
        second = np.mean([A @ (pr.chol @ pr.chol.T + np.outer(pr.mean, pr.mean)) @ A.T for A in acts], axis=0)
        out.append(Proposal.from_moments(mean, second - np.outer(mean, mean)))
    return out


def multiplier_images(codes, perm) -> np.ndarray | None:
    """The index map j ↦ π(j) of the multipliers (the domains' ``codes`` of :func:`maximiser_codes`
    concatenated) under the class permutation ``perm``, each image looked up within its own domain (the same code,
    say 010, occurs in several layers); None if some image code is missing or not unique."""
    out, off = [], 0
    for block in codes:
        keys = [tuple(sorted(c)) for c in block]
        for code in block:
            image = tuple(sorted(int(perm[c]) for c in code))
            hits = [i for i, k in enumerate(keys) if k == image]
            if len(hits) != 1:
                return None
            out.append(off + hits[0])
        off += len(block)
    return np.array(out, dtype=int)


class SymmetricModel:
    """``base`` (a :class:`solvers.deep.model.DeepModel` or KKT model) restricted to the subspace symmetric under
    the class permutations of equal-size classes (module docstring). ``codes``: the maximisers' codes per domain
    (:func:`maximiser_codes`; None for a model without multipliers). Unknowns z = Qᵀ w; :meth:`full` maps z to the
    base model's packed x. If a permutation has no image for some maximiser's code, only the permutations that do
    are imposed (``imposed``)."""

    def __init__(self, base, codes=None):
        self.base = base
        self.opt, self.exact = base.opt, base.exact
        m, L = base.m, base.L
        self.n_mu = getattr(base, "n_mu", 0)
        actions, self.imposed = [], []
        for perm in class_permutations(base.sizes):
            images = multiplier_images(codes, perm) if self.n_mu else np.zeros(0, dtype=int)
            if images is None:
                continue
            actions.append(self._action(perm, images))
            self.imposed.append(perm)
        proj = np.mean(actions, axis=0)
        w, V = np.linalg.eigh(0.5 * (proj + proj.T))
        self.Q = V[:, w > 0.5]
        self.projector = self.Q @ self.Q.T
        self.n = self.Q.shape[1]
        self.nw = len(proj)
        self._m, self._L = m, L

    def _action(self, perm, images) -> np.ndarray:
        """The permutation matrix of ``perm`` on the natural coordinates w (and on the residual)."""
        m, L = self.base.m, self.base.L
        idx = np.arange(m * m).reshape(m, m)
        blocks = [idx[np.ix_(perm, perm)].ravel()]  # (Π t Πᵀ)_cr = t_π(c)π(r)
        tri = np.full((m, m), -1)
        tri[np.tril_indices(m)] = np.arange(m * (m + 1) // 2)
        tri = np.maximum(tri, tri.T)
        off = m * m
        for _ in range(L - 1):
            blocks += [off + tri[np.ix_(perm, perm)][np.tril_indices(m)], off + m * (m + 1) // 2 + perm]
            off += m * (m + 1) // 2 + m
        blocks.append(off + images)
        src = np.concatenate(blocks)
        A = np.zeros((len(src), len(src)))
        A[np.arange(len(src)), src] = 1.0
        return A

    # --- coordinates
    def natural(self, x) -> np.ndarray:
        """w of the base model's packed x."""
        base = self.base
        x = np.asarray(x, dtype=np.float64)
        t, ker = base.unpack(x[:getattr(base, "n_base", base.n)])
        parts = [t.ravel()] + [np.concatenate([tril_pack(R @ R.T), np.log(d)]) for R, d in ker]
        return np.concatenate(parts + [x[len(x) - self.n_mu:] if self.n_mu else np.zeros(0)])

    def full(self, z) -> np.ndarray:
        """The base model's packed x of the symmetric point Q z."""
        base, m = self.base, self._m
        w = self.Q @ np.asarray(z, dtype=np.float64)
        t, off, kers = w[:m * m].reshape(m, m), m * m, []
        for _ in range(self._L - 1):
            lo = tril_unpack(w[off:off + base.ntri], m)
            kers.append((lo + np.tril(lo, -1).T, np.exp(w[off + base.ntri:off + base.ntri + m])))
            off += base.ntri + m
        x = base.pack(t, kers)
        return np.concatenate([x, w[off:]]) if self.n_mu else x

    def reduce(self, x) -> np.ndarray:
        """z of the symmetric part of the base model's x."""
        return self.Q.T @ self.natural(x)

    # --- the interface of solvers.deep.newton
    def evaluate(self, z, proposals, rules=None, oned=None):
        ev = self.base.evaluate(self.full(z), proposals, rules=rules, oned=oned)
        r = ev["residual"]
        ev["full_residual"] = r
        ev["asymmetry"] = float(np.max(np.abs(r - self.projector @ r), initial=0.0))
        ev["residual"] = self.Q.T @ r
        return ev

    safe_eval = DeepModel.safe_eval  # (None where the base model's evaluation fails or is not finite)

    def adapt(self, ev, inflate, props=None):
        return self.base.adapt(ev, inflate, props)


def symmetric_solve(model, x, props, log, label, codes=None, average: bool = True, **kw):
    """:func:`solvers.deep.newton.solve_at` (options ``kw``) on ``model`` restricted to the symmetric subspace
    (:class:`SymmetricModel`, the maximisers' ``codes`` found at ``x`` if None) from the symmetric part of ``x``,
    with ``props`` as given (``average`` False) or the group-averaged proposals of
    :func:`symmetric_proposals`. Returns (x in ``model``'s coordinates, the symmetric evaluation, the proposals
    solved with, the proposals solve_at returned, the wrapper) or None. A ``memory``
    (:class:`solvers.deep.newton.JacobianMemory`) in ``kw`` keeps the Jacobian in the natural coordinates w, so that
    solves with the same maximisers' codes share it."""
    from solvers.deep.newton import solve_at

    codes = maximiser_codes(model, x, props) if codes is None and getattr(model, "n_mu", 0) else codes
    if codes is None and getattr(model, "n_mu", 0):
        return None
    if codes is not None and any(len(set(map(tuple, block))) < len(block) for block in codes):
        return None  # two tracked maximisers of one domain on the same code: no class permutation is defined
    sym = SymmetricModel(model, codes)
    z = sym.reduce(x)
    ev = sym.safe_eval(z, props)
    if ev is None:
        return None
    props = symmetric_proposals(model, sym.full(z), ev, props, sym.imposed) if average else props
    if kw.get("memory") is not None:  # the kept Jacobian in the natural coordinates w, seen in z (w = Q z)
        key = ("natural", None if codes is None else tuple(tuple(map(tuple, block)) for block in codes))
        kw["memory"] = kw["memory"].projected(sym.Q, key)
    out = solve_at(sym, z, props, log, label, jacobians=False, **kw)
    return None if out is None else (sym.full(out[0]), out[1], props, out[4], sym)
