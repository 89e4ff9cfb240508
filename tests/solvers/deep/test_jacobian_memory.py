"""The Jacobian carried across the Newton solves of a path (solvers.deep.newton.JacobianMemory) and the continuation
in P that uses it (solvers.deep.complementarity.follow_sizes: the secant on the multipliers, the step control, the
refresh back-off; issue 17, the three-layer route)."""
import numpy as np
import pytest

from solvers.deep.barrier_path import PathPoint
from solvers.deep.complementarity import secant_predictor
from solvers.deep.newton import JacobianMemory, newton
from solvers.deep.size_steps import RefreshBackoff, SizeSteps

N = 10
A = 1.5 * np.eye(N) + 0.3 * (np.eye(N, k=1) + np.eye(N, k=-1))  # positive definite (eigenvalues 0.9–2.1)


def _root(s):
    """The exact root x*(s) of the toy path below."""
    k = np.arange(N)
    return np.sin(s * (1.0 + k / 10.0)) + 0.1 * k * s * s


class _ToyPath:
    """F(x; s) = G(x) − G(x*(s)), G(x) = A x + 0.3 x³ (elementwise cube; A positive definite, so G is a
    monotone bijection): one root, x*(s), known in closed form. ``safe_eval`` counts its calls."""

    def __init__(self, s):
        self.s, self.calls = s, 0

    @staticmethod
    def G(x):
        return A @ x + 0.3 * x**3

    def safe_eval(self, x, props):
        self.calls += 1
        r = self.G(np.asarray(x)) - self.G(_root(self.s))
        return {"residual": r, "obs": r.copy()}


def _follow(memory):
    x, calls, roots = _root(0.0), 0, []
    for s in np.linspace(0.05, 1.0, 20):
        toy = _ToyPath(s)
        x, _, _, _, ok, _ = newton(toy, x, None, tol=1e-12, maxiter=40, jacobians=False, memory=memory)
        assert ok
        calls += toy.calls
        roots.append(np.max(np.abs(x - _root(s))))
    return max(roots), calls


def test_carried_jacobian_reaches_the_exact_roots_of_a_path_with_fewer_evaluations():
    """Along 20 steps of a smooth path the carried Jacobian (Broyden updates across solves, a fresh one only on a
    poor contraction) finds the closed-form roots as the fresh-Jacobian Newton does, with at most two fresh
    Jacobians and under 0.65 of the evaluations (an effort guard, as scipy's tests keep; a fresh J costs 11 here)."""
    err_fresh, calls_fresh = _follow(None)
    memory = JacobianMemory(0.95)
    err_memory, calls_memory = _follow(memory)
    assert err_fresh < 1e-10 and err_memory < 1e-10
    assert memory.fresh <= 2 and memory.reused == 19
    assert calls_memory < 0.65 * calls_fresh  # measured 217 against 368


def test_projected_memory_keeps_the_jacobian_in_the_full_coordinates():
    """A subspace's J_z kept as Q J_z Qᵀ is recalled as J_z under the same key (QᵀQ = I), by another orthonormal
    basis of the same subspace as that basis' J, and not under another key or size."""
    rng = np.random.default_rng(0)
    Q = np.linalg.qr(rng.normal(size=(6, 3)))[0]
    Jz = rng.normal(size=(3, 3))
    memory = JacobianMemory()
    memory.projected(Q, "w").keep(Jz)
    assert np.allclose(memory.projected(Q, "w").recall(3), Jz, atol=1e-14)
    R = np.linalg.qr(rng.normal(size=(3, 3)))[0]  # the same subspace, rotated basis Q R
    assert np.allclose(memory.projected(Q @ R, "w").recall(3), R.T @ Jz @ R, atol=1e-14)
    assert memory.projected(Q, "other").recall(3) is None and memory.recall(3, "w") is None
    with pytest.raises(ValueError, match="contraction"):
        JacobianMemory(1.0)
    with pytest.raises(ValueError, match="min_damping"):
        JacobianMemory(0.9, 0.0)


class _Trial:
    n_base = 2

    def safe_eval(self, x, props):
        return {}


def test_secant_predictor_extrapolates_the_multipliers_in_log_p():
    """Points linear in log P: the secant is exact on the base unknowns and, with ``multipliers``, on the
    multipliers too, clipped at 0; without (or with a changed multiplier list) the multipliers are held."""
    def x_at(P):
        lp = np.log(P)
        return np.array([1.0 + 2.0 * lp, -lp, 0.5 + lp, 0.3 - 0.1 * lp])

    points = [PathPoint(10.0, x_at(10.0), None, 0), PathPoint(11.0, x_at(11.0), None, 0)]
    P = 12.5
    held = secant_predictor(_Trial(), points, P)
    assert np.allclose(held[:2], x_at(P)[:2]) and np.allclose(held[2:], x_at(11.0)[2:])
    moved = secant_predictor(_Trial(), points, P, multipliers=True)
    assert np.allclose(moved, x_at(P))
    far = secant_predictor(_Trial(), points, 1e3, multipliers=True)
    assert far[3] == 0.0 and far[2] == pytest.approx(x_at(1e3)[2])
    shorter = [PathPoint(10.0, x_at(10.0)[:3], None, 0), points[1]]
    assert np.allclose(secant_predictor(_Trial(), shorter, P, multipliers=True)[2:], x_at(11.0)[2:])


class _Log:
    iterations = 0


def _grown(memory, iterations, fresh):
    """The ratio after one solved step of ``iterations`` Newton iterations from 1.02 (cap 1.1) during which the
    memory computed ``fresh`` fresh Jacobians."""
    steps, log = SizeSteps(1.1, 1.02, memory=memory), _Log()
    steps.begin(log)
    log.iterations += iterations
    if memory is not None:
        memory.fresh += fresh
    steps.converged()
    if memory is not None:
        memory.fresh += 1  # a refresh after the solve does not count
    steps.solved(log)
    return steps.step


def test_step_control_and_refresh_backoff():
    """Without a memory the step grows ×1.2 after at most 5 iterations (the route as before); with one its log
    grows ×1.25 after a step without a fresh Jacobian, up to the cap; a failed step halves the log and restores the
    memory's J. A failed refresh is retried after 1, 2, 4 steps, every step once one succeeds; without the
    back-off every step."""
    assert _grown(None, 5, 0) == pytest.approx(1.1) and _grown(None, 6, 0) == 1.02
    assert _grown(JacobianMemory(), 12, 0) == pytest.approx(1.02**1.25) and _grown(JacobianMemory(), 12, 1) == 1.02
    memory = JacobianMemory()
    memory.keep(np.eye(2), "k")
    steps, log = SizeSteps(1.1, 1.08, halvings=1, memory=memory), _Log()
    steps.begin(log)
    memory.keep(2 * np.eye(2), "k")
    assert not steps.failed() and steps.step == pytest.approx(np.sqrt(1.08)) and np.allclose(memory.J, np.eye(2))
    assert steps.failed()
    backoff, schedule = RefreshBackoff(True), []
    for step in range(12):
        if backoff.due():
            schedule.append(step)
            backoff.record(step >= 8)
    assert schedule == [0, 2, 5, 10, 11]
    always = RefreshBackoff(False)
    assert all(always.due() for _ in range(5))
