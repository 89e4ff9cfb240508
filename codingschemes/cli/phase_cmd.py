"""``codingschemes phase-diagram``: coding schemes over two parameters (large-P theory, THEORY §4).

Example::

    codingschemes phase-diagram --nonlinearity erf --class-fractions 0.5,0.25,0.25 \\
        --x temperature --x-range 0.05:1.0:40 --y sigma_a_bar --y-range 0.5:2.0:20 --workers 2

Writes ``OUT/phase-<hash>.jsonl`` (the resumable sweep file: one line per
finished row), ``OUT/phase_diagram.json`` (labels, located transitions with
brackets, boundary curves) and ``OUT/phase_diagram.png`` (not with ``--no-plot``). Rerunning the same
command resumes an interrupted diagram.

``--finite-p`` maps the exact finite-P theory instead (THEORY §3; one warm-started solve per point,
:func:`solvers.finite_p.maps.finite_p_map`) at the class sizes ``--class-sizes``: axes temperature,
sigma_a, sigma_a_bar (σ_a = σ̄_a/√P) or sigma_w; the fixed σ_a is ``--sigma-a`` or σ̄_a/√P. Each point
holds the coding scheme of p(a) (modes, masses, codes, ReLU condensate), f, U, the kernel and the
solver's verdict. Writes ``OUT/finite-p-map-<hash>.jsonl`` (resumable, one line per row),
``OUT/finite_p_map.json`` and ``OUT/finite_p_map.png`` / ``.pdf``::

    codingschemes phase-diagram --finite-p --nonlinearity normcdf --class-sizes 32,16,16 \\
        --x temperature --x-range 0.05:0.5:20 --y sigma_a --y-range 0.1:0.3:10
"""
from __future__ import annotations

from pathlib import Path
import sys

import numpy as np

from theory.jsonio import dumps
from theory.spec import SpecError
from codingschemes.cli.args import (BROKEN_TEMPERATURE, ODD_NONLINEARITY, add_shared, check_counts, check_shared,
                                    emit, finite_p_spec, large_p_problem, not_applicable, parse_fractions,
                                    settings_digest)

__all__ = ["add_phase_parser", "check_phase", "run_phase", "parse_range", "parse_fractions", "MAX_GRID",
           "check_finite_p_map", "run_finite_p_map"]

#: the most values along one axis (each is a large-P solve; this bounds the memory of 'lo:hi:n')
MAX_GRID = 10_000


def parse_range(text: str, name: str) -> list[float]:
    """``lo:hi:n`` (n evenly spaced values, n >= 2) or a comma-separated list."""
    try:
        if ":" in text:
            lo, hi, n = text.split(":")
            n, lo, hi = int(n), float(lo), float(hi)
            if not 2 <= n <= MAX_GRID or not (np.isfinite(lo) and np.isfinite(hi)):
                raise ValueError
            return [float(v) for v in np.linspace(lo, hi, n)]
        vals = [float(v) for v in text.split(",") if v.strip()]
        if not vals or len(vals) > MAX_GRID or not np.all(np.isfinite(vals)):
            raise ValueError
        return vals
    except ValueError:
        raise SpecError(f"{name} must be 'lo:hi:n' with 2 <= n <= {MAX_GRID}, or comma-separated numbers, all "
                        f"finite (got {text!r})") from None


def add_phase_parser(sub) -> None:
    p = sub.add_parser("phase-diagram", help="coding schemes over two parameters (large-P theory), resumable")
    add_shared(p, "nonlinearity", "class_fractions", "temperature", "sigma_w", "sigma_a_bar",
               defaults={"nonlinearity": ODD_NONLINEARITY, "temperature": BROKEN_TEMPERATURE},
               notes={k: "used when it is not an axis" for k in ("temperature", "sigma_w", "sigma_a_bar")})
    p.add_argument("--x", default="temperature", help="x parameter: temperature, sigma_a_bar, sigma_w or rho_r")
    p.add_argument("--x-range", default="0.05:1.0:40", help="lo:hi:n or comma-separated values")
    p.add_argument("--y", default="sigma_a_bar", help="y parameter (as --x)")
    p.add_argument("--y-range", default="0.5:2.0:12", help="lo:hi:n or comma-separated values")
    p.add_argument("--refine", type=int, default=8, help="bisection halvings per located transition (default 8)")
    p.add_argument("--workers", type=int, default=None, help="parallel rows (default: all cores)")
    p.add_argument("--backend", choices=("process", "serial", "dask"), default="process")
    p.add_argument("--dask-address", default=None, help="Dask scheduler address (backend dask)")
    add_shared(p, "format", "out", "no_plot", "quiet",
               notes={"out": "the sweep file, JSON and PNG go there", "no_plot": "the JSON files are still written"})
    p.add_argument("--finite-p", action="store_true",
                   help="map the exact finite-P theory (THEORY §3) at --class-sizes instead of the large-P one; "
                        "axes temperature, sigma_a, sigma_a_bar or sigma_w")
    add_shared(p, "class_sizes", "sigma_a", notes={"class_sizes": "with --finite-p",
                                                  "sigma_a": "with --finite-p, when not an axis (default: "
                                                             "σ̄_a/√P from --sigma-a-bar)"})


def _table(diagram) -> str:
    labels = sorted({lab for row in diagram.labels.tolist() for lab in row if lab is not None})
    lines = [f"{len(diagram.y)} × {len(diagram.x)} points, {len(labels)} coding schemes:"]
    lines += [f"  {int(np.sum(diagram.labels == lab)):6d}  {lab}" for lab in labels]
    lines.append(f"{len(diagram.boundary_points)} located transitions, {len(diagram.boundary_curves())} "
                 "boundary curves")
    return "\n".join(lines)


def check_phase(args):
    """Every argument of ``phase-diagram`` before any solve or file (SpecError naming the flag);
    returns (problem, xs, ys), or (spec, xs, ys) with ``--finite-p``."""
    from solvers.large_p.problem import canonical_parameter, check_parameter_value

    check_shared(args)
    if args.finite_p:
        return check_finite_p_map(args)
    not_applicable("phase-diagram", args, ("class_sizes", "sigma_a"), "without --finite-p (the large-P theory: "
                   "--class-fractions and --sigma-a-bar set the model)", error=True)
    problem = large_p_problem(args)
    xs, ys = parse_range(args.x_range, "--x-range"), parse_range(args.y_range, "--y-range")
    names = {}
    for axis, values in (("x", xs), ("y", ys)):
        try:
            names[axis] = canonical_parameter(getattr(args, axis), problem.m)
            for v in (min(values), max(values)):
                check_parameter_value(names[axis], axis + "-range", v, problem.m)
        except SpecError as exc:
            raise SpecError(f"--{axis} / --{axis}-range: {exc}") from None
    if names["x"] == names["y"]:
        raise SpecError(f"--x and --y must be different parameters (got {names['x']!r} twice)")
    if len(xs) < 2:
        raise SpecError(f"--x-range: need at least 2 x values (got {len(xs)})")
    check_counts(args, {"refine": (0, None), "workers": (1, None)})
    if args.backend != "dask":
        not_applicable("phase-diagram", args, ("dask_address",), f"with --backend {args.backend}")
    return problem, xs, ys


def check_finite_p_map(args):
    """``phase-diagram --finite-p``: (spec, xs, ys); SpecError naming the flag before any work."""
    from solvers.finite_p.maps import PARAMETERS, check_values

    spec = finite_p_spec(args, "phase-diagram")
    xs, ys = parse_range(args.x_range, "--x-range"), parse_range(args.y_range, "--y-range")
    for axis, values in (("x", xs), ("y", ys)):
        name = getattr(args, axis)
        if name not in PARAMETERS:
            raise SpecError(f"--{axis}: with --finite-p the parameter must be one of {', '.join(PARAMETERS)} "
                            f"(got {name!r})")
        check_values(name, values, f"--{axis}-range")
    if args.x == args.y or {args.x, args.y} == {"sigma_a", "sigma_a_bar"}:
        raise SpecError(f"--x and --y must be different parameters (got {args.x!r} and {args.y!r})")
    if len(xs) < 2:
        raise SpecError(f"--x-range: need at least 2 x values (got {len(xs)})")
    check_counts(args, {"workers": (1, None)})
    not_applicable("phase-diagram", args, ("refine",), "with --finite-p (no transitions to bisect: the finite-P "
                   "solution is unique and its modes change smoothly)", error=True)
    if args.backend != "dask":
        not_applicable("phase-diagram", args, ("dask_address",), f"with --backend {args.backend}")
    return spec, xs, ys


def run_finite_p_map(args) -> int:
    """``phase-diagram --finite-p``: the resumable map, its JSON and its figure."""
    from solvers.finite_p.maps import finite_p_map

    spec, xs, ys = check_phase(args)
    settings = {**spec.to_dict(), "finite_p": True, "x": args.x, "xs": xs, "y": args.y, "ys": ys}
    out = Path(args.out)
    path = out / f"finite-p-map-{settings_digest(settings)}.jsonl"
    if not args.quiet:
        print(f"[phase-diagram --finite-p] rows are written to {path} (rerun to resume)", file=sys.stderr)
    fmap = finite_p_map(spec, args.x, xs, args.y, ys, path, workers=args.workers, backend=args.backend,
                        dask_address=args.dask_address, progress=not args.quiet)
    data = fmap.to_json()
    out.mkdir(parents=True, exist_ok=True)
    (out / "finite_p_map.json").write_text(dumps(data))
    emit(data, args.format, lambda: _finite_table(fmap))
    if not args.no_plot:
        from figures.finite_p_map import plot_finite_p_map

        png = plot_finite_p_map(fmap, out / "finite_p_map.png")
        if not args.quiet:
            print(f"figure: {png} (and .pdf)", file=sys.stderr)
    return 0 if fmap.converged else 1


def _finite_table(fmap) -> str:
    labels = [p["label"] for p in fmap.points()]
    lines = [f"{len(fmap.y)} × {len(fmap.x)} points (finite P), {len(set(labels))} coding schemes:"]
    lines += [f"  {labels.count(lab):6d}  {lab}" for lab in sorted(set(labels))]
    lines.append(fmap.message)
    return "\n".join(lines)


def run_phase(args) -> int:
    from solvers.large_p.phase_diagram import phase_diagram

    if args.finite_p:
        return run_finite_p_map(args)
    problem, xs, ys = check_phase(args)
    settings = {**problem.to_dict(), "x": args.x, "xs": xs, "y": args.y, "ys": ys, "refine": args.refine}
    digest = settings_digest(settings)
    out = Path(args.out)
    path = out / f"phase-{digest}.jsonl"
    if not args.quiet:
        print(f"[phase-diagram] rows are written to {path} (rerun to resume)", file=sys.stderr)
    try:
        diagram = phase_diagram(problem, args.x, xs, args.y, ys, path, workers=args.workers,
                                backend=args.backend, dask_address=args.dask_address, refine=args.refine,
                                progress=not args.quiet)
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    data = {"problem": problem.to_dict(), **diagram.to_json()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "phase_diagram.json").write_text(dumps(data))
    emit(data, args.format, lambda: _table(diagram))
    if not args.no_plot:
        from figures.phase_diagram import plot_phase_diagram

        rho = ", ".join(f"{r:.3g}" for r in problem.class_fractions)
        png = plot_phase_diagram(diagram.records(), args.x, args.y, "label", boundaries=diagram.boundary_curves(),
                                 out=out / "phase_diagram.png", title=f"{problem.nonlinearity}, ρ = ({rho})",
                                 settings={**problem.to_dict(), "refine": args.refine})
        if not args.quiet:
            print(f"figure: {png}", file=sys.stderr)
    return 0 if all(r is not None for r in diagram.rows) else 1
