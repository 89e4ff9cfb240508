"""The error-estimate coverage table of the finite-P solve (issue 15 item 6).

For every case of :data:`validation.error_coverage.MATRIX` (φ ∈ linear, erf, normcdf, relu × classes
32,16,16 and 8,4,4 × T = 0.5, 0.05), the default solve's true error against the closed form
(linear) or a tight reference solve, its reported ``error_estimate`` and the ratio
true / (estimate + reference estimate); ≤ 1 means the estimate covers the true error.
Prints a Markdown table with the command, date, machine and load average.

Run: python benchmarks/coverage_table.py [--only relu] [--sizes 8,4,4] [--temperatures 0.05]
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys

from validation.error_coverage import MATRIX, coverage_case, markdown_table


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=None, help="comma-separated nonlinearities (default: all of the matrix)")
    ap.add_argument("--sizes", default=None, help="one class-size tuple, e.g. 8,4,4 (default: both)")
    ap.add_argument("--temperatures", default=None, help="comma-separated T (default: 0.5,0.05)")
    args = ap.parse_args(argv)
    only = None if args.only is None else set(args.only.split(","))
    sizes = None if args.sizes is None else tuple(int(s) for s in args.sizes.split(","))
    temps = None if args.temperatures is None else {float(s) for s in args.temperatures.split(",")}
    cases = [c for c in MATRIX if (only is None or c[0] in only) and (sizes is None or c[1] == sizes)
             and (temps is None or c[2] in temps)]
    rows = []
    for nl, sz, T in cases:
        rows.append(coverage_case(nl, sz, T))
        r = rows[-1]
        print(f"{nl} {sz} T={T}: ratio {r.ratio:.3g} ({r.seconds:.0f} s, load {os.getloadavg()[0]:.1f})",
              file=sys.stderr, flush=True)
        print(markdown_table([r]).splitlines()[-1], file=sys.stderr, flush=True)
    print(f"command: python benchmarks/coverage_table.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    print(f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; machine: {os.cpu_count()} "
          f"cores (shared); load average at the end {os.getloadavg()[0]:.1f}\n")
    print(markdown_table(rows))
    return 0 if all(r.covered for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
