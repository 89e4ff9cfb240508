"""Coding-scheme analysis (validation.coding): measures, label criterion, theory and sampled labels, drift."""
import math

import numpy as np
import pytest

from theory.spec import ModelSpec
from validation.coding import (ROBUST_BAND, analyse_population, code_robustness, drift_curve, fractions_of,
                               neuron_code_strings, output_contributions, participation_ratio, pattern_drift,
                               run_chain, theory_population, theory_state, top_k_share)

PAPER = dict(sigma_w=1.0, sigma_a=0.125, temperature=0.02, class_sizes=(32, 16, 16))
EXPECTED = {"linear": "analog", "normcdf": "redundant", "relu": "sparse"}


# ----------------------------------------------------------------------------- measures on hand-made populations
def test_codes_unsigned_and_signed():
    x = np.array([[1.0, 0.6, 0.1], [0.2, 0.0, 0.9], [0.0, 0.0, 0.0]])
    assert list(neuron_code_strings(x)) == ["110", "001", "000"]
    y = np.array([[1.0, -0.6, 0.1], [-0.2, 0.0, 0.9]])
    assert list(neuron_code_strings(y)) == ["+-0", "00+"]
    assert fractions_of(["110", "001", "110", "110"]) == {"110": 0.75, "001": 0.25}


def test_contributions_top_share_and_participation():
    a = np.array([[1.0, 2.0, 0.0, 0.0], [0.0, 0.0, 3.0, 1.0]])
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0], [0.0, 1.0]])
    c = output_contributions(a, x, class_sizes=(1, 3))
    np.testing.assert_allclose(c, [0.25, 0.5, 4.5, 0.75])
    assert top_k_share(c, 1) == pytest.approx(4.5 / 6.0)
    assert participation_ratio(c) == pytest.approx(6.0**2 / (4 * np.sum(c * c)))
    assert participation_ratio(np.ones(10)) == pytest.approx(1.0)


def test_code_robustness_band():
    lo, hi = ROBUST_BAND
    x = np.array([[1.0, 0.1], [1.0, 0.5], [1.0, 0.9], [0.2, 1.0], [1.0, hi - 1e-9], [1.0, lo]])
    assert code_robustness(x) == pytest.approx(4 / 6)  # 0.5 and hi − ε lie in the band (1/3, 2/3]
    assert lo < 0.5 < hi


def test_labels_of_synthetic_populations():
    rng = np.random.default_rng(0)
    N, m = 600, 3
    # analog: Gaussian readouts, activations proportional to them (linear network)
    a = rng.standard_normal((m, N))
    an = analyse_population(a, a.T + 0.05 * rng.standard_normal((N, m)))
    assert an.label == "analog", an.reason
    # the χ²₁ bound of the docstring: the top 5 % of a Gaussian population carry about 0.28 or less
    assert an.top_k_share < 0.3
    # redundant: three groups of near-binary activations (codes 110, 101, 011)
    codes = np.array([[1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=float)
    g = rng.integers(0, 3, N)
    x = 0.05 + 0.9 * codes[g] + 0.02 * rng.standard_normal((N, m))
    an = analyse_population(codes[g].T + 0.1 * rng.standard_normal((m, N)), x)
    assert an.label == "redundant", an.reason
    assert set(an.code_fractions) == {"110", "101", "011"}
    # one shared code (all neurons alike) is not redundant but analog
    an = analyse_population(np.ones((m, N)), np.ones((N, m)) + 0.01 * rng.standard_normal((N, m)))
    assert an.label == "analog"
    # sparse: a dense Gaussian bulk plus 3 neurons with readouts and activations O(√N)
    a = 0.3 * rng.standard_normal((m, N))
    x = np.abs(0.3 * rng.standard_normal((N, m)))
    for j in range(3):
        a[:, j] = 0.0
        a[j, j] = math.sqrt(N)
        x[j] = 0.0
        x[j, j] = math.sqrt(N)
    an = analyse_population(a, x)
    assert an.label == "sparse", an.reason
    assert an.effective_number < 10


def test_labels_are_scale_free():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 300))
    x = np.abs(rng.standard_normal((300, 3)))
    base = analyse_population(a, x)
    scaled = analyse_population(7.0 * a, 0.01 * x)
    assert base.label == scaled.label
    assert base.top_k_share == pytest.approx(scaled.top_k_share)
    assert base.code_robustness == pytest.approx(scaled.code_robustness)


def test_bad_input_raises():
    with pytest.raises(ValueError):
        analyse_population(np.ones((3, 4)), np.ones((5, 3)))
    with pytest.raises(ValueError):
        analyse_population(np.ones((3, 4)), np.ones((4, 3)), threshold=1.5)


# ----------------------------------------------------------------------------- drift measure
def test_pattern_drift_limits_and_shuffled_baseline():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((200, 3)) + np.array([1.0, 0.0, 2.0])
    assert pattern_drift(x, x) == 0.0
    y = rng.standard_normal((200, 3)) + np.array([1.0, 0.0, 2.0])
    # the closed-form baseline is the average over all pairings (i, j)
    brute = np.mean(np.sum((y[None, :, :] - x[:, None, :]) ** 2, axis=2))
    own = np.mean(np.sum((y - x) ** 2, axis=1))
    assert pattern_drift(x, y) == pytest.approx(own / brute)
    # independent redraws are as different as reshuffled neurons; a permutation too
    assert pattern_drift(x, y) == pytest.approx(1.0, abs=0.15)
    assert pattern_drift(x, x[rng.permutation(200)]) == pytest.approx(1.0, abs=0.15)
    # a small change is a small drift
    assert pattern_drift(x, x + 0.05 * rng.standard_normal(x.shape)) < 0.01
    out = drift_curve(np.stack([x, x, y]), [1, 2, 5])
    assert out["drift"][0] == pytest.approx(0.5 * pattern_drift(x, y))
    assert math.isnan(out["drift"][2])


# ----------------------------------------------------------------------------- theory and sampling
def test_theory_labels_in_the_paper_regime():
    """T = 0.02, classes 32,16,16, σ_a² = 1/64: linear analog, normcdf redundant, relu sparse (theory
    populations of 2000 neurons; normcdf and relu from the large-P solution with Laplace widths)."""
    for nl, want in EXPECTED.items():
        spec = ModelSpec(nonlinearity=nl, **PAPER)
        state = theory_state(spec, source="large-p" if nl != "linear" else "auto")
        for N in (200, 2000):
            an = theory_population(state, N, np.random.default_rng(3)).analyse()
            assert an.label == want, (nl, N, an.summary())
    # without the explicit outliers the ReLU population is dense: the label rests on the condensate
    state = theory_state(ModelSpec(nonlinearity="relu", **PAPER), source="large-p")
    pop = theory_population(state, 2000, np.random.default_rng(3), outliers=False)
    assert pop.analyse().label != "sparse"


def test_theory_population_reproduces_outputs():
    """The population's f = N^{-1} Σ_i a_i φ_i matches the theory's f (the outliers carry the ReLU part)."""
    spec = ModelSpec(nonlinearity="relu", **PAPER)
    state = theory_state(spec, source="large-p")
    pop = theory_population(state, 4000, np.random.default_rng(4))
    labels = np.repeat(np.arange(3), spec.class_sizes)
    f = np.array([pop.outputs()[labels == c].mean(axis=0) for c in range(3)])
    np.testing.assert_allclose(np.diag(f), np.diag(state.observables.outputs), atol=0.05)
    assert len(pop.outliers) == 3


def test_run_chain_smoke():
    spec = ModelSpec(nonlinearity="relu", sigma_w=1.0, sigma_a=0.25, temperature=0.1, class_sizes=(8, 4, 4))
    ch = run_chain(spec, 20, 12, 4, snapshot_every=2)
    assert len(ch.class_means) == 4 and ch.class_means[0].shape == (20, 3)
    assert ch.population().analyse().n_neurons == 20
    assert ch.mean_output().shape == (16, 3)


@pytest.mark.slow
def test_theory_labels_from_the_finite_p_solver():
    """As above with the exact finite-P solver where it converges (ReLU: 1–3 minutes)."""
    for nl, want in EXPECTED.items():
        state = theory_state(ModelSpec(nonlinearity=nl, **PAPER), source="auto")
        an = theory_population(state, 1000, np.random.default_rng(5)).analyse()
        assert an.label == want, (nl, state.source, an.summary())


@pytest.mark.slow
def test_sampled_labels_in_the_paper_regime():
    """Networks of N = 200 sampled from random (prior) starts reach the theory's labels."""
    for nl, want in EXPECTED.items():
        ch = run_chain(ModelSpec(nonlinearity=nl, **PAPER), 200, 2500, 300, seed=0, snapshot_every=50)
        labels = [analyse_population(a, x, PAPER["class_sizes"]).label for a, x in zip(ch.readouts[-10:],
                                                                                      ch.class_means[-10:])]
        assert labels.count(want) >= 8, (nl, labels, ch.population().analyse().summary())


@pytest.mark.slow
def test_drift_larger_for_linear_than_relu():
    """From the theory's population (equilibrium), linear neurons change their class-mean patterns
    over 300 sweeps far more than ReLU ones."""
    drift = {}
    for nl in ("linear", "relu"):
        spec = ModelSpec(nonlinearity=nl, **PAPER)
        state = theory_state(spec, source="large-p" if nl != "linear" else "auto")
        ch = run_chain(spec, 200, 500, 100, seed=1, start="theory", theory=state, snapshot_every=10)
        drift[nl] = drift_curve(ch.class_means, [30], ch.readouts[0])["drift"][0]
    assert drift["linear"] > 3 * drift["relu"], drift
