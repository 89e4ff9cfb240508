"""The shared argument layer of the ``codingschemes`` subcommands: model flags, output, errors.

Every subcommand declares the flags it shares with the others through :func:`add_shared` (one
table, :data:`FLAGS`, with one set of defaults: those of :class:`theory.spec.ModelSpec` for the
model, class fractions ρ_c = P_c/P of its class sizes). A subcommand that needs another default
passes it with the reason, and the help text shows both. :func:`check_shared` checks the parsed
values before any work starts and raises :class:`theory.spec.SpecError` naming the flag.
:func:`emit` prints JSON through :func:`theory.jsonio.dumps` (or a table), and :func:`run_command`
is the one error path: bad input is printed as ``codingschemes <cmd>: error: <message>`` on stderr
with exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
from dataclasses import fields
import hashlib
import json
import math
from pathlib import Path
import sys

from theory.checks import check_float, check_int
from theory.jsonio import dumps
from theory.nonlinearities import BUILTIN_NAMES, get_nonlinearity
from theory.spec import DEFAULT_CLASS_SIZES, ModelSpec, SpecError, parse_class_sizes
from solvers.deep.common import DeepLinearError

__all__ = ["FLAGS", "DEFAULTS", "SAMPLING_TEMPERATURE", "ODD_NONLINEARITY", "BROKEN_TEMPERATURE", "BAD_INPUT",
           "add_shared", "check_shared", "check_layers", "nonlinearity_list", "parse_fractions", "flag_error",
           "large_p_problem", "settings_digest", "emit", "fail", "warn", "run_command", "check_counts", "given",
           "not_applicable", "finite_number", "record_defaults", "finite_p_spec"]

#: the one set of defaults: ModelSpec's model, its class sizes as fractions, one output folder
DEFAULTS = {f.name: f.default for f in fields(ModelSpec) if f.name != "inputs"}
DEFAULTS.update(class_sizes=",".join(map(str, DEFAULT_CLASS_SIZES)), sigma_a_bar=1.0, layers=1, seed=0,
                class_fractions=",".join(f"{s / sum(DEFAULT_CLASS_SIZES):g}" for s in DEFAULT_CLASS_SIZES),
                format="table", out="codingschemes_out")

#: shared flags: dest → (help, argparse keywords); the default comes from DEFAULTS
FLAGS = {
    "nonlinearity": ("φ: linear, relu, erf, normcdf, tanh or an expression in h", {}),
    "class_sizes": ("comma-separated class sizes P_c", {}),
    "class_fractions": ("comma-separated class fractions ρ_c in (0, 1) summing to 1", {}),
    "temperature": ("T >= 0", {"type": float}),
    "sigma_w": ("σ_1, first-layer prior std", {"type": float}),
    "sigma_a": ("σ_a, readout prior std", {"type": float}),
    "sigma_a_bar": ("σ̄_a, readout prior std times √P (σ_a² = σ̄_a²/P)", {"type": float}),
    "layers": ("hidden layers L", {"type": int}),
    "seed": ("random seed", {"type": int}),
    "format": ("output on stdout", {"choices": ("table", "json")}),
    "out": ("output folder", {}),
    "quiet": ("no progress on stderr", {"action": "store_true"}),
    "no_plot": ("do not write the figure", {"action": "store_true"}),
}

#: the temperature of the subcommands that sample finite networks (validate, generalize)
SAMPLING_TEMPERATURE = (0.5, "sampled networks: a higher T than solve's, so chains mix within the default sweeps")

#: the large-P subcommands (continue, phase-diagram) default to the odd φ whose a = 0 branch splits ...
ODD_NONLINEARITY = ("erf", "an odd φ: its a = 0 branch splits in pitchforks at T_c,r (THEORY §4)")
#: ... and hold T below those splits when T is not the varied parameter
BROKEN_TEMPERATURE = (0.1, "below every T_c,r = σ̄_a (ρ_r E φ²)^½ of erf with the default ρ and σ̄_a: the broken "
                           "phase")

#: the errors that mean bad input (exit code 2)
BAD_INPUT = (SpecError, DeepLinearError)


def _shown(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def add_shared(parser: argparse.ArgumentParser, *names: str, defaults=None, notes=None,
               repeat_nonlinearity: bool = False) -> None:
    """Add the shared flags ``names`` (keys of :data:`FLAGS`) to ``parser``.

    ``defaults``: {name: (value, why)}, this subcommand's own default and the reason for it;
    ``notes``: {name: text} added to the help (what the flag means here). With
    ``repeat_nonlinearity`` --nonlinearity may be repeated or comma-list built-ins (parsed value:
    a list, or None for the default; see :func:`nonlinearity_list`).
    """
    defaults, notes = defaults or {}, notes or {}
    for name in names:
        text, kwargs = FLAGS[name]
        kwargs = dict(kwargs)
        value, why = defaults.get(name, (DEFAULTS.get(name), None))
        if kwargs.get("action") != "store_true":
            text += f" (default {_shown(value)}" + (f"; {why})" if why else ")")
            kwargs["default"] = value
        if name == "nonlinearity" and repeat_nonlinearity:
            kwargs.update(action="append", default=None)
            text += "; repeat the flag or comma-list built-ins"
        if name in notes:
            text += f"; {notes[name]}"
        parser.add_argument("--" + name.replace("_", "-"), help=text, **kwargs)


def nonlinearity_list(values, default: str) -> list[str]:
    """--nonlinearity values as a list: repeated flags, comma lists of built-ins, or one expression
    (which may contain commas); ``default`` (a comma list) when the flag was not given."""
    out = []
    for v in values or [default]:
        parts = [p.strip() for p in v.split(",")]
        out += parts if all(p in BUILTIN_NAMES for p in parts) else [v]
    return out


def parse_fractions(text) -> tuple[float, ...]:
    """Class fractions from '0.5,0.25,0.25' (SpecError naming class_fractions if not numbers)."""
    try:
        return tuple(float(x) for x in str(text).split(",") if x.strip())
    except ValueError:
        raise SpecError(f"class_fractions must be comma-separated numbers in (0, 1) summing to 1 "
                        f"(got {text!r})") from None


def _check_out(name, value):
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise SpecError(f"{name} must be a folder (got {value!r}, an existing file)")


def _check_nonlinearity(name, value):
    """Every φ of ``value`` (a string or a --nonlinearity list) must parse; an expression the parser
    rejects with another error type is bad input too (SpecError naming the parameter)."""
    for x in [value] if isinstance(value, str) else nonlinearity_list(value, "") if value else []:
        try:
            get_nonlinearity(x)
        except SpecError:
            raise
        except Exception as exc:  # noqa: BLE001 - sympy's parse errors (SympifyError, TokenError, TypeError, ...)
            raise SpecError(f"{name} must be a built-in name or an expression in h (got {x!r}: "
                            f"{type(exc).__name__})") from None


#: dest → the check of one parsed value (raises SpecError naming the parameter)
_CHECKS = {
    "nonlinearity": _check_nonlinearity,
    "class_sizes": lambda n, v: parse_class_sizes(v),
    "class_fractions": lambda n, v: [check_float(n, x, 0.0, 1.0, lo_open=True, hi_open=True)
                                     for x in parse_fractions(v)],
    "temperature": lambda n, v: check_float(n, v, 0.0),
    "sigma_w": lambda n, v: check_float(n, v, 0.0, lo_open=True),
    "sigma_a": lambda n, v: check_float(n, v, 0.0, lo_open=True),
    "sigma_a_bar": lambda n, v: check_float(n, v, 0.0, lo_open=True),
    "layers": lambda n, v: check_int(n, v, 1),
    "seed": lambda n, v: check_int(n, v, 0),
    "out": _check_out,
}


def check_shared(args) -> None:
    """Check every shared flag present in ``args``; SpecError '--flag: <parameter> must be ...'."""
    for name, check in _CHECKS.items():
        if hasattr(args, name):
            try:
                check(name, getattr(args, name))
            except SpecError as exc:
                raise SpecError(f"--{name.replace('_', '-')}: {exc}") from None


def check_counts(args, bounds: dict) -> None:
    """Integer flags of ``args`` in range: ``bounds`` {dest: (lo, hi)} (hi None: unbounded; a value
    of None is a flag left at its default None); SpecError '--flag: <dest> must be ...'."""
    for name, (lo, hi) in bounds.items():
        value = getattr(args, name, None)
        if value is not None:
            try:
                check_int(name, value, lo, hi)
            except SpecError as exc:
                raise SpecError(f"--{name.replace('_', '-')}: {exc}") from None


def finite_number(flag: str, text, default=None) -> float:
    """``text`` as a finite float (``default`` for None); SpecError naming ``flag`` otherwise."""
    if text is None:
        return default
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise SpecError(f"{flag} must be a number (got {text!r})") from None
    if not math.isfinite(v):
        raise SpecError(f"{flag} must be a finite number (got {text!r})")
    return v


def record_defaults(parser: argparse.ArgumentParser) -> None:
    """Store ``parser``'s defaults in its parsed args (``args._defaults``), so :func:`given` can tell
    the flags the user set."""
    parser.set_defaults(_defaults={a.dest: a.default for a in parser._actions})


def given(args, names) -> list[str]:
    """The flags among ``names`` (dests) set to a value other than their parser default (the
    defaults :func:`record_defaults` stores as ``args._defaults``)."""
    defaults = getattr(args, "_defaults", None)
    if defaults is None:
        return []
    return [n for n in names if hasattr(args, n) and getattr(args, n) != defaults.get(n)]


def not_applicable(command: str, args, names, why: str, error: bool = False) -> None:
    """Flags of ``names`` given where they do not apply (``why``): a SpecError naming the first
    (``error``; ignoring it would change what the user asked for), else a warning on stderr."""
    for name in given(args, names):
        message = f"--{name.replace('_', '-')} does not apply {why}"
        if error:
            raise SpecError(message)
        warn(command, message + "; it is ignored")


def flag_error(exc: SpecError, names) -> SpecError:
    """``exc`` with the flag of the first parameter in ``names`` that its message mentions
    (longest names first, so sigma_a_bar is not read as sigma_a); the first name otherwise."""
    text = str(exc)
    found = next((n for n in sorted(names, key=len, reverse=True) if n in text), names[0])
    return SpecError(f"--{found.replace('_', '-')}: {text}")


def large_p_problem(args):
    """The :class:`solvers.large_p.problem.LargePProblem` of the shared flags (continue, phase-diagram);
    its SpecError names the flag."""
    from solvers.large_p.problem import LargePProblem

    try:
        return LargePProblem(nonlinearity=args.nonlinearity, sigma_w=args.sigma_w, sigma_a_bar=args.sigma_a_bar,
                             temperature=args.temperature, class_fractions=parse_fractions(args.class_fractions))
    except SpecError as exc:
        raise flag_error(exc, ("nonlinearity", "class_fractions", "sigma_w", "sigma_a_bar", "temperature")) from None


def check_layers(layers: int, specs) -> None:
    """L >= 2: linear φ (closed form) or a φ the deep class-block solver handles (relu, kink-free bounded)."""
    from theory.deep_blocks import OneD

    if layers < 1:
        raise SpecError(f"layers must be an integer >= 1 (got {layers})")
    if layers > 1:
        for s in specs:
            if s.nonlinearity != "linear":
                OneD.for_nonlinearity(s.nonlinearity)  # raises SpecError for unsupported φ


def settings_digest(settings: dict) -> str:
    """10 hex digits naming a run's settings (its resumable file: OUT/<command>-<digest>.jsonl)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]


def emit(obj, fmt: str, table=None, indent=None) -> None:
    """Print ``obj`` as JSON (``fmt == "json"``, through :func:`theory.jsonio.dumps`) or ``table``
    (a string, or a callable giving it) on stdout."""
    if fmt == "json":
        print(dumps(obj, indent=indent))
    else:
        print(table() if callable(table) else table)


def fail(command: str, message) -> int:
    """The one error report: ``codingschemes <command>: error: <message>`` on stderr; returns 2."""
    print(f"codingschemes {command}: error: {message}", file=sys.stderr, flush=True)
    return 2


def warn(command: str, message) -> None:
    """A harmless problem with the input: ``codingschemes <command>: warning: <message>`` on stderr."""
    print(f"codingschemes {command}: warning: {message}", file=sys.stderr, flush=True)


def run_command(command: str, run, args) -> int:
    """``run(args)``, with bad input (:data:`BAD_INPUT`) reported by :func:`fail` (exit code 2)."""
    try:
        return run(args)
    except BAD_INPUT as exc:
        return fail(command, exc)


def finite_p_spec(args, command: str, sigma_bar_default: bool = True) -> ModelSpec:
    """The :class:`ModelSpec` of a ``--finite-p`` command: --class-sizes, --nonlinearity, --temperature,
    --sigma-w, and σ_a from --sigma-a or σ̄_a/√P from --sigma-a-bar (not both; if neither is given,
    --sigma-a-bar's default when ``sigma_bar_default``, else --sigma-a's). SpecError naming the flag."""
    not_applicable(command, args, ("class_fractions",), "with --finite-p: --class-sizes sets the classes",
                   error=True)
    if len(given(args, ("sigma_a", "sigma_a_bar"))) == 2:
        raise SpecError("--sigma-a and --sigma-a-bar: give one of them with --finite-p (σ_a = σ̄_a/√P)")
    sizes = parse_class_sizes(args.class_sizes)
    use_bar = given(args, ("sigma_a_bar",)) or (sigma_bar_default and not given(args, ("sigma_a",)))
    sigma_a = args.sigma_a_bar / sum(sizes) ** 0.5 if use_bar else args.sigma_a
    try:
        return ModelSpec(nonlinearity=args.nonlinearity, class_sizes=sizes, temperature=args.temperature,
                         sigma_w=args.sigma_w, sigma_a=sigma_a)
    except SpecError as exc:
        raise flag_error(exc, ("nonlinearity", "class_sizes", "temperature", "sigma_w", "sigma_a")) from None
