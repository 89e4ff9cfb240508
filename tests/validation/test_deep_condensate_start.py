"""Deep ReLU networks started from a KKT point with both condensates (validation.deep_condensate_start; issue 17):
the drawn network's observables equal the KKT equations' (bulk rule estimate + condensate terms) within their
sampling error, and each placed outlier carries its predicted code and share."""
from types import SimpleNamespace

import numpy as np
import pytest

from solvers.deep.complementarity import kkt_model
from solvers.deep.model import DeepModel
from solvers.deep.options import DeepOptions
from theory.deep_blocks import Proposal
from theory.spec import ModelSpec, class_labels
from validation.deep_condensate_start import condensate_prediction, kkt_of
from validation.deep_network import DeepNetwork
from validation.deep_observables import observables_vector
from validation.deep_theory_init import deep_theory_state
from validation.deep_theory_sample import neuron_contributions

SMALL = ModelSpec(nonlinearity="relu", class_sizes=(4, 2, 2), sigma_a=0.5, temperature=0.5)


@pytest.fixture(scope="module")
def kkt_point():
    """L = 2, classes 4,2,2, Gauss–Hermite rules, standard proposals; the readout's maximiser (code 111, q ≈ 0.94)
    and the first layer's (code 100, q_1 ≈ 0.82) with multipliers 0.3 and 0.5 (any μ: the identities hold at every
    point, not only at the saddle)."""
    model = DeepModel(SMALL, (1.0, 1.0), DeepOptions(integrator="gauss-hermite"))
    x = model.pack(0.3 * (2.0 * np.eye(3) - 0.3), [(0.6 * np.eye(3) + 0.2, np.full(3, 0.3))])
    props = [Proposal.standard(d) for d in model.dims]
    kkt, xk = kkt_model(model, x, props, 0.0, fit=False)
    xk = kkt.with_multipliers(xk, [0.3, 0.5])
    return kkt, xk, props


def test_drawn_network_matches_the_kkt_equations(kkt_point):
    """N = 2000 neurons per layer from the start (bulk: the rules' nodes resampled; one outlier per maximiser at
    r = sqrt(2 μ N)), weights conditioned on them: the network's f, U, K_1, K_2 (its own forward pass) equal the
    KKT evaluation within 4 standard errors of the neuron means + 3 max(1, |value|)/N (the two outliers replace
    bulk neurons, and an outlier's within-class noise adds O(1/N)); without the outliers K_1's class-1 diagonal and
    f_11 miss by far more. The placed outliers: the last row of each layer, with the predicted code, r/√N and share
    of K_1's class-1 diagonal (0.134) or of f_11 (0.109)."""
    kkt, x, props = kkt_point
    N = 2000
    point = SimpleNamespace(model=kkt, x=x, proposals=props)  # the solution's ``kkt``, as an object or a triple
    theory = SimpleNamespace(spec=SMALL, sigmas=(1.0, 1.0), converged=True, proposals=props, layers=2, kkt=point)
    for form in (theory, SimpleNamespace(kkt=(kkt, x, props))):
        assert all(a is b for a, b in zip(kkt_of(form), (kkt, x, props)))
    net = DeepNetwork(SMALL, width=N, layers=2)
    theta = deep_theory_state(net, theory, np.random.default_rng(1))
    want = kkt.evaluate(x, props)["obs"][:42]
    phis, (_, a) = net.activations(theta), net.unpack(theta)
    terms = neuron_contributions(phis, a.T, SMALL.class_sizes)
    got, se = terms.mean(axis=0), terms.std(axis=0) / np.sqrt(N)
    assert np.allclose(got, observables_vector(net, theta), atol=1e-10)
    assert np.all(np.abs(got - want) <= 4 * se + 3 * np.maximum(1.0, np.abs(want)) / N)
    bulk = neuron_contributions([p[:-1] for p in phis], a.T[:-1], SMALL.class_sizes).mean(axis=0)
    assert abs(bulk[0] - want[0]) > 0.05 and abs(bulk[18] - want[18]) > 0.1  # f_11, K_1's class-1 diagonal

    first, readout = condensate_prediction((kkt, x, props))
    assert first["codes"] == ["100"] and readout["codes"] == ["111"]
    lab = class_labels(SMALL.class_sizes)
    out1 = phis[0][-1]
    assert np.max(out1[lab != 0]) < 0.2 * np.min(out1[lab == 0])  # O(1) against O(√N)
    share = np.sum(out1[lab == 0] ** 2) / np.sum(phis[0][:, lab == 0] ** 2)
    assert share == pytest.approx(first["kernel_diagonal_share"][0][0], rel=0.05)
    assert np.mean(out1[lab == 0]) / np.sqrt(N) == pytest.approx(first["activation_over_sqrt_n"][0][0], rel=0.05)
    assert np.linalg.norm(a[:, -1]) / np.sqrt(N) == pytest.approx(
        SMALL.sigma_a * readout["radius_over_sqrt_n"][0] * np.linalg.norm(kkt.condensate.last[0][:3]), rel=1e-6)
    f11 = a[0, -1] * np.mean(phis[1][-1][lab == 0]) / N / np.mean(a[0] * phis[1][:, lab == 0].mean(axis=1))
    assert f11 == pytest.approx(readout["output_share"][0][0], abs=0.03)
