"""Continuation of deep linear solutions (solvers/deep_continuation.py): folds, first-order jumps."""
import argparse
import json
import math

import numpy as np
import pytest

from codingschemes.cli.continue_cmd import add_continue_parser, run_continue
from solvers.deep.continuation import _ClassCurve, continue_deep
from solvers.deep.linear import solve_deep_linear_classes
from theory.spec import ModelSpec, SpecError

SPEC = ModelSpec(nonlinearity="linear", class_sizes=(32, 16, 16), temperature=1.0, sigma_a=0.125, sigma_w=1.0)


@pytest.fixture(scope="module")
def result():
    return continue_deep(SPEC, 3, "temperature", 2.0, 0.5)


def test_folds_are_double_roots(result):
    """At a fold h_c = 0 and ∂h_c/∂u = 0 (two roots merge)."""
    folds = [s for s in result.special_points if s["kind"] == "fold"]
    assert len(folds) >= 3
    for sp in folds:
        curve = _ClassCurve(SPEC, 3, "temperature", sp["class"])
        u = -math.log1p(-sp["x"])
        assert abs(curve.h(u, sp["p"])) < 1e-8
        dh = (curve.h(u * (1 + 1e-5), sp["p"]) - curve.h(u * (1 - 1e-5), sp["p"])) / (2e-5 * u)
        scale = (curve.h(u * 1.1, sp["p"]) - curve.h(u * 0.9, sp["p"])) / (0.2 * u)
        assert abs(dh) < 1e-3 * max(1.0, abs(scale)), (sp, dh)
        # on one side of the fold there are two more roots than on the other
        n = [len(curve.roots(sp["p"] + d)) for d in (-1e-3, 1e-3)]
        assert abs(n[0] - n[1]) == 2, n


def test_first_order_transition_is_where_the_selected_root_jumps(result):
    jumps = [s for s in result.special_points if s["kind"] == "first-order transition"]
    assert {s["class"] for s in jumps} == {1, 2}  # equal class sizes jump together, P_c = 32 does not here
    for sp in jumps:
        c, p = sp["class"], sp["p"]
        lo, hi = (solve_deep_linear_classes(SPEC.__class__(**{**SPEC.__dict__, "temperature": p + d}), 3).x[c]
                  for d in (-1e-6, 1e-6))
        assert abs(lo - hi) > 0.3  # a discontinuous jump between the two stable roots
        np.testing.assert_allclose(sorted([lo, hi]), sp["roots_x"], atol=1e-4)
        # the two stable roots have equal action at the transition
        curve = _ClassCurve(SPEC, 3, "temperature", c)
        S = [curve.action(-math.log1p(-x), p) for x in sp["roots_x"]]
        assert abs(S[0] - S[1]) < 1e-9 * max(1.0, abs(S[0]))
        # and the folds bracket it (coexistence region)
        folds = sorted(f["p"] for f in result.special_points if f["kind"] == "fold" and f["class"] == c)
        assert folds[0] < p < folds[-1]


def test_one_layer_has_one_root_and_no_special_points():
    r = continue_deep(SPEC, 1, "temperature", 2.0, 0.05)
    assert r.special_points == [] and r.success
    assert all(all(b["stable"]) for b in r.branches) and len(r.branches) == SPEC.m


def test_selected_grid_matches_closed_form_and_json_has_layers(result):
    s = result.selected[7]
    sol = solve_deep_linear_classes(SPEC.__class__(**{**SPEC.__dict__, "temperature": s["p"]}), 3)
    np.testing.assert_allclose(s["outputs"], sol.outputs, rtol=1e-12)
    assert [lay["layer"] for lay in s["layers"]] == [1, 2, 3]
    json.dumps(result.to_json())


def test_cli_and_bad_input(tmp_path, capsys):
    p = argparse.ArgumentParser()
    add_continue_parser(p.add_subparsers(dest="command"))
    args = p.parse_args(["continue", "--layers", "3", "--nonlinearity", "linear", "--from", "2.0", "--to", "0.5",
                         "--format", "json", "--out", str(tmp_path), "--quiet"])
    assert run_continue(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"branches", "special_points", "selected", "layers"} <= set(out)
    assert (tmp_path / "continue.png").is_file()
    for argv, match in ((["--n-points", "1"], "n_points"), (["--param", "rho_0", "--from", "0.1", "--to", "0.2"],
                                                             "parameter"),
                        (["--from", "-1"], "temperature"), (["--layers", "0"], "layers")):
        with pytest.raises(SpecError, match=match):
            run_continue(p.parse_args(["continue", "--layers", "2", "--nonlinearity", "linear", "--quiet",
                                       "--no-plot", *argv]))


def test_nonlinear_sequential_continuation(tmp_path):
    """normcdf, L = 2, m = 2 (fast tensor rules): every grid point converges, each warm-started solve
    equals a cold solve at that T within the error estimates, the JSON and the figure are written."""
    from figures.deep_continuation import plot_deep_continuation
    from solvers.deep.nonlinear import DeepOptions, solve_deep_nonlinear

    spec = ModelSpec(nonlinearity="normcdf", class_sizes=(3, 2), temperature=0.6)
    r = continue_deep(spec, 2, "temperature", 0.6, 0.5, n_points=2)
    assert r.success and len(r.selected) == 2 and all(p["converged"] for p in r.selected)
    cold = solve_deep_nonlinear(spec.replace(temperature=0.5), 2, options=DeepOptions(search=False))
    np.testing.assert_allclose(r.selected[-1]["outputs"], cold.outputs,
                               atol=2 * (np.max(cold.errors) + r.selected[-1]["error_estimate"]) + 1e-7)
    assert np.all(np.diag(np.asarray(r.selected[-1]["outputs"])) > np.diag(np.asarray(r.selected[0]["outputs"])))
    json.dumps(r.to_json())
    assert "f_cc" in r.table()
    assert plot_deep_continuation(r, tmp_path / "c.png").is_file()
