"""``codingschemes continue``: follow the large-P solution in one parameter (THEORY §4).

Example::

    codingschemes continue --nonlinearity erf --class-fractions 0.5,0.25,0.25 \\
        --param temperature --from 1.0 --to 0.1 --format json

prints the special points (branch points, stability changes, folds; each
with its parameter value, bisection bracket and a physical description)
and the branches (per-point arrays of f, U, kernel, free energy, occupied
readouts, a_γ, P_γ, stability, kind) as JSON (keys of
:meth:`solvers.large_p.continuation.LargePContinuation.to_json`, at least
``"special_points"`` and ``"branches"``), or a table with ``--format table``,
and writes OUT/continue.png (:func:`figures.continuation.plot_continuation`).
``--param`` is temperature, sigma_a_bar, sigma_w or rho_r (fraction of
class r, 0-based); the other parameters come from --temperature,
--sigma-w, --sigma-a-bar, --class-fractions.

:func:`add_continue_parser` adds the subcommand to the main parser and
:func:`run_continue` runs it (exit code 0: the global solution was
followed to --to; 1: it was not; invalid input raises
:class:`theory.spec.SpecError`, which the main CLI reports with exit code 2).
``python -m codingschemes.cli.continue_cmd ARGS`` runs it standalone.

``--layers L`` with L >= 2 follows deep networks at finite class sizes
(:mod:`solvers.deep.continuation`). Linear φ: every root curve of the
non-convex deep action per class, with stability, folds and the first-order
transitions of the selected root; other φ: warm-started solves of the deep
class-block theory on a grid, with bracketed stability changes. E.g.::

    codingschemes continue --layers 3 --nonlinearity linear --class-sizes 32,16,16 \\
        --sigma-a 0.125 --param temperature --from 2.0 --to 0.5 --format json

``--finite-p`` follows the exact finite-P theory (THEORY §3) at --class-sizes through --n-points
values from --from to --to (:func:`solvers.finite_p.maps.continue_finite_p`): the solution is
unique, so this is a warm-started sweep through the crossover (each point starts from its
neighbour's t), resumable from ``OUT/continue-finite-p-<hash>.jsonl``. --param temperature, sigma_a,
sigma_a_bar or sigma_w; the JSON has ``"finite_p": true``, ``"values"`` and ``"points"`` (the coding
scheme of p(a) per point, f, U, kernel, converged, error_estimate); the figure is
``OUT/continue_finite_p.png`` / ``.pdf``::

    codingschemes continue --finite-p --nonlinearity normcdf --class-sizes 32,16,16 --sigma-a 0.125 \\
        --param temperature --from 0.3 --to 0.05 --n-points 26
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from theory.spec import ModelSpec, SpecError, parse_class_sizes
from codingschemes.cli.args import (BROKEN_TEMPERATURE as BROKEN, ODD_NONLINEARITY as ODD, add_shared,
                                    check_counts, check_layers, check_shared, emit, finite_number, finite_p_spec,
                                    large_p_problem, not_applicable, record_defaults, run_command)
from codingschemes.cli.progress import progress_bar

__all__ = ["add_continue_parser", "check_continue", "run_continue", "run_continue_finite_p", "main",
           "DEEP_PARAMETERS"]

#: the parameters the deep continuation (--layers >= 2) follows; each must stay > 0
DEEP_PARAMETERS = ("temperature", "sigma_a", "sigma_w")

HELP = "follow the large-P solution in one parameter: branch points, symmetry breaking"


def add_continue_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``continue`` subcommand to ``subparsers`` (from ``parser.add_subparsers``); returns it."""
    c = subparsers.add_parser("continue", help=HELP, description=HELP + " (THEORY §4)")
    add_shared(c, "nonlinearity", "class_fractions", defaults={"nonlinearity": ODD})
    c.add_argument("--param", default="temperature",
                   help="the continued parameter: temperature, sigma_a_bar, sigma_w or rho_r "
                        "(r = class index, 0-based; the other fractions are rescaled) (default temperature)")
    c.add_argument("--from", dest="p_from", default=None,
                   help="start value of the parameter (default 1.0 for temperature, else required)")
    c.add_argument("--to", dest="p_to", default=None,
                   help="end value of the parameter (default 0.1 for temperature, else required)")
    add_shared(c, "temperature", "sigma_w", "sigma_a_bar", defaults={"temperature": BROKEN},
               notes={"temperature": "used when --param is another parameter"})
    c.add_argument("--method", default="arclength",
                   help="arclength (default), natural, or sequential (independent solves on a grid)")
    c.add_argument("--follow-constrained", action="store_true",
                   help="keep following branches after they stop being the global solution")
    c.add_argument("--max-steps", type=int, default=2000, help="continuation steps per branch (default 2000)")
    c.add_argument("--n-points", type=int, default=41,
                   help="grid points for linear φ and for --method sequential (default 41)")
    add_shared(c, "format", "out", "no_plot", "quiet", "layers", "class_sizes", "sigma_a",
               defaults={"sigma_a": (0.125, "σ̄_a/√P with σ̄_a = 1 at P = 64, the large-P scaling")},
               notes={"layers": "1: the large-P one-layer theory. L >= 2: deep networks at finite class sizes "
                                "(--class-sizes, --sigma-a); --param temperature, sigma_a or sigma_w; linear: every "
                                "root curve with folds and first-order transitions (arclength); other φ: "
                                "warm-started solves on --n-points values (slow: seconds to minutes per solve)",
                      "class_sizes": "for --layers >= 2 and --finite-p",
                      "sigma_a": "for --layers >= 2 and --finite-p"})
    c.add_argument("--finite-p", action="store_true",
                   help="follow the exact finite-P theory (THEORY §3) at --class-sizes and --sigma-a (or "
                        "--sigma-a-bar) through --n-points values: a warm-started, resumable sweep; --param "
                        "temperature, sigma_a, sigma_a_bar or sigma_w")
    return c


def _setup(args):
    """(problem, parameter, p_from, p_to) from the arguments; SpecError naming the flag on bad input."""
    from solvers.large_p.continuation import canonical_parameter, parameter_range

    problem = large_p_problem(args)
    try:
        parameter = canonical_parameter(args.param, problem.m)
    except SpecError as exc:
        raise SpecError(f"--param: {exc}") from None
    default_from, default_to = (1.0, 0.1) if parameter == "temperature" else (None, None)
    p_from = finite_number("--from", args.p_from, default_from)
    p_to = finite_number("--to", args.p_to, default_to)
    if p_from is None or p_to is None:
        raise SpecError(f"--from and --to are required for --param {parameter} "
                        f"(valid range {parameter_range(parameter, problem.m)[2]})")
    if p_from == p_to:
        raise SpecError(f"--from and --to must differ for parameter {parameter!r} (got {p_from:g} for both)")
    for flag, v in (("--from", p_from), ("--to", p_to)):
        lo, hi, text = parameter_range(parameter, problem.m)
        ok = (lo <= v if text.startswith("[") else lo < v) and (v < hi or hi == math.inf)
        if not ok:
            raise SpecError(f"{flag}: parameter {parameter!r} must be in {text} (got {v:g})")
    if args.method not in ("arclength", "natural", "sequential"):
        raise SpecError(f"--method must be arclength, natural or sequential (got {args.method!r})")
    return problem, parameter, p_from, p_to


def _setup_deep(args):
    """(spec, parameter, p_from, p_to) of ``continue --layers L`` (L >= 2); SpecError naming the flag."""
    if args.param not in DEEP_PARAMETERS:
        raise SpecError(f"--param: parameter must be one of {', '.join(DEEP_PARAMETERS)} with --layers >= 2 (got {args.param!r})")
    default_from, default_to = (1.0, 0.1) if args.param == "temperature" else (None, None)
    p_from = finite_number("--from", args.p_from, default_from)
    p_to = finite_number("--to", args.p_to, default_to)
    if p_from is None or p_to is None:
        raise SpecError(f"--from and --to are required for --param {args.param}")
    for flag, v in (("--from", p_from), ("--to", p_to)):
        if v <= 0:
            raise SpecError(f"{flag}: parameter {args.param!r} must be > 0 (got {v:g})")
    if p_from == p_to:
        raise SpecError(f"--from and --to must differ for parameter {args.param!r} (got {p_from:g} for both)")
    spec = ModelSpec(nonlinearity=args.nonlinearity, class_sizes=parse_class_sizes(args.class_sizes),
                     temperature=args.temperature, sigma_w=args.sigma_w, sigma_a=args.sigma_a)
    check_layers(args.layers, [spec])
    deep = "with --layers >= 2 (deep networks at finite class sizes)"
    not_applicable("continue", args, ("class_fractions", "sigma_a_bar"), deep + ": --class-sizes and --sigma-a set "
                                                                               "the model", error=True)
    not_applicable("continue", args, ("method", "follow_constrained"), deep)
    return spec, args.param, p_from, p_to


def _setup_finite_p(args):
    """(spec, parameter, values) of ``continue --finite-p``; SpecError naming the flag before any work."""
    import numpy as np

    from solvers.finite_p.maps import PARAMETERS, check_values

    if args.layers != 1:
        raise SpecError(f"--layers: --finite-p follows the one-hidden-layer theory, layers must be 1 (got {args.layers})")
    not_applicable("continue", args, ("method", "follow_constrained", "max_steps"),
                   "with --finite-p (a warm-started sweep over --n-points values, no branch tracing)", error=True)
    if args.param not in PARAMETERS:
        raise SpecError(f"--param: with --finite-p the parameter must be one of {', '.join(PARAMETERS)} "
                        f"(got {args.param!r})")
    spec = finite_p_spec(args, "continue", sigma_bar_default=False)
    default_from, default_to = (1.0, 0.1) if args.param == "temperature" else (None, None)
    p_from = finite_number("--from", args.p_from, default_from)
    p_to = finite_number("--to", args.p_to, default_to)
    if p_from is None or p_to is None:
        raise SpecError(f"--from and --to are required for --param {args.param} (valid range (0, inf))")
    if p_from == p_to:
        raise SpecError(f"--from and --to must differ for parameter {args.param!r} (got {p_from:g} for both)")
    for flag, v in (("--from", p_from), ("--to", p_to)):
        check_values(args.param, [v], flag)
    return spec, args.param, [float(v) for v in np.linspace(p_from, p_to, args.n_points)]


def run_continue_finite_p(args) -> int:
    """``continue --finite-p``: :func:`solvers.finite_p.maps.continue_finite_p`, JSON or table, PNG + PDF."""
    from codingschemes.cli.args import settings_digest
    from solvers.finite_p.maps import continue_finite_p

    spec, parameter, values = check_continue(args)
    settings = {**spec.to_dict(), "finite_p": True, "param": parameter, "values": values}
    path = Path(args.out) / f"continue-finite-p-{settings_digest(settings)}.jsonl"
    if not args.quiet:
        print(f"[continue --finite-p] points are written to {path} (rerun to resume)", file=sys.stderr)
    result = continue_finite_p(spec, parameter, values, path, progress=not args.quiet)
    return _report(args, result, "figures.finite_p_map:plot_finite_p_line", "continue_finite_p.png",
                   result.converged)


def check_continue(args):
    """Every argument of ``continue`` before any solve (SpecError naming the flag; warnings for flags
    the chosen path ignores); returns (problem or spec, parameter, p_from, p_to), or (spec, parameter,
    values) with ``--finite-p``."""
    check_shared(args)
    check_counts(args, {"max_steps": (1, None), "n_points": (2, None)})
    if args.finite_p:
        return _setup_finite_p(args)
    if args.layers >= 2:
        return _setup_deep(args)
    not_applicable("continue", args, ("class_sizes", "sigma_a"), "with --layers 1 (the large-P theory: "
                                                                  "--class-fractions and --sigma-a-bar set the model)",
                   error=True)
    return _setup(args)


def _done(args, result) -> None:
    if not args.quiet:
        print(f"[continue] done in {result.time_seconds:.2f} s: {result.message}", file=sys.stderr)


def _report(args, result, plotter: str, name: str, ok: bool) -> int:
    """The end of a continue path: the done line, the figure OUT/``name`` drawn by ``plotter``
    ("module:function"; not with --no-plot), the JSON or table; exit code 0 if ``ok`` else 1."""
    _done(args, result)
    figure = None
    if not args.no_plot:
        import importlib

        module, function = plotter.split(":")
        figure = str(getattr(importlib.import_module(module), function)(result, Path(args.out) / name))
        if not args.quiet:
            print(f"figure: {figure}", file=sys.stderr)
    emit({**result.to_json(), "figure": figure}, args.format, result.table, indent=1)
    return 0 if ok else 1


def run_continue_deep(args) -> int:
    """``continue --layers L`` (L >= 2): :func:`solvers.deep.continuation.continue_deep`, JSON or table, PNG."""
    from solvers.deep.continuation import continue_deep

    spec, parameter, p_from, p_to = check_continue(args)
    with progress_bar(args, "continue") as bar:
        result = continue_deep(spec, args.layers, parameter, p_from, p_to, n_points=args.n_points,
                               max_steps=args.max_steps, progress=bar)
    _done(args, result)
    figure = None
    if not args.no_plot:
        from figures.deep_continuation import plot_deep_continuation

        figure = str(plot_deep_continuation(result, Path(args.out) / "continue.png"))
    emit({**result.to_json(), "figure": figure}, args.format, result.table, indent=1)
    return 0 if result.success else 1


def run_continue(args) -> int:
    """Run ``codingschemes continue`` from parsed ``args``; returns the exit code (0 or 1).

    Raises :class:`theory.spec.SpecError` (naming the flag or parameter) on invalid input.
    """
    from solvers.large_p.continuation import continue_solution

    if args.finite_p:
        return run_continue_finite_p(args)
    if args.layers >= 2:
        return run_continue_deep(args)
    problem, parameter, p_from, p_to = check_continue(args)
    with progress_bar(args, "continue") as bar:
        result = continue_solution(problem, parameter, p_from, p_to, method=args.method, progress=bar,
                                   max_steps=args.max_steps, follow_constrained=args.follow_constrained,
                                   n_points=args.n_points)
    return _report(args, result, "figures.continuation:plot_continuation", "continue.png", result.success)


def main(argv=None) -> int:
    """Standalone entry: ``python -m codingschemes.cli.continue_cmd [flags of codingschemes continue]``."""
    parser = argparse.ArgumentParser(prog="codingschemes")
    record_defaults(add_continue_parser(parser.add_subparsers(dest="command", required=True)))
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "continue":
        argv = ["continue", *argv]
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code or 0
    return run_command("continue", run_continue, args)


if __name__ == "__main__":
    sys.exit(main())
