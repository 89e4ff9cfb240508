"""Planted sparse starts for deep chains: k last-layer neurons made one-class outliers that carry a
given share s of each class's output (THEORY §4, §5, §7), the deep counterpart of the one-layer
condensate outliers that :func:`validation.populations.theory_population` places.

From a network state θ (a prior draw or a prior-start chain's state), for each class c and each of
``per_class`` neurons i (those with the largest current part a_ci φ̄_ic of class c's output), the
last-layer preactivations are set to

    h_iμ = ρ_c + H^L_iμ  (μ in class c),     h_iμ = −|H^L_iμ|  (μ not in c),

so that for ReLU the neuron is active on class c only (code c), with activations O(ρ_c). Its
weight row is the prior conditioned on h (Matheron, as the exact moves of :mod:`validation.deep_swaps`):

    W^L_i = z₀ + A (AᵀA)⁻¹ (h − Aᵀz₀),   z₀ ~ N(0, σ_L² I),   H^L = W^L A,

with A the last layer's input (Φ_{L-1}/√N, or Xᵀ/√N0 for L = 1), so H^L_i = h exactly and the lower
layers are unchanged. ρ_c is chosen so that the planted neurons carry the share

    s_c = Σ_{i planted for c} ā_ci φ̄_ic / Σ_i ā_ci φ̄_ic = s

of class c's output under the posterior mean ā of the readout given W (Matheron's mean of
:func:`validation.deep_sampler.sample_readout`: āᵀ = σ_a² B (I + σ_a² BᵀB)⁻¹ √β Y, B = √β N^{-γ} Φ_L),
found by bisection in log ρ_c, classes in turn until every s_c is within ``tol``. The readout of the
returned state is an exact draw of a | W, so the state is one the collapsed sweep can start from. The
readouts of the planted neurons come out O(√N) (a_ci φ̄_ic/N = O(1) with φ̄_ic = O(ρ_c) = O(√N)), as
the condensate's r = √(N λ_j)/σ.

Needs φ unbounded above (ReLU-like): with a bounded φ the share cannot be raised by ρ and a
:class:`theory.spec.SpecError` is raised.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from theory.checks import check_float, check_int
from theory.codes import neuron_codes
from theory.spec import SpecError, class_labels

from .deep_network import DeepNetwork
from .deep_sampler import readout_posterior_mean, sample_readout

__all__ = ["PlantedStart", "plant_sparse", "readout_posterior_mean", "planted_shares", "RHO_MAX"]

#: largest ρ_c tried (in units of the layer's prior scale × √N) before the share is declared unreachable
RHO_MAX = 1e3


@dataclass(frozen=True)
class PlantedStart:
    """A planted sparse state: ``theta``, the planted neurons and their classes, ρ_c per class, the
    shares s_c under the posterior-mean readout, and the planted neurons' codes (bit masks)."""

    theta: np.ndarray
    neurons: np.ndarray
    classes: np.ndarray
    rho: np.ndarray
    share: np.ndarray
    codes: np.ndarray

    def to_json(self) -> dict:
        return {"neurons": self.neurons.tolist(), "classes": self.classes.tolist(), "rho": self.rho.tolist(),
                "share": self.share.tolist(), "codes": self.codes.tolist()}


def _class_means(phi, labels, m) -> np.ndarray:
    """(N × m) mean of each row of ``phi`` over the inputs of each class."""
    return np.stack([phi[:, labels == c].mean(axis=1) for c in range(m)], axis=1)


def planted_shares(a: np.ndarray, phi: np.ndarray, neurons, classes, class_sizes) -> np.ndarray:
    """s_c (m,): the part of class c's output Σ_i a_ci φ̄_ic carried by the ``neurons`` planted for c."""
    m = a.shape[0]
    contrib = a.T * _class_means(phi, class_labels(class_sizes), m)
    out = np.zeros(m)
    for i, c in zip(neurons, classes):
        out[c] += contrib[i, c]
    return out / contrib.sum(axis=0)


def _choose(a, phi, labels, m, per_class):
    """per_class neurons per class with the largest a_ci φ̄_ic, distinct (classes in order)."""
    contrib = a.T * _class_means(phi, labels, m)
    taken, neurons, classes = set(), [], []
    for c in range(m):
        for i in np.argsort(-contrib[:, c], kind="stable"):
            if len(neurons) == (c + 1) * per_class:
                break
            if int(i) not in taken:
                taken.add(int(i))
                neurons.append(int(i))
                classes.append(c)
    return np.array(neurons), np.array(classes)


def _profiles(H, neurons, classes, labels, rho):
    """The planted rows of H^L (module docstring) at ρ_c = ``rho``."""
    h = -np.abs(H[neurons])
    for k, (i, c) in enumerate(zip(neurons, classes)):
        on = labels == c
        h[k, on] = rho[c] + H[i, on]
    return h


def _calibrate(net, H, phi, neurons, classes, labels, share, tol):
    """ρ_c (m,) with planted share s_c = ``share`` for every class (bisection in log ρ_c, classes in turn)."""
    m, scale = net.spec.m, net.sigmas[-1] * math.sqrt(net.width)
    rho = np.zeros(m)
    phi = phi.copy()

    def shares(r):
        phi[neurons] = net.nonlinearity(_profiles(H, neurons, classes, labels, r))
        return planted_shares(readout_posterior_mean(net, phi), phi, neurons, classes, net.spec.class_sizes)

    for _ in range(20):
        for c in range(m):
            lo, hi = -12.0, math.log(1e-2)
            while True:
                rho[c] = scale * math.exp(hi)
                if shares(rho)[c] >= share:
                    break
                if rho[c] >= scale * RHO_MAX:
                    raise SpecError(f"plant_sparse: share {share} of class {c} not reached at rho = {rho[c]:.3g} "
                                    f"(phi = {net.spec.nonlinearity!r} must be unbounded above)")
                lo, hi = hi, hi + math.log(4.0)
            for _ in range(60):
                mid = 0.5 * (lo + hi)
                rho[c] = scale * math.exp(mid)
                lo, hi = (mid, hi) if shares(rho)[c] < share else (lo, mid)
            rho[c] = scale * math.exp(0.5 * (lo + hi))
        s = shares(rho)
        if np.max(np.abs(s - share)) <= tol:
            return rho, s
    raise SpecError(f"plant_sparse: shares {s} did not settle at {share} within {tol}")


def plant_sparse(rng: np.random.Generator, net: DeepNetwork, theta: np.ndarray, share: float = 0.8,
                 per_class: int = 1, tol: float = 1e-6) -> PlantedStart:
    """The planted sparse state of the module docstring built on ``theta``: ``per_class`` one-class
    outliers per class carrying the share ``share`` of each class's output (posterior-mean readout),
    the readout then drawn exactly from a | W."""
    share = check_float("share", share, 0.0, 1.0, lo_open=True, hi_open=True)
    per_class = check_int("per_class", per_class, 1)
    m, N = net.spec.m, net.width
    if m * per_class > N:
        raise SpecError(f"per_class = {per_class} needs width >= {m * per_class} (got {N})")
    Ws, a = net.unpack(np.array(theta, dtype=np.float64))
    Ws = [W.copy() for W in Ws]
    fwd = net.forward(Ws)
    H, phi = fwd[-1][0], np.array(fwd[-1][1])
    A = net._setup["XsT"] if net.layers == 1 else fwd[-2][1] / math.sqrt(N)
    try:
        Gf = cho_factor(A.T @ A, lower=True)
    except np.linalg.LinAlgError:
        raise SpecError("plant_sparse: the last layer's input Gram matrix is singular (width too small)") from None
    labels = class_labels(net.spec.class_sizes)
    neurons, classes = _choose(a, phi, labels, m, per_class)
    rho, s = _calibrate(net, H, phi, neurons, classes, labels, share, tol)
    h = _profiles(H, neurons, classes, labels, rho)
    for k, i in enumerate(neurons):
        z0 = net.sigmas[-1] * rng.standard_normal(A.shape[0])
        Ws[-1][i] = z0 + A @ cho_solve(Gf, h[k] - A.T @ z0)
    a_new = sample_readout(rng, net, Ws)
    return PlantedStart(theta=net.pack(Ws, a_new), neurons=neurons, classes=classes, rho=rho, share=s,
                        codes=neuron_codes(_class_means(net.nonlinearity(h), labels, m)))
