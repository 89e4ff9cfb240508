"""Neurons of every hidden layer drawn from the nonlinear deep theory's single-neuron measures.

THEORY §5 (class-block reduction, :mod:`theory.deep_blocks`) and §7 (stationarity test). At a saddle
point of :func:`solvers.deep.nonlinear.solve_deep_nonlinear` the neurons of hidden layer ℓ are
independent, each drawing y = (v, w) ∈ R^m (ℓ = 1) or R^{2m} (ℓ >= 2) from the layer's tilted
y-measure ∝ N(y; 0, I) exp(Σ_c P_c ζ_c(u_c, ξ_c)), then, for every input μ of class c,

    h_μ = ξ_c + s_c z_μ,   z_μ ~ p(z) ∝ N(z; 0, 1) exp(u_c φ(ξ_c + s_c z) + ½ δ̃_c φ(ξ_c + s_c z)²),

with the HS field u = B v (u = t a, a = σ_a v in the readout layer ℓ = L, δ̃ = 0; u ~ N(0, k̃_ℓ)
for ℓ < L with the conjugate (k̃_ℓ, δ̃_ℓ)), the class-shared part ξ = σ_ℓ R w of the input kernel
k_{ℓ-1} = R Rᵀ and s_c = σ_ℓ √δ_{ℓ-1,c} (layer 1: ξ = 0, s = σ_1). The readout a of a last-layer
neuron comes with its h (the joint measure; a | h ~ N(σ_a² Σ_μ t_μ φ(h_μ), σ_a² I) follows).
y is drawn by sampling-importance-resampling from the solver's Gaussian proposal of that layer
(:func:`theory.deep_blocks.sample_layer_neurons`, which reports the Kish ESS), z by inverse CDF.

:func:`neuron_contributions`: every network observable of :func:`validation.deep.observables_vector`
is a mean over neurons, so iid theory neurons give it with a plain standard error:
    f_cr = ⟨a_r φ̄_c⟩,  U_rs = ⟨a_r a_s⟩,  K_diag,c = ⟨Σ_{μ∈c} φ_μ²⟩/P_c,
    K_cd = ⟨S_c S_d − δ_cd Σ_{μ∈c} φ_μ²⟩ / (P_c P_d − δ_cd P_c),   S_c = Σ_{μ∈c} φ_μ.
"""
from __future__ import annotations

import numpy as np

from theory.deep_blocks import OneD, sample_layer_neurons
from theory.spec import SpecError, class_labels

from .deep_condensate_start import kkt_layer_neurons, kkt_of

__all__ = ["layer_measure_kwargs", "nonlinear_layer_neurons", "neuron_contributions"]


def layer_measure_kwargs(theory, ell: int) -> dict:
    """Keyword arguments of :func:`theory.deep_blocks.layer_integral` for hidden layer ``ell`` (1..L) of a
    converged :class:`solvers.deep.nonlinear.DeepNonlinearSolution`: input kernel (R = chol k_{ℓ-1},
    δ_{ℓ-1}; ℓ >= 2), readout tilt (t, σ_a; ℓ = L) or the conjugate (k̃_ℓ, δ̃_ℓ) (ℓ < L)."""
    L = theory.layers
    if not (isinstance(ell, (int, np.integer)) and 1 <= ell <= L):
        raise SpecError(f"layer must be an integer in 1..{L} (got {ell!r})")
    kw = {}
    if ell >= 2:
        k = np.asarray(theory.kernel_blocks[ell - 2], dtype=np.float64)
        kw.update(R_in=np.linalg.cholesky(0.5 * (k + k.T)),
                  delta_in=np.asarray(theory.kernel_diagonals[ell - 2]) - np.diag(k))
    if ell == L:
        kw.update(t=np.asarray(theory.t), sigma_a=theory.spec.sigma_a)
    else:
        kt, dt = theory.conjugates[ell - 1]
        kw.update(kt=np.asarray(kt), dt=np.asarray(dt))
    return kw


def nonlinear_layer_neurons(theory, n: int, rng: np.random.Generator, candidates: int = 16) -> list:
    """Per hidden layer ℓ = 1..L, ``n`` neurons from the layer measure of ``theory`` (module docstring):
    a list of :func:`theory.deep_blocks.sample_layer_neurons` dicts ("h" n × P, "a" for ℓ = L, "ess"). A deep
    ReLU solution that is a KKT point (``theory.kkt``) gives its truncated bulk and its condensates' outliers
    instead (:func:`validation.deep_condensate_start.kkt_layer_neurons`)."""
    if not getattr(theory, "converged", False) or theory.proposals is None:
        raise SpecError("theory must be a converged DeepNonlinearSolution (with its integration proposals)")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise SpecError(f"n (neurons per layer) must be an integer >= 1 (got {n!r})")
    kkt = kkt_of(theory)
    if kkt is not None:
        return kkt_layer_neurons(kkt, int(n), rng)
    oned = OneD.for_nonlinearity(theory.spec.nonlinearity)
    sizes = theory.spec.class_sizes
    out = []
    for ell in range(1, theory.layers + 1):
        out.append(sample_layer_neurons(oned, sizes, theory.sigmas[ell - 1], theory.proposals[ell - 1], int(n), rng,
                                        candidates=candidates, **layer_measure_kwargs(theory, ell)))
    return out


def neuron_contributions(phis, a, class_sizes) -> np.ndarray:
    """Per neuron (rows) its term of the flat observables vector of :func:`validation.deep.observables_vector`
    (module docstring): the mean over rows is the network's value, std/√n its standard error for iid
    neurons. ``phis``: per hidden layer the activations (n × P); ``a``: readouts (n × m)."""
    lab = class_labels(class_sizes)
    P = np.asarray(class_sizes, dtype=np.float64)
    m = len(P)
    E = (lab[:, None] == np.arange(m)[None, :]).astype(np.float64)  # P × m class indicator
    a = np.asarray(a, dtype=np.float64)
    n = len(a)
    mean_L = (phis[-1] @ E) / P
    parts = [(mean_L[:, :, None] * a[:, None, :]).reshape(n, m * m), (a[:, :, None] * a[:, None, :]).reshape(n, m * m)]
    pairs = np.outer(P, P) - np.diag(P)
    for phi in phis:
        S, Q = phi @ E, (phi * phi) @ E
        blocks = (S[:, :, None] * S[:, None, :] - Q[:, :, None] * np.eye(m)[None]) / np.maximum(pairs, 1.0)
        parts += [Q / P, blocks.reshape(n, m * m)]
    return np.concatenate(parts, axis=1)
