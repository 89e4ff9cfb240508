"""Samplers on Gaussian targets with known moments: |mean − truth| / MCSE over several chains."""
import numpy as np
import pytest

from theory.spec import ModelSpec
from validation.diagnostics import mcse
from validation.networks import Network
from validation.samplers import hmc_step, mala_init, mala_step, run_chains, ula_step

MU = np.array([1.0, -2.0, 0.5, 0.0])
COV = np.array([[1.0, 0.6, 0.0, 0.0], [0.6, 1.0, 0.0, 0.0], [0.0, 0.0, 0.04, 0.0], [0.0, 0.0, 0.0, 9.0]])
PREC = np.linalg.inv(COV)


def gaussian(x):
    d = x - MU
    return -0.5 * float(d @ PREC @ d), -PREC @ d


@pytest.mark.parametrize("step, kwargs", [(mala_step, {}), (hmc_step, {"n_leapfrog": 8})])
def test_exact_samplers_match_gaussian_moments(step, kwargs):
    rng = np.random.default_rng(42)
    starts = rng.standard_normal((4, 4)) * 3
    draws, rates, _ = run_chains(rng, starts, gaussian, step=step, step_size=0.1, n_warmup=500,
                                 n_samples=3000, inv_mass=np.diag(COV), progress=False,
                                 observable=lambda x: np.concatenate([x, (x - MU) ** 2]), **kwargs)
    assert np.all(rates > 0.3)
    means = draws.mean(axis=(0, 1))
    z = np.abs(means - np.concatenate([MU, np.diag(COV)])) / mcse(draws)
    assert np.max(z) < 4.5, z


def test_ula_mean_and_variance_on_a_gaussian():
    """For a Gaussian target ULA's stationary mean is exact and, with M = Σ for an uncorrelated
    coordinate, its variance is σ²/(1 − ε²/4) (the O(ε²) bias, checked exactly)."""
    rng = np.random.default_rng(7)
    eps = 0.5
    draws, _, _ = run_chains(rng, np.tile(MU, (4, 1)), gaussian, step=ula_step, step_size=eps, n_warmup=200,
                             n_samples=6000, inv_mass=np.diag(COV), progress=False,
                             observable=lambda x: np.concatenate([x, (x - MU) ** 2]))
    means = draws.mean(axis=(0, 1))
    z = np.abs(means[:4] - MU) / mcse(draws)[:4]
    assert np.max(z) < 4.5, z
    var_expected = COV[3, 3] / (1 - eps**2 / 4)  # coordinate 3 is uncorrelated
    assert abs(means[7] - var_expected) / mcse(draws)[7] < 4.5


def test_bad_sampler_settings_raise():
    rng = np.random.default_rng(0)
    state = mala_init(MU, gaussian)
    with pytest.raises(ValueError, match="step_size"):
        mala_step(rng, state, gaussian, 0.0)
    with pytest.raises(ValueError, match="n_samples"):
        run_chains(rng, MU, gaussian, n_samples=0, progress=False)
    with pytest.raises(ValueError, match="thin"):
        run_chains(rng, MU, gaussian, n_samples=10, thin=20, progress=False)
    with pytest.raises(ValueError, match="initial position"):
        mala_init(np.array([np.nan, 0, 0, 0]), gaussian)


@pytest.mark.parametrize("nl", ["linear", "relu", "normcdf"])
def test_network_gradient_matches_finite_differences(nl):
    net = Network(ModelSpec(nl, class_sizes=(4, 2, 2), temperature=0.1), width=7)
    theta = net.prior_sample(np.random.default_rng(0))
    _, grad = net.logdensity_and_grad(theta)
    eps = 1e-6
    fd = np.array([(net.logdensity_and_grad(theta + eps * e)[0] - net.logdensity_and_grad(theta - eps * e)[0])
                   / (2 * eps) for e in np.eye(net.dim)])
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-6 * np.abs(fd).max())


def test_network_rejects_bad_settings():
    with pytest.raises(Exception, match="width"):
        Network(ModelSpec("relu"), width=0)
    with pytest.raises(Exception, match="temperature"):
        Network(ModelSpec("relu", temperature=0.0), width=10)


def test_neuron_swap_proposal_density_is_normalised_in_h():
    """The swap proposal's h-part is a normalised density: for one input per class and fixed a,
    ∫ exp(log q(a, h) − log t(a)) dh = 1 (checked by quadrature); a swap step runs and keeps θ finite."""
    from solvers.solve import solve
    from validation.theory_init import NeuronProposal, neuron_swap

    spec = ModelSpec("normcdf", class_sizes=(1, 1), temperature=0.5)
    prop = NeuronProposal(solve(spec))
    a = np.array([0.7, -0.4])
    h = np.linspace(-12, 12, 801)
    H0, H1 = np.meshgrid(h, h, indexing="ij")
    z = np.linalg.solve(prop.L, a - prop.mean)
    log_t = -0.5 * (5.0 + 2) * np.log1p(z @ z / 5.0)
    vals = np.array([[prop.log_density(a, np.array([x, y])) for y in h[::8]] for x in h[::8]]) - log_t
    integral = np.exp(vals).sum() * (h[8] - h[0]) ** 2 / (2 * np.pi)  # the N(h; 0, 1) constants
    assert abs(integral - 1.0) < 1e-3
    net = Network(spec, width=5)
    theta, _ = neuron_swap(np.random.default_rng(0), net, net.prior_sample(np.random.default_rng(1)), prop)
    assert np.all(np.isfinite(theta))
