"""Replicate errors propagated linearly through the lower layers (solvers.deep.replicates): where every
replicate's own evaluation exists, the linearised replicate residuals and observables agree with it to first
order (their difference is small against the replicate's deviation from the pooled rule)."""
import numpy as np
import pytest

from solvers.deep.model import DeepModel
from solvers.deep.options import DeepOptions
from solvers.deep.replicates import linearised_replicates
from theory.spec import ModelSpec


@pytest.mark.parametrize("phi", ["relu", "normcdf"])
def test_linearised_replicates_match_the_evaluated_ones(phi):
    spec = ModelSpec(nonlinearity=phi, class_sizes=(4, 2, 2), sigma_a=0.5, temperature=0.5)
    model = DeepModel(spec, (1.0, 1.0), DeepOptions(integrator="qmc", qmc_log2n=9))
    x = model.pack(np.array([[0.6, -0.1, -0.1], [-0.2, 0.7, -0.1], [-0.2, -0.1, 0.7]]),
                   [(0.25 * np.eye(3) + 0.15, np.full(3, 0.3))])
    props = model.initial_proposals(x, 1.5)
    ev = model.evaluate(x, props)
    lin = linearised_replicates(model, x, ev, props)
    assert lin is not None and len(lin) == model.rules[0].groups
    for g, (r, o, dlogz) in enumerate(lin):
        e = model.evaluate(x, props, rules=[rule.group(g) for rule in model.rules])
        dev = max(np.max(np.abs(e["residual"] - ev["residual"])), np.max(np.abs(e["obs"] - ev["obs"])))
        assert dev > 1e-6  # the replicates do differ
        assert np.max(np.abs(r - e["residual"])) <= 0.1 * dev
        assert np.max(np.abs(o - e["obs"])) <= 0.1 * dev
