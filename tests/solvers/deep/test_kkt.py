"""The KKT terms of the deep ReLU condensate in the last hidden layer (solvers.deep.kkt; issue 17): the L = 1
limit equals the one-layer condensate, the conjugate-kernel term is the derivative of the barrier in the
class-block coordinates of tr K̃ K (finite differences), and without an active constraint the equations are the
deep solver's own."""
import numpy as np
import pytest

from solvers.deep.kkt import Barrier, Q_MIN
from solvers.deep.model import DeepModel
from solvers.deep.options import DeepOptions
from solvers.finite_p.dual import DualObjective
from solvers.finite_p.problem import ClassProblem
from solvers.options import SolverOptions
from theory.deep_blocks import Proposal, block_trace
from theory.deep_condensate import condensate_directions, kernel_gradient, track_directions
from theory.spec import ModelSpec

PAPER = ModelSpec(nonlinearity="relu", class_sizes=(32, 16, 16), sigma_a=0.125, temperature=0.05)

#: seed 0 in the default suite, the other random fields in the slow suite (keeps the default suite under 5 min)
FD_SEEDS = [0] + [pytest.param(s, marks=pytest.mark.slow) for s in (1, 2)]


def _near_boundary(prob, margin):
    t = 1.9 * np.eye(3) - 0.35 * (1 - np.eye(3)) + 0.05 * np.arange(9).reshape(3, 3) / 9
    _, q = prob.marginal(t)
    return t / np.sqrt(q[0] / (1.0 - margin))


@pytest.mark.parametrize("margin", [1e-3, 1e-6])
def test_one_layer_limit_equals_the_one_layer_condensate(margin):
    """At L = 1 (K_0 = I) the barrier's directions, multipliers, masses, codes and shares of f, U and the kernel
    are those of the one-layer solver's condensate (solvers.finite_p.dual.Condensate) at the same ε."""
    prob = ClassProblem.from_spec(PAPER)
    t = _near_boundary(prob, margin)
    dual = DualObjective(prob, SolverOptions())
    dual.epsilon = 1e-4
    one = dual._condensate(t)
    deep = Barrier(1e-4).terms(DeepModel(PAPER, (1.0,), DeepOptions()), t, [])
    assert deep.codes == one.codes
    assert np.allclose(deep.readout, one.directions, rtol=0, atol=1e-10)
    assert np.allclose(deep.margins, one.margins, rtol=1e-8, atol=0)
    assert np.allclose(deep.mass, one.mass, rtol=1e-8, atol=0)
    for a, b in [(deep.outputs, one.outputs), (deep.readout_moment, one.readout_moment), (deep.kernel, one.kernel)]:
        assert np.allclose(a, b, rtol=1e-8, atol=1e-14 * np.max(np.abs(b)))
    assert deep.kt is None and deep.dt is None


def _hidden_point(seed, target_q, steps=32):
    rng = np.random.default_rng(seed)
    P = np.array([4.0, 2.0, 3.0])
    t = 1.5 * np.eye(3) + 0.4 * rng.standard_normal((3, 3))
    A = rng.standard_normal((3, 3))
    k = 0.2 * A @ A.T + 0.3
    d = np.array([0.4, 0.5, 0.3])
    R = np.linalg.cholesky(k)
    lo, hi = 0.0, 4.0  # q grows monotonically with the scale of t: bisect for q = target_q
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if condensate_directions(mid * t, 0.35, R, d, 1.0, P).q[0] < target_q else (lo, mid)
    return lo * t, k, d, P


@pytest.mark.parametrize("seed", FD_SEEDS)
def test_kernel_gradient_by_finite_differences(seed):
    """∂q/∂k (the input kernel itself, through its Cholesky factor) and ∂q/∂δ against central differences."""
    t, k, d, P = _hidden_point(seed, 0.8, steps=16)

    def q(kk, dd):
        return condensate_directions(t, 0.35, np.linalg.cholesky(kk), dd, 1.0, P).q[0]

    dom = condensate_directions(t, 0.35, np.linalg.cholesky(k), d, 1.0, P)
    S, gd = kernel_gradient(dom.directions[0], t, 0.35, np.linalg.cholesky(k), d, 1.0, P)
    h = 1e-6
    for i, j in [(0, 0), (0, 1), (1, 2), (2, 2)]:
        e = np.zeros((3, 3))
        e[i, j] = e[j, i] = h
        assert (q(k + e, d) - q(k - e, d)) / (2 * h) == pytest.approx(S[i, j] * (1 if i == j else 2), abs=1e-6)
    for c in range(3):
        e = np.zeros(3)
        e[c] = h
        assert (q(k, d + e) - q(k, d - e)) / (2 * h) == pytest.approx(gd[c], abs=1e-6)


@pytest.mark.parametrize("seed", FD_SEEDS)
def test_conjugate_kernel_is_the_barrier_derivative(seed):
    """K̃_{L-1} += 2 μ ∂q/∂K_{L-1}: in class-block coordinates ½ ∂ tr(K̃ K)/∂(k_cd, δ_c) = μ ∂q/∂(k_cd, δ_c),
    exactly for δ and c ≠ d, and for k_cc up to O(μ (1 − q)) (solvers.deep.kkt docstring)."""
    margin = 1e-7
    t, k, d, P = _hidden_point(seed, 1.0 - margin)
    spec = ModelSpec(nonlinearity="relu", class_sizes=(4, 2, 3), sigma_a=0.35, temperature=0.05)
    model = DeepModel(spec, (1.0, 1.0), DeepOptions())
    barrier = Barrier(1e-6)
    R = np.linalg.cholesky(k)
    c = barrier.terms(model, t, [(R, d)])
    mu = c.multipliers

    def penalty(kk, dd):  # μ Σ_j q_j at fixed μ, each maximiser followed (track_directions)
        return float(mu @ track_directions(c.directions, t, 0.35, np.linalg.cholesky(kk), dd, 1.0, P).q[:len(mu)])

    def half_trace(kk, dd):
        return 0.5 * block_trace(c.kt, c.dt, kk, dd, P)

    h = 1e-6
    for i, j in [(0, 1), (1, 2), (0, 0), (2, 2)]:
        e = np.zeros((3, 3))
        e[i, j] = e[j, i] = h
        fd = (penalty(k + e, d) - penalty(k - e, d)) / (2 * h)
        tr = (half_trace(k + e, d) - half_trace(k - e, d)) / (2 * h)
        assert tr == pytest.approx(fd, rel=1e-5 if i != j else 1e-4, abs=1e-6 * np.max(mu))
    for cc in range(3):
        e = np.zeros(3)
        e[cc] = h
        fd = (penalty(k, d + e) - penalty(k, d - e)) / (2 * h)
        tr = (half_trace(k, d + e) - half_trace(k, d - e)) / (2 * h)
        assert tr == pytest.approx(fd, rel=1e-5, abs=1e-6 * np.max(mu))


def test_no_active_constraint_leaves_the_equations_unchanged():
    """Where every maximiser has q < Q_MIN the barrier adds nothing: the evaluation is bit-identical."""
    spec = ModelSpec(nonlinearity="relu", class_sizes=(4, 2, 2), sigma_a=0.5, temperature=0.5)
    model = DeepModel(spec, (1.0, 1.0), DeepOptions(integrator="gauss-hermite"))
    x = model.pack(0.3 * np.eye(3), [(0.3 * np.eye(3) + 0.2, np.full(3, 0.3))])
    props = [Proposal.standard(dd) for dd in model.dims]
    plain = model.evaluate(x, props)
    dom = Barrier(1e-3).refresh(model, x)
    assert dom.q[0] < Q_MIN
    model.condensate = Barrier(1e-3)
    with_barrier = model.evaluate(x, props)
    assert np.array_equal(plain["residual"], with_barrier["residual"])
    assert np.array_equal(plain["obs"], with_barrier["obs"]) and plain["action"] == with_barrier["action"]


@pytest.mark.slow
def test_one_layer_limit_of_the_deep_condensate_solve():
    """L = 1 in the paper's regime (classes 32,16,16, σ_a = 0.125, T = 0.05): the deep solver with the condensate
    barrier (ε = 1e-2, Sobol' rules with needle components) converges to the one-layer solver's condensate
    (ε = 1e-8, needle slice rules): the same one-class directions, masses and f within the barrier's bias
    (~ε/μ relative, measured 1e-4 … 5e-4; docs/devlog.md) plus both integration errors."""
    from solvers.deep.nonlinear import solve_deep_nonlinear
    from solvers.solve import solve

    one = solve(PAPER)
    assert one.converged
    ref = one.extra["condensate"]
    deep = solve_deep_nonlinear(PAPER, 1, options=DeepOptions(integrator="qmc", condensate_epsilon=1e-2))
    assert deep.converged and deep.error_estimate < 1e-3
    cond = deep.condensate
    top = [i for i, c in enumerate(cond["codes"]) if c.count("1") == 1]
    assert sorted(cond["codes"][i] for i in top) == ["001", "010", "100"]
    for i in top:
        j = int(np.argmax([np.dot(cond["readout_directions"][i], d) for d in ref["directions"]]))
        assert np.dot(cond["readout_directions"][i], ref["directions"][j]) > 1 - 1e-5
        assert cond["mass"][i] == pytest.approx(ref["mass"][j], abs=2e-3)
        assert cond["margins"][i] < 2e-3
    assert np.max(np.abs(deep.outputs - np.asarray(one.observables.outputs))) < 1e-3


def test_the_barrier_is_a_second_attempt_only():
    """condensate_epsilon None: the plain equations first, returned unchanged where they converge (ReLU at T = 0.5,
    classes 4,2,2 among them) and for φ other than ReLU; the barrier (ε = EPSILON) only when they do not converge,
    started from their solution; 0 or > 0 forces one attempt."""
    from dataclasses import dataclass

    from solvers.deep.kkt import EPSILON, solve_with_condensate

    calls = []

    def solve(opt, start):
        calls.append((opt.condensate_epsilon, start))
        return plain if opt.condensate_epsilon == 0.0 else barrier

    @dataclass(frozen=True)
    class Sol:
        converged: bool
        found: bool
        error_estimate: float
        message: str = "m"
        iterations: int = 1
        time_seconds: float = 1.0
        log: tuple = ()

    relu = ModelSpec(nonlinearity="relu", class_sizes=(4, 2, 2), sigma_a=0.5, temperature=0.5)
    plain, barrier = Sol(True, True, 1e-3), Sol(True, True, 1e-4)
    assert solve_with_condensate(solve, relu, DeepOptions(condensate_epsilon=None)) is plain and calls == [(0.0, None)]
    calls.clear()
    normcdf = ModelSpec(nonlinearity="normcdf", class_sizes=(4, 2, 2), sigma_a=0.5, temperature=0.5)
    assert solve_with_condensate(solve, normcdf, DeepOptions(condensate_epsilon=None)) is barrier  # one call, options as given
    assert calls == [(None, None)]
    calls.clear()
    plain = Sol(False, True, np.inf)
    out = solve_with_condensate(solve, relu, DeepOptions(condensate_epsilon=None))
    assert calls == [(0.0, None), (EPSILON, plain)] and out.error_estimate == barrier.error_estimate
    calls.clear()
    assert solve_with_condensate(solve, relu, DeepOptions(condensate_epsilon=0.0)) is plain
    assert calls == [(0.0, None)]


@pytest.mark.parametrize("seed", range(2))
def test_first_layer_terms_are_the_barrier_derivative(seed):
    """Layer 1's barrier (solvers.deep.kkt.first_layer_terms): ½ ∂ tr(K̃ ΔK)/∂(k̃_cd, δ̃_c) = μ ∂q_1/∂(k̃_cd, δ̃_c)
    by central differences of q_1 (the one-layer domain of the tilt, theory.domain), exactly for δ̃ and c ≠ d."""
    from solvers.deep.kkt import first_layer_condensate
    from theory.deep_fields import tilt_factor
    from theory.domain import marginal_directions
    from theory.nonlinearities import get_nonlinearity

    rng = np.random.default_rng(seed)
    P, sigma = np.array([4.0, 2.0, 3.0]), 1.0
    A = rng.standard_normal((3, 3))
    kt0, dt = 0.05 * A @ A.T + 0.03 * np.eye(3), np.array([-0.1, 0.05, -0.2])

    def q1(kt, d):
        B, _ = tilt_factor(3, kt=kt, dt=d)
        return marginal_directions(B / np.sqrt(1.0 - d * sigma**2)[:, None], P, 1.0, sigma,
                                   get_nonlinearity("relu"))

    lo, hi = 0.0, 50.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if q1(mid * kt0, dt)[1][0] < 0.9 else (lo, mid)
    kt = lo * kt0
    dirs, q = q1(kt, dt)
    eps = 1e-3
    dk, dd, _ = first_layer_condensate(kt, dt, sigma, P, eps, dirs[:1], q[:1])
    mu = eps / (1.0 - q[0])
    h = 1e-6
    for i, j in [(0, 1), (1, 2), (0, 2)]:
        e = np.zeros((3, 3))
        e[i, j] = e[j, i] = h
        fd = mu * (q1(kt + e, dt)[1][0] - q1(kt - e, dt)[1][0]) / (2 * h)
        tr = 0.5 * (block_trace(kt + e, dt, dk, dd, P) - block_trace(kt - e, dt, dk, dd, P)) / (2 * h)
        assert tr == pytest.approx(fd, rel=1e-5, abs=1e-9)
    for c in range(3):
        e = np.zeros(3)
        e[c] = h
        fd = mu * (q1(kt, dt + e)[1][0] - q1(kt, dt - e)[1][0]) / (2 * h)
        tr = 0.5 * (block_trace(kt, dt + e, dk, dd, P) - block_trace(kt, dt - e, dk, dd, P)) / (2 * h)
        assert tr == pytest.approx(fd, rel=1e-5, abs=1e-9)
