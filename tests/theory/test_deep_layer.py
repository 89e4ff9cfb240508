"""The log density λ(y) of :func:`theory.deep_layer.log_integrand` is the density that
:func:`theory.deep_layer.layer_integral` integrates, in the same y-coordinates (u = B v, B of
:func:`theory.deep_fields.tilt_factor`), also for a hidden tilt k̃ with off-diagonal blocks: the mode
search places mixture components with λ, so a rotation between the two would place them elsewhere."""
import numpy as np
import pytest
from scipy.special import logsumexp

from theory.deep_layer import layer_integral, log_integrand
from theory.deep_rules import Proposal, sobol_rule
from theory.deep_tilted import OneD


@pytest.mark.parametrize("name, scale", [("normcdf", 0.3), ("relu", 0.03)])  # ReLU: inside its domain
def test_log_integrand_weights_give_the_integral_s_tilted_mean(name, scale):
    oned = OneD.for_nonlinearity(name, 24)
    sizes = np.array([4.0, 2.0, 2.0])
    kt = scale * np.array([[1.0, 0.6, 0.2], [0.6, 0.8, -0.3], [0.2, -0.3, 0.5]])
    dt = scale * np.array([0.15, 0.06, 0.1])
    R, delta = np.linalg.cholesky(np.eye(3) * 0.3 + 0.1), np.full(3, 0.2)
    rule = sobol_rule(6, 10, 4, seed=3)
    res = layer_integral(oned, sizes, 1.0, rule, Proposal(np.zeros(6), np.eye(6)), R_in=R, delta_in=delta,
                         kt=kt, dt=dt)
    y = rule.x  # a N(0, I) proposal maps the nodes to themselves
    lw = log_integrand(oned, sizes, 1.0, y, R_in=R, delta_in=delta, kt=kt, dt=dt) + 0.5 * np.sum(y * y, axis=1)
    p = np.exp(lw - logsumexp(lw))
    assert np.allclose(p @ y, res.y_mean, rtol=0, atol=1e-10)
    # the eigen-factor of k̃ (a rotation of v) gives another mean: the check can fail
    w, V = np.linalg.eigh(kt)
    assert not np.allclose(V * np.sqrt(w), np.linalg.cholesky(kt), atol=1e-3)
