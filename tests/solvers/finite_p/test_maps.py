"""Finite-P sweeps: warm starts, the 2-D map, the 1-D continuation and its resume after a kill."""
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from solvers.finite_p.maps import (check_values, continue_finite_p, finite_p_map, load_finite_p_map, spec_with,
                                   warm_solve)
from solvers.solve import solve
from solvers.sweep import load_sweep
from theory.spec import ModelSpec, SpecError

REPO = Path(__file__).resolve().parents[3]
LINEAR = ModelSpec(nonlinearity="linear", class_sizes=(2, 2), sigma_a=0.3, temperature=0.2)


def test_warm_start_reaches_the_unique_solution():
    spec = ModelSpec(nonlinearity="erf", class_sizes=(4, 4), sigma_a=0.35, temperature=0.2)
    neighbour = solve(spec)
    target = spec.replace(temperature=0.25)
    warm, cold = warm_solve(target, None, neighbour.t), solve(target)
    assert warm.converged and warm.extra["start"].startswith("warm")
    for key, gap in warm.observables.difference(cold.observables).items():
        assert gap <= 1e-6, key  # the dual is strictly convex: one solution, whatever the start
    np.testing.assert_allclose(warm.t, cold.t, atol=1e-5)


def test_warm_start_outside_the_domain_falls_back_to_the_solvers_start():
    res = warm_solve(LINEAR, None, np.full((2, 2), 50.0))  # far outside the linear domain
    assert res.converged and not res.extra["start"].startswith("warm")


def test_parameters_and_their_ranges():
    assert spec_with(LINEAR, "sigma_a_bar", 2.0).sigma_a == pytest.approx(1.0)  # σ_a = σ̄_a/√P, P = 4
    with pytest.raises(SpecError, match=r"x: temperature must be in \(0, inf\)"):
        check_values("temperature", [0.1, -0.1], "x")
    with pytest.raises(SpecError, match="parameter must be one of"):
        check_values("rho_0", [0.5], "y")
    with pytest.raises(SpecError, match="different parameters"):
        finite_p_map(LINEAR, "sigma_a", [0.2, 0.3], "sigma_a_bar", [1.0], "unused.jsonl")


def test_map_rows_resume_and_load(tmp_path):
    path = tmp_path / "map.jsonl"
    xs, ys = [0.2, 0.3], [0.25, 0.3]
    fmap = finite_p_map(LINEAR, "temperature", xs, "sigma_a", ys, path, backend="serial", progress=False)
    assert fmap.converged and fmap.iterations == 2 and len(fmap.points()) == 4
    assert fmap.grid("temperature").tolist() == [xs, xs] and fmap.grid("sigma_a")[:, 0].tolist() == ys
    assert all(p["label"] == "symmetric" for p in fmap.points())  # linear φ: one Gaussian, no modes
    assert fmap.rows[0]["points"][1]["start"].startswith("warm")  # along a row: from the neighbour
    again = finite_p_map(LINEAR, "temperature", xs, "sigma_a", ys, path, backend="serial", progress=False)
    assert path.read_text().count("\n") == 1 + 2  # resumed: nothing recomputed
    loaded = load_finite_p_map(path)
    np.testing.assert_array_equal(loaded.grid("spread"), again.grid("spread"))
    assert set(fmap.to_json()) >= {"converged", "status", "x", "y", "rows", "x_name", "y_name", "spec"}


def _run_in_subprocess(path, values):
    code = (f"import sys; sys.path[:0] = [{str(REPO)!r}]\n"
            "from theory.spec import ModelSpec\nfrom solvers.finite_p.maps import continue_finite_p\n"
            f"continue_finite_p(ModelSpec(nonlinearity='linear', class_sizes=(2, 2), sigma_a=0.3, temperature=0.2), "
            f"'temperature', {values!r}, {str(path)!r}, progress=False)\n")
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True, stderr=subprocess.PIPE)


def test_continuation_killed_and_resumed_neither_loses_nor_recomputes_points(tmp_path):
    path = tmp_path / "line.jsonl"
    values = [float(v) for v in np.linspace(0.5, 0.1, 12)]
    proc = _run_in_subprocess(path, values)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if path.exists() and path.read_bytes().count(b"\n") >= 1 + 2:
                break
            if proc.poll() is not None:
                pytest.fail(proc.stderr.read().decode())
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
        proc.stderr.close()
    with open(path, "ab") as fh:  # as if killed while writing a line
        fh.write(b'{"index":11,"point":{"temperature":0.1},"status":"o')
    _, before = load_sweep(path)
    done = {r["index"]: r["finished"] for r in before}
    assert 2 <= len(done) < len(values), "kill the sweep earlier"
    res = continue_finite_p(LINEAR, "temperature", values, path, progress=False)
    lines = path.read_text().splitlines()
    assert sorted(int(line.split('"index":')[1].split(",")[0]) for line in lines[1:]) == list(range(len(values)))
    _, after = load_sweep(path)
    assert all(r["finished"] == done[r["index"]] for r in after if r["index"] in done)  # not recomputed
    assert res.converged and all(p is not None for p in res.points)
    first_new = min(set(range(len(values))) - set(done))
    assert res.points[first_new]["start"].startswith("warm")  # warm from the last record before the kill
    cold = solve(LINEAR.replace(temperature=values[first_new]))
    np.testing.assert_allclose(res.points[first_new]["outputs"], cold.observables.outputs, atol=1e-6)
    assert res.series("spread").shape == (len(values),)
