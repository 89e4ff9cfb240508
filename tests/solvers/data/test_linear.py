"""The exact linear closed form (solvers.data.linear) on singular input kernels K0 = X Xᵀ/N0."""
import numpy as np
import pytest

from solvers.data.linear import solve_linear
from theory.linear import gp_mean_predictor
from theory.spec import ModelSpec

GOLDEN = (1 + np.sqrt(5)) / 2


def _orthogonal_rows(n_features=8):
    a = np.zeros(n_features)
    b = np.zeros(n_features)
    a[0], b[1] = np.sqrt(n_features), np.sqrt(n_features)  # |a|² = |b|² = N0, a ⟂ b
    return a, b


def test_duplicated_input_same_label_by_hand():
    """Inputs (a, a, b), labels (0, 0, 1), σ_a = σ_1 = 1, T = 0: K0 = [[1,1,0],[1,1,0],[0,0,1]] has rank 2.
    Per class, x_c = λ_c τ_c² and λ_c τ_c/(1 − x_c) = 1 with λ_0 = 2 (the duplicated pair), λ_1 = 1, so
    τ_1 = 1/φ (τ² + τ = 1, φ the golden ratio), τ_0 = τ_1/2 and U = φ I; f = Y exactly."""
    a, b = _orthogonal_rows()
    spec = ModelSpec(nonlinearity="linear", class_sizes=(2, 1), temperature=0.0, inputs=np.stack([a, a, b]))
    assert np.linalg.matrix_rank(spec.input_kernel()) == 2
    sol = solve_linear(spec)
    assert sol.converged and sol.status == "converged"
    t_hand = np.array([[0.5 / GOLDEN, 0.0], [0.5 / GOLDEN, 0.0], [0.0, 1 / GOLDEN]])
    np.testing.assert_allclose(sol.t, t_hand, atol=1e-12)
    np.testing.assert_allclose(sol.readout_moment, GOLDEN * np.eye(2), atol=1e-12)
    np.testing.assert_allclose(sol.outputs, spec.targets(), atol=1e-12)
    np.testing.assert_allclose(sol.predict(np.stack([a, b, a + b])), [[1, 0], [0, 1], [1, 1]], atol=1e-12)


def test_duplicated_input_conflicting_labels_by_hand():
    """Inputs (a, b, a), labels (0, 0, 1): the null vector n = (1, 0, −1)/√2 of K0 carries P_n Y, which
    only T t fits: t_n = P_n Y / T, f = P_r Y + O(T), and at T = 0 f = P_r Y exactly, the duplicated
    input's output the label average (½, ½)."""
    a, b = _orthogonal_rows()
    spec = ModelSpec(nonlinearity="linear", class_sizes=(2, 1), temperature=0.0, inputs=np.stack([a, b, a]))
    Y = spec.targets()
    n = np.array([1.0, 0.0, -1.0]) / np.sqrt(2)
    PnY = np.outer(n, n @ Y)
    PrY = Y - PnY
    np.testing.assert_allclose(PrY, [[0.5, 0.5], [1, 0], [0.5, 0.5]], atol=1e-15)
    sol0 = solve_linear(spec)
    assert sol0.converged and "T = 0 limit" in sol0.message
    np.testing.assert_allclose(sol0.outputs, PrY, atol=1e-12)
    np.testing.assert_allclose(sol0.predict(a[None]), [[0.5, 0.5]], atol=1e-12)
    for T in (1e-2, 1e-8):
        sol = solve_linear(spec.replace(temperature=T))
        assert sol.converged
        np.testing.assert_allclose(sol.outputs + T * sol.t, Y, atol=1e-10)
        np.testing.assert_allclose(n @ sol.t, n @ Y / T, rtol=1e-12)  # the null part of t is P_n Y / T
        np.testing.assert_allclose(sol.outputs, PrY, atol=10 * T)  # and f → P_r Y linearly in T


@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("sklearn")
    from theory.datasets import load_digits_dataset
    return load_digits_dataset((0, 1, 2), train_per_class=20)


def _pinv_predictor(ds, spec):
    K0 = spec.input_kernel()
    k0 = ds.test_inputs @ ds.train_inputs.T / ds.train_inputs.shape[1]
    return k0 @ np.linalg.pinv(K0, rcond=1e-10, hermitian=True) @ spec.targets()


def test_digits_singular_kernel_small_temperature(digits):
    """Digits 0/1/2, 20 per class (P = 60, K0 of rank < 60: constant pixels). The closed form used to
    raise "no root inside the domain" at T = 1e-8. Now f = Y − T t to 1e-8 at T = 1e-6 and 1e-8, and the
    mean predictor tends to the lazy one k0ᵀ K0⁺ Y (THEORY §2) linearly in T: their gap divided by T is
    the same at both temperatures and it is below 1e-6 at T = 1e-8. The GP predictor at the same T
    (theory.linear.gp_mean_predictor, no kernel renormalisation) tends to the same limit, more slowly."""
    spec0 = digits.spec("linear", 1.0, 1.0, 1e-8)
    assert np.linalg.matrix_rank(spec0.input_kernel()) < spec0.P
    lazy = _pinv_predictor(digits, spec0)
    gaps = {}
    for T in (1e-6, 1e-8):
        spec = spec0.replace(temperature=T)
        sol = solve_linear(spec)
        assert sol.converged, sol.message
        assert np.max(np.abs(sol.outputs - (spec.targets() - T * sol.t))) < 1e-8
        pred = sol.predict(digits.test_inputs)
        gaps[T] = np.max(np.abs(pred - lazy))
        k0 = digits.test_inputs @ digits.train_inputs.T / digits.train_inputs.shape[1]
        gp = gp_mean_predictor(spec.input_kernel(), k0, spec.targets(), T, 1.0, 1.0)
        assert gaps[T] < np.max(np.abs(gp - lazy)) < 2000 * T
    assert gaps[1e-8] < 1e-6
    assert gaps[1e-6] / 1e-6 == pytest.approx(gaps[1e-8] / 1e-8, rel=0.02)
    assert gaps[1e-6] > 1e-6  # at T = 1e-6 the O(T) gap is visible: the statement is a limit


def test_digits_singular_kernel_zero_temperature(digits):
    """At T = 0 the closed form returns the T → 0 limit: converged, f = P_r Y (the targets' part in the
    range of K0) and the mean predictor equals k0ᵀ K0⁺ Y to 1e-10."""
    spec = digits.spec("linear", 1.0, 1.0, 0.0)
    sol = solve_linear(spec)
    assert sol.converged, sol.message
    K0 = spec.input_kernel()
    PrY = K0 @ np.linalg.pinv(K0, rcond=1e-10, hermitian=True) @ spec.targets()
    assert np.max(np.abs(PrY - spec.targets())) > 0.1  # the targets do have a null-space part
    np.testing.assert_allclose(sol.outputs, PrY, atol=1e-9)
    np.testing.assert_allclose(sol.predict(digits.test_inputs), _pinv_predictor(digits, spec), atol=1e-10)
