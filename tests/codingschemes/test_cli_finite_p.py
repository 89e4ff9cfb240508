"""``phase-diagram --finite-p``, ``continue --finite-p`` and ``scaling`` from the command line: bad input
exits 2 naming the flag before any work; the finite-P paths write their JSON and figures."""
import importlib
import json

import pytest

from codingschemes.cli.main import main, parse_checked


def _forbid_work(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("the work started")

    for path, name in (("solvers.finite_p.maps", "finite_p_map"), ("solvers.finite_p.maps", "continue_finite_p"),
                       ("solvers.finite_p.scaling", "finite_size_scaling"),
                       ("solvers.large_p.phase_diagram", "phase_diagram"),
                       ("solvers.large_p.continuation", "continue_solution")):
        monkeypatch.setattr(importlib.import_module(path), name, boom)


@pytest.mark.parametrize("argv, flag", [
    (["phase-diagram", "--finite-p", "--x", "rho_0"], "--x"),
    (["phase-diagram", "--finite-p", "--y", "sigma_a", "--x", "sigma_a_bar"], "--x and --y"),
    (["phase-diagram", "--finite-p", "--x-range=-0.1:0.5:4"], "--x-range"),
    (["phase-diagram", "--finite-p", "--y-range", "0.5,0.5"], "--y-range"),
    (["phase-diagram", "--finite-p", "--class-sizes", "4,0"], "--class-sizes"),
    (["phase-diagram", "--finite-p", "--refine", "3"], "--refine"),
    (["phase-diagram", "--finite-p", "--class-fractions", "0.5,0.5"], "--class-fractions"),
    (["phase-diagram", "--finite-p", "--sigma-a", "0.2", "--sigma-a-bar", "2"], "--sigma-a"),
    (["phase-diagram", "--finite-p", "--workers", "0"], "--workers"),
    (["phase-diagram", "--class-sizes", "8,4,4"], "--class-sizes"),  # a finite-P flag without --finite-p
    (["continue", "--finite-p", "--method", "natural"], "--method"),
    (["continue", "--finite-p", "--max-steps", "10"], "--max-steps"),
    (["continue", "--finite-p", "--layers", "2"], "--layers"),
    (["continue", "--finite-p", "--param", "rho_0", "--from", "0.3", "--to", "0.6"], "--param"),
    (["continue", "--finite-p", "--from=-1"], "--from"),
    (["continue", "--finite-p", "--param", "sigma_a"], "--from and --to"),
    (["continue", "--finite-p", "--n-points", "1"], "--n-points"),
    (["continue", "--finite-p", "--class-sizes", "x"], "--class-sizes"),
    (["scaling", "--P", "16,32"], "--P"),
    (["scaling", "--P", "64,32,16"], "--P"),
    (["scaling", "--P", "4,8,16", "--class-fractions", "0.9,0.05,0.05"], "--P"),
    (["scaling", "--nonlinearity", "linear"], "--nonlinearity"),
    (["scaling", "--window", "2:-3"], "--window"),
    (["scaling", "--n-temperatures", "2"], "--n-temperatures"),
    (["scaling", "--tc=-0.4"], "--tc"),
    (["scaling", "--sigma-a-bar", "0"], "--sigma-a-bar"),
])
def test_bad_input_exits_2_naming_the_flag_before_any_work(argv, flag, tmp_path, monkeypatch, capsys):
    _forbid_work(monkeypatch)
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out), "--quiet", "--no-plot"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"codingschemes {argv[0]}: error: ") and flag in err and "Traceback" not in err
    assert not out.exists()


def test_defaults_of_the_finite_p_paths_pass_the_checks(capsys):
    for argv in (["phase-diagram", "--finite-p"], ["continue", "--finite-p"], ["scaling"],
                 ["phase-diagram"], ["continue"]):
        assert parse_checked(argv).command == argv[0]
    assert "warning" not in capsys.readouterr().err


def test_continue_finite_p_writes_points_json_and_figure(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["continue", "--finite-p", "--nonlinearity", "linear", "--class-sizes", "2,2", "--sigma-a", "0.3",
            "--from", "0.4", "--to", "0.2", "--n-points", "3", "--out", str(out), "--quiet", "--format", "json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["finite_p"] is True and data["parameter"] == "temperature" and len(data["points"]) == 3
    assert data["converged"] and all(p["label"] == "symmetric" for p in data["points"])
    assert (out / "continue_finite_p.png").stat().st_size > 0 and (out / "continue_finite_p.pdf").exists()
    assert len(list(out.glob("continue-finite-p-*.jsonl"))) == 1
    assert main(argv) == 0  # resumed from the file: the same answer
    assert json.loads(capsys.readouterr().out)["points"] == data["points"]


def test_phase_diagram_finite_p_writes_map_json(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["phase-diagram", "--finite-p", "--nonlinearity", "linear", "--class-sizes", "2,2",
                 "--x", "temperature", "--x-range", "0.2,0.3", "--y", "sigma_a", "--y-range", "0.3",
                 "--backend", "serial", "--out", str(out), "--quiet", "--no-plot"]) == 0
    data = json.loads((out / "finite_p_map.json").read_text())
    assert data["x"] == [0.2, 0.3] and data["y"] == [0.3] and data["converged"]
    assert [p["temperature"] for p in data["rows"][0]["points"]] == [0.2, 0.3]
    assert not (out / "finite_p_map.png").exists()
    assert "1 × 2 points (finite P)" in capsys.readouterr().out
