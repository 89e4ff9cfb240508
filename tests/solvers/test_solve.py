"""The one-hidden-layer solver: closed forms, limits, symmetries, method agreement."""
import numpy as np
import pytest

from solvers.options import SolverOptions
from solvers.finite_p.problem import ClassProblem
from solvers.solve import solve
from theory.linear import gp_mean_predictor, linear_class_closed_form
from solvers.data.linear import solve_linear
from theory.spec import ModelSpec
from validation.error_coverage import max_difference


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
    """m >= 5 uses randomised-QMC importance sampling; its error bars cover the closed form. Its
    relative error bar (~5e-3) cannot meet the default integral_tol 1e-7: not converged, the
    reason in the message; with integral_tol 1e-2 the bound holds and the solve converges."""
    spec = ModelSpec("linear", class_sizes=sizes, temperature=0.2)
    _, exact = linear_class_closed_form(spec)
    strict, loose = solve(spec), solve(spec, SolverOptions(integral_tol=1e-2))
    assert not strict.converged and strict.status == "error-bound-missed"
    assert "error bar" in strict.message and "integral_tol" in strict.message
    assert strict.error_estimate > 1e-7
    # README: "QMC (m >= 5) is accurate to about 1e-3 (m = 5) and 1e-2 (m = 10)" (measured max true
    # error over f, U, kernel 3.4e-3 and 7.7e-3), and the reported estimate covers it
    true = max_difference(strict.observables, exact)
    assert true <= min(1e-2, strict.error_estimate), (true, strict.error_estimate)
    assert loose.success and loose.integrator.startswith("qmc"), loose.message
    for res in (strict, loose):
        for key in ("outputs", "readout_moment"):
            err = res.observables.errors[key]
            z = np.abs(getattr(res.observables, key) - getattr(exact, key)) / err
            assert np.max(z) < 6.0, (key, np.max(z))


def test_qmc_points_are_multiplied_when_that_can_meet_integral_tol():
    """1024 QMC points give a relative error bar of ~5e-3; integral_tol 2e-3 is within reach of 16×
    the points at the Monte Carlo rate, so the points are doubled until the bound holds."""
    spec = ModelSpec("linear", class_sizes=(4, 3, 3, 2, 2), temperature=0.2)
    res = solve(spec, SolverOptions(integral_tol=2e-3, qmc_points=1024))
    assert res.converged, res.message
    assert any("QMC points per replicate" in line for line in res.log), res.log


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
    # the documented masses λ = 1.98 (class 0) and 3.00 (classes 1, 2), to their two decimals
    assert masses[0] == pytest.approx(1.98, abs=0.005) and masses[1] == pytest.approx(3.00, abs=0.005)


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


# ----------------------------------------------------------------------------- the paper's regime

def _paper(sizes=(32, 16, 16), nl="normcdf", T=0.02):
    return ModelSpec(nl, class_sizes=sizes, temperature=T, sigma_a=1.0 / np.sqrt(sum(sizes)))


#: large-P solution at the paper point (solvers.large_p.solve.solve_large_p, σ̄_a² = 1): four branches with
#: codes 1-1-0, 1-0-1, 0-1-1 (P_γ = 0.317, 0.317, 0.306) and 1-0-0 (0.060)
PAPER_LARGE_P_F = np.array([[0.894820, 0.034014, 0.034014], [0.068028, 0.809329, 0.058392],
                            [0.068028, 0.058392, 0.809329]])
PAPER_LARGE_P_U = np.array([[2.237226, -0.648431, -0.648431], [-0.648431, 1.857399, -0.480484],
                            [-0.648431, -0.480484, 1.857399]])


def test_paper_point_normcdf_converges_to_one_mode_per_code():
    """normcdf, classes 32,16,16, T = 0.02, σ_a² = 1/64 (σ̄_a² = 1): the solver used to stop at a line
    search failure (residual 8e-4) with Φ wrong by 3e4 nats. Now: converged with a checked error,
    p(a) has one sharp mode per code, and f, U are within O(1/P) of the large-P solution."""
    from solvers.finite_p.placement import search_modes
    spec = _paper()
    res = solve(spec)
    assert res.success, res.message
    assert res.residual_norm < 1e-7 and res.error_estimate < 1e-7
    assert res.integrator.endswith("4 mode")
    modes, _, _ = search_modes(ClassProblem.from_spec(spec), res.t)
    codes = sorted("".join(str(int(g > 0)) for g in res.t @ a) for a in modes)
    assert codes == ["011", "100", "101", "110"]
    # 1/P corrections: P·|Δf| ≈ 0.044, P·|ΔU| ≈ 1.33 (measured for P = 32 ... 256)
    assert np.max(np.abs(res.outputs - PAPER_LARGE_P_F)) < 2.0 * 0.044 / spec.P
    assert np.max(np.abs(res.readout_moment - PAPER_LARGE_P_U)) < 2.0 * 1.33 / spec.P


@pytest.mark.slow
def test_paper_point_normcdf_from_zero_start():
    """Without the large-P warm start Newton takes ~25 damped steps from t = 0 through fields where the
    modes appear and move; the mode-aware placement keeps Φ right along the way."""
    spec = _paper()
    res = solve(spec, SolverOptions(start="zero"))
    warm = solve(spec)
    assert res.success, res.message
    diff = res.observables.difference(warm.observables)
    assert max(diff.values()) < 1e-7, diff


@pytest.mark.slow
def test_paper_point_finite_p_approaches_large_p_like_one_over_p():
    from solvers.large_p.solve import solve_large_p
    from solvers.large_p.problem import LargePProblem
    dfs, dUs = [], []
    for sizes in [(16, 8, 8), (32, 16, 16), (64, 32, 32)]:
        spec = _paper(sizes)
        res = solve(spec)
        assert res.success, res.message
        lp = solve_large_p(LargePProblem.from_spec(spec))
        dfs.append(np.max(np.abs(res.outputs - lp.outputs)))
        dUs.append(np.max(np.abs(res.readout_moment - lp.readout_moment)))
    for d in (dfs, dUs):
        ratios = np.array(d[:-1]) / np.array(d[1:])
        np.testing.assert_allclose(ratios, 2.0, rtol=0.05)


@pytest.mark.slow
def test_relu_near_condensation_converges():
    """classes 8,4,4, T = 0.5: used to stop at an integration noise floor (residual 1.5e-6). It
    converges, and its error estimate (integrator + the observables' response to the last Newton
    step) bounds the true error of f, U and the kernel, measured against a solve at tol 1e-10
    whose own error estimate is at least 10× smaller (it is added to the bound)."""
    spec = ModelSpec("relu", class_sizes=(8, 4, 4), temperature=0.5)
    res = solve(spec)
    assert res.success, res.message
    assert res.residual_norm < 1e-7 and res.error_estimate < 1e-7
    ref = solve(spec, SolverOptions(tol=1e-10, integral_tol=1e-9))
    assert ref.residual < 1e-9 and ref.error_estimate < 0.1 * res.error_estimate
    obs, exact = res.observables(), ref.observables()
    for key in ("outputs", "readout_moment", "kernel_diagonal", "kernel_blocks"):
        true_error = np.abs(getattr(obs, key) - getattr(exact, key))
        assert np.all(true_error <= obs.errors[key] + ref.error_estimate), key


def test_relu_binary_paper_regime_condenses():
    """ReLU, classes 32,32, T = 0.02, σ_a² = 1/64: used to run off (residual 3e5 after 200 iterations).
    From t = 0 the barrier path hits the curved boundary q = 1 far from the solution and creeps along
    it; the barrier predictor also pushed a secondary direction (margin 0.38) to the boundary, and at
    ε = 1e-8 the margins (6e-10) put a 2e-7 rounding floor on the condensate outputs. Now: large-P
    start, predictor on the active directions, margins stop at ~1e-8."""
    spec = _paper((32, 32), "relu")
    res = solve(spec)
    assert res.success, res.message
    assert res.residual_norm < 1e-7 and res.error_estimate < 1e-7
    cond = res.extra["condensate"]
    big = [(tuple(c), m) for c, m in zip(cond["codes"], cond["mass"]) if m > 1e-3]
    assert sorted(c for c, _ in big) == [(0,), (1,)]  # one single-class code per class
    assert big[0][1] == pytest.approx(big[1][1], rel=1e-5)
    assert max(cond["margins"][:2]) < 1e-6


def test_missed_integrator_bound_is_not_converged():
    """A rule capped below what integral_tol asks for: Newton reaches tol, but the checked error
    estimate stays above the bound, so the result says converged=False, "error-bound-missed"."""
    spec = ModelSpec("tanh", class_sizes=(2, 2), temperature=0.5)
    res = solve(spec, SolverOptions(order=36, max_order=36, integral_tol=1e-12))
    assert not res.converged and not res.success
    assert res.status == "error-bound-missed" and res.status_code == 4
    assert res.residual < 1e-7 and res.error_estimate > 1e-12
    assert "integral_tol" in res.message and "max_order 36" in res.message
    assert res.to_json()["converged"] is False and res.to_json()["status"] == "error-bound-missed"
    default = solve(spec)  # the same task at the default bound converges
    assert default.converged and default.status == "converged", default.message
    np.testing.assert_allclose(default.outputs, res.outputs, atol=1e-6)


def test_lazy_solve_checks_its_residual():
    """solve_lazy: converged when the GP residual max|f + T t − Y| is within tol (reported as the
    error estimate); at T = 0 two equal inputs with different labels cannot be interpolated, and the
    jittered solve's O(1) residual is reported as a missed bound."""
    from solvers.solve import LAZY_TOL, solve_lazy
    from theory.spec import SpecError

    spec = ModelSpec("relu", class_sizes=(4, 2, 2), temperature=0.0)
    res = solve_lazy(spec)
    assert res.converged and res.status == "converged"
    assert res.error_estimate == res.residual <= LAZY_TOL
    X = np.random.default_rng(0).standard_normal((4, 10))
    X[2] = X[0]  # the same input in class 0 and in class 1
    clash = solve_lazy(ModelSpec("linear", class_sizes=(2, 2), temperature=0.0, inputs=X))
    assert clash.extra["jitter"] > 0.0 and clash.residual > 0.1
    assert not clash.converged and clash.status == "error-bound-missed" and "exceeds tol" in clash.message
    noisy = solve_lazy(ModelSpec("linear", class_sizes=(2, 2), temperature=0.1, inputs=X))
    assert noisy.converged, noisy.message  # with noise T > 0 the clash is fitted in the posterior mean
    with pytest.raises(SpecError, match="tol"):
        solve_lazy(spec, tol=0.0)


@pytest.mark.parametrize("method", ["newton", "fixed-point"])
def test_progress_events_follow_the_protocol(method):
    """One ProgressEvent per iteration: stage = the method, step = the iteration, values["residual"]."""
    from solvers.progress import ProgressEvent

    events = []
    res = solve(ModelSpec("tanh", class_sizes=(2, 2), temperature=0.5), method=method, progress=events.append)
    assert res.success, res.message
    assert events and all(isinstance(e, ProgressEvent) and e.stage == method for e in events)
    assert [e.step for e in events] == list(range(1, len(events) + 1)) and len(events) <= res.iterations
    assert all(e.total == SolverOptions().maxiter and np.isfinite(e.values["residual"]) for e in events)


def _leaky_log_z(g, s):
    """log Z(g) and ψ'(g) = Z'(g)/Z(g) of φ(h) = max(h, s h), h ~ N(0, 1), in closed form
    (written here, independently of the package's sympy/quadrature ψ):
    Z = e^{g²/2} Φ(g) + e^{k²/2} Φ(−k), Z' = e^{g²/2}[g Φ(g) + ϕ(g)] + s e^{k²/2}[k Φ(−k) − ϕ(k)], k = s g."""
    from scipy import special
    k = s * g
    log_z = np.logaddexp(g * g / 2 + special.log_ndtr(g), k * k / 2 + special.log_ndtr(-k))
    pdf = lambda x: np.exp(-x * x / 2) / np.sqrt(2 * np.pi)  # noqa: E731
    dz = (np.exp(g * g / 2 - log_z) * (g * special.ndtr(g) + pdf(g))
          + s * np.exp(k * k / 2 - log_z) * (k * special.ndtr(-k) - pdf(k)))
    return log_z, dz


def test_user_expression_leaky_relu_solves_the_saddle_point():
    """The README's user expression "Max(h, 0.1*h)" (classes 2,1, T = 0.5) solves: at the returned t,
    f_c = E[a ψ'(t_c·a)] and U = E[a aᵀ] under p(a) ∝ N(a; 0, I) Π_c Z(t_c·a)^{P_c} (THEORY §3),
    integrated here on a 1401² trapezoid grid with the closed-form Z, equal f = y − T t and the
    reported f and U to 2e-7 (solver tol 1e-7; measured 3e-8)."""
    sizes, T = (2, 1), 0.5
    res = solve(ModelSpec("Max(h, 0.1*h)", class_sizes=sizes, temperature=T))
    assert res.converged, res.message
    x = np.linspace(-14.0, 14.0, 1401)
    a = np.stack([g.ravel() for g in np.meshgrid(x, x, indexing="ij")], axis=1)
    log_w, dpsi = -0.5 * np.sum(a * a, axis=1), []
    for c, P in enumerate(sizes):
        log_z, dz = _leaky_log_z(a @ res.t[c], 0.1)
        log_w, dpsi = log_w + P * log_z, [*dpsi, dz]
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    f = np.array([[np.sum(w * a[:, r] * dpsi[c]) for r in range(2)] for c in range(2)])
    U = (a * w[:, None]).T @ a
    np.testing.assert_allclose(f, np.eye(2) - T * res.t, atol=2e-7)
    np.testing.assert_allclose(res.outputs, f, atol=2e-7)
    np.testing.assert_allclose(res.readout_moment, U, atol=2e-7)
    assert np.max(np.abs(res.t - np.diag(np.diag(res.t)))) > 0.05  # not odd: t has off-diagonal entries
