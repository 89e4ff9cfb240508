"""The one-hidden-layer solver: closed forms, limits, symmetries, method agreement."""
import numpy as np
import pytest

from solvers.options import SolverOptions
from solvers.solve import solve
from theory.linear import gp_mean_predictor, linear_class_closed_form, solve_linear
from theory.spec import ModelSpec


@pytest.mark.parametrize("T, sizes", [(0.05, (32, 16, 16)), (0.5, (8, 4, 4)), (0.01, (10, 10)), (2.0, (5, 3, 2, 2))])
def test_linear_matches_closed_form(T, sizes):
    spec = ModelSpec("linear", class_sizes=sizes, temperature=T)
    res = solve(spec)
    t, exact = linear_class_closed_form(spec)
    assert res.success, res.message
    diff = res.observables.difference(exact)
    assert max(diff.values()) < 1e-6, diff
    np.testing.assert_allclose(res.t, t, atol=1e-6)
    # and the saddle point f = y − T t
    np.testing.assert_allclose(res.outputs, np.eye(spec.m) - T * res.t, atol=1e-6)


@pytest.mark.parametrize("sizes", [(4, 3, 3, 2, 2), (3,) * 10])
def test_many_classes_use_qmc_with_honest_error_bars(sizes):
    """m >= 5 uses randomised-QMC importance sampling; its error bars cover the closed form."""
    spec = ModelSpec("linear", class_sizes=sizes, temperature=0.2)
    res = solve(spec)
    _, exact = linear_class_closed_form(spec)
    assert res.success and res.integrator.startswith("qmc")
    for key in ("outputs", "readout_moment"):
        err = res.observables.errors[key]
        z = np.abs(getattr(res.observables, key) - getattr(exact, key)) / err
        assert np.max(z) < 6.0, (key, np.max(z))


def test_linear_general_inputs_match_class_closed_form_for_orthogonal_inputs():
    sizes = (6, 3, 3)
    X = np.sqrt(12) * np.eye(12)  # x_μ = √N0 e_μ, K0 = I
    spec = ModelSpec("linear", class_sizes=sizes, temperature=0.1, inputs=X)
    sol = solve_linear(spec)
    _, exact = linear_class_closed_form(spec.replace(inputs=None))
    diff = sol.observables().difference(exact)
    assert max(diff.values()) < 1e-10 and sol.residual < 1e-10


def test_linear_mean_predictor_equals_gp_at_zero_temperature():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((12, 30))
    spec = ModelSpec("linear", class_sizes=(4, 4, 4), temperature=0.0, sigma_a=0.7, sigma_w=1.3, inputs=X)
    sol = solve_linear(spec)
    Xs = rng.standard_normal((5, 30))
    K0 = X @ X.T / 30
    k0 = Xs @ X.T / 30
    gp = gp_mean_predictor(K0, k0, spec.targets(), 0.0, 0.7, 1.3)
    np.testing.assert_allclose(sol.predict(Xs), gp, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(sol.outputs, spec.targets(), atol=1e-10)


def test_high_temperature_gives_vanishing_outputs():
    prev = np.inf
    for T in (10.0, 100.0, 1000.0):
        res = solve(ModelSpec("erf", class_sizes=(4, 2, 2), temperature=T))
        size = np.max(np.abs(res.outputs))
        assert res.success and size < prev
        prev = size
    assert prev < 0.02


def test_swapping_equal_classes_maps_solution_to_itself():
    res = solve(ModelSpec("normcdf", class_sizes=(4, 2, 2), temperature=0.5))
    perm = [0, 2, 1]
    f = res.outputs
    np.testing.assert_allclose(f[np.ix_(perm, perm)], f, atol=1e-7)
    np.testing.assert_allclose(res.readout_moment[np.ix_(perm, perm)], res.readout_moment, atol=1e-6)
    np.testing.assert_allclose(res.kernel_blocks[np.ix_(perm, perm)], res.kernel_blocks, atol=1e-7)


@pytest.mark.parametrize("nl, sizes, T", [("linear", (8, 4, 4), 0.1), ("normcdf", (4, 2, 2), 0.5),
                                         ("erf", (4, 2, 2), 0.5), ("relu", (4, 2, 2), 0.5)])
def test_newton_and_fixed_point_agree(nl, sizes, T):
    spec = ModelSpec(nl, class_sizes=sizes, temperature=T)
    a = solve(spec, method="newton")
    b = solve(spec, method="fixed-point")
    assert a.success and b.success
    diff = a.observables.difference(b.observables)
    assert max(diff.values()) < 1e-6, diff


def test_odd_nonlinearity_keeps_t_diagonal():
    res = solve(ModelSpec("erf", class_sizes=(4, 2, 2), temperature=0.5))
    off = res.t - np.diag(np.diag(res.t))
    assert np.max(np.abs(off)) < 1e-7


def test_relu_default_task_condenses_one_direction_per_class():
    """Small T: the ReLU solution sits on the domain boundary, and outliers along one marginal
    direction per class, each with a one-class code, carry an O(1) share of the output (THEORY §4)."""
    res = solve(ModelSpec("relu", class_sizes=(32, 16, 16), temperature=0.05))
    assert res.success, res.message
    np.testing.assert_allclose(res.outputs, np.eye(3) - 0.05 * res.t, atol=1e-6)
    cond = res.extra["condensate"]
    assert sorted(tuple(c) for c in cond["codes"]) == [(0,), (1,), (2,)]
    assert min(cond["mass"]) > 1.0  # O(1) masses, λ_j = 2μ_jσ_a²σ_1²
    assert max(cond["margins"]) < 1e-6  # on the boundary q = 1
    # the two minority classes are equivalent: equal masses
    masses = dict(zip((c[0] for c in cond["codes"]), cond["mass"]))
    assert masses[1] == pytest.approx(masses[2], rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("nl", ["normcdf", "erf", "tanh"])
def test_default_task_nonlinear(nl):
    res = solve(ModelSpec(nl, class_sizes=(32, 16, 16), temperature=0.05))
    assert res.success, res.message
    np.testing.assert_allclose(res.outputs, np.eye(3) - 0.05 * res.t, atol=1e-6)


@pytest.mark.slow
def test_default_task_gauss_hermite_matches_cubature_reference():
    spec = ModelSpec("tanh", class_sizes=(32, 16, 16), temperature=0.05)
    gh = solve(spec)
    cub = solve(spec, SolverOptions(integrator="cubature", integral_tol=1e-5))
    diff = gh.observables.difference(cub.observables)
    assert max(diff.values()) < 1e-5, diff
