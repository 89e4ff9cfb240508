"""Tests of solvers.continuation on normal forms with closed-form branches."""
import json
from dataclasses import replace

import numpy as np
import pytest

from solvers.continuation import (Branch, ContinuationOptions, SymmetryGroup, branches_equivalent, continue_branch,
                                  dedupe_branches, finite_difference_jacobian, switch_branch)


def pitchfork(x, mu):
    return mu * x - x ** 3


def pitchfork_jacobian(x, mu):
    return np.array([[mu - 3.0 * x[0] ** 2]]), np.array([x[0]])


def fold_1d(x, mu):
    return mu - x ** 2


def fold_2d(x, mu):  # fold in x, plus a stable slaved coordinate y = x²
    return np.array([mu - x[0] ** 2, -x[1] + x[0] ** 2])


def perm_pitchfork(x, mu):
    """Equivariant under x1 ↔ x2 and x → −x; eigenvalue μ on (1, −1), μ − 1 on (1, 1)."""
    a = mu - 0.5
    return np.array([a * x[0] - 0.5 * x[1] - x[0] ** 3, a * x[1] - 0.5 * x[0] - x[1] ** 3])


def perm_pitchfork_jacobian(x, mu):
    a = mu - 0.5
    return np.array([[a - 3 * x[0] ** 2, -0.5], [-0.5, a - 3 * x[1] ** 2]]), x.copy()


SWAP = np.array([[0.0, 1.0], [1.0, 0.0]])


def sign_changes(v):
    s = np.sign(v)
    s = s[s != 0]
    return int(np.count_nonzero(s[1:] != s[:-1]))


@pytest.fixture(scope="module")
def trivial():
    return continue_branch(pitchfork, [0.0], -1.0, 1.0)  # finite-difference Jacobian


def test_pitchfork_trivial_branch_locates_branch_point(trivial):
    b = trivial
    assert b.success and b.status == "reached-boundary"
    assert b.p[0] == -1.0 and b.p[-1] == 1.0 and np.all(np.diff(b.p) > 0)
    assert np.all(np.abs(b.x) < 1e-12) and np.all(b.residual_norm <= b.options.tol)
    np.testing.assert_allclose(b.arclength, b.p + 1.0, atol=1e-12)  # tangent (0, 1): s = p − p0
    assert b.step[1] == pytest.approx(b.options.step) and b.step.max() == pytest.approx(b.options.max_step)
    assert [s.kind for s in b.special_points] == ["branch-point"]
    bp = b.special_points[0]
    assert abs(bp.p) < 1e-6 and abs(bp.x[0]) < 1e-12 and bp.residual_norm <= 1e-10
    lo, hi = bp.bracket
    assert lo <= bp.arclength <= hi and bp.converged and bp.width == pytest.approx(hi - lo)
    assert 0 <= bp.width <= b.options.locate_tol
    assert min(bp.bracket_p) <= bp.p <= max(bp.bracket_p)
    assert bp.arclength == pytest.approx(bp.p + 1.0, abs=1e-9)
    assert np.sign(bp.test_values_bracket["det_augmented"][0]) != np.sign(bp.test_values_bracket["det_augmented"][1])
    assert b.p[bp.index] <= bp.p <= b.p[bp.index + 1]
    # stability: F_x = μ on x = 0, one unstable direction for μ > 0
    assert (bp.stability_before, bp.stability_after) == (0, 1)
    np.testing.assert_array_equal(b.stability, (b.p > 0).astype(int))
    assert sign_changes(b.det_augmented) == 1 and sign_changes(b.dp_ds) == 0 and sign_changes(b.det_sign) == 1


def test_analytic_jacobian_locates_branch_point_to_bisection_tolerance():
    b = continue_branch(pitchfork, [0.0], -1.0, 1.0, jacobian=pitchfork_jacobian, locate_tol=1e-12)
    (bp,) = b.branch_points
    assert abs(bp.p) < 1e-11 and bp.width <= 1e-12
    assert b.n_residual_evaluations < continue_branch(pitchfork, [0.0], -1.0, 1.0).n_residual_evaluations


def test_pitchfork_branch_switching_and_mirror_symmetry(trivial):
    bp = trivial.branch_points[0]
    new = switch_branch(pitchfork, trivial, bp)
    assert len(new) == 2
    signs = []
    for nb in new:
        assert nb.success and nb.p[-1] == 1.0 and nb.special_points == []
        assert np.all(nb.residual_norm <= nb.options.tol)
        sign = np.sign(nb.x[-1, 0])
        signs.append(sign)
        assert np.all(np.sign(nb.x[1:, 0]) == sign)  # stays on one side after leaving the branch point
        far = nb.p >= 0.05
        assert far.sum() >= 5
        np.testing.assert_allclose(nb.x[far, 0], sign * np.sqrt(nb.p[far]), atol=1e-8, rtol=0)
        np.testing.assert_array_equal(nb.stability[1:], 0)  # F_x = −2μ < 0: stable
        assert nb.origin["p"] == bp.p and abs(nb.origin["sigma_min"]) < 1e-6
    assert sorted(signs) == [-1.0, 1.0]
    mirror = SymmetryGroup([lambda x: -x])
    assert branches_equivalent(new[0], new[1], mirror) == 1  # action 1 is x → −x
    assert branches_equivalent(new[0], new[1]) is None
    assert branches_equivalent(trivial, new[0], mirror) is None
    unique = dedupe_branches([trivial, *new], mirror)
    assert unique == [trivial, new[0]]
    assert (new[1].equivalent_to, new[1].equivalent_action) == (1, 1) and new[0].equivalent_to is None
    assert len(dedupe_branches([trivial, *new])) == 3


def test_transcritical_switching_with_non_orthogonal_branches():
    def transcritical(x, mu):  # branches x = 0 and x = μ cross at 45°
        return mu * x - x ** 2

    b = continue_branch(transcritical, [0.0], -1.0, 1.0)
    (bp,) = b.special_points
    assert bp.kind == "branch-point" and abs(bp.p) < 1e-6
    new = switch_branch(transcritical, b, bp)
    assert sorted(nb.p[-1] for nb in new) == [-1.0, 1.0]  # one direction each way in μ
    for nb in new:
        assert nb.success and nb.special_points == []
        np.testing.assert_allclose(nb.x[:, 0], nb.p, atol=1e-9)
        np.testing.assert_array_equal(nb.stability[1:], (nb.p[1:] < 0).astype(int))  # F_x = −μ


def test_fold_on_a_switched_subcritical_branch():
    def subcritical(x, mu):  # x = 0 and μ = x⁴ − x², which has folds at μ = −1/4, x = ±1/√2
        return x * (mu + x ** 2 - x ** 4)

    b = continue_branch(subcritical, [0.0], -1.0, 1.0)
    (nb,) = switch_branch(subcritical, b, b.branch_points[0], directions=(1,))
    assert nb.success and [s.kind for s in nb.special_points] == ["fold"]
    fold = nb.special_points[0]
    assert fold.p == pytest.approx(-0.25, abs=1e-9) and abs(fold.x[0]) == pytest.approx(2 ** -0.5, abs=1e-6)
    assert (fold.stability_before, fold.stability_after) == (1, 0)
    np.testing.assert_allclose(nb.p, nb.x[:, 0] ** 4 - nb.x[:, 0] ** 2, atol=1e-9)


def test_natural_parameter_continuation_passes_and_locates_branch_point():
    b = continue_branch(pitchfork, [0.0], -1.0, 1.0, method="natural")
    assert b.success and [s.kind for s in b.special_points] == ["branch-point"]
    bp = b.special_points[0]
    assert abs(bp.p) < 1e-6 and bp.bracket[0] <= bp.arclength <= bp.bracket[1]


@pytest.mark.parametrize("residual,x0", [(fold_1d, [1.0]), (fold_2d, [1.0, 1.0])])
def test_fold_is_passed_and_located(residual, x0):
    b = continue_branch(residual, x0, 1.0, -1.0)
    assert b.success and b.p[-1] == 1.0 and b.x[-1, 0] == pytest.approx(-1.0, abs=1e-10)
    np.testing.assert_allclose(b.p, b.x[:, 0] ** 2, atol=1e-10, rtol=0)
    assert np.any(b.x[:, 0] < -0.5) and np.all(b.p >= -1e-10)
    assert [s.kind for s in b.special_points] == ["fold"]  # a fold, not a branch point
    fold = b.special_points[0]
    assert abs(fold.p) < 1e-6 and abs(fold.x[0]) < 1e-6 and abs(fold.test_values["dp_ds"]) < 1e-6
    assert fold.bracket[0] <= fold.arclength <= fold.bracket[1] and fold.width <= b.options.locate_tol
    assert b.p[fold.index] >= fold.p and b.p[fold.index + 1] >= fold.p
    assert (fold.stability_before, fold.stability_after) == (0, 1)  # F_x = −2x
    assert sign_changes(b.dp_ds) == 1 and sign_changes(b.det_augmented) == 0 and sign_changes(b.det_sign) == 1
    np.testing.assert_array_equal(b.stability, (b.x[:, 0] < -1e-9).astype(int))
    if residual is fold_2d:
        np.testing.assert_allclose(b.x[:, 1], b.x[:, 0] ** 2, atol=1e-10)


def test_secant_bisection_locates_fold_with_few_residual_evaluations():
    def jac(x, mu):
        return np.array([[-2.0 * x[0]]]), np.array([1.0])

    plain = continue_branch(fold_1d, [1.0], 1.0, -1.0, jacobian=jac, detect=False)
    located = continue_branch(fold_1d, [1.0], 1.0, -1.0, jacobian=jac)
    assert plain.special_points == [] and located.special_points[0].width <= 1e-9
    # pure bisection from a bracket ~0.1 wide to 1e-9 needs ≥ 27 corrections (≥ 2 residuals each)
    assert located.n_residual_evaluations - plain.n_residual_evaluations < 30


def test_natural_continuation_stops_at_fold_without_garbage():
    b = continue_branch(fold_1d, [1.0], 1.0, -1.0, method="natural")
    assert not b.success and b.status == "min-step" and "fold" in b.message
    assert np.all(b.p > 0) and np.all(b.x[:, 0] > 0) and b.p[-1] < 1e-3
    assert np.all(np.diff(b.p) < 0)
    np.testing.assert_allclose(b.p, b.x[:, 0] ** 2, atol=1e-10, rtol=0)
    assert b.special_points == []


def test_step_size_shrinks_on_rejection():
    b = continue_branch(fold_1d, [1.0], 1.0, -1.0, step=0.5, max_step=0.5, max_turn=0.3)
    assert b.success and b.special_points[0].kind == "fold"
    assert b.step[1:-1].min() < 0.5 and b.step[1:-1].min() >= b.options.min_step
    assert np.all(np.arccos(np.clip(np.sum(b.tangent[1:] * b.tangent[:-1], axis=1), -1, 1)) <= 0.3 + 1e-12)


def test_two_dimensional_permutation_symmetric_pitchfork():
    jac = perm_pitchfork_jacobian
    b = continue_branch(perm_pitchfork, [0.0, 0.0], -1.0, 1.4, jacobian=jac)
    assert b.success and [s.kind for s in b.special_points] == ["branch-point"] * 2
    bp0, bp1 = b.special_points
    assert abs(bp0.p) < 1e-6 and abs(bp1.p - 1.0) < 1e-6
    assert (bp0.stability_before, bp0.stability_after, bp1.stability_after) == (0, 1, 2)
    np.testing.assert_array_equal(b.stability, (b.p > bp0.p).astype(int) + (b.p > bp1.p))
    anti = switch_branch(perm_pitchfork, b, bp0, jacobian=jac)  # x = ±(s, −s), s = √μ
    sym = switch_branch(perm_pitchfork, b, bp1, jacobian=jac)  # x = ±(s, s),  s = √(μ − 1)
    for nb in anti + sym:
        assert nb.success and nb.p[-1] == pytest.approx(1.4)
    for nb in anti:
        far = nb.p > 0.05
        np.testing.assert_allclose(np.abs(nb.x[far, 0]), np.sqrt(nb.p[far]), atol=1e-8, rtol=0)
        np.testing.assert_allclose(nb.x[:, 1], -nb.x[:, 0], atol=1e-12)
        np.testing.assert_array_equal(nb.stability[1:], 0)
    for nb in sym:
        far = nb.p > 1.05
        np.testing.assert_allclose(np.abs(nb.x[far, 0]), np.sqrt(nb.p[far] - 1.0), atol=1e-8, rtol=0)
        np.testing.assert_allclose(nb.x[:, 1], nb.x[:, 0], atol=1e-12)
        np.testing.assert_array_equal(nb.stability[1:], 1)  # eigenvalue 3 − 2μ > 0 on (1, −1)
    every = [b, *anti, *sym]
    swap_only = SymmetryGroup.from_matrices([SWAP])
    assert len(dedupe_branches(every, swap_only)) == 4 and anti[1].equivalent_to == 1
    assert sym[1].equivalent_to is None  # (s, s) and (−s, −s) are not permutations of each other
    full = SymmetryGroup.from_matrices([SWAP, -np.eye(2)])
    assert len(full) == 4
    assert dedupe_branches(every, full) == [b, anti[0], sym[0]] and sym[1].equivalent_to == 3


def test_stability_change_without_fold_or_branch_point():
    def rotation(x, mu):  # complex pair μ ± i crosses the imaginary axis at μ = 0 (det F_x = μ² + 1 > 0)
        return np.array([mu * x[0] - x[1], x[0] + mu * x[1]])

    b = continue_branch(rotation, [0.0, 0.0], -1.0, 1.0)
    assert [s.kind for s in b.special_points] == ["stability-change"]
    sc = b.special_points[0]
    assert abs(sc.p) < 1e-6 and (sc.stability_before, sc.stability_after) == (0, 2)
    assert sc.bracket[0] <= sc.arclength <= sc.bracket[1]
    custom = continue_branch(pitchfork, [0.0], -1.0, 1.0, jacobian=pitchfork_jacobian,
                             stability=lambda x, mu: int(mu > 0.3))
    kinds = {s.kind: s for s in custom.special_points}
    assert abs(kinds["stability-change"].p - 0.3) < 1e-6 and "branch-point" in kinds


def test_finite_difference_jacobian_matches_analytic():
    def F(x, p):
        return np.array([np.sin(x[0]) * p + x[1] ** 3, np.exp(x[2]) - p ** 2 * x[0], x[0] * x[1] * x[2]])

    x, p = np.array([0.3, -1.2, 0.7]), 1.7
    Fx, Fp = finite_difference_jacobian(F, x, p)
    Fx_exact = np.array([[np.cos(x[0]) * p, 3 * x[1] ** 2, 0], [-p ** 2, 0, np.exp(x[2])],
                         [x[1] * x[2], x[0] * x[2], x[0] * x[1]]])
    np.testing.assert_allclose(Fx, Fx_exact, atol=1e-9)
    np.testing.assert_allclose(Fp, [np.sin(x[0]), -2 * p * x[0], 0.0], atol=1e-9)


def test_symmetry_group_canonical_and_equivalent():
    group = SymmetryGroup.from_matrices([SWAP, -np.eye(2)])
    x = np.array([0.3, -0.5])
    images = group.images(x)
    assert images.shape == (4, 2)
    for y in images:
        np.testing.assert_allclose(group.canonical(y + 1e-13), [-0.5, 0.3], atol=1e-12)
        assert group.equivalent(x, y)
    assert group.find(x, [0.5, -0.3]) is not None and not group.equivalent(x, [0.3, 0.5])
    with pytest.raises(ValueError, match="max_order"):
        SymmetryGroup.from_matrices([[[2.0]]], max_order=50)


def test_json_round_trip(trivial):
    data = json.loads(json.dumps(trivial.to_json()))
    assert data["p"] == trivial.p.tolist() and len(data["x"]) == len(trivial.p)
    assert data["options"]["tol"] == trivial.options.tol and data["status"] == "reached-boundary"
    sp = data["special_points"][0]
    assert sp["kind"] == "branch-point" and len(sp["bracket"]) == 2 and sp["bracket_p"][0] <= sp["p"] <= sp["bracket_p"][1]
    assert isinstance(sp["x"], list) and isinstance(sp["width"], float)


def test_progress_callback_reports_and_stops():
    calls = []

    def progress(event):
        assert event.stage == "continuation"
        calls.append((event.step, event.values["parameter"], event.values["residual_norm"]))
        return event.values["parameter"] < 0.0

    b = continue_branch(pitchfork, [0.0], -1.0, 1.0, progress=progress)
    assert b.status == "stopped" and not b.success and 0.0 <= b.p[-1] < 0.2
    assert [c[0] for c in calls] == list(range(1, len(b.p))) and [c[1] for c in calls] == b.p[1:].tolist()


def test_bad_inputs_raise_clear_errors(trivial):
    with pytest.raises(ValueError, match=r"step must be a finite number > 0"):
        continue_branch(pitchfork, [0.0], -1.0, 1.0, step=0.0)
    with pytest.raises(ValueError, match=r"step must be a finite number > 0"):
        continue_branch(pitchfork, [0.0], -1.0, 1.0, step=-0.1)
    with pytest.raises(ValueError, match=r"step must lie in \[min_step, max_step\]"):
        ContinuationOptions(step=1.0, max_step=0.5)
    with pytest.raises(ValueError, match="p_end must differ from p0"):
        continue_branch(pitchfork, [0.0], 0.5, 0.5)
    with pytest.raises(ValueError, match="not finite"):
        continue_branch(lambda x, p: x * np.nan, [0.0], -1.0, 1.0)
    with pytest.raises(ValueError, match="not a solution at p0=-1"):
        continue_branch(fold_1d, [0.5], -1.0, 1.0)
    with pytest.raises(ValueError, match="method must be"):
        continue_branch(pitchfork, [0.0], -1.0, 1.0, method="secant")
    with pytest.raises(ValueError, match="returns? 1 values|must return 1 values"):
        continue_branch(lambda x, p: np.zeros(2), [0.0], -1.0, 1.0)
    with pytest.raises(TypeError, match="unknown option"):
        continue_branch(pitchfork, [0.0], -1.0, 1.0, stepsize=0.1)
    fold = continue_branch(fold_1d, [1.0], 1.0, -1.0).special_points[0]
    with pytest.raises(ValueError, match="branch-point"):
        switch_branch(fold_1d, trivial, fold)
    assert isinstance(trivial, Branch)


THETA, CURL, SHIFT = 0.3, 0.3, 0.2


def tilted_pitchfork(x, mu):
    """Pitchfork at μ = 0.1 in rotated, curved coordinates: with u = x₀ − 0.3 sin 2μ − 0.2, w = x₁ − μ²
    and (a, b) = R(0.3)(u, w), F = ((μ − 0.1) a − a³, −b + a²/2).  Old branch a = b = 0 (curved in x),
    crossing branch a = ±√(μ − 0.1), b = a²/2; null J at the branch point is not aligned with any axis."""
    u, w = x[0] - CURL * np.sin(2 * mu) - SHIFT, x[1] - mu ** 2
    a, b = np.cos(THETA) * u + np.sin(THETA) * w, -np.sin(THETA) * u + np.cos(THETA) * w
    return np.array([(mu - 0.1) * a - a ** 3, -b + 0.5 * a ** 2])


def tilted_ab(x, mu):
    u, w = x[..., 0] - CURL * np.sin(2 * mu) - SHIFT, x[..., 1] - mu ** 2
    return np.cos(THETA) * u + np.sin(THETA) * w, -np.sin(THETA) * u + np.cos(THETA) * w


@pytest.fixture(scope="module")
def tilted():
    return continue_branch(tilted_pitchfork, [CURL * np.sin(-2.0) + SHIFT, 1.0], -1.0, 1.0)


def test_branch_point_on_a_curved_branch_is_located_to_tolerance(tilted):
    """Secant on the smooth det [J; t_kᵀ] with interpolating predictors: converged, and within locate_tol of
    μ = 0.1 (the old bisection on ψ_B with plain Newton stopped unconverged at widths ~1e-7, ~1e-4 off in μ;
    the finite-difference Jacobian, error ~1e-10, limits the location to about that)."""
    (bp,) = tilted.branch_points
    tol = tilted.options.locate_tol
    assert bp.converged and bp.width <= tol
    assert abs(bp.p - 0.1) < tol and min(bp.bracket_p) - tol <= 0.1 <= max(bp.bracket_p) + tol
    a, b = tilted_ab(bp.x, bp.p)
    assert abs(a) < 1e-8 and abs(b) < 1e-8
    # the recorded tangent is the old branch's (x₀ = 0.3 sin 2μ + 0.2, x₁ = μ²), not the singular solve's
    exact = np.array([2 * CURL * np.cos(0.2), 0.2, 1.0])
    assert bp.tangent @ exact / np.linalg.norm(exact) > 1 - 1e-6


CROSSING = np.array([np.cos(THETA), np.sin(THETA), 0.0])  # da = 1, b = 0 at fixed μ: the crossing branch
OLD_TANGENT = np.array([2 * CURL * np.cos(0.2), 0.2, 1.0]) / np.linalg.norm([2 * CURL * np.cos(0.2), 0.2, 1.0])
OFF_NULL = np.array([-np.sin(THETA), np.cos(THETA), 0.0])  # db = 1: not in null J at the branch point


def test_switching_ignores_the_singular_tangent_at_the_branch_point(tilted):
    """Regression: switch_branch used point.tangent, i.e. [J; t_prevᵀ] t = e solved AT the branch point, where
    that system is singular and its solution blows up along null J ⟂ t_old; t_new ⟂ that tangent was then the
    old tangent, and both arms ran along the old branch.  Now the old tangent comes from the branch's regular
    points."""
    (bp,) = tilted.branch_points
    # [J; t_oldᵀ] is singular at y*: its solution blows up along its null vector, the unit vector of null J
    # orthogonal to t_old, which is what the point's own tangent became (e.g. 90° off in the located points)
    singular = CROSSING - (CROSSING @ OLD_TANGENT) * OLD_TANGENT
    singular /= np.linalg.norm(singular)
    for point in (replace(bp, tangent=singular), bp):
        arms = switch_branch(tilted_pitchfork, tilted, point)
        signs = []
        for nb in arms:
            assert nb.success and nb.p[-1] == 1.0 and np.all(nb.residual_norm <= nb.options.tol)
            a, b = tilted_ab(nb.x, nb.p)
            far = nb.p > 0.15
            assert far.sum() >= 5
            np.testing.assert_allclose(np.abs(a[far]), np.sqrt(nb.p[far] - 0.1), atol=1e-8, rtol=0)
            np.testing.assert_allclose(b, 0.5 * a ** 2, atol=1e-8)
            signs.append(np.sign(a[-1]))
        assert sorted(signs) == [-1.0, 1.0]  # one arm each way, neither on the old branch a = 0
        plane = np.linalg.qr(np.column_stack([OLD_TANGENT, CROSSING]))[0]  # null J at the branch point
        for nb in arms:
            t_old, t_new = nb.origin["old_tangent"], nb.origin["tangent"]
            assert t_old @ OLD_TANGENT > 1 - 1e-6 and abs(t_new @ t_old) < 1e-12
            assert np.linalg.norm(t_new - plane @ (plane.T @ t_new)) < 1e-6


def test_switching_with_an_explicit_old_tangent_and_bad_tangents(tilted):
    (bp,) = tilted.branch_points
    (nb,) = switch_branch(tilted_pitchfork, tilted, bp, directions=(1,), tangent=OLD_TANGENT)
    a, _ = tilted_ab(nb.x, nb.p)
    assert nb.success and a[-1] == pytest.approx(0.9 ** 0.5, abs=1e-9)  # t_new signed: largest component > 0
    with pytest.raises(ValueError, match="not in the 2-D null space"):
        switch_branch(tilted_pitchfork, tilted, bp, tangent=OFF_NULL)
    with pytest.raises(ValueError, match="tangent must be a nonzero vector of 3 values"):
        switch_branch(tilted_pitchfork, tilted, bp, tangent=[0.0, 0.0, 0.0])


# ---------------------------------------------------------------------- one result protocol, one special point
def test_special_points_carry_kernel_dimension_status_and_the_bifurcationkit_names(trivial):
    """dim null F_x is 1 at a simple branch point and at a simple fold; 0 at a stability change whose
    F_x stays regular (the eigenvalues cross the imaginary axis in a pair there)."""
    bp = trivial.branch_points[0]
    assert bp.kernel_dimension == 1 and bp.status == "converged"
    assert bp.parameter == bp.p and bp.state is bp.x and bp.index >= 0
    fold = continue_branch(fold_1d, [1.0], 1.0, -1.0).folds[0]
    assert fold.kernel_dimension == 1 and fold.status == "converged"
    data = bp.to_json()
    assert data["kernel_dimension"] == 1 and data["status"] == "converged"

    def rotation(x, mu):
        return np.array([mu * x[0] - x[1], x[0] + mu * x[1]])

    sc = continue_branch(rotation, [0.0, 0.0], -1.0, 1.0).special_points[0]
    assert sc.kind == "stability-change" and sc.kernel_dimension == 0


def test_branch_is_a_result(trivial):
    from solvers.results import STATUSES, Result

    assert isinstance(trivial, Result) and trivial.status in STATUSES
    assert trivial.converged and trivial.success and trivial.iterations == len(trivial.p) - 1
    assert trivial.residual == np.max(trivial.residual_norm) <= trivial.options.tol and trivial.time_seconds > 0
    with pytest.raises(Exception):
        trivial.converged = False  # frozen
    data = json.loads(json.dumps(trivial.to_json()))
    assert data["success"] is True and data["converged"] is True and data["iterations"] == len(trivial.p) - 1
    with pytest.raises(ValueError, match="max_steps must be an integer >= 1"):
        ContinuationOptions(max_steps=0)
