"""Collapsed MALA sweep of a deep network (THEORY §7; the network and target in
:mod:`validation.deep_network`).

A sweep (:func:`deep_collapsed_sweep`) is ``n_mala`` MALA steps on all W^ℓ jointly, preconditioned
by the prior (inverse mass σ_ℓ² on layer ℓ: steps in units of the prior scale), then an
exact draw of a | W (:func:`sample_readout`, Matheron's rule):

    a = a₀ + σ_a² B (I + σ_a² BᵀB)⁻¹ (√β y_r − Bᵀa₀ − u),   B = √β N^{-γ} Φ_L,
    a₀ ~ N(0, σ_a² I),   u ~ N(0, I_P).

The MALA steps run in prior-whitened coordinates u = W^ℓ/σ_ℓ: u' = u + (ε²/2)∇_u log p + ε ξ,
accepted by Metropolis–Hastings with both proposal densities.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from .deep_network import DeepNetwork

__all__ = ["sample_readout", "readout_posterior_mean", "deep_collapsed_sweep"]


def _readout_system(net: DeepNetwork, phi):
    """(√β, B = √β N^{-γ} Φ_L (N × P), σ_a², G = I + σ_a² BᵀB) of the readout's conditional a | W."""
    sb = math.sqrt(net.beta)
    B = sb * phi / net.width**net.gamma
    sa2 = net.spec.sigma_a**2
    return sb, B, sa2, np.eye(B.shape[1]) + sa2 * (B.T @ B)


def sample_readout(rng: np.random.Generator, net: DeepNetwork, Ws) -> np.ndarray:
    """Exact draw of a | W (m × N): Gaussian with B = √β N^{-γ} Φ_L (N × P), by Matheron's rule
    a = a₀ + σ_a² B (I + σ_a² BᵀB)⁻¹ (√β y_r − Bᵀa₀ − u), a₀ ~ N(0, σ_a² I), u ~ N(0, I_P)
    (as :func:`validation.networks.sample_readout`)."""
    sb, B, sa2, G = _readout_system(net, net.forward(Ws)[-1][1])
    m, N, P = net.spec.m, net.width, B.shape[1]
    a0 = math.sqrt(sa2) * rng.standard_normal((N, m))
    u = rng.standard_normal((P, m))
    corr = np.linalg.solve(G, sb * net._setup["Y"] - B.T @ a0 - u)
    return (a0 + sa2 * B @ corr).T


def readout_posterior_mean(net: DeepNetwork, phi: np.ndarray) -> np.ndarray:
    """ā (m × N), the mean of a | W given the last layer's activations ``phi`` (N × P): the draw of
    :func:`sample_readout` without its noise, āᵀ = σ_a² B (I + σ_a² BᵀB)⁻¹ √β y_r."""
    sb, B, sa2, G = _readout_system(net, phi)
    return (sa2 * B @ np.linalg.solve(G, sb * net._setup["Y"])).T


@numba.njit(cache=True)
def _propose(u, g, xi, h, eps, sd, u_new, w_new):
    """u' = u + h g + ε ξ and w' = σ ⊙ u' in one pass."""
    for i in range(u.shape[0]):
        v = u[i] + h * g[i] + eps * xi[i]
        u_new[i] = v
        w_new[i] = v * sd[i]


@numba.njit(cache=True)
def _reverse(u, u_new, g_new, sd, h):
    """g' ← σ ⊙ g' (whitened gradient, in place) and Σ_i (u − u' − h g')²: the reverse proposal."""
    s = 0.0
    for i in range(u.shape[0]):
        gi = g_new[i] * sd[i]
        g_new[i] = gi
        b = u[i] - u_new[i] - h * gi
        s += b * b
    return s


def deep_collapsed_sweep(rng: np.random.Generator, net: DeepNetwork, theta: np.ndarray, step_size: float,
                         n_mala: int = 5):
    """``n_mala`` MALA steps on log p(W | D) for all W^ℓ jointly, then a | W exactly.

    The steps run in prior-whitened coordinates u = W^ℓ/σ_ℓ (MALA with inverse mass σ_ℓ², as
    :func:`validation.samplers.mala_step`: u' = u + (ε²/2)∇_u log p + ε ξ, Metropolis–Hastings
    with both proposal densities). Returns (θ, mean MH acceptance probability of the W steps).
    """
    if not (math.isfinite(step_size) and step_size > 0):
        raise ValueError(f"step_size must be a finite number > 0 (got {step_size!r})")
    n = net.dim_hidden
    sd = net.prior_scale
    w = np.array(theta[:n], dtype=np.float64)
    u = w / sd
    cache = getattr(net._local, "last", None)  # (w, log p, whitened gradient) where the last sweep ended
    if cache is not None and np.array_equal(cache[0], w):
        lp, g = cache[1], cache[2].copy()
    else:
        lp, g = net.marginal_logdensity_and_grad(w)
        if not np.isfinite(lp):
            raise ValueError("deep_collapsed_sweep: the log density is not finite at the current state")
        g *= sd
    h = 0.5 * step_size * step_size
    probs = 0.0
    u_new, w_new = np.empty(n), np.empty(n)
    for _ in range(n_mala):
        xi = rng.standard_normal(n)
        _propose(u, g, xi, h, step_size, sd, u_new, w_new)  # u' = u + h g + ε ξ, w' = σ ⊙ u'
        lp_new, g_new = net.marginal_logdensity_and_grad(w_new)
        if not (np.isfinite(lp_new) and np.all(np.isfinite(g_new))):
            continue
        back2 = _reverse(u, u_new, g_new, sd, h)  # g' ← σ ⊙ g'; Σ (u − u' − h g')²
        log_ratio = lp_new - lp - 0.5 * back2 / (step_size * step_size) + 0.5 * float(xi @ xi)
        prob = math.exp(min(0.0, log_ratio))
        probs += prob
        if rng.random() < prob:
            u, u_new = u_new, u
            w, w_new = w_new, w
            lp, g = lp_new, g_new
    net._local.last = (w.copy(), lp, g.copy())
    a = sample_readout(rng, net, net.unpack_hidden(w))
    return np.concatenate([w, a.ravel()]), probs / n_mala
