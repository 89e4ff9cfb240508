"""The importance-weighted surrogate of the dual and its Newton step (THEORY §2).

For a fixed sample z_1..z_S of p_t (common random numbers) the dual G(t') = Φ(t') − tr(t'ᵀY) +
(T/2)||t'||² is replaced by

    Ĝ(t') = log mean_i e^{ℓ_{t'}(h_i) − ℓ_t(h_i)} − tr(t'ᵀY) + (T/2)||t'||²,

convex and deterministic. With weights w_i ∝ e^{ℓ_{t'} − ℓ_t}, b_i = σ_a² t'ᵀφ_i and f_w = Σ w φ bᵀ:

    ∇²Ĝ = Σ_i w_i v_i v_iᵀ + σ_a² K_w ⊗ I_m − vec f_w vec f_wᵀ + T I,   v_i = vec(φ_i b_iᵀ).

:class:`Features` holds the per-sample ingredients (plain, or radial Rao–Blackwellised for
φ = α₊h₊ + α₋h₋); :func:`newton_factory` solves the Newton systems (dense Cholesky, or conjugate
gradients with Hessian–vector products preconditioned by (σ_a² K + T I)⁻¹).
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.sparse.linalg import LinearOperator, cg

__all__ = ["Features", "newton_factory", "newton_solver"]


def _hess_op(Phi, w, B, f, sa2, T):
    """Hessian–vector product of G at the weighted sample: u (P×m) ↦ (∇²Φ + T) u."""
    def mv(u):
        U = u.reshape(f.shape)
        PU = Phi @ U  # S × m
        s = np.einsum("ij,ij->i", B, PU)
        out = sa2 * (Phi.T @ (w[:, None] * PU)) + Phi.T @ ((w * s)[:, None] * B) - f * np.sum(f * U) + T * U
        return out.ravel()
    return mv


def _hessian(Phi, w, B, f, sa2, T) -> np.ndarray:
    """Dense ∇²G = Σ_i w_i v_i v_iᵀ + σ_a² K_w ⊗ I_m − vec f vec fᵀ + T I, v_i = vec(φ_i b_iᵀ) (index μ·m + r)."""
    S, P = Phi.shape
    m = B.shape[1]
    V = (Phi[:, :, None] * B[:, None, :]).reshape(S, P * m)
    Kw = Phi.T @ (w[:, None] * Phi)
    fv = f.ravel()
    H = (V * w[:, None]).T @ V - np.outer(fv, fv) + sa2 * np.kron(Kw, np.eye(m))
    H[np.diag_indices_from(H)] += T
    return 0.5 * (H + H.T)


def newton_factory(Phi, w, B, f, sa2, T, dense_limit: int = 1500):
    """``make(extra)`` → a function g ↦ Δ = −(∇²G + σ_a² extra ⊗ I_m)⁻¹ g, with ``extra`` (P × P,
    symmetric PSD, or None) an added kernel: the condensate part Σ_j λ_j v_j v_jᵀ of the Lagrangian
    Hessian ∇²G + Σ_j μ_j ∇²q_j (∇²q_j = 2σ_a² v_j v_jᵀ ⊗ I_m, λ_j = 2μ_j). The sample Hessian is
    built once; each ``make`` only refactors. Dense Cholesky when P·m ≤ ``dense_limit``, else
    conjugate gradients with sample Hessian–vector products, preconditioned by
    (σ_a² (K_w + extra) + T I)⁻¹. Eigenvalues are floored at 1e-10·λ_max (T = 0 with singular K)."""
    n = f.size
    shape = f.shape
    m = shape[1]
    if n <= dense_limit:
        H0 = _hessian(Phi, w, B, f, sa2, T)

        def make_dense(extra=None):
            Hd = H0 if extra is None else H0 + sa2 * np.kron(extra, np.eye(m))
            Hd = Hd + 1e-10 * max(float(np.trace(Hd)) / n, 1e-300) * np.eye(n)
            fac = cho_factor(Hd, lower=True)
            return lambda g: -cho_solve(fac, g.ravel()).reshape(shape)
        return make_dense
    Kw = Phi.T @ (w[:, None] * Phi)
    hv = _hess_op(Phi, w, B, f, sa2, T)

    def make_cg(extra=None):
        Ke = Kw if extra is None else Kw + extra
        lam, Q = np.linalg.eigh(Ke)
        den = sa2 * np.maximum(lam, 0.0) + T
        den = np.maximum(den, 1e-10 * max(float(den.max()), 1e-300))

        def prec(v):
            return (Q @ ((Q.T @ v.reshape(shape)) / den[:, None])).ravel()

        def mv(u):
            out = hv(u)
            if extra is not None:
                out = out + sa2 * (extra @ u.reshape(shape)).ravel()
            return out
        A = LinearOperator((n, n), matvec=mv)
        M = LinearOperator((n, n), matvec=prec)

        def solve(g):
            x, _ = cg(A, -g.ravel(), M=M, rtol=1e-8, maxiter=200)
            return x.reshape(shape)
        return solve
    return make_cg


def newton_solver(Phi, w, B, f, sa2, T, dense_limit: int = 1500):
    """A function g ↦ Δ = −(∇²G)⁻¹ g (:func:`newton_factory` without an added kernel)."""
    return newton_factory(Phi, w, B, f, sa2, T, dense_limit)()


class Features:
    """Per-sample estimator ingredients for a fixed sample z_1..z_S (rows of ``Z``).

    Plain form (any φ): φ_i = φ(L z_i), log tilt ℓ_t(h_i) = (σ_a²/2)||tᵀφ_i||², and
    f = σ_a² mean_i φ_i φ_iᵀ t, K = mean_i φ_i φ_iᵀ.

    Radial form (φ positively homogeneous, :func:`is_homogeneous`; d = rank of K0): write
    z = ρ u, |u| = 1, v = φ(L u), q_t(u) = σ_a²||tᵀv||². Then ℓ_t = ρ² q_t(u)/2 and the radius
    integrates out in closed form: p_t(u) ∝ (1 − q_t(u))^{−d/2} on the sphere and
    ρ²(1 − q_t(u)) | u ~ χ²_d, so E[ρ²|u] = s_t(u) = d/(1 − q_t(u)) and
    E[ρ⁴|u] = (1 + 2/d) s_t(u)². Every estimator uses the effective features
    φ̃_i = √s_t(u_i) v_i (f = σ_a² mean φ̃φ̃ᵀ t, K = mean φ̃φ̃ᵀ), with the rank-one Hessian term
    scaled by (1 + 2/d). The log tilt relative to the prior of u is −(d/2) log(1 − q_t(u)),
    which is +∞ for q ≥ 1: the importance-weighted surrogate then contains the exact domain
    barrier along every sampled direction (a plain h-sample surrogate is finite everywhere
    and lets Newton steps cross the boundary q(t) = 1), and its weights carry no radial noise.
    """

    def __init__(self, Z, L, nl, sa2, radial: bool):
        self.sa2, self.radial = sa2, radial
        self.d = L.shape[1]
        if radial:
            rho = np.maximum(np.sqrt(np.einsum("ij,ij->i", Z, Z)), 1e-300)
            self.V = nl((Z / rho[:, None]) @ L.T)
            self.b_scale = np.sqrt(1.0 + 2.0 / self.d)
        else:
            self.V = nl(Z @ L.T)
            self.b_scale = 1.0

    def q(self, t):
        """σ_a² ||tᵀ v_i||² per sample (the direction quotient in the radial form)."""
        B = self.V @ t
        return self.sa2 * np.einsum("ij,ij->i", B, B)

    def log_tilt(self, t):
        """Log tilt of each sample, up to a t-independent constant (+∞ outside the domain)."""
        q = self.q(t)
        if not self.radial:
            return 0.5 * q
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(q < 1.0, -0.5 * self.d * np.log1p(-np.minimum(q, 1.0)), np.inf)

    def phi(self, t):
        """Effective features φ̃ (S × P) at field t."""
        if not self.radial:
            return self.V
        return np.sqrt(self.d / (1.0 - self.q(t)))[:, None] * self.V

    def stats(self, Phi, w, t):
        """(f_w, B) for normalised weights w: f_w = σ_a² Σ w φ̃ φ̃ᵀ t, B the rank-one Hessian factor."""
        Bt = self.sa2 * (Phi @ t)
        return Phi.T @ (w[:, None] * Bt), self.b_scale * Bt
