"""The class-symmetric rule of :mod:`theory.deep_symmetric_rule`: at a point invariant under the 2↔3 exchange of
equal-size classes its estimates are exactly equivariant (whatever the proposal), and at a point that is not it is
still an unbiased estimate of the layer integral (against the Gaussian closed form of a linear layer)."""
import numpy as np

from solvers.deep.class_symmetry import SymmetricModel
from solvers.deep.model import DeepModel
from solvers.deep.options import DeepOptions
from theory.deep_layer import layer_integral, log_integrand
from theory.deep_rules import Proposal, sobol_rule
from theory.deep_symmetric_rule import equal_size_permutations, image_maps
from theory.deep_tilted import OneD
from theory.spec import ModelSpec


def _skewed_proposals(dims, seed=1):
    rng = np.random.default_rng(seed)
    return [Proposal(0.2 * rng.standard_normal(d), 1.1 * np.eye(d) + 0.05 * np.tril(rng.standard_normal((d, d))))
            for d in dims]


def test_symmetric_rule_is_exactly_equivariant_at_a_symmetric_point():
    """ReLU, L = 2, classes 4,2,2, a point whose t and k_1 are 2↔3-invariant (with off-diagonal blocks, so the
    pulled-back maps are not permutations of y) and proposals that are not: with the symmetric rule f_22 = f_33, the
    first layer's 2↔3 blocks and the conjugate kernel's are equal and the full residual's antisymmetric part vanishes,
    to rounding; the plain Sobol' rule's are of the order of its integration error."""
    spec = ModelSpec(nonlinearity="relu", class_sizes=(4, 2, 2), sigma_a=0.5, temperature=0.5)
    t = 0.3 * (2.0 * np.eye(3) - 0.3)
    t[1, 2] = t[2, 1] = -0.05
    k = 0.6 * np.eye(3) + 0.2
    k[1, 2] = k[2, 1] = 0.15
    asym = {}
    for symmetric in (False, True):
        model = DeepModel(spec, (1.0, 1.0), DeepOptions(integrator="qmc", qmc_log2n=6, symmetric_rule=symmetric))
        x = model.pack(t, [(k, np.array([0.3, 0.35, 0.35]))])
        sym = SymmetricModel(model)
        ev = sym.evaluate(sym.reduce(x), _skewed_proposals(model.dims))
        f, k1, kt = ev["layers"][-1].outputs, ev["layers"][0].k, ev["layers"][1].kt_in
        asym[symmetric] = max(ev["asymmetry"], abs(f[1, 1] - f[2, 2]), abs(f[1, 2] - f[2, 1]),
                              abs(k1[1, 1] - k1[2, 2]), abs(k1[0, 1] - k1[0, 2]), abs(kt[1, 1] - kt[2, 2]),
                              abs(ev["layers"][0].delta[1] - ev["layers"][0].delta[2]))
    assert asym[True] < 1e-12
    assert asym[False] > 1e-4


def test_symmetric_rule_is_unbiased_at_a_point_that_is_not_symmetric():
    """Linear φ, a second layer (y = (v, w) in 6-D) with a tilt k̃ and an input kernel that are not 2↔3-invariant:
    λ(y) = −½|y|² + Σ_c P_c ζ_c is quadratic, c + bᵀy − ½ yᵀAy, so log Z = c + ½ bᵀA⁻¹b − ½ log det A, the tilted
    mean A⁻¹b and covariance A⁻¹. The symmetric rule's estimates (8 scrambled Sobol' groups of 2^10 nodes and their
    images, an off-centre proposal) agree with them within five standard errors of the groups' spread."""
    oned = OneD.for_nonlinearity("linear")
    sizes = np.array([4.0, 2.0, 2.0])
    kt = 0.03 * np.array([[1.0, 0.6, 0.2], [0.6, 0.8, -0.3], [0.2, -0.3, 0.5]])
    dt = 0.03 * np.array([0.15, 0.06, 0.1])
    R = np.linalg.cholesky(np.array([[0.5, 0.1, 0.2], [0.1, 0.4, 0.05], [0.2, 0.05, 0.6]]))
    delta = np.array([0.2, 0.25, 0.3])
    kw = dict(R_in=R, delta_in=delta, kt=kt, dt=dt)
    perms = equal_size_permutations(sizes)
    Q = image_maps(perms, np.linalg.cholesky(kt), R)[1]
    assert np.max(np.abs(Q[3:, 3:] - np.eye(3)[[0, 2, 1]])) > 0.05  # the maps are not the plain permutation
    # the quadratic λ from its values at 0, ±e_i and e_i + e_j
    lam = lambda y: log_integrand(oned, sizes, 1.0, np.atleast_2d(y), **kw)
    d, c0, E = 6, float(lam(np.zeros(6))[0]), np.eye(6)
    b = np.array([(lam(E[i])[0] - lam(-E[i])[0]) / 2 for i in range(d)])
    A = np.array([[-(lam(E[i] + E[j])[0] - lam(E[i])[0] - lam(E[j])[0] + c0) for j in range(d)] for i in range(d)])
    mean, cov = np.linalg.solve(A, b), np.linalg.inv(A)
    log_z = c0 + 0.5 * b @ mean - 0.5 * np.linalg.slogdet(A)[1]
    assert np.allclose(lam(mean + 0.3 * E[1]), c0 + b @ (mean + 0.3 * E[1]) - 0.5 * (mean + 0.3 * E[1]) @ A
                       @ (mean + 0.3 * E[1]), atol=1e-10)  # λ is quadratic
    rule = sobol_rule(d, 10, 8, seed=5)
    prop = Proposal.from_moments(0.1 * np.arange(d) - 0.2, 1.3 * cov)  # off-centre (λ is even: the mean is 0)
    est = [layer_integral(oned, sizes, 1.0, rule.group(r), prop, class_perms=perms, **kw) for r in range(8)]
    for value, exact in ((lambda e: e.log_z, log_z), (lambda e: e.y_mean, mean), (lambda e: e.y_cov, cov)):
        vals = np.array([value(e) for e in est])
        se = vals.std(axis=0, ddof=1) / np.sqrt(len(vals))
        assert np.all(np.abs(vals.mean(axis=0) - exact) <= 5.0 * se + 1e-12)
        assert np.max(se) < 0.01


def test_needle_split_with_the_symmetric_rule_is_exactly_equivariant():
    """A ReLU readout layer (classes 4,2,2) near its domain boundary at a 2↔3-invariant point, split along all its
    maximisers (codes 100, 010, 001, 011) on a proposal that is not invariant: with the class permutations the
    image needles 010 and 001 share one cross-section rule and needles 100, 011 are joined by their images
    (theory.deep_needle_tail.needle_orbits), so f, U, k and the conjugate kernel are equivariant to rounding; without
    them the two needles' independent cross-section rules differ by their integration error."""
    from theory.deep_condensate import condensate_directions
    from theory.deep_needle_tail import Needles, radial_rule

    oned, sizes = OneD.for_nonlinearity("relu"), np.array([4.0, 2.0, 2.0])
    kw = dict(R_in=np.linalg.cholesky(0.5 * np.eye(3) + 0.2), delta_in=np.full(3, 0.3),
              t=1.15 * (np.eye(3) - 1.0 / 3.0), sigma_a=0.3)
    dom = condensate_directions(kw["t"], 0.3, kw["R_in"], kw["delta_in"], 1.0, sizes, n_random=32)
    assert {(0,), (1,), (2,), (1, 2)} == set(dom.codes)
    needles = Needles(dom.directions, 2.0, width=0.5, radii=radial_rule(2.0, 0.5, far=40.0, n_step=4, n_tail=8),
                      n_points=2**7, seed=3)
    gap = {}
    for perms in (None, equal_size_permutations(sizes)):
        r = layer_integral(oned, sizes, 1.0, sobol_rule(6, 9, 1, seed=0), _skewed_proposals([6])[0], class_perms=perms,
                           needles=needles, **kw)
        f, U, k, kt = r.outputs, r.readout_moment, r.k, r.kt_in
        gap[perms is None] = max(abs(f[1, 1] - f[2, 2]), abs(f[1, 2] - f[2, 1]), abs(f[0, 1] - f[0, 2]),
                                 abs(U[1, 1] - U[2, 2]), abs(k[1, 1] - k[2, 2]), abs(k[0, 1] - k[0, 2]),
                                 abs(kt[1, 1] - kt[2, 2]), abs(r.delta[1] - r.delta[2])) / np.max(np.abs(k))
    assert gap[False] < 1e-12
    assert gap[True] > 1e-4
