"""Domain of Φ: q(t) = max_â σ_a²σ_1² Σ_c P_c κ(t_c·â) (THEORY §3)."""
import numpy as np
import pytest

from theory.domain import marginal_directions
from theory.nonlinearities import get_nonlinearity

P = np.array([32.0, 16.0, 16.0])


def test_linear_q_is_the_top_eigenvalue():
    rng = np.random.default_rng(3)
    t = 0.1 * rng.standard_normal((3, 3))
    dirs, q = marginal_directions(t, P, 0.8, 1.3, get_nonlinearity("linear"))
    top = np.linalg.eigvalsh(t.T @ (P[:, None] * t)).max() * 0.8**2 * 1.3**2
    assert q[0] == pytest.approx(top, rel=1e-12)


def test_relu_one_class_direction_is_exact():
    # t_0 points into a cone where only class 0 is active: q = σ_a²σ_1² P_0 |t_0|²
    t = np.array([[0.2, -0.05, -0.05], [-0.1, 0.1, -0.02], [-0.1, -0.02, 0.1]])
    dirs, q = marginal_directions(t, P, 1.0, 1.0, get_nonlinearity("relu"))
    i = int(np.argmax(dirs @ t[0] / np.linalg.norm(t[0])))
    assert q[i] == pytest.approx(P[0] * np.sum(t[0] ** 2), rel=1e-12)
    np.testing.assert_allclose(dirs[i], t[0] / np.linalg.norm(t[0]), atol=1e-12)
    # and nothing beats the best direction on a dense random sample of the sphere
    A = np.random.default_rng(0).standard_normal((20000, 3))
    A /= np.linalg.norm(A, axis=1, keepdims=True)
    F = (np.maximum(A @ t.T, 0) ** 2) @ P
    assert F.max() <= q[0] * (1 + 1e-12)


def test_bounded_phi_has_no_boundary():
    dirs, q = marginal_directions(np.eye(3), P, 1.0, 1.0, get_nonlinearity("erf"))
    assert len(q) == 0
