"""The shared mode search (solvers.mode_search): maxima found and saddles not, the Laplace mass of a
Gaussian is exact, finite-difference derivatives match analytic ones, merging modulo sign."""
from __future__ import annotations

import math

import numpy as np
import pytest

from solvers.deep.modes import find_modes as deep_find_modes
from solvers.mode_search import ascend, distinct, finite_differences, group, laplace_log_mass


def double_well(A):
    """S(x, y) = −(x² − 1)² − y²/2 + x/4: maxima near x = ±1 (unequal heights), a saddle near x = 0."""
    x, y = A[:, 0], A[:, 1]
    S = -(x**2 - 1) ** 2 - 0.5 * y**2 + 0.25 * x
    g = np.stack([-4 * x * (x**2 - 1) + 0.25, -y], axis=1)
    H = np.zeros((len(A), 2, 2))
    H[:, 0, 0] = -12 * x**2 + 4
    H[:, 1, 1] = -1.0
    return S, g, H


def _stationary_x():
    """Roots of −4x³ + 4x + 1/4 = 0 (the stationary points on y = 0), ascending."""
    return np.sort(np.roots([-4.0, 0.0, 4.0, 0.25]).real)


def test_two_maxima_found_and_the_saddle_not():
    lo, mid, hi = _stationary_x()
    rng = np.random.default_rng(0)
    starts = np.concatenate([rng.uniform(-2, 2, (40, 2)), [[mid, 0.0]]])  # one start exactly on the saddle
    run = ascend(double_well, starts, tol=1e-12, maxiter=200, radius=0.5)
    w = np.linalg.eigvalsh(run.hess)
    keep = run.converged & (w[:, -1] < 0)
    found, counts = distinct(run.A, run.S, keep)
    modes = run.A[found]
    assert len(modes) == 2 and sum(counts) == keep.sum()
    # best first: the x > 0 well is higher (tilt +x/4)
    assert np.allclose(modes, [[hi, 0.0], [lo, 0.0]], atol=1e-10)
    assert run.S[found[0]] > run.S[found[1]]
    assert not np.any(np.linalg.norm(run.A[keep] - [mid, 0.0], axis=1) < 1e-3)
    assert keep[-1]  # the start on the saddle was kicked off and converged to a maximum


def test_laplace_mass_of_a_gaussian_is_exact():
    """S = c − ½ (a − μ)ᵀ Q (a − μ): log ∫ e^S da = c + ½ m log 2π − ½ log det Q, and the search finds μ
    in one Newton step from anywhere."""
    rng = np.random.default_rng(1)
    m = 3
    B = rng.standard_normal((m, m))
    Q = B @ B.T + 0.5 * np.eye(m)
    mu, c = rng.standard_normal(m), 0.7

    def gauss(A):
        D = A - mu
        return c - 0.5 * np.einsum("kr,rs,ks->k", D, Q, D), -D @ Q, np.broadcast_to(-Q, (len(A), m, m)).copy()

    run = ascend(gauss, rng.standard_normal((5, m)) * 3, tol=1e-13, maxiter=50, radius=100.0)
    assert run.converged.all()
    assert np.allclose(run.A, mu, atol=1e-12)
    exact = c + 0.5 * m * math.log(2 * math.pi) - 0.5 * math.log(np.linalg.det(Q))
    assert laplace_log_mass(run.S, run.hess) == pytest.approx(np.full(5, exact), abs=1e-12)
    # not a maximum: no mass
    assert laplace_log_mass(np.zeros(1), np.diag([-1.0, 1.0, -1.0])[None]) == [-np.inf]


def test_finite_differences_match_analytic_derivatives():
    rng = np.random.default_rng(2)
    m = 3
    C = rng.standard_normal((m, m))

    def smooth(A):
        z = A @ C.T
        return np.sum(np.sin(z), axis=1) - 0.25 * np.sum(A**4, axis=1)

    def analytic(A):
        z = A @ C.T
        g = np.cos(z) @ C - A**3
        H = -np.einsum("kc,cr,cs->krs", np.sin(z), C, C) - np.einsum("kr,rs->krs", 3 * A**2, np.eye(m))
        return smooth(A), g, H

    A = rng.standard_normal((7, m))
    S, g, H = finite_differences(smooth, m)(A)
    S0, g0, H0 = analytic(A)
    assert np.array_equal(S, S0)
    assert np.allclose(g, g0, atol=1e-7)
    assert np.allclose(H, H0, atol=1e-6)
    assert np.array_equal(H, np.swapaxes(H, 1, 2))


def test_finite_differences_outside_the_domain_are_minus_infinity_and_stay_put():
    def half(A):  # defined on x < 1 only
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(A[:, 0] < 1, np.log(np.maximum(1 - A[:, 0], 0)) + A[:, 0] - 0.5 * A[:, 1] ** 2, -np.inf)

    der = finite_differences(half, 2)
    S, g, H = der(np.array([[2.0, 0.0], [1.0 - 1e-6, 0.0], [0.0, 0.0]]))
    assert np.isneginf(S[:2]).all() and np.isfinite(S[2])
    assert not np.any(g[:2]) and not np.any(H[:2])
    run = ascend(der, np.array([[2.0, 0.0], [0.5, 1.0]]), tol=1e-9, maxiter=100, radius=0.5)
    assert not run.converged[0] and np.array_equal(run.A[0], [2.0, 0.0])
    # the maximum of log(1 − x) + x − y²/2 is at x = 0, y = 0
    assert run.converged[1] and np.allclose(run.A[1], 0.0, atol=1e-6)


def test_escape_is_detected():
    """S = a₁ − a₂²: unbounded above along a₁, every start runs away."""
    def ramp(A):
        H = np.zeros((len(A), 2, 2))
        H[:, 1, 1] = -2.0
        return A[:, 0] - A[:, 1] ** 2, np.stack([np.ones(len(A)), -2 * A[:, 1]], axis=1), H

    run = ascend(ramp, np.zeros((3, 2)), tol=1e-10, maxiter=500, radius=1.0)
    assert run.escaped.all() and not run.converged.any()


def test_merge_modulo_sign():
    a = np.array([1.0, -2.0, 0.5])
    B = np.array([a, -a + 1e-9, 2 * a, a + 1e-9])
    found, counts = group(B, rel=1e-6)
    assert found == [0, 1, 2] and counts == [2, 1, 1]
    found, counts = group(B, rel=1e-6, odd=True)
    assert found == [0, 2] and counts == [3, 1]
    # distinct orders by S first, so the leader is the best row
    idx, counts = distinct(B, np.array([0.0, 1.0, 0.5, 0.0]), np.ones(4, bool), odd=True)
    assert idx.tolist() == [1, 2] and counts == [3, 1]


def test_deep_find_modes_on_the_double_well():
    """The deep solver's value-only mode search (finite differences) finds both wells with their
    Laplace masses, best first."""
    lo, _, hi = _stationary_x()
    rng = np.random.default_rng(3)
    modes, vals, masses, hess = deep_find_modes(lambda A: double_well(A)[0], rng.standard_normal((30, 2)))
    assert len(modes) == 2
    assert np.allclose(modes, [[hi, 0.0], [lo, 0.0]], atol=1e-6)
    S, _, H = double_well(modes)
    assert np.allclose(vals, S) and np.allclose(hess, H, atol=1e-5)
    assert np.allclose(masses, laplace_log_mass(S, H), atol=1e-6)
