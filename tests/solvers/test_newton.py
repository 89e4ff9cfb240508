"""The one damped Newton (solvers/newton.py): convergence, line search, domain hook, statuses."""
import math

import numpy as np
import pytest

from solvers.newton import damped_newton, lstsq_solver
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
