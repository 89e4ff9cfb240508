"""Pair rotations of a lower hidden layer at fixed next-layer preactivations (:mod:`validation.layer_pairs`):
the MH ratio against the partially collapsed log density evaluated from scratch, the exact law on the
rotation orbit of a linear layer, and the wiring into the layer moves (H^{ℓ+1}, Φ_L and a unchanged)."""
import math

import numpy as np
import pytest

from theory.spec import ModelSpec, SpecError
from validation.deep_network import DeepNetwork
from validation.diagnostics import mcse
from validation.layer_moves import LayerMoves, layer_input, layer_moves, next_layer_loglik
from validation.layer_pairs import LayerPairs, kernel_loglik
from validation.outlier_moves import selection_logprob

TINY = ModelSpec("relu", class_sizes=(2, 1, 1), sigma_a=0.7, temperature=0.5)


def _pairs(nonlinearity="relu", width=6, seed=1):
    net = DeepNetwork(TINY.replace(nonlinearity=nonlinearity), width=width, layers=2, sigmas=(1.0, 0.8))
    theta = net.prior_sample(np.random.default_rng(seed))
    Ws = [W.copy() for W in net.unpack(theta)[0]]
    fwd = net.forward(Ws)
    state = LayerPairs(Ws[0], layer_input(net, fwd, 1), np.array(fwd[0][1]), fwd[1][0], net.sigmas[0], net.sigmas[1],
                       lambda H: net._phi(H)[0])
    return net, state, fwd


def test_ratio_is_the_change_of_the_partially_collapsed_density_times_the_selection_ratio():
    """log r of a rotation equals [ℓ_K(Φ') − ℓ_K(Φ)] (:func:`validation.layer_moves.next_layer_loglik`, a
    separate code path) + log s(i, j | W') − log s(i, j | W), the prior term being unchanged (|W_i|² + |W_j|²
    kept, 1e-12); accepted moves keep the tracked ℓ_K equal to a fresh one (1e-9)."""
    net, state, fwd = _pairs()
    H, sigma = fwd[1][0], net.sigmas[1]
    rng = np.random.default_rng(4)
    for i, j, angle in ((0, 3, 0.4), (5, 1, -1.2), (2, 4, 1.5)):
        log_r, rows, phi_new, _, _ = state.log_ratio(i, j, angle)
        phi2 = state.phi.copy()
        phi2[[i, j]] = phi_new
        W2 = state.W.copy()
        W2[[i, j]] = rows
        assert np.sum(W2**2) == pytest.approx(np.sum(state.W**2), abs=1e-12)
        direct = (next_layer_loglik(phi2, H, sigma)[2] - next_layer_loglik(state.phi, H, sigma)[2]
                  + selection_logprob(np.sum(W2**2, axis=1), i, j, net.sigmas[0])
                  - selection_logprob(np.sum(state.W**2, axis=1), i, j, net.sigmas[0]))
        assert log_r == pytest.approx(direct, abs=1e-9)
    assert sum(state.step(rng) for _ in range(40)) > 0
    assert state.update_error() < 1e-9
    assert kernel_loglik(np.zeros((4, 4)), np.eye(4), 6, 1.0) == -math.inf


def test_linear_layer_samples_the_rotation_orbit_uniformly():
    """Linear φ: a rotation keeps K, so ℓ_K is constant on the orbit {O W : O ∈ O(N)} and the target there is
    uniform (Haar). Row i is then oᵀW₀ with o uniform on the unit sphere of R^N, so with λ the eigenvalues of
    W₀W₀ᵀ, E|W_i|⁴ = ((Σλ)² + 2Σλ²)/(N(N + 2)). 2000 moves from one W (N = 5, rows of very different norms):
    the mean of |W_i|⁴ over rows within 4.5 MCSE of it (z 1.3; with the selection ratio left out of the MH
    ratio, z 9.7, so the test sees it)."""
    net, state, _ = _pairs("linear", width=5, seed=2)
    state.W *= np.array([4.0, 0.3, 1.0, 0.5, 2.0])[:, None]
    state.phi[:] = state.activate(state.W @ state.B)
    state.__init__(state.W, state.B, state.phi, np.zeros((5, 4)), 1.0, 0.8, state.activate)
    lam = np.linalg.eigvalsh(state.W @ state.W.T)
    expected = (lam.sum() ** 2 + 2 * np.sum(lam**2)) / (5 * 7)
    rng = np.random.default_rng(7)
    draws = []
    for _ in range(2000):
        state.step(rng)
        draws.append(np.mean(np.sum(state.W**2, axis=1) ** 2))
    draws = np.array(draws)[None, 200:, None]
    assert abs(draws.mean() - expected) / mcse(draws)[0] < 4.5


def test_pair_rotations_in_layer_moves_keep_the_next_layer_and_report_acceptance():
    """``layer_moves(pairs=k)``: H² and Φ_L unchanged (1e-12) after accepted rotations (update error < 1e-9);
    the hook counts "pair" attempts; refusals name the parameter."""
    net = DeepNetwork(TINY, width=7, layers=2)
    theta = net.prior_sample(np.random.default_rng(0))
    new, info = layer_moves(np.random.default_rng(5), net, theta, 1, pcn=0, pairs=30)
    assert info["accepted"]["pair"] > 0 and info["attempts"] == {"pair": 30} and info["update_error"] < 1e-9
    f0, f1 = net.forward(net.unpack(theta)[0]), net.forward(net.unpack(new)[0])
    np.testing.assert_allclose(f1[1][0], f0[1][0], atol=1e-12)
    np.testing.assert_allclose(f1[1][1], f0[1][1], atol=1e-12)
    hook = LayerMoves(0, 2, "relu", pairs=5)
    hook(np.random.default_rng(1), net, theta, False)
    assert [r["kind"] for r in hook.summary()["moves"]] == ["pair"] and hook.summary()["pairs"] == 5
    with pytest.raises(SpecError, match="layer_pairs"):
        LayerMoves(0, 1, "relu", pairs=2)
    with pytest.raises(SpecError, match="layer_pairs"):
        LayerMoves(0, 2, "relu", pairs=-1)
