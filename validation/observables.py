"""Observables of a sampled network, in the same type the theory returns (THEORY §2).

f[c, r]: mean training output on class c; U = (1/N) Σ_i a_i a_iᵀ; kernel
K_μν = (1/N) Σ_i φ(h_iμ) φ(h_iν), averaged into the class diagonal and blocks
(:func:`theory.linear.class_summary`).
"""
from __future__ import annotations

import numpy as np

from theory.linear import class_summary
from theory.observables import Observables

from .networks import Network

__all__ = ["network_observables", "observables_vector", "from_vector"]


def network_observables(net: Network, theta: np.ndarray) -> Observables:
    W, a = net.unpack(theta)
    phi, _ = net.nonlinearity.eval(net.preactivations(W))
    N = net.width
    f = (a @ phi).T / N**net.gamma
    return class_summary(net.spec.class_sizes, f, a @ a.T / N, phi.T @ phi / N)


def observables_vector(net: Network, theta: np.ndarray) -> np.ndarray:
    """Flat [f, U, kernel diagonal, kernel blocks] for chain storage and MCSE."""
    o = network_observables(net, theta)
    return np.concatenate([o.outputs.ravel(), o.readout_moment.ravel(), o.kernel_diagonal, o.kernel_blocks.ravel()])


def from_vector(v: np.ndarray, m: int, errors: np.ndarray | None = None) -> Observables:
    def split(x):
        return (x[:m * m].reshape(m, m), x[m * m:2 * m * m].reshape(m, m), x[2 * m * m:2 * m * m + m],
                x[2 * m * m + m:].reshape(m, m))

    f, U, kd, kb = split(v)
    err = {}
    if errors is not None:
        ef, eU, ekd, ekb = split(errors)
        err = {"outputs": ef, "readout_moment": eU, "kernel_diagonal": ekd, "kernel_blocks": ekb}
    return Observables(outputs=f, readout_moment=U, kernel_diagonal=kd, kernel_blocks=kb, errors=err)
