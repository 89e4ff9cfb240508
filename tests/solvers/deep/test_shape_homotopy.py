"""The homotopy in the nonlinearity's shape (solvers.deep.shape_homotopy) and the 1-D integrals of the shaped
φ_σ = (1 − σ) h + σ φ (theory.deep_tilted): σ = 0 is the deep linear network, σ = 1 is φ, and a small case
reaches the default solve's saddle through σ."""
import copy

import numpy as np
import pytest

from solvers.deep.common import layer_sigmas
from solvers.deep.model import DeepModel
from solvers.deep.newton import SolveLog
from solvers.deep.nonlinear import DeepOptions, _Search, solve_deep_nonlinear
from solvers.deep.shape_homotopy import follow_shape, linear_point, shaped_model
from theory.deep_tilted import OneD, growth_rate, tilted_moments
from theory.spec import ModelSpec, SpecError


def _inputs(n=40, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 3)), 2.0 * rng.normal(size=(n, 3)), np.array([0.5, 0.8, 1.1]),
            np.array([0.3, -0.5, 0.2]))


def _max_diff(a, b):
    return max(float(np.max(np.abs(p - q))) for p, q in zip(a, b))


@pytest.mark.parametrize("name", ["normcdf", "erf"])
def test_shaped_smooth_phi_at_zero_is_the_linear_closed_form(name):
    """σ = 0: the shaped Gauss–Hermite kernel (nodes centred on the linear part's Gaussian) reproduces the
    linear closed form to rounding, at tilts where an uncentred rule is off by 0.1."""
    xi, u, s, d = _inputs()
    lin = tilted_moments(OneD("linear", "linear"), xi, u, s, d)
    assert _max_diff(tilted_moments(OneD.for_nonlinearity(name, 24).shaped(0.0), xi, u, s, d), lin) < 1e-12


def test_shaped_smooth_phi_converges_in_the_node_count_and_matches_the_generic_kernel():
    """0 < σ < 1: 24 against 80 nodes agree to 1e-4 (normcdf 1e-6); the inline φ (code 3) equals the generic
    path (code 0) for tanh."""
    xi, u, s, d = _inputs()
    for name, tol in (("normcdf", 1e-5), ("erf", 1e-3)):
        o = OneD.for_nonlinearity(name, 24)
        for sg in (0.3, 0.7):
            assert _max_diff(tilted_moments(o.shaped(sg), xi, u, s, d), tilted_moments(o.with_nz(80).shaped(sg), xi, u,
                                                                                       s, d)) < tol
    tanh, generic = OneD.for_nonlinearity("tanh", 24), OneD("smooth", "tanh", 24, 0)
    assert _max_diff(tilted_moments(tanh.shaped(0.4), xi, u, s, d), tilted_moments(generic.shaped(0.4), xi, u, s, d)) \
        < 1e-13


def test_leaky_relu_moments(brute_tilted_moments):
    """φ = relu shaped by σ is the leaky ReLU with slope 1 − σ: σ = 0 is linear, σ → 1 the ReLU closed form, and
    σ = 0.7 agrees with brute-force quadrature on a fine grid."""
    xi, u, s, d = _inputs(12)
    relu = OneD.for_nonlinearity("relu")
    assert _max_diff(tilted_moments(relu.shaped(0.0), xi, u, s, d),
                     tilted_moments(OneD("linear", "linear"), xi, u, s, d)) < 1e-12
    assert _max_diff(tilted_moments(relu.shaped(1.0 - 1e-12), xi, u, s, d), tilted_moments(relu, xi, u, s, d)) < 1e-9
    a = 0.3
    got = tilted_moments(relu.shaped(1.0 - a), xi, u, s, d)
    z = np.linspace(-30.0, 30.0, 300001)
    for i in range(len(xi)):
        for c in range(3):
            want = brute_tilted_moments(lambda h: np.where(h > 0, h, a * h), xi[i, c], u[i, c], s[c], d[c], z)
            np.testing.assert_allclose([g[i, c] for g in got], want, rtol=1e-7, atol=1e-8)


def test_leaky_growth_rate_limits():
    """The y-domain bound of the leaky ReLU: slope 1 gives the linear growth (exact), slope 0 the ReLU's."""
    rng = np.random.default_rng(3)
    B, C = 0.3 * rng.normal(size=(3, 3)), 0.5 * rng.normal(size=(3, 3))
    s, d, P = np.array([0.5, 0.8, 1.1]), np.array([0.3, -0.5, 0.2]), [4, 2, 2]
    lin = growth_rate("linear", P, B, s, d, C)
    assert growth_rate("relu", P, B, s, d, C, leak=1.0) == pytest.approx(lin, rel=1e-5)
    assert growth_rate("relu", P, B, s, d, C, leak=0.5) <= lin + 1e-9
    assert growth_rate("relu", P, B, s, d, C, leak=0.5) >= growth_rate("relu", P, B, s, d, C) - 1e-9


def test_shape_is_checked():
    with pytest.raises(SpecError, match="shape"):
        OneD.for_nonlinearity("erf").shaped(1.5)
    assert OneD("linear", "linear").shaped(0.3).shape == 1.0


def _small(sizes=(4, 2, 2)):
    spec = ModelSpec(nonlinearity="normcdf", class_sizes=sizes, temperature=0.5, sigma_a=0.5)
    return spec, DeepModel(spec, layer_sigmas(spec, 2), DeepOptions(search=False))


def test_shape_homotopy_at_zero_is_the_linear_solution():
    """At σ = 0 the shaped model's evaluation equals the linear φ's (same rules and proposals) to rounding, the
    deep linear saddle (:func:`linear_point`) is a root of the exact linear equations, and the homotopy's σ = 0
    solve stays at it within the rule's integration error."""
    spec, model = _small()
    x0 = linear_point(model)
    shaped = shaped_model(model, 0.0)
    linear = copy.copy(model)
    linear.oned = OneD("linear", "linear")
    props = shaped.initial_proposals(x0, 1.5)
    a, b = shaped.evaluate(x0, props), linear.evaluate(x0, props)
    assert np.max(np.abs(a["residual"] - b["residual"])) < 1e-10
    assert abs(a["action"] - b["action"]) < 1e-10
    exact = DeepModel(spec.replace(nonlinearity="linear"), model.sigmas, DeepOptions())
    assert np.max(np.abs(exact.evaluate(x0, exact.initial_proposals(x0, 1.0))["residual"])) < 1e-8
    path = follow_shape(model, x0, props, SolveLog(), target=0.0)
    assert path.shapes == [0.0] and not path.done
    assert np.max(np.abs(path.x - x0)) < 2e-3


@pytest.mark.parametrize("sizes", [(3, 2), pytest.param((4, 2, 2), marks=pytest.mark.slow)])
def test_small_case_reaches_the_default_saddle_through_the_shape(sizes):
    """normcdf, L = 2, T = 0.5, σ_a = 0.5: the shape homotopy from the deep linear saddle reaches σ = 1 and the
    same saddle as the default solve (outputs and kernels within 1e-4). Classes 3,2 (fast; Gauss–Hermite in 2
    and 4 dimensions; error estimate 7e-5, measured difference 1e-7) and 4,2,2 (slow: 3 and 6 dimensions,
    about 9× the CPU; error estimates ~3e-4)."""
    spec, _ = _small(sizes)
    opts = DeepOptions(search=False, code_neurons=0)  # (the saddle only: no code neurons)
    search = _Search(spec, layer_sigmas(spec, 2), opts)
    assert search.from_shape()
    c = search.cands[-1]
    assert c["label"] == "shape homotopy from the deep linear network"
    cold = solve_deep_nonlinear(spec, 2, options=opts)
    assert cold.converged
    np.testing.assert_allclose(c["ev"]["layers"][-1].outputs, cold.outputs, atol=1e-4)
    np.testing.assert_allclose(c["ev"]["layers"][0].k, cold.kernel_blocks[0], atol=1e-4)
