"""Large-P limit (THEORY §4): action maxima, branch equations, symmetry breaking, finite-P convergence."""
import json
import math

import numpy as np
import pytest

from solvers.large_p.solve import (linear_large_p, solve_branches, solve_large_p, solutions, symmetric_solution)
from solvers.large_p.branches import branch_system, newton_branches
from solvers.finite_p.compare_large_p import compare_with_finite_p, readout_concentration
from solvers.large_p.condensate import _directions, condensate_system, q_derivatives
from solvers.large_p.dual import domain_q, evaluate_smoothed_dual
from solvers.large_p.maxima import _group, maximise_action
from solvers.large_p.problem import LargePProblem, critical_temperatures, phi_second_moment
from solvers.solve import solve
from theory.domain import marginal_directions
from theory.linear import linear_class_closed_form
from theory.spec import SpecError

RHO = (0.5, 0.25, 0.25)


# ---------------------------------------------------------------------- input validation
@pytest.mark.parametrize("kwargs, word", [
    ({"sigma_a_bar": 0.0}, "sigma_a_bar"),
    ({"sigma_a_bar": -1.0}, "sigma_a_bar"),
    ({"sigma_w": float("nan")}, "sigma_w"),
    ({"temperature": -0.1}, "temperature"),
    ({"class_fractions": (0.5, 0.4)}, "sum to 1"),
    ({"class_fractions": (1.0,)}, "at least 2"),
    ({"class_fractions": (1.2, -0.2)}, "> 0"),
])
def test_invalid_problem_names_parameter(kwargs, word):
    with pytest.raises(SpecError, match=word):
        LargePProblem(**kwargs)


def test_invalid_continuation_parameter():
    prob = LargePProblem()
    with pytest.raises(SpecError, match="rho_r"):
        branch_system(prob, 1, "beta")
    with pytest.raises(SpecError, match="0..2"):
        branch_system(prob, 1, "rho_3")
    with pytest.raises(SpecError, match=r"\(0, 1\)"):
        prob.with_parameter("rho_0", 1.5)


def test_spec_round_trip():
    prob = LargePProblem(nonlinearity="erf", sigma_a_bar=1.3, temperature=0.2, class_fractions=RHO)
    spec = prob.to_spec(64)
    assert spec.class_sizes == (32, 16, 16)
    assert spec.sigma_a == pytest.approx(1.3 / 8)
    back = LargePProblem.from_spec(spec)
    assert back.sigma_a_bar == pytest.approx(1.3) and back.class_fractions == pytest.approx(RHO)


# ---------------------------------------------------------------------- derivatives
@pytest.mark.parametrize("name", ["erf", "normcdf", "relu"])
@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("parameter", ["temperature", "sigma_a_bar", "sigma_w", "rho_1"])
def test_branch_jacobian_matches_finite_differences(name, n, parameter):
    prob = LargePProblem(nonlinearity=name, sigma_w=1.2, sigma_a_bar=0.9, temperature=0.3, class_fractions=RHO)
    system = branch_system(prob, n, parameter)
    residual, jacobian, pack, unpack = system
    rng = np.random.default_rng(3)
    x = pack(rng.normal(size=(3, 3)), 0.7 * rng.normal(size=(n, 3)), rng.dirichlet(np.ones(n)))
    t, A, P = unpack(x)
    assert np.allclose(pack(t, A, P), x)
    Fx, Fp = jacobian(x, system.p0)
    h = 1e-6
    num = np.array([(residual(x + h * e) - residual(x - h * e)) / (2 * h) for e in np.eye(system.size)]).T
    assert np.max(np.abs(Fx - num)) < 1e-7 * (1 + np.max(np.abs(Fx)))
    p = system.p0
    num_p = (residual(x, p + h) - residual(x, p - h)) / (2 * h)
    assert np.max(np.abs(Fp - num_p)) < 1e-7 * (1 + np.max(np.abs(Fp)))


def test_action_derivatives_and_sigma_derivatives():
    prob = LargePProblem(nonlinearity="tanh", sigma_w=1.1, sigma_a_bar=0.8, class_fractions=RHO)
    rng = np.random.default_rng(0)
    t, A = 2 * rng.normal(size=(3, 3)), rng.normal(size=(5, 3))
    S, g, H = prob.action(A, t)
    h = 1e-6
    for r in range(3):
        e = np.eye(3)[r] * h
        assert np.allclose((prob.action(A + e, t, 0) - prob.action(A - e, t, 0)) / (2 * h), g[:, r], atol=1e-7)
        assert np.allclose((prob.action(A + e, t, 1)[1] - prob.action(A - e, t, 1)[1]) / (2 * h), H[:, r], atol=1e-7)
    gs = np.array([-6.0, -0.5, 0.0, 1.5, 8.0])
    d0, d1 = prob.psi_sigma_derivatives(gs)
    hi, lo = prob.replace(sigma_w=1.1 + 1e-3).psi(gs), prob.replace(sigma_w=1.1 - 1e-3).psi(gs)
    assert np.allclose(d0, (hi[0] - lo[0]) / 2e-3, atol=3e-6)
    assert np.allclose(d1, (hi[1] - lo[1]) / 2e-3, atol=3e-6)


def test_smoothed_dual_gradient_and_hessian():
    prob = LargePProblem(nonlinearity="normcdf", temperature=0.1, class_fractions=RHO)
    t = 3 * np.eye(3) - 1 + 0.2 * np.random.default_rng(1).normal(size=(3, 3))
    pt = evaluate_smoothed_dual(prob, t, 20.0)
    h = 1e-5
    for k in range(9):
        e = np.zeros(9)
        e[k] = h
        up = evaluate_smoothed_dual(prob, t + e.reshape(3, 3), 20.0)
        dn = evaluate_smoothed_dual(prob, t - e.reshape(3, 3), 20.0)
        assert (up.value - dn.value) / (2 * h) == pytest.approx(pt.gradient.ravel()[k], abs=1e-8)
        assert np.allclose((up.gradient - dn.gradient).ravel() / (2 * h), pt.hessian[k], atol=1e-6)


# ---------------------------------------------------------------------- the pitchfork of odd φ
@pytest.mark.parametrize("sigma_w", [1.0, 0.6])
def test_erf_second_moment_arcsine_formula(sigma_w):
    z, w = np.polynomial.hermite_e.hermegauss(300)
    quad = w @ np.array([math.erf(math.sqrt(math.pi) * sigma_w * x / 2) ** 2 for x in z]) / math.sqrt(2 * math.pi)
    assert phi_second_moment("erf", sigma_w) == pytest.approx(quad, abs=1e-13)
    prob = LargePProblem(nonlinearity="erf", sigma_w=sigma_w)
    assert prob.psi(np.array([0.0]))[2][0] == pytest.approx(quad, abs=1e-12)  # ψ''(0) = Var φ


@pytest.mark.parametrize("sigma_w, sigma_a_bar", [(1.0, 1.0), (0.6, 1.4)])
def test_hessian_at_zero_vanishes_at_critical_temperature(sigma_w, sigma_a_bar):
    prob = LargePProblem(nonlinearity="erf", sigma_w=sigma_w, sigma_a_bar=sigma_a_bar, class_fractions=RHO)
    tc = critical_temperatures(prob)
    assert np.allclose(tc, sigma_a_bar * np.sqrt(np.array(RHO) * phi_second_moment("erf", sigma_w)))
    for r in range(3):
        p = prob.replace(temperature=float(tc[r]))
        _, grad, H = p.action(np.zeros((1, 3)), np.eye(3) / tc[r])
        assert np.max(np.abs(grad)) < 1e-11  # a = 0 is stationary (ψ'(0) = E φ = 0)
        assert abs(H[0, r, r]) * sigma_a_bar**2 < 1e-10  # the zero eigenvalue, exactly at T_c,r
        assert np.allclose(H[0] - np.diag(np.diag(H[0])), 0.0)
        others = ~np.isclose(tc, tc[r])
        assert np.array_equal(np.sign(np.diag(H[0])[others]), np.sign(tc[others] - tc[r]))


def test_critical_temperature_needs_odd_phi():
    with pytest.raises(SpecError, match="odd"):
        critical_temperatures(LargePProblem(nonlinearity="normcdf"))


def test_above_critical_temperature_solution_is_zero():
    prob = LargePProblem(nonlinearity="erf", class_fractions=RHO)
    tc = critical_temperatures(prob)[0]
    sol = solve_large_p(prob.replace(temperature=1.02 * tc))
    assert sol.converged and sol.kind == "global"
    assert sol.n_branches == 1 and not sol.symmetry_broken
    assert np.max(np.abs(sol.branches[0].a)) < 1e-8
    assert np.allclose(sol.t, np.eye(3) / (1.02 * tc), atol=1e-9)
    assert np.max(np.abs(sol.outputs)) < 1e-9
    assert sol.free_energy == pytest.approx(-0.5 / (1.02 * tc), abs=1e-10)


def test_below_critical_temperature_mirror_pair():
    prob = LargePProblem(nonlinearity="erf", class_fractions=RHO)
    tc = critical_temperatures(prob)
    T = 0.98 * tc[0]
    assert T > tc[1]  # only direction 0 is unstable
    sol = solve_large_p(prob.replace(temperature=T))
    assert sol.converged and sol.kind == "global", sol.message
    assert sol.n_branches == 1 and sol.branches[0].mirror and sol.symmetry_broken
    a = sol.branches[0].a
    assert abs(a[0]) > 1e-2 and np.max(np.abs(a[1:])) < 1e-8
    (ap, pp), (am, pm) = sol.expanded_branches()
    assert pp == pm == pytest.approx(0.5) and np.allclose(ap, -am)
    S = sol.problem.action(np.array([ap, am]), sol.t, order=0)
    assert S[0] == pytest.approx(S[1], abs=1e-10)
    glob = [x for x in sol.maxima.maxima if x.is_global]
    assert len(glob) == 2 and all(x.stable for x in glob)
    f = sol.outputs
    assert f[0, 0] > 0 and np.max(np.abs(f - np.diag(np.diag(f)))) < 1e-9 and np.max(np.abs(f[1:, 1:])) < 1e-9
    assert np.allclose(sol.t[1:, 1:], np.eye(2) / T, atol=1e-9)
    # supercritical pitchfork: a*² vanishes linearly at T_c (ratio of two nearby temperatures)
    a2 = [solve_large_p(prob.replace(temperature=x * tc[0])).branches[0].a[0] ** 2 for x in (0.995, 0.99)]
    assert a2[1] / a2[0] == pytest.approx(2.0, rel=0.05)
    # the symmetric a = 0 solution still exists, as a constrained one with lower dual value
    sym = symmetric_solution(prob.replace(temperature=T))
    assert sym.kind == "constrained" and "saddle" in sym.message
    assert sym.free_energy < sol.free_energy


def test_low_temperature_erf_breaks_every_direction():
    prob = LargePProblem(nonlinearity="erf", temperature=0.2, class_fractions=RHO)
    sols = solutions(prob)
    sym, glob = sols
    assert sym.kind == "constrained" and glob.kind == "global" and glob.converged
    assert glob.n_branches == 4 and all(b.mirror for b in glob.branches)  # 2³ sign codes in 4 mirror orbits
    assert np.allclose([b.occupation for b in glob.branches], 0.25, atol=1e-8)
    f = glob.outputs
    assert np.all(np.diag(f) > 0.25) and np.max(np.abs(f - np.diag(np.diag(f)))) < 1e-9
    assert np.allclose(f + 0.2 * glob.t, np.eye(3), atol=1e-9)
    # permutation symmetry of the equal classes 1 and 2
    assert glob.t[1, 1] == pytest.approx(glob.t[2, 2], abs=1e-9)
    json.dumps(glob.to_json())


def test_normcdf_codes_and_global_maxima():
    prob = LargePProblem(nonlinearity="normcdf", temperature=0.05, class_fractions=RHO)
    sol = solve_large_p(prob)
    assert sol.converged and sol.kind == "global", sol.message
    assert sol.n_branches >= 2 and not any(b.mirror for b in sol.branches)
    values = [b.value for b in sol.branches]
    assert max(values) - min(values) < 1e-9
    assert all(b.is_global and b.hessian_eigenvalues[-1] < 0 and b.occupation > 0 for b in sol.branches)
    # no local maximum of S above the branches
    check = maximise_action(prob, sol.t, n_random=64, seed=7)
    assert check.value <= max(values) + 1e-9
    assert np.allclose(sol.outputs + 0.05 * sol.t, np.eye(3), atol=1e-9)


def _group_loop(B, rel=1e-6):
    """The row-by-row grouping that maximise_action used before it was vectorised (reference)."""
    found, counts = [], []
    for i in range(len(B)):
        for j, f in enumerate(found):
            if np.linalg.norm(B[i] - B[f]) <= rel * (1.0 + np.linalg.norm(B[f])):
                counts[j] += 1
                break
        else:
            found.append(i)
            counts.append(1)
    return found, counts


def test_vectorised_grouping_of_maxima_matches_the_loop():
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((6, 3)) * np.array([[1.0], [1e-3], [10.0], [1.0], [1.0], [1e-7]])
    for _ in range(20):
        B = centres[rng.integers(0, 6, 200)] + 1e-6 * rng.standard_normal((200, 3)) * rng.choice([0.01, 0.9, 3.0],
                                                                                                 (200, 1))
        assert _group(B) == _group_loop(B)
    # chains: leaders claim only within their own radius (greedy, order-dependent), as in the loop
    chain = np.zeros((7, 2))
    chain[:, 0] = 0.9e-6 * np.arange(7)
    assert _group(chain) == _group_loop(chain) == ([0, 2, 4, 6], [2, 2, 2, 1])
    assert _group(np.zeros((0, 3))) == ([], [])
    # and maximise_action reports each maximum once with its start count
    prob = LargePProblem(nonlinearity="normcdf", temperature=0.05, class_fractions=RHO)
    res = maximise_action(prob, np.eye(3) / 0.05)
    pts = res.points()
    assert len(pts) == len({tuple(np.round(p, 5)) for p in pts}) and sum(x.starts for x in res.maxima) > len(pts)


def test_odd_phi_maxima_come_in_mirror_pairs_and_match_the_full_start_set():
    """erf below T_c: S(−a) = S(a), so every maximum has its mirror image with the same S; the search
    from one start per mirror pair finds the same set as the ascent from every start."""
    from solvers.large_p.maxima import start_points
    from solvers.mode_search import ascend, distinct

    prob = LargePProblem(nonlinearity="erf", temperature=0.05, class_fractions=RHO)
    t = np.array([[6.0, -1.0, 0.5], [-1.0, 9.0, 1.0], [0.5, 1.0, 8.0]])
    res = maximise_action(prob, t)
    pts = res.points()
    assert len(pts) >= 2 and len(pts) % 2 == 0
    for x in res.maxima:
        j = int(np.argmin(np.linalg.norm(pts + x.a, axis=1)))
        assert np.allclose(pts[j], -x.a, atol=1e-12) and res.maxima[j].value == x.value
        assert x.gradient_norm < 1e-9 and x.stable
    R = prob.start_radius(t)
    run = ascend(lambda X: prob.action(X, t), start_points(prob, t, radius=R), tol=1e-11, maxiter=300, radius=R,
                 scale=prob.sigma_a_bar**2)
    w = np.linalg.eigvalsh(run.hess)
    found, _ = distinct(run.A, run.S, run.converged & (w[:, -1] < 0))
    full = run.A[found]
    assert len(full) == len(pts)
    assert max(np.min(np.linalg.norm(full - p, axis=1)) for p in pts) < 1e-9


def test_branch_newton_follows_temperature_with_parameter_derivative():
    prob = LargePProblem(nonlinearity="erf", temperature=0.3, class_fractions=RHO)
    sol = solve_large_p(prob)
    system = branch_system(prob, sol.n_branches, "temperature")
    x = system.pack(sol.t, np.array([b.a for b in sol.branches]), [b.occupation for b in sol.branches])
    Fx, Fp = system.jacobian(x, 0.3)
    dT = 1e-3
    pred = x - np.linalg.solve(Fx, Fp) * dT  # tangent predictor
    out = newton_branches(system, pred, 0.3 + dT)
    assert out.converged and out.nit <= 3
    assert np.max(np.abs(out.x - pred)) < 1e-4


# ---------------------------------------------------------------------- linear φ
def test_linear_has_no_symmetry_breaking_and_matches_finite_p_closed_form():
    for T in (0.05, 0.3, 0.8):
        prob = LargePProblem(nonlinearity="linear", temperature=T, class_fractions=RHO)
        sol = solve_large_p(prob)
        assert sol.kind == "linear-gaussian" and sol.n_branches == 1 and not sol.symmetry_broken
        assert np.allclose(sol.branches[0].a, 0.0)
        # S is quadratic: one maximum, whatever the start
        mx = maximise_action(prob, sol.t * (1 - 1e-3), n_random=32)
        assert len(mx.maxima) == 1 and np.allclose(mx.best.a, 0.0, atol=1e-8)
        assert np.allclose(sol.outputs + T * sol.t, np.eye(3), atol=1e-12)
        # P → ∞ limit of the exact finite-P closed form of THEORY §3
        gaps = []
        for P in (10**4, 10**6):
            t_fp, obs = linear_class_closed_form(prob.to_spec(P))
            d = obs.difference(sol.observables)
            gaps.append(max(max(d.values()), float(np.max(np.abs(t_fp - sol.t)))))
        assert gaps[1] < 2e-2 and gaps[1] < 0.2 * gaps[0]
    tc = critical_temperatures(LargePProblem(nonlinearity="linear", class_fractions=RHO))
    assert np.allclose(linear_large_p(LargePProblem(nonlinearity="linear", temperature=1.01 * tc[0],
                                                    class_fractions=RHO)).outputs, 0.0)


# ---------------------------------------------------------------------- finite P → ∞
def _convergence(P_values):
    prob = LargePProblem(nonlinearity="erf", temperature=0.4, sigma_a_bar=1.0, sigma_w=1.0, class_fractions=RHO)
    sol = solve_large_p(prob)
    assert sol.converged and sol.symmetry_broken
    return sol, compare_with_finite_p(prob, P_values, sol)


def test_finite_p_approaches_large_p_branches():
    sol, rows = _convergence([64, 256])
    for r in rows:
        assert r.success, r.message
    for key in ("outputs", "readout_moment", "kernel_blocks", "t", "free_energy"):
        g64, g256 = abs(rows[0].gaps[key]), abs(rows[1].gaps[key])
        assert g256 < 0.15 and g256 < g64 / 2.5, (key, g64, g256)  # ~1/P: a factor 4 per 4× P
    for r in rows:  # the finite-P readout law splits evenly over the mirror pair ±a*
        assert np.allclose(r.masses, 0.5, atol=1e-6)
    assert rows[1].spread[0] < rows[0].spread[0]


@pytest.mark.slow
def test_finite_p_approaches_large_p_branches_p1024():
    sol, rows = _convergence([64, 256, 1024])
    g = [r.gaps["outputs"] for r in rows]
    assert g[2] < g[1] / 2.5 < g[0] / 6
    assert abs(rows[2].gaps["free_energy"]) < abs(rows[1].gaps["free_energy"]) / 2.5


# ---------------------------------------------------------------------- constrained solutions
def test_solve_branches_reports_constrained_solution():
    prob = LargePProblem(nonlinearity="erf", temperature=0.2, class_fractions=RHO)
    sol = solve_branches(prob, np.eye(3) / 0.2, np.zeros((1, 3)), [1.0])
    assert sol.converged and sol.kind == "constrained"
    assert np.allclose(sol.t, np.eye(3) / 0.2) and np.allclose(sol.outputs, 0.0)
    assert sol.extra["G_inf_at_t"] > sol.free_energy


# ---------------------------------------------------------------------- the dual minimum, checked directly
def _dual(prob, t):
    return prob.free_energy(t, maximise_action(prob, t, n_random=8).value)


@pytest.mark.parametrize("name, T", [("erf", 0.2), ("normcdf", 0.05), ("relu", 0.05)])
def test_solution_minimises_the_dual(name, T):
    """G∞ is convex: no feasible perturbation of t* may lower it (checked on random directions)."""
    prob = LargePProblem(nonlinearity=name, temperature=T, class_fractions=RHO)
    sol = solve_large_p(prob)
    assert sol.converged, sol.message
    G0 = _dual(prob, sol.t)
    assert G0 == pytest.approx(sol.free_energy, abs=1e-9)
    rng = np.random.default_rng(5)
    tried = 0
    for _ in range(25):
        d = rng.normal(size=(3, 3))
        t = sol.t + 0.02 * d / np.linalg.norm(d)
        if name == "relu":  # scale back into the domain q(t) <= 1 (q is homogeneous of degree 2)
            t = t * min(1.0, (1 - 1e-12) / math.sqrt(domain_q(prob, t)))
        tried += 1
        assert _dual(prob, t) >= G0 - 1e-10
    assert tried >= 10


# ---------------------------------------------------------------------- ReLU: condensate
@pytest.mark.parametrize("parameter", ["temperature", "sigma_a_bar", "sigma_w", "rho_2"])
def test_condensate_jacobian_matches_finite_differences(parameter):
    prob = LargePProblem(nonlinearity="relu", sigma_w=1.1, sigma_a_bar=0.9, temperature=0.2, class_fractions=RHO)
    system = condensate_system(prob, 1, 2, parameter)
    residual, jacobian, pack, unpack = system
    rng = np.random.default_rng(11)
    D = rng.normal(size=(2, 3))
    x = pack(rng.normal(size=(3, 3)), 0.5 * rng.normal(size=(1, 3)), [1.0], D / np.linalg.norm(D, axis=1)[:, None],
             [0.3, 0.7])
    assert np.allclose(pack(*unpack(x)), x)
    Fx, Fp = jacobian(x)
    h = 1e-6
    num = np.array([(residual(x + h * e) - residual(x - h * e)) / (2 * h) for e in np.eye(system.size)]).T
    assert np.max(np.abs(Fx - num)) < 1e-7 * (1 + np.max(np.abs(Fx)))
    p = system.p0
    assert np.allclose(Fp, (residual(x, p + h) - residual(x, p - h)) / (2 * h), atol=1e-7)


def test_q_derivatives_match_finite_differences():
    prob = LargePProblem(nonlinearity="relu", class_fractions=RHO)
    t = np.array([[1.4, -0.2, -0.1], [-0.3, 1.9, -0.2], [-0.3, -0.1, 2.0]])
    dirs, q = marginal_directions(t, prob.rho, prob.sigma_a_bar, prob.sigma_w, prob.phi)
    for d, qv in zip(dirs, q):
        val, g, H = q_derivatives(prob, t, d)
        assert val == pytest.approx(qv, abs=1e-12)
        h = 1e-6
        for k in range(9):
            e = np.zeros(9)
            e[k] = h
            up = q_derivatives(prob, t + e.reshape(3, 3), d)
            dn = q_derivatives(prob, t - e.reshape(3, 3), d)
            assert (up[0] - dn[0]) / (2 * h) == pytest.approx(g[k], abs=1e-7)
            assert np.allclose((up[1] - dn[1]) / (2 * h), H[k], atol=1e-6)


def test_relu_condensate_masses_of_the_guide():
    """docs/guide/large-p.md: at ρ = (½, ¼, ¼), T = 0.02, three one-class directions with masses
    0.572, 0.447, 0.447 (to their three decimals); f = y − T t."""
    sol = solve_large_p(LargePProblem(nonlinearity="relu", temperature=0.02, class_fractions=(0.5, 0.25, 0.25)))
    assert sol.converged, sol.message
    cond = sol.condensate
    masses = dict(zip((c[0] for c in cond.codes), cond.mass))
    assert sorted(masses) == [0, 1, 2]
    np.testing.assert_allclose([masses[0], masses[1], masses[2]], [0.572, 0.447, 0.447], atol=5e-4)
    assert np.allclose(sol.outputs + 0.02 * sol.t, np.eye(3), atol=1e-9)


def test_relu_low_temperature_condensate():
    prob = LargePProblem(nonlinearity="relu", temperature=0.05, class_fractions=RHO)
    sol = solve_large_p(prob)
    assert sol.converged and sol.kind == "global", sol.message
    cond = sol.condensate
    assert cond is not None and len(cond.mass) == 3 and np.all(cond.mass > 0.1)
    assert sorted(cond.codes) == [(0,), (1,), (2,)]  # one marginal direction per class, one-class codes
    assert cond.q_max == pytest.approx(1.0, abs=1e-9)
    assert np.all(cond.gap > 0)  # bulk maximum above S's asymptote: the condensate holds few neurons
    assert sol.n_branches == 1 and sol.branches[0].is_global
    assert np.allclose(sol.outputs + 0.05 * sol.t, np.eye(3), atol=1e-9)
    # with every class condensed, t_c = â_c/(σ̄_a σ_1 √ρ_c) and λ_c + T does not depend on T
    for d, code in zip(cond.directions, cond.codes):
        c = code[0]
        assert np.allclose(sol.t[c], d / np.sqrt(RHO[c]), atol=1e-8)
    warmer = solve_large_p(prob.replace(temperature=0.2))
    assert np.allclose(warmer.t, sol.t, atol=1e-8)
    order = [np.argmax(np.abs(warmer.condensate.directions @ d)) for d in cond.directions]
    assert np.allclose(warmer.condensate.mass[order] + 0.2, cond.mass + 0.05, atol=1e-8)
    json.dumps(sol.to_json())


def test_relu_condensate_shrinks_with_temperature():
    prob = LargePProblem(nonlinearity="relu", class_fractions=RHO)
    mid = solve_large_p(prob.replace(temperature=0.5))
    assert mid.converged and mid.condensate is not None and mid.condensate.codes == ((0,),)
    hot = solve_large_p(prob.replace(temperature=1.0))
    assert hot.converged and hot.condensate is None and domain_q(prob, hot.t) < 1.0


def test_relu_warm_start_on_the_domain_boundary():
    """Regression: a warm start t0 from a neighbouring solution lies on q(t) = 1, where the barrier is infinite:
    _minimise_barrier crashed with TypeError (grad None); t0 a few ulps inside, where the two computations of q
    disagree (q_j < 1 from the marginal directions, q = 1 from q_derivatives), gave μ = ε/(1 − q) = inf and
    "SVD did not converge" in the Newton step. Now t0 is first scaled inside (q is 2-homogeneous in t)."""
    prob = LargePProblem(nonlinearity="relu", temperature=0.1, class_fractions=RHO)
    cold = solve_large_p(prob)
    warm_from = solve_large_p(prob.replace(temperature=0.12))
    assert domain_q(prob, warm_from.t) == pytest.approx(1.0, abs=1e-12)  # on the boundary
    warm = solve_large_p(prob, t0=warm_from.t)
    assert warm.converged and warm.condensate is not None, warm.message
    assert np.allclose(warm.t, cold.t, atol=1e-8) and np.allclose(warm.outputs, cold.outputs, atol=1e-8)
    assert np.allclose(np.sort(warm.condensate.mass), np.sort(cold.condensate.mass), atol=1e-8)
    # t0 a few ulps inside the boundary, where q_derivatives rounds to q = 1 (μ infinite): the scalings
    # 1 − k ulp, k = 1..60, hold such starts (k = 7 and 9 on 2026-12-06, float64 and numba cache=True)
    hits = []
    for k in range(-60, 0):
        ts = cold.t * (1 + k * 2.0**-53)
        dirs, q = _directions(prob, ts)
        hits += [ts for d, qj in zip(dirs, q) if 0.5 < qj < 1.0 and q_derivatives(prob, ts, d)[0] >= 1.0
                 and abs(q_derivatives(prob, ts, d)[0] - qj) <= 1e-9]
    assert hits, "no start 1..60 ulps inside the boundary with the round-off disagreement q_j < 1 <= q"
    again = solve_large_p(prob, t0=hits[0])
    assert again.converged and np.allclose(again.outputs, cold.outputs, atol=1e-8), again.message


@pytest.mark.slow
def test_relu_condensate_matches_finite_p():
    """Large-P ReLU against the exact finite-P solver at P = 64 (THEORY §4 was checked by sampling there)."""
    prob = LargePProblem(nonlinearity="relu", temperature=0.05, class_fractions=RHO)
    sol = solve_large_p(prob)
    res = solve(prob.to_spec(64))
    fp = res.extra["condensate"]
    assert np.max(np.abs(res.t - sol.t)) < 0.03
    assert np.max(np.abs(res.outputs - sol.outputs)) < 0.01
    assert np.max(np.abs(res.readout_moment - sol.readout_moment)) < 0.03
    occupied = [(np.asarray(d), lam) for d, lam in zip(fp["directions"], fp["mass"]) if lam > 1e-6]
    assert len(occupied) == len(sol.condensate.mass)  # one occupied direction per large-P direction
    assert sum(lam for lam in fp["mass"] if lam <= 1e-6) < 1e-6  # the barrier's other cuts carry no mass
    for d, lam in occupied:
        j = int(np.argmax(sol.condensate.directions @ d))
        assert lam == pytest.approx(sol.condensate.mass[j], abs=0.05)


def test_readout_concentration_factorises_for_diagonal_field():
    """Odd φ, diagonal t: p(a) ∝ e^{P S} factorises over coordinates, so each sign octant holds 1/8."""
    prob = LargePProblem(nonlinearity="erf", temperature=0.3, class_fractions=RHO)
    sol = solve_large_p(prob)
    centres = np.array([a for a, _ in sol.expanded_branches()])
    assert len(centres) == 8 and np.allclose([p for _, p in sol.expanded_branches()], 1 / 8)
    for P in (64, 256):  # global tensor rule
        mass, _ = readout_concentration(prob, sol.t, P, centres)
        assert np.allclose(mass, 1 / 8, atol=1e-9)
    # the spread around each branch: exact 1-D quadrature (p factorises) at moderate P, and the
    # Laplace width 1/√P·(tr(−∇²S)⁻¹)^{1/2} at large P (local rule)
    x = np.linspace(0.0, 3.0, 30001)
    var = 0.0
    for c in range(3):
        A = np.zeros((len(x), 3))
        A[:, c] = x
        S = prob.action(A, sol.t, order=0)
        w = np.exp(256 * (S - S.max()))
        var += w @ (x - abs(centres[0, c])) ** 2 / w.sum()
    assert readout_concentration(prob, sol.t, 256, centres)[1][0] == pytest.approx(np.sqrt(var), rel=5e-3)
    H = sol.problem.action(centres[:1], sol.t)[2][0]
    laplace = np.sqrt(np.trace(np.linalg.inv(-H)))
    mass, spread = readout_concentration(prob, sol.t, 2**20, centres)
    assert np.allclose(mass, 1 / 8, atol=1e-6)
    assert spread[0] * 2**10 == pytest.approx(laplace, rel=0.02)
