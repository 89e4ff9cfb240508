"""The lazy (NNGP) baseline of THEORY §6: closed-form kernels, GP posterior, lazy sampling."""
import numpy as np
import pytest

from solvers.solve import solve_lazy
from theory.gp import _quadrature, feature_kernel, gp_posterior
from theory.nonlinearities import get_nonlinearity
from theory.spec import ModelSpec, SpecError

C = np.array([[1.3, 0.4, -0.2], [0.4, 0.7, 0.1], [-0.2, 0.1, 2.0]])


@pytest.mark.parametrize("name", ["erf", "normcdf"])
def test_arcsine_kernels_match_quadrature(name):
    K, err = feature_kernel(name, C)
    d = np.diag(C)
    quad = _quadrature(name, np.broadcast_to(d[:, None], C.shape), np.broadcast_to(d[None, :], C.shape), C, 96)
    assert err == 0.0
    assert np.max(np.abs(K - quad)) < 1e-10


@pytest.mark.parametrize("name", ["linear", "relu", "tanh"])
def test_kernels_match_monte_carlo(name):
    rng = np.random.default_rng(1)
    n = 400_000
    h = np.linalg.cholesky(C) @ rng.standard_normal((3, n))
    p = get_nonlinearity(name)(h)
    prod = p[:, None, :] * p[None, :, :]
    mc, se = prod.mean(axis=2), prod.std(axis=2) / np.sqrt(n)
    K, err = feature_kernel(name, C)
    assert np.all(np.abs(K - mc) < 5 * se + err)
    if name == "tanh":  # the reported error bounds the actual error (against order 256)
        d = np.diag(C)
        ref = _quadrature(name, np.broadcast_to(d[:, None], C.shape), np.broadcast_to(d[None, :], C.shape), C, 256)
        assert 0 < np.max(np.abs(K - ref)) <= err < 1e-4


def test_relu_kernel_limits():
    """Arc-cosine kernel: E[relu(h)²] = c/2 on the diagonal, E[relu(u)]E[relu(v)] = √(c c')/(2π) at ρ = 0."""
    D = np.array([[2.0, 0.0], [0.0, 0.5]])
    K, _ = feature_kernel("relu", D)
    assert K[0, 0] == pytest.approx(1.0, abs=1e-14)
    assert K[0, 1] == pytest.approx(1.0 / (2 * np.pi), abs=1e-14)


def test_gp_posterior_identities():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 5))
    K = X @ X.T / 5  # rank 5: singular without noise
    Y = np.eye(3)[rng.integers(0, 3, 12)]
    post = gp_posterior(K, Y, 0.1)
    assert post.jitter == 0.0
    assert np.allclose(post.outputs + 0.1 * post.t, Y, atol=1e-12)
    mean, var = post.predict(K[:4], np.diag(K)[:4])
    assert np.allclose(mean, post.outputs[:4])
    assert np.all(var >= -1e-12)
    sing = gp_posterior(K, Y, 0.0)
    assert sing.jitter > 0.0  # reported, not hidden
    with pytest.raises(SpecError, match="temperature"):
        gp_posterior(K, Y, -1.0)


def test_lazy_linear_closed_form():
    """Linear, orthogonal data: K_GP = σ_a²σ_1² I, so f_cc = s/(s + T), f_cd = 0 and U = σ_a² I."""
    spec = ModelSpec(nonlinearity="linear", sigma_w=1.3, sigma_a=0.7, temperature=0.2, class_sizes=(4, 2, 2))
    r = solve_lazy(spec)
    s = 0.7**2 * 1.3**2
    assert np.allclose(r.outputs, np.eye(3) * s / (s + 0.2), atol=1e-12)
    assert np.allclose(r.readout_moment, 0.49 * np.eye(3))
    assert np.allclose(r.kernel_diagonal, 1.3**2) and np.allclose(r.kernel_blocks, 0.0)
    assert r.residual_norm < 1e-12


@pytest.mark.slow
def test_lazy_sampling_matches_gp():
    """Standard-scaling networks (β = 1/T) at N = 100, 200, 400 extrapolate to the NNGP baseline."""
    from validation.report import validate

    spec = ModelSpec(nonlinearity="relu", class_sizes=(4, 2, 2), temperature=0.5)
    rep = validate(spec, widths=(100, 200, 400), chains=4, sweeps=800, burn=200, progress=False, scaling="lazy")
    assert rep["diagnostics"]["rhat_max"] < 1.1
    assert rep["passed"], rep["z_max"]


def _random_covariance(n=12, seed=3):
    X = np.random.default_rng(seed).normal(size=(n, 2 * n))
    return X @ X.T / (2 * n)


@pytest.mark.parametrize("expr, closed", [
    ("Max(h, 0)", lambda C, d, rho: feature_kernel("relu", C)[0]),
    # E|u||v| = (2/π) √(c11 c22) (√(1−ρ²) + ρ arcsin ρ)
    ("Abs(h)", lambda C, d, rho: (2 / np.pi) * np.outer(d, d) * (np.sqrt(1 - rho**2) + rho * np.arcsin(rho))),
    # leaky ReLU max(h, 0.1h) = 0.9 relu(h) + 0.1 h: 0.81 K_relu + 2·0.09·C/2 (E[relu(u) v] = c12/2) + 0.01 C
    ("Max(h, 0.1*h)", lambda C, d, rho: 0.81 * feature_kernel("relu", C)[0] + 0.10 * C),
])
def test_kinked_user_expressions_match_closed_forms_within_the_reported_error(expr, closed):
    """The GP kernel of a user φ with a kink is split at the kink: it agrees with the closed form to
    1e-8, and the reported error estimate bounds the actual error."""
    C = _random_covariance()
    d = np.sqrt(np.diag(C))
    rho = np.clip(C / np.outer(d, d), -1, 1)
    K, err = feature_kernel(expr, C)
    actual = np.max(np.abs(K - closed(C, d, rho)))
    assert actual < 1e-8
    assert actual <= err + 1e-14 and err < 1e-6
    assert np.array_equal(K, K.T)
