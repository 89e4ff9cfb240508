"""Bad input never reaches the work (issue 15): every argument of every subcommand is checked
before any solve and before any file is written; an error names the flag (exit 2), a harmless
flag that does not apply is a warning. The property tests call the parser and the checks only
(:func:`codingschemes.cli.main.parse_checked`), never the work."""
import contextlib
import importlib
import io

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from theory.spec import SpecError
from codingschemes.cli.main import COMMANDS, build_parser, main, parse_checked


def _forbid_work(monkeypatch):
    """Make every solver entry the CLI calls fail loudly: a test passing means the checks stopped first."""
    def boom(*a, **k):
        raise AssertionError("the work started")

    entries = (("solvers.solve", "solve"), ("validation.report", "validate"), ("validation.deep", "validate_deep"),
               ("validation.deep_theory_init", "deep_stationarity"),
               ("solvers.large_p.phase_diagram", "phase_diagram"),
               ("solvers.large_p.continuation", "continue_solution"),
               ("solvers.deep.continuation", "continue_deep"),
               ("validation.generalization", "generalization_report"))
    # import every module before patching any: a module imported for the first time inside the patch
    # would bind the patched function for good (from solvers.solve import solve) and break later tests
    modules = [importlib.import_module(path) for path, _ in entries]
    for mod, (_, name) in zip(modules, entries):
        monkeypatch.setattr(mod, name, boom)


@pytest.mark.parametrize("argv, flag", [
    (["validate", "--temperature", "0"], "--temperature"),  # the sampler needs T > 0 (was a RuntimeError)
    (["validate", "--layers", "2", "--chains", "1"], "--chains"),  # split-R̂ needs two chains (was a traceback)
    (["validate", "--chains", "1"], "--chains"),
    (["validate", "--burn", "300", "--sweeps", "300"], "--burn"),  # was found after the solve and the file
    (["validate", "--burn", "-1"], "--burn"),
    (["validate", "--sweeps", "0", "--burn", "0"], "--sweeps"),
    (["validate", "--workers", "0"], "--workers"),
    (["validate", "--swaps", "-2"], "--swaps"),
    (["validate", "--widths", "100,x"], "widths"),
    (["validate", "--scaling", "lazy", "--init", "theory"], "--scaling"),
    (["validate", "--layers", "2", "--scaling", "lazy"], "--scaling"),
    (["validate", "--layers", "2", "--nonlinearity", "linear", "--init", "theory", "--swaps", "3"], "--swaps"),
    (["validate", "--layers", "2", "--nonlinearity", "cosh(h)"], "--nonlinearity"),
    (["solve", "--tol", "nan"], "--tol"),
    (["solve", "--tol", "2"], "--tol"),
    (["solve", "--integral-tol", "0"], "--integral-tol"),
    (["solve", "--integral-tol", "nan"], "--integral-tol"),
    (["solve", "--integrator", "simpson"], "--integrator"),
    (["solve", "--nonlinearity", "h**("], "--nonlinearity"),  # a sympy TokenError, was a traceback
    (["solve", "--sigma-w", "inf"], "--sigma-w"),
    (["solve", "--layers", "0"], "--layers"),
    (["solve", "--layers", "3", "--nonlinearity", "normcdf", "--search-budget", "-1"], "--search-budget"),
    (["solve", "--layers", "2", "--nonlinearity", "erf", "--search-seconds", "nan"], "--search-seconds"),
    (["validate", "--seed", "-1"], "--seed"),
    (["continue", "--max-steps", "0"], "--max-steps"),
    (["continue", "--n-points", "1"], "--n-points"),
    (["continue", "--from", "nan"], "--from"),
    (["continue", "--class-sizes", "4,2,2"], "--class-sizes"),  # the large-P theory takes --class-fractions
    (["continue", "--layers", "2", "--param", "sigma_a_bar", "--from", "1", "--to", "2"], "--param"),
    (["continue", "--layers", "2", "--from", "-1"], "--from"),
    (["continue", "--layers", "2", "--class-fractions", "0.5,0.5"], "--class-fractions"),
    (["phase-diagram", "--x-range", "0:1:nan"], "--x-range"),
    (["phase-diagram", "--x-range", "0.1:1:100000000"], "--x-range"),  # n bounded before np.linspace
    (["phase-diagram", "--y-range", "inf,1"], "--y-range"),
    (["phase-diagram", "--x-range=-1:1:5"], "--x"),
    (["phase-diagram", "--x", "sigma_w", "--y", "sigma_1"], "--x"),
    (["phase-diagram", "--x", "beta"], "--x"),
    (["phase-diagram", "--refine", "-1"], "--refine"),
    (["phase-diagram", "--workers", "0"], "--workers"),
    (["phase-diagram", "--class-fractions", "0.5,0.6"], "--class-fractions"),
    (["generalize", "--temperature", "0"], "--temperature"),
    (["generalize", "--overlap", "1.5"], "--overlap"),
    (["generalize", "--train-per-class", "0"], "--train-per-class"),
    (["generalize", "--test-per-class", "-3"], "--test-per-class"),
    (["generalize", "--classes", "3"], "--classes"),
    (["generalize", "--dataset", "file"], "--dataset"),
    (["generalize", "--theory-chains", "100"], "--theory-chains"),
    (["figures", "--only", "nonsense"], "--only"),
])
def test_bad_input_exits_2_naming_the_flag_before_any_work(argv, flag, tmp_path, monkeypatch, capsys):
    _forbid_work(monkeypatch)
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out), "--quiet", "--no-plot"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"codingschemes {argv[0]}: error: ") and flag in err and "Traceback" not in err
    assert not out.exists()  # no results file, no checkpoint, no figure


@pytest.mark.parametrize("argv, flag", [
    (["solve", "--layers", "2", "--nonlinearity", "linear", "--tol", "1e-3"], "--tol"),
    (["solve", "--layers", "2", "--nonlinearity", "linear", "--integral-tol", "1e-3"], "--integral-tol"),
    (["solve", "--large-p", "--nonlinearity", "linear", "--method", "fixed-point"], "--method"),
    (["solve", "--large-p", "--nonlinearity", "linear", "--sigma-a", "0.5"], "--sigma-a"),
    (["solve", "--nonlinearity", "linear", "--sigma-a-bar", "2"], "--sigma-a-bar"),
    (["solve", "--nonlinearity", "linear", "--patterns", "prior-span"], "--patterns"),
    (["solve", "--nonlinearity", "linear", "--search-budget", "100"], "--search-budget"),
    (["validate", "--layers", "2", "--nonlinearity", "linear", "--sampler", "gibbs"], "--sampler"),
    (["validate", "--layers", "2", "--nonlinearity", "linear", "--workers", "2"], "--workers"),
    (["continue", "--layers", "2", "--nonlinearity", "linear", "--method", "natural"], "--method"),
    (["phase-diagram", "--dask-address", "tcp://x:1"], "--dask-address"),
    (["generalize", "--dataset", "digits", "--overlap", "0.3"], "--overlap"),
    (["generalize", "--no-sampling", "--width", "50"], "--width"),
])
def test_a_flag_that_does_not_apply_is_a_warning_naming_it(argv, flag, capsys):
    args = parse_checked(argv)
    assert args.command == argv[0]
    err = capsys.readouterr().err
    assert f"codingschemes {argv[0]}: warning: {flag} does not apply" in err


def test_a_deep_linear_error_is_bad_input(monkeypatch, capsys):
    from solvers.deep.linear import DeepLinearError
    import codingschemes.cli.args as cli_args

    assert DeepLinearError in cli_args.BAD_INPUT

    def raises(args):
        raise DeepLinearError("no real root")

    assert cli_args.run_command("solve", raises, None) == 2
    assert capsys.readouterr().err == "codingschemes solve: error: no real root\n"


def test_defaults_pass_the_checks_silently(capsys):
    for command in COMMANDS:
        assert parse_checked([command]).command == command
    assert "warning" not in capsys.readouterr().err


# ----------------------------------------------------------------------------- property tests

#: values for any flag: numbers at and beyond every edge, non-finite, empty, garbage
VALUES = st.one_of(
    st.sampled_from(["0", "1", "-1", "2", "3", "16", "0.5", "1e308", "-1e308", "1e-320", "nan", "NaN", "inf",
                     "-inf", "", " ", "abc", "4,2,2", "0.5,0.25,0.25", "0.5,0.6", "0:1:3", "1:0.1:2", "0:1:nan",
                     "0.05:1.0:40", "0:1:0", ",", "a,b", "1,,2", "temperature", "sigma_w", "rho_0", "rho_9",
                     "linear", "relu", "erf", "h**2", "h**(", "exp(h)", "random", "theory", "json", "x:y:z",
                     "9" * 30, "-0", "1_000", "0x10"]),
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=10),
)


def _flags(command):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return [a for a in sub.choices[command]._actions if a.option_strings and a.dest not in ("help",)]


def _argv(draw, command):
    actions = draw(st.lists(st.sampled_from(_FLAGS[command]), max_size=5, unique_by=lambda a: a.dest))
    argv = [command]
    for a in actions:
        flag = a.option_strings[0]
        if a.nargs == 0:
            argv.append(flag)
        elif a.choices and draw(st.booleans()):
            argv.append(f"{flag}={draw(st.sampled_from(list(a.choices)))}")
        else:
            argv.append(f"{flag}={draw(VALUES)}")
    return argv


_FLAGS = {c: _flags(c) for c in COMMANDS}


@pytest.mark.parametrize("command", list(COMMANDS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_argument_list_is_a_clean_exit_2_or_passes_the_checks(command, data):
    argv = _argv(data.draw, command)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            args = parse_checked(argv)
        except SystemExit as exc:  # argparse's usage error names the flag: "argument --chains: invalid int"
            assert exc.code == 2 and "argument --" in err.getvalue(), (argv, err.getvalue())
            return
        except SpecError as exc:
            assert "--" in str(exc), (argv, str(exc))  # names the flag
            return
    assert args.command == command
    assert "Traceback" not in err.getvalue()
