"""The shared elliptical slice update leaves its target invariant (exact moments of a tilted Gaussian)."""
import numpy as np

from solvers.data.elliptical_slice import elliptical_slice_update


def _run(rng, Z, loglik, centre, scale, steps):
    ll = loglik(Z, np.arange(len(Z)))
    out = []
    for _ in range(steps):
        nu = scale * rng.standard_normal(Z.shape)
        Z, ll, _ = elliptical_slice_update(rng, Z, ll, centre, nu, loglik)
        out.append(Z)
    return np.array(out)


def test_linear_tilt_of_a_gaussian_is_the_shifted_gaussian():
    """N(0, I) e^{g·z} = N(g, I): mean g and unit variance, from the prior reference (plain ESS)
    and from a deliberately wrong reference N(1, 2²) with the ratio as likelihood (generalised ESS).
    2000 chains × 20 steps after 60 burn-in steps (from N(0, 3²I): the plain chains need ~50); the tolerance is 5 standard errors of the mean
    of 2000 independent chains (autocorrelation over the 20 kept steps is covered by using the
    per-chain means)."""
    g = np.array([0.7, -1.2])
    rng = np.random.default_rng(0)
    plain = lambda z, rows: z @ g  # noqa: E731
    mu, s = np.array([1.0, 1.0]), 2.0

    def ratio(z, rows):  # log N(z; 0, I) + g·z − log N(z; μ, s²I)
        return -0.5 * np.sum(z * z, 1) + z @ g + 0.5 * np.sum((z - mu) ** 2, 1) / s**2

    for loglik, centre, scale in ((plain, np.zeros(2), 1.0), (ratio, mu, s)):
        Z = rng.standard_normal((2000, 2)) * 3
        draws = _run(rng, Z, loglik, centre, scale, 80)[60:]
        chain_means = draws.mean(axis=0)
        se = chain_means.std(axis=0, ddof=1) / np.sqrt(len(chain_means))
        assert np.all(np.abs(chain_means.mean(axis=0) - g) < 5 * se + 1e-3)
        var = draws.reshape(-1, 2).var(axis=0)
        assert np.all(np.abs(var - 1.0) < 0.05)
