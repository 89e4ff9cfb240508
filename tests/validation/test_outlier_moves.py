"""The pair-rotation moves of :mod:`validation.outlier_moves` are exact Metropolis–Hastings moves,
in a one-layer network and in the last hidden layer of a deep one.

Tiny problem: ReLU, N = 2 neurons, P = 2 inputs (classes 1,1), m = 2, σ_a = 1, T = 0.25. The
posterior of W with the readout integrated out is then a 4-dimensional density, integrated here
by Gauss–Legendre on each orthant (the density is smooth inside an orthant; 2 × 16 nodes per
axis: the moments below to ~1e-6). Exact draws moved by the pair moves must keep its moments (the
kernel's invariance, checked directly), and a chain of pair moves and collapsed sweeps must reach
them (slow). The detailed-balance identity itself is checked move by move on a width-5 network.

Deep (L = 2, the same tiny problem): with W¹ fixed, the last layer's preactivations are
H² = W² A, A = φ(W¹)/√N invertible, so the conditional of W² is again a 4-dimensional density,
smooth on the orthants of H² (prior of each row h_i: N(0, σ_2² AᵀA)); the quadrature runs over H².
"""
import math

import numpy as np
import pytest

from theory.spec import ModelSpec
from validation.collapsed import collapsed_sweep
from validation.deep_network import DeepNetwork
from validation.diagnostics import mcse
from validation.networks import Network
from validation.outlier_moves import PairMarginal, pair_rotation_moves, selection_logprob

SPEC = ModelSpec(nonlinearity="relu", class_sizes=(1, 1), sigma_a=1.0, temperature=0.25)


#: the fixed first layer of the deep tiny problem (φ(W¹) = W¹: A = W¹/√2 invertible, not diagonal)
W1_FIXED = np.array([[1.3, 0.5], [0.2, 1.1]])


def _statistics(W, A=None):
    """(Σ φ², Σ_i |W_i|⁴, (φᵀφ)_01) of W (..., N, P), φ = relu(W A) (A = I: one layer): the kernel
    and how |W|² is split over neurons."""
    phi = np.maximum(W if A is None else W @ A, 0.0)
    gram01 = np.sum(phi[..., :, 0] * phi[..., :, 1], axis=-1)
    return np.stack([np.sum(phi**2, axis=(-1, -2)), np.sum(np.sum(W**2, axis=-1) ** 2, axis=-1), gram01], -1)


def _exact_moments(net, nodes=16, half_width=6.0, A=None):
    """Moments of :func:`_statistics` under the posterior of W (the conditional of W² given W¹ =
    :data:`W1_FIXED` when ``A`` = φ(W¹)/√N is given), by quadrature over H = W A on each orthant."""
    g, gw = np.polynomial.legendre.leggauss(nodes)
    x = np.concatenate([(g - 1) * half_width / 2, (g + 1) * half_width / 2])
    wx = np.concatenate([gw, gw]) * half_width / 2
    a, b, c, d = np.meshgrid(x, x, x, x, indexing="ij")
    H = np.stack([np.stack([a, b], -1), np.stack([c, d], -1)], -2)
    phi = np.maximum(H, 0.0)
    G = np.einsum("...ip,...iq->...pq", phi, phi)
    M = np.eye(2) + SPEC.sigma_a**2 * net.beta / net.width**2 * G
    det = M[..., 0, 0] * M[..., 1, 1] - M[..., 0, 1] * M[..., 1, 0]
    Q = np.eye(2) if A is None else np.linalg.inv(A.T @ A)  # prior precision of a row h_i (σ = 1)
    prior = -0.5 * np.einsum("...ip,pq,...iq->...", H, Q, H)
    logp = -np.log(det) - 0.5 * net.beta * (M[..., 0, 0] + M[..., 1, 1]) / det + prior
    w = np.exp(logp) * np.einsum("a,b,c,d->abcd", wx, wx, wx, wx)
    W = H if A is None else H @ np.linalg.inv(A)
    return (w[..., None] * _statistics(W, A)).reshape(-1, 3).sum(axis=0) / w.sum()


def _exact_draws(net, n, rng, A=None):
    """n independent draws of W from the tiny posterior: prior draws accepted with probability
    L(W)/max L, L = exp(−log det M − (β/2) tr M⁻¹) (Y = I), bounded per eigenvalue μ ≥ 1 of M
    by max_μ (−log μ − β/(2μ)); φ = relu(W A) (A = I: one layer)."""
    b = net.beta / 2
    mu = max(1.0, b)
    log_bound = 2 * (-math.log(mu) - b / mu)
    c = SPEC.sigma_a**2 * net.beta / net.width**2
    out = []
    while sum(len(o) for o in out) < n:
        W = rng.standard_normal((200000, 2, 2)) * SPEC.sigma_w
        phi = np.maximum(W if A is None else W @ A, 0.0)
        M = np.eye(2) + c * np.einsum("kip,kiq->kpq", phi, phi)
        det = M[:, 0, 0] * M[:, 1, 1] - M[:, 0, 1] * M[:, 1, 0]
        logL = -np.log(det) - b * (M[:, 0, 0] + M[:, 1, 1]) / det
        out.append(W[np.log(rng.random(len(W))) < logL - log_bound])
    return np.concatenate(out)[:n]


def _moved(net, draws, rng, moves=3):
    """Each draw after ``moves`` pair moves (of the last layer, W¹ = :data:`W1_FIXED`, for a deep
    ``net``); and the fraction of moves accepted."""
    out = np.empty_like(draws)
    accepted = 0
    for k, W in enumerate(draws):
        state = PairMarginal.last_layer(net, [W1_FIXED, W]) if isinstance(net, DeepNetwork) else PairMarginal(net, W)
        accepted += sum(state.step(rng) for _ in range(moves))
        out[k] = state.W
    return out, accepted / (moves * len(draws))


@pytest.mark.parametrize("layers", [1, 2])
def test_pair_moves_keep_the_exact_posterior(layers):
    """Independent exact draws (rejection from the prior) keep the quadrature moments (|z| < 4.5, z
    with the standard error of independent draws) after 3 pair moves each, of which most are
    accepted (so the check is not empty). 5000 draws (the moves are a Python loop per draw): the
    criterion is in units of their own standard error. ``layers`` = 2: the last layer W² of a deep network given
    W¹ = :data:`W1_FIXED` (module docstring)."""
    if layers == 1:
        net, A = Network(SPEC, width=2), None
    else:
        net = DeepNetwork(SPEC, width=2, layers=2)
        A = np.maximum(W1_FIXED, 0.0) / math.sqrt(2)
    exact = _exact_moments(net, A=A)
    rng = np.random.default_rng(0)
    draws = _exact_draws(net, 5000, rng, A=A)
    moved, rate = _moved(net, draws, rng)
    assert rate > 0.5, rate
    for sample in (draws, moved):
        stats = _statistics(sample, A)
        z = (stats.mean(axis=0) - exact) / (stats.std(axis=0) / math.sqrt(len(stats)))
        assert np.all(np.abs(z) < 4.5), z


@pytest.mark.slow
def test_chain_of_pair_moves_and_collapsed_sweeps_matches_the_quadrature():
    """4 chains × 6000 iterations of one collapsed MALA step and 4 pair moves: moments within
    4.5 MCSE of the quadrature."""
    net = Network(SPEC, width=2)
    exact = _exact_moments(net)
    out = []
    for c in range(4):
        rng = np.random.default_rng([1, c])
        theta = net.prior_sample(rng)
        draws = []
        for _ in range(6000):
            theta, _ = collapsed_sweep(rng, net, theta, step_size=0.4, n_mala=1)
            theta, _ = pair_rotation_moves(rng, net, theta, 4)
            draws.append(_statistics(net.unpack(theta)[0]))
        out.append(draws)
    out = np.array(out)
    z = (out.mean(axis=(0, 1)) - exact) / mcse(out)
    assert np.all(np.abs(z) < 4.5), z


def _pair_state(net, W, lower=()):
    """:class:`PairMarginal` of a one-layer ``net`` at W, or of the last layer of a deep ``net``
    with the lower layers ``lower``."""
    return PairMarginal.last_layer(net, [*lower, W]) if isinstance(net, DeepNetwork) else PairMarginal(net, W)


@pytest.mark.parametrize("layers", [1, 3])
def test_detailed_balance_of_one_move(layers):
    """π(W) s(i,j|W) g(θ) α(W→W') = π(W') s(i,j|W') g(−θ) α(W'→W) on random states of a width-5
    network, with α = min(1, ratio) from :meth:`PairMarginal.log_acceptance`; the reverse move
    (same pair, −θ) returns W exactly; linear φ accepts every move. ``layers`` = 3: the last layer
    of a deep network (σ_3 = 0.7), the lower layers fixed at a prior draw."""
    spec = ModelSpec(nonlinearity="relu", class_sizes=(3, 2), sigma_a=0.5, temperature=0.25)
    rng = np.random.default_rng(3)
    if layers == 1:
        net, lower, sw = Network(spec, width=5), (), 1.0
    else:
        net, sw = DeepNetwork(spec, width=5, layers=layers, sigmas=(1.0, 1.2, 0.7)), 0.7
        lower = net.unpack(net.prior_sample(rng))[0][:-1]
    for _ in range(20):
        W = net.unpack(net.prior_sample(rng))[0]
        W = (W if layers == 1 else W[-1]) * rng.uniform(0.5, 3.0)
        i, j = rng.choice(5, size=2, replace=False)
        angle = rng.uniform(-1.6, 1.6)
        fwd = _pair_state(net, W, lower)
        prop = fwd.propose(i, j, angle)
        W2 = W.copy()
        W2[[i, j]] = prop[1]
        rev = _pair_state(net, W2, lower)
        assert math.isclose(prop[0], rev.logp, rel_tol=1e-12, abs_tol=1e-10)
        back = rev.propose(i, j, -angle)
        assert np.allclose(back[1], W[[i, j]], atol=1e-12)
        left = fwd.logp + selection_logprob(fwd.sq_norms, i, j, sw) + min(0.0, fwd.log_acceptance(i, j, angle))
        right = rev.logp + selection_logprob(rev.sq_norms, i, j, sw) + min(0.0, rev.log_acceptance(i, j, -angle))
        assert math.isclose(left, right, rel_tol=0, abs_tol=1e-8 * (1 + abs(left)))
    lin_spec = ModelSpec(nonlinearity="linear", class_sizes=(3, 2), temperature=0.25)
    lin = Network(lin_spec, width=5) if layers == 1 else DeepNetwork(lin_spec, width=5, layers=layers)
    Ws = lin.unpack(lin.prior_sample(rng))[0]
    W = (Ws if layers == 1 else Ws[-1]).copy()
    W[1] *= 5.0
    st = _pair_state(lin, W, () if layers == 1 else Ws[:-1])
    assert abs(st.propose(1, 2, 0.7)[0] - st.logp) < 1e-9 * abs(st.logp)


def test_deep_pair_target_is_the_collapsed_deep_posterior():
    """For a deep network the pair moves' log density of W^L differs from the collapsed deep target
    :meth:`validation.deep_network.DeepNetwork.marginal_logdensity_and_grad` by a constant (the
    lower layers' prior) when only W^L changes; :func:`pair_rotation_moves` changes only W^L and a."""
    spec = ModelSpec(nonlinearity="relu", class_sizes=(3, 2), sigma_a=0.5, temperature=0.25)
    net = DeepNetwork(spec, width=6, layers=2, sigmas=(1.0, 0.8))
    rng = np.random.default_rng(5)
    theta = net.prior_sample(rng)
    Ws, _ = net.unpack(theta)
    diffs = []
    for scale in (1.0, 2.0, 0.5):
        W2 = Ws[1] * scale + 0.3 * rng.standard_normal(Ws[1].shape)
        full = net.marginal_logdensity_and_grad(np.concatenate([Ws[0].ravel(), W2.ravel()]))[0]
        diffs.append(full - PairMarginal.last_layer(net, [Ws[0], W2]).logp)
    assert np.ptp(diffs) < 1e-9 * (1 + abs(diffs[0]))
    new, k = pair_rotation_moves(rng, net, theta, 50)
    assert k > 0
    (W1n, W2n), an = net.unpack(new)
    assert np.array_equal(W1n, Ws[0]) and not np.array_equal(W2n, Ws[1])
    assert math.isclose(np.sum(W2n**2), np.sum(Ws[1] ** 2), rel_tol=1e-12)


def test_bad_outlier_moves_setting_is_refused(tmp_path, capsys):
    """``validate(outlier_moves=-1)`` raises naming the parameter; the CLI exits 2 naming the flag,
    before any work or file."""
    from codingschemes.cli.main import main
    from validation.report import validate

    try:
        validate(SPEC, widths=[4], sweeps=4, burn=1, outlier_moves=-1, progress=False)
    except ValueError as exc:
        assert "outlier_moves" in str(exc)
    else:
        raise AssertionError("outlier_moves=-1 was accepted")
    out = tmp_path / "out"
    assert main(["validate", "--outlier-moves", "-1", "--out", str(out), "--quiet", "--no-plot"]) == 2
    assert "--outlier-moves" in capsys.readouterr().err
    assert not out.exists()


def test_theory_population_places_the_condensate_outliers():
    """One outlier per condensate direction â_j with readout r â_j, r² = N λ_j / σ_1², whose
    contribution to f_c is λ_j (t_c·â_j)₊ â_j (THEORY §4) up to its O(1/√N) noise."""
    from theory.observables import Observables
    from validation.populations import TheoryState, theory_population

    spec = ModelSpec(nonlinearity="relu", class_sizes=(8, 4, 4), sigma_a=0.25, temperature=0.05)
    t = np.array([[1.4, -0.2, -0.2], [-0.3, 2.0, -0.2], [-0.3, -0.2, 2.0]])
    dirs = np.array([[0.99, -0.1, -0.1], [-0.15, 0.98, -0.1]])
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    mass = np.array([0.5, 0.4])
    obs = Observables(outputs=np.eye(3), readout_moment=np.eye(3) * 0.05, kernel_diagonal=np.ones(3),
                      kernel_blocks=np.eye(3))
    state = TheoryState(spec=spec, t=t, kind="gaussian", source="test", observables=obs,
                        covariance=np.eye(3) * 0.05, condensate=(dirs, mass))
    n = 4000
    pop = theory_population(state, n, np.random.default_rng(0))
    assert len(pop.outliers) == 2
    r = np.linalg.norm(pop.readouts[:, pop.outliers], axis=0)
    assert np.allclose(r, np.sqrt(n * mass) / spec.sigma_w)
    f_out = np.einsum("ri,ic->cr", pop.readouts[:, pop.outliers], pop.class_means[pop.outliers]) / n
    expected = np.einsum("j,jc,jr->cr", mass, np.maximum(dirs @ t.T, 0.0), dirs)
    assert np.max(np.abs(f_out - expected)) < 0.05


@pytest.mark.slow
def test_relu_paper_regime_passes_with_outlier_moves():
    """The paper's regime (ReLU, classes 32,16,16, σ_a = 1/8, T = 0.05, N = 200), random and theory
    starts (``init="both"``) with 20 pair moves per sweep: the report passes (R̂ rule included), and
    in both sets of chains the outliers are the condensate's: one per direction, one-class codes,
    and their share of each correct-class output within 0.03 of the condensate's."""
    from validation.report import validate

    spec = ModelSpec("relu", class_sizes=(32, 16, 16), sigma_a=0.125, temperature=0.05)
    rep = validate(spec, widths=[200], chains=4, sweeps=2000, burn=400, init="both", outlier_moves=20,
                   progress=False)
    assert rep["passed"], (rep["z_max"], rep["diagnostics"]["rhat_max"])
    theory_share = np.array(rep["theory"]["outlier_share"])
    for start in ("random", "theory"):
        out = rep["by_start"][start]["sampling"]["per_width"][0]["outliers"]
        assert set(out["code_fractions"]) == {"100", "010", "001"}
        assert abs(out["count"] - 3.0) < 0.1
        assert np.max(np.abs(np.array(out["share"]) - theory_share)) < 0.03
