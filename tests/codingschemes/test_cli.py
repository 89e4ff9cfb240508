"""The public CLI interface of `codingschemes solve`."""
import json

import dataclasses

import numpy as np
import pytest
from scipy import optimize

from codingschemes.cli.main import main

KEYS = {"t", "outputs", "readout_moment", "kernel_diagonal", "kernel_blocks", "converged", "iterations",
        "error_estimate"}


def test_solve_json_has_the_documented_keys(capsys, tmp_path):
    code = main(["solve", "--class-sizes", "8,4,4", "--nonlinearity", "linear", "--temperature", "0.05",
                 "--sigma-w", "1", "--sigma-a", "1", "--method", "newton", "--format", "json", "--out",
                 str(tmp_path), "--quiet"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert KEYS <= set(out)
    assert out["converged"] is True and len(out["t"]) == 3 and len(out["kernel_diagonal"]) == 3
    assert out["psi_table"]["method"] == "closed-form" and out["psi_table"]["error_estimate"] < 1e-9
    assert (tmp_path / "solve.png").stat().st_size > 1000


@pytest.mark.parametrize("args, word", [
    (["--temperature", "-1"], "temperature"),
    (["--class-sizes", "8,x"], "class_sizes"),
    (["--sigma-a", "0"], "sigma_a"),
    (["--nonlinearity", "cosh(h)"], "normalised"),
    (["--method", "secant"], "method"),
])
def test_bad_input_exits_2_with_a_named_parameter(capsys, args, word):
    assert main(["solve", "--no-plot", "--quiet", "--nonlinearity", "linear", *args]) == 2
    assert word in capsys.readouterr().err


def test_several_nonlinearities_give_a_list_of_solutions(capsys):
    code = main(["solve", "--class-sizes", "4,2,2", "--temperature", "0.5", "--nonlinearity", "linear,erf",
                 "--format", "json", "--no-plot", "--quiet"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [s["nonlinearity"] for s in out["solutions"]] == ["linear", "erf"]
    assert all(KEYS <= set(s) for s in out["solutions"])


def test_solve_exits_1_when_the_qmc_error_bar_misses_integral_tol(capsys):
    """m = 5 classes (QMC): the relative error bar (~4e-3) misses the default integral_tol 1e-7, so
    converged is false and the exit code 1; --integral-tol 1e-2 states a bound it meets: exit 0."""
    argv = ["solve", "--class-sizes", "4,3,3,2,2", "--temperature", "0.2", "--nonlinearity", "linear",
            "--format", "json", "--no-plot", "--quiet"]
    assert main(argv) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["converged"] is False and out["status"] == "error-bound-missed" and "error bar" in out["message"]
    assert main([*argv, "--integral-tol", "1e-2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["converged"] is True
    f = np.diag(np.asarray(out["outputs"], dtype=float))
    np.testing.assert_allclose(f, linear_mean_field_outputs((4, 3, 3, 2, 2), 0.2), rtol=0.03)


def linear_mean_field_outputs(class_sizes, temperature, sigma_w=1.0, sigma_a=1.0):
    """f_cc of linear φ on orthogonal class data, solved here independently of theory.linear (THEORY §3):
    1 − Tτ = σ_1² τ / (σ_a⁻² − σ_1² P_c τ²), f_cc = σ_1² τ U_cc, U_cc = (σ_a⁻² − σ_1² P_c τ²)⁻¹."""
    s2, ia2 = sigma_w**2, sigma_a**-2
    out = []
    for P in class_sizes:
        tau = optimize.brentq(lambda x: 1 - temperature * x - s2 * x / (ia2 - s2 * P * x * x), 0.0,
                              np.sqrt(ia2 / (s2 * P)) * (1 - 1e-12), xtol=1e-15)
        out.append(s2 * tau / (ia2 - s2 * P * tau * tau))
    return np.array(out)


def test_validate_json_interface(capsys, tmp_path):
    """Linear φ at T = 0.5 with long enough chains: a case that must pass (exit 0), and the theory in the
    report is the closed form."""
    code = main(["validate", "--nonlinearity", "linear", "--class-sizes", "4,2,2", "--temperature", "0.5",
                 "--widths", "60,120", "--chains", "2", "--sweeps", "150", "--burn", "50", "--format", "json",
                 "--out", str(tmp_path), "--quiet"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["passed"] is True
    np.testing.assert_allclose(np.diag(out["theory"]["outputs"]), linear_mean_field_outputs((4, 2, 2), 0.5),
                               rtol=1e-9)
    assert {"theory", "sampling", "diagnostics", "passed"} <= set(out)
    assert KEYS <= set(out["theory"])
    assert {"outputs", "readout_moment", "kernel_diagonal", "kernel_blocks"} <= set(out["sampling"])
    assert {"ess_min", "rhat_max"} <= set(out["diagnostics"])
    assert (tmp_path / "validate.png").stat().st_size > 1000


def test_validate_rejects_bad_widths(capsys):
    assert main(["validate", "--widths", "0,100", "--quiet"]) == 2
    assert "widths" in capsys.readouterr().err


def test_validate_resumes_from_its_checkpoint_without_recomputing(capsys, tmp_path):
    """Every chain is written as it finishes; a rerun after losing some chains recomputes only those
    and, chains being seeded individually, reproduces the uninterrupted report exactly (no figure: half the
    CPU; validate's figure is checked by test_validate_json_interface)."""
    args = ["validate", "--nonlinearity", "linear", "--class-sizes", "2,1,1", "--temperature", "0.5",
            "--widths", "20", "--chains", "3", "--sweeps", "40", "--burn", "10", "--init", "both",
            "--format", "json", "--out", str(tmp_path), "--quiet", "--no-plot"]
    main(args)
    full = json.loads(capsys.readouterr().out)
    (ckpt,) = tmp_path.glob("validate-*.jsonl")
    lines = ckpt.read_text().splitlines(keepends=True)
    assert len(lines) == 1 + 6  # header + 2 starts × 3 chains
    ckpt.write_text("".join(lines[:3]) + lines[3][:25])  # killed while writing the third chain
    main(args)
    resumed = json.loads(capsys.readouterr().out)
    assert resumed["sampling"] == full["sampling"] and resumed["by_start"] == full["by_start"]
    records = [json.loads(x) for x in ckpt.read_text().splitlines()[1:]]
    assert sorted(r["index"] for r in records) == list(range(6))  # none lost, none duplicated
    assert [r["finished"] for r in records[:2]] == [json.loads(x)["finished"] for x in lines[1:3]]


def test_validate_lazy_scaling_compares_with_the_gp(capsys, tmp_path):
    code = main(["validate", "--nonlinearity", "linear", "--class-sizes", "2,1,1", "--temperature", "0.5",
                 "--widths", "30", "--chains", "2", "--sweeps", "60", "--burn", "20", "--scaling", "lazy",
                 "--format", "json", "--out", str(tmp_path), "--quiet"])
    out = json.loads(capsys.readouterr().out)
    assert code == (0 if out["passed"] else 1)
    assert out["theory"]["method"] == "gp" and out["spec"]["scaling"] == "lazy"
    # the NNGP on orthogonal inputs (K0 = I): f = σ_a²σ_1²/(σ_a²σ_1² + T) for every input, whatever its class
    np.testing.assert_allclose(out["theory"]["outputs"], np.eye(3) / 1.5, rtol=1e-12, atol=1e-12)
    assert main(["validate", "--scaling", "lazy", "--swaps", "3", "--quiet", "--out", str(tmp_path)]) == 2
    assert "lazy" in capsys.readouterr().err


def test_validate_fails_against_a_wrong_theory(capsys, tmp_path, monkeypatch):
    """The case of test_validate_json_interface (which passes) compared with the theory at T/5 instead of T:
    the check must fail (exit 1), so it can."""
    import validation.report as report

    right = report.solve
    monkeypatch.setattr(report, "solve", lambda spec: right(dataclasses.replace(spec, temperature=spec.temperature / 5)))
    code = main(["validate", "--nonlinearity", "linear", "--class-sizes", "4,2,2", "--temperature", "0.5",
                 "--widths", "60,120", "--chains", "2", "--sweeps", "150", "--burn", "50", "--format", "json",
                 "--out", str(tmp_path), "--quiet", "--no-plot"])
    out = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(np.diag(out["theory"]["outputs"]), linear_mean_field_outputs((4, 2, 2), 0.1),
                               rtol=1e-9)
    assert out["passed"] is False and code == 1


def test_solve_layers_gives_per_layer_kernels(capsys):
    """``solve --layers 2`` (linear): a "layers" list with each layer's class-indexed kernel;
    a φ the deep solvers do not handle is refused with exit code 2 (the physics is tested in
    tests/validation/test_deep.py and tests/solvers/deep/test_nonlinear.py)."""
    assert main(["solve", "--nonlinearity", "linear", "--class-sizes", "4,2,2", "--layers", "2",
                 "--format", "json", "--no-plot", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [layer["layer"] for layer in out["layers"]] == [1, 2]
    for layer in out["layers"]:
        assert len(layer["kernel_diagonal"]) == 3 and len(layer["kernel_blocks"]) == 3
    assert main(["solve", "--nonlinearity", "Abs(h)", "--layers", "2", "--quiet", "--no-plot"]) == 2
    assert "kinks" in capsys.readouterr().err


def test_solve_large_p_layers_gives_the_saturated_closed_form(capsys):
    """``solve --layers 2 --large-p`` (erf): at leading order in P the last hidden layer saturates
    into ±1 units, so f_cc = σ̄²ρ_c/(T + σ̄²ρ_c) for odd φ (solvers.deep.large_p) and the last
    layer's kernel diagonal is φ(±∞)² = 1; ReLU (condensates in every layer) is refused with exit 2."""
    assert main(["solve", "--nonlinearity", "erf", "--class-sizes", "32,16,16", "--layers", "2", "--large-p",
                 "--temperature", "0.1", "--sigma-a-bar", "1.5", "--format", "json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    rho = np.array([0.5, 0.25, 0.25])
    expect = 2.25 * rho / (0.1 + 2.25 * rho)
    assert np.allclose(np.diag(out["outputs"]), expect, atol=1e-9)
    assert out["sigma_a_bar"] == 1.5 and [layer["layer"] for layer in out["layers"]] == [1, 2]
    assert np.allclose(out["layers"][1]["kernel_diagonal"], 1.0, atol=1e-9)
    assert main(["solve", "--nonlinearity", "relu", "--layers", "2", "--large-p", "--quiet"]) == 2
    assert "ReLU" in capsys.readouterr().err


def test_validate_layers_init_theory_runs_the_stationarity_test(capsys):
    """``validate --layers 2 --init theory`` (linear): chains start from the per-layer theory measures
    (validation.deep_theory_init) and the report carries the stationarity ratios; swaps need a
    nonlinear φ (exit 2). The physics is asserted in tests/validation/test_deep_stationarity.py."""
    rc = main(["validate", "--nonlinearity", "linear", "--layers", "2", "--class-sizes", "4,2,2", "--init", "theory",
               "--widths", "60", "--chains", "2", "--sweeps", "40", "--burn", "10", "--format", "json", "--quiet"])
    out = json.loads(capsys.readouterr().out)
    assert {"passed", "ratio", "theory", "sampling"} <= set(out) and rc == (0 if out["passed"] else 1)
    assert main(["validate", "--nonlinearity", "linear", "--layers", "2", "--init", "theory", "--swaps", "2",
                 "--quiet"]) == 2
    assert "swaps" in capsys.readouterr().err
