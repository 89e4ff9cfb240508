"""Observables of a sampled network, in the same type the theory returns (THEORY §2).

f[c, r]: mean training output on class c; U = (1/N) Σ_i a_i a_iᵀ; kernel
K_μν = (1/N) Σ_i φ(h_iμ) φ(h_iν), averaged into the class diagonal and blocks
(:func:`theory.linear.class_summary`).
"""
from __future__ import annotations

import numpy as np

from theory.linear import class_summary
from theory.codes import CODE_THRESHOLD, code_fractions, neuron_codes, participation_ratio  # noqa: F401 (re-exported)
from theory.observables import Observables

from .networks import Network

__all__ = ["network_observables", "observables_vector", "from_vector", "class_mean_activations", "neuron_codes",
           "code_fractions", "participation_ratio", "output_contributions", "readout_histogram", "CODE_THRESHOLD"]


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


# ----------------------------------------------------------------------------- coding schemes



def class_mean_activations(net: Network, theta: np.ndarray) -> np.ndarray:
    """(N × m) mean activation of each neuron over the inputs of each class."""
    W, _ = net.unpack(theta)
    phi, _ = net.nonlinearity.eval(net.preactivations(W))
    labels = np.repeat(np.arange(net.spec.m), net.spec.class_sizes)
    return np.stack([phi[:, labels == c].mean(axis=1) for c in range(net.spec.m)], axis=1)


def output_contributions(net: Network, theta: np.ndarray) -> np.ndarray:
    """c_i = Σ_μ |Σ_r a_ri φ(h_iμ) y_μr|: neuron i's contribution to the correct-class outputs."""
    W, a = net.unpack(theta)
    phi, _ = net.nonlinearity.eval(net.preactivations(W))
    Y = net.spec.targets()
    return np.abs(np.einsum("ri,ip,pr->i", a, phi, Y))


def readout_histogram(net: Network, theta: np.ndarray, bins: int = 41):
    """Histogram (counts, edges) of all readout weights a_ri across neurons."""
    _, a = net.unpack(theta)
    return np.histogram(a.ravel(), bins=bins)
