"""Observables of a sampled deep network per hidden layer (THEORY §2, §5).

Observables per hidden layer ℓ (in the one-layer schema of :mod:`theory.observables`): the class
diagonal and class blocks of the activation kernel K_ℓ = Φ_ℓᵀΦ_ℓ/N; code fractions
(:func:`validation.observables.neuron_codes` on class-mean activations); plus f and
U = a aᵀ/N, stored flat as [f (m²), U (m²), then per layer kernel diagonal (m) and blocks (m²)]
(:func:`observables_vector`; :func:`split_vector` unpacks it).
"""
from __future__ import annotations

import numpy as np

from theory.codes import split_layer_vector
from theory.linear import class_summary
from theory.spec import class_labels

from .deep_network import DeepNetwork

__all__ = ["layer_observables", "observables_vector", "split_vector", "class_mean_activations"]


def layer_observables(net: DeepNetwork, theta) -> list:
    """[Observables with the kernel of layer ℓ] for ℓ = 1..L (f and U are the same in each)."""
    Ws, a = net.unpack(theta)
    phis = [phi for _, phi, _ in net.forward(Ws)]
    N = net.width
    f = (a @ phis[-1]).T / N**net.gamma
    U = a @ a.T / N
    return [class_summary(net.spec.class_sizes, f, U, phi.T @ phi / N) for phi in phis]


def observables_vector(net: DeepNetwork, theta) -> np.ndarray:
    """Flat [f (m²), U (m²), then per layer kernel diagonal (m) and kernel blocks (m²)]."""
    obs = layer_observables(net, theta)
    parts = [obs[0].outputs.ravel(), obs[0].readout_moment.ravel()]
    for o in obs:
        parts += [o.kernel_diagonal, o.kernel_blocks.ravel()]
    return np.concatenate(parts)


split_vector = split_layer_vector


def class_mean_activations(net: DeepNetwork, theta) -> list:
    """[(N × m) class-mean activations of layer ℓ] for ℓ = 1..L."""
    labels = class_labels(net.spec.class_sizes)
    return [np.stack([phi[:, labels == c].mean(axis=1) for c in range(net.spec.m)], axis=1)
            for phi in net.activations(theta)]
