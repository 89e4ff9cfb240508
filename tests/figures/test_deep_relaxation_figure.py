"""The deep ReLU relaxation figure (figures/fig_deep_relaxation.py): from the benchmark driver's raw records
and from its own small relaxation."""
import json

import numpy as np
import pytest

from figures import fig_deep_relaxation as fig
from figures.gallery import SCRIPTS
from theory.jsonio import dumps

MAX_BYTES = 150_000


def _raw_file(path, width, n=60, seeds=(0, 1000)):
    """A raw file as ``benchmarks/deep_relu_relaxation.py --raw`` writes it, with synthetic records: planted
    chains decay from 0.8 to 0.2 (share of every class), prior chains stay at 0.2; count = 0.02 N."""
    k = np.arange(n)
    chains = []
    for seed in seeds:
        for kind in ("prior", "planted"):
            s = 0.2 + (0.6 * np.exp(-k / 10) if kind == "planted" else 0 * k) + 0.01 * (seed > 0)
            rows = np.column_stack([np.full(n, 0.02 * width), np.full(n, 0.4), s, s, s])
            chains.append({"kind": kind, "seed": seed, "rows": rows, "codes": {"100": 3}, "draws": [[0.0]],
                           "acceptance": 0.6, "pair_acceptance": 0.1, "planted": None, "step_size": 0.1,
                           "cpu_seconds": 1.0})
    doc = {"spec": {"nonlinearity": "relu", "class_sizes": [32, 16, 16], "sigma_a": 0.125, "temperature": 0.05},
           "layers": 2, "settings": {"sweeps": 10 * n, "pre": 300, "moves": 20, "share": 0.8, "per_class": 1},
           "chains": len(seeds), "per_width": [{"width": width, "wall_seconds": 1.0, "summary": {}, "chains": chains}]}
    path.write_text(dumps(doc))
    return path


def test_registered():
    assert "fig_deep_relaxation" in SCRIPTS
    assert list(__import__("inspect").signature(fig.main).parameters)[:2] == ["out_dir", "quick"]


def test_figure_from_raw_records(tmp_path):
    """Two widths of synthetic records: the figure, its sidecar (numbers, the driver's commands) and caption."""
    paths = [_raw_file(tmp_path / f"relax_{w}.json", w) for w in (200, 100)]
    (png,) = fig.main(tmp_path / "out", False, paths=paths)
    assert png.name == "fig_deep_relaxation.png" and 5_000 < png.stat().st_size < MAX_BYTES
    assert png.with_suffix(".pdf").is_file()
    side = json.loads(png.with_suffix(".json").read_text())
    assert side["mode"] == "full" and side["settings"]["widths"] == [100, 200]
    assert side["commands"][0].endswith(f"--widths 100 --layers 2 --class-sizes 32,16,16 --sigma-a 0.125 "
                                        f"--temperature 0.05 --chains 2 --sweeps 600 --pre 300 --moves 20 "
                                        f"--share 0.8 --per-class 1 --raw --out {paths[1]}")
    cv = side["numbers"]["curves"]["100"]
    assert cv["planted"]["mean"][0] == pytest.approx(0.805) and cv["planted"]["mean"][-1] < 0.25
    assert cv["prior"]["low"][0] == pytest.approx(0.2) and cv["prior"]["high"][0] == pytest.approx(0.21)
    assert cv["prior"]["sweeps"][0] == pytest.approx(1.0) and np.all(np.diff(cv["prior"]["sweeps"]) > 0)
    tr = side["numbers"]["trend"]
    assert tr["prior"]["width"] == [100, 200]
    np.testing.assert_allclose(tr["prior"]["fraction"], 0.02)
    np.testing.assert_allclose(tr["prior"]["share"], 0.205)
    text = fig.caption(side)
    assert "N = 100/200" in text and "prior: N = 100: 2.0 outliers (2.0 % of N), share 0.20" in text


def test_raw_records_required(tmp_path):
    doc = json.loads(_raw_file(tmp_path / "r.json", 100).read_text())
    del doc["per_width"][0]["chains"]
    (tmp_path / "r.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="--raw"):
        fig.load_runs([tmp_path / "r.json"])


def test_tiny_relaxation(tmp_path):
    """The script's own relaxation at toy size (classes 8,4,4, N = 30): records of both kinds, a figure."""
    (png,) = fig.main(tmp_path, True, class_sizes=(8, 4, 4), widths=(30,), sweeps=40, pre=20, moves=2)
    side = json.loads(png.with_suffix(".json").read_text())
    assert side["mode"] == "quick" and side["settings"]["widths"] == [30]
    assert set(side["numbers"]["curves"]["30"]) == {"planted", "prior"}
    assert 5_000 < png.stat().st_size < MAX_BYTES


@pytest.mark.slow
def test_quick_mode(tmp_path):
    """Quick mode (N = 80, 2 seeds, 400 sweeps; about 30 s): the planted chains start near the planted share
    0.8 and above the prior-start chains."""
    (png,) = fig.main(tmp_path, True)
    cv = json.loads(png.with_suffix(".json").read_text())["numbers"]["curves"]["80"]
    assert cv["planted"]["mean"][0] > 0.6 and cv["planted"]["mean"][0] > cv["prior"]["mean"][0] + 0.2
