"""The integrand of the readout law's moments, compiled, and the moments it integrates to.

    p_t(a) ∝ N(a; 0, σ_a² I_m) exp(Σ_c P_c ψ(t_c·a)) = e^{S(a)} / norm      (THEORY §3)

One pass over nodes a_k with log weights v_k, ∫ e^{S} F da ≈ Σ_k e^{S(a_k) + v_k} F(a_k): the rows
F(a) (:class:`Layout`) hold 1, a, a aᵀ, ψ'ψ', ψ'', a ψ' and, for the Hessian, a aᵀ ψ'' and
(a ψ')(a ψ')ᵀ; :func:`assemble` turns their normalised sums into :class:`ReadoutMoments`
(Φ, f, U, kernel, ∇²Φ, see :mod:`solvers.finite_p.readout_integral`). Every integrator
(:mod:`.readout_tensor`, :mod:`.readout_cubature`, :mod:`.readout_qmc`) sums these rows.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numba
import numpy as np

from theory.psi import psi_interp

__all__ = ["Layout", "ReadoutMoments", "log_weights", "weighted_rows", "weighted_sums", "unpack_sym", "assemble",
           "log_prior_norm", "kernel_args", "combine"]


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
def log_weights(A, logv, t, Pc, inv_var_a, s, dx, tab):
    n, m = A.shape
    out = np.empty(n)
    p1, p2 = np.empty(m), np.empty(m)
    for i in range(n):
        out[i] = _log_tilt(A[i], t, Pc, inv_var_a, s, dx, tab, p1, p2) + logv[i]
    return out


@numba.njit(cache=True)
def weighted_rows(A, logv, ref, t, Pc, inv_var_a, s, dx, tab, hessian, K):
    """Rows e^{S(a_k) + v_k − ref} F(a_k) (for the adaptive cubature)."""
    n, m = A.shape
    out = np.empty((n, K))
    p1, p2, v = np.empty(m), np.empty(m), np.empty(m * m)
    for i in range(n):
        S = _log_tilt(A[i], t, Pc, inv_var_a, s, dx, tab, p1, p2)
        _fill(A[i], p1, p2, math.exp(S + logv[i] - ref), hessian, v, out[i])
    return out


_CHUNKS = 16  # work units for the parallel loops (a multiple of the core count)
#: Fewer nodes than this are summed on one thread: starting the parallel region costs more than
#: the work there (on a busy machine, where the second thread waits to be scheduled, up to ~0.3 s
#: for a 24³ rule that one thread sums in ~2 ms).
PARALLEL_MIN_NODES = 100_000


def weighted_sums(A, logv, t, Pc, inv_var_a, s, dx, tab, hessian, K):
    """(Σ_k e^{S(a_k) + v_k − ref} F(a_k), ref, Σ_k e^{2(S + v − ref)}) (:func:`_weighted_sums`),
    on one thread below ``PARALLEL_MIN_NODES`` nodes."""
    if len(A) >= PARALLEL_MIN_NODES:
        return _weighted_sums(A, logv, t, Pc, inv_var_a, s, dx, tab, hessian, K)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return _weighted_sums(A, logv, t, Pc, inv_var_a, s, dx, tab, hessian, K)
    finally:
        numba.set_num_threads(threads)


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


def unpack_sym(vec: np.ndarray, m: int) -> np.ndarray:
    M = np.zeros((m, m))
    M[np.triu_indices(m)] = vec
    return M + np.triu(M, 1).T


def assemble(prob, lay, t, E, err, log_z, integrator, n_eval, converged, table_error):
    """Moments from normalised component means E (and their absolute errors)."""
    m = prob.m
    Pc = prob.class_sizes
    f = E[lay.ap].reshape(m, m)
    U = unpack_sym(E[lay.aa], m)
    blocks = unpack_sym(E[lay.pp], m)
    diag = E[lay.p2] + np.diag(blocks)
    hess = None
    if lay.hessian:
        mm = m * m
        C = unpack_sym(E[lay.apap], mm) - np.outer(f.ravel(), f.ravel())
        w = np.repeat(Pc, m)  # P_c for the flattened index c*m + r
        hess = w[:, None] * C * w[None, :]
        aap2 = E[lay.aap2].reshape(m, -1)
        for c in range(m):
            hess[c * m:(c + 1) * m, c * m:(c + 1) * m] += Pc[c] * unpack_sym(aap2[c], m)
        hess = 0.5 * (hess + hess.T)
    # ψ-table errors are relative to 1 + |value|; propagate them to first order.
    scale_a = np.sqrt(np.maximum(np.diag(U), 0.0))
    errors = {
        "log_partition": float(err[0] + table_error * Pc.sum()),
        "outputs": err[lay.ap].reshape(m, m) + table_error * (1 + np.abs(f)) * scale_a[None, :],
        "readout_moment": unpack_sym(err[lay.aa], m),
        "kernel_diagonal": err[lay.p2] + np.diag(unpack_sym(err[lay.pp], m)) + 3 * table_error * (1 + np.abs(diag)),
        "kernel_blocks": unpack_sym(err[lay.pp], m) + 2 * table_error * (1 + np.abs(blocks)),
    }
    return ReadoutMoments(t=t.copy(), log_partition=float(log_z), outputs=f, readout_mean=E[lay.mean].copy(),
                          readout_moment=U, kernel_diagonal=diag, kernel_blocks=blocks, hessian=hess,
                          error=errors, integrator=integrator, n_evaluations=int(n_eval), converged=converged)


def log_prior_norm(prob):
    return -0.5 * prob.m * math.log(2 * math.pi * prob.spec.sigma_a**2)


def kernel_args(prob, t):
    tab = prob.table()
    return (np.ascontiguousarray(t), prob.class_sizes, 1.0 / prob.spec.sigma_a**2, tab.scale, tab.dx, tab.values)


def combine(parts):
    """Sum partial (sums, ref) pairs from several node sets."""
    refs = np.array([r for _, r in parts])
    top = refs.max()
    total = sum(s * math.exp(r - top) for s, r in parts)
    if not (total[0] > 0 and np.all(np.isfinite(total))):
        raise FloatingPointError("readout integral is not finite: t is outside the domain of Φ")
    return total, top
