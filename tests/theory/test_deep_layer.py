"""The log density λ(y) of :func:`theory.deep_layer.log_integrand` is the density that
:func:`theory.deep_layer.layer_integral` integrates, in the same y-coordinates (u = B v, B of
:func:`theory.deep_fields.tilt_factor`), also for a hidden tilt k̃ with off-diagonal blocks: the mode
search places mixture components with λ, so a rotation between the two would place them elsewhere."""
import numpy as np
import pytest
from scipy.special import logsumexp

from theory.deep_layer import layer_integral, log_integrand
from theory.deep_rules import Proposal, sobol_rule
from theory.deep_tilted import OneD


@pytest.mark.parametrize("name, scale", [("normcdf", 0.3), ("relu", 0.03)])  # ReLU: inside its domain
def test_log_integrand_weights_give_the_integral_s_tilted_mean(name, scale):
    oned = OneD.for_nonlinearity(name, 24)
    sizes = np.array([4.0, 2.0, 2.0])
    kt = scale * np.array([[1.0, 0.6, 0.2], [0.6, 0.8, -0.3], [0.2, -0.3, 0.5]])
    dt = scale * np.array([0.15, 0.06, 0.1])
    R, delta = np.linalg.cholesky(np.eye(3) * 0.3 + 0.1), np.full(3, 0.2)
    rule = sobol_rule(6, 10, 4, seed=3)
    res = layer_integral(oned, sizes, 1.0, rule, Proposal(np.zeros(6), np.eye(6)), R_in=R, delta_in=delta,
                         kt=kt, dt=dt)
    y = rule.x  # a N(0, I) proposal maps the nodes to themselves
    lw = log_integrand(oned, sizes, 1.0, y, R_in=R, delta_in=delta, kt=kt, dt=dt) + 0.5 * np.sum(y * y, axis=1)
    p = np.exp(lw - logsumexp(lw))
    assert np.allclose(p @ y, res.y_mean, rtol=0, atol=1e-10)
    # the eigen-factor of k̃ (a rotation of v) gives another mean: the check can fail
    w, V = np.linalg.eigh(kt)
    assert not np.allclose(V * np.sqrt(w), np.linalg.cholesky(kt), atol=1e-3)


def _near_boundary_readout():
    """A ReLU readout layer (classes 4,2,2) with q = 0.938 on its one-class maximiser 100: a needle of length
    ~(1 − q)^{−1/2} ≈ 4, and a proposal moment-matched to it."""
    from theory.deep_condensate import condensate_directions
    oned = OneD.for_nonlinearity("relu")
    sizes, R, delta = np.array([4.0, 2.0, 2.0]), np.linalg.cholesky(0.5 * np.eye(3) + 0.2), np.full(3, 0.3)
    kw = dict(R_in=R, delta_in=delta, t=1.15 * (np.eye(3) - 1.0 / 3.0), sigma_a=0.3)
    dom = condensate_directions(kw["t"], 0.3, R, delta, 1.0, sizes, n_random=32)
    assert 0.9 < dom.q[0] < 1.0 and dom.codes[0] == (0,)
    prop = Proposal.standard(6)
    for _ in range(4):
        r = layer_integral(oned, sizes, 1.0, sobol_rule(6, 12, 4, seed=9), prop, **kw)
        prop = Proposal.from_moments(r.y_mean, r.y_cov, 1.5)
    return oned, sizes, kw, prop, dom.directions[:1]


def test_needle_split_of_the_readout_is_the_split_identity_and_agrees_with_a_fine_rule():
    """``needles``: the wired result is theory.deep_needle_tail.split_average of the layer's own integrands (written
    out here from the 1-D moments), and over scrambles it agrees with the plain rule at 16 × its points on a proposal
    three times wider (the moment-matched one under-covers the needle: f_11 0.737 against 0.742–0.747 wider)."""
    from theory.deep_needle_tail import Needles, needle_radii, split_average
    from theory.deep_tilted import tilted_moments
    oned, sizes, kw, prop, axes = _near_boundary_readout()
    R, delta, t, sa = kw["R_in"], kw["delta_in"], kw["t"], kw["sigma_a"]
    s = np.sqrt(delta)
    radii = needle_radii(2.0, near=8.0, far=60.0, n_near=32, n_far=16)
    needles = [Needles(axes, 2.0, radii=radii, n_points=2**9, seed=10 * i) for i in range(3)]
    split = [layer_integral(oned, sizes, 1.0, sobol_rule(6, 11, 1, seed=i), prop, needles=nd, **kw)
             for i, nd in enumerate(needles)]

    def observe(y):
        _, m1, _, ez, _ = tilted_moments(oned, y[:, 3:] @ R.T, y[:, :3] @ (sa * t).T, s, np.zeros(3))
        a, W = sa * y[:, :3], ez / s
        return dict(f=m1[:, :, None] * a[:, None, :], U=a[:, :, None] * a[:, None, :],
                    k=m1[:, :, None] * m1[:, None, :], kt=W[:, :, None] * W[:, None, :])

    rule = sobol_rule(6, 11, 1, seed=0)
    y, logw, base = prop.map(rule)
    lw = log_integrand(oned, sizes, 1.0, y, **kw) + 0.5 * np.sum(y * y, 1) + logw + base
    direct = split_average(y, lw, lambda z: log_integrand(oned, sizes, 1.0, z, **kw) - 3.0 * np.log(2.0 * np.pi),
                           observe, axes, 2.0, radii, n_points=2**9, seed=0)
    a = direct.averages
    for got, want in ((split[0].outputs, a["f"]), (split[0].readout_moment, a["U"]), (split[0].k, a["k"]),
                      (split[0].kt_in, a["kt"]), (split[0].log_z, direct.log_z)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert direct.needle_weight[0] > 0.05  # the slices carry a real part of the measure

    wide = Proposal(prop.mean, np.sqrt(3.0) * prop.chol)
    fine = [layer_integral(oned, sizes, 1.0, sobol_rule(6, 15, 1, seed=20 + i), wide, **kw) for i in range(3)]
    for name in ("outputs", "readout_moment", "k", "kt_in", "log_z"):
        A, B = (np.array([getattr(r, name) for r in rs]) for rs in (split, fine))
        se = np.sqrt((A.var(0, ddof=1) + B.var(0, ddof=1)) / 3.0)
        assert np.all(np.abs(A.mean(0) - B.mean(0)) <= 4.0 * se + 1e-3 * np.abs(B.mean(0)).max()), name
