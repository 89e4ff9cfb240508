"""``codingschemes figures [--quick] [--out DIR]``: regenerate the figures (figures/gallery.py).

Quick mode writes every figure from the large-P theory and short
chains; full mode uses the exact finite-P solver where it converges and long chains from random
starts. ``--only`` runs some of the scripts (names as in :data:`figures.gallery.SCRIPTS`, with or
without the ``fig_`` prefix); ``--no-plot`` only lists the scripts that would run (a dry run) and
``--quiet`` silences the log on stderr. Each figure is written as PNG (300 dpi), PDF and a JSON
sidecar with its numbers and settings; ``DIR/manifest.json`` lists the figures with their mode and
seconds (:mod:`figures.gallery`). Exit code 0 when every figure was written, 1 otherwise, 2 for bad
input.
"""
from __future__ import annotations

from contextlib import nullcontext, redirect_stderr
import io
import sys

from theory.spec import SpecError
from codingschemes.cli.args import add_shared, check_shared, fail

__all__ = ["add_figures_parser", "check_figures", "run_figures"]


def add_figures_parser(subparsers) -> None:
    p = subparsers.add_parser("figures", help="regenerate the figures (theory and sampling side by side)")
    p.add_argument("--quick", action="store_true", help="small, fast versions (about a minute)")
    add_shared(p, "out", "no_plot", "quiet",
               defaults={"out": ("codingschemes_out/figures", "a folder of its own: the gallery writes many PNGs")},
               notes={"no_plot": "a dry run: list the figure scripts that would run", "quiet": "nor the log"})
    p.add_argument("--only", default=None,
                   help="comma-separated figures to run (names of figures/fig_*.py without fig_, e.g. generalization,deep_layers)")


def check_figures(args):
    """Every argument of ``figures`` (SpecError naming the flag); returns the --only list or None."""
    from figures.gallery import SCRIPTS

    check_shared(args)
    only = [s.strip() for s in args.only.split(",") if s.strip()] if getattr(args, "only", None) else None
    unknown = [n for n in only or [] if (n if n.startswith("fig_") else f"fig_{n}") not in SCRIPTS]
    if unknown:
        raise SpecError(f"--only: unknown figure(s) {unknown}; choose from {[n[4:] for n in SCRIPTS]}")
    return only


def run_figures(args) -> int:
    from figures.gallery import SCRIPTS, run_all

    try:
        only = check_figures(args)
    except SpecError as exc:  # run_figures reports bad input itself (exit code 2), as it always did
        return fail("figures", exc)
    if getattr(args, "no_plot", False):
        for name in only or SCRIPTS:
            print(f"figures/{name if name.startswith('fig_') else 'fig_' + name}.py")
        return 0
    try:
        with redirect_stderr(io.StringIO()) if getattr(args, "quiet", False) else nullcontext():
            paths = run_all(args.out, quick=args.quick, only=only)
    except Exception as exc:  # noqa: BLE001 - a figure failed; the others were written
        print(f"codingschemes figures: a figure failed ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    for p in paths:
        print(p)
    return 0
