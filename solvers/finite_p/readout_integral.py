"""Moments of the single-neuron readout law p_t(a) for class-structured data.

    p_t(a) ∝ N(a; 0, σ_a² I_m) exp(Σ_c P_c ψ(t_c·a)) = e^{S(a)} / norm      (THEORY §3)

One pass over nodes a_k with log weights v_k, ∫ e^{S} F da ≈ Σ_k e^{S(a_k) + v_k} F(a_k),
gives everything the solvers need:

* Φ(t) = log E_prior exp(Σ_c P_c ψ(t_c·a)),
* f_cr = E[a_r ψ'(g_c)],  U = E[a aᵀ],  E[a],
* kernel: diagonal K_c = E[ψ''(g_c) + ψ'(g_c)²], blocks K_cd = E[ψ'(g_c) ψ'(g_d)],
* ∇²Φ: P_c P_d Cov[a_r ψ'_c, a_s ψ'_d] + δ_cd P_c E[a_r a_s ψ''_c],

with g_c = t_c·a. The nodes come from a :class:`~solvers.finite_p.placement.Placement`,
a mixture of Gaussian components N_j split by the balance heuristic
β_j = N_j / Σ_i N_i (exact for any components). Three rules integrate each
component's share:

``"trapezoid"`` (default for m <= 4) and ``"gauss-hermite"``
    tensor rules with ``order`` nodes per axis in the component's
    coordinates (trapezoid: on [−7.5, 7.5] in units of the inflated
    covariance); ``check`` compares with a higher order, which becomes the
    answer, and the difference is the error estimate. The trapezoid rule
    converges exponentially for these analytic, Gaussian-decaying
    integrands and, unlike Gauss–Hermite, equally fast for flat-topped and
    multi-bump laws.
``"cubature"`` (fallback for m <= 6)
    adaptive Genz–Malik cubature on the cube, a = μ_j + L_j z,
    z_i = u_i/(1 − u_i²), to a relative error estimate ``rtol``.
``"qmc"`` (default for m >= 5; works to m = 10)
    self-normalised importance sampling from the mixture of Student-t
    (ν = 5) components on R independent scrambled Sobol sequences. The nodes
    are fixed for a given seed (common random numbers), so Φ stays smooth and
    convex in t for the outer Newton solve; the spread over replicates is
    the error bar.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
import math

import numba
import numpy as np
from scipy import special, stats

from theory.psi import psi_interp

from solvers.cubature import adaptive_cubature, genz_malik_rule, _initial_partition, _region_points
from solvers.finite_p.placement import Placement
from solvers.rules import (EDGE_WEIGHT, TRAPEZOID_HALF_WIDTH, TRAPEZOID_MAX_HALF_WIDTH, gauss_hermite_nodes,
                    trapezoid_edge, trapezoid_nodes)
from solvers.finite_p.problem import ClassProblem

__all__ = ["Layout", "ReadoutMoments", "QMCNodes", "readout_moments", "readout_hessian", "INTEGRATORS"]

INTEGRATORS = ("trapezoid", "gauss-hermite", "cubature", "qmc")


class Layout:
    """Positions of the integrand components (upper triangles for symmetric pairs)."""

    def __init__(self, m: int, hessian: bool):
        self.m, self.hessian = m, hessian
        tri = m * (m + 1) // 2
        sizes = [("one", 1), ("mean", m), ("aa", tri), ("pp", tri), ("p2", m), ("ap", m * m)]
        if hessian:
            sizes += [("aap2", m * tri), ("apap", m * m * (m * m + 1) // 2)]
        start = 0
        for name, n in sizes:
            setattr(self, name, slice(start, start + n))
            start += n
        self.size = start
        # controlled components: Φ, f, U, kernel (the Hessian follows on the same nodes)
        self.controlled = np.r_[0:self.ap.stop]


# ----------------------------------------------------------------------------- compiled integrand

@numba.njit(cache=True, inline="always")
def _fill(a, p1, p2, w, hessian, v, row):
    m = a.shape[0]
    k = 0
    row[k] = w
    k += 1
    for r in range(m):
        row[k] = w * a[r]
        k += 1
    for r in range(m):
        for s in range(r, m):
            row[k] = w * a[r] * a[s]
            k += 1
    for c in range(m):
        for d in range(c, m):
            row[k] = w * p1[c] * p1[d]
            k += 1
    for c in range(m):
        row[k] = w * p2[c]
        k += 1
    for c in range(m):
        for r in range(m):
            v[c * m + r] = a[r] * p1[c]
            row[k] = w * v[c * m + r]
            k += 1
    if hessian:
        for c in range(m):
            for r in range(m):
                for s in range(r, m):
                    row[k] = w * a[r] * a[s] * p2[c]
                    k += 1
        mm = m * m
        for p in range(mm):
            wp = w * v[p]
            for q in range(p, mm):
                row[k] = wp * v[q]
                k += 1


@numba.njit(cache=True, inline="always")
def _log_tilt(a, t, Pc, inv_var_a, s, dx, tab, p1, p2):
    """S(a) = −|a|²/2σ_a² + Σ_c P_c ψ(t_c·a); fills ψ'(g_c), ψ''(g_c)."""
    m = a.shape[0]
    S = 0.0
    for r in range(m):
        S -= 0.5 * inv_var_a * a[r] * a[r]
    for c in range(m):
        g = 0.0
        for r in range(m):
            g += t[c, r] * a[r]
        ps, ps1, ps2 = psi_interp(g, s, dx, tab)
        S += Pc[c] * ps
        p1[c] = ps1
        p2[c] = ps2
    return S


@numba.njit(cache=True)
def _log_weights(A, logv, t, Pc, inv_var_a, s, dx, tab):
    n, m = A.shape
    out = np.empty(n)
    p1, p2 = np.empty(m), np.empty(m)
    for i in range(n):
        out[i] = _log_tilt(A[i], t, Pc, inv_var_a, s, dx, tab, p1, p2) + logv[i]
    return out


@numba.njit(cache=True)
def _weighted_rows(A, logv, ref, t, Pc, inv_var_a, s, dx, tab, hessian, K):
    """Rows e^{S(a_k) + v_k − ref} F(a_k) (for the adaptive cubature)."""
    n, m = A.shape
    out = np.empty((n, K))
    p1, p2, v = np.empty(m), np.empty(m), np.empty(m * m)
    for i in range(n):
        S = _log_tilt(A[i], t, Pc, inv_var_a, s, dx, tab, p1, p2)
        _fill(A[i], p1, p2, math.exp(S + logv[i] - ref), hessian, v, out[i])
    return out


_CHUNKS = 16  # work units for the parallel loops (a multiple of the core count)


@numba.njit(cache=True, parallel=True)
def _weighted_sums(A, logv, t, Pc, inv_var_a, s, dx, tab, hessian, K):
    """(Σ_k e^{S(a_k) + v_k − ref} F(a_k), ref, Σ_k e^{2(S + v − ref)}).

    Nodes whose weight is below 1e-17 of the largest are skipped: they cannot
    change a float64 sum. Work is split into chunks summed in parallel.
    """
    n, m = A.shape
    logw = np.empty(n)
    P1 = np.empty((n, m))
    P2 = np.empty((n, m))
    for c in numba.prange(_CHUNKS):
        for i in range(c * n // _CHUNKS, (c + 1) * n // _CHUNKS):
            logw[i] = _log_tilt(A[i], t, Pc, inv_var_a, s, dx, tab, P1[i], P2[i]) + logv[i]
    ref = np.max(logw)
    partial = np.zeros((_CHUNKS, K))
    partial_w2 = np.zeros(_CHUNKS)
    for c in numba.prange(_CHUNKS):
        v = np.empty(m * m)
        row = np.empty(K)
        for i in range(c * n // _CHUNKS, (c + 1) * n // _CHUNKS):
            w = math.exp(logw[i] - ref)
            if w < 1e-17:
                continue
            partial_w2[c] += w * w
            _fill(A[i], P1[i], P2[i], w, hessian, v, row)
            for k in range(K):
                partial[c, k] += row[k]
    return partial.sum(axis=0), ref, partial_w2.sum()


# ----------------------------------------------------------------------------- result type

@dataclass(frozen=True)
class ReadoutMoments:
    """Everything one integration pass gives at a field t (see the module docstring)."""

    t: np.ndarray
    log_partition: float  # Φ(t)
    outputs: np.ndarray  # f (m×m), f[c, r] = E[a_r ψ'(t_c·a)]
    readout_mean: np.ndarray  # E[a]
    readout_moment: np.ndarray  # U = E[a aᵀ]
    kernel_diagonal: np.ndarray  # (m,)
    kernel_blocks: np.ndarray  # (m, m)
    hessian: np.ndarray | None  # ∇²Φ as (m², m²) in the flattening c*m + r
    error: dict  # absolute error estimates (NaN if not estimated)
    integrator: str
    n_evaluations: int
    converged: bool
    bulk_mean: np.ndarray | None = None  # E[a] over the bulk share (without needles)
    bulk_covariance: np.ndarray | None = None

    @property
    def error_estimate(self) -> float:
        """Largest absolute error estimate over f, U and the kernel (NaN if unchecked)."""
        return float(max(np.max(self.error["outputs"]), np.max(self.error["readout_moment"]),
                         np.max(self.error["kernel_diagonal"]), np.max(self.error["kernel_blocks"])))

    @property
    def relative_error_estimate(self) -> float:
        """Largest error estimate relative to the observable's scale, max(1, max |value|), over f, U, kernel."""
        pairs = [("outputs", self.outputs), ("readout_moment", self.readout_moment),
                 ("kernel_diagonal", self.kernel_diagonal), ("kernel_blocks", self.kernel_blocks)]
        return float(max(np.max(self.error[k]) / max(1.0, float(np.max(np.abs(v)))) for k, v in pairs))

    @property
    def readout_covariance(self) -> np.ndarray:
        return self.readout_moment - np.outer(self.readout_mean, self.readout_mean)

    def bulk_moments(self):
        """(mean, covariance) of the bulk of p(a), for placing the next nodes."""
        if self.bulk_mean is None:
            return self.readout_mean, self.readout_covariance
        return self.bulk_mean, self.bulk_covariance


def _unpack_sym(vec: np.ndarray, m: int) -> np.ndarray:
    M = np.zeros((m, m))
    M[np.triu_indices(m)] = vec
    return M + np.triu(M, 1).T


def _assemble(prob, lay, t, E, err, log_z, integrator, n_eval, converged, table_error):
    """Moments from normalised component means E (and their absolute errors)."""
    m = prob.m
    Pc = prob.class_sizes
    f = E[lay.ap].reshape(m, m)
    U = _unpack_sym(E[lay.aa], m)
    blocks = _unpack_sym(E[lay.pp], m)
    diag = E[lay.p2] + np.diag(blocks)
    hess = None
    if lay.hessian:
        mm = m * m
        C = _unpack_sym(E[lay.apap], mm) - np.outer(f.ravel(), f.ravel())
        w = np.repeat(Pc, m)  # P_c for the flattened index c*m + r
        hess = w[:, None] * C * w[None, :]
        aap2 = E[lay.aap2].reshape(m, -1)
        for c in range(m):
            hess[c * m:(c + 1) * m, c * m:(c + 1) * m] += Pc[c] * _unpack_sym(aap2[c], m)
        hess = 0.5 * (hess + hess.T)
    # ψ-table errors are relative to 1 + |value|; propagate them to first order.
    scale_a = np.sqrt(np.maximum(np.diag(U), 0.0))
    errors = {
        "log_partition": float(err[0] + table_error * Pc.sum()),
        "outputs": err[lay.ap].reshape(m, m) + table_error * (1 + np.abs(f)) * scale_a[None, :],
        "readout_moment": _unpack_sym(err[lay.aa], m),
        "kernel_diagonal": err[lay.p2] + np.diag(_unpack_sym(err[lay.pp], m)) + 3 * table_error * (1 + np.abs(diag)),
        "kernel_blocks": _unpack_sym(err[lay.pp], m) + 2 * table_error * (1 + np.abs(blocks)),
    }
    return ReadoutMoments(t=t.copy(), log_partition=float(log_z), outputs=f, readout_mean=E[lay.mean].copy(),
                          readout_moment=U, kernel_diagonal=diag, kernel_blocks=blocks, hessian=hess,
                          error=errors, integrator=integrator, n_evaluations=int(n_eval), converged=converged)


def _log_prior_norm(prob):
    return -0.5 * prob.m * math.log(2 * math.pi * prob.spec.sigma_a**2)


def _kernel_args(prob, t):
    tab = prob.table()
    return (np.ascontiguousarray(t), prob.class_sizes, 1.0 / prob.spec.sigma_a**2, tab.scale, tab.dx, tab.values)


def _combine(parts):
    """Sum partial (sums, ref) pairs from several node sets."""
    refs = np.array([r for _, r in parts])
    top = refs.max()
    total = sum(s * math.exp(r - top) for s, r in parts)
    if not (total[0] > 0 and np.all(np.isfinite(total))):
        raise FloatingPointError("readout integral is not finite: t is outside the domain of Φ")
    return total, top


# ----------------------------------------------------------------------------- Gauss–Hermite

_TENSOR_RULES = {"trapezoid": trapezoid_nodes, "gauss-hermite": gauss_hermite_nodes}


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
    sums, ref, _ = _weighted_sums(A, logv, *args, hessian, K)
    edge_top = -np.inf
    if rule == "trapezoid":
        edge = trapezoid_edge(m, n, Z)
        if len(edge):
            edge_top = float(np.max(_log_weights(A[edge], logv[edge], *args)))
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
    args = _kernel_args(prob, t)
    parts, n_nodes, edge = _bulk_passes(prob, placement, n, rule, args, hessian, lay.size, edge_weight)
    bulk, _ = _combine(parts)
    bulk = bulk / bulk[0]
    for k, needle in enumerate(placement.needles):
        A, logv = needle.nodes(n)
        logv = logv + placement.log_shares(A)[1][k]
        parts.append(_weighted_sums(A, logv, *args, hessian, lay.size)[:2])
        n_nodes += len(A)
    total, ref = _combine(parts)
    m = prob.m
    bulk_mean = bulk[lay.mean]
    bulk_cov = _unpack_sym(bulk[lay.aa], m) - np.outer(bulk_mean, bulk_mean)
    return (lay, total / total[0], ref + math.log(total[0]) + _log_prior_norm(prob), n_nodes,
            (bulk_mean, bulk_cov, edge))


def _tensor_moments(prob, t, placement, order, hessian, hessian_order, check, rule, rtol):
    m = prob.m
    edge_weight = min(EDGE_WEIGHT, 1e-2 * rtol)  # the tail cut at the box edges: 1% of the requested accuracy
    lay, vals, log_z, n_eval, bulk = _gh_pass(prob, t, placement, order, False, rule, edge_weight)
    err = np.full(lay.size, np.nan)
    name = f"{rule} {order}^{m} × {placement.describe()}"
    if check:
        order2 = order + max(4, order // 3)
        _, vals2, log_z2, n2, bulk = _gh_pass(prob, t, placement, order2, False, rule, edge_weight)
        # the order difference, plus the weight left on the box edge (the truncated tail; at most
        # edge_weight unless the box reached TRAPEZOID_MAX_HALF_WIDTH)
        err = np.abs(vals2 - vals) + bulk[2] * (1.0 + np.abs(vals2))
        err[0] = abs(log_z2 - log_z) + bulk[2]
        vals, log_z, n_eval = vals2, log_z2, n_eval + n2
        name = f"{rule} {order2}^{m} (checked against {order}^{m}) × {placement.describe()}"
    out = _assemble(prob, lay, t, vals, err, log_z, name, n_eval, bool(check), prob.table().error_estimate)
    out = replace(out, bulk_mean=bulk[0], bulk_covariance=bulk[1])
    if hessian:
        hl, hv, hz, hn, _ = _gh_pass(prob, t, placement, hessian_order, True, rule, edge_weight)
        coarse = _assemble(prob, hl, t, hv, np.zeros(hl.size), hz, "", hn, True, 0.0)
        out = replace(out, hessian=coarse.hessian, n_evaluations=out.n_evaluations + hn)
    return out


# ----------------------------------------------------------------------------- adaptive cubature

def _cubature_moments(prob, t, placement, rtol, hessian, max_evaluations):
    placement = placement.as_gaussian_mixture()
    m = prob.m
    lay = Layout(m, hessian)
    args = _kernel_args(prob, t)
    J = len(placement.components)
    nodes = genz_malik_rule(m)[0]
    c0, h0 = _initial_partition(m, 4)
    u0 = _region_points(c0, h0, nodes)
    parts, errs, n_eval, regions, ok = [], [], 0, 0, True
    for comp in placement.components:
        logdet = float(np.sum(np.log(np.diag(comp.L))))

        def to_a(u, comp=comp, logdet=logdet):
            d = 1.0 - u * u
            z = u / d
            logjac = np.sum(np.log1p(u * u) - 2.0 * np.log(d), axis=1)
            A = np.ascontiguousarray(comp.mu[None, :] + z @ comp.L.T)
            logv = logjac + logdet + comp.log_density(A) - math.log(J) - placement.log_mixture(A)
            return A, logv

        ref = float(np.max(_log_weights(*to_a(u0), *args)))

        def integrand(u, to_a=to_a, ref=ref):
            return _weighted_rows(*to_a(u), ref, *args, hessian, lay.size)

        res = adaptive_cubature(integrand, m, rtol=rtol / J, max_evaluations=max_evaluations // J,
                                components=lay.controlled)
        parts.append((res.integral, ref))
        errs.append((res.error, ref))
        n_eval += res.n_evaluations
        regions += res.n_regions
        ok = ok and res.converged
    total, top = _combine(parts)
    err_total = sum(e * math.exp(r - top) for e, r in errs)
    Z = total[0]
    vals = total / Z
    err = (err_total + np.abs(vals) * err_total[0]) / Z
    err[0] = err_total[0] / Z  # relative error of Z = absolute error of Φ
    log_z = top + math.log(Z) + _log_prior_norm(prob)
    return _assemble(prob, lay, t, vals, err, log_z, f"adaptive cubature ({regions} regions) × {placement.describe()}",
                     n_eval, ok, prob.table().error_estimate)


# ----------------------------------------------------------------------------- randomised QMC

_QMC_NU = 5.0


@dataclass(frozen=True)
class QMCNodes:
    """Fixed standardised Student-t (ν = 5) nodes, R replicates × n, from scrambled Sobol sequences."""

    z: np.ndarray  # (R, n, m)

    @classmethod
    def make(cls, m: int, n: int = 4096, replicates: int = 8, seed: int = 0) -> "QMCNodes":
        zs = []
        for r in range(replicates):
            u = stats.qmc.Sobol(d=m + 1, scramble=True, seed=seed + 7919 * r).random(n)
            u = np.clip(u, 1e-12, 1 - 1e-12)
            zs.append(special.ndtri(u[:, :m]) / np.sqrt(special.chdtri(_QMC_NU, u[:, m]) / _QMC_NU)[:, None])
        return cls(np.array(zs))


def _log_t_density(comp, A):
    m, nu = len(comp.mu), _QMC_NU
    Z = np.linalg.solve(comp.L, (A - comp.mu).T)
    return (special.gammaln((nu + m) / 2) - special.gammaln(nu / 2) - 0.5 * m * math.log(nu * math.pi)
            - float(np.sum(np.log(np.diag(comp.L)))) - 0.5 * (nu + m) * np.log1p(np.sum(Z * Z, axis=0) / nu))


def _qmc_moments(prob, t, placement, nodes: QMCNodes, hessian):
    placement = placement.as_gaussian_mixture()
    m = prob.m
    lay = Layout(m, hessian)
    args = _kernel_args(prob, t)
    R, n, _ = nodes.z.shape
    comps = placement.components
    J = len(comps)
    per_rep, ess, reps = [], 0.0, []
    for r in range(R):
        # deterministic mixture: n/J nodes from each Student-t component, balance-heuristic weights
        idx = np.array_split(np.arange(n), J)
        A = np.concatenate([comps[j].mu[None, :] + nodes.z[r, idx[j]] @ comps[j].L.T for j in range(J)])
        logs = np.array([_log_t_density(c, A) for c in comps])
        top = logs.max(axis=0)
        logq = top + np.log(np.mean(np.exp(logs - top), axis=0))
        s_r, ref_r, w2 = _weighted_sums(np.ascontiguousarray(A), -logq - math.log(n), *args, hessian, lay.size)
        reps.append((s_r, ref_r))
        per_rep.append(s_r / s_r[0])
        ess += s_r[0] ** 2 / w2
    total, top = _combine(reps)
    vals = total / total[0]
    per_rep = np.array(per_rep)
    err = per_rep.std(axis=0, ddof=1) / math.sqrt(R)
    log_zr = np.array([ref + math.log(s[0]) for s, ref in reps])
    err[0] = float(np.std(log_zr, ddof=1) / math.sqrt(R))
    log_z = top + math.log(total[0] / R) + _log_prior_norm(prob)
    return _assemble(prob, lay, t, vals, err, log_z,
                     f"qmc importance sampling (ESS {ess:.0f} of {R * n}) × {placement.describe()}",
                     R * n, True, prob.table().error_estimate)


# ----------------------------------------------------------------------------- entry point

def readout_hessian(prob: ClassProblem, t: np.ndarray, placement: Placement, *, integrator: str = "trapezoid",
                    order: int = 24, qmc_nodes: QMCNodes | None = None) -> np.ndarray:
    """∇²Φ(t) alone (m² × m²), for solvers that need it only at accepted iterates."""
    t = np.asarray(t, dtype=np.float64)
    if integrator in _TENSOR_RULES:
        hl, hv, hz, hn, _ = _gh_pass(prob, t, placement, order, True, integrator)
        return _assemble(prob, hl, t, hv, np.zeros(hl.size), hz, "", hn, True, 0.0).hessian
    return readout_moments(prob, t, placement, integrator=integrator, hessian=True, rtol=1e-4,
                           qmc_nodes=qmc_nodes).hessian


def readout_moments(prob: ClassProblem, t: np.ndarray, placement: Placement, *,
                    integrator: str = "trapezoid", order: int = 32, check: bool = True,
                    hessian: bool = True, hessian_order: int = 12, rtol: float = 1e-6,
                    qmc_nodes: QMCNodes | None = None, max_evaluations: int = 3_000_000) -> ReadoutMoments:
    """Moments of p_t(a) at the field ``t`` (m × m, row c is t_c) with nodes from ``placement``.

    Raises ``FloatingPointError`` when the integral is infinite (outside the domain).
    """
    t = np.asarray(t, dtype=np.float64)
    m = prob.m
    if t.shape != (m, m):
        raise ValueError(f"t must have shape ({m}, {m}) (got {t.shape})")
    if integrator in _TENSOR_RULES:
        return _tensor_moments(prob, t, placement, order, hessian, hessian_order, check, integrator, rtol)
    if integrator == "cubature":
        if m > 6:
            raise ValueError(f"integrator 'cubature' supports m <= 6 classes (got m = {m}); use 'qmc'")
        return _cubature_moments(prob, t, placement, rtol, hessian, max_evaluations)
    if integrator == "qmc":
        return _qmc_moments(prob, t, placement, qmc_nodes or QMCNodes.make(m), hessian)
    raise ValueError(f"integrator must be one of {INTEGRATORS} (got {integrator!r})")
