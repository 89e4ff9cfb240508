"""``codingschemes scaling``: finite-size scaling of the symmetry breaking (THEORY §3–4).

Example::

    codingschemes scaling --nonlinearity erf --class-fractions 0.5,0.25,0.25 --P 16,32,64,128,256,512,1024

follows the finite-P solution through the large-P transition T_c at each P with σ_a² = σ̄_a²/P
(:func:`solvers.finite_p.scaling.finite_size_scaling`), measures the crossover of the order
parameter (the readout spread tr Cov_p(a)) — its location, width and shift against P — and
fits power laws with errors. Writes ``OUT/scaling-<hash>.jsonl`` (resumable, one line per P),
``OUT/scaling.json`` and ``OUT/scaling.png`` / ``.pdf`` (curves, collapse, fits; not with
``--no-plot``).
"""
from __future__ import annotations

from pathlib import Path
import sys

from theory.jsonio import dumps
from theory.spec import SpecError
from codingschemes.cli.args import (ODD_NONLINEARITY, add_shared, check_counts, check_shared, emit, finite_number,
                                    flag_error, parse_fractions, settings_digest)

__all__ = ["add_scaling_parser", "check_scaling", "run_scaling", "parse_sizes"]

HELP = "finite-size scaling: the finite-P crossover sharpening into the large-P transition T_c"


def add_scaling_parser(sub) -> None:
    p = sub.add_parser("scaling", help=HELP, description=HELP + " (THEORY §3–4)")
    add_shared(p, "nonlinearity", "class_fractions", "sigma_w", "sigma_a_bar", defaults={"nonlinearity": ODD_NONLINEARITY})
    p.add_argument("--P", dest="P", default="16,32,64,128,256,512,1024",
                   help="comma-separated numbers of training inputs P (σ_a² = σ̄_a²/P, P_c = round(ρ_c P)) "
                        "(default 16,32,...,1024)")
    p.add_argument("--n-temperatures", type=int, default=21, help="temperatures per P (default 21)")
    p.add_argument("--window", default="-3:2",
                   help="lo:hi, the temperatures T = T_c (1 + u/√P) for u evenly in [lo, hi] (default -3:2)")
    p.add_argument("--tc", default=None, help="T_c (default: from the large-P theory)")
    p.add_argument("--workers", type=int, default=None, help="parallel P values (default: all cores)")
    p.add_argument("--backend", choices=("process", "serial"), default="process")
    add_shared(p, "format", "out", "no_plot", "quiet",
               notes={"out": "the sweep file, JSON, PNG and PDF go there"})


def parse_sizes(text: str) -> list[int]:
    """--P: at least 3 distinct integers >= 4, increasing."""
    try:
        vals = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        vals = []
    if len(vals) < 3 or len(set(vals)) != len(vals) or min(vals) < 4 or max(vals) > 100_000 or vals != sorted(vals):
        raise SpecError(f"--P must be at least 3 distinct increasing integers in [4, 100000], comma-separated "
                        f"(got {text!r})")
    return vals


def _window(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in str(text).split(":"))
    except ValueError:
        lo = hi = float("nan")
    if not (lo < hi) or not all(abs(v) < 1e3 for v in (lo, hi)):
        raise SpecError(f"--window must be 'lo:hi' with finite lo < hi (got {text!r})")
    return lo, hi


def check_scaling(args):
    """Every argument of ``scaling`` before any solve (SpecError naming the flag); returns
    (problem, P values, window, T_c or None)."""
    from solvers.large_p.problem import LargePProblem

    check_shared(args)
    try:  # the temperature is the swept variable: any valid value here
        problem = LargePProblem(nonlinearity=args.nonlinearity, sigma_w=args.sigma_w, sigma_a_bar=args.sigma_a_bar,
                                temperature=1.0, class_fractions=parse_fractions(args.class_fractions))
    except SpecError as exc:
        raise flag_error(exc, ("nonlinearity", "class_fractions", "sigma_w", "sigma_a_bar")) from None
    if problem.nonlinearity == "linear":
        raise SpecError("--nonlinearity: linear φ has no symmetry breaking (THEORY §4: p(a) stays Gaussian); "
                        "use erf, normcdf, tanh, relu or an expression")
    P = parse_sizes(args.P)
    small = [p for p in P if min(r * p for r in problem.class_fractions) < 0.5]
    if small:
        raise SpecError(f"--P: P = {small[0]} leaves a class empty with --class-fractions {args.class_fractions} "
                        "(need round(ρ_c P) >= 1)")
    check_counts(args, {"n_temperatures": (5, 10_000), "workers": (1, None)})
    lo, hi = _window(args.window)
    tc = finite_number("--tc", args.tc)
    if tc is not None and tc <= 0:
        raise SpecError(f"--tc must be > 0 (got {tc:g})")
    return problem, P, (lo, hi), tc


def run_scaling(args) -> int:
    from solvers.finite_p.scaling import finite_size_scaling

    problem, P, window, tc = check_scaling(args)
    settings = {**problem.to_dict(), "P": P, "window": list(window), "n": args.n_temperatures, "tc": tc}
    out = Path(args.out)
    path = out / f"scaling-{settings_digest(settings)}.jsonl"
    if not args.quiet:
        print(f"[scaling] lines (one per P) are written to {path} (rerun to resume)", file=sys.stderr)
    result = finite_size_scaling(problem, path, P_values=P, window_u=window, n_temperatures=args.n_temperatures,
                                 tc=tc, workers=args.workers, backend=args.backend, progress=not args.quiet)
    data = result.to_json()
    figure = None
    if not args.no_plot:
        from figures.scaling import plot_scaling

        figure = str(plot_scaling(result, out / "scaling.png"))
        if not args.quiet:
            print(f"figure: {figure} (and .pdf)", file=sys.stderr)
    data["figure"] = figure
    out.mkdir(parents=True, exist_ok=True)
    (out / "scaling.json").write_text(dumps(data))
    emit(data, args.format, result.table)
    return 0 if result.converged else 1
