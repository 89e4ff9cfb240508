"""Continuation of the large-P solution (solvers/large_p_continuation.py, THEORY §4): where the symmetry breaks."""
import json
import math

import numpy as np
import pytest

from solvers.large_p.solve import linear_large_p, solve_large_p
from solvers.continuation import branches_equivalent
from solvers.large_p.branches import branch_system
from solvers.large_p.continuation import canonical_parameter, continue_solution, symmetry_group
from solvers.large_p.problem import LargePProblem
from solvers.pseudo_arclength import ContinuationOptions
from theory.spec import SpecError

RHO = (0.5, 0.25, 0.25)


def erf_second_moment(sigma_w):
    """E[φ(h)²] for φ = erf(√π h/2), h ~ N(0, σ²): (2/π) arcsin(2s²σ²/(1 + 2s²σ²)), s² = π/4 (independent of
    the package)."""
    x = 2 * (math.pi / 4) * sigma_w**2
    return 2 / math.pi * math.asin(x / (1 + x))


def t_c(rho_r, sigma_a_bar=1.0, sigma_w=1.0):
    return sigma_a_bar * math.sqrt(rho_r * erf_second_moment(sigma_w))


# A located bracket brackets the sign change of the numerical test function, whose points are solved to
# max|F| <= tol (ContinuationOptions.tol), so the exact point may lie O(tol) outside it (1.6e-10 seen
# with numpy 2.4 / scipy 1.17 at the degenerate erf branch point).
BRACKET_SLACK = 10 * ContinuationOptions().tol


def inside(value, bracket, slack=BRACKET_SLACK):
    return bracket[0] - slack <= value <= bracket[1] + slack


@pytest.fixture(scope="module")
def erf_down():
    prob = LargePProblem(nonlinearity="erf", sigma_w=1.0, sigma_a_bar=1.0, temperature=1.0, class_fractions=RHO)
    return continue_solution(prob, "temperature", 1.0, 0.1)


# ---------------------------------------------------------------------- the two transitions of erf
def test_erf_branch_points_at_the_critical_temperatures(erf_down):
    res = erf_down
    assert res.success, res.message
    kinds = [(s.kind, s.action) for s in res.special_points]
    assert kinds == [("branch-point", "switched"), ("stability-change", "re-solved")], kinds
    first, second = res.special_points
    tc0, tc1 = t_c(0.5), t_c(0.25)
    assert tc0 == pytest.approx(0.45743, abs=1e-5) and tc1 == pytest.approx(0.32345, abs=1e-5)
    # the pitchfork of the symmetric branch a = 0 in direction 0
    assert abs(first.parameter - tc0) < 1e-4 and inside(tc0, first.bracket)
    assert first.bracket[1] - first.bracket[0] < 1e-6
    assert first.classes == [0] and "pitchfork" in first.description and "a = 0" in first.description
    assert (first.n_occupied_before, first.n_occupied_after) == (1, 2)
    # the second transition lies on the broken branch and is exactly the class-1/2 formula (derivation in the
    # module docstring: t[:, r] = e_r/T while no branch codes class r, so ∇²S e_r = (−1/σ̄² + ρ_r E[φ²]/T²) e_r)
    assert ">bp@" in second.branch
    assert abs(second.parameter - tc1) < 1e-4 and inside(tc1, second.bracket)
    assert abs(second.parameter - tc1) < 1e-7  # in fact to the bisection accuracy
    assert second.classes == [1, 2] and len(second.unstable_directions) == 2  # classes 1 and 2 break together
    assert second.formula is not None and second.formula["value"] == pytest.approx(tc1, abs=1e-12)
    assert (second.n_occupied_before, second.n_occupied_after) == (2, 8)
    assert (second.n_branches_before, second.n_branches_after) == (1, 4)
    assert second.resolved_at is not None and second.resolved_at < second.parameter
    # the global path: 1, then ±a* e_0, then the 8 sign codes with P = 1/4 per mirror orbit
    path = res.global_path()
    p, nocc = path["parameter"], path["n_occupied"]
    assert np.all(np.diff(p) < 0) or np.all(np.diff(p) <= 0)
    assert set(nocc[p > tc0 + 1e-6]) == {1} and set(nocc[(p < tc0 - 1e-6) & (p > tc1 + 1e-6)]) == {2}
    assert set(nocc[p < tc1 - 1e-6]) == {8}
    last = res.branches[path["branch"][-1]]
    assert last.n_branches == 4 and np.allclose(last.occupation[-1], 0.25, atol=1e-9)
    assert np.max(np.abs(path["f"][p > tc0 + 1e-6])) < 1e-9  # f = 0 on the symmetric branch
    f = path["f"]
    assert np.max(np.abs(f - np.einsum("kcc->kc", f)[:, :, None] * np.eye(3))) < 1e-9  # f stays diagonal


def test_broken_branches_from_switching_are_recognised_as_mirror_images(erf_down):
    res = erf_down
    switched = [b for b in res.branches if b.origin.get("kind") == "switched"]
    assert len(switched) == 2
    kept = [b for b in switched if b.duplicate_of is None]
    dup = [b for b in switched if b.duplicate_of is not None]
    assert len(kept) == 1 and len(dup) == 1
    a, b = kept[0], dup[0]
    assert res.branches[b.duplicate_of] is a
    k = min(len(a), len(b))
    # the two arms leave the (located, not exact) branch point on either side: a → −a pointwise up to the
    # O(location error) asymmetry; the dedupe tests that the mirrored points lie on the other arm's curve
    assert np.allclose(b.a[1:k], -a.a[1:k], atol=1e-4) and np.max(np.abs(a.a[1:k, 0, 0])) > 1e-2
    assert np.allclose(b.f[:k], a.f[:k], atol=1e-5) and np.allclose(b.U[:k], a.U[:k], atol=1e-5)
    group = symmetry_group(res.problem, 1, "temperature")
    p_act, s_act = group.signed_permutations[b.symmetry_action]
    assert np.all(s_act[9:12] == -1.0)  # the action found is the mirror of a_1
    assert branches_equivalent(a.raw, b.raw, group, tol=1e-6) == b.symmetry_action
    assert branches_equivalent(a.raw, b.raw, None, tol=1e-6) is None  # not without the mirror
    assert not any(s.duplicate_of is not None for s in res.global_branches)


def test_symmetries_of_the_broken_solution_map_the_solution_set_to_itself(erf_down):
    res = erf_down
    last = [b for b in res.global_branches if b.n_branches == 4][0]
    system = branch_system(res.problem.with_parameter("temperature", float(last.parameter[-1])), 4)
    x = system.pack(last.t[-1], last.a[-1], last.occupation[-1])
    assert np.max(np.abs(system.residual(x))) < 1e-9
    group = symmetry_group(res.problem, 4, "temperature")
    assert len(group) == 2**4 * math.factorial(4) * 2  # mirrors, branch permutations, swap of classes 1, 2
    # swap classes 1 and 2: t → Π t Πᵀ, a_γ → Π a_γ
    pi = [0, 2, 1]
    x_swap = system.pack(last.t[-1][np.ix_(pi, pi)], last.a[-1][:, pi], last.occupation[-1])
    assert np.max(np.abs(system.residual(x_swap))) < 1e-9  # a solution again
    assert group.find(x_swap, x, tol=1e-8) is not None  # ... and the same one up to mirrors/relabelling
    readouts = np.concatenate([last.a[-1], -last.a[-1]])
    swapped = readouts[:, pi]
    assert all(np.min(np.linalg.norm(readouts - r, axis=1)) < 1e-8 for r in swapped)  # the set of codes
    for g in range(4):  # mirror of any one branch is a solution
        A = last.a[-1].copy()
        A[g] *= -1
        assert np.max(np.abs(system.residual(system.pack(last.t[-1], A, last.occupation[-1])))) < 1e-9
    f, U = last.f[-1], last.U[-1]
    assert f[1, 1] == pytest.approx(f[2, 2], abs=1e-10) and U[1, 1] == pytest.approx(U[2, 2], abs=1e-10)
    # a symmetry-breaking perturbation is not recognised as the same solution
    A = last.a[-1].copy()
    A[0, 1] += 1e-3
    assert group.find(system.pack(last.t[-1], A, last.occupation[-1]), x, tol=1e-8) is None


def test_continued_observables_agree_with_independent_solves(erf_down):
    res = erf_down
    path = res.global_path()
    for target in (0.8, 0.44, 0.38, 0.25, 0.1):
        i = int(np.argmin(np.abs(path["parameter"] - target)))
        T = float(path["parameter"][i])
        sol = solve_large_p(res.problem.with_parameter("temperature", T))
        assert sol.converged and sol.kind == "global"
        assert np.max(np.abs(path["f"][i] - sol.outputs)) < 1e-6, T
        assert np.max(np.abs(path["U"][i] - sol.readout_moment)) < 1e-6, T
        assert np.max(np.abs(path["kernel_blocks"][i] - sol.observables.kernel_blocks)) < 1e-6, T
        assert path["free_energy"][i] == pytest.approx(sol.free_energy, abs=1e-6)
    # between continuation points: Newton from the nearest point
    for T in (0.3, 0.41):
        near = res.solution_at(T)
        ref = solve_large_p(res.problem.with_parameter("temperature", T))
        assert near.kind == "global" and np.max(np.abs(near.outputs - ref.outputs)) < 1e-6
        assert np.max(np.abs(near.readout_moment - ref.readout_moment)) < 1e-6


def test_json_has_the_public_keys(erf_down):
    out = json.loads(json.dumps(erf_down.to_json()))
    assert {"special_points", "branches", "parameter", "from", "to", "global_path"} <= set(out)
    for s in out["special_points"]:
        assert {"kind", "parameter", "bracket", "description", "n_occupied_before", "n_occupied_after"} <= set(s)
        assert s["bracket"][0] <= s["bracket"][1]
    for b in out["branches"]:
        k = len(b["parameter"])
        assert {"f", "U", "kernel_diagonal", "kernel_blocks", "free_energy", "n_occupied", "a", "P", "stability",
                "kind"} <= set(b)
        assert len(b["f"]) == len(b["U"]) == len(b["a"]) == len(b["kind"]) == len(b["stability"]) == k
        assert np.shape(b["f"]) == (k, 3, 3) and np.shape(b["a"]) == (k, b["n_branches"], 3)


# ---------------------------------------------------------------------- other directions and parameters
def test_reverse_temperature_locates_the_merges():
    prob = LargePProblem(nonlinearity="erf", temperature=0.1, class_fractions=RHO)
    res = continue_solution(prob, "temperature", 0.1, 1.0)
    assert res.success, res.message
    acted = [s for s in res.special_points if s.action == "re-solved"]
    assert [s.kind for s in acted] == ["fold", "fold"]  # the n-branch solutions turn back where readouts merge
    assert abs(acted[0].parameter - t_c(0.25)) < 1e-4 and inside(t_c(0.25), acted[0].bracket)
    assert abs(acted[1].parameter - t_c(0.5)) < 1e-4 and inside(t_c(0.5), acted[1].bracket)
    assert [(s.n_occupied_before, s.n_occupied_after) for s in acted] == [(8, 2), (2, 1)]
    path = res.global_path()
    assert path["n_occupied"][0] == 8 and path["n_occupied"][-1] == 1
    assert np.max(np.abs(path["f"][-1])) < 1e-12


def test_sigma_a_bar_continuation():
    T = 0.3
    prob = LargePProblem(nonlinearity="erf", temperature=T, class_fractions=RHO)
    res = continue_solution(prob, "sigma_a_bar", 0.5, 2.0)
    assert res.success, res.message
    first, second = [s for s in res.special_points if s.action != "recorded"]
    e2 = erf_second_moment(1.0)
    s0, s1 = T / math.sqrt(0.5 * e2), T / math.sqrt(0.25 * e2)  # σ̄_a at which T_c,r = T
    assert first.kind == "branch-point" and abs(first.parameter - s0) < 1e-4 and inside(s0, first.bracket)
    assert second.kind == "stability-change" and abs(second.parameter - s1) < 1e-4 and inside(s1, second.bracket)
    path = res.global_path()
    i = int(np.argmin(np.abs(path["parameter"] - 1.5)))
    sol = solve_large_p(res.problem.with_parameter("sigma_a_bar", float(path["parameter"][i])))
    assert np.max(np.abs(path["f"][i] - sol.outputs)) < 1e-6


def test_class_fraction_continuation_merges_at_the_formula():
    T = 0.3
    prob = LargePProblem(nonlinearity="erf", temperature=T, class_fractions=(0.3, 0.35, 0.35))
    res = continue_solution(prob, "rho_0", 0.3, 0.8)
    assert res.success, res.message
    (merge,) = [s for s in res.special_points if s.action == "re-solved"]
    rho0 = 1 - 2 * T**2 / erf_second_moment(1.0)  # ρ_1 = (1 − ρ_0)/2 reaches T²/E[φ²]
    assert merge.kind == "fold" and abs(merge.parameter - rho0) < 1e-4 and inside(rho0, merge.bracket)
    assert (merge.n_occupied_before, merge.n_occupied_after) == (8, 2)


def test_equal_fractions_degenerate_branch_point_is_re_solved():
    prob = LargePProblem(nonlinearity="erf", temperature=1.0, class_fractions=(1 / 3, 1 / 3, 1 / 3))
    res = continue_solution(prob, "temperature", 1.0, 0.1)
    assert res.success, res.message
    (bp,) = res.special_points
    assert bp.kind == "branch-point" and bp.action == "re-solved" and "degenerate" in bp.note
    assert abs(bp.parameter - t_c(1 / 3)) < 1e-8 and inside(t_c(1 / 3), bp.bracket)
    assert bp.classes == [0, 1, 2] and (bp.n_occupied_before, bp.n_occupied_after) == (1, 8)


def test_follow_constrained_keeps_the_symmetric_branch():
    prob = LargePProblem(nonlinearity="erf", temperature=1.0, class_fractions=RHO)
    res = continue_solution(prob, "temperature", 1.0, 0.1, follow_constrained=True)
    assert res.success
    start = res.branches[0]
    assert start.status == "reached-boundary" and start.parameter[-1] == pytest.approx(0.1)
    regular = np.array([k == "" for k in start.special])  # the located branch point may sit just off a = 0
    assert np.max(np.abs(start.a[regular])) < 1e-8 and np.max(np.abs(start.a)) < 1e-4  # a = 0 all the way
    below = start.parameter < t_c(0.5) - 1e-6
    assert all(k == "constrained" for k, b in zip(start.kind, below) if b)
    recorded = [s for s in res.special_points if s.branch == "start" and s.kind == "stability-change"]
    assert len(recorded) == 1 and recorded[0].action == "recorded" and abs(recorded[0].parameter - t_c(0.25)) < 1e-4


def test_linear_has_no_symmetry_breaking_along_temperature():
    prob = LargePProblem(nonlinearity="linear", temperature=1.0, class_fractions=RHO)
    res = continue_solution(prob, "temperature", 1.0, 0.1)
    assert res.success and len(res.branches) == 1
    assert not [s for s in res.special_points if s.kind in ("branch-point", "fold", "stability-change")]
    b = res.branches[0]
    assert set(b.n_occupied) == {1} and b.n_branches == 1 and np.max(np.abs(b.a)) == 0.0
    # the only events: the Gaussian readout variance switches on where σ̄_a σ_1 √ρ_c = T (solvers/large_p.py)
    onsets = [(s.parameter, s.classes) for s in res.special_points]
    assert len(onsets) == 2
    assert onsets[0][0] == pytest.approx(math.sqrt(0.5), abs=1e-10) and onsets[0][1] == [0]
    assert onsets[1][0] == pytest.approx(0.5, abs=1e-10) and onsets[1][1] == [1, 2]
    for i in (0, len(b) // 2, len(b) - 1):
        ref = linear_large_p(res.problem.with_parameter("temperature", float(b.parameter[i])))
        assert np.allclose(b.f[i], ref.outputs, atol=1e-12) and np.allclose(b.U[i], ref.readout_moment, atol=1e-12)
    assert np.all(np.diff(np.einsum("kcc->kc", b.U), axis=0) >= -1e-12)  # U grows as T falls: analog coding


# ---------------------------------------------------------------------- input validation
@pytest.mark.parametrize("args, word", [
    (("beta", 1.0, 0.1), "beta"),
    (("temperature", 1.0, 1.0), "temperature"),
    (("rho_0", 0.3, 1.2), "rho_0"),
    (("rho_5", 0.3, 0.5), "rho_r"),
    (("sigma_a_bar", 0.0, 1.0), "sigma_a_bar"),
    (("temperature", 1.0, -0.5), "[0, inf)"),
])
def test_invalid_input_names_the_parameter(args, word):
    prob = LargePProblem(nonlinearity="erf", class_fractions=RHO)
    with pytest.raises(SpecError, match=word.replace("[", r"\[").replace(")", r"\)").replace("(", r"\(")):
        continue_solution(prob, *args)


def test_parameter_aliases():
    assert canonical_parameter("T", 3) == "temperature" and canonical_parameter("rho_2", 3) == "rho_2"
    assert canonical_parameter("sigma_1", 3) == "sigma_w"


# ---------------------------------------------------------------------- CLI
def _run(argv):
    from codingschemes.cli.continue_cmd import main
    return main(argv)


def test_cli_writes_json_and_png(capsys, tmp_path):
    code = _run(["continue", "--nonlinearity", "erf", "--class-fractions", "0.5,0.25,0.25", "--param", "temperature",
                 "--from", "1.0", "--to", "0.1", "--format", "json", "--out", str(tmp_path), "--quiet"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {"special_points", "branches"} <= set(out)
    sp = out["special_points"]
    assert [s["kind"] for s in sp] == ["branch-point", "stability-change"]
    assert all(len(s["bracket"]) == 2 and inside(s["parameter"], s["bracket"]) for s in sp)
    assert abs(sp[0]["parameter"] - t_c(0.5)) < 1e-4 and abs(sp[1]["parameter"] - t_c(0.25)) < 1e-4
    assert all({"parameter", "f", "U", "n_occupied", "free_energy"} <= set(b) for b in out["branches"])
    assert (tmp_path / "continue.png").stat().st_size > 1000 and out["figure"].endswith("continue.png")


def test_cli_table_for_sigma_a_bar(capsys):
    code = _run(["continue", "--param", "sigma_a_bar", "--from", "0.5", "--to", "0.8", "--temperature", "0.3",
                 "--no-plot", "--quiet"])
    text = capsys.readouterr().out
    assert code == 0 and "branch-point" in text and "sigma_a_bar" in text


@pytest.mark.parametrize("args, word", [
    (["--param", "beta"], "param"),
    (["--param", "beta"], "beta"),
    (["--from", "0.5", "--to", "0.5"], "temperature"),
    (["--from", "0.5", "--to", "0.5"], "--from"),
    (["--class-fractions", "0.5,0.3"], "class-fractions"),
    (["--class-fractions", "0.5,x,0.5"], "class-fractions"),
    (["--param", "rho_0", "--from", "0.2", "--to", "1.5"], "rho_0"),
    (["--param", "sigma_w"], "--from"),
    (["--from", "abc"], "--from"),
])
def test_cli_bad_input_exits_2_naming_the_parameter(capsys, args, word):
    assert _run(["continue", "--quiet", "--no-plot", *args]) == 2
    assert word in capsys.readouterr().err


def test_main_cli_continue_if_wired(capsys, tmp_path):
    import codingschemes.cli as cli
    parser = cli.build_parser()
    sub = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    assert "continue" in sub[0].choices
    assert cli.main(["continue", "--param", "beta", "--quiet", "--no-plot"]) == 2
    assert "param" in capsys.readouterr().err


# ---------------------------------------------------------------------- slow
@pytest.mark.slow
def test_normcdf_splits_agree_with_independent_solves():
    prob = LargePProblem(nonlinearity="normcdf", temperature=1.0, class_fractions=RHO)
    res = continue_solution(prob, "temperature", 1.0, 0.05)
    assert res.success, res.message
    assert [s.kind for s in res.special_points if s.action == "re-solved"] == ["stability-change"] * 2
    path = res.global_path()
    assert path["n_occupied"][0] == 1 and path["n_occupied"][-1] == 4
    for target in (0.5, 0.15, 0.05):
        i = int(np.argmin(np.abs(path["parameter"] - target)))
        sol = solve_large_p(res.problem.with_parameter("temperature", float(path["parameter"][i])))
        assert np.max(np.abs(path["f"][i] - sol.outputs)) < 1e-6
    # the splits are continuous: f has no jump across them
    for s in res.special_points:
        j = np.argsort(np.abs(path["parameter"] - s.parameter))[:2]
        assert np.max(np.abs(path["f"][j[0]] - path["f"][j[1]])) < 0.05


@pytest.mark.slow
def test_relu_sequential_finds_the_condensate_onset():
    prob = LargePProblem(nonlinearity="relu", temperature=1.0, class_fractions=RHO)
    res = continue_solution(prob, "temperature", 1.0, 0.4, n_points=5)
    assert res.method == "sequential" and res.success, res.message
    kinds = [s.kind for s in res.special_points]
    assert kinds and set(kinds) == {"structure-change"}
    assert res.special_points[0].n_occupied_after > res.special_points[0].n_occupied_before


def test_progress_callback_reports_and_stops():
    seen = []

    def progress(event):
        assert event.stage == "continuation"
        info = event.values
        seen.append((event.step, info["parameter"], info["branch"], info["kind"]))
        return event.step < 5

    prob = LargePProblem(nonlinearity="erf", temperature=1.0, class_fractions=RHO)
    res = continue_solution(prob, "temperature", 1.0, 0.1, progress=progress)
    assert not res.success and "stopped" in res.message
    assert [c for c, *_ in seen] == [1, 2, 3, 4, 5] and all(k == "global" for *_, k in seen)
    assert all(1.0 > p > 0.1 for _, p, _, _ in seen) and seen[0][2] == "start"


# ---------------------------------------------------------------------- one result protocol, one special point
def test_results_follow_the_protocol_and_special_points_keep_the_located_point(erf_down):
    from solvers.continuation import SpecialPoint
    from solvers.results import STATUSES, Result

    res = erf_down
    assert isinstance(res, Result) and res.converged and res.status == "reached-boundary" and res.success
    assert res.iterations == res.n_points and res.residual <= 1e-9 and res.time_seconds > 0
    obs = res.observables()
    path = res.global_path()
    assert np.array_equal(obs.outputs, path["f"][-1]) and np.array_equal(obs.readout_moment, path["U"][-1])
    for tr in res.branches:
        assert isinstance(tr, Result) and tr.status in STATUSES and tr.success == (tr.status == "reached-boundary")
        assert tr.residual == np.max(tr.residuals) and len(tr.residuals) == len(tr)
        assert np.array_equal(tr.observables().outputs, tr.f[-1])
    start = res.start
    assert start.status == "converged" and start.nit == start.iterations and start.residual_norm == start.residual
    first, second = res.special_points
    # the pitchfork is a simple branch point of the n = 1 system (dim null F_x = 1); at T_c,1 the system is
    # regular (module docstring): the stability change has no kernel
    assert isinstance(first.point, SpecialPoint) and first.kernel_dimension == 1 and first.index == first.point.index
    assert second.kernel_dimension == 0 and first.status == second.status == "converged"
    assert first.tangent is not None and abs(np.linalg.norm(first.tangent) - 1) < 1e-12
    data = json.loads(json.dumps(res.to_json()))
    assert data["success"] is True and data["status"] == "reached-boundary" and "residual" in data
    assert data["special_points"][0]["kernel_dimension"] == 1 and "point" not in data["special_points"][0]
    assert all(isinstance(b["residual"], list) for b in data["branches"])  # per-point values keep their key
