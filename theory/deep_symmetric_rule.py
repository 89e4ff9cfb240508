"""An integration rule for one layer's y-integral that is exactly symmetric under permutations of equal-size classes
(THEORY §3, §5: relabelling classes of equal size maps a solution to a solution; the y-integral of
:func:`theory.deep_layer.layer_integral`).

Unbiased images. For any orthogonal map Q of R^d, E_{y ~ N(0, I)} h(Q y) = E h(y). With nodes y_i from a proposal q
and importance weights w_i = N(y_i; 0, I)/q(y_i), the estimator

    Ê h = (1/|G|) Σ_i w_i Σ_{g ∈ G} h(Q_g y_i)

is therefore unbiased for E h for every set {Q_g} of orthogonal maps: each image node Q_g y_i carries the base
log-weight of y_i (|Q_g y_i| = |y_i|, so log N(Q_g y_i) − log q(y_i) = log N(y_i) − log q(y_i)) and the integrand
evaluated at Q_g y_i. The self-normalised ratios of :func:`theory.deep_layer.layer_integral` are consistent as before.

Which maps. The layer's integrand depends on y = (v, w) through the fields u = B v (readout B = σ_a t, hidden tilt
B = chol k̃; :func:`theory.deep_fields.tilt_factor`) and ξ = σ R_in w; a class permutation Π (P_π(c) = P_c) acts on
them as u ↦ Π u, ξ ↦ Π ξ. Pulled back to y:

    v ↦ Q_v v,  Q_v = Π (readout),  polar(B⁻¹ Π B) (hidden tilt);      w ↦ Q_w w,  Q_w = polar(R_in⁻¹ Π R_in),

polar(A) = U Vᵀ of A = U S Vᵀ, the nearest orthogonal matrix (so Q_g is orthogonal at every point and Ê is
unbiased everywhere). Where k̃ (and t) and k_in are invariant under Π, B⁻¹ Π B and R_in⁻¹ Π R_in are already
orthogonal, u(Q_g y) = Π u(y) and ξ(Q_g y) = Π ξ(y): the integrand is invariant (Σ_c P_c ζ_c with equal P_c for
permuted classes) and every class-indexed moment o(y) (kernels, f, the conjugate kernel) maps as o(Q_g y) = Π o(y),
so over the group G of such permutations Ê o = Σ_i w_i h(y_i) (1/|G|) Σ_g Π_g o(y_i) is exactly invariant, to
rounding, for any proposal: at a symmetric point the rule's estimates are equivariant, the symmetric subspace of the
equations is exactly invariant, and a symmetric solution solves the full equations.

The maps are computed at each evaluation from the layer's own B and R_in (not held with the proposal: B⁻¹ Π B of a
Cholesky factor depends on the invariant k̃ itself, so maps held from another point would not be symmetries).
"""
from __future__ import annotations

from itertools import permutations

import numpy as np

__all__ = ["equal_size_permutations", "permutation_matrix", "polar_factor", "pulled_back", "image_maps",
           "with_images"]


def equal_size_permutations(sizes) -> list:
    """Every permutation π of the classes with P_π(c) = P_c (the identity first), as index arrays."""
    P = np.asarray(sizes, dtype=np.float64)
    return [np.array(p) for p in permutations(range(len(P))) if np.array_equal(P[list(p)], P)]


def permutation_matrix(perm) -> np.ndarray:
    """Π with (Π a)_c = a_π(c) for the index array ``perm``."""
    Pi = np.zeros((len(perm), len(perm)))
    Pi[np.arange(len(perm)), perm] = 1.0
    return Pi


def polar_factor(A) -> np.ndarray:
    """U Vᵀ of A = U S Vᵀ: the orthogonal matrix nearest to A (A itself when A is orthogonal)."""
    U, _, Vt = np.linalg.svd(np.asarray(A, dtype=np.float64))
    return U @ Vt


def pulled_back(F, Pi, orthogonal: bool = True) -> np.ndarray:
    """polar(F⁻¹ Π F): the class permutation Π of the field F y pulled back to y, made orthogonal (``orthogonal``
    False: F⁻¹ Π F itself, orthogonal already when F Fᵀ = Π F Fᵀ Πᵀ)."""
    A = np.linalg.solve(F, Pi @ F)
    return polar_factor(A) if orthogonal else A


def image_maps(perms, B, R_in=None, readout: bool = False) -> list:
    """[Q_g] (d × d, orthogonal, block diagonal in (v, w)) for the permutations ``perms`` (index arrays, identity
    included) of one layer with tilt factor ``B`` (u = B v; ``readout``: Q_v = Π) and input factor ``R_in``
    (ξ ∝ R_in w; None for the first layer, d = m): the module docstring's maps."""
    m = len(B)
    out = []
    for perm in perms:
        Pi = permutation_matrix(perm)
        Qv = Pi if readout else pulled_back(B, Pi)
        if R_in is None:
            out.append(Qv)
            continue
        Q = np.zeros((2 * m, 2 * m))
        Q[:m, :m], Q[m:, m:] = Qv, pulled_back(np.asarray(R_in, dtype=np.float64), Pi)
        out.append(Q)
    return out


def with_images(y, logw, base, maps):
    """(y, logw, base) of the rule with every node's images Q_g y (module docstring): the nodes stacked image by
    image, the rule's log weights less log |G|, the base log-weights repeated."""
    g = len(maps)
    ys = np.concatenate([y @ Q.T for Q in maps])
    return ys, np.tile(logw, g) - np.log(g), np.tile(base, g)
