"""The error-estimate coverage table of the finite-P solve (issue 15 item 6; THEORY §3).

For every case of :data:`validation.error_coverage.MATRIX` (φ ∈ linear, erf, normcdf, relu × classes
32,16,16 and 8,4,4 × T = 0.5, 0.05), the default solve's true error against the closed form
(linear) or a tight reference solve, its reported ``error_estimate`` and the ratio
true / (estimate + reference estimate); ≤ 1 means the estimate covers the true error.
Prints the Markdown table with the command, date, machine and load average; with ``--record PATH``
writes it as a benchmark record (rewritten after every case, marked incomplete until the end),
which ``docs/gen_results.py`` renders into docs/results.md.

Run: python benchmarks/coverage_table.py [--only relu] [--sizes 8,4,4] [--temperatures 0.05]
     [--record docs/measurements/coverage_table.json]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.record import Record, add_record_argument  # noqa: E402
from validation.error_coverage import MATRIX, coverage_case, markdown_table  # noqa: E402


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip()[1:-1].split(" | ")]


def table_rows(cases, extra) -> tuple[list[str], list[list[str]]]:
    """(columns, rows) of :func:`validation.error_coverage.markdown_table` plus the columns of ``extra``
    (a list of (name, values per case))."""
    lines = markdown_table(cases).splitlines()
    columns = _cells(lines[0]) + [name for name, _ in extra]
    rows = [_cells(line) + [values[k] for _, values in extra] for k, line in enumerate(lines[2:])]
    return columns, rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=None, help="comma-separated nonlinearities (default: all of the matrix)")
    ap.add_argument("--sizes", default=None, help="one class-size tuple, e.g. 8,4,4 (default: both)")
    ap.add_argument("--temperatures", default=None, help="comma-separated T (default: 0.5,0.05)")
    add_record_argument(ap)
    args = ap.parse_args(argv)
    only = None if args.only is None else set(args.only.split(","))
    sizes = None if args.sizes is None else tuple(int(s) for s in args.sizes.split(","))
    temps = None if args.temperatures is None else {float(s) for s in args.temperatures.split(",")}
    cases = [c for c in MATRIX if (only is None or c[0] in only) and (sizes is None or c[1] == sizes)
             and (temps is None or c[2] in temps)]
    record = Record(Path(args.record).stem if args.record else "coverage_table", echo=False)
    title = "Error-estimate coverage of the default finite-P solve (ratio ≤ 1: covered)"
    rows, seconds, loads = [], [], []
    for nl, sz, T in cases:
        rows.append(coverage_case(nl, sz, T))
        seconds.append(f"{rows[-1].seconds:.0f}")
        loads.append(f"{os.getloadavg()[0]:.1f}")
        print(f"{nl} {sz} T={T}: ratio {rows[-1].ratio:.3g} ({seconds[-1]} s, load {loads[-1]})",
              file=sys.stderr, flush=True)
        columns, cells = table_rows(rows, [("wall (s)", seconds), ("load (1 min) at its end", loads)])
        record.write(args.record, partial=[Record.table_item(title, columns, cells)])
    print(f"command: python benchmarks/coverage_table.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    print(f"date: {record.started}; machine: {os.cpu_count()} cores (shared); load average at the end "
          f"{os.getloadavg()[0]:.1f}\n")
    print(markdown_table(rows))
    record.table(title, *table_rows(rows, [("wall (s)", seconds), ("load (1 min) at its end", loads)]),
                 note="True error: max over f, U and the kernel of |solve − reference|; ratio = true error / "
                      "(estimate + the reference's estimate). Reference: the closed form (linear), a solve at "
                      "tol 1e-11 (`TIGHT`), or where that stops at its rule's noise above residual 1e-11 a solve "
                      "at tol 1e-10 (`FLOOR`) that a replica on another rule confirms, or one on a finer rule "
                      "(`FINER`; `validation/error_coverage.py`).")
    record.write(args.record)
    return 0 if all(r.covered for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
