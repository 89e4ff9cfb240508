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


@pytest.mark.slow
def test_central_path_passes_the_plain_homotopy_wall():
    """ReLU, L = 2, the paper's scaling σ_a² P = 1, T = 0.05: the plain homotopy in P stops at P ≈ 16.6 (layer 1
    at its own domain boundary under the last layer's tilt). From the plain 8,4,4 saddle (P = 16), the central path
    of both barriers (onset 0.9) followed in ε up to 1e-2 and then in P at that ε passes that wall (P = 20 here;
    measured: up to 24.7, docs/devlog.md): the last layer's barrier directions are the one-class codes
    100/010/001, with masses that grow along P, and both domains stay inside (q < 1)."""
    from dataclasses import replace
    import math

    from solvers.deep.condensate import first_layer_directions, readout_domain
    from solvers.deep.nonlinear import solve_deep_nonlinear

    spec = ModelSpec(nonlinearity="relu", class_sizes=(8, 4, 4), sigma_a=0.25, temperature=0.05)
    plain = solve_deep_nonlinear(spec, 2, options=DeepOptions(search=False))
    assert plain.found
    opt = DeepOptions(search=False, condensate_epsilon=1e-5, condensate_onset=0.9)
    model = DeepModel(spec, plain.sigmas, opt)
    log = SolveLog()
    model.condensate.refresh(model, plain.x)
    start = solve_at(model, plain.x, plain.proposals, log, "ε = 1e-5", rounds=2, tol=1e-8, maxiter=25,
                     jacobians=False)

    def at_eps(eps):
        model.condensate.epsilon = eps
        return model

    up = follow(at_eps, 1e-5, 1e-2, start[0], start[4], log, "ε", ratio=3.0)
    assert up.reached
    paper = ModelSpec(nonlinearity="relu", class_sizes=(32, 16, 16), sigma_a=0.125, temperature=0.05)
    optp = replace(opt, condensate_epsilon=1e-2)

    def at_p(P):
        sizes = np.array([2.0, 1.0, 1.0]) * P / 4.0
        return DeepModel(paper.replace(sigma_a=paper.sigma_a * math.sqrt(64.0 / P)), plain.sigmas, optp, sizes=sizes)

    path = follow(at_p, 16.0, 20.0, up.last.x, up.last.props, log, "P", ratio=1.05)
    assert path.reached
    masses = []
    for pt in (path.points[0], path.last):
        m = at_p(pt.p)
        ev = m.safe_eval(pt.x, pt.props)
        assert ev is not None
        dom = readout_domain(m, pt.x)
        assert dom.q[0] < 1 and first_layer_directions(m, ev)[1][0] < 1
        t, ker = m.unpack(pt.x)
        c = m.condensate.terms(m, t, ker)
        assert sorted(c.to_json()["codes"][:3]) == ["001", "010", "100"]
        masses.append(c.mass[:3])
    assert np.all(masses[1] > masses[0])
