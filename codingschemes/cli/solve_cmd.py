"""``codingschemes solve``: the mean-field saddle point (THEORY §2–3).

With no arguments it solves the default task (classes 1/2, 1/4, 1/4 of P = 64, T = 0.05,
σ_1 = σ_a = 1) for linear, normcdf and relu, prints a table and writes a figure of f, U and
the kernel blocks (``OUT/solve.png``). ``--format json`` prints one JSON object per run (keys
in :meth:`solvers.results.SolveResult.to_json`); with several nonlinearities
``{"solutions": [...]}``. ``--layers L`` (L >= 2) solves deep networks (the deep linear closed
form, :mod:`solvers.deep.linear`, or the class-block solver, :mod:`solvers.deep.nonlinear`);
``--large-p`` the leading-order P → ∞ theory (THEORY §4, :mod:`solvers.deep.large_p`).

Exit codes: 0 success; 1 a solve did not converge; 2 invalid input.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from solvers.deep.options import DeepOptions
from theory.spec import ModelSpec, SpecError, parse_class_sizes
from codingschemes.cli.args import (add_shared, check_layers, check_shared, emit, flag_error, nonlinearity_list,
                                    not_applicable)
from codingschemes.cli.progress import progress_bar

__all__ = ["add_solve_parser", "check_solve", "run_solve", "DEFAULT_NONLINEARITIES"]

DEFAULT_NONLINEARITIES = "linear,normcdf,relu"
HELP = "solve the mean-field saddle-point equations"


def add_solve_parser(subparsers):
    """Add the ``solve`` subcommand to ``subparsers``; returns its parser."""
    p = subparsers.add_parser("solve", help=HELP, description=HELP + " (THEORY §2–3)")
    add_shared(p, "nonlinearity", "class_sizes", "temperature", "sigma_w", "sigma_a", repeat_nonlinearity=True,
               defaults={"nonlinearity": (DEFAULT_NONLINEARITIES,
                                          "linear, sigmoid and ReLU side by side")})
    p.add_argument("--method", default="newton", help="newton or fixed-point (default newton)")
    p.add_argument("--integrator", default="auto", help="auto, gauss-hermite, cubature or qmc")
    p.add_argument("--tol", type=float, default=None, help="residual tolerance (default 1e-7)")
    p.add_argument("--integral-tol", type=float, default=None,
                   help="relative integrator error bound (default 1e-7); a larger error estimate means "
                        "converged false and exit 1 (QMC, m >= 5 classes: its error bar is ~5e-3)")
    add_shared(p, "format", "out", "no_plot", "quiet", "layers", "sigma_a_bar",
               notes={"layers": "L >= 2: deep linear closed form for linear, the class-block deep solver "
                                "(solvers.deep.nonlinear) for relu and smooth bounded φ (normcdf, erf, tanh)",
                      "sigma_a_bar": "used with --large-p"})
    p.add_argument("--large-p", action="store_true",
                   help="leading-order P → ∞ theory with σ_a² = σ̄_a²/P (THEORY §4; for --layers >= 2 the deep "
                        "large-P solution of solvers.deep.large_p: branches in the saturated last hidden layer)")
    p.add_argument("--search-budget", type=int, default=None,
                   help="--layers >= 2, nonlinear φ: Newton iterations the deep class-block search over starts may "
                        "spend (integer >= 0, 0: no limit; default solvers.deep.options.SEARCH_BUDGET); once spent "
                        "the solve ends with what it found (no-solution, exit 1, if nothing)")
    p.add_argument("--search-seconds", type=float, default=None,
                   help="--layers >= 2, nonlinear φ: CPU seconds the same search may spend (number >= 0, 0: no limit; "
                        "default solvers.deep.options.SEARCH_SECONDS)")
    p.add_argument("--patterns", choices=("all", "prior-span"), default="all",
                   help="--large-p with --layers >= 2: 'all' saturation patterns (the P → ∞ limit) or only those "
                        "in the prior kernel's span (the branch finite networks follow at moderate P)")
    return p


def _table(results) -> str:
    lines = []
    for r in results:
        m = r.spec.m
        lines.append(f"== {r.spec.nonlinearity}  (class sizes {list(r.spec.class_sizes)}, T = {r.spec.temperature:g}, "
                     f"σ_1 = {r.spec.sigma_w:g}, σ_a = {r.spec.sigma_a:g})")
        lines.append(f"   converged {r.success}  iterations {r.nit}  residual {r.residual_norm:.1e}  "
                     f"error estimate {r.error_estimate:.1e}  time {r.time_seconds:.2f} s")
        lines.append(f"   integrator: {r.integrator}")
        lines.append("   class | " + " ".join(f"f[c,{j}]".rjust(9) for j in range(m)) + " | "
                     + " ".join(f"U[c,{j}]".rjust(9) for j in range(m)) + " | " + "K_diag".rjust(9) + " "
                     + " ".join(f"K[c,{j}]".rjust(9) for j in range(m)))
        for c in range(m):
            lines.append(f"   {c:5d} | " + " ".join(f"{v:9.5f}" for v in r.outputs[c]) + " | "
                         + " ".join(f"{v:9.4f}" for v in r.readout_moment[c]) + " | "
                         + f"{r.kernel_diagonal[c]:9.4f} " + " ".join(f"{v:9.4f}" for v in r.kernel_blocks[c]))
        if "condensate" in r.extra:
            cond = r.extra["condensate"]
            lines.append(f"   condensate: masses {[round(x, 4) for x in cond['mass']]}, codes {cond['codes']}")
        if not r.success:
            lines.append(f"   NOT CONVERGED: {r.message}")
    return "\n".join(lines)


def _solve_deep(args, specs) -> int:
    """``solve --layers L``: the deep linear closed form (:mod:`solvers.deep.linear`) for linear φ, the deep
    class-block solver (:mod:`solvers.deep.nonlinear`) otherwise; JSON with "layers"."""
    from solvers.deep.linear import solve_deep_json
    from solvers.deep.nonlinear import deep_nonlinear_json

    check_layers(args.layers, specs)
    if args.large_p:
        return _solve_large_p(args, specs)
    deep_options = _deep_options(args)
    objs = []
    for s in specs:
        if s.nonlinearity == "linear":
            block = solve_deep_json(s, args.layers)
        else:
            if not args.quiet:
                print(f"[{s.nonlinearity}] solving L = {args.layers} (class-block deep solver)...", file=sys.stderr)
            with progress_bar(args, s.nonlinearity) as bar:
                block = deep_nonlinear_json(s, args.layers, options=deep_options, progress=bar)
                if bar is not None:
                    bar.close(f"done: {block.get('message', '')[:60]}")
        objs.append({**s.to_dict(), "layers_count": args.layers, **block})
    return _print_layers(args, objs)


def _print_layers(args, objs) -> int:
    """JSON or a short table of per-layer solutions; exit 1 if any did not converge."""
    def table():
        lines = []
        for o in objs:
            conv = "" if o.get("converged", True) else "  NOT CONVERGED: " + o.get("message", "")
            lines.append(f"{o['nonlinearity']}, L = {args.layers}: f = {json.dumps(o['outputs'])}{conv}")
            for layer in o["layers"]:
                lines.append(f"  layer {layer['layer']}: kernel diagonal {json.dumps(layer['kernel_diagonal'])}")
        return "\n".join(lines)

    emit(objs[0] if len(objs) == 1 else {"solutions": objs}, args.format, table, indent=2)
    return 0 if all(o.get("converged", True) for o in objs) else 1


def _solve_large_p(args, specs) -> int:
    """``solve --large-p``: the leading-order P → ∞ theory (:mod:`solvers.deep.large_p`; L = 1 is the
    one-layer large-P solver of :mod:`solvers.large_p.solve`), σ_a² = σ̄_a²/P."""
    from solvers.deep.large_p import solve_deep_large_p

    sbar = args.sigma_a_bar
    objs = []
    for s in specs:
        sol = solve_deep_large_p(s, args.layers, sigma_a_bar=sbar, patterns=args.patterns)
        objs.append({**s.to_dict(), "sigma_a_bar": sbar, "layers_count": args.layers, **sol.to_json()})
    return _print_layers(args, objs)


def check_solve(args):
    """Every argument of ``solve`` (SpecError naming the flag; warnings for flags the chosen path
    ignores); returns (solver options, model specs)."""
    from solvers.options import SolverOptions

    check_shared(args)
    sizes = parse_class_sizes(args.class_sizes)
    opts = {"method": args.method, "integrator": args.integrator}
    for name in ("tol", "integral_tol"):
        if getattr(args, name) is not None:
            opts[name] = getattr(args, name)
    try:
        options = SolverOptions(**opts)
    except SpecError as exc:
        raise flag_error(exc, ("method", "integrator", "tol", "integral_tol")) from None
    specs = [ModelSpec(nonlinearity=n, sigma_w=args.sigma_w, sigma_a=args.sigma_a, temperature=args.temperature,
                       class_sizes=sizes) for n in nonlinearity_list(args.nonlinearity, DEFAULT_NONLINEARITIES)]
    check_layers(args.layers, specs)
    if args.large_p:
        not_applicable("solve", args, ("sigma_a",), "with --large-p (σ_a² = σ̄_a²/P from --sigma-a-bar)")
    else:
        not_applicable("solve", args, ("sigma_a_bar", "patterns"), "without --large-p")
    if args.layers != 1 or args.large_p:
        not_applicable("solve", args, ("method", "integrator", "tol", "integral_tol"),
                       "to the deep or large-P solvers (they have their own methods and tolerances)")
    if args.layers == 1 or args.large_p:
        not_applicable("solve", args, ("search_budget", "search_seconds"),
                       "without --layers >= 2 (the deep class-block search)")
    else:
        _deep_options(args)
    return options, specs


def _deep_options(args) -> DeepOptions | None:
    """The :class:`DeepOptions` of ``--search-budget`` / ``--search-seconds`` (None: the defaults); SpecError naming
    the flag."""
    names = ("search_budget", "search_seconds")
    given_ = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    try:
        return DeepOptions(**given_) if given_ else None
    except SpecError as exc:
        raise flag_error(exc, names) from None


def run_solve(args) -> int:
    """Run ``codingschemes solve`` from parsed ``args``; exit code 0 or 1, SpecError on bad input."""
    from solvers.solve import solve

    options, specs = check_solve(args)
    if args.layers != 1 or args.large_p:
        return _solve_deep(args, specs)
    results = []
    for spec in specs:
        with progress_bar(args, spec.nonlinearity) as bar:
            results.append(solve(spec, options, progress=bar))
            if bar is not None:
                bar.close(f"done: {results[-1].message}")
    objs = [r.to_json() for r in results]
    emit(objs[0] if len(objs) == 1 else {"solutions": objs}, args.format, lambda: _table(results), indent=2)
    if not args.no_plot:
        from figures.solution import plot_solutions

        path = plot_solutions(results, Path(args.out) / "solve.png")
        if not args.quiet:
            print(f"figure: {path}", file=sys.stderr)
    return 0 if all(r.success for r in results) else 1
