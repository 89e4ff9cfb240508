"""Sampling the first layer with the readout integrated out (collapsed MALA).

The posterior of THEORY §1 is Gaussian in the readout a given W. Integrating a
out exactly gives the marginal of W:

    log p(W | D) = −(m/2) log det M − (β/2) tr(Yᵀ M⁻¹ Y) − |W|²/(2σ_1²) + const,
    M = I_P + c φᵀφ,   c = σ_a² β N^{-2γ},

(φ = φ(h), N × P; each output y_r ~ N(0, M/β) given W). Its gradient is

    ∂/∂h log p = 2c (φ R) ⊙ φ'(h),   R = −(m/2) M⁻¹ + (β/2) M⁻¹ Y Yᵀ M⁻¹,

at O(N P² + P³). In the mean-field scaling c φᵀφ = σ_a² (N/T) K with the kernel
K = φᵀφ/N, so one neuron changes the log density by O(1) however small T/N
is: the stiff output modes (curvature K/T, THEORY §7) are gone, and a neuron
with a large readout can move along the ridge a ∝ φ(h) without being
pinned by the other neurons' fixed readouts. A sweep is ``n_mala`` MALA steps
on this marginal followed by an exact draw of a | W
(:func:`validation.networks.sample_readout`), which together leave the joint
posterior invariant.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from .networks import Network, sample_readout
from .samplers import mala_init, mala_step

__all__ = ["marginal_logdensity_and_grad", "collapsed_sweep"]


def marginal_logdensity_and_grad(net: Network, W: np.ndarray):
    """(log p(W | D) up to a constant, its gradient), with the readout integrated out."""
    X = net.inputs
    Y = net.spec.targets()
    m = net.spec.m
    h = net.preactivations(W)
    phi, dphi = net.nonlinearity.eval(h)
    beta = net.beta
    c = net.spec.sigma_a**2 * beta / net.width ** (2 * net.gamma)
    M = np.eye(phi.shape[1]) + c * (phi.T @ phi)
    fac = cho_factor(M, lower=True)
    logdet = 2.0 * np.sum(np.log(np.diag(fac[0])))
    MiY = cho_solve(fac, Y)
    sw2 = net.spec.sigma_w**2
    logp = -0.5 * m * logdet - 0.5 * beta * np.sum(Y * MiY) - 0.5 * np.sum(W * W) / sw2
    R = -0.5 * m * cho_solve(fac, np.eye(len(M))) + 0.5 * beta * (MiY @ MiY.T)
    g_h = 2.0 * c * (phi @ R) * dphi
    g_W = g_h @ X / np.sqrt(X.shape[1]) - W / sw2
    return float(logp), g_W


def collapsed_sweep(rng: np.random.Generator, net: Network, theta: np.ndarray, step_size: float,
                    n_mala: int = 5):
    """``n_mala`` MALA steps on log p(W | D) (readout integrated out), then a | W exactly.

    Returns (θ, W-acceptance rate), like :func:`validation.networks.gibbs_sweep`.
    """
    W, _ = net.unpack(theta)
    shape = W.shape

    def logp(w):
        lp, g = marginal_logdensity_and_grad(net, w.reshape(shape))
        return lp, g.ravel()

    state = mala_init(W.ravel(), logp)
    accepted = 0
    for _ in range(n_mala):
        state, info = mala_step(rng, state, logp, step_size)
        accepted += info.accepted
    W = state.position.reshape(shape)
    a = sample_readout(rng, net, W)
    return net.pack(W, a), accepted / max(n_mala, 1)
