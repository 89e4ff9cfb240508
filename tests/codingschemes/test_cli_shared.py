"""The command line's shared layer: every subcommand's --help, --no-plot and --quiet; bad values of
the shared model flags exit 2 with one error line naming the flag; the JSON keys of ``solve``; the
progress renderer (codingschemes/cli/args.py, codingschemes/cli/progress.py)."""
import argparse
import io
import json

import pytest

from codingschemes.cli.args import emit
from codingschemes.cli.main import COMMANDS, build_parser, main
from codingschemes.cli.progress import ProgressBar, as_event, progress_bar
from solvers.progress import ProgressEvent, report

SUBCOMMANDS = list(COMMANDS)

#: the keys of one solution of ``solve --format json`` on the default task (classes 32,16,16,
#: T = 0.05, σ_1 = σ_a = 1), printed by the code before the consolidation of the command line
SOLUTION_KEYS = {"class_sizes", "converged", "data", "error_estimate", "errors", "evaluations", "free_energy",
                 "integrator", "iterations", "kernel_blocks", "kernel_diagonal", "message", "method",
                 "nonlinearity", "outputs", "psi_table", "readout_moment", "residual", "sigma_a", "sigma_w", "start",
                 "status", "t", "temperature", "time_seconds"}
ERRORS_KEYS = {"kernel_blocks", "kernel_diagonal", "outputs", "readout_moment"}
PSI_TABLE_KEYS = {"error_estimate", "max_abs_g", "method"}
CONDENSATE_KEYS = {"codes", "directions", "margins", "mass"}  # relu only

#: one bad value of each shared flag
BAD = {"--nonlinearity": "cosh(h)", "--class-sizes": "8,x", "--class-fractions": "0.5,x", "--temperature": "-1",
       "--sigma-w": "0", "--sigma-a": "-1", "--sigma-a-bar": "0", "--layers": "0", "--seed": "-1",
       "--format": "xml"}


def _options(command):
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices[command]._option_string_actions)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_works(command, capsys):
    assert main([command, "--help"]) == 0
    assert capsys.readouterr().out.startswith(f"usage: codingschemes {command}")


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_no_plot_and_quiet_are_accepted(command):
    args = build_parser().parse_args([command, "--no-plot", "--quiet"])
    assert args.no_plot and args.quiet


def _bad_cases():
    cases = [(c, flag, value) for c in SUBCOMMANDS for flag, value in BAD.items() if flag in _options(c)]
    cases += [(c, "--temperature", "abc") for c in SUBCOMMANDS if "--temperature" in _options(c)]
    return cases + [(c, "--out", None) for c in SUBCOMMANDS]


@pytest.mark.parametrize("command, flag, value", _bad_cases())
def test_bad_shared_value_exits_2_naming_the_flag(command, flag, value, capsys, tmp_path):
    if value is None:  # --out: an existing file, not a folder
        value = str(tmp_path / "a_file")
        (tmp_path / "a_file").write_text("x")
    assert main([command, flag, value, "--quiet", "--no-plot"]) == 2
    err = capsys.readouterr().err
    assert err.endswith("\n") and "Traceback" not in err
    last = err.rstrip("\n").splitlines()[-1]
    assert last.startswith(f"codingschemes {command}: error: ") and flag in last


def test_every_subcommand_shares_the_model_flags():
    for command in SUBCOMMANDS:
        assert {"--out", "--quiet", "--no-plot"} <= _options(command)
    for command in ("solve", "validate", "continue", "phase-diagram", "generalize"):
        assert {"--nonlinearity", "--temperature", "--sigma-w", "--format"} <= _options(command)


def test_solve_json_keys_are_unchanged(capsys):
    assert main(["solve", "--nonlinearity", "linear", "--class-sizes", "8,4,4", "--format", "json", "--no-plot",
                 "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == SOLUTION_KEYS
    assert set(out["errors"]) == ERRORS_KEYS and set(out["psi_table"]) == PSI_TABLE_KEYS


@pytest.mark.slow
def test_solve_json_keys_on_the_default_task_are_unchanged(capsys):
    assert main(["solve", "--format", "json", "--no-plot", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"solutions"}
    assert [s["nonlinearity"] for s in out["solutions"]] == ["linear", "normcdf", "relu"]
    for s in out["solutions"]:
        relu = s["nonlinearity"] == "relu"
        assert set(s) == SOLUTION_KEYS | ({"condensate"} if relu else set())
        assert set(s["errors"]) == ERRORS_KEYS and set(s["psi_table"]) == PSI_TABLE_KEYS
        assert not relu or set(s["condensate"]) == CONDENSATE_KEYS


def test_no_plot_writes_no_figure(capsys, tmp_path):
    assert main(["solve", "--nonlinearity", "linear", "--class-sizes", "2,1,1", "--out", str(tmp_path),
                 "--no-plot", "--quiet"]) == 0
    capsys.readouterr()
    code = main(["validate", "--nonlinearity", "linear", "--class-sizes", "2,1,1", "--widths", "20", "--chains", "2",
                 "--sweeps", "30", "--burn", "10", "--out", str(tmp_path), "--no-plot", "--quiet"])
    assert code == (0 if "passed: True" in capsys.readouterr().out else 1)
    (checkpoint,) = tmp_path.glob("validate-*.jsonl")  # the chains were written, the figure was not
    assert len(checkpoint.read_text().splitlines()) == 1 + 2
    assert main(["figures", "--only", "drift", "--out", str(tmp_path / "figs"), "--no-plot", "--quiet"]) == 0
    assert capsys.readouterr().out.strip().endswith("figures/fig_drift.py")
    assert not list(tmp_path.rglob("*.png"))


def test_emit_writes_standard_json():
    buf = io.StringIO()
    from contextlib import redirect_stdout
    with redirect_stdout(buf):
        emit({"x": float("nan"), "y": [1.0, float("inf")]}, "json")
        emit({"x": 1}, "table", lambda: "a table")
    first, second = buf.getvalue().splitlines()
    assert json.loads(first) == {"x": "NaN", "y": [1.0, "Infinity"]} and second == "a table"


def test_progress_bar_reads_events_and_legacy_calls():
    assert as_event((ProgressEvent("newton", 3, 10, {"residual": 1e-3}),)).step == 3
    assert as_event((4, 2.5e-6)) == ProgressEvent("iteration", 4, None, {"residual": 2.5e-6})
    assert as_event((2, 5)) == ProgressEvent("step", 2, 5, {})
    assert as_event((1, {"samples": 256, "residual": 0.1})).values == {"samples": 256, "residual": 0.1}
    assert as_event((7, 0.3, {"branch": 1})).values == {"parameter": 0.3, "branch": 1}
    stream = io.StringIO()
    bar = ProgressBar("test", file=stream)
    assert report(bar, "round", 1, 3, residual=0.5) is True  # never asks to stop
    bar(2, 0.25)
    bar(5, 0.1, {"kind": "stable", "n_branches": 2})
    bar.close("done")
    text = stream.getvalue()
    assert "[test] round" in text and "[test] iteration" in text and text.endswith("[test] done\n")
    with progress_bar(argparse.Namespace(quiet=True), "x") as none:
        assert none is None
