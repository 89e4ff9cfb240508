"""Replicate (Sobol') integration errors of a deep class-block solution, propagated through the lower layers by
linearisation around the pooled evaluation (THEORY §5; the delta method of :mod:`solvers.deep.saddle`).

The delta method evaluates the residual r_v and observables o_v of each replicate v's rules at the solution x*
and gives o_v + J_o δx_v, δx_v = −J⁺ r_v. Evaluating r_v runs the lower layers with the conjugate kernel
K̃_ℓ that replicate v's rule gives for layer ℓ + 1; near a ReLU domain boundary (a last layer with
needle components, 1/R of the points per replicate) one replicate's K̃_{L-1} can tilt layer L − 1 out of its own
domain, so r_v does not exist and the estimate was infinite. To first order, which is the order of the delta
method itself, each layer's outputs O_ℓ = (k_ℓ, δ_ℓ, k̃_{ℓ-1}, δ̃_{ℓ-1}, and f, U at ℓ = L) are

    O_ℓ^v ≈ O_ℓ(rule_v; K̃_ℓ*) + D_ℓ (K̃_ℓ^v − K̃_ℓ*),    D_ℓ = ∂O_ℓ/∂(k̃_ℓ, δ̃_ℓ) (forward differences),

top-down from ℓ = L (whose tilt t does not depend on the rules), every layer integral at the pooled tilt
K̃_ℓ* (inside the domain); r_v and o_v follow from the O_ℓ^v as in :meth:`solvers.deep.model.DeepModel.evaluate`
and the free energy's change is Δlog Z_L^v (the action is stationary in the lower layers' kernels). The condensate
terms (:mod:`solvers.deep.kkt`) do not depend on the rule, so they cancel in O^v − O*.
"""
from __future__ import annotations

import numpy as np

from theory.deep_blocks import layer_integral, tril_pack, tril_unpack

__all__ = ["linearised_replicates"]


def _flat(r) -> np.ndarray:
    """(tril k, δ, tril k̃_in, δ̃_in, f, U) of one layer's result, the parts it has."""
    parts = [tril_pack(r.k), r.delta]
    if r.kt_in is not None:
        parts += [tril_pack(r.kt_in), r.dt_in]
    if r.outputs is not None:
        parts += [r.outputs.ravel(), r.readout_moment.ravel()]
    return np.concatenate(parts)


def _layer(model, ell, rule, props, kw, kt=None, dt=None):
    """Layer ℓ's integral with ``rule`` (its tilt replaced by (kt, dt) if given), with the condensate terms of the
    lower layers (:class:`solvers.deep.kkt.Barrier`; the last layer's are rule-independent and left out)."""
    if kt is not None:
        kw = dict(kw, kt=kt, dt=dt)
    r = layer_integral(model.oned, model.sizes, model.sigmas[ell - 1], rule, props[ell - 1], **kw)
    return r if model.condensate is None or ell == model.L else model.condensate(model, ell, None, None, r, kw)


def _tilt_jacobian(model, ell, props, kw, base):
    """D_ℓ: forward differences of layer ℓ's flat outputs in its tilt (tril k̃_ℓ, δ̃_ℓ)."""
    m = model.m
    p0 = np.concatenate([tril_pack(kw["kt"]), kw["dt"]])
    D = np.empty((len(base), len(p0)))
    for j in range(len(p0)):
        for h in (1e-6 * max(1.0, abs(p0[j])), -1e-6 * max(1.0, abs(p0[j]))):
            p = p0.copy()
            p[j] += h
            kt = tril_unpack(p[:-m], m)
            kt = kt + np.tril(kt, -1).T
            try:
                with np.errstate(all="ignore"):
                    D[:, j] = (_flat(_layer(model, ell, model.rules[ell - 1], props, kw, kt, p[-m:])) - base) / h
                break
            except ArithmeticError:
                continue
        else:
            return None
    return D


def _split(vec, m, ntri, has_in, top):
    out, k = {}, 0
    for name, n, use in (("k", ntri, True), ("delta", m, True), ("kt", ntri, has_in), ("dt", m, has_in),
                         ("f", m * m, top), ("U", m * m, top)):
        if use:
            out[name], k = vec[k:k + n], k + n
    return out


def linearised_replicates(model, x, ev, props):
    """[(residual_v, obs_v, log Z_L^v − log Z_L*)] for each replicate v of the rules (module docstring), or None
    when a layer's tilt Jacobian cannot be formed."""
    t, ker = model.unpack(np.asarray(x, dtype=np.float64))
    L, m, ntri = model.L, model.m, model.ntri
    pooled = ev["layers"]
    kws = {ell: model.layer_kwargs(ell, t, ker, ev) for ell in range(1, L + 1)}
    jac = {}
    for ell in range(1, L):
        jac[ell] = _tilt_jacobian(model, ell, props, kws[ell], _flat(pooled[ell - 1]))
        if jac[ell] is None:
            return None
    groups = max(r.groups for r in model.rules)
    with np.errstate(all="ignore"):  # the last layer's pooled integral without the barrier (rule-independent terms)
        top = _layer(model, L, model.rules[-1], props, kws[L]) if model.rules[-1].groups > 1 else None
    out = []
    for g in range(groups):
        deltas, tilt, dlogz = [None] * L, None, 0.0
        for ell in range(L, 0, -1):
            rule = model.rules[ell - 1]
            base = _flat(pooled[ell - 1])
            d = np.zeros_like(base)
            if rule.groups > 1:
                with np.errstate(all="ignore"):
                    r = _layer(model, ell, rule.group(g), props, kws[ell])
                    ref = pooled[ell - 1] if ell < L else top
                d = _flat(r) - _flat(ref)
                if ell == L:
                    dlogz = r.log_z - ref.log_z
            if tilt is not None:
                d = d + jac[ell] @ tilt
            deltas[ell - 1] = _split(d, m, ntri, ell >= 2, ell == L)
            tilt = np.concatenate([deltas[ell - 1]["kt"], deltas[ell - 1]["dt"]]) if ell >= 2 else None
        res = [deltas[-1]["f"]] + [np.concatenate([deltas[ell]["k"], deltas[ell]["delta"]]) for ell in range(L - 1)]
        obs = [deltas[-1]["f"], deltas[-1]["U"]]
        for dl in deltas:
            k = tril_unpack(dl["k"], m)
            k = k + np.tril(k, -1).T
            obs += [np.diag(k) + dl["delta"], k.ravel()]
        out.append((ev["residual"] + np.concatenate(res), ev["obs"] + np.concatenate(obs), dlogz))
    return out

