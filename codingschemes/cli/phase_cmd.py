"""``codingschemes phase-diagram``: coding schemes over two parameters (large-P theory, THEORY §4).

Example::

    codingschemes phase-diagram --nonlinearity erf --class-fractions 0.5,0.25,0.25 \\
        --x temperature --x-range 0.05:1.0:40 --y sigma_a_bar --y-range 0.5:2.0:20 --workers 2

Writes ``OUT/phase-<hash>.jsonl`` (the resumable sweep file: one line per
finished row), ``OUT/phase_diagram.json`` (labels, located transitions with
brackets, boundary curves) and ``OUT/phase_diagram.png``. Rerunning the same
command resumes an interrupted diagram.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
import sys

import numpy as np

from theory.spec import SpecError

__all__ = ["add_phase_parser", "run_phase", "parse_range", "parse_fractions"]


def parse_range(text: str, name: str) -> list[float]:
    """``lo:hi:n`` (n evenly spaced values, n >= 2) or a comma-separated list."""
    try:
        if ":" in text:
            lo, hi, n = text.split(":")
            n = int(n)
            if n < 2:
                raise ValueError
            return [float(v) for v in np.linspace(float(lo), float(hi), n)]
        vals = [float(v) for v in text.split(",") if v.strip()]
        if not vals:
            raise ValueError
        return vals
    except ValueError:
        raise SpecError(f"{name} must be 'lo:hi:n' with n >= 2, or comma-separated numbers (got {text!r})") from None


def parse_fractions(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise SpecError(f"class-fractions must be comma-separated numbers in (0, 1) summing to 1 (got {text!r})") \
            from None


def add_phase_parser(sub) -> None:
    p = sub.add_parser("phase-diagram", help="coding schemes over two parameters (large-P theory), resumable")
    p.add_argument("--nonlinearity", default="erf", help="linear, relu, erf, normcdf, tanh or an expression in h")
    p.add_argument("--class-fractions", default="0.5,0.25,0.25", help="ρ_c, comma-separated, summing to 1")
    p.add_argument("--temperature", type=float, default=0.1, help="T when it is not an axis (default 0.1)")
    p.add_argument("--sigma-w", type=float, default=1.0, help="σ_1 when it is not an axis (default 1)")
    p.add_argument("--sigma-a-bar", type=float, default=1.0, help="σ̄_a (σ_a² = σ̄_a²/P) when not an axis")
    p.add_argument("--x", default="temperature", help="x parameter: temperature, sigma_a_bar, sigma_w or rho_r")
    p.add_argument("--x-range", default="0.05:1.0:40", help="lo:hi:n or comma-separated values")
    p.add_argument("--y", default="sigma_a_bar", help="y parameter (as --x)")
    p.add_argument("--y-range", default="0.5:2.0:12", help="lo:hi:n or comma-separated values")
    p.add_argument("--refine", type=int, default=8, help="bisection halvings per located transition (default 8)")
    p.add_argument("--workers", type=int, default=None, help="parallel rows (default: all cores)")
    p.add_argument("--backend", choices=("process", "serial", "dask"), default="process")
    p.add_argument("--dask-address", default=None, help="Dask scheduler address (backend dask)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--out", default="codingschemes_out", help="folder for the sweep file, JSON and PNG")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def run_phase(args) -> int:
    from figures.phase_diagram import plot_phase_diagram

    from solvers.large_p.problem import LargePProblem
    from solvers.large_p.phase_diagram import phase_diagram

    problem = LargePProblem(nonlinearity=args.nonlinearity, sigma_w=args.sigma_w, sigma_a_bar=args.sigma_a_bar,
                            temperature=args.temperature, class_fractions=parse_fractions(args.class_fractions))
    xs, ys = parse_range(args.x_range, "x-range"), parse_range(args.y_range, "y-range")
    if args.workers is not None and args.workers < 1:
        raise SpecError(f"workers must be an integer >= 1 (got {args.workers})")
    settings = {**problem.to_dict(), "x": args.x, "xs": xs, "y": args.y, "ys": ys, "refine": args.refine}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
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
    (out / "phase_diagram.json").write_text(json.dumps(data))
    png = plot_phase_diagram(diagram.records(), args.x, args.y, "label", boundaries=diagram.boundary_curves(),
                             out=out / "phase_diagram.png",
                             title=f"{problem.nonlinearity}, ρ = ({', '.join(f'{r:.3g}' for r in problem.class_fractions)})")
    if args.format == "json":
        print(json.dumps(data))
    else:
        labels = sorted({lab for row in diagram.labels.tolist() for lab in row if lab is not None})
        print(f"{len(ys)} × {len(xs)} points, {len(labels)} coding schemes:")
        for lab in labels:
            print(f"  {int(np.sum(diagram.labels == lab)):6d}  {lab}")
        print(f"{len(diagram.boundary_points)} located transitions, {len(diagram.boundary_curves())} boundary curves")
    if not args.quiet:
        print(f"figure: {png}", file=sys.stderr)
    return 0 if all(r is not None for r in diagram.rows) else 1
