"""Reflection moves of deep networks (:mod:`validation.reflections`): the Woodbury ratio against direct
evaluation of the collapsed log density, the involution, the exact distribution over the sign orbit of the
last layer's rows, the refusals, and the wiring into the chains."""
import itertools

import numpy as np
import pytest

from theory.spec import ModelSpec, SpecError
from validation.deep_network import DeepNetwork
from validation.diagnostics import mcse
from validation.reflections import (_row_attempts, check_reflections, collapsed_loglik, contrast_directions,
                                    contrast_reflections, hidden_flip_loglik, hidden_layer_reflections,
                                    last_layer_reflections, readout_inverse, readout_scale, reflection_offset)
from validation.deep import _width_runs
from validation.tempering import run_chain_with_moves

TINY = ModelSpec("normcdf", class_sizes=(2, 1, 1), sigma_a=1.0, temperature=0.5)


def _state(nonlinearity, width=5, seed=1, sigma_a=0.7, temperature=0.5):
    spec = TINY.replace(nonlinearity=nonlinearity, sigma_a=sigma_a, temperature=temperature)
    net = DeepNetwork(spec, width=width, layers=2, sigmas=(1.0, 0.8))
    w = net.prior_sample(np.random.default_rng(seed))[:net.dim_hidden]
    return net, w


def _attempts(net, w, passes, log_u=-np.inf):
    """Passes of flips (each a list of distinct neurons) from W through the compiled kernel, every proposal
    made from the current Φ_L at its pass's start; returns (accepted, Σ log r, flips, M⁻¹ after, φ after)."""
    phi = np.array(net.forward(net.unpack_hidden(w))[-1][1])
    Minv, _ = readout_inverse(net, phi)
    MinvY, flips = Minv @ net._setup["Y"], np.zeros(net.width, dtype=bool)
    s, total, acc = reflection_offset(net.spec.nonlinearity), 0.0, 0
    for order in passes:
        order = np.asarray(order, dtype=np.int64)
        accepted = np.zeros(len(order), dtype=np.bool_)
        total += _row_attempts(phi, Minv, MinvY, order, s - phi[order], np.full(len(order), log_u),
                               readout_scale(net), float(net.beta), accepted)
        flips[order[accepted]] ^= True
        acc += int(accepted.sum())
    return acc, total, flips, Minv, phi


def _flipped(net, w, flips):
    w2 = w.copy()
    net.unpack_hidden(w2)[-1][flips] *= -1.0
    return w2


@pytest.mark.parametrize("nonlinearity", ["normcdf", "erf", "tanh"])
def test_ratio_is_the_change_of_the_collapsed_log_density(nonlinearity):
    """Each attempt's log r equals log p(W' | D) − log p(W | D) of DeepNetwork.marginal_logdensity_and_grad
    (1e-10), one flip at a time and for a sequence of accepted flips (the Woodbury updates of M⁻¹ included,
    which must equal the fresh inverse)."""
    net, w = _state(nonlinearity)
    lp0 = net.marginal_logdensity_and_grad(w)[0]
    for i in range(net.width):
        _, log_r, flips, _, _ = _attempts(net, w, [[i]])
        assert flips.sum() == 1
        assert log_r == pytest.approx(net.marginal_logdensity_and_grad(_flipped(net, w, flips))[0] - lp0, abs=1e-10)
    acc, total, flips, Minv, phi = _attempts(net, w, [[3, 0, 2], [3, 4, 0, 1]])
    assert acc == 7 and flips.tolist() == [False, True, True, False, True]
    assert total == pytest.approx(net.marginal_logdensity_and_grad(_flipped(net, w, flips))[0] - lp0, abs=1e-10)
    fresh, _ = readout_inverse(net, np.array(net.forward(net.unpack_hidden(_flipped(net, w, flips)))[-1][1]))
    np.testing.assert_allclose(Minv, fresh, atol=1e-12)
    if nonlinearity != "normcdf":  # odd φ: G and the target are invariant, every flip is accepted with r = 1
        assert abs(total) < 1e-12


@pytest.mark.parametrize("layers", [2, 3])
def test_hidden_flip_ratio_is_the_change_of_the_collapsed_log_density(layers):
    """The joint flip (W^ℓ_i, W^{ℓ+1}_{:,i}) → −(...) of every hidden layer ℓ < L: ℓ(G') − ℓ(G) of the shifted
    preactivations H^{ℓ+1} − s W^{ℓ+1}_{:,i}/√N equals log p(W' | D) − log p(W | D) (1e-10); W' is W with the
    row and column negated, the same move twice is the identity."""
    spec = TINY.replace(sigma_a=0.7)
    net = DeepNetwork(spec, width=5, layers=layers)
    w = net.prior_sample(np.random.default_rng(4))[:net.dim_hidden]
    Ws = net.unpack_hidden(w)
    fwd = net.forward(Ws)
    ell = collapsed_loglik(net, fwd[-1][1])
    lp0 = net.marginal_logdensity_and_grad(w)[0]
    for layer in range(1, layers):
        for i in (0, 3):
            H_new, ell_new = hidden_flip_loglik(net, Ws, fwd[layer][0], layer, i, 1.0 / np.sqrt(5))
            w2 = w.copy()
            W2 = net.unpack_hidden(w2)
            W2[layer - 1][i] *= -1.0
            W2[layer][:, i] *= -1.0
            np.testing.assert_allclose(H_new, net.forward(W2)[layer][0], atol=1e-14)
            assert ell_new - ell == pytest.approx(net.marginal_logdensity_and_grad(w2)[0] - lp0, abs=1e-10)
    theta = np.concatenate([w, np.zeros(spec.m * 5)])
    new, info = hidden_layer_reflections(np.random.default_rng(0), net, theta, 6, 1.0, layer=1)
    W1, W1n = net.unpack_hidden(w)[0], net.unpack_hidden(new[:net.dim_hidden])[0]
    flipped = np.all(W1n == -W1, axis=1)
    assert info["accepted"] > 0 and np.all(flipped | np.all(W1n == W1, axis=1))
    np.testing.assert_array_equal(net.unpack_hidden(new[:net.dim_hidden])[1][:, flipped], -Ws[1][:, flipped])


def test_the_flip_is_an_involution():
    """Flipping the same row twice returns W, φ, M⁻¹ and log p exactly (Σ log r = 0), and φ(−h) = s − φ(h)
    with s = 1 for normcdf, 0 for erf."""
    net, w = _state("normcdf")
    phi0 = np.array(net.forward(net.unpack_hidden(w))[-1][1])
    Minv0, _ = readout_inverse(net, phi0)
    acc, total, flips, Minv, phi = _attempts(net, w, [[2], [2]])
    assert acc == 2 and not flips.any() and abs(total) < 1e-12
    np.testing.assert_allclose(phi, phi0, atol=1e-15)
    np.testing.assert_allclose(Minv, Minv0, atol=1e-12)
    h = np.linspace(-5, 5, 11)
    for name, s in (("normcdf", 1.0), ("erf", 0.0)):
        phi = DeepNetwork(TINY.replace(nonlinearity=name), width=2).nonlinearity
        assert reflection_offset(name) == s
        np.testing.assert_allclose(phi.eval(-h)[0], s - phi.eval(h)[0], atol=1e-15)


def test_refusals_name_the_parameter_and_say_why():
    with pytest.raises(SpecError, match=r"φ\(h\) \+ φ\(−h\) = \|h\|"):
        reflection_offset("relu")
    with pytest.raises(SpecError, match="linear networks have no codes"):
        reflection_offset("linear")
    with pytest.raises(SpecError, match="reflections must be an integer >= 0"):
        check_reflections(-1, "normcdf")
    with pytest.raises(SpecError, match="reflections need"):
        check_reflections(3, "relu")
    assert check_reflections(0, "relu") == (0, 0, 0)
    with pytest.raises(SpecError, match="hidden_reflections must be an integer >= 0"):
        check_reflections(0, "normcdf", -2)
    with pytest.raises(SpecError, match="reflections need"):
        run_chain_with_moves(TINY.replace(nonlinearity="relu"), 4, 2, 3, 1, reflections=2)
    from codingschemes.cli.main import main

    for flags in (["--nonlinearity", "relu", "--reflections", "3"], ["--layers", "1", "--contrast-reflections", "2"],
                  ["--hidden-reflections", "-1"]):
        assert main(["validate", "--layers", "2", *flags, "--quiet"] if "--layers" not in flags
                    else ["validate", *flags, "--quiet"]) == 2


def test_moves_alone_sample_the_exact_law_on_the_sign_orbit():
    """With W¹ and |W²_i| fixed, the reflections move on the 2^N sign patterns σ of W²'s rows, whose exact law is
    π(σ) ∝ exp ℓ(G(σ)) (the prior is even). N = 4, classes 2,1,1, σ_a = 1, T = 0.05: 40 000 single attempts;
    every pattern's frequency within 4.5 batch-means MCSE of π, and the total variation below 0.02."""
    net, w = _state("normcdf", width=4, seed=3, sigma_a=1.0, temperature=0.05)
    patterns = [np.array(p, dtype=bool) for p in itertools.product([False, True], repeat=4)]
    logp = np.array([net.marginal_logdensity_and_grad(_flipped(net, w, p))[0] for p in patterns])
    exact = np.exp(logp - logp.max())
    exact /= exact.sum()
    assert exact.max() / exact.min() > 20  # the law is far from uniform: the test has power
    rng = np.random.default_rng(7)
    n = 40_000
    order, log_u = rng.integers(0, 4, size=n), np.log(rng.random(n))
    phi = np.array(net.forward(net.unpack_hidden(w))[-1][1])
    Minv, _ = readout_inverse(net, phi)
    MinvY, flips = Minv @ net._setup["Y"], np.zeros(4, dtype=np.bool_)
    index, accepted = np.empty(n, dtype=np.int64), np.zeros(1, dtype=np.bool_)
    c, beta = readout_scale(net), float(net.beta)
    for k in range(n):
        accepted[0] = False
        _row_attempts(phi, Minv, MinvY, order[k:k + 1], 1.0 - phi[order[k:k + 1]], log_u[k:k + 1], c, beta, accepted)
        flips[order[k]] ^= accepted[0]
        index[k] = int(flips @ (1 << np.arange(3, -1, -1)))
    visits = (index[:, None] == np.arange(16)[None, :]).astype(float)
    freq = visits.mean(axis=0)
    err = mcse(visits[None])
    z = (freq - exact) / np.maximum(err, 1e-3)
    assert np.max(np.abs(z)) < 4.5, (freq, exact, z)
    assert 0.5 * np.abs(freq - exact).sum() < 0.02


def test_chains_report_acceptance_and_keep_their_update_error_small():
    """validate_deep's chains with (sign flips, hidden-layer flips, class-contrast reflections) = (3, 2, 4) per
    sweep: the "reflections" block (counts per sweep, acceptance in (0, 1] per layer and per chain, Woodbury
    rounding error < 1e-9); a sweep with an accepted flip changes W^L by sign flips
    of rows only and redraws a."""
    runs = _width_runs(TINY, 2, [4], 2, 12, 2, 5, None, 0.1, reflections=(3, 2, 4))
    block = runs[0]["reflections"]
    assert block["per_sweep"] == 3 and block["hidden_per_sweep"] == 2 and block["contrast_per_sweep"] == 4
    assert [lay["layer"] for lay in block["layers"]] == [1, 2] and block["contrast"]["layer"] == 2
    assert block["layers"][1]["attempts"] == 60 and 0 < block["layers"][1]["acceptance"] <= 1
    assert block["layers"][0]["attempts"] == 40 and 0 < block["layers"][0]["acceptance"] <= 1
    assert block["contrast"]["attempts"] == 80 and 0 < block["contrast"]["acceptance"] <= 1
    assert len(block["contrast"]["acceptance_per_chain"]) == 2
    assert block["update_error"] < 1e-9
    net, w = _state("normcdf", width=4, seed=11, sigma_a=1.0)
    theta = np.concatenate([w, np.zeros(net.spec.m * 4)])
    new, info = last_layer_reflections(np.random.default_rng(2), net, theta, 3, 1.0)
    assert info["accepted"] > 0 and info["update_error"] < 1e-9
    W_old, W_new = net.unpack_hidden(w)[-1], net.unpack_hidden(new[:net.dim_hidden])[-1]
    np.testing.assert_array_equal(np.abs(W_new), np.abs(W_old))
    np.testing.assert_array_equal(net.unpack_hidden(new[:net.dim_hidden])[0], net.unpack_hidden(w)[0])
    assert np.any(new[net.dim_hidden:] != 0.0)


def test_contrast_reflection_ratio_involution_and_directions():
    """u_c is orthogonal to every other class's mean activation of the layer below and has unit length; the
    Householder map W_i → (I − 2 u_c u_cᵀ) W_i keeps |W_i| and is its own inverse; the kernel's log r for the
    proposed row equals log p(W' | D) − log p(W | D) (1e-10); a run keeps |W^L_i| and W¹, with a small update error."""
    spec = TINY.replace(sigma_a=0.7)
    net = DeepNetwork(spec, width=5, layers=2)
    w = net.prior_sample(np.random.default_rng(2))[:net.dim_hidden]
    Ws = net.unpack_hidden(w)
    fwd = net.forward(Ws)
    U = contrast_directions(fwd[0][1], spec.class_sizes)
    means = np.stack([fwd[0][1][:, :2].mean(axis=1), fwd[0][1][:, 2], fwd[0][1][:, 3]], axis=1)
    gram = U.T @ means
    np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0.0, atol=1e-13)
    np.testing.assert_allclose(np.linalg.norm(U, axis=0), 1.0, atol=1e-14)
    lp0 = net.marginal_logdensity_and_grad(w)[0]
    for i, c in ((1, 0), (3, 2), (4, 1)):
        W2 = [W.copy() for W in Ws]
        W2[1][i] -= 2.0 * (W2[1][i] @ U[:, c]) * U[:, c]
        assert np.linalg.norm(W2[1][i]) == pytest.approx(np.linalg.norm(Ws[1][i]), rel=1e-14)
        back = W2[1][i] - 2.0 * (W2[1][i] @ U[:, c]) * U[:, c]
        np.testing.assert_allclose(back, Ws[1][i], atol=1e-14)
        phi = np.array(fwd[-1][1])
        Minv, _ = readout_inverse(net, phi)
        accepted = np.zeros(1, dtype=np.bool_)
        log_r = _row_attempts(phi, Minv, Minv @ net._setup["Y"], np.array([i]), np.array(net.forward(W2)[-1][1][[i]]),
                              np.array([-np.inf]), readout_scale(net), float(net.beta), accepted)
        w2 = np.concatenate([np.ravel(W) for W in W2])
        assert log_r == pytest.approx(net.marginal_logdensity_and_grad(w2)[0] - lp0, abs=1e-10)
    theta = np.concatenate([w, np.zeros(spec.m * 5)])
    new, info = contrast_reflections(np.random.default_rng(1), net, theta, 12)
    Wn = net.unpack_hidden(new[:net.dim_hidden])
    assert info["accepted"] > 0 and info["update_error"] < 1e-9
    np.testing.assert_allclose(np.linalg.norm(Wn[1], axis=1), np.linalg.norm(Ws[1], axis=1), rtol=1e-13)
    np.testing.assert_array_equal(Wn[0], Ws[0])
