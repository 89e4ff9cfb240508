"""The ``codingschemes`` command.

``codingschemes solve`` solves the mean-field saddle point (THEORY §2–3);
``codingschemes validate`` compares sampled finite networks with it.
With no arguments it solves the default task (classes 1/2, 1/4, 1/4 of
P = 64, T = 0.05, σ_1 = σ_a = 1) for linear, normcdf and relu, prints a table
and writes a figure of f, U and the kernel blocks. ``--format json`` prints
one JSON object per run (keys in :meth:`SolveResult.to_json`); with several
nonlinearities, ``{"solutions": [...]}``.

Exit codes: 0 success; 1 a solve did not converge; 2 invalid input.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from theory.nonlinearities import BUILTIN_EXPRESSIONS
from theory.spec import DEFAULT_CLASS_SIZES, ModelSpec, SpecError, parse_class_sizes
from codingschemes.cli.continue_cmd import add_continue_parser, run_continue
from codingschemes.cli.figures_cmd import add_figures_parser, run_figures
from codingschemes.cli.generalize_cmd import add_generalize_parser, run_generalize
from codingschemes.cli.phase_cmd import add_phase_parser, run_phase

__all__ = ["main", "build_parser"]

DEFAULT_NONLINEARITIES = ("linear", "normcdf", "relu")


def _nonlinearities(values) -> list[str]:
    if not values:
        return list(DEFAULT_NONLINEARITIES)
    out = []
    for v in values:
        parts = [p.strip() for p in v.split(",")]
        # a comma list of built-in names, or one expression (which may contain commas)
        out += parts if all(p in BUILTIN_EXPRESSIONS for p in parts) else [v]
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codingschemes", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("solve", help="solve the mean-field saddle-point equations")
    p.add_argument("--class-sizes", default=",".join(map(str, DEFAULT_CLASS_SIZES)),
                   help="comma-separated class sizes P_c (default 32,16,16)")
    p.add_argument("--nonlinearity", action="append",
                   help="linear, relu, erf, normcdf, tanh or an expression in h; repeat or comma-list "
                        "built-ins (default: linear,normcdf,relu)")
    p.add_argument("--temperature", type=float, default=0.05, help="T >= 0 (default 0.05)")
    p.add_argument("--sigma-w", type=float, default=1.0, help="σ_1, first-layer prior std (default 1)")
    p.add_argument("--sigma-a", type=float, default=1.0, help="σ_a, readout prior std (default 1)")
    p.add_argument("--method", default="newton", help="newton or fixed-point (default newton)")
    p.add_argument("--integrator", default="auto", help="auto, gauss-hermite, cubature or qmc")
    p.add_argument("--tol", type=float, default=None, help="residual tolerance (default 1e-7)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--out", default="codingschemes_out", help="folder for the figure (default ./codingschemes_out)")
    p.add_argument("--no-plot", action="store_true", help="do not write the figure")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--layers", type=int, default=1,
                   help="hidden layers L (default 1); L >= 2: deep linear closed form for linear, the class-block "
                        "deep solver (solvers.deep.nonlinear) for relu and smooth bounded φ (normcdf, erf, tanh)")
    p.add_argument("--large-p", action="store_true",
                   help="leading-order P → ∞ theory with σ_a² = σ̄_a²/P (THEORY §4; for --layers >= 2 the deep "
                        "large-P solution of solvers.deep.large_p: branches in the saturated last hidden layer)")
    p.add_argument("--sigma-a-bar", type=float, default=1.0, help="σ̄_a for --large-p (default 1)")
    p.add_argument("--patterns", choices=("all", "prior-span"), default="all",
                   help="--large-p with --layers >= 2: 'all' saturation patterns (the P → ∞ limit) or only those "
                        "in the prior kernel's span (the branch finite networks follow at moderate P)")

    v = sub.add_parser("validate", help="compare sampled finite networks with the theory")
    v.add_argument("--class-sizes", default="8,4,4", help="comma-separated class sizes (default 8,4,4)")
    v.add_argument("--nonlinearity", default="relu", help="linear, relu, erf, normcdf, tanh or an expression in h")
    v.add_argument("--temperature", type=float, default=0.5, help="T > 0 (default 0.5)")
    v.add_argument("--sigma-w", type=float, default=1.0, help="σ_1 (default 1)")
    v.add_argument("--sigma-a", type=float, default=1.0, help="σ_a (default 1)")
    v.add_argument("--widths", default="400", help="comma-separated widths N; two or more: 1/N extrapolation")
    v.add_argument("--chains", type=int, default=4, help="chains per width (default 4)")
    v.add_argument("--sweeps", type=int, default=1500, help="Gibbs sweeps per chain (default 1500)")
    v.add_argument("--burn", type=int, default=300, help="burn-in sweeps (default 300)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--init", choices=("random", "theory", "both"), default="random",
                   help="chain starts: prior draws, neurons from the theory's single-neuron measure, "
                        "or both sets side by side")
    v.add_argument("--scaling", choices=("mean-field", "lazy"), default="mean-field",
                   help="mean-field (γ = 1, β = N/T; against the solver) or lazy (γ = 1/2, β = 1/T; "
                        "against the NNGP baseline)")
    v.add_argument("--workers", type=int, default=1, help="chains run in parallel (default 1)")
    v.add_argument("--sampler", choices=("collapsed", "gibbs"), default="collapsed",
                   help="collapsed: MALA on W with the readout integrated out, then a | W (default); "
                        "gibbs: a | W exact, MALA on W | a")
    v.add_argument("--checkpoint", default=None,
                   help="JSON Lines file every finished chain is written to; rerunning the same command "
                        "resumes from it (default: OUT/validate-<hash of the settings>.jsonl)")
    v.add_argument("--swaps", type=int, default=0,
                   help="Metropolis neuron swaps per sweep (mode-changing moves from a theory proposal)")
    v.add_argument("--format", choices=("table", "json"), default="table")
    v.add_argument("--out", default="codingschemes_out", help="folder for the PNG report")
    v.add_argument("--quiet", action="store_true", help="no progress on stderr")
    v.add_argument("--layers", type=int, default=1,
                   help="hidden layers L (default 1); L >= 2: deep networks against the deep theory (linear "
                        "closed form, or solvers.deep.nonlinear for relu and smooth bounded φ), layer by layer")
    add_continue_parser(sub)
    add_phase_parser(sub)
    add_generalize_parser(sub)
    add_figures_parser(sub)
    return parser


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


def _check_layers(layers: int, specs) -> None:
    """L >= 2: linear φ (closed form) or a φ the deep class-block solver handles (relu, kink-free bounded)."""
    from theory.deep_blocks import OneD

    if layers < 1:
        raise SpecError(f"layers must be an integer >= 1 (got {layers})")
    if layers > 1:
        for s in specs:
            if s.nonlinearity != "linear":
                OneD.for_nonlinearity(s.nonlinearity)  # raises SpecError for unsupported φ


def _solve_deep(args, specs) -> int:
    """``solve --layers L``: the deep linear closed form (:mod:`solvers.deep.linear`) for linear φ, the deep
    class-block solver (:mod:`solvers.deep.nonlinear`) otherwise; JSON with "layers"."""
    from solvers.deep.linear import solve_deep_json
    from solvers.deep.nonlinear import deep_nonlinear_json

    _check_layers(args.layers, specs)
    if args.large_p:
        return _solve_large_p(args, specs)
    objs = []
    for s in specs:
        if not args.quiet and s.nonlinearity != "linear":
            print(f"[{s.nonlinearity}] solving L = {args.layers} (class-block deep solver)...", file=sys.stderr)
        block = (solve_deep_json if s.nonlinearity == "linear" else deep_nonlinear_json)(s, args.layers)
        objs.append({**s.to_dict(), "layers_count": args.layers, **block})
    return _print_layers(args, objs)


def _print_layers(args, objs) -> int:
    """JSON or a short table of per-layer solutions; exit 1 if any did not converge."""
    if args.format == "json":
        print(json.dumps(objs[0] if len(objs) == 1 else {"solutions": objs}, indent=2))
    else:
        for o in objs:
            conv = "" if o.get("converged", True) else "  NOT CONVERGED: " + o.get("message", "")
            print(f"{o['nonlinearity']}, L = {args.layers}: f = {json.dumps(o['outputs'])}{conv}")
            for layer in o["layers"]:
                print(f"  layer {layer['layer']}: kernel diagonal {json.dumps(layer['kernel_diagonal'])}")
    return 0 if all(o.get("converged", True) for o in objs) else 1


def _solve_large_p(args, specs) -> int:
    """``solve --large-p``: the leading-order P → ∞ theory (:mod:`solvers.deep.large_p`; L = 1 is the
    one-layer large-P solver of :mod:`solvers.large_p.solve`), σ_a² = σ̄_a²/P."""
    from solvers.deep.large_p import solve_deep_large_p
    from theory.spec import positive_float

    sbar = positive_float("sigma_a_bar", args.sigma_a_bar)
    objs = []
    for s in specs:
        sol = solve_deep_large_p(s, args.layers, sigma_a_bar=sbar, patterns=args.patterns)
        objs.append({**s.to_dict(), "sigma_a_bar": sbar, "layers_count": args.layers, **sol.to_json()})
    return _print_layers(args, objs)


def _solve(args) -> int:
    from solvers.options import SolverOptions
    from solvers.solve import solve

    sizes = parse_class_sizes(args.class_sizes)
    opts = {"method": args.method, "integrator": args.integrator}
    if args.tol is not None:
        opts["tol"] = args.tol
    options = SolverOptions(**opts)
    specs = [ModelSpec(nonlinearity=n, sigma_w=args.sigma_w, sigma_a=args.sigma_a, temperature=args.temperature,
                       class_sizes=sizes) for n in _nonlinearities(args.nonlinearity)]
    if args.layers != 1 or args.large_p:
        return _solve_deep(args, specs)
    results = []
    for spec in specs:
        def progress(it, res, name=spec.nonlinearity):
            if not args.quiet:
                print(f"\r[{name}] iteration {it:3d}  residual {res:.2e}", end="", file=sys.stderr, flush=True)

        results.append(solve(spec, options, progress=progress))
        if not args.quiet:
            print(f"\r[{spec.nonlinearity}] done: {results[-1].message}" + " " * 10, file=sys.stderr)
    if args.format == "json":
        objs = [r.to_json() for r in results]
        print(json.dumps(objs[0] if len(objs) == 1 else {"solutions": objs}, indent=2))
    else:
        print(_table(results))
    if not args.no_plot:
        from figures.solution import plot_solutions

        path = plot_solutions(results, Path(args.out) / "solve.png")
        if not args.quiet:
            print(f"figure: {path}", file=sys.stderr)
    return 0 if all(r.success for r in results) else 1


def _validate_deep(args, spec, widths) -> int:
    """``validate --layers L``: chains from prior starts against the deep theory
    (:func:`validation.deep.validate_deep`) and/or the stationarity test from the theory's per-layer
    measures (:func:`validation.deep_theory_init.deep_stationarity`, ``--init theory``; ``--swaps k``
    adds k last-layer independence moves per sweep); ``--init both`` passes only if both do."""
    from solvers.deep.nonlinear import DeepNonlinearError
    from validation.deep import validate_deep
    from validation.deep_theory_init import deep_stationarity

    _check_layers(args.layers, [spec])
    reports = {}
    try:
        if args.init in ("random", "both"):
            reports["random"] = validate_deep(spec, args.layers, widths=widths, chains=args.chains,
                                              sweeps=args.sweeps, burn=args.burn, seed=args.seed)
        if args.init in ("theory", "both"):
            reports["theory"] = deep_stationarity(spec, args.layers, width=widths[0], chains=args.chains,
                                                  sweeps=args.sweeps, burn=args.burn, seed=args.seed,
                                                  swaps=args.swaps)
    except DeepNonlinearError as exc:
        print(f"codingschemes: the deep theory has no solution here: {exc}", file=sys.stderr)
        return 1
    report = (reports[args.init] if args.init != "both"
              else {**reports, "passed": all(r["passed"] for r in reports.values())})
    print(json.dumps(report, indent=2) if args.format == "json" else
          f"L = {args.layers} ({args.init} start): passed: {report['passed']}")
    return 0 if report["passed"] else 1


def _validate(args) -> int:
    from figures.validation import plot_validation
    from validation.report import validate

    try:
        widths = [int(w) for w in args.widths.split(",") if w.strip()]
    except ValueError:
        raise SpecError(f"widths must be comma-separated positive integers (got {args.widths!r})") from None
    if not widths or min(widths) < 1:
        raise SpecError(f"widths must be comma-separated positive integers (got {args.widths!r})")
    spec = ModelSpec(nonlinearity=args.nonlinearity, sigma_w=args.sigma_w, sigma_a=args.sigma_a,
                     temperature=args.temperature, class_sizes=parse_class_sizes(args.class_sizes))
    if args.layers != 1:
        return _validate_deep(args, spec, widths)
    settings = {**spec.to_dict(), "widths": widths, "chains": args.chains, "sweeps": args.sweeps,
                "burn": args.burn, "seed": args.seed, "init": args.init, "swaps": args.swaps,
                "scaling": args.scaling, "sampler": args.sampler}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    checkpoint = args.checkpoint or str(Path(args.out) / f"validate-{digest}.jsonl")
    if not args.quiet:
        print(f"[validate] chains are written to {checkpoint} (rerun to resume)", file=sys.stderr)
    try:
        report = validate(spec, widths=widths, chains=args.chains, sweeps=args.sweeps, burn=args.burn,
                          seed=args.seed, progress=not args.quiet, init=args.init, swaps=args.swaps,
                          scaling=args.scaling, workers=args.workers, checkpoint=checkpoint,
                          sampler=args.sampler)
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    path = plot_validation(report, Path(args.out) / "validate.png")
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        print(f"{report['comparison']}\npassed: {report['passed']}  (max z {report['z_max']:.2f}, "
              f"min ESS {report['diagnostics']['ess_min']:.0f}, max R-hat {report['diagnostics']['rhat_max']:.3f})")
        for key in ("outputs", "readout_moment"):
            print(f"{key}: theory {json.dumps(report['theory'][key])}\n{'':{len(key)}}  sampled "
                  f"{json.dumps([[round(x, 4) for x in row] for row in report['sampling'][key]])}")
    if not args.quiet:
        print(f"report: {path}", file=sys.stderr)
    return 0 if report["passed"] else 1


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "solve":
            return _solve(args)
        if args.command == "validate":
            return _validate(args)
        if args.command == "continue":
            return run_continue(args)
        if args.command == "phase-diagram":
            return run_phase(args)
        if args.command == "generalize":
            return run_generalize(args)
        if args.command == "figures":
            return run_figures(args)
    except SpecError as exc:
        print(f"codingschemes: error: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
