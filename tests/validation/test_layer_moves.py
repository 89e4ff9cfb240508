"""Layer moves at fixed next-layer preactivations (:mod:`validation.layer_moves`): the partially collapsed log
density against the Gaussian law of H^{ℓ+1}, the Woodbury ratio against direct evaluation, the exact conditional
draw of W^{ℓ+1}, the exact law on the sign orbit of layer 1, invariance of the prior under the composite move,
the refusals and the wiring into the chains."""
import itertools
import math

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from theory.spec import ModelSpec, SpecError
from validation.deep_network import DeepNetwork
from validation.diagnostics import mcse
from validation.reflections import _row_attempts
from validation.layer_moves import (LayerMoves, NextLayerRows, check_layer_moves, layer_moves, next_layer_loglik,
                                    redraw_next_weights)
from validation.tempering import run_chain_with_moves

TINY = ModelSpec("normcdf", class_sizes=(2, 1, 1), sigma_a=0.7, temperature=0.5)


def _state(width=6, layers=2, seed=1, nonlinearity="normcdf", sigmas=None):
    net = DeepNetwork(TINY.replace(nonlinearity=nonlinearity), width=width, layers=layers,
                      sigmas=sigmas or (1.0, 0.8, 1.2)[:layers])
    theta = net.prior_sample(np.random.default_rng(seed))
    return net, theta, net.forward(net.unpack(theta)[0])


def test_loglik_is_the_gaussian_law_of_the_next_layer():
    """ℓ_K(Φ) = Σ_j log N(h_j; 0, σ²K) + (NP/2) log(2πσ²) with K = ΦᵀΦ/N, for two different Φ (the constant
    does not depend on Φ, so Δℓ_K is the change of the W^{ℓ+1}-marginal log density)."""
    net, _, fwd = _state()
    H, sigma = fwd[1][0], net.sigmas[1]
    N, P = H.shape
    for phi in (fwd[0][1], net._phi(np.random.default_rng(2).standard_normal((N, P)))[0]):
        K = phi.T @ phi / N
        direct = multivariate_normal(np.zeros(P), sigma**2 * K).logpdf(H).sum()
        assert next_layer_loglik(phi, H, sigma)[2] == pytest.approx(direct + 0.5 * N * P * math.log(2 * math.pi
                                                                                                  * sigma**2), abs=1e-9)


def test_ratio_is_the_change_of_the_partially_collapsed_log_density():
    """Accepted attempts (passes of distinct rows, Woodbury updates of K⁻¹ in between) sum to ℓ_K(Φ') − ℓ_K(Φ)
    recomputed (1e-10), and the updated K⁻¹ equals the fresh inverse (1e-10)."""
    net, _, fwd = _state()
    phi, H = fwd[0][1], fwd[1][0]
    rows = NextLayerRows(phi, H, net.sigmas[1])
    rng = np.random.default_rng(3)
    proposals = [net._phi(rng.standard_normal((k, phi.shape[1])))[0] for k in (3, 6)]
    for order, prop in zip(([4, 0, 2], [5, 1, 3, 0, 2, 4]), proposals):
        accepted = np.zeros(len(order), dtype=np.bool_)
        rows.total += _row_attempts(rows.phi, rows.Kinv, rows.KinvY, np.array(order, dtype=np.int64), prop,
                                    np.full(len(order), -np.inf), 1.0 / net.width, 1.0 / net.sigmas[1] ** 2, accepted)
        assert accepted.all()
    expected = phi.copy()
    expected[[4, 0, 2]] = proposals[0]
    expected[[5, 1, 3, 0, 2, 4]] = proposals[1]
    np.testing.assert_array_equal(rows.phi, expected)
    fresh = next_layer_loglik(expected, H, net.sigmas[1])
    assert rows.total == pytest.approx(fresh[2] - rows.ell, abs=1e-10)
    np.testing.assert_allclose(rows.Kinv, fresh[0], atol=1e-10)


@pytest.mark.parametrize("layers", [2, 3])
def test_moves_keep_the_next_layer_and_the_readout(layers):
    """Every layer ℓ < L: after the moves H^{ℓ+1} is unchanged (1e-12), so are Φ_L and the readout a; only
    W^ℓ and W^{ℓ+1} change, and the running ℓ_K agrees with the recomputed one (1e-9)."""
    net, theta, fwd = _state(width=7, layers=layers)
    for layer in range(1, layers):
        new, info = layer_moves(np.random.default_rng(layer), net, theta, layer, pcn=2, flips=1, contrasts=1,
                                rho=0.5)
        assert sum(info["accepted"].values()) > 0 and info["update_error"] < 1e-9
        Ws, Ws_new = net.unpack(theta)[0], net.unpack(new)[0]
        fwd_new = net.forward(Ws_new)
        np.testing.assert_allclose(fwd_new[layer][0], fwd[layer][0], atol=1e-12)
        np.testing.assert_allclose(fwd_new[-1][1], fwd[-1][1], atol=1e-12)
        np.testing.assert_array_equal(net.unpack(new)[1], net.unpack(theta)[1])
        changed = [not np.array_equal(a, b) for a, b in zip(Ws, Ws_new)]
        assert changed == [k in (layer - 1, layer) for k in range(layers)]


def test_redraw_is_the_exact_conditional():
    """W' = Z + (√N H − ZΦ)(ΦᵀΦ)⁻¹Φᵀ satisfies W'Φ/√N = H (1e-12) and its part orthogonal to the columns of
    Φ has the prior's second moment σ²(N − P) per row (400 draws, within 4 standard errors)."""
    net, _, fwd = _state(width=8)
    phi, H, sigma = fwd[0][1], fwd[1][0], net.sigmas[1]
    N, P = phi.shape
    rng = np.random.default_rng(5)
    null = np.eye(N) - phi @ np.linalg.solve(phi.T @ phi, phi.T)
    second = []
    for _ in range(400):
        W = redraw_next_weights(rng, phi, H, sigma)
        np.testing.assert_allclose(W @ phi / math.sqrt(N), H, atol=1e-12)
        second.append(np.mean(np.sum((W @ null) ** 2, axis=1)) / (N - P))
    sd = sigma**2 * math.sqrt(2.0 / (N * (N - P))) / math.sqrt(len(second))
    assert abs(np.mean(second) - sigma**2) < 4 * sd


def test_flips_reproduce_the_exact_law_on_the_sign_orbit():
    """Flips alone at fixed H² (N = 5, P = 4, |W¹_i| fixed, σ_2 = 3) move on the 32 sign patterns of layer 1, whose
    exact law is ∝ exp ℓ_K(Φ(σ)) (enumerated; max/min probability > 5). 6000 passes of 5 attempts: every
    pattern's frequency within 4.5 MCSE of it, total variation < 0.03."""
    net, _, fwd = _state(width=5, seed=1)
    phi0, H, sigma = fwd[0][1], fwd[1][0], 3.0
    patterns = list(itertools.product((0, 1), repeat=5))
    logp = np.array([next_layer_loglik(np.where(np.array(p)[:, None] == 1, 1.0 - phi0, phi0), H, sigma)[2]
                     for p in patterns])
    exact = np.exp(logp - logp.max())
    exact /= exact.sum()
    assert exact.max() / exact.min() > 5
    rows, rng = NextLayerRows(phi0, H, sigma), np.random.default_rng(7)
    state, visits = np.zeros(5, dtype=int), []
    for _ in range(6000):
        order = rng.permutation(5)
        accepted = rows.attempt(rng, order, 1.0 - rows.phi[order])
        state[order[accepted]] ^= 1
        visits.append(int(np.dot(state, 2 ** np.arange(4, -1, -1))))
    draws = (np.array(visits)[:, None] == np.arange(32)[None]).astype(float)
    freq, err = draws.mean(axis=0), mcse(draws[None])
    assert np.all(np.abs(freq - exact) <= 4.5 * np.maximum(err, 1e-3))
    assert 0.5 * np.abs(freq - exact).sum() < 0.03


def test_composite_move_keeps_the_prior():
    """Under the prior alone (no likelihood), alternating a fresh prior draw of W² with the layer moves of layer 1
    (pCN, flips, class-contrast reflections, W² | H² again) must keep W¹ ~ N(0, σ_1²): the mean of W¹², of
    φ(W¹) and of the layer-1 kernel's off-diagonal stay at their prior values within 4.5 MCSE (1500 rounds)."""
    net, theta, _ = _state(width=6, seed=3)
    rng = np.random.default_rng(9)
    n, stats = net.dim_hidden, []
    for _ in range(1500):
        Ws = net.unpack_hidden(theta[:n].copy())
        Ws[1] = net.sigmas[1] * rng.standard_normal(Ws[1].shape)
        theta = net.pack(Ws, net.unpack(theta)[1])
        theta, _ = layer_moves(rng, net, theta, 1, pcn=1, flips=1, contrasts=1, rho=0.3)
        W1 = net.unpack(theta)[0][0]
        phi = net._phi(W1)[0]
        stats.append([np.mean(W1**2), np.mean(phi), np.mean(phi[:, 0] * phi[:, 2])])
    stats = np.array(stats)
    prior = np.array([1.0, 0.5, 0.25])  # E h² = σ_1², E Φ(h) = 1/2, E Φ(h)Φ(h') = 1/4 (h, h' independent)
    z = np.abs(stats.mean(axis=0) - prior) / mcse(stats[None])
    assert np.all(z < 4.5), z


def test_refusals_and_wiring():
    """layer_moves > 0 needs layers >= 2 and an int >= 0; a short chain reports the acceptance per layer and
    kind (flips only for φ with the symmetry) and an update error below 1e-9."""
    with pytest.raises(SpecError, match="layers >= 2"):
        check_layer_moves(1, 1)
    with pytest.raises(SpecError, match="layer_moves"):
        check_layer_moves(-1, 2)
    with pytest.raises(SpecError, match="N >= P = 8"):
        check_layer_moves(1, 2, (20, 6), 8)
    with pytest.raises(SpecError, match="layer_moves >= 1"):
        LayerMoves(0, 2, "normcdf")
    assert LayerMoves(1, 2, "relu").flips == 0 and LayerMoves(1, 2, "erf").flips == 1
    from codingschemes.cli.main import main

    for flags in (["--layers", "1", "--layer-moves", "1"], ["--layers", "2", "--layer-moves", "-1"],
                  ["--layers", "2", "--widths", "10", "--layer-moves", "1"]):
        assert main(["validate", *flags, "--quiet"]) == 2
    res = run_chain_with_moves(TINY, 6, 2, 6, 2, layer_moves=1, contrast_from=1, seed=0)
    block = res["layer_moves"]
    assert block["passes"] == 1 and block["update_error"] < 1e-9
    assert [(r["layer"], r["kind"]) for r in block["moves"]] == [(1, "contrast"), (1, "flip"), (1, "pcn")]
    assert all(r["attempts"] == 4 * 6 and 0 <= r["acceptance"] <= 1 for r in block["moves"])


def test_deep_validate_turns_the_exact_moves_on_by_default(capsys):
    """``validate --layers L >= 2`` with a nonlinear φ: sign flips 400 (φ with the symmetry only), class-contrast
    reflections 400, layer moves 1 (every width N >= P, else off with a warning) unless given; 0 turns one off;
    linear φ and one layer: all off (``--layers 1 --reflections 0`` is accepted)."""
    from codingschemes.cli.main import parse_checked

    def moves(*flags):
        args = parse_checked(["validate", *flags])
        return args.reflections, args.contrast_reflections, args.layer_moves

    assert moves("--layers", "2", "--nonlinearity", "normcdf") == (400, 400, 1)
    assert moves("--layers", "3", "--nonlinearity", "erf") == (400, 400, 1)
    assert moves("--layers", "2", "--nonlinearity", "relu") == (0, 400, 1)
    assert moves("--layers", "2", "--nonlinearity", "linear") == (0, 0, 0)
    assert moves("--layers", "1", "--nonlinearity", "normcdf") == (0, 0, 0)
    assert moves("--layers", "1", "--reflections", "0", "--layer-moves", "0") == (0, 0, 0)
    assert moves("--layers", "2", "--reflections", "0", "--layer-moves", "2") == (0, 400, 2)
    assert moves("--layers", "2", "--nonlinearity", "tanh", "--widths", "10,400") == (400, 400, 0)
    assert "layer moves (on by default) need every width N >= P = 16" in capsys.readouterr().err


def test_deep_relu_validate_turns_the_layer_pair_rotations_on_by_default():
    """``--layer-pairs``: on by default (DEEP_MOVES) for deep ReLU with every width N >= P only; a given count is kept;
    a non-zero count with one layer or a width below P is refused naming the flag."""
    from codingschemes.cli.main import parse_checked
    from codingschemes.cli.validate_cmd import DEEP_MOVES

    def pairs(*flags):
        return parse_checked(["validate", *flags]).layer_pairs

    assert pairs("--layers", "2", "--nonlinearity", "relu") == DEEP_MOVES["layer_pairs"] > 0
    assert pairs("--layers", "2", "--nonlinearity", "normcdf") == 0
    assert pairs("--layers", "2", "--nonlinearity", "relu", "--widths", "10") == 0
    assert pairs("--layers", "1", "--nonlinearity", "relu") == 0
    assert pairs("--layers", "2", "--nonlinearity", "normcdf", "--layer-pairs", "7") == 7
    for flags in (("--layers", "1", "--layer-pairs", "5"), ("--layers", "2", "--widths", "10", "--layer-pairs", "5")):
        with pytest.raises(SpecError, match="layer"):
            parse_checked(["validate", "--nonlinearity", "relu", *flags])
