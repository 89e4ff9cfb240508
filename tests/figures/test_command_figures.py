"""Every command's figure is written as PNG + PDF + JSON sidecar (figures/style.py: save, write_sidecar).

Small, fast runs of each command family (solve, validate, continue: large P, finite P and deep,
phase-diagram: large P and finite P) through the CLI; the scaling and generalize figures from small
synthetic results (a real scaling run takes minutes; the generalize command's own test,
tests/validation/test_generalization.py, runs the command).
"""
import json
from pathlib import Path

import numpy as np
import pytest

from codingschemes.cli.main import main


def _check(png: Path, script: str, *numbers):
    """PNG, PDF and the sidecar exist; the sidecar names the figure and the command and holds ``numbers``."""
    png = Path(png)
    assert png.suffix == ".png" and png.stat().st_size > 1000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"
    side = json.loads(png.with_suffix(".json").read_text())
    assert side["figure"] == png.name and side["script"] == script and "mode" not in side
    assert side["settings"] and set(numbers) <= set(side["numbers"])
    return side


COMMANDS = {
    "solve": (["solve", "--class-sizes", "8,4,4", "--nonlinearity", "linear", "--temperature", "0.05",
               "--sigma-a", "1", "--method", "newton"], "solve.png", "codingschemes solve", ("solutions",)),
    "validate": (["validate", "--nonlinearity", "linear", "--class-sizes", "2,2", "--temperature", "0.5",
                  "--widths", "20,40", "--chains", "2", "--sweeps", "30", "--burn", "10"], "validate.png",
                 "codingschemes validate", ("passed", "theory", "by_start")),
    "continue": (["continue", "--nonlinearity", "erf", "--class-fractions", "0.5,0.5", "--param", "temperature",
                  "--from", "0.6", "--to", "0.4", "--n-points", "5"], "continue.png", "codingschemes continue",
                 ("special_points", "branches")),
    "continue-finite-p": (["continue", "--finite-p", "--nonlinearity", "linear", "--class-sizes", "2,2",
                           "--sigma-a", "0.3", "--from", "0.4", "--to", "0.2", "--n-points", "3"],
                          "continue_finite_p.png", "codingschemes continue --finite-p", ("f_diag", "spread")),
    "continue-layers": (["continue", "--layers", "3", "--nonlinearity", "linear", "--from", "2.0", "--to", "0.5"],
                        "continue.png", "codingschemes continue --layers", ("p", "f_diag", "special_points")),
    "phase-diagram": (["phase-diagram", "--x-range", "0.9,0.5,0.3", "--y-range", "1.0,1.5", "--backend", "serial",
                       "--refine", "2"], "phase_diagram.png", "codingschemes phase-diagram",
                      ("labels", "points", "curves")),
    "phase-diagram-finite-p": (["phase-diagram", "--finite-p", "--nonlinearity", "linear", "--class-sizes", "2,2",
                                "--x", "temperature", "--x-range", "0.2,0.3", "--y", "sigma_a", "--y-range",
                                "0.3,0.4", "--backend", "serial"], "finite_p_map.png",
                               "codingschemes phase-diagram --finite-p", ("labels", "spread")),
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_command_writes_png_pdf_and_sidecar(name, tmp_path, capsys):
    argv, figure, script, numbers = COMMANDS[name]
    assert main([*argv, "--out", str(tmp_path), "--quiet", "--format", "json"]) in (0, 1)
    capsys.readouterr()
    _check(tmp_path / figure, script, *numbers)


def test_scaling_figure_writes_png_pdf_and_sidecar(tmp_path):
    """The three panels of figures/scaling.py from a synthetic Landau-like result."""
    from figures.scaling import plot_scaling
    from solvers.finite_p.scaling import ScalingResult
    from solvers.large_p.problem import LargePProblem

    problem = LargePProblem(nonlinearity="erf", class_fractions=(0.5, 0.25, 0.25), sigma_a_bar=1.0, temperature=0.4)
    tc, Ps = 0.5, (16, 32, 64)
    T = np.linspace(0.3, 0.7, 9)
    lines = [{"points": [{"temperature": t, "spread": max(tc - t, 0.0) + 1.0 / np.sqrt(P)} for t in T]} for P in Ps]
    crossovers = [{"shift": 0.1 / np.sqrt(P), "height": 1.0 / np.sqrt(P), "spread_at_tc": 1.0 / np.sqrt(P)}
                  for P in Ps]
    fit = {"exponent": 0.5, "exponent_error": 0.01, "amplitude": 0.4}
    res = ScalingResult(problem=problem, tc=tc, tc_source="test", P=Ps, lines=lines, crossovers=crossovers,
                        fits={"shift": fit, "height": fit, "spread_at_tc": fit},
                        large_p={"temperature": list(T), "spread": list(np.maximum(tc - T, 0.0))},
                        converged=True, status="converged", message="synthetic", iterations=0,
                        residual=0.0, error_estimate=0.01, time_seconds=0.0)
    side = _check(plot_scaling(res, tmp_path / "scaling.png"), "codingschemes scaling", "tc", "fits", "crossovers")
    assert side["numbers"]["tc"] == tc and side["settings"]["P"] == list(Ps)


def test_generalize_figure_writes_png_pdf_and_sidecar(tmp_path):
    """figures/generalization.py (``codingschemes generalize``) from a synthetic two-class report."""
    from figures.generalization import plot_generalization

    rng = np.random.default_rng(0)
    method = {"mean_predictor_error": [0.3, 0.2], "bayes_error": [0.4, 0.3], "mean_predictor": rng.random((6, 2))}
    report = {"theory": method, "gp": method, "sampling": {**method, "mean_predictor_error_mcse": [0.01, 0.01]},
              "dataset": {"classes": [0, 1], "description": "synthetic"},
              "spec": {"nonlinearity": "erf", "temperature": 1.0, "sigma_w": 1.0, "sigma_a": 0.5}}
    png = plot_generalization(report, tmp_path / "generalize.png", kernel=np.eye(6), activations=rng.normal(size=(5, 6)),
                              test_labels=[0, 0, 0, 1, 1, 1])
    side = _check(png, "codingschemes generalize", "theory", "gp", "sampling")
    assert side["numbers"]["sampling"]["mean_predictor_error_mcse"] == [0.01, 0.01]
