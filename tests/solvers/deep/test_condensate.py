"""The readout domain of the last hidden layer of deep ReLU networks and its condensate directions
(theory.deep_condensate, solvers.deep.condensate; issue 17): the one-layer limit, the random-search bound,
Danskin's gradients by finite differences, and (slow) the paper regime, where the deep solution runs into the
boundary along one-class directions."""
import math

import numpy as np
import pytest

from solvers.deep.condensate import domain_note, readout_domain, with_needles
from solvers.deep.model import DeepModel
from solvers.deep.options import DeepOptions
from theory.deep_condensate import condensate_directions, domain_gradients
from theory.deep_tilted import growth_rate
from theory.domain import marginal_directions
from theory.nonlinearities import get_nonlinearity
from theory.spec import ModelSpec

P = np.array([4.0, 2.0, 2.0])


def _random_layer(seed):
    rng = np.random.default_rng(seed)
    t = 1.5 * np.eye(3) + 0.4 * rng.standard_normal((3, 3))
    A = rng.standard_normal((3, 3))
    R = np.linalg.cholesky(0.2 * A @ A.T + 0.3)
    return t, R, np.array([0.4, 0.5, 0.3])


def test_one_layer_limit_equals_the_one_layer_domain():
    """ξ = 0, s = σ_1: q and the maximisers are those of theory.domain (THEORY §3)."""
    t = np.array([[1.2, -0.3, -0.3], [-0.5, 1.5, -0.2], [-0.4, -0.3, 1.4]])
    dom = condensate_directions(t, 0.3, np.zeros((3, 3)), np.ones(3), 1.0, P)
    dirs, q = marginal_directions(t, P, 0.3, 1.0, get_nonlinearity("relu"))
    assert np.allclose(dom.q, q, rtol=0, atol=1e-12)
    assert np.allclose(dom.readout, dirs, rtol=0, atol=1e-10)
    assert np.allclose(dom.xi, 0.0)
    assert dom.code_strings() == ["100", "010", "001"]


@pytest.mark.parametrize("seed", range(4))
def test_domain_is_at_least_the_random_search_bound(seed):
    """growth_rate (theory.deep_tilted) is a lower bound from random directions; the polished maximiser
    reaches it and exceeds it by at most its search error."""
    t, R, d = _random_layer(seed)
    dom = condensate_directions(t, 0.35, R, d, 1.0, P)
    g = 2.0 * growth_rate("relu", P, 0.35 * t, np.sqrt(d), np.zeros(3), R, n_random=4096)
    assert dom.q[0] >= g - 1e-12
    assert dom.q[0] <= g * (1 + 1e-4)


@pytest.mark.parametrize("seed", range(3))
def test_domain_gradients_by_finite_differences(seed):
    t, R, d = _random_layer(seed)
    args = (0.35, R, d, 1.0, P)
    dom = condensate_directions(t, *args)
    gt, gR, gd = domain_gradients(dom.directions[0], t, *args)

    def q(tt, RR, dd):
        return condensate_directions(tt, 0.35, RR, dd, 1.0, P).q[0]

    h = 1e-6
    for (i, j) in [(0, 0), (1, 2), (2, 1)]:
        e = np.zeros((3, 3))
        e[i, j] = h
        assert (q(t + e, R, d) - q(t - e, R, d)) / (2 * h) == pytest.approx(gt[i, j], abs=1e-5)
        if j <= i:
            assert (q(t, R + e, d) - q(t, R - e, d)) / (2 * h) == pytest.approx(gR[i, j], abs=1e-5)
    for c in range(3):
        e = np.zeros(3)
        e[c] = h
        assert (q(t, R, d + e) - q(t, R, d - e)) / (2 * h) == pytest.approx(gd[c], abs=1e-5)


#: the last point the homotopy in P solved for ReLU, L = 2, classes 32,16,16 scaled to P = 8.033,
#: σ_a² P = 1, T = 0.05 (diagnosis of 2026-12-06, docs/devlog.md): x = (t, tril R_1, log δ_1)
X_P8 = [0.7320132825658116, -0.19128033262596025, -0.1412972944138805, -0.33429237546233037, 1.132854697945568,
        -0.31082687733214315, -0.32320463374981956, -0.2607624198081002, 1.1496664552616702, 0.9030075162604364,
        0.3304117367800722, 1.0505478475750623, 0.3605805137679379, 0.23686221510582334, 1.0432176453291306,
        -0.7583860499384933, -0.8564793782431096, -0.8162223839919227]


def test_homotopy_point_is_at_the_boundary_along_one_class_directions():
    sizes = np.array([4.016740602726132, 2.008370301363066, 2.008370301363066])
    spec = ModelSpec(nonlinearity="relu", class_sizes=(32, 16, 16), sigma_a=1 / math.sqrt(np.sum(sizes)),
                     temperature=0.05)
    model = DeepModel(spec, (1.0, 1.0), DeepOptions(), sizes=sizes)
    dom = readout_domain(model, np.array(X_P8))
    assert dom.margin < 0.005
    assert sorted(dom.code_strings()[:2]) == ["001", "100"]
    assert [q for q, c in zip(dom.q, dom.code_strings()) if c == "010"][0] > 0.97
    note = domain_note((model, np.array(X_P8)))
    assert "condensate" in note and "001, 100" in note


@pytest.mark.slow
def test_paper_regime_relu_two_layers_fails_honestly_at_the_condensate():
    """The deep ReLU solve at L = 2, classes 32,16,16, σ_a = 0.125, T = 0.05 without the KKT route
    (``DeepOptions(kkt_route=False)``; the route is tested in test_kkt_route.py): no converged solution and the
    message says why: the homotopy in P reaches the readout domain boundary along one-class directions (a
    condensate)."""
    from solvers.deep.nonlinear import deep_nonlinear_json

    spec = ModelSpec(nonlinearity="relu", class_sizes=(32, 16, 16), sigma_a=0.125, temperature=0.05)
    res = deep_nonlinear_json(spec, 2, options=DeepOptions(kkt_route=False))
    assert res["converged"] is False
    msg = res["message"]
    assert "readout domain boundary" in msg and "condensate" in msg
    codes = msg.split("directions with codes ")[1].split(":")[0].split(", ")
    assert {"100", "001"} <= set(codes)


@pytest.mark.slow
def test_l1_limit_reproduces_the_one_layer_condensate_directions():
    """The one-layer solver's condensate in the paper regime (directions 100, 010, 001 at margins ~1e-8) is
    the readout domain of the deep machinery at L = 1 (K_0 = I) at the same field t."""
    from solvers.solve import solve

    spec = ModelSpec(nonlinearity="relu", class_sizes=(32, 16, 16), sigma_a=0.125, temperature=0.05)
    res = solve(spec)
    assert res.converged
    cond = res.extra["condensate"]
    dom = readout_domain(DeepModel(spec, (1.0,), DeepOptions()), np.asarray(res.t).ravel())
    k = len(cond["directions"])
    assert np.allclose(1.0 - dom.q[:k], sorted(cond["margins"]), rtol=0, atol=1e-10)
    for d in cond["directions"]:
        assert min(np.linalg.norm(dom.readout[:k] - np.asarray(d), axis=1)) < 1e-8
    assert sorted(dom.code_strings()[:k]) == ["001", "010", "100"]


#: the one-layer solver's field and outputs for ReLU, classes 8,4,4, σ_a = 0.25, T = 0.05 (interior, margins
#: 1.6e-3 and 4.1e-3: needles along 010, 001, 100 carry about 30% of f; solvers.solve.solve, error 3e-8)
T_844 = [[1.3865242390357664, -0.18632868555638316, -0.18632868555739715],
         [-0.3726573711028382, 1.947085997703013, -0.25203855542011383],
         [-0.37265737110708397, -0.252038555443843, 1.947085997699924]]
F_844 = [[0.9306737890953746, 0.009316434226020702, 0.009316434227721533],
         [0.018632865906404388, 0.9026457144752229, 0.012601926158652533],
         [0.018632865872939938, 0.012601926125267605, 0.9026457146458653]]


def test_needle_proposal_integrates_the_one_layer_needles():
    """Through the deep machinery at L = 1 (Sobol' rule), the moment-matched Gaussian misses the needles'
    share of f by far more than its replicate error; with the needle components of with_needles the
    estimate agrees with the one-layer solver within 3 replicate standard errors (and 0.02)."""
    from theory.deep_layer import layer_integral

    spec = ModelSpec(nonlinearity="relu", class_sizes=(8, 4, 4), sigma_a=0.25, temperature=0.05)
    model = DeepModel(spec, (1.0,), DeepOptions(integrator="qmc"))
    t = np.array(T_844)
    props = model.initial_proposals(t.ravel(), 1.5)
    needled = with_needles(model, t.ravel(), props)
    assert needled is not props and needled[0].size == 4  # defensive + 3 needles

    def estimate(p):
        rule = model.rules[0]
        reps = np.array([layer_integral(model.oned, model.sizes, 1.0, rule.group(g), p, t=t, sigma_a=0.25).outputs
                         for g in range(rule.groups)])
        full = layer_integral(model.oned, model.sizes, 1.0, rule, p, t=t, sigma_a=0.25).outputs
        return np.abs(full - np.array(F_844)).max(), reps.std(axis=0).max() / np.sqrt(rule.groups)

    err_g, se_g = estimate(props[0])
    err_n, se_n = estimate(needled[0])
    assert err_g > 0.1 and err_g > 3 * se_g
    assert err_n < 0.02 and err_n < 3 * se_n + 1e-3
