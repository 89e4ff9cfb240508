"""Deep ReLU coding question, relaxation from both sides (issue 17 item 2; validation.deep_relaxation).

Runs, at each width, ``--chains`` seeds × {prior, planted} chains of the deep ReLU network in the
paper's regime (default: L = 2, classes 32,16,16, σ_a = 0.125, T = 0.05, orthogonal inputs) with
``--moves`` last-layer pair rotations per sweep (and, if asked, ``--contrast-reflections`` last-layer
class-contrast reflections, ``--layer-moves`` passes of the lower layers' moves and ``--layer-pairs`` pair
rotations of the lower layers per sweep; ``--lower`` records the lower layers' outliers), and writes the
summary (and, with ``--raw``, the records) as JSON.

    PYTHONPATH=. python benchmarks/deep_relu_relaxation.py --widths 100 --chains 4 --sweeps 3000 --jobs 2 \
        --out /tmp/relax_100.json
"""
from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from theory.jsonio import dumps  # noqa: E402
from theory.spec import ModelSpec  # noqa: E402
from validation.deep_relaxation import KINDS, RECORD_EVERY, relaxation_pair, summarise_relaxation  # noqa: E402


def _task(args):
    spec_kw, width, layers, seed, kinds, kw = args
    return relaxation_pair(ModelSpec(**spec_kw), width, layers, seed, kinds, **kw)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--widths", default="100")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--class-sizes", default="32,16,16")
    p.add_argument("--sigma-a", type=float, default=0.125)
    p.add_argument("--temperature", type=float, default=0.05)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--sweeps", type=int, default=3000)
    p.add_argument("--pre", type=int, default=300)
    p.add_argument("--moves", type=int, default=20)
    p.add_argument("--share", type=float, default=0.8)
    p.add_argument("--per-class", type=int, default=1)
    p.add_argument("--contrast-reflections", type=int, default=0)
    p.add_argument("--layer-moves", type=int, default=0)
    p.add_argument("--layer-pairs", type=int, default=0)
    p.add_argument("--lower", action="store_true")
    p.add_argument("--seeds", default=None, help="comma-separated chain indices c (seed 1000 c; default 0..chains-1)")
    p.add_argument("--kinds", default=",".join(KINDS))
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--out", default=None)
    p.add_argument("--raw", action="store_true")
    a = p.parse_args(argv)
    if a.sweeps < 4 * RECORD_EVERY:  # the summary's windows need at least 4 records per chain
        p.error(f"--sweeps must be >= {4 * RECORD_EVERY} (4 records of one per {RECORD_EVERY} sweeps; got {a.sweeps})")
    spec_kw = dict(nonlinearity="relu", class_sizes=tuple(int(x) for x in a.class_sizes.split(",")),
                   sigma_a=a.sigma_a, temperature=a.temperature)
    kw = dict(sweeps=a.sweeps, pre=a.pre, moves=a.moves, share=a.share, per_class=a.per_class,
              contrast_reflections=a.contrast_reflections, layer_moves=a.layer_moves, layer_pairs=a.layer_pairs,
              lower=a.lower)
    seeds = [int(c) for c in a.seeds.split(",")] if a.seeds else list(range(a.chains))
    report = {"spec": spec_kw, "layers": a.layers, "settings": kw, "chains": a.chains, "per_width": []}
    for width in (int(x) for x in a.widths.split(",")):
        tasks = [(spec_kw, width, a.layers, 1000 * c, tuple(a.kinds.split(",")), kw) for c in seeds]
        t0 = time.perf_counter()
        with ProcessPoolExecutor(max_workers=a.jobs) as ex:
            chains = [chain for pair in ex.map(_task, tasks) for chain in pair]
        summary = summarise_relaxation(chains, len(spec_kw["class_sizes"]), a.layers)
        block = {"width": width, "wall_seconds": time.perf_counter() - t0, "summary": summary}
        if a.raw:
            block["chains"] = chains
        report["per_width"].append(block)
        print(f"N = {width}: {time.perf_counter() - t0:.0f} s wall", file=sys.stderr)
        if a.out:  # the widths done so far are kept if a later one is interrupted
            with open(a.out, "w") as fh:
                fh.write(dumps(report))
    if not a.out:
        print(dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
