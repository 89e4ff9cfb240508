"""The ``codingschemes`` command: builds the parser from the subcommand modules and dispatches.

``codingschemes solve`` solves the mean-field saddle point (THEORY §2–3); ``validate`` compares
sampled finite networks with it; ``continue`` and ``phase-diagram`` follow the large-P theory in
one and two parameters (THEORY §4; with ``--finite-p`` the exact finite-P theory, THEORY §3);
``scaling`` follows the finite-P crossover into the large-P transition (finite-size scaling);
``generalize`` runs the theory on real data (THEORY §6); ``figures`` regenerates the figures.
Each subcommand lives in its own module.

Exit codes: 0 success; 1 a solve did not converge or a check failed; 2 invalid input.
"""
from __future__ import annotations

import argparse
import sys

from codingschemes.cli.args import record_defaults, run_command
from codingschemes.cli.continue_cmd import add_continue_parser, check_continue, run_continue
from codingschemes.cli.figures_cmd import add_figures_parser, check_figures, run_figures
from codingschemes.cli.generalize_cmd import add_generalize_parser, check_generalize, run_generalize
from codingschemes.cli.phase_cmd import add_phase_parser, check_phase, run_phase
from codingschemes.cli.scaling_cmd import add_scaling_parser, check_scaling, run_scaling
from codingschemes.cli.solve_cmd import add_solve_parser, check_solve, run_solve
from codingschemes.cli.validate_cmd import add_validate_parser, check_validate, run_validate

__all__ = ["main", "build_parser", "parse_checked", "COMMANDS", "CHECKS"]

DESCRIPTION = ("The mean-field theory of wide Bayesian networks learning classification: solve it, compare it "
               "with sampled networks, follow it in parameters, and test it on real data.")

#: subcommand name → (add its parser, run it from parsed args)
COMMANDS = {
    "solve": (add_solve_parser, run_solve),
    "validate": (add_validate_parser, run_validate),
    "continue": (add_continue_parser, run_continue),
    "phase-diagram": (add_phase_parser, run_phase),
    "generalize": (add_generalize_parser, run_generalize),
    "figures": (add_figures_parser, run_figures),
    "scaling": (add_scaling_parser, run_scaling),
}

#: subcommand name → its check of every parsed argument (SpecError naming the flag; no work, no files);
#: each run function calls its check first
CHECKS = {
    "solve": check_solve,
    "validate": check_validate,
    "continue": check_continue,
    "phase-diagram": check_phase,
    "generalize": check_generalize,
    "figures": check_figures,
    "scaling": check_scaling,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codingschemes", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    for add, _ in COMMANDS.values():
        add(sub)
    for p in sub.choices.values():  # each subcommand's defaults, to tell the flags the user gave
        record_defaults(p)
    return parser


def parse_checked(argv):
    """Parse ``argv`` and check every argument without running the subcommand: the parsed args, or
    :class:`theory.spec.SpecError` naming the flag (SystemExit 2 from argparse for a usage error)."""
    args = build_parser().parse_args(argv)
    CHECKS[args.command](args)
    return args


def main(argv=None) -> int:
    """Parse ``argv`` (default: the command line), run the subcommand and return its exit code: 0, 1,
    or 2 for bad input (argparse's usage error, or :func:`codingschemes.cli.args.fail`'s message)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error argparse has printed (2)
        return exc.code if isinstance(exc.code, int) else 2
    return run_command(args.command, COMMANDS[args.command][1], args)


if __name__ == "__main__":
    sys.exit(main())
