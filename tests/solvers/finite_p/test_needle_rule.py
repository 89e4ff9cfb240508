"""The needle rule near the ReLU domain boundary at small P (THEORY §3, §4).

Classes 8,4,4, σ_a = 0.25 (σ̄_a² = P σ_a² = 1), T = 0.05: the finite-P solution is interior, with
margins 1 − q ~ 2e-3 along the three one-class directions, and ~1% of p(a) in the needles carries
~30% of f. Across a needle the slice law moves (edge of the bulk near the step, the asymptotic cone
far out); one fixed Gaussian across it made the Gauss–Hermite rule converge like a power of the
order (1e-5 relative at order 48), and Newton stopped at a 4e-5 noise floor.
"""
import math

import numpy as np
from scipy import special

from solvers.finite_p.placement import CONDENSATE_RADIUS, CUTOFF_WIDTH, build_placement
from solvers.finite_p.problem import ClassProblem
from solvers.finite_p.readout_integral import readout_moments
from solvers.finite_p.readout_kernels import Layout, kernel_args, weighted_sums
from solvers.rules import trapezoid_nodes
from theory.spec import ModelSpec

SPEC = ModelSpec("relu", class_sizes=(8, 4, 4), temperature=0.05, sigma_a=0.25)
#: near the solution of SPEC (rounded): inside the domain, q = 0.998 along the one-class directions
T_NEAR = np.array([[1.3865, -0.1863, -0.1863], [-0.3727, 1.9471, -0.252], [-0.3727, -0.252, 1.9471]])


def _placement(prob):
    placement, _ = build_placement(prob, T_NEAR, None, None)
    first = readout_moments(prob, T_NEAR, placement, order=48, hessian=False, check=False)
    placement, _ = build_placement(prob, T_NEAR, *first.bulk_moments())
    return placement


def _box_trapezoid_nodes(nd, order, n_cross):
    """The needle's share on an independent rule: the same log-radius trapezoid, but across it a
    fixed trapezoid box of ``n_cross`` nodes per axis in the needle's fixed transverse Gaussian."""
    h = 2.0 / order
    r0 = nd.start - 8.0 * nd.width
    rho = np.exp(np.arange(math.log(1e-4 * nd.width), math.log(nd._reach() - r0) + h, h))
    r = r0 + rho
    m1 = nd.basis.shape[1]
    z, lz = trapezoid_nodes(m1, n_cross)
    y = nd.centre[None, :] + z @ nd.L_cross.T
    log_ny = (-0.5 * np.sum(z * z, axis=1) - float(np.sum(np.log(np.diag(nd.L_cross))))
              - 0.5 * m1 * math.log(2 * math.pi))
    A = r[:, None, None] * nd.direction[None, None, :] + (y @ nd.basis.T)[None, :, :]
    log_keep = special.log_ndtr((nd.start + CONDENSATE_RADIUS * nd.width - r) / (CUTOFF_WIDTH * nd.width))
    logv = (np.log(h * rho) + log_keep)[:, None] + (lz - log_ny)[None, :]
    return np.ascontiguousarray(A.reshape(-1, len(nd.direction))), logv.ravel()


def test_needle_slices_agree_with_an_independent_transverse_rule():
    prob = ClassProblem.from_spec(SPEC)
    placement = _placement(prob)
    assert len(placement.needles) == 3 and min(nd.q for nd in placement.needles) > 0.99
    args, lay = kernel_args(prob, T_NEAR), Layout(prob.m, False)
    for k, nd in enumerate(placement.needles):
        sums = []
        for A, logv in (nd.nodes(36), _box_trapezoid_nodes(nd, 36, 64)):
            s, ref = weighted_sums(A, logv + placement.log_shares(A)[1][k], *args, False, lay.size)[:2]
            sums.append(s[: lay.ap.stop] * math.exp(ref))
        scale = np.max(np.abs(sums[1]))
        np.testing.assert_allclose(sums[0], sums[1], rtol=0, atol=1e-9 * scale)


def test_needle_rule_converges_exponentially_near_the_boundary():
    """Order 36 (checked against 48) agrees with order 72 within its error estimate, and that
    estimate is below the default integral_tol (it was 2e-2 at order 24 and 4e-3 at 36)."""
    prob = ClassProblem.from_spec(SPEC)
    placement = _placement(prob)
    lo = readout_moments(prob, T_NEAR, placement, order=36, hessian=False, check=True)
    hi = readout_moments(prob, T_NEAR, placement, order=72, hessian=False, check=False)
    assert lo.relative_error_estimate < 1e-7
    for key, a, b in (("outputs", lo.outputs, hi.outputs), ("readout_moment", lo.readout_moment, hi.readout_moment),
                      ("kernel_blocks", lo.kernel_blocks, hi.kernel_blocks)):
        assert np.all(np.abs(a - b) <= lo.error[key] + 1e-12), key
