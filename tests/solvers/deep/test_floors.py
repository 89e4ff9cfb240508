"""The integration floor of the deep equations (solvers.deep.floors): the resolution of the residual itself, per
block, and each layer's domain margin q_ℓ (theory.deep_layer.layer_growth)."""
import numpy as np

from solvers.deep.common import layer_sigmas
from solvers.deep.floors import integration_floor
from solvers.deep.model import DeepModel
from solvers.deep.nonlinear import DeepOptions, _prior_start
from solvers.deep.saddle import residual_spread
from theory.deep_layer import layer_growth
from theory.deep_tilted import OneD
from theory.spec import ModelSpec


def _point(phi, options, T=0.5, sizes=(3, 2)):
    spec = ModelSpec(nonlinearity=phi, class_sizes=sizes, temperature=T)
    model = DeepModel(spec, layer_sigmas(spec, 2), options)
    x = _prior_start(model, T)
    return model, x, model.initial_proposals(x, 1.5)


def test_linear_growth_is_the_closed_form_domain():
    """Linear φ, one hidden layer (K_0 = I): the readout layer's y-integral converges iff
    λ_max(σ_a² σ² Σ_c P_c t_cᵀ t_c) < 1 (THEORY §2, linear), and q = 2 × growth rate is that eigenvalue."""
    sizes, sigma, sigma_a = np.array([3.0, 2.0]), 1.3, 0.4
    t = np.array([[0.9, -0.2], [0.1, 1.1]])
    q = layer_growth(OneD.for_nonlinearity("linear", 24), sizes, sigma, t=t, sigma_a=sigma_a)
    closed = np.linalg.eigvalsh(sigma_a**2 * sigma**2 * (t.T * sizes) @ t)[-1]
    assert abs(q - closed) < 1e-12
    assert layer_growth(OneD.for_nonlinearity("normcdf", 24), sizes, sigma, t=t, sigma_a=sigma_a) is None


def test_floor_blocks_are_the_residual_spread_and_vanish_for_exact_rules():
    """Sobol' rules: the per-block replicate errors are the block maxima of residual_spread; the tensor
    Gauss–Hermite layers carry an order difference instead. Linear φ with Gauss–Hermite rules through
    moment-matched proposals is exact: no replicates, order difference at rounding level."""
    model, x, props = _point("relu", DeepOptions(integrator="qmc", qmc_log2n=8))
    fl = integration_floor(model, x, props)
    spread = residual_spread(model, x, props)
    assert fl.blocks == ("t", "layer 1 kernel") and fl.replicates == 8 and not fl.outside_layers
    assert np.allclose(fl.replicate_error, [np.max(spread[:model.nt]), np.max(spread[model.nt:])], rtol=0, atol=0)
    assert np.all(fl.order_difference == 0.0) and fl.worst == np.max(spread) > 0
    assert len(fl.q) == 2 and all(0.0 < q < 1.0 for q in fl.q)
    lin, xl, pl = _point("linear", DeepOptions())
    for _ in range(6):  # moment matching converges to the tilted Gaussian, where the rule is exact
        pl = lin.adapt(lin.evaluate(xl, pl), 1.0)
    fl = integration_floor(lin, xl, pl)
    assert fl.replicates == 0 and np.all(fl.replicate_error == 0.0) and fl.worst < 1e-8


def test_needle_directions_are_the_growth_maximisers():
    """theory.deep_tilted.growth_directions: for linear φ the growth is a quadratic form, so its maximisers are ± the
    top eigenvector and q its top eigenvalue (the closed form of growth_rate); for ReLU with a diagonal tilt
    B = diag(b) and K_0 = I the growth is ½ Σ_c P_c s² (b_c v_c)₊², maximal on the axis of the largest P_c b_c² (a
    one-class code), q = P_c b_c² s²; the leaky ReLU grows on both sides of the same axis. In both cases the first
    q is growth_rate's value (to its hill climb's accuracy)."""
    from theory.deep_tilted import growth_directions, growth_rate

    rng = np.random.default_rng(5)
    P, s, d = np.array([32.0, 16.0, 16.0]), np.array([1.0, 0.9, 1.1]), np.array([0.01, 0.0, 0.02])
    B = 0.1 * rng.standard_normal((3, 3))
    dirs, q = growth_directions("linear", P, B, s, d)
    assert abs(q[0] - 2 * growth_rate("linear", P, B, s, d)) < 1e-8 * q[0]
    b = np.array([0.12, 0.2, 0.15])
    dirs, q = growth_directions("relu", P, np.diag(b), s, np.zeros(3))
    top = np.argmax(P * b**2 * s**2)
    assert abs(q[0] - P[top] * b[top] ** 2 * s[top] ** 2) < 1e-6 and abs(abs(dirs[0][top]) - 1.0) < 1e-3
    assert dirs[0][top] > 0 and abs(q[0] - 2 * growth_rate("relu", P, np.diag(b), s, np.zeros(3))) < 1e-6
    dirs, q = growth_directions("relu", P, np.diag(b), s, np.zeros(3), leak=0.5)
    assert abs(q[0] - P[top] * b[top] ** 2 * s[top] ** 2) < 1e-6 and abs(abs(dirs[0][top]) - 1.0) < 1e-3


def test_leaky_needles_follow_the_leaky_growth():
    """The shape homotopy's leaky ReLU (slope 1 − σ below 0) grows on both sides, so its readout domain is smaller
    than the ReLU's: at a point with leaky q = 0.98 the one-sided ReLU formula (readout_domain) gives a smaller q,
    and with_needles places its needle along the leaky growth's maximiser (layer_needle_directions), not the ReLU's."""
    from solvers.deep.condensate import readout_domain, with_needles
    from solvers.deep.shape_homotopy import shaped_model
    from theory.deep_layer import layer_needle_directions
    from theory.deep_rules import Proposal

    spec = ModelSpec(nonlinearity="relu", class_sizes=(8, 4, 4), sigma_a=0.25, temperature=0.05)
    model = shaped_model(DeepModel(spec, layer_sigmas(spec, 1), DeepOptions(integrator="qmc", qmc_log2n=6)), 0.5)
    t = np.array([[1.0, -0.6, -0.6], [-0.3, 1.2, -0.2], [-0.3, -0.2, 1.2]])
    kw = dict(t=t, sigma_a=spec.sigma_a)
    t = t * np.sqrt(0.98 / layer_growth(model.oned, model.sizes, model.sigmas[-1], **kw))  # q ∝ t²
    dirs, q = layer_needle_directions(model.oned, model.sizes, model.sigmas[-1], t=t, sigma_a=spec.sigma_a)
    assert abs(q[0] - 0.98) < 1e-6 and readout_domain(model, model.pack(t, [])).q[0] < 0.98 - 1e-3
    props = [Proposal.standard(model.m)]
    mixed = with_needles(model, model.pack(t, []), props)
    assert mixed is not props
    axis = mixed[0].means[1] / np.linalg.norm(mixed[0].means[1])
    assert float(axis @ dirs[0]) > 0.999
