"""Every JSON key of every command is on the theory map (issue 16: "the theory map covers ... every
JSON key of every command").

Each command runs in each of its modes that writes its own keys (finite P, large P, deep, ReLU
condensate, finite-P maps, sampling, real data), on settings small enough to take seconds, with
``--format json``; every key of its output that is an identifier must appear as a backticked name
on docs/theory-map.md. The guide's own blocks are checked the same way in test_markdown_blocks.
"""
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_markdown_blocks import CLI, ROOT, documented_keys, json_keys  # noqa: E402

#: (id, command line without the program name); one per mode that has keys of its own
COMMANDS = [
    ("solve-finite-p", "solve --nonlinearity linear --class-sizes 4,2,2 --temperature 0.5"),
    ("solve-finite-p-relu", "solve --nonlinearity relu --class-sizes 4,2,2 --temperature 0.5"),
    ("solve-large-p", "solve --large-p --nonlinearity normcdf --temperature 0.05"),
    ("solve-large-p-relu", "solve --large-p --nonlinearity relu --temperature 0.05"),
    ("solve-deep-linear", "solve --layers 2 --nonlinearity linear --class-sizes 4,2,2 --temperature 0.5"),
    ("solve-deep-nonlinear", "solve --layers 2 --nonlinearity normcdf --class-sizes 3,2 --temperature 0.6"),
    ("solve-deep-large-p", "solve --layers 2 --large-p --nonlinearity normcdf --temperature 0.05"),
    ("continue-large-p", "continue --nonlinearity normcdf --param temperature --from 0.3 --to 0.2 --n-points 5"),
    ("continue-finite-p", "continue --finite-p --nonlinearity erf --class-sizes 4,2,2 --param temperature "
                          "--from 0.5 --to 0.4 --n-points 3"),
    ("continue-deep", "continue --layers 2 --nonlinearity linear --param temperature --from 0.5 --to 0.3 "
                      "--n-points 3"),
    ("phase-diagram", "phase-diagram --nonlinearity normcdf --x temperature --x-range 0.05:0.5:4 "
                      "--y sigma_a_bar --y-range 0.5:2:4"),
    ("phase-diagram-finite-p", "phase-diagram --finite-p --nonlinearity erf --class-sizes 4,2,2 --x temperature "
                               "--x-range 0.3:0.5:2 --y sigma_a --y-range 0.5:1:2"),
    ("validate", "validate --nonlinearity normcdf --class-sizes 4,2,2 --temperature 0.5 --widths 20,40 "
                 "--chains 2 --sweeps 40 --burn 20"),
    ("validate-relu", "validate --nonlinearity relu --class-sizes 4,2,2 --temperature 0.5 --widths 20,40 --outlier-moves 2 "
                      "--chains 2 --sweeps 40 --burn 20"),
    ("validate-deep", "validate --layers 2 --nonlinearity linear --class-sizes 4,2,2 --temperature 0.5 "
                      "--widths 20,40 --chains 2 --sweeps 40 --burn 20"),
    ("generalize", "generalize --classes 0,1 --train-per-class 10 --test-per-class 10 --nonlinearity erf "
                   "--width 50 --sweeps 40 --chains 2"),
    ("scaling", "scaling --nonlinearity erf --P 16,32,64 --n-temperatures 6"),
]


@pytest.mark.slow
@pytest.mark.parametrize("args", [pytest.param(a, id=i) for i, a in COMMANDS])
def test_every_json_key_is_on_the_theory_map(args, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               MPLBACKEND="Agg")
    argv = [sys.executable, *CLI, *shlex.split(args), "--format", "json", "--no-plot", "--quiet"]
    proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode in (0, 1), f"{args}\nexit {proc.returncode}\n{proc.stderr[-3000:]}"
    missing = sorted(json_keys(json.loads(proc.stdout)) - documented_keys())
    assert not missing, f"{args}: JSON keys missing from docs/theory-map.md: {missing}"
