"""Planted sparse starts of deep chains (:mod:`validation.deep_planted`) and the relaxation driver
(:mod:`validation.deep_relaxation`). Exactness of the moves themselves: test_outlier_moves.py,
test_deep_outliers.py."""
import math

import numpy as np
import pytest

from theory.codes import neuron_codes
from theory.spec import ModelSpec, SpecError, class_labels
from validation.deep_chain import run_deep_chain
from validation.deep_network import DeepNetwork
from validation.deep_observables import class_mean_activations
from validation.deep_outliers import LastLayerOutliers, hidden_layer_row
from validation.deep_planted import plant_sparse, planted_shares, readout_posterior_mean
from validation.deep_relaxation import relaxation_chain, relaxation_pair, summarise_relaxation
from validation.deep_sampler import deep_collapsed_sweep
from validation.outlier_moves import PairMarginal, selection_logprob
from validation.sparse import outlier_stats

SPEC = ModelSpec("relu", class_sizes=(8, 4, 4), sigma_a=0.125, temperature=0.05)


def _state(width=40, layers=2, seed=0, sweeps=30):
    return run_deep_chain(SPEC, width, layers, sweeps, sweeps - 1, seed=seed)["theta"]


@pytest.mark.parametrize("layers,per_class", [(2, 1), (2, 2), (1, 1)])
def test_planted_neurons_have_the_requested_codes_and_share(layers, per_class):
    """Each planted neuron codes its class only (100/010/001), the planted neurons of class c carry
    s_c = 0.8 of its output under the posterior-mean readout (to 1e-6), and under the exact draw of
    a | W that the state holds they are outliers (readout > 4 × median; two per class, each carrying
    half the share: > 3 × median at N = 80) carrying the share within 0.1
    (one draw of a | W at N = 40 moves a share by up to about 0.07);
    their readouts are large (O(√N)) and the outputs stay near the targets."""
    net = DeepNetwork(SPEC, 80, layers)
    p = plant_sparse(np.random.default_rng(1), net, _state(80, layers=layers), 0.8, per_class)
    assert len(p.neurons) == 3 * per_class == len(set(p.neurons.tolist()))
    assert p.classes.tolist() == sorted([0, 1, 2] * per_class)
    assert p.codes.tolist() == [1 << c for c in p.classes]
    cm = class_mean_activations(net, p.theta)[-1]
    assert neuron_codes(cm[p.neurons]).tolist() == p.codes.tolist()
    assert np.allclose(p.share, 0.8, atol=1e-6)
    phi = net.activations(p.theta)[-1]
    assert np.allclose(planted_shares(readout_posterior_mean(net, phi), phi, p.neurons, p.classes, SPEC.class_sizes),
                       p.share, atol=1e-12)
    _, a = net.unpack(p.theta)
    drawn = planted_shares(a, phi, p.neurons, p.classes, SPEC.class_sizes)
    assert np.allclose(drawn, 0.8, atol=0.1)
    norms = np.linalg.norm(a, axis=0)
    assert np.all(norms[p.neurons] > (4 if per_class == 1 else 3) * np.median(norms))
    if per_class == 1:
        stats = outlier_stats(a, cm)
        assert stats["count"] >= len(p.neurons) and np.all(stats["share"] >= drawn - 1e-12)
    assert np.allclose(np.diag(net.outputs(p.theta).T[:, [0, 8, 12]]), 1.0, atol=0.25)


def test_planted_state_is_a_valid_state_of_the_sampler():
    """Only the planted rows of W^L and the readout change; the planted rows give exactly the
    requested last-layer preactivations (ρ_c + H on class c, −|H| elsewhere); the collapsed log
    density is finite and the sweep runs from the state."""
    net = DeepNetwork(SPEC, 40, 2)
    theta = _state()
    p = plant_sparse(np.random.default_rng(2), net, theta, 0.8)
    (W1, W2), _ = net.unpack(theta)
    (V1, V2), _ = net.unpack(p.theta)
    assert np.array_equal(V1, W1)
    rest = np.setdiff1d(np.arange(40), p.neurons)
    assert np.array_equal(V2[rest], W2[rest]) and not np.allclose(V2[p.neurons], W2[p.neurons])
    H_old, H_new = net.forward([W1, W2])[-1][0], net.forward([V1, V2])[-1][0]
    labels = class_labels(SPEC.class_sizes)
    for i, c in zip(p.neurons, p.classes):
        on = labels == c
        assert np.allclose(H_new[i, on], p.rho[c] + H_old[i, on], rtol=1e-10, atol=1e-9)
        assert np.allclose(H_new[i, ~on], -np.abs(H_old[i, ~on]), rtol=1e-10, atol=1e-9)
    lp, g = net.marginal_logdensity_and_grad(p.theta[:net.dim_hidden])
    assert math.isfinite(lp) and np.all(np.isfinite(g))
    out, acc = deep_collapsed_sweep(np.random.default_rng(3), net, p.theta, 0.05)
    assert out.shape == p.theta.shape and 0 <= acc <= 1


def test_moves_keep_detailed_balance_at_the_planted_state():
    """The pair rotations' detailed-balance identity holds move by move at the planted state (the
    outliers are the heavy rows the selection picks), and the reverse move returns W exactly; a chain
    from the planted state with the recording hook alone is the plain chain, draw for draw."""
    net = DeepNetwork(SPEC, 40, 2)
    p = plant_sparse(np.random.default_rng(4), net, _state(), 0.8)
    Ws, _ = net.unpack(p.theta)
    rng = np.random.default_rng(5)
    fwd = PairMarginal.last_layer(net, Ws)
    for k in range(12):
        i = int(p.neurons[k % 3])
        j = int(rng.choice(np.setdiff1d(np.arange(40), [i])))
        angle = float(rng.uniform(-1.6, 1.6))
        prop = fwd.propose(i, j, angle)
        W2 = fwd.W.copy()
        W2[[i, j]] = prop[1]
        rev = PairMarginal.last_layer(net, [Ws[0], W2])
        assert math.isclose(prop[0], rev.logp, rel_tol=1e-11, abs_tol=1e-8)
        assert np.allclose(rev.propose(i, j, -angle)[1], fwd.W[[i, j]], atol=1e-10)
        left = fwd.logp + selection_logprob(fwd.sq_norms, i, j, 1.0) + min(0.0, fwd.log_acceptance(i, j, angle))
        right = rev.logp + selection_logprob(rev.sq_norms, i, j, 1.0) + min(0.0, rev.log_acceptance(i, j, -angle))
        assert math.isclose(left, right, rel_tol=0, abs_tol=1e-8 * (1 + abs(left)))
    a = run_deep_chain(SPEC, 40, 2, 12, 2, seed=6, theta0=p.theta, after_sweep=LastLayerOutliers(0))
    b = run_deep_chain(SPEC, 40, 2, 12, 2, seed=6, theta0=p.theta)
    assert np.array_equal(a["draws"], b["draws"]) and np.array_equal(a["theta"], b["theta"])


def test_bad_planted_inputs_are_refused():
    net = DeepNetwork(SPEC, 40, 2)
    theta = _state(sweeps=3)
    rng = np.random.default_rng(0)
    for share in (0.0, 1.0, 1.5):
        with pytest.raises(SpecError, match="share"):
            plant_sparse(rng, net, theta, share)
    with pytest.raises(SpecError, match="per_class"):
        plant_sparse(rng, net, theta, 0.8, per_class=0)
    with pytest.raises(SpecError, match="width"):
        plant_sparse(rng, net, theta, 0.8, per_class=14)
    bounded = DeepNetwork(SPEC.replace(nonlinearity="normcdf"), 40, 2)
    with pytest.raises(SpecError, match="unbounded"):
        plant_sparse(rng, bounded, bounded.prior_sample(rng), 0.99)


def test_relaxation_driver_runs_both_sides():
    """:func:`relaxation_chain` from the same pre-chain state: the planted side starts with its share,
    the prior side with the pre-chain's; :func:`summarise_relaxation` reports windows, drift, R̂ of both
    sides together and the gap."""
    chains = [relaxation_chain(SPEC, 30, 2, seed, kind, sweeps=40, pre=20, moves=2, every=2)
              for seed in (0, 1000) for kind in ("prior", "planted")]
    assert chains[1]["planted"] is not None and chains[0]["planted"] is None
    assert all(len(c["rows"]) == 20 and c["draws"].shape[0] == 40 for c in chains)
    s = summarise_relaxation(chains, 3, 2)
    assert s["planted"]["windows"][0]["share"][0] > s["prior"]["windows"][0]["share"][0]
    assert len(s["rhat_rows_both_sides"]) == 5 and set(s["gap"]) == {"count", "share", "top_share"}
    assert s["prior"]["chains"] == s["planted"]["chains"] == 2 and len(s["planted"]["f_cc"]) == 3


def test_relaxation_driver_with_the_exact_moves_records_the_lower_layer():
    """With last-layer class-contrast reflections, layer moves and layer pair rotations, both sides report
    each move's acceptance, the lower layer's outlier rows and the last layer's extremes;
    :func:`summarise_relaxation` gives R̂ per group (f, U, K1, K2) and the lower layer's summary."""
    chains = [c for seed in (0, 1000) for c in relaxation_pair(SPEC, 20, 2, seed, sweeps=8, pre=4, moves=2, every=2,
                                                                contrast_reflections=3, layer_moves=1, layer_pairs=2,
                                                                lower=True)]
    for c in chains:
        assert {m["kind"] for m in c["layer_moves"]["moves"]} == {"pcn", "contrast", "pair"}
        assert c["reflections"]["contrast"]["attempts"] == 24 and c["layer_moves"]["update_error"] < 1e-8
        assert len(c["extremes"]) == len(c["lower_rows"]) == 4 and len(c["lower_rows"][0]) == 1
    s = summarise_relaxation(chains, 3, 2)
    assert set(s["prior"]["rhat_groups"]) == {"f", "U", "K1", "K2"}
    low = s["planted"]["lower"]
    assert len(low["extremes"]) == 2 and low["layers"][0]["layer"] == 1 and len(low["layers"][0]["row"]) == 6


def test_hidden_layer_row_counts_outliers_codes_and_kernel_shares():
    """One neuron with activation 10 on the inputs of class 1 only among a bulk of ones: one outlier, code
    100 (bit 0), largest class-mean activation 10/√N, and its share of class 1's kernel diagonal
    2·100/(2·100 + 19·2)."""
    phi = np.ones((20, 4))
    phi[3] = [10.0, 10.0, 0.0, 0.0]
    row, codes = hidden_layer_row(phi, (2, 1, 1))
    assert row[0] == 1 and codes == [1]
    assert row[1] == pytest.approx(10 / math.sqrt(20))
    assert row[3:] == pytest.approx([200 / 238, 0.0, 0.0])
    assert row[2] == pytest.approx(200 / (200 + 19 * 4))  # the top ⌈0.05·20⌉ = 1 neuron of tr K


@pytest.mark.slow
def test_planted_sparse_last_layer_relaxes_to_the_prior_start_composition():
    """The decisive experiment (docs/paper.md claim 12) at N = 100 in the paper's regime (ReLU, L = 2,
    classes 32,16,16, σ_a = 0.125, T = 0.05), two seeds per side, 600 sweeps after a 150-sweep
    prior-start chain, 20 pair rotations per sweep: chains planted with one one-class outlier per
    class carrying 0.8 of its output lose it. Over the last half of the records the planted side's
    outliers carry on average less than 0.45 of the correct-class outputs (from 0.8; the prior-start
    side: about 0.2, chain-to-chain spread about 0.1), within 0.15 of the prior-start side, and the
    top-5 % output shares of the two sides differ by less than 0.1 (both below the sparse label's 1/2)."""
    spec = ModelSpec("relu", class_sizes=(32, 16, 16), sigma_a=0.125, temperature=0.05)
    chains = [relaxation_chain(spec, 100, 2, seed, kind, sweeps=600, pre=150, moves=20)
              for seed in (0, 1000) for kind in ("prior", "planted")]
    s = summarise_relaxation(chains, 3, 2)
    start = np.mean(s["planted"]["windows"][0]["share"])
    planted, prior = np.mean(s["planted"]["kept"]["share"]), np.mean(s["prior"]["kept"]["share"])
    assert start > planted and planted < 0.45
    assert abs(planted - prior) < 0.15
    assert abs(s["gap"]["top_share"]) < 0.1 and s["planted"]["kept"]["top_share"] < 0.5


@pytest.mark.slow
def test_deep_relu_first_layer_condenses_and_the_last_layer_stays_analog_with_the_exact_moves():
    """Paper's regime (ReLU, L = 2, classes 32,16,16, σ_a = 0.125, T = 0.05), N = 100, two prior-start chains of
    800 sweeps after a 300-sweep pre-chain, with every exact move that applies to ReLU: 20 last-layer pair
    rotations and 400 class-contrast reflections, one pass of layer-1 moves (pCN, class-contrast) and 20 layer-1
    pair rotations per sweep (docs/devlog.md, dval9). Over the last half: the first hidden layer holds exactly
    one outlier per class (codes 100, 010, 001), its class-mean activation 0.65–0.85 √N (measured 0.74–0.75),
    carrying over 0.4 of class 2's and 3's kernel diagonal (measured 0.47–0.51) and 0.15–0.35 of class 1's
    (0.23–0.26): a condensate. The last hidden layer stays analog with a tail: top-5 % output share below the
    sparse label's 1/2 (measured 0.36–0.37) and largest readout below 0.4 √N (0.23–0.25)."""
    spec = ModelSpec("relu", class_sizes=(32, 16, 16), sigma_a=0.125, temperature=0.05)
    chains = [c for seed in (0, 1000) for c in relaxation_pair(spec, 100, 2, seed, ("prior",), sweeps=800, pre=300,
                                                                moves=20, contrast_reflections=400, layer_moves=1,
                                                                layer_pairs=20, lower=True)]
    low = summarise_relaxation(chains, 3, 2)["prior"]
    first = low["lower"]["layers"][0]
    count, largest, _, share1, share2, share3 = first["row"]
    assert count == pytest.approx(3.0, abs=0.1) and set(first["code_fractions"]) == {"100", "010", "001"}
    assert 0.65 < largest < 0.85 and min(share2, share3) > 0.4 and 0.15 < share1 < 0.35
    assert low["kept"]["top_share"] < 0.5 and low["lower"]["extremes"][0] < 0.4
