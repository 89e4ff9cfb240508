"""Pair rotations of a hidden layer below the last at fixed next-layer preactivations: two neurons of
layer ℓ < L exchange weight mass, so the layer's outliers can be created, removed and moved (THEORY §4,
§5, §7), the counterpart in a lower layer of the last layer's pair rotations (:mod:`validation.outlier_moves`).

Target: the W^{ℓ+1}-marginal of :mod:`validation.layer_moves` at fixed H^{ℓ+1},

    log π(W^ℓ) = ℓ_K(Φ_ℓ) − |W^ℓ|²/(2σ_ℓ²) + (terms without W^ℓ),
    ℓ_K = −(N/2) log det K − tr(K⁻¹ C)/(2σ²),   K = Φ_ℓᵀΦ_ℓ/N,   C = H^{ℓ+1}ᵀH^{ℓ+1},   σ = σ_{ℓ+1}.

Move (as :mod:`validation.outlier_moves`): an ordered pair (i, j), i ≠ j, drawn with
s(i, j | W) = (w_i/S)(w_j/(S − w_i)), w_k = |W_k|² + σ_ℓ² (heavy neurons are picked often), an angle θ
from a law symmetric about 0 (:func:`validation.outlier_moves.draw_angle`), and

    W_i' = cos θ W_i − sin θ W_j,   W_j' = sin θ W_i + cos θ W_j.

The rotation has unit Jacobian, keeps |W_i|² + |W_j|² (so the prior and S) and is undone by the same pair
with −θ, so Metropolis–Hastings accepts with

    min(1, exp[ℓ_K(K') − ℓ_K(K)] · s(i, j | W') / s(i, j | W)),   K' = K + (φ_i'φ_i'ᵀ + φ_j'φ_j'ᵀ − φ_iφ_iᵀ − φ_jφ_jᵀ)/N,

with ℓ_K(K') from a Cholesky factor of K' (O(P³) per move; C is fixed). For a positively homogeneous φ
(ReLU) a pair that keeps its activity pattern keeps φ_iφ_iᵀ + φ_jφ_jᵀ up to the rotation, so mass moves
between an outlier and a bulk neuron, or between two outliers, at little cost: the moves the local
sampler makes only by slow diffusion.

The caller then draws W^{ℓ+1} from p(W^{ℓ+1} | Φ_ℓ, H^{ℓ+1}) (:func:`validation.layer_moves.redraw_next_weights`):
a partially collapsed Gibbs step, as for the other layer moves.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve

from .outlier_moves import _select, draw_angle, selection_logprob

__all__ = ["kernel_loglik", "LayerPairs"]


def kernel_loglik(K: np.ndarray, C: np.ndarray, width: int, sigma: float) -> float:
    """ℓ_K = −(N/2) log det K − tr(K⁻¹ C)/(2σ²) (module docstring; N = ``width``); −inf where K is not
    positive definite."""
    try:
        fac = cho_factor(K, lower=True, check_finite=False)
    except LinAlgError:
        return -math.inf
    logdet = 2.0 * float(np.sum(np.log(np.diag(fac[0]))))
    return -0.5 * width * logdet - 0.5 * float(np.trace(cho_solve(fac, C, check_finite=False))) / sigma**2


class LayerPairs:
    """The W^{ℓ+1}-marginal of layer ℓ's weights ``W`` (N × fan-in, changed in place) with input ``B``
    (fan-in × P, H^ℓ = W B), activations ``phi`` (N × P, changed in place), the next layer's preactivations
    ``H_next`` and prior scales ``sigma_w`` = σ_ℓ, ``sigma_next`` = σ_{ℓ+1}; ``activate`` maps H to φ(H).
    :meth:`step` makes one move; :meth:`update_error` compares the tracked ℓ_K with a fresh one."""

    def __init__(self, W, B, phi, H_next, sigma_w: float, sigma_next: float, activate):
        self.W, self.B, self.phi, self.activate = W, B, phi, activate
        self.N = W.shape[0]
        self.C = H_next.T @ H_next
        self.sigma_w, self.sigma = float(sigma_w), float(sigma_next)
        self.K = phi.T @ phi / self.N
        self.ell = kernel_loglik(self.K, self.C, self.N, self.sigma)
        self.sq_norms = np.sum(W * W, axis=1)

    def log_ratio(self, i: int, j: int, angle: float):
        """(log of the MH ratio of rotating rows i, j by ``angle``, new rows, their activations, K', ℓ_K')."""
        c, s = math.cos(angle), math.sin(angle)
        rows = np.stack([c * self.W[i] - s * self.W[j], s * self.W[i] + c * self.W[j]])
        phi_new = np.asarray(self.activate(rows @ self.B), dtype=np.float64)
        old = self.phi[[i, j]]
        K = self.K + (phi_new.T @ phi_new - old.T @ old) / self.N
        ell = kernel_loglik(K, self.C, self.N, self.sigma)
        norms = self.sq_norms.copy()
        norms[[i, j]] = np.sum(rows * rows, axis=1)
        log_r = (ell - self.ell + selection_logprob(norms, i, j, self.sigma_w)
                 - selection_logprob(self.sq_norms, i, j, self.sigma_w))
        return log_r, rows, phi_new, K, ell

    def step(self, rng: np.random.Generator) -> bool:
        """One move (module docstring); returns whether it was accepted."""
        i, j = _select(rng, self.sq_norms, self.sigma_w)
        log_r, rows, phi_new, K, ell = self.log_ratio(i, j, draw_angle(rng))
        if not (math.log(rng.random()) < log_r):
            return False
        self.W[[i, j]], self.phi[[i, j]] = rows, phi_new
        self.sq_norms[[i, j]] = np.sum(rows * rows, axis=1)
        self.K, self.ell = K, ell
        return True

    def update_error(self) -> float:
        """|ℓ_K of the current Φ_ℓ recomputed − the tracked ℓ_K|."""
        fresh = kernel_loglik(self.phi.T @ self.phi / self.N, self.C, self.N, self.sigma)
        return abs(fresh - self.ell)
