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

#: a class activates a neuron when its class-mean |activation| exceeds this fraction of the
#: neuron's largest class-mean |activation| (scale-free; see :func:`neuron_codes`)
CODE_THRESHOLD = 0.5


def class_mean_activations(net: Network, theta: np.ndarray) -> np.ndarray:
    """(N × m) mean activation of each neuron over the inputs of each class."""
    W, _ = net.unpack(theta)
    phi, _ = net.nonlinearity.eval(net.preactivations(W))
    labels = np.repeat(np.arange(net.spec.m), net.spec.class_sizes)
    return np.stack([phi[:, labels == c].mean(axis=1) for c in range(net.spec.m)], axis=1)


def neuron_codes(class_means: np.ndarray, threshold: float = CODE_THRESHOLD) -> np.ndarray:
    """Each neuron's code as a bit mask: bit c set when |mean activation on class c| exceeds
    ``threshold`` × the neuron's largest |class-mean activation| (silent neurons get code 0)."""
    mag = np.abs(np.asarray(class_means, dtype=np.float64))
    top = mag.max(axis=1, keepdims=True)
    active = (mag > threshold * top) & (top > 1e-12)
    return active.astype(np.int64) @ (1 << np.arange(mag.shape[1]))


def code_fractions(codes: np.ndarray, m: int) -> dict:
    """Fraction of neurons per code, keyed by the code as a string of 0/1 per class ("110")."""
    codes = np.asarray(codes)
    return {"".join("1" if (k >> c) & 1 else "0" for c in range(m)): float(np.mean(codes == k))
            for k in range(1 << m) if np.any(codes == k)}


def participation_ratio(contributions: np.ndarray) -> float:
    """(Σ_i c_i)² / (N Σ_i c_i²) for neuron contributions c_i >= 0: 1 when all neurons carry the
    output equally (analog, redundant), ~k/N when k neurons carry it (sparse)."""
    c = np.abs(np.asarray(contributions, dtype=np.float64))
    return float(c.sum() ** 2 / (len(c) * np.sum(c * c))) if np.any(c) else 0.0


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
