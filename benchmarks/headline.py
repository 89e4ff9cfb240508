"""The README's headline table, measured: every row by the command that produces it.

Rows (THEORY §1 sampled networks against the N → ∞ theory of §3, §2 on real data, §4 at large P):

* ``validate``: ReLU, classes 8,4,4, T = 0.05, N = 100, 200, 400: the 1/N intercepts of f_00, U_00
  and the kernel block K_00 against the theory, max |z|, max split-R̂;
* ``classes``: classes 4,2,2, T = 0.5, the same comparison for linear, normcdf and ReLU
  (Gibbs sweep, 4 chains × 2500 sweeps per width);
* ``digits``: digits 0/1/2, 30 per class, ReLU, T = 0.5: test mean-predictor error per class of the
  theory, sampled networks (N = 200) and the GP;
* ``solve``: one warm solve on the default task against the fixed-grid baseline, read from the
  solver benchmark's record ``docs/measurements/bench_solve_smooth.json`` (not re-run here);
* ``sampler``: ESS/s of our sampler against NumPyro NUTS: the earlier run's row, typed and marked
  so (``benchmarks/bench_sampler.py`` writes no record, NumPyro is the optional extra ``bench`` and
  its comparison takes 2 chains × 400 s per method);
* ``continuation``: large-P continuation points/s against independent solves
  (``benchmarks/bench_continuation.py``).

Every CLI command runs as a subprocess in a fresh output folder (``--out`` a temporary directory, so
no chain checkpoint is resumed); its wall and CPU time are in the row. With ``--record PATH`` the
record is rewritten after every row (marked incomplete until the end); rows left out with
``--rows`` are listed as not re-measured. ``docs/gen_results.py`` renders the record into README.md
and docs/results.md.

Run: python benchmarks/headline.py [--rows validate,classes,...] [--record docs/measurements/headline.json]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.record import ROOT, Record, add_record_argument, cpu_seconds  # noqa: E402

COLUMNS = ["check", "theory", "sampled networks / baseline", "wall / CPU (s)", "command"]
TITLE = "Headline results: theory against sampled networks, speed against baselines"
SOLVE_RECORD = ROOT / "docs" / "measurements" / "bench_solve_smooth.json"
VALIDATE_RELU = ("validate --nonlinearity relu --class-sizes 8,4,4 --temperature 0.05 --widths 100,200,400 "
                 "--chains 4 --workers 2 --format json --no-plot")
VALIDATE_CLASSES = ("validate --nonlinearity {nl} --class-sizes 4,2,2 --temperature 0.5 --widths 100,200,400 "
                    "--chains 4 --sweeps 2500 --sampler gibbs --workers 2 --format json --no-plot")
GENERALIZE = ("generalize --dataset digits --classes 0,1,2 --train-per-class 30 --nonlinearity relu "
              "--format json --no-plot")
CONTINUATION = "benchmarks/bench_continuation.py --repeat 3"
#: the sampler row of the run before 2026-12-06 (docs/devlog.md, "Sampler benchmark"), typed
SAMPLER_TYPED = ["sampler, ESS/s of f (ReLU, N = 1000, P = 64) — **typed from the run before 2026-12-06, "
                 "not re-measured** (NumPyro not installed)", "ours 29", "NumPyro NUTS 0.32 (90×)", "",
                 "`python benchmarks/bench_sampler.py --seconds 400`"]


def _own_cpu(pid: int) -> float:
    """User + system CPU seconds of one live process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _descendants(pid: int) -> list[int]:
    try:
        kids = [int(k) for k in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []
    return kids + [d for k in kids for d in _descendants(k)]


def _timed(argv, cwd) -> tuple[subprocess.CompletedProcess, float, float]:
    """(finished process, wall s, CPU s). CPU: the larger of the reaped children's CPU and the sum over
    the process tree polled every 0.2 s (pool workers under a fork server are never reaped by us)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), MPLBACKEND="Agg")
    wall, cpu = time.perf_counter(), cpu_seconds()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err, text=True)
        seen: dict[int, float] = {}
        while proc.poll() is None:
            for pid in [proc.pid, *_descendants(proc.pid)]:
                seen[pid] = max(seen.get(pid, 0.0), _own_cpu(pid))
            time.sleep(0.2)
        out.seek(0), err.seek(0)
        done = subprocess.CompletedProcess(argv, proc.returncode, out.read(), err.read())
    return done, time.perf_counter() - wall, max(cpu_seconds() - cpu, sum(seen.values()))


def run_cli(command: str) -> tuple[dict, float, float]:
    """(JSON output, wall s, CPU s) of ``codingschemes COMMAND`` run in a fresh output folder.
    Exit 0 and 1 (a comparison that did not pass) give their JSON; other exits raise."""
    with tempfile.TemporaryDirectory(prefix="headline-") as tmp:
        argv = [sys.executable, "-m", "codingschemes", *command.split(), "--out", tmp, "--quiet"]
        proc, wall, cpu = _timed(argv, tmp)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"codingschemes {command}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout), wall, cpu


def _times(wall: float, cpu: float) -> str:
    return f"{wall:.0f} / {cpu:.0f}"


def _code(command: str) -> str:
    return f"`codingschemes {command}`"


def validate_rows(data: dict, wall: float, cpu: float) -> list[list]:
    """The ReLU 8,4,4 rows: f_00, then U_00 / K_00 with max |z|, R̂ and the verdict."""
    th, sa, dg = data["theory"], data["sampling"], data["diagnostics"]
    verdict = (f"max \\|z\\| {data['z_max']:.2f}, R̂ ≤ {dg['rhat_max']:.3f}, min ESS {dg['ess_min']:.0f}, "
               f"{'passed' if data['passed'] else 'NOT passed'}")
    return [["ReLU, classes 8,4,4, T = 0.05, N = 100…400, 1/N intercept: f_00", f"{th['outputs'][0][0]:.4f}",
             f"{sa['outputs'][0][0]:.4f}", _times(wall, cpu), _code(VALIDATE_RELU)],
            ["same: U_00 / K_00 (`kernel_diagonal[0]`) / within-class block (`kernel_blocks[0][0]`)",
             f"{th['readout_moment'][0][0]:.3f} / {th['kernel_diagonal'][0]:.3f} / {th['kernel_blocks'][0][0]:.3f}",
             f"{sa['readout_moment'][0][0]:.3f} / {sa['kernel_diagonal'][0]:.3f} / {sa['kernel_blocks'][0][0]:.3f} "
             f"({verdict})", "", "same run"]]


def classes_row(runs: dict[str, tuple[dict, float, float]]) -> list:
    """One row for classes 4,2,2: per φ the theory's f_00, the intercept, max |z| and the verdict."""
    theory, sampled = [], []
    for nl, (data, _, _) in runs.items():
        theory.append(f"{nl} f_00 {data['theory']['outputs'][0][0]:.4f}")
        sampled.append(f"{nl} {data['sampling']['outputs'][0][0]:.4f} (max \\|z\\| {data['z_max']:.1f}, "
                       f"R̂ ≤ {data['diagnostics']['rhat_max']:.3f}{'' if data['passed'] else ', NOT passed'})")
    wall = sum(w for _, w, _ in runs.values())
    cpu = sum(c for _, _, c in runs.values())
    return ["classes 4,2,2, T = 0.5, N = 100…400, 1/N intercepts (Gibbs sweep, 4 chains × 2500 sweeps)",
            ", ".join(theory), "; ".join(sampled), _times(wall, cpu),
            _code(VALIDATE_CLASSES.replace("{nl}", "NL")) + " for NL = " + ", ".join(runs)]


def digits_row(data: dict, wall: float, cpu: float) -> list:
    def errs(key):
        return "/".join(f"{e:.3f}" for e in data[key]["mean_predictor_error"])

    conv = "" if data["theory"].get("converged", True) else " (theory NOT converged)"
    return ["digits 0/1/2, ReLU, T = 0.5, test mean-predictor error per class", errs("theory") + conv,
            f"networks (N = 200) {errs('sampling')}; GP {errs('gp')}", _times(wall, cpu), _code(GENERALIZE)]


def solve_row(path: Path = SOLVE_RECORD) -> list:
    """The one-warm-solve row, read from the solver benchmark's record (its date and load stated)."""
    rec = json.loads(path.read_text(encoding="utf-8"))
    tables = {it["title"].split(" (")[0].split(",")[0]: it for it in rec["items"] if it["kind"] == "table"}
    warm = tables["Warm solves"]
    cpu = [f"{r[2]} {float(r[4]) / 1000:.2f}" for r in warm["rows"] if r[0] == "32,16,16" and r[1] == "0.05"]
    base = tables["Fixed-grid numpy baseline"]
    ratios = {}
    for r in base["rows"]:  # the first grid that reaches our accuracy ("≥": none did)
        if r[0] not in ratios or ratios[r[0]].startswith("≥"):
            ratios[r[0]] = r[-1]
    load = rec["machine"]["load_average_start"][0]
    return [f"one warm solve, default task (CPU s); from the record `{path.name}` of {rec['date']} at load "
            f"{load:g}, not re-run here", ", ".join(cpu),
            "fixed grid at equal accuracy, baseline / ours (CPU): " + ", ".join(f"{k} {v}×" for k, v in ratios.items()),
            "", f"`{rec['command']}`"]


def continuation_row() -> list:
    """Large-P continuation against independent solves: ``bench_continuation.py``'s printed rates."""
    proc, wall, cpu = _timed([sys.executable, *CONTINUATION.split()], ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{CONTINUATION}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    rate = {m.group(1): float(m.group(2)) for m in re.finditer(
        r"^(continuation|independent solve_large_p)\D.*?\s([\d.]+)\s*$", proc.stdout, flags=re.M)}
    ratio = re.search(r"points per second\): ([\d.]+)x", proc.stdout).group(1)
    return ["large-P continuation, points/s (erf, T from 1 to 0.1)", f"{rate['continuation']:.1f}",
            f"independent solves {rate['independent solve_large_p']:.1f} ({ratio}×)", _times(wall, cpu),
            f"`python {CONTINUATION}`"]


#: rows this script does not measure itself, and why
NOT_RUN = {"solve": "read from its record", "sampler": "typed from the earlier run"}
ROWS = ("validate", "classes", "digits", "solve", "sampler", "continuation")


def measure(name: str) -> list[list]:
    """The table rows of one headline row (a ``--rows`` name)."""
    if name == "validate":
        return validate_rows(*run_cli(VALIDATE_RELU))
    if name == "classes":
        return [classes_row({nl: run_cli(VALIDATE_CLASSES.format(nl=nl)) for nl in ("linear", "normcdf", "relu")})]
    if name == "digits":
        return [digits_row(*run_cli(GENERALIZE))]
    if name == "solve":
        return [solve_row()]
    if name == "continuation":
        return [continuation_row()]
    return [SAMPLER_TYPED]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated rows to measure (default all: {ROWS})")
    add_record_argument(ap)
    args = ap.parse_args(argv)
    chosen = [r for r in args.rows.split(",") if r]
    unknown = sorted(set(chosen) - set(ROWS))
    if unknown:
        ap.error(f"unknown rows {unknown}; choose from {ROWS}")
    record = Record(Path(args.record).stem if args.record else "headline")
    rows, failed = [], []
    for name in ROWS:
        if name not in chosen:
            continue
        try:
            rows += measure(name)
        except (RuntimeError, KeyError, ValueError, AttributeError) as err:
            failed.append(f"{name} ({type(err).__name__}: {str(err).splitlines()[0][:200]})")
            print(f"row {name} failed: {err}", file=sys.stderr)
        record.write(args.record, partial=[Record.table_item(TITLE, COLUMNS, rows)])
    record.table(TITLE, COLUMNS, rows)
    skipped = [r for r in ROWS if r not in chosen]
    reused = [f"{r} ({why})" for r, why in NOT_RUN.items() if r in chosen]
    notes = ["Each CLI command ran in a fresh output folder (`--out` a temporary directory, `--quiet`)."]
    notes += [f"Not re-measured in this run: {', '.join(reused + skipped)}."] if reused or skipped else []
    notes += [f"Failed in this run: {'; '.join(failed)}."] if failed else []
    record.note(" ".join(notes))
    record.write(args.record)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
