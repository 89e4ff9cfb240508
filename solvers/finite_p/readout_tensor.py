"""Tensor rules (trapezoid, Gauss–Hermite) for the readout moments, per placement component.

Each bulk component N(μ_j, L_j L_jᵀ) gets ``order`` nodes per axis in its whitened coordinates
z (trapezoid: on the box |z_i| <= Z), a = μ_j + L_j z, with the balance-heuristic weights of
:mod:`solvers.finite_p.placement`; each needle its own rule (:meth:`Needle.nodes`). ``check``
repeats the pass at a higher order, which becomes the answer; the difference, plus the weight
left on the box edges, is the error estimate (THEORY §3). The trapezoid rule converges
exponentially for these analytic, Gaussian-decaying integrands and, unlike Gauss–Hermite,
equally fast for flat-topped and multi-bump laws.
"""
from __future__ import annotations

from dataclasses import replace
import math

import numpy as np

from solvers.finite_p.placement import Placement
from solvers.finite_p.readout_kernels import (Layout, assemble, combine, kernel_args, log_prior_norm, log_weights,
                                              unpack_sym, weighted_sums)
from solvers.rules import (EDGE_WEIGHT, TRAPEZOID_HALF_WIDTH, TRAPEZOID_MAX_HALF_WIDTH, gauss_hermite_nodes,
                           trapezoid_edge, trapezoid_nodes)

__all__ = ["TENSOR_RULES", "tensor_moments", "tensor_hessian", "check_order"]

TENSOR_RULES = {"trapezoid": trapezoid_nodes, "gauss-hermite": gauss_hermite_nodes}


def _component_pass(prob, placement, comp, n, Z, rule, args, hessian, K):
    """Weighted sums over one bulk component's tensor rule (half-width Z for the trapezoid):
    (sums, ref, number of nodes, largest log weight in the box's outer shell)."""
    m = prob.m
    J = len(placement.components)
    z, logw = trapezoid_nodes(m, n, Z) if rule == "trapezoid" else gauss_hermite_nodes(m, n)
    A = np.ascontiguousarray(comp.mu[None, :] + z @ comp.L.T)
    if J == 1:  # log N_1(A) = log N(z) − log|L|: no density to evaluate
        logv = logw + 0.5 * np.sum(z * z, axis=1) + 0.5 * m * math.log(2 * math.pi) + float(
            np.sum(np.log(np.diag(comp.L))))
    else:
        logv = logw - math.log(J) - placement.log_mixture(A)
    if placement.needles:
        logv = logv + placement.log_shares(A)[0]
    sums, ref, _ = weighted_sums(A, logv, *args, hessian, K)
    edge_top = -np.inf
    if rule == "trapezoid":
        edge = trapezoid_edge(m, n, Z)
        if len(edge):
            edge_top = float(np.max(log_weights(A[edge], logv[edge], *args)))
    return sums, ref, len(A), edge_top


def _bulk_passes(prob, placement, n, rule, args, hessian, K, edge_weight=EDGE_WEIGHT):
    """All bulk components: [(sums, ref)], nodes, and the relative weight left on the box edges.

    For the trapezoid rule a component's box |z| <= Z is widened (at the same spacing) while the
    largest integrand weight in its outer shell exceeds ``edge_weight`` of the largest weight of
    all components: a tail heavier than the component's Gaussian (ReLU near the domain boundary,
    in directions without a needle) would otherwise be cut off at a t-dependent set of nodes,
    which the order-doubling error check cannot see and which stops Newton at a noise floor
    (THEORY §3: the integrator must follow the tails and report its own error). The new Z is
    where a Gaussian tail through the edge weight falls to ``edge_weight`` (at least ×1.2, at
    most ``TRAPEZOID_MAX_HALF_WIDTH``).
    """
    comps = placement.components
    Zs = [TRAPEZOID_HALF_WIDTH] * len(comps)
    ns = [n] * len(comps)
    out = [_component_pass(prob, placement, c, n, Zs[j], rule, args, hessian, K) for j, c in enumerate(comps)]
    log_thr = math.log(edge_weight)
    while True:
        top = max(o[1] for o in out)
        widen = [j for j, o in enumerate(out) if o[3] - top > log_thr and Zs[j] < TRAPEZOID_MAX_HALF_WIDTH]
        if not widen:
            break
        for j in widen:
            rel = out[j][3] - top  # log of the relative edge weight, in (log_thr, 0]
            grow = 1.05 * math.sqrt(log_thr / min(rel, -1.0))
            grow = min(max(1.2, grow), TRAPEZOID_MAX_HALF_WIDTH / Zs[j])
            ns[j] = int(math.ceil((ns[j] - 1) * grow)) + 1
            Zs[j] *= grow
            out[j] = _component_pass(prob, placement, comps[j], ns[j], Zs[j], rule, args, hessian, K)
    top = max(o[1] for o in out)
    edge = max(math.exp(min(0.0, o[3] - top)) for o in out)
    return [(o[0], o[1]) for o in out], sum(o[2] for o in out), edge


def _gh_pass(prob, t, placement: Placement, n, hessian, rule="trapezoid", edge_weight=EDGE_WEIGHT):
    lay = Layout(prob.m, hessian)
    args = kernel_args(prob, t)
    parts, n_nodes, edge = _bulk_passes(prob, placement, n, rule, args, hessian, lay.size, edge_weight)
    bulk, _ = combine(parts)
    bulk = bulk / bulk[0]
    for k, needle in enumerate(placement.needles):
        A, logv = needle.nodes(n)
        logv = logv + placement.log_shares(A)[1][k]
        parts.append(weighted_sums(A, logv, *args, hessian, lay.size)[:2])
        n_nodes += len(A)
    total, ref = combine(parts)
    m = prob.m
    bulk_mean = bulk[lay.mean]
    bulk_cov = unpack_sym(bulk[lay.aa], m) - np.outer(bulk_mean, bulk_mean)
    return (lay, total / total[0], ref + math.log(total[0]) + log_prior_norm(prob), n_nodes,
            (bulk_mean, bulk_cov, edge))


def check_order(order: int) -> int:
    """The order a checked pass compares ``order`` with, and whose values it returns."""
    return order + max(4, order // 3)


def tensor_moments(prob, t, placement, order, hessian, hessian_order, check, rule, rtol):
    """Moments at ``order`` (checked: at the higher order, the difference as error estimate); with
    ``hessian`` the Hessian comes from the same nodes as the final pass when that pass is at
    ``hessian_order`` or higher (one pass for everything), else from its own pass."""
    m = prob.m
    edge_weight = min(EDGE_WEIGHT, 1e-2 * rtol)  # the tail cut at the box edges: 1% of the requested accuracy
    order2 = check_order(order)
    merged = hessian and (order2 >= hessian_order if check else hessian_order == order)
    lay, vals, log_z, n_eval, bulk = _gh_pass(prob, t, placement, order, merged and not check, rule, edge_weight)
    err = np.full(lay.size, np.nan)
    name = f"{rule} {order}^{m} × {placement.describe()}"
    if check:
        lay, vals2, log_z2, n2, bulk = _gh_pass(prob, t, placement, order2, merged, rule, edge_weight)
        # the order difference, plus the weight left on the box edge (the truncated tail; at most
        # edge_weight unless the box reached TRAPEZOID_MAX_HALF_WIDTH); the Hessian rows are not checked
        k = len(vals)
        err = np.zeros(lay.size)
        err[:k] = np.abs(vals2[:k] - vals) + bulk[2] * (1.0 + np.abs(vals2[:k]))
        err[0] = abs(log_z2 - log_z) + bulk[2]
        vals, log_z, n_eval = vals2, log_z2, n_eval + n2
        name = f"{rule} {order2}^{m} (checked against {order}^{m}) × {placement.describe()}"
    out = assemble(prob, lay, t, vals, err, log_z, name, n_eval, bool(check), prob.table().error_estimate)
    out = replace(out, bulk_mean=bulk[0], bulk_covariance=bulk[1])
    if hessian and not merged:
        H, hn = tensor_hessian(prob, t, placement, hessian_order, rule, edge_weight)
        out = replace(out, hessian=H, n_evaluations=out.n_evaluations + hn)
    return out


def tensor_hessian(prob, t, placement, order, rule, edge_weight=EDGE_WEIGHT):
    """(∇²Φ(t), nodes used) from one unchecked tensor pass of ``order`` nodes per axis."""
    hl, hv, hz, hn, _ = _gh_pass(prob, t, placement, order, True, rule, edge_weight)
    return assemble(prob, hl, t, hv, np.zeros(hl.size), hz, "", hn, True, 0.0).hessian, hn
