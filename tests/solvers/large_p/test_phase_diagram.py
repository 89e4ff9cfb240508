"""Phase diagrams of coding schemes (large-P theory, THEORY §4): labels, located transitions, resume."""
import json

import numpy as np
import pytest

from codingschemes.cli.main import main
from solvers.large_p.solve import solve_large_p
from solvers.large_p.problem import LargePProblem
from solvers.large_p.phase_diagram import coding_scheme, phase_diagram, phase_row


def _erf_second_moment(sigma=1.0):
    s2 = np.pi / 4
    return (2 / np.pi) * np.arcsin(2 * s2 * sigma**2 / (1 + 2 * s2 * sigma**2))


def test_erf_row_locates_the_symmetry_breaking_transition():
    """Along T at σ̄_a = 1.3: symmetric above T_c,0 = σ̄_a (ρ_0 E[φ²])^{1/2}, codes ± below, located by
    bisection to 1e-4 with the analytic value inside the bracket."""
    prob = LargePProblem(nonlinearity="erf", sigma_a_bar=1.0, class_fractions=(0.5, 0.25, 0.25))
    sbar = 1.3
    row = phase_row({"problem": prob.to_dict(), "x_name": "temperature", "x_values": list(np.linspace(0.9, 0.45, 10)),
                     "y_name": "sigma_a_bar", "y": sbar, "refine": 12})
    Tc = sbar * np.sqrt(0.5 * _erf_second_moment())
    assert row["label"][0] == "symmetric" and row["symmetric"][0]
    assert row["label"][-1] == "broken, 2 groups: +00 -00"
    (b,) = row["boundaries"]
    lo, hi = sorted(b["bracket"])
    assert lo <= Tc <= hi and hi - lo < 1e-4
    assert abs(b["x"] - Tc) < 1e-4
    assert b["kind"] == "transition"
    assert row["global_solves"] <= 2  # warm Newton carries the rest


def test_erf_second_transition_and_code_crossover():
    """Below T_c,0 the ± branches split again at T_c,1 = σ̄_a (ρ_1 E[φ²])^{1/2} (2 → 8 groups, codes
    still read +00/-00), and only at lower T do classes 1, 2 pass the code threshold (a crossover)."""
    prob = LargePProblem(nonlinearity="erf", sigma_a_bar=1.0, class_fractions=(0.5, 0.25, 0.25))
    row = phase_row({"problem": prob.to_dict(), "x_name": "temperature", "x_values": list(np.linspace(0.4, 0.25, 16)),
                     "y_name": "sigma_a_bar", "y": 1.0, "refine": 12})
    Tc1 = np.sqrt(0.25 * _erf_second_moment())
    kinds = [b["kind"] for b in row["boundaries"]]
    assert kinds == ["transition", "crossover"]
    tr = row["boundaries"][0]
    assert min(tr["bracket"]) <= Tc1 <= max(tr["bracket"]) and abs(tr["x"] - Tc1) < 1e-4
    assert tr["right"] == "broken, 8 groups: +00 -00"


def test_codes_of_a_sigmoid_and_mirror_symmetry_of_erf():
    """normcdf at small T: non-negative 0/1 codes with several groups; erf: every code comes with its mirror
    image and equal occupation."""
    sol = solve_large_p(LargePProblem(nonlinearity="normcdf", temperature=0.05))
    scheme = coding_scheme(sol)
    assert not scheme["symmetric"] and scheme["n_groups"] >= 2
    assert all(set(c) <= {"0", "1"} for c in scheme["codes"])
    assert sum(scheme["occupations"]) == pytest.approx(1.0, abs=1e-9)
    erf = coding_scheme(solve_large_p(LargePProblem(nonlinearity="erf", temperature=0.2)))
    occ = dict(zip(erf["codes"], erf["occupations"]))
    flip = str.maketrans("+-", "-+")
    assert all(occ[c.translate(flip)] == pytest.approx(p, abs=1e-9) for c, p in occ.items())


def test_linear_network_has_no_symmetry_breaking():
    prob = LargePProblem(nonlinearity="linear", class_fractions=(0.5, 0.25, 0.25))
    row = phase_row({"problem": prob.to_dict(), "x_name": "temperature", "x_values": [1.0, 0.5, 0.2, 0.05],
                     "y_name": "sigma_a_bar", "y": 1.0, "refine": 4})
    assert all(row["symmetric"]) and row["boundaries"] == []


def test_interrupted_diagram_resumes_without_losing_or_repeating_rows(tmp_path):
    prob = LargePProblem(nonlinearity="erf", class_fractions=(0.5, 0.25, 0.25))
    xs, ys = [0.8, 0.6, 0.4], [0.8, 1.0, 1.2]
    path = tmp_path / "pd.jsonl"
    full = phase_diagram(prob, "temperature", xs, "sigma_a_bar", ys, path, backend="serial", refine=4,
                         progress=False)
    lines = path.read_text().splitlines(keepends=True)
    assert len(lines) == 1 + len(ys)
    path.write_text("".join(lines[:2]) + lines[2][:40])  # killed while writing the second row
    again = phase_diagram(prob, "temperature", xs, "sigma_a_bar", ys, path, backend="serial", refine=4,
                          progress=False)
    assert (again.labels == full.labels).all()
    records = [json.loads(x) for x in path.read_text().splitlines()[1:]]
    assert sorted(r["index"] for r in records) == [0, 1, 2]
    assert records[0]["finished"] == json.loads(lines[1])["finished"]  # not recomputed


def test_phase_diagram_cli(tmp_path, capsys):
    code = main(["phase-diagram", "--x-range", "0.9,0.5,0.3", "--y-range", "1.0,1.5", "--backend", "serial",
                 "--refine", "3", "--format", "json", "--out", str(tmp_path), "--quiet"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {"labels", "boundaries", "curves", "x", "y"} <= set(out)
    assert (tmp_path / "phase_diagram.png").stat().st_size > 1000
    assert main(["phase-diagram", "--x", "temperature", "--y", "temperature", "--quiet", "--out", str(tmp_path)]) == 2
    assert "different" in capsys.readouterr().err
    assert main(["phase-diagram", "--x-range", "1:0.1:1", "--quiet", "--out", str(tmp_path)]) == 2
    assert "x-range" in capsys.readouterr().err


def test_transitions_are_traced_by_continuation(tmp_path):
    """The erf transitions followed through the (T, σ̄_a) plane by continuation lie on
    T_c,r(σ̄_a) = σ̄_a (ρ_r E[φ²])^{1/2} (r = 0: 1 → 2 groups; r = 1, 2: 2 → 8 groups) to 1e-7
    over the whole σ̄_a range, not only at the grid rows."""
    prob = LargePProblem(nonlinearity="erf", class_fractions=(0.5, 0.25, 0.25))
    pd = phase_diagram(prob, "temperature", [0.9, 0.7, 0.5, 0.35, 0.25], "sigma_a_bar", [0.8, 1.0, 1.2],
                       tmp_path / "pd.jsonl", backend="serial", refine=6, progress=False)
    E = _erf_second_moment()
    traced = [c for c in pd.traced if c["success"]]
    assert len(traced) == 2
    for c in traced:
        y, x = np.array(c["y"]), np.array(c["x"])
        assert y.min() == pytest.approx(0.8) and y.max() == pytest.approx(1.2) and len(y) > 5
        rho = 0.5 if "symmetric" in c["labels"] else 0.25
        assert np.max(np.abs(x - y * np.sqrt(rho * E))) < 1e-7
    assert any(c["kind"] == "transition (continued)" for c in pd.boundary_curves())
