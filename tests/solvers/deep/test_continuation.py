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


def _hand_selected_outputs(T, layers=3):
    """The class-root equation of THEORY §5 solved from scratch (module docstring of solvers.deep.linear):
    per class, τ(x) = √(x(1−x)^{L−1}/(P_c σ_a² s)), h(x) = σ_a² s τ (1−x)^{−L} + T τ − 1, all roots by sign
    changes on a log grid in u = −log(1 − x) and brentq; stable roots have h'(x) > 0; the selected one
    has the largest class action S_c = −((L−1)/2) x/(1−x) − (L/2) log(1−x) − P_c τ + (T/2) P_c τ²;
    f_cc = 1 − T τ."""
    from scipy.optimize import brentq

    sa2, s, L = SPEC.sigma_a**2, SPEC.sigma_w ** (2 * layers), layers
    f = []
    for Pc in SPEC.class_sizes:
        def tau(x):
            return math.sqrt(x * (1 - x) ** (L - 1) / (Pc * sa2 * s))

        def h(u):
            x = -math.expm1(-u)
            return sa2 * s * tau(x) * math.exp(L * u) + T * tau(x) - 1

        us = np.geomspace(1e-10, 60.0, 6000)
        hs = np.array([h(u) for u in us])
        best = None
        for k in np.flatnonzero(np.sign(hs[:-1]) != np.sign(hs[1:])):
            u = brentq(h, us[k], us[k + 1], xtol=1e-15, rtol=1e-15)
            if hs[k + 1] < hs[k]:  # h decreasing in u (and x): unstable root
                continue
            x = -math.expm1(-u)
            S = -0.5 * (L - 1) * x / (1 - x) + 0.5 * L * u - Pc * tau(x) + 0.5 * T * Pc * tau(x) ** 2
            if best is None or S > best[0]:
                best = (S, 1 - T * tau(x))
        f.append(best[1])
    return np.array(f)


def test_selected_grid_matches_hand_solved_class_roots_and_json_has_layers(result):
    """Every grid point of the selected branch: f diagonal (orthogonal classes), f_cc from the class-root
    equation solved independently (:func:`_hand_selected_outputs`) to 1e-9, through the first-order jump."""
    for s in result.selected:
        out = np.asarray(s["outputs"])
        np.testing.assert_allclose(out - np.diag(np.diag(out)), 0.0, atol=1e-12)
        np.testing.assert_allclose(np.diag(out), _hand_selected_outputs(s["p"]), atol=1e-9, err_msg=f"T = {s['p']}")
    s = result.selected[7]
    assert [lay["layer"] for lay in s["layers"]] == [1, 2, 3]
    json.dumps(result.to_json())


def test_the_numbers_of_the_deep_guide(result):
    """docs/guide/deep.md: the classes of 16 jump at T = 1.35530 (x 0.21 → 0.74, f_cc 0.02 → 0.39),
    inside their coexistence window 1.2423–1.4180 (to the digits given; f_cc from the
    independently solved class roots of :func:`_hand_selected_outputs`)."""
    jumps = [s for s in result.special_points if s["kind"] == "first-order transition"]
    for sp in jumps:
        assert sp["p"] == pytest.approx(1.35530, abs=5e-6)
        np.testing.assert_allclose(sp["roots_x"], [0.21, 0.74], atol=5e-3)
        folds = sorted(f["p"] for f in result.special_points if f["kind"] == "fold" and f["class"] == sp["class"])
        np.testing.assert_allclose([folds[0], folds[-1]], [1.2423, 1.4180], atol=5e-5)
    p = jumps[0]["p"]
    f_above, f_below = _hand_selected_outputs(p + 1e-4)[1], _hand_selected_outputs(p - 1e-4)[1]
    assert f_above == pytest.approx(0.02, abs=5e-3) and f_below == pytest.approx(0.39, abs=5e-3)


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


def test_nonlinear_sequential_continuation(tmp_path, monkeypatch):
    """normcdf, L = 2, m = 2 (fast tensor rules): every grid point converges, each warm-started solve
    equals a cold solve at that T within the error estimates, the JSON and the figure are written.
    The solves draw no code neurons (their patterns were half the CPU; the code fractions are tested in
    test_nonlinear.py); continue_deep hands nonlinear φ to continue_deep_nonlinear."""
    import solvers.deep.continuation as cont
    from figures.deep_continuation import plot_deep_continuation
    from solvers.deep.nonlinear import DeepOptions, solve_deep_nonlinear

    spec = ModelSpec(nonlinearity="normcdf", class_sizes=(3, 2), temperature=0.6)
    r = cont.continue_deep_nonlinear(spec, 2, "temperature", 0.6, 0.5, n_points=2,
                                     options=DeepOptions(code_neurons=0))
    assert r.success and len(r.selected) == 2 and all(p["converged"] for p in r.selected)
    calls = []
    monkeypatch.setattr(cont, "continue_deep_nonlinear", lambda *a, **k: calls.append((a, k)) or r)
    assert continue_deep(spec, 2, "temperature", 0.6, 0.5, n_points=2) is r
    assert calls == [((spec, 2, "temperature", 0.6, 0.5), {"n_points": 2, "progress": None})]
    cold = solve_deep_nonlinear(spec.replace(temperature=0.5), 2, options=DeepOptions(search=False, code_neurons=0))
    np.testing.assert_allclose(r.selected[-1]["outputs"], cold.outputs,
                               atol=2 * (np.max(cold.errors) + r.selected[-1]["error_estimate"]) + 1e-7)
    assert np.all(np.diag(np.asarray(r.selected[-1]["outputs"])) > np.diag(np.asarray(r.selected[0]["outputs"])))
    json.dumps(r.to_json())
    assert "f_cc" in r.table()
    assert plot_deep_continuation(r, tmp_path / "c.png").is_file()
