"""The caches of the deep class-block evaluations (theory.deep_tilted.PhiCache, theory.deep_layer.LayerCache):
cached and uncached calls give bitwise the same numbers, and a cache recomputes only what changed."""
import numpy as np
import pytest

from theory.deep_layer import LayerCache, layer_integral
from theory.deep_rules import Proposal, sobol_rule
from theory.deep_tilted import OneD, PhiCache, tilted_moments


@pytest.mark.parametrize("name", ["normcdf", "erf", "tanh"])
def test_phi_cache_is_bitwise_the_uncached_integral(name):
    oned = OneD.for_nonlinearity(name, 24)
    rng = np.random.default_rng(0)
    xi, u = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    s, d = np.array([0.7, 1.1, 0.9]), np.array([0.3, -0.2, 0.1])
    cache = PhiCache()
    for step in range(4):  # a new tilt, then one class's ξ, then one class's s: only those classes recomputed
        if step == 1:
            u = u + 0.01
        elif step == 2:
            xi = xi.copy()
            xi[:, 1] += 1e-7
        elif step == 3:
            s = s.copy()
            s[2] *= 1.0 + 1e-7
        before = None if cache.phi is None else cache.phi.copy()
        got = tilted_moments(oned, xi, u, s, d, cache)
        want = tilted_moments(oned, xi, u, s, d)
        assert all(np.array_equal(a, b) for a, b in zip(got, want))
        if step >= 1:
            changed = np.any(cache.phi != before, axis=(0, 2))
            assert list(changed) == [False, step == 2, step == 3]


def test_layer_cache_reuses_the_mapped_nodes_and_is_bitwise_uncached():
    oned = OneD.for_nonlinearity("normcdf", 24)
    sizes = np.array([4.0, 2.0, 2.0])
    rule = sobol_rule(6, 7, 4, seed=1)
    prop = Proposal(np.full(6, 0.1), 1.2 * np.eye(6))
    R, delta = np.linalg.cholesky(np.eye(3) * 0.3 + 0.1), np.full(3, 0.2)
    cache = LayerCache()
    for scale in (1.0, 1.01):
        t = scale * np.array([[2.0, -1.0, -1.0], [-1.0, 2.0, -1.0], [-1.0, -1.0, 2.0]])
        a = layer_integral(oned, sizes, 1.0, rule, prop, R_in=R, delta_in=delta, t=t, sigma_a=0.5, cache=cache)
        b = layer_integral(oned, sizes, 1.0, rule, prop, R_in=R, delta_in=delta, t=t, sigma_a=0.5)
        assert a.log_z == b.log_z and np.array_equal(a.outputs, b.outputs) and np.array_equal(a.k, b.k)
        assert np.array_equal(a.kt_in, b.kt_in) and np.array_equal(a.dt_in, b.dt_in)
    y0 = cache.mapped(prop, rule)[0]
    assert cache.mapped(prop, rule)[0] is y0  # same proposal and rule: no new map
    assert cache.mapped(Proposal(prop.mean, prop.chol), rule)[0] is not y0  # a new proposal object: mapped again
