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


def test_radial_rule_integrates_a_needle_profile_and_estimates_its_error():
    """The slices' radial rule (nested Clenshaw–Curtis panels on the smooth step and in log r beyond) against adaptive
    quadrature: the needle profile of docs/notes/split.md §2 (smoothstep cut times e^{−κr} with a power-law tail) and
    its second moment in r, at κ = 0.1 and 0.25. The rule is exact to 1e-6 relative, its embedded coarser rule is
    worse, and the difference of the two (the rule's error estimate) is at least the rule's true error."""
    from scipy.integrate import quad

    from theory.deep_needle_tail import radial_rule

    r_c, w = 3.0, 0.5
    rule = radial_rule(r_c, w)
    assert rule.radii[0] == r_c - w and np.all(np.diff(rule.radii) > 0) and len(rule.radii) == 57

    def step(r):
        t = np.clip(0.5 * ((r - r_c) / w + 1.0), 0.0, 1.0)
        return t * t * (3.0 - 2.0 * t)

    for kappa in (0.1, 0.25):
        for power in (0, 2):
            def g(r):
                return step(r) * r**power * np.exp(-kappa * r) / (1.0 + (r / 30.0) ** 2) ** 4
            exact = quad(g, r_c - w, r_c + w)[0] + quad(g, r_c + w, rule.radii[-1], limit=200)[0]
            fine, coarse = rule.weights @ g(rule.radii), rule.coarse @ g(rule.radii)
            assert abs(fine - exact) < 1e-6 * exact, (kappa, power, fine, exact)
            assert abs(fine - exact) <= abs(fine - coarse), (kappa, power)


def test_needle_orbits_are_exact_images_and_share_one_cross_section_rule():
    """Three axes permuted by a 2↔3 exchange of coordinates (plus a sign-free map of the rest), given with 1e-9
    tracking noise: the orbits are {0} (its own image) and {1, 2}; the returned axes are exact images; and a split
    of an integrand invariant under the exchange gives exactly equivariant averages (and the same log Z) with the
    maps, while without them the two image needles get independent cross-section rules and differ (both ends of
    every needle split: the rule alone misses their far parts)."""
    from theory.deep_needle_tail import needle_orbits, radial_rule

    Q = np.eye(4)[[0, 2, 1, 3]]
    base = np.array([[1.0, 0.0, 0.0, 0.2], [0.1, 1.0, 0.0, 0.3], [0.1, 0.0, 1.0, 0.3]])
    axes = base / np.linalg.norm(base, axis=1, keepdims=True)
    axes = axes + 1e-9 * np.random.default_rng(2).standard_normal(axes.shape)
    sym, orbits = needle_orbits(axes, [np.eye(4), Q])
    assert [(j, [k for k, _ in members]) for j, members in orbits] == [(0, [0]), (1, [1, 2])]
    np.testing.assert_array_equal(sym[2], Q @ sym[1])
    assert np.max(np.abs(Q @ sym[0] - sym[0])) < 1e-15 and np.max(np.abs(sym - axes)) < 1e-8

    covs = [0.5 * np.eye(4) + 30.0 * np.outer(a, a) for a in sym]

    def log_density(y):
        return logsumexp([-0.5 * np.sum(np.linalg.solve(np.linalg.cholesky(S), y.T) ** 2, 0)
                          - 0.5 * np.linalg.slogdet(2 * np.pi * S)[1] for S in covs], axis=0)

    y = 2.0 * norm.ppf(qmc.Sobol(4, scramble=True, seed=5).random(2**10))
    y = np.concatenate([y, y @ Q.T])  # the rule's nodes joined by their images, as the symmetric rule has them
    lw = log_density(y) + 0.5 * np.sum((y / 2.0) ** 2, 1) + 4 * np.log(2.0) + 2 * np.log(2 * np.pi) - np.log(len(y))
    rule = radial_rule(2.0, 0.5, far=60.0, n_step=4, n_tail=8)
    gaps = {}
    for maps in (None, [np.eye(4), Q]):
        sp = split_average(y, lw, log_density, _second_moment, np.concatenate([sym, -sym]), 2.0, rule, width=0.5,
                           n_points=2**7, seed=1, maps=maps)
        yy = sp.averages["yy"]
        gaps[maps is None] = np.max(np.abs(Q @ yy @ Q.T - yy)) / np.max(np.abs(yy))
        assert abs(sp.log_z - np.log(3.0)) < 0.05 and np.isfinite(sp.radial_error)
    assert gaps[False] < 1e-13 and gaps[True] > 1e-6
