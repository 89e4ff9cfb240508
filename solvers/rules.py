"""Tensor quadrature rules for integrals against N(0, I_m).

Both return nodes z (n^m, m) and log weights ``logw`` of a rule for the
measure N(0, I): Σ_k e^{logw_k} g(z_k) ≈ E_{z ~ N(0, I)}[g(z)]. The
integrators and the needle rule (:mod:`solvers.finite_p.placement`) share them.
"""
from __future__ import annotations

from functools import lru_cache
import math

import numpy as np

__all__ = ["trapezoid_nodes", "trapezoid_edge", "gauss_hermite_nodes", "TRAPEZOID_HALF_WIDTH",
           "TRAPEZOID_MAX_HALF_WIDTH", "EDGE_WEIGHT"]


#: Half-width of the trapezoid grid in the whitened coordinates of a component (covariances
#: are inflated by 1.25, so 6.6 is 8.25 standard deviations: a Gaussian's weight in the box's outer
#: shell is then below ``EDGE_WEIGHT``, and heavier tails widen the box). The narrower the box,
#: the finer the spacing at a given order; the rule's error falls like e^{−c/h}.
TRAPEZOID_HALF_WIDTH = 6.6
#: Largest half-width the box is widened to (at fixed spacing) when the integrand on its edge is
#: not negligible (heavy tails of p(a) near the ReLU domain boundary, THEORY §3).
TRAPEZOID_MAX_HALF_WIDTH = 17.0
#: Largest weight, relative to the largest weight of the rule, that a box edge may carry, at most
#: (the integrators use 1% of the requested relative accuracy if that is smaller): the tail cut off
#: there is then of that order, below integral_tol.
EDGE_WEIGHT = 1e-9


@lru_cache(maxsize=32)
def trapezoid_nodes(m: int, n: int, half_width: float = TRAPEZOID_HALF_WIDTH):
    """Tensor trapezoid grid, n points per axis on [−Z, Z] (Z = ``half_width``), and log(h^m N(z; 0, I)).

    With these log weights the Gauss–Hermite code path integrates by the
    trapezoid rule: ∫ N(z) (e^S / N(z)) dz ≈ Σ h^m e^S. For analytic integrands
    that decay like Gaussians the error falls like e^{−c/h} and, unlike
    Gauss–Hermite, does not favour the centre, so flat-topped and multi-bump
    laws (sigmoid codes) converge as fast as Gaussian ones. Integrands with
    heavier tails than the component's Gaussian are truncated at the ball
    |z| = Z; :func:`trapezoid_edge` marks its outer shell so that the caller
    can measure the truncation and widen Z.
    """
    x = np.linspace(-half_width, half_width, n)
    h = x[1] - x[0]
    grids = np.meshgrid(*([x] * m), indexing="ij")
    z = np.stack([g.ravel() for g in grids], axis=1)
    # the cube's corners beyond radius Z carry weight < e^{-Z²/2}: keep the ball (half the nodes in 3-D)
    z = np.ascontiguousarray(z[np.sum(z * z, axis=1) <= half_width**2])
    logw = m * math.log(h) - 0.5 * np.sum(z * z, axis=1) - 0.5 * m * math.log(2 * math.pi)
    z.setflags(write=False)
    logw.setflags(write=False)
    return z, logw


@lru_cache(maxsize=32)
def trapezoid_edge(m: int, n: int, half_width: float = TRAPEZOID_HALF_WIDTH) -> np.ndarray:
    """Indices of the nodes of :func:`trapezoid_nodes` in its outer shell |z| > Z − 1.5h."""
    z, _ = trapezoid_nodes(m, n, half_width)
    h = 2.0 * half_width / (n - 1)
    idx = np.flatnonzero(np.sum(z * z, axis=1) > (half_width - 1.5 * h) ** 2)
    idx.setflags(write=False)
    return idx


@lru_cache(maxsize=16)
def gauss_hermite_nodes(m: int, n: int):
    """Tensor Gauss–Hermite nodes z (n^m, m) for N(0, I) and their log weights (summing to 1)."""
    x, w = np.polynomial.hermite.hermgauss(n)
    z1 = math.sqrt(2.0) * x
    lw1 = np.log(w / math.sqrt(math.pi))
    grids = np.meshgrid(*([z1] * m), indexing="ij")
    lgrids = np.meshgrid(*([lw1] * m), indexing="ij")
    z = np.ascontiguousarray(np.stack([g.ravel() for g in grids], axis=1))
    logw = np.sum(np.stack([g.ravel() for g in lgrids], axis=1), axis=1)
    z.setflags(write=False)
    logw.setflags(write=False)
    return z, logw
