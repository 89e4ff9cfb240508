"""The one damped Newton (solvers/newton.py): convergence, line search, domain hook, statuses."""
import math

import numpy as np
import pytest

from solvers.newton import Point, Stop, backtrack, damped_newton, damped_newton_minimise, lstsq_solver
from solvers.results import STATUSES


def circle(x):
    """x² + y² = 4, x = y: root (√2, √2)."""
    return np.array([x[0] ** 2 + x[1] ** 2 - 4.0, x[0] - x[1]])


def circle_jac(x):
    return np.array([[2 * x[0], 2 * x[1]], [1.0, -1.0]])


def test_quadratic_convergence_to_the_known_root():
    out = damped_newton(circle, circle_jac, [1.0, 0.5], tol=1e-13, maxiter=20)
    assert out.converged and out.status == "converged" and out.status in STATUSES
    assert np.allclose(out.x, [math.sqrt(2), math.sqrt(2)], atol=1e-13, rtol=0)
    assert out.iterations <= 7 and out.residual <= 1e-13 and out.nit == out.iterations
    assert out.residual_norm == out.residual and out.evaluations >= out.iterations + 1


def test_full_steps_equal_the_plain_newton_iteration():
    """line_search=False is x ← x − J⁻¹G exactly (the continuation corrector)."""
    x = np.array([1.0, 0.5])
    for _ in range(3):
        x = x + np.linalg.solve(circle_jac(x), -circle(x))
    out = damped_newton(circle, circle_jac, [1.0, 0.5], tol=0.0, maxiter=3, line_search=False)
    assert not out.converged and out.status == "max-iterations" and out.iterations == 3
    assert np.array_equal(out.x, x)


def test_line_search_keeps_the_iterate_in_the_domain():
    """G(x) = log x − 1 (root e) is undefined for x <= 0; from x0 = 10 the full Newton step lands at
    x = 10 − 10 (log 10 − 1) < 0; the damped step stays inside and converges."""
    def g(x):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.log(x) - 1.0

    seen = []

    def inside(x):
        seen.append(float(x[0]))
        return x[0] > 0

    out = damped_newton(g, lambda x: np.array([[1.0 / x[0]]]), [10.0], tol=1e-14, maxiter=30, in_domain=inside)
    assert out.converged and out.x[0] == pytest.approx(math.e, abs=1e-13)
    assert min(seen) < 0  # the full step was tried and rejected by the hook


def test_failures_are_reported_with_statuses():
    out = damped_newton(lambda x: np.array([x[0] ** 2 + 1.0]), lambda x: np.array([[2 * x[0]]]), [1.0],
                        tol=1e-12, maxiter=50)
    assert not out.converged and out.status in ("line-search-failed", "max-iterations")
    out = damped_newton(lambda x: np.array([np.nan]), lambda x: np.eye(1), [0.0], tol=1e-12, maxiter=5)
    assert not out.converged and out.status == "outside-domain" and out.residual == math.inf
    assert all(s in STATUSES for s in ("converged", "max-iterations", "line-search-failed", "outside-domain",
                                       "not-converged"))


def test_least_squares_step_on_an_underdetermined_direction():
    """J singular along an undetermined unknown: the minimum-norm step leaves it unchanged."""
    g = lambda x: np.array([x[0] - 1.0, 0.0 * x[1]])  # noqa: E731
    out = damped_newton(g, lambda x: np.array([[1.0, 0.0], [0.0, 0.0]]), [3.0, 0.25], tol=1e-14, maxiter=5,
                        solve=lstsq_solver(1e-13))
    assert out.converged and out.x[0] == 1.0 and out.x[1] == 0.25


def test_retry_hook_gives_a_stale_jacobian_a_second_chance():
    """G(x) = x − 2 with a stale J = −1 (a wrong-signed Broyden-like Jacobian): every damped step
    raises |G|, the line search fails; ``retry`` asks for a fresh J = 1 and Newton goes on from the same
    x (the retried iteration counts). Without the hook the failure is returned."""
    state = {"stale": True, "retries": 0}

    def jac(x):
        return np.array([[-1.0 if state["stale"] else 1.0]])

    def retry(x):
        state["retries"] += 1
        fresh = state["stale"]
        state["stale"] = False
        return fresh

    out = damped_newton(lambda x: x - 2.0, jac, [0.0], tol=1e-14, maxiter=10, retry=retry)
    assert out.converged and out.x[0] == 2.0 and state["retries"] == 1 and out.iterations == 2
    state["stale"] = True
    out = damped_newton(lambda x: x - 2.0, jac, [0.0], tol=1e-14, maxiter=10)
    assert out.status == "line-search-failed" and out.x[0] == 0.0


def test_refine_hook_goes_on_to_the_rounding_floor():
    """With tol = 1e-2 plain Newton stops as soon as max|G| <= 1e-2; ``refine`` takes further full steps
    while they halve and lower max|G| and stops at the rounding floor well before ``maxiter``; a step
    tolerance alone stops a stagnating iteration (converged only when max|G| <= tol there)."""
    root = [math.sqrt(2), math.sqrt(2)]
    plain = damped_newton(circle, circle_jac, [1.0, 0.5], tol=1e-2, maxiter=50, line_search=False)
    fine = damped_newton(circle, circle_jac, [1.0, 0.5], tol=1e-2, maxiter=50, line_search=False, refine=1e-13)
    assert plain.converged and fine.converged and fine.status == "converged"
    assert plain.residual > 1e-6 and fine.residual <= 1e-15 and fine.iterations < 15
    assert np.allclose(fine.x, root, atol=1e-15, rtol=0) and not np.allclose(plain.x, root, atol=1e-8, rtol=0)
    stuck = damped_newton(lambda x: np.array([x[0] ** 2 + 1.0]), lambda x: np.array([[1e20]]), [1.0], tol=1e-12,
                          maxiter=50, line_search=False, refine=1e-13)
    assert not stuck.converged and stuck.status == "not-converged" and stuck.iterations == 1
    with pytest.raises(ValueError):
        damped_newton(circle, circle_jac, [1.0, 0.5], tol=1e-2, maxiter=5, refine=1e-13)


# ----------------------------------------------------------------------------- the minimiser
A_SPD = np.array([[4.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 2.0]])
B_VEC = np.array([1.0, -2.0, 0.5])


def quadratic(x, base=None, k=0):
    """f = ½ xᵀAx − bᵀx, minimiser A⁻¹b."""
    return Point(0.5 * x @ A_SPD @ x - B_VEC @ x, A_SPD @ x - B_VEC, A_SPD)


def rosenbrock(x, radius=1.5):
    """Rosenbrock's function on the disk |x| < radius (None outside); minimiser (1, 1) at |x| = √2."""
    if not np.linalg.norm(x) < radius:
        return None
    f = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    g = np.array([-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2), 200 * (x[1] - x[0] ** 2)])
    H = np.array([[2 - 400 * (x[1] - 3 * x[0] ** 2), -400 * x[0]], [-400 * x[0], 200.0]])
    return Point(f, g, H)


def test_minimiser_takes_one_newton_step_on_a_convex_quadratic():
    out = damped_newton_minimise(quadratic, [3.0, -1.0, 2.0], tol=1e-12, maxiter=10)
    assert out.converged and out.status == "converged" and out.iterations == 1 and out.damping == 1.0
    assert np.allclose(out.x, np.linalg.solve(A_SPD, B_VEC), atol=1e-14, rtol=0)
    assert out.residual <= 1e-12 and out.evaluations == 2 and out.point.value == quadratic(out.x).value


def test_minimiser_with_a_domain_hook_stays_inside_the_domain():
    """Rosenbrock on the disk |x| < 1.5 from (−1, 0.8): a full Newton step leaves the disk; with the
    fraction-to-boundary cap (99% of the way) every evaluated point lies inside and (1, 1) is found.
    Without the cap the points outside are rejected (evaluate → None) and the same minimiser is found."""
    tried, cut = [], []

    def evaluate(x, base, k):
        tried.append(x.copy())
        return rosenbrock(x)

    def to_boundary(x, d):
        a, b, c = d @ d, 2 * x @ d, x @ x - 1.5**2
        alpha_max = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
        cut.append(alpha_max < 1.0)
        return min(1.0, 0.99 * alpha_max)

    out = damped_newton_minimise(evaluate, [-1.0, 0.8], tol=1e-10, maxiter=100, max_step=to_boundary)
    assert out.converged and out.status == "converged" and any(cut)
    assert all(np.linalg.norm(x) < 1.5 for x in tried) and out.evaluations == len(tried)
    assert np.allclose(out.x, [1.0, 1.0], atol=1e-10, rtol=0)
    free = damped_newton_minimise(lambda x, base, k: rosenbrock(x), [-1.0, 0.8], tol=1e-10, maxiter=100)
    assert free.converged and np.allclose(free.x, [1.0, 1.0], atol=1e-10, rtol=0)


def test_armijo_backtracking_damps_an_overshooting_newton_step():
    """f = √(1 + x²) from x = 3: the Newton step −x(1 + x²) overshoots to −27 and raises f; the first
    accepted step is damped (α < 1), and the iteration converges to 0."""
    def f(x, base, k):
        s = math.sqrt(1 + x[0] ** 2)
        return Point(s, np.array([x[0] / s]), np.array([[1 / s**3]]))

    alphas = []
    out = damped_newton_minimise(f, [3.0], tol=1e-12, maxiter=50,
                                 after_step=lambda x, p, alpha, search: alphas.append(alpha))
    assert out.converged and abs(out.x[0]) < 1e-12
    assert alphas[0] < 1.0 and alphas[-1] == 1.0


def test_minimiser_reports_its_statuses():
    """max-iterations; no descent direction (a negative-curvature start of the double well
    x⁴/4 − x²/2, where the Newton direction climbs); line-search-failed (every trial outside the domain);
    a hook's Stop; and ``retry`` going on from a new point."""
    out = damped_newton_minimise(lambda x, b, k: rosenbrock(x), [-1.0, 0.8], tol=1e-14, maxiter=2)
    assert out.status == "max-iterations" and not out.converged and out.iterations == 2
    out = damped_newton_minimise(lambda x, b, k: rosenbrock(x), [-1.2, 1.0], tol=1e-14, maxiter=2)
    assert out.status == "outside-domain" and out.iterations == 0 and out.residual == math.inf
    well = lambda x, b, k: Point(x[0] ** 4 / 4 - x[0] ** 2 / 2, x[0] ** 3 - x[0], np.array([[3 * x[0] ** 2 - 1]]))  # noqa: E731
    out = damped_newton_minimise(well, [0.1], tol=1e-12, maxiter=10)
    assert out.status == "not-converged" and out.iterations == 0 and out.x[0] == 0.1
    x0 = np.array([3.0, -1.0, 2.0])
    walled = lambda x, b, k: quadratic(x) if np.array_equal(x, x0) else None  # noqa: E731
    out = damped_newton_minimise(walled, x0, tol=1e-12, maxiter=10)
    assert out.status == "line-search-failed" and out.iterations == 1 and np.array_equal(out.x, x0)
    assert out.evaluations == 1 + 34 and out.damping < 1e-10  # α = 1, ..., 2⁻³³ tried (min_alpha = 1e-10)
    out = damped_newton_minimise(walled, x0, tol=1e-12, maxiter=10,
                                 retry=lambda s: (s.x + 0.0, quadratic(s.x)) if s.iteration == 1 else None)
    assert out.status == "line-search-failed" and out.iterations == 2
    out = damped_newton_minimise(quadratic, x0, tol=1e-12, maxiter=10,
                                 after_step=lambda x, p, a, s: Stop(False, "stopped", "one step only"))
    assert out.status == "stopped" and out.message == "one step only" and out.iterations == 1
    assert all(s in STATUSES for s in ("converged", "max-iterations", "not-converged", "line-search-failed",
                                       "stopped", "outside-domain"))


def test_backtrack_stops_at_its_limits():
    """α = 1, 1/2, ...: at most max_trials values, each > min_alpha; the α after the last one is returned."""
    p, alpha, k = backtrack(lambda a, k: a, lambda p, a: a < 0.1)
    assert p == alpha == 0.0625 and k == 5
    p, alpha, k = backtrack(lambda a, k: a, lambda p, a: False, max_trials=3)
    assert p is None and alpha == 0.125 and k == 3
    p, alpha, k = backtrack(lambda a, k: None, lambda p, a: True, min_alpha=0.3)
    assert p is None and alpha == 0.25 and k == 2
