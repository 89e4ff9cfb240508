"""The opt-in multi-saddle rule (validation/deep_saddles.py): the assignment of chains to theory saddles,
the equilibrium and metastable standing, the warm-start path, the CLI flag and its refusals."""
import json
from types import SimpleNamespace

import numpy as np
import pytest

from theory.codes import split_layer_vector
from theory.spec import ModelSpec, SpecError
from validation.deep_saddles import _standing, assign_chains, saddle_rule, theory_saddles, warm_path

M, L = 2, 2
SPEC = ModelSpec("normcdf", class_sizes=(2, 2), sigma_a=0.5, temperature=0.1)
D = 2 * M * M + L * (M + M * M)  # f, U, per layer kernel diagonal and blocks


class _Saddle:
    """A stand-in for a DeepNonlinearSolution: the fields the rule reads."""

    def __init__(self, vector, eps, S, S_err, codes):
        parts = split_layer_vector(np.asarray(vector, dtype=np.float64), M, L)
        self.outputs, self.readout_moment = parts["outputs"], parts["readout_moment"]
        self._layers = parts["layers"]
        self.errors = np.full(D, eps)
        self.free_energy, self.free_energy_error = S, S_err
        self.stable = self.converged = True
        self.error_estimate = eps
        self.code_fractions = [{"11": 1.0}, codes]

    def layer_observables(self, ell):
        lay = self._layers[ell - 1]
        return SimpleNamespace(kernel_diagonal=lay["kernel_diagonal"], kernel_blocks=lay["kernel_blocks"])


def _vectors():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.1, 0.9, D)
    b = a.copy()
    b[1] += 0.3  # the second saddle differs in f_12 by 0.3
    return a, b


def test_each_chain_goes_to_its_nearest_saddle_and_passes_within_the_allowance():
    a, b = _vectors()
    mcse = np.full(D, 0.002)
    # N = 400, P = 4: allowance 4·0.002 + 4·0.001 + max(1, θ)·4/400 = 0.022 per observable
    means = [a + 0.01, b - 0.01, b + 0.05]
    out = assign_chains([a, b], [np.full(D, 0.001)] * 2, means, [mcse] * 3, 400, 4)
    assert out["saddle"].tolist() == [0, 1, 1]
    assert out["passed"].tolist() == [True, True, False]
    np.testing.assert_allclose(out["worst"][:2], 0.01 / 0.022, rtol=1e-12)
    assert out["ratio"].shape == (3, 2) and out["ratio"][0, 1] > 10
    with pytest.raises(ValueError, match="shapes"):
        assign_chains([a, b], [np.zeros(D)], means, [mcse] * 3, 400, 4)


def test_standing_equilibrium_metastable_and_equal_within_errors():
    assert _standing(np.array([-233.5, -285.0]), np.array([0.6, 0.6])) == ["equilibrium", "metastable"]
    assert _standing(np.array([-183.19, -182.98]), np.array([0.25, 0.40])) == ["equal within errors", "equilibrium"]


def test_saddle_rule_report_names_each_chains_saddle_and_the_equilibrium():
    a, b = _vectors()
    saddles = [{"solution": _Saddle(a, 1e-3, -10.0, 0.1, {"10": 0.5, "01": 0.5}), "anchor": 0.1,
                "found_by": "default solve at T", "log": []},
               {"solution": _Saddle(b, 1e-3, -12.0, 0.1, {"11": 1.0}), "anchor": 0.2,
                "found_by": "default solve at T = 0.2, then 6 warm starts", "log": []}]
    mcse = np.full(D, 0.002)
    chains = [{"mean": b + 0.005, "mcse": mcse, "code_fractions": [{"11": 1.0}, {"11": 0.9, "10": 0.1}]},
              {"mean": a - 0.005, "mcse": mcse, "code_fractions": [{"11": 1.0}, {"10": 0.5, "01": 0.5}]}]
    rule = saddle_rule(saddles, [{"width": 400, "chains": chains}], SPEC, L)
    assert rule["passed"] and rule["any_chain_metastable"]
    assert rule["equilibrium"] == {"saddle": 0, "free_energy": -10.0, "free_energy_error": 0.1}
    rows = rule["per_width"][0]["chains"]
    assert [r["saddle"] for r in rows] == [1, 0] and [r["standing"] for r in rows] == ["metastable", "equilibrium"]
    assert rows[0]["code_fractions_max_difference"] == pytest.approx(0.1)
    assert [s["standing"] for s in rule["saddles"]] == ["equilibrium", "metastable"]
    assert "not that they sample the equilibrium" in rule["rule"] and "chain 0 → saddle 1" in rule["summary"]
    json.dumps(rule, default=lambda x: x.tolist())  # JSON-ready up to numpy arrays


def test_warm_path_is_geometric_with_bounded_steps():
    p = warm_path(0.095, 0.05, 1.12)
    assert p[-1] == pytest.approx(0.05) and len(p) == 6
    ratios = np.concatenate([[0.095], p])[:-1] / p
    assert np.all(ratios <= 1.12 + 1e-12) and np.allclose(ratios, ratios[0])
    assert warm_path(0.05, 0.05).size == 0 and warm_path(0.05, 0.06)[-1] == pytest.approx(0.06)
    with pytest.raises(SpecError, match="max_ratio"):
        warm_path(0.1, 0.05, 1.0)


def test_theory_saddles_keeps_distinct_stable_ones(monkeypatch):
    """The collection without a solve: the anchors' paths give one duplicate of the first saddle, one new
    saddle and one unstable one; kept: the first and the new one."""
    import solvers.deep.nonlinear as nl

    a, b = _vectors()
    first = _Saddle(a, 1e-3, -10.0, 0.1, {"11": 1.0})
    by_anchor = {0.2: _Saddle(a + 1e-3, 1e-3, -10.0, 0.1, {}), 0.3: _Saddle(b, 1e-3, -12.0, 0.1, {"11": 1.0}),
                 0.4: _Saddle(b + 0.2, 1e-3, -11.0, 0.1, {})}
    by_anchor[0.4].stable = False

    def fake_solve(spec, layers, sigmas=None, start=None, options=None):
        sol = by_anchor[spec.temperature] if start is None else start
        sol.found, sol.saddles, sol.status = True, [{"selected": True, "found_by": "warm start"}], "converged"
        return sol

    monkeypatch.setattr(nl, "solve_deep_nonlinear", fake_solve)
    kept = theory_saddles(SPEC, L, (0.2, 0.3, 0.4), first=first)
    assert [k["anchor"] for k in kept] == [0.1, 0.3]
    assert kept[1]["found_by"].startswith("default solve at T = 0.3, then")
    every = theory_saddles(SPEC, L, (0.2, 0.3, 0.4), first=first, keep_dropped=True)
    assert [c["dropped"] for c in every] == [None, "the same saddle as an earlier one", None, "unstable"]
    chain = {"mean": b, "mcse": np.full(D, 0.002), "code_fractions": [{"11": 1.0}, {"11": 1.0}]}
    rule = saddle_rule(every, [{"width": 400, "chains": [chain]}], SPEC, L)
    assert len(rule["saddles"]) == 2 and [d["anchor"] for d in rule["dropped"]] == [0.2, 0.4]
    first.stable = False  # no stable saddle at all: the rule fails and says so
    none = saddle_rule([{**every[0], "dropped": "unstable"}], [{"width": 400, "chains": [chain]}], SPEC, L)
    assert not none["passed"] and none["saddles"] == [] and "no converged stable saddle" in none["summary"]


def test_cli_saddles_flag_refusals(capsys):
    from codingschemes.cli.main import main

    base = ["validate", "--layers", "2", "--class-sizes", "2,1,1", "--quiet", "--no-plot"]
    assert main(base + ["--saddles", "0.1,x"]) == 2
    assert main(base + ["--saddles", "-0.1"]) == 2
    assert main(base + ["--saddles", "0.6", "--init", "theory"]) == 2
    assert main(base + ["--saddles", "0.6", "--nonlinearity", "linear"]) == 2
    assert main(["validate", "--saddles", "0.6", "--quiet", "--no-plot"]) == 2  # one layer: not applicable
    assert "--saddles" in capsys.readouterr().err


@pytest.mark.slow
def test_small_case_end_to_end(capsys):
    """normcdf, L = 2, classes 2,1,1, σ_a = 0.7, T = 0.3 (the saddle of T = 0.4 followed down is the default
    one): one saddle, both chains assigned to it, the JSON keys (measured 44 s CPU with the default exact moves)."""
    from codingschemes.cli.main import main

    rc = main(["validate", "--layers", "2", "--nonlinearity", "normcdf", "--class-sizes", "2,1,1", "--sigma-a", "0.7",
               "--temperature", "0.3", "--widths", "8", "--chains", "2", "--sweeps", "40", "--burn", "10",
               "--init", "random", "--saddles", "0.4", "--format", "json", "--quiet", "--no-plot"])
    out = json.loads(capsys.readouterr().out)
    rule = out["saddle_rule"]
    assert rc == (0 if rule["passed"] else 1)
    assert len(rule["saddles"]) == 1 and rule["equilibrium"]["saddle"] == 0 and not rule["any_chain_metastable"]
    assert [r["saddle"] for r in rule["per_width"][0]["chains"]] == [0, 0]
    assert "passed" in out and "z_max" in out  # the default rule's keys are unchanged
