"""Chain statistics (validation.diagnostics, arviz-stats) on synthetic chains with known answers."""
import numpy as np
import pytest

from validation.diagnostics import RHAT_TARGET, ess, ess_tail, mcse, rhat_rank, rhat_rule, split_rhat


def _ar1(rng, rho, chains, n, dims=1):
    """AR(1) chains x_t = ρ x_{t−1} + √(1−ρ²) ξ_t started in equilibrium (unit variance)."""
    x = np.empty((chains, n, dims))
    x[:, 0] = rng.standard_normal((chains, dims))
    noise = np.sqrt(1 - rho**2) * rng.standard_normal((chains, n, dims))
    for t in range(1, n):
        x[:, t] = rho * x[:, t - 1] + noise[:, t]
    return x


def test_iid_chains_rhat_near_one_and_ess_near_draws():
    rng = np.random.default_rng(1)
    draws = rng.standard_normal((4, 1000, 5))
    r = rhat_rank(draws)
    assert r.shape == (5,)
    assert np.all(np.abs(r - 1.0) < 0.01) and np.all(r < RHAT_TARGET)
    n = draws.shape[0] * draws.shape[1]
    assert np.all(np.abs(ess(draws) / n - 1.0) < 0.15)
    assert np.all(np.abs(ess_tail(draws) / n - 1.0) < 0.25)
    assert split_rhat is rhat_rank


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_ar1_ess_matches_autocorrelation_time(rho):
    rng = np.random.default_rng(2)
    chains, n = 4, 5000
    draws = _ar1(rng, rho, chains, n, dims=4)
    expected = chains * n * (1 - rho) / (1 + rho)
    assert np.all(np.abs(ess(draws) / expected - 1.0) < 0.15), (ess(draws), expected)
    assert np.all(rhat_rank(draws) < 1.01)


def test_shifted_chain_means_give_large_rhat():
    rng = np.random.default_rng(3)
    draws = rng.standard_normal((4, 500, 3))
    draws[0] += 1.0  # one chain stuck elsewhere
    draws[1] -= 1.0
    assert np.all(rhat_rank(draws) > 1.1)


def test_mcse_matches_spread_of_replica_means():
    rng = np.random.default_rng(4)
    rho, replicas = 0.7, 400
    means, errors = [], []
    for _ in range(replicas):
        d = _ar1(rng, rho, 4, 400)
        means.append(d.mean())
        errors.append(mcse(d)[0])
    spread = np.std(means, ddof=1)
    assert abs(np.mean(errors) / spread - 1.0) < 0.15, (np.mean(errors), spread)


def test_constant_observable_is_converged():
    rng = np.random.default_rng(5)
    draws = np.stack([np.ones((3, 50)), rng.standard_normal((3, 50))], axis=-1)
    assert rhat_rank(draws)[0] == 1.0 and mcse(draws)[0] == 0.0 and ess(draws)[0] == 150


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        mcse(np.zeros((2, 3)))
    with pytest.raises(ValueError):
        rhat_rank(np.zeros((1, 100)))


def test_rhat_rule_states_threshold_and_reason():
    rule = rhat_rule(1.005)
    assert rule["met"] and rule["threshold"] == RHAT_TARGET and rule["why"] == "the target rule"
    weak = rhat_rule(1.05, 1.1, "measured")
    assert weak["met"] and weak["threshold"] == 1.1 and weak["target"] == RHAT_TARGET
    assert not rhat_rule(1.2, 1.1, "measured")["met"]
    with pytest.raises(ValueError):
        rhat_rule(1.05, 1.1)  # a weaker threshold must say why
