"""Moments of the single-neuron readout law p_t(a) for class-structured data.

    p_t(a) ∝ N(a; 0, σ_a² I_m) exp(Σ_c P_c ψ(t_c·a))           (THEORY §3)

One pass over nodes a_i with weights w_i gives everything the solvers need:

* Φ(t) = log E_prior exp(Σ_c P_c ψ(t_c·a)),
* f_cr = E[a_r ψ'(g_c)],  U = E[a aᵀ],  E[a],
* kernel: diagonal K_c = E[ψ''(g_c) + ψ'(g_c)²], blocks K_cd = E[ψ'(g_c) ψ'(g_d)],
* ∇²Φ: P_c P_d Cov[a_r ψ'_c, a_s ψ'_d] + δ_cd P_c E[a_r a_s ψ''_c],

with g_c = t_c·a. Two integrators share the compiled integrand:

``"cubature"`` (default for m <= 3)
    a = μ + L z, z_j = u_j / (1 − u_j²), u ∈ (−1, 1)^m, where (μ, L) are the
    mean and Cholesky factor of p(a) from the previous iterate. The map
    sends the whole of R^m to the cube, so heavy tails along near-marginal
    directions and separated modes are all inside the integration domain,
    and adaptive Genz–Malik cubature (:mod:`solvers.cubature`) refines where
    the integrand needs it, with its own error estimate.
``"qmc"`` (default for m >= 4; works to m = 10)
    Self-normalised importance sampling from a multivariate Student-t
    (ν = 5) with the same (μ, L), on R independent scrambled Sobol
    sequences. The nodes are fixed for a given ``seed`` (common random
    numbers), so Φ stays a smooth convex function of t for the outer Newton
    solve, and the spread over the R replicates is the error bar.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
import math

import numba
import numpy as np
from scipy import special, stats

from theory.psi import psi_interp

from .cubature import adaptive_cubature, genz_malik_rule, _initial_partition, _region_points
from .problem import ClassProblem

__all__ = ["Layout", "Mapping", "ReadoutMoments", "readout_moments"]


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
        # controlled components: Φ, f, U, kernel (the Hessian follows on the same regions)
        self.controlled = np.r_[0:self.ap.stop]


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
def _log_tilt(a, t, Pc, inv_var_a, g0, step, tab, p1, p2):
    """S(a) = −|a|²/2σ_a² + Σ_c P_c ψ(t_c·a); fills ψ'(g_c), ψ''(g_c)."""
    m = a.shape[0]
    S = 0.0
    for r in range(m):
        S -= 0.5 * inv_var_a * a[r] * a[r]
    for c in range(m):
        g = 0.0
        for r in range(m):
            g += t[c, r] * a[r]
        ps, ps1, ps2 = psi_interp(g, g0, step, tab)
        S += Pc[c] * ps
        p1[c] = ps1
        p2[c] = ps2
    return S


@numba.njit(cache=True, inline="always")
def _cube_to_a(u, mu, L, a, z):
    m = mu.shape[0]
    logjac = 0.0
    for j in range(m):
        uj = u[j]
        d = 1.0 - uj * uj
        z[j] = uj / d
        logjac += math.log1p(uj * uj) - 2.0 * math.log(d)
    for r in range(m):
        s = mu[r]
        for j in range(r + 1):
            s += L[r, j] * z[j]
        a[r] = s
    return logjac


@numba.njit(cache=True)
def _cube_log_weights(u, mu, L, t, Pc, inv_var_a, g0, step, tab):
    n, m = u.shape
    out = np.empty(n)
    a, z, p1, p2 = np.empty(m), np.empty(m), np.empty(m), np.empty(m)
    for i in range(n):
        logjac = _cube_to_a(u[i], mu, L, a, z)
        out[i] = _log_tilt(a, t, Pc, inv_var_a, g0, step, tab, p1, p2) + logjac
    return out


@numba.njit(cache=True)
def _cube_values(u, mu, L, t, Pc, inv_var_a, ref, g0, step, tab, hessian, K):
    n, m = u.shape
    out = np.empty((n, K))
    a, z, p1, p2, v = np.empty(m), np.empty(m), np.empty(m), np.empty(m), np.empty(m * m)
    for i in range(n):
        logjac = _cube_to_a(u[i], mu, L, a, z)
        S = _log_tilt(a, t, Pc, inv_var_a, g0, step, tab, p1, p2)
        _fill(a, p1, p2, math.exp(S - ref + logjac), hessian, v, out[i])
    return out


@numba.njit(cache=True)
def _weighted_sums(A, logv, t, Pc, inv_var_a, g0, step, tab, hessian, K):
    """Σ_k e^{S(a_k) + logv_k − ref} F(a_k) over nodes a_k with log node weights logv_k.

    Returns (sums (K,), ref); ∫ e^{S(a)} F(a) da ≈ e^{ref} · sums.
    """
    n, m = A.shape
    logw = np.empty(n)
    p1, p2, v = np.empty(m), np.empty(m), np.empty(m * m)
    ref = -np.inf
    for i in range(n):
        logw[i] = _log_tilt(A[i], t, Pc, inv_var_a, g0, step, tab, p1, p2) + logv[i]
        if logw[i] > ref:
            ref = logw[i]
    sums = np.zeros(K)
    row = np.empty(K)
    sum_w2 = 0.0
    for i in range(n):
        w = math.exp(logw[i] - ref)
        if w < 1e-300:
            continue
        sum_w2 += w * w
        _log_tilt(A[i], t, Pc, inv_var_a, g0, step, tab, p1, p2)
        _fill(A[i], p1, p2, w, hessian, v, row)
        for k in range(K):
            sums[k] += row[k]
    return sums, ref, sum_w2


@dataclass(frozen=True)
class Mapping:
    """Location μ and lower Cholesky factor L used to place the integration nodes."""

    mu: np.ndarray
    L: np.ndarray

    @classmethod
    def prior(cls, m: int, sigma_a: float) -> "Mapping":
        return cls(np.zeros(m), sigma_a * np.eye(m))

    @classmethod
    def from_moments(cls, mean: np.ndarray, second: np.ndarray, floor: float) -> "Mapping":
        cov = second - np.outer(mean, mean)
        cov = 0.5 * (cov + cov.T)
        w, V = np.linalg.eigh(cov)
        w = np.maximum(w, floor**2)
        L = np.linalg.cholesky((V * w) @ V.T)
        return cls(np.asarray(mean, dtype=np.float64).copy(), L)


@dataclass(frozen=True)
class ReadoutMoments:
    """Everything one integration pass gives at a field t (see module docstring)."""

    t: np.ndarray
    log_partition: float  # Φ(t)
    outputs: np.ndarray  # f (m×m), f[c, r] = E[a_r ψ'(t_c·a)]
    readout_mean: np.ndarray  # E[a]
    readout_moment: np.ndarray  # U = E[a aᵀ]
    kernel_diagonal: np.ndarray  # (m,)
    kernel_blocks: np.ndarray  # (m, m)
    hessian: np.ndarray | None  # ∇²Φ as (m², m²) in the flattening c*m + r
    error: dict  # absolute error estimates: "log_partition", "outputs", "readout_moment", "kernel"
    integrator: str
    n_evaluations: int
    converged: bool

    @property
    def error_estimate(self) -> float:
        """Largest absolute error estimate over f, U and the kernel."""
        return float(max(np.max(self.error["outputs"]), np.max(self.error["readout_moment"]),
                         np.max(self.error["kernel"])))

    def mapping(self, floor: float) -> Mapping:
        return Mapping.from_moments(self.readout_mean, self.readout_moment, floor)


def _unpack_sym(vec: np.ndarray, m: int) -> np.ndarray:
    M = np.zeros((m, m))
    iu = np.triu_indices(m)
    M[iu] = vec
    return M + np.triu(M, 1).T


def _assemble(prob: ClassProblem, lay: Layout, t, mean_vals, err_vals, log_z, integrator, n_eval, converged,
              table_error):
    m = prob.m
    Pc = prob.class_sizes
    E = mean_vals
    f = E[lay.ap].reshape(m, m)
    U = _unpack_sym(E[lay.aa], m)
    blocks = _unpack_sym(E[lay.pp], m)
    diag = E[lay.p2] + np.diag(blocks)
    hess = None
    if lay.hessian:
        mm = m * m
        C = _unpack_sym(E[lay.apap], mm) - np.outer(f.ravel(), f.ravel())
        w = np.repeat(Pc, m)  # weight P_c for flattened index c*m + r
        hess = w[:, None] * C * w[None, :]
        aap2 = E[lay.aap2].reshape(m, -1)
        for c in range(m):
            hess[c * m:(c + 1) * m, c * m:(c + 1) * m] += Pc[c] * _unpack_sym(aap2[c], m)
        hess = 0.5 * (hess + hess.T)
    err_f = err_vals[lay.ap].reshape(m, m) + table_error * np.sqrt(np.diag(U))[None, :]
    err_U = _unpack_sym(err_vals[lay.aa], m)
    err_K = np.concatenate([err_vals[lay.pp], err_vals[lay.p2]]) + 3 * table_error
    err = {"log_partition": float(err_vals[0] + table_error * Pc.sum()), "outputs": err_f,
           "readout_moment": err_U, "kernel": err_K}
    return ReadoutMoments(t=t.copy(), log_partition=float(log_z), outputs=f, readout_mean=E[lay.mean].copy(),
                          readout_moment=U, kernel_diagonal=diag, kernel_blocks=blocks, hessian=hess,
                          error=err, integrator=integrator, n_evaluations=int(n_eval), converged=converged)


def _table_for(prob: ClassProblem, t, mapping: Mapping, radius: float):
    reach = np.linalg.norm(mapping.mu) + radius * np.linalg.norm(mapping.L, 2)
    gmax = float(np.max(np.linalg.norm(t, axis=1)) * reach)
    return prob.table(max(gmax, 1.0))


def _log_prior_norm(prob):
    return -0.5 * prob.m * math.log(2 * math.pi * prob.spec.sigma_a**2)


def _check_finite(Z, sums):
    if not (Z > 0 and np.isfinite(Z)) or not np.all(np.isfinite(sums)):
        raise FloatingPointError("readout integral is not finite: t is outside the domain of Φ")


# ----------------------------------------------------------------------------- Gauss–Hermite

#: Inflation of the mapping's scale for Gauss–Hermite, so that the integrand
#: divided by the Gaussian weight decays even where p(a) has heavier tails.
GH_INFLATION = 1.25


@lru_cache(maxsize=16)
def gauss_hermite_nodes(m: int, n: int):
    """Tensor Gauss–Hermite nodes z (n^m, m) for N(0, I) and log(weight / N(z; 0, I))."""
    x, w = np.polynomial.hermite.hermgauss(n)
    z1 = math.sqrt(2.0) * x
    lv1 = np.log(w / math.sqrt(math.pi)) + 0.5 * z1**2 + 0.5 * math.log(2 * math.pi)
    grids = np.meshgrid(*([z1] * m), indexing="ij")
    lgrids = np.meshgrid(*([lv1] * m), indexing="ij")
    z = np.ascontiguousarray(np.stack([g.ravel() for g in grids], axis=1))
    logv = np.sum(np.stack([g.ravel() for g in lgrids], axis=1), axis=1)
    z.setflags(write=False)
    logv.setflags(write=False)
    return z, logv


def _gh_pass(prob, t, mapping, n, hessian):
    m = prob.m
    lay = Layout(m, hessian)
    z, logv0 = gauss_hermite_nodes(m, n)
    L = GH_INFLATION * mapping.L
    A = mapping.mu[None, :] + z @ L.T
    logv = logv0 + float(np.sum(np.log(np.diag(L))))
    tab = _table_for(prob, t, Mapping(mapping.mu, L), float(np.max(np.abs(z))))
    sums, ref, _ = _weighted_sums(A, logv, np.ascontiguousarray(t), prob.class_sizes, 1.0 / prob.spec.sigma_a**2,
                                  tab.g0, tab.step, tab.values, hessian, lay.size)
    _check_finite(sums[0], sums)
    return lay, sums / sums[0], ref + math.log(sums[0]) + _log_prior_norm(prob), tab.error_estimate, len(A)


def _gauss_hermite_moments(prob, t, mapping, order, hessian, hessian_order, check):
    m = prob.m
    lay, vals, log_z, tab_err, n_eval = _gh_pass(prob, t, mapping, order, False)
    err = np.full(lay.size, np.nan)
    name = f"gauss-hermite {order}^{m}"
    if check:
        order2 = order + max(4, order // 3)
        _, vals2, log_z2, _, n2 = _gh_pass(prob, t, mapping, order2, False)
        err = np.abs(vals2 - vals)
        err[0] = abs(log_z2 - log_z)
        vals, log_z, n_eval, name = vals2, log_z2, n_eval + n2, f"gauss-hermite {order2}^{m} (checked against {order}^{m})"
    out = _assemble(prob, lay, t, vals, err, log_z, name, n_eval, bool(check), tab_err)
    if hessian:
        hl, hv, hz, _, hn = _gh_pass(prob, t, mapping, hessian_order, True)
        coarse = _assemble(prob, hl, t, hv, np.zeros(hl.size), hz, "", hn, True, 0.0)
        out = replace(out, hessian=coarse.hessian, n_evaluations=out.n_evaluations + hn)
    return out


# ----------------------------------------------------------------------------- adaptive cubature

def _cubature_moments(prob, t, mapping, rtol, hessian, max_evaluations):
    m = prob.m
    lay = Layout(m, hessian)
    tab = _table_for(prob, t, mapping, 40.0)
    args = (mapping.mu, np.ascontiguousarray(mapping.L), np.ascontiguousarray(t), prob.class_sizes,
            1.0 / prob.spec.sigma_a**2)
    nodes = genz_malik_rule(m)[0]
    c0, h0 = _initial_partition(m, 4)
    ref = float(np.max(_cube_log_weights(_region_points(c0, h0, nodes), *args, tab.g0, tab.step, tab.values)))

    def integrand(u):
        return _cube_values(u, *args, ref, tab.g0, tab.step, tab.values, hessian, lay.size)

    res = adaptive_cubature(integrand, m, rtol=rtol, max_evaluations=max_evaluations, components=lay.controlled)
    Z = res.integral[0]
    _check_finite(Z, res.integral)
    mean_vals = res.integral / Z
    err_vals = (res.error + np.abs(mean_vals) * res.error[0]) / Z
    err_vals[0] = res.error[0] / Z  # relative error of Z = absolute error of Φ
    log_z = ref + math.log(Z) + float(np.sum(np.log(np.diag(mapping.L)))) + _log_prior_norm(prob)
    return _assemble(prob, lay, t, mean_vals, err_vals, log_z, f"adaptive cubature ({res.n_regions} regions)",
                     res.n_evaluations, res.converged, tab.error_estimate)


# ----------------------------------------------------------------------------- randomised QMC

_QMC_NU = 5.0


@dataclass(frozen=True)
class QMCNodes:
    """Fixed standardised Student-t nodes (R replicates × n) and their log densities."""

    z: np.ndarray  # (R, n, m)
    logq0: np.ndarray  # (R, n): log density of the standard multivariate t at z

    @classmethod
    def make(cls, m: int, n: int = 4096, replicates: int = 8, seed: int = 0) -> "QMCNodes":
        zs, lq = [], []
        nu = _QMC_NU
        for r in range(replicates):
            u = stats.qmc.Sobol(d=m + 1, scramble=True, seed=seed + 7919 * r).random(n)
            u = np.clip(u, 1e-12, 1 - 1e-12)
            z = special.ndtri(u[:, :m]) / np.sqrt(special.chdtri(nu, u[:, m]) / nu)[:, None]
            logq = (special.gammaln((nu + m) / 2) - special.gammaln(nu / 2) - 0.5 * m * math.log(nu * math.pi)
                    - 0.5 * (nu + m) * np.log1p(np.sum(z * z, axis=1) / nu))
            zs.append(z)
            lq.append(logq)
        return cls(np.array(zs), np.array(lq))


def _qmc_moments(prob, t, mapping, nodes: QMCNodes, hessian):
    m = prob.m
    lay = Layout(m, hessian)
    R, n, _ = nodes.z.shape
    tab = _table_for(prob, t, mapping, float(np.max(np.abs(nodes.z))))
    logdet = float(np.sum(np.log(np.diag(mapping.L))))
    sums, refs, ess = [], [], 0.0
    for r in range(R):
        A = mapping.mu[None, :] + nodes.z[r] @ mapping.L.T
        logv = -(nodes.logq0[r] - logdet) - math.log(n)
        s_r, ref_r, w2 = _weighted_sums(A, logv, np.ascontiguousarray(t), prob.class_sizes,
                                        1.0 / prob.spec.sigma_a**2, tab.g0, tab.step, tab.values, hessian, lay.size)
        _check_finite(s_r[0], s_r)
        sums.append(s_r)
        refs.append(ref_r)
        ess += s_r[0] ** 2 / w2
    sums, refs = np.array(sums), np.array(refs)
    top = refs.max()
    scaled = sums * np.exp(refs - top)[:, None]
    vals = scaled.sum(axis=0) / scaled[:, 0].sum()
    per_rep = sums / sums[:, :1]
    err = per_rep.std(axis=0, ddof=1) / math.sqrt(R)
    log_zr = refs + np.log(sums[:, 0])
    err[0] = float(np.std(log_zr, ddof=1) / math.sqrt(R))
    log_z = top + math.log(scaled[:, 0].mean()) + _log_prior_norm(prob)
    return _assemble(prob, lay, t, vals, err, log_z, f"qmc importance sampling (ESS {ess:.0f} of {R * n})",
                     R * n, True, tab.error_estimate)


# ----------------------------------------------------------------------------- entry point

INTEGRATORS = ("gauss-hermite", "cubature", "qmc")


def readout_moments(prob: ClassProblem, t: np.ndarray, mapping: Mapping | None = None, *,
                    integrator: str = "gauss-hermite", order: int = 24, check: bool = True,
                    hessian: bool = True, hessian_order: int = 12, rtol: float = 1e-6,
                    qmc_nodes: QMCNodes | None = None, max_evaluations: int = 3_000_000) -> ReadoutMoments:
    """Moments of p_t(a) at the field ``t`` (m × m, row c is t_c).

    integrator
        ``"gauss-hermite"``: tensor rule with ``order`` nodes per axis in the
        coordinates of ``mapping``; with ``check`` it is compared with a
        higher order, which becomes the answer, and the difference is the
        error estimate. The Hessian comes from a cheaper ``hessian_order``
        rule (Newton needs it only approximately).
        ``"cubature"``: adaptive Genz–Malik to ``rtol`` (m <= 6).
        ``"qmc"``: randomised quasi-Monte Carlo importance sampling.
    Raises ``FloatingPointError`` when the integral is infinite (outside the domain).
    """
    t = np.asarray(t, dtype=np.float64)
    m = prob.m
    if t.shape != (m, m):
        raise ValueError(f"t must have shape ({m}, {m}) (got {t.shape})")
    mapping = mapping or Mapping.prior(m, prob.spec.sigma_a)
    if integrator == "gauss-hermite":
        return _gauss_hermite_moments(prob, t, mapping, order, hessian, hessian_order, check)
    if integrator == "cubature":
        if m > 6:
            raise ValueError(f"integrator 'cubature' supports m <= 6 classes (got m = {m}); use 'qmc'")
        return _cubature_moments(prob, t, mapping, rtol, hessian, max_evaluations)
    if integrator == "qmc":
        return _qmc_moments(prob, t, mapping, qmc_nodes or QMCNodes.make(m), hessian)
    raise ValueError(f"integrator must be one of {INTEGRATORS} (got {integrator!r})")
