"""Class-block bookkeeping and the Hubbard–Stratonovich fields of one layer (THEORY §5;
:mod:`theory.deep_blocks`).

Block traces: for K = E k Eᵀ + D_δ, K̃ = E k̃ Eᵀ + D_δ̃ with Π = diag(P_c),

    tr K̃ K = Σ_cd P_c P_d k̃_cd k_cd + Σ_c P_c (k̃_cc δ_c + δ̃_c k_cc + δ̃_c δ_c).

Fields: the tilt e^{½ Sᵀ k̃ S} = E_{u ~ N(0, k̃)} e^{u·S}, u = B v with v ~ N(0, I_m), B = chol k̃
(hidden tilt) or B = σ_a t (readout); the input h ~ N(0, σ² K) is ξ_c + s_c z_μ with ξ = C w,
C = σ R_in (k = R Rᵀ) and s_c = σ √δ_c (for layer 1: ξ = 0, s = σ).
"""
from __future__ import annotations

import numpy as np

from theory.domain_errors import OutsideDomain

__all__ = ["tril_pack", "tril_unpack", "block_trace", "tilt_factor", "layer_fields"]


def tril_pack(A) -> np.ndarray:
    return np.asarray(A)[np.tril_indices(len(A))]


def tril_unpack(v, m) -> np.ndarray:
    A = np.zeros((m, m))
    A[np.tril_indices(m)] = v
    return A


def block_trace(kt, dt, k, d, sizes) -> float:
    """tr K̃ K for class-block K = E k Eᵀ + D_δ, K̃ = E k̃ Eᵀ + D_δ̃ (:mod:`theory.deep_blocks`)."""
    P = np.asarray(sizes, dtype=np.float64)
    return float(P @ (kt * k) @ P + np.sum(P * (np.diag(kt) * d + dt * np.diag(k) + dt * d)))


def tilt_factor(m: int, *, t=None, sigma_a=None, kt=None, dt=None):
    """(B, δ̃) with u = B v, v ~ N(0, I_m), the Hubbard–Stratonovich field of one layer's block tilt:
    B = σ_a t for the readout (δ̃ = 0), B = chol k̃ for a hidden tilt (eigen-factor when k̃ is
    singular; :class:`OutsideDomain` if k̃ is not positive semidefinite), δ̃ = ``dt``."""
    if t is not None:
        return sigma_a * np.asarray(t, dtype=np.float64), np.zeros(m)
    kt = np.asarray(kt, dtype=np.float64)
    kt = 0.5 * (kt + kt.T)
    scale = max(float(np.max(np.abs(kt))), 1e-300)
    try:
        B = np.linalg.cholesky(kt + 1e-13 * scale * np.eye(m))
    except np.linalg.LinAlgError:
        w_, V_ = np.linalg.eigh(kt)
        if w_.min() < -1e-8 * scale:
            raise OutsideDomain(f"hidden tilt k̃ is not positive semidefinite (eigenvalue {w_.min():.3g})")
        B = V_ * np.sqrt(np.maximum(w_, 0.0))
    return B, np.asarray(dt, dtype=np.float64)


def layer_fields(sizes, sigma: float, *, R_in=None, delta_in=None, t=None, sigma_a=None, kt=None, dt=None):
    """(B, δ̃, C, s) of one layer in the coordinates of :func:`layer_integral` (:mod:`theory.deep_blocks`):
    u = B v (B = σ_a t for the readout, chol k̃ for a hidden tilt), ξ = C w (C = σ R_in; None for
    layer 1, where ξ = 0), s_c = σ √δ_c (σ for layer 1), δ̃ the diagonal tilt (0 for the readout)."""
    m = len(sizes)
    B, dtilt = tilt_factor(m, t=t, sigma_a=sigma_a, kt=kt, dt=dt)
    if R_in is not None:
        delta_in = np.asarray(delta_in, dtype=np.float64)
        if np.any(delta_in <= 0):
            raise OutsideDomain("within-class kernel excess δ must be > 0")
        return B, dtilt, sigma * np.asarray(R_in, dtype=np.float64), sigma * np.sqrt(delta_in)
    return B, dtilt, None, np.full(m, float(sigma))
