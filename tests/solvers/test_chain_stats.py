"""solvers.chain_stats (arviz-stats): R̂, ESS and MCSE on chains with known answers."""
import numpy as np
import pytest

from solvers.chain_stats import ess, mcse, rhat


def _ar1(rng, chains, n, rho, dims=()):
    """AR(1) chains x_k = ρ x_{k-1} + √(1−ρ²) ε_k from stationarity: integrated autocorrelation
    time τ = (1 + ρ)/(1 − ρ), so ESS ≈ chains·n/τ and MCSE ≈ √(τ/(chains·n))."""
    x = np.empty((chains, n, *dims))
    x[:, 0] = rng.standard_normal((chains, *dims))
    eps = rng.standard_normal((chains, n, *dims))
    for k in range(1, n):
        x[:, k] = rho * x[:, k - 1] + np.sqrt(1 - rho**2) * eps[:, k]
    return x


def test_independent_chains_pass_and_shapes_follow_trailing_axes():
    x = np.random.default_rng(0).standard_normal((8, 500, 3))
    r, e, s = rhat(x), ess(x), mcse(x)
    assert r.shape == e.shape == s.shape == (3,)
    assert np.all(r < 1.01)
    assert np.all(np.abs(e / 4000 - 1) < 0.2)
    assert np.allclose(s, 1 / np.sqrt(4000), rtol=0.15)
    assert isinstance(rhat(x[..., 0]), float)


def test_autocorrelated_chains_give_the_ar1_effective_size():
    rho = 0.8
    x = _ar1(np.random.default_rng(1), 8, 4000, rho)
    tau = (1 + rho) / (1 - rho)
    assert ess(x) == pytest.approx(x.size / tau, rel=0.25)
    assert mcse(x) == pytest.approx(np.sqrt(tau / x.size), rel=0.15)


def test_disagreeing_chains_fail_and_constant_draws_pass():
    x = np.random.default_rng(2).standard_normal((4, 200))
    x[0] += 2.0
    assert rhat(x) > 1.1
    assert rhat(np.ones((4, 10))) == 1.0
    with pytest.raises(ValueError, match="chains, draws"):
        rhat(np.ones((4, 3)))


def test_tail_ess():
    x = np.random.default_rng(3).standard_normal((8, 500))
    assert 0.5 * x.size < ess(x, "tail") < 1.5 * x.size
    with pytest.raises(ValueError, match="bulk"):
        ess(x, "median")
