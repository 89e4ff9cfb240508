"""The collapsed target log p(W | D) (readout integrated out) of validation.collapsed."""
import numpy as np
import pytest

from theory.spec import ModelSpec
from validation.collapsed import marginal_logdensity_and_grad
from validation.networks import Network


def _direct(net, W):
    """log ∫ p(Y | W, a) p(a) da + log p(W) from the Gaussian law of each output column,
    y_r ~ N(0, σ_a² N^{-2γ} φᵀφ + I/β)."""
    spec = net.spec
    phi = net.nonlinearity(net.preactivations(W))
    cov = spec.sigma_a**2 * phi.T @ phi / net.width ** (2 * net.gamma) + np.eye(spec.P) / net.beta
    _, logdet = np.linalg.slogdet(cov)
    Y = spec.targets()
    return sum(-0.5 * logdet - 0.5 * y @ np.linalg.solve(cov, y) for y in Y.T) - 0.5 * np.sum(W * W) / spec.sigma_w**2


@pytest.mark.parametrize("scaling", ["mean-field", "standard"])
@pytest.mark.parametrize("name", ["relu", "normcdf"])
def test_marginal_matches_gaussian_integral_and_gradient(name, scaling):
    spec = ModelSpec(nonlinearity=name, class_sizes=(3, 2, 2), temperature=0.1, sigma_a=0.8)
    net = Network(spec, width=7, scaling=scaling)
    rng = np.random.default_rng(3)
    W, _ = net.unpack(net.prior_sample(rng))
    W2 = W + 0.3 * rng.standard_normal(W.shape)
    lp, g = marginal_logdensity_and_grad(net, W)
    lp2, _ = marginal_logdensity_and_grad(net, W2)
    assert lp - lp2 == pytest.approx(_direct(net, W) - _direct(net, W2), rel=1e-10, abs=1e-9)
    E = rng.standard_normal(W.shape)
    eps = 1e-6
    fd = (marginal_logdensity_and_grad(net, W + eps * E)[0] - marginal_logdensity_and_grad(net, W - eps * E)[0]) / (2 * eps)
    assert np.sum(g * E) == pytest.approx(fd, rel=1e-6, abs=1e-6)
