"""Sampled linear networks against the closed-form mean-field theory (THEORY §2, §7)."""
import numpy as np
import pytest

from solvers.solve import solve
from theory.spec import ModelSpec
from validation.compare import extrapolate
from validation.diagnostics import mcse
from validation.networks import Network, gibbs_sweep
from validation.observables import observables_vector

SPEC = ModelSpec("linear", class_sizes=(4, 2, 2), temperature=0.5)


def _sample(width, seed, chains=4, sweeps=1200, burn=200):
    net = Network(SPEC, width=width)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(chains):
        theta = net.prior_sample(rng)
        draws = []
        for s in range(sweeps):
            theta, _ = gibbs_sweep(rng, net, theta, step_size=0.3, n_mala=5)
            if s >= burn:
                draws.append(observables_vector(net, theta))
        out.append(draws)
    out = np.array(out)
    return out.mean(axis=(0, 1)), mcse(out)


def _theory_vector():
    o = solve(SPEC).observables
    return np.concatenate([o.outputs.ravel(), o.readout_moment.ravel(), o.kernel_diagonal, o.kernel_blocks.ravel()])


def test_linear_network_agrees_within_mcse_plus_c_over_n():
    """N = 200: |sampled − theory| <= 4 MCSE + c/N with c = 2 (f, kernel) and 8 (U, scale ~2)."""
    N = 200
    mean, err = _sample(N, seed=3)
    theory = _theory_vector()
    c = np.concatenate([np.full(9, 2.0), np.full(9, 8.0), np.full(3 + 9, 2.0)])
    assert np.all(np.abs(mean - theory) <= 4 * err + c / N), np.max(np.abs(mean - theory) - 4 * err - c / N)


@pytest.mark.slow
def test_linear_network_extrapolates_to_the_theory():
    """Fit a + b/N over N = 100, 200, 400: the intercept matches the theory (|z| < 4)."""
    widths = [100, 200, 400]
    runs = [_sample(N, seed=10 + i, sweeps=2500, burn=300) for i, N in enumerate(widths)]
    a, sa, _, _ = extrapolate(widths, [r[0] for r in runs], [r[1] for r in runs])
    theory = _theory_vector()
    z = np.abs(a - theory) / np.maximum(sa, 1e-12)
    assert np.max(z) < 4.0, z
