"""theory.deep_needle_tail: the rule / slice split of an integral with needles is exact (closed form, independent
of the cut r_c) and its partition weights are a partition of the half-spaces' union."""
import numpy as np
from scipy.special import logsumexp
from scipy.stats import norm, qmc

from theory.deep_needle_tail import half_space_weights, split_average

D = 3
AXES = np.array([[1.0, 0.0, 0.0], [0.5, np.sqrt(0.75), 0.0]])  # two needles 60° apart: their half-spaces overlap
COVS = [0.5 * np.eye(D) + 60.0 * np.outer(a, a) for a in AXES]   # each a Gaussian of length sd ≈ 7.8 along its axis


def _log_density(y):
    """Two normalised Gaussians N(0, Σ_j): total mass 2, second moment (Σ_1 + Σ_2)/2."""
    parts = []
    for S in COVS:
        z = np.linalg.solve(np.linalg.cholesky(S), y.T).T
        parts.append(-0.5 * np.sum(z * z, 1) - 0.5 * np.linalg.slogdet(2 * np.pi * S)[1])
    return np.logaddexp(*parts)


def _second_moment(y):
    return {"yy": y[:, :, None] * y[:, None, :]}


def _rule(seed, log2n=12, scale=2.0):
    """Sobol' importance nodes on N(0, scale² I): too narrow for the needles, as a bulk rule is."""
    y = scale * norm.ppf(qmc.Sobol(D, scramble=True, seed=seed).random(2**log2n))
    logq = -0.5 * np.sum((y / scale) ** 2, 1) - D * np.log(scale) - 0.5 * D * np.log(2 * np.pi)
    return y, _log_density(y) - logq - log2n * np.log(2.0)


def test_partition_weights_cover_the_union_once():
    y = np.random.default_rng(0).normal(scale=4.0, size=(2000, D))
    axes = np.concatenate([AXES, -AXES])
    for width in (0.0, 0.5):
        chi = half_space_weights(y, axes, 2.0, width)
        assert np.all(chi >= 0.0) and np.all(chi.sum(1) <= 1.0 + 1e-12)
        inside = (y @ axes.T >= 2.0 + width).any(1)
        if width == 0.0:
            np.testing.assert_array_equal(chi.sum(1) == 1.0, inside)
        far = (y @ axes.T).max(1) > 2.0 + width + 30 * width  # deep inside, the soft assignment is one needle
        assert np.all(chi[far].sum(1) > 1.0 - 1e-6)


def test_split_is_exact_and_independent_of_the_cut():
    axes = np.concatenate([AXES, -AXES])
    exact = 0.5 * (COVS[0] + COVS[1])
    y, lw = _rule(1)
    plain = np.exp(lw - logsumexp(lw)) @ _second_moment(y)["yy"].reshape(len(y), -1)
    results = []
    for r_c, width in ((2.0, 0.0), (3.0, 0.0), (3.0, 0.5)):
        radii = r_c - width + np.concatenate([np.linspace(0.0, 10.0, 61)[:-1], np.geomspace(10.0, 80.0, 20)])
        sp = split_average(y, lw, _log_density, _second_moment, axes, r_c, radii, width=width, n_points=2**10, seed=3)
        assert abs(sp.log_z - np.log(2.0)) < 0.005, (r_c, width, sp.log_z)
        np.testing.assert_allclose(sp.averages["yy"], exact, atol=0.005 * exact.max())
        assert 0.0 < sp.slice_ess <= 1.0 and np.all(sp.needle_weight > 0.1)
        results.append(sp.averages["yy"])
    np.testing.assert_allclose(results[0], results[1], atol=0.005 * exact.max())
    np.testing.assert_allclose(results[1], results[2], atol=0.005 * exact.max())
    # the plain rule on the same nodes misses the needles' far parts
    assert np.abs(plain.reshape(D, D) - exact).max() > 5 * np.abs(results[1] - exact).max()
