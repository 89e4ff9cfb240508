"""The C¹ barrier with an onset (solvers.deep.kkt.barrier_weights) and the continuation of the barrier's central
path in ε and P (solvers.deep.barrier_path; issue 17)."""
import numpy as np
import pytest

from solvers.deep.barrier_path import follow
from solvers.deep.kkt import Q_MIN, barrier_weights
from solvers.deep.model import DeepModel
from solvers.deep.newton import SolveLog, solve_at
from solvers.deep.options import DeepOptions
from theory.spec import ModelSpec


def test_onset_barrier_is_c1_and_a_barrier():
    """ψ(q_0) = ψ'(q_0) = 0, μ = ε ψ'(q) (central differences of the value), μ (1 − q) → ε at q → 1, nothing
    below the onset; without an onset: the log barrier over q >= Q_MIN."""
    eps, q0 = 1e-2, 0.9
    q = np.array([0.3, 0.9 + 1e-9, 0.95, 0.999, 1 - 1e-9])
    keep, mu, _ = barrier_weights(q, eps, q0)
    assert keep.tolist() == [False, True, True, True, True]
    assert mu[0] == pytest.approx(0.0, abs=1e-9) and mu[-1] * 1e-9 == pytest.approx(eps, rel=1e-6)
    h = 1e-7
    for qj, mj in zip(q[2:4], mu[1:3]):
        d = (barrier_weights([qj + h], eps, q0)[2] - barrier_weights([qj - h], eps, q0)[2]) / (2 * h)
        assert d == pytest.approx(mj, rel=1e-6)
    assert barrier_weights([q0 + 1e-6], eps, q0)[2] == pytest.approx(0.0, abs=1e-10)
    keep, mu, value = barrier_weights(q, eps)
    assert keep.tolist() == list(q >= Q_MIN)
    assert np.allclose(mu, eps / (1 - q[q >= Q_MIN])) and value == pytest.approx(-eps * np.sum(np.log(1 - q[1:])))


def test_onset_options_are_checked():
    from theory.spec import SpecError

    with pytest.raises(SpecError, match="condensate_onset"):
        DeepOptions(condensate_onset=1.0)


def test_epsilon_path_ends_at_the_direct_solution():
    """ReLU, L = 1, classes 8,4,4, σ_a = 0.25, T = 0.05 (the domain boundary is near: margins ~2e-3): the central
    path followed in ε from 1e-5 to 1e-3 ends at the solution Newton finds directly at ε = 1e-3 from the same
    start with the same (fixed) proposals, and the margins grow with ε (the barrier pushes the
    solution inside)."""
    spec = ModelSpec(nonlinearity="relu", class_sizes=(8, 4, 4), sigma_a=0.25, temperature=0.05)
    opt = DeepOptions(integrator="gauss-hermite", condensate_epsilon=1e-5, condensate_onset=0.9)
    model = DeepModel(spec, (1.0,), opt)
    from solvers.solve import solve

    one = solve(spec)
    x0 = np.asarray(one.t, dtype=np.float64).ravel()
    props = model.initial_proposals(x0, 1.0)
    log = SolveLog()
    model.condensate.refresh(model, x0)
    start = solve_at(model, x0, props, log, "start", rounds=2, tol=1e-10, jacobians=False)
    assert start is not None

    def at(eps):
        model.condensate.epsilon = eps
        return model

    path = follow(at, 1e-5, 1e-3, start[0], start[4], log, "epsilon", ratio=4.0, adapt=False)
    assert path.reached and path.last.p == pytest.approx(1e-3)
    margins = [1 - at(p.p).condensate.refresh(model, p.x).q[0] for p in path.points]
    assert margins[-1] > margins[0]
    at(1e-3).condensate.refresh(model, start[0])
    direct = solve_at(model, start[0], start[4], log, "direct", rounds=1, tol=1e-10, jacobians=False)
    assert np.max(np.abs(direct[0] - path.last.x)) < 1e-6  # the same proposals: the same root
