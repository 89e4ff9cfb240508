"""Sweep runner (solvers/sweep.py) and phase-diagram figure (figures/phase_diagram.py)."""
from __future__ import annotations

import functools
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import distributed  # in the test extra: the Dask backend is tested, not skipped
import numpy as np
import pytest

from solvers.sweep import (FORMAT_NAME, SweepError, SweepMismatchError, grid_points, load_sweep, run_sweep,
                           to_grid)

REPO = Path(__file__).resolve().parents[2]


# --- module-level functions (worker processes import them from this module) ---------------------------------


def smooth(point):
    """Deterministic float64 work whose bits depend on the point."""
    x, y = float(point["x"]), float(point["y"])
    t = np.linspace(0.0, 1.0, 257)
    integrate = getattr(np, "trapezoid", None) or np.trapz
    val = float(integrate(np.sin(x * t) * np.exp(-y * t * t), t))
    return {"integral": val, "vector": np.array([x, y]) ** 2, "n": np.int64(3), "flag": np.bool_(x > y),
            "nan": np.float64("nan"), "label": "hi" if val > 0.2 else "lo"}


def failing_on(bad, flag_file, point):
    """Raises at x == bad while flag_file exists."""
    if point["x"] == bad and os.path.exists(flag_file):
        raise ValueError(f"no convergence at x={point['x']}")
    return {"double": 2.0 * point["x"]}


def slow_logged(log_path, point):
    """Appends the point's index to log_path (one call = one line), then takes 50 ms."""
    with open(log_path, "a") as fh:
        fh.write(f"{point['i']}\n")
    time.sleep(0.05)
    return {"square": point["i"] ** 2}


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"  # zombies are dead
    except FileNotFoundError:
        return False


def _raw_lines(path):
    data = Path(path).read_bytes()
    assert data.endswith(b"\n")
    return [json.loads(line) for line in data.decode().splitlines()]


# --- grid helpers -----------------------------------------------------------------------------------------


def test_grid_points_and_to_grid_non_uniform_with_missing():
    pts = grid_points("T", np.array([0.01, 0.1, 1.0]), "sigma", [0.5, 2.0], fixed={"m": 3})
    assert len(pts) == 6 and pts[0] == {"T": 0.01, "sigma": 0.5, "m": 3} and type(pts[0]["T"]) is float
    assert pts[1]["T"] == 0.1 and pts[3]["sigma"] == 2.0  # x varies fastest
    assert pts.grid["x"] == {"name": "T", "values": [0.01, 0.1, 1.0]}
    records = [{"index": i, "point": p, "status": "ok", "result": {"v": i}} for i, p in enumerate(pts)]
    records[4]["status"], records[4]["result"] = "error", None
    del records[0]
    x, y, Z = to_grid(records, "T", "sigma", "v")
    assert Z.dtype == np.float64 and Z.shape == (2, 3)
    np.testing.assert_array_equal(x, [0.01, 0.1, 1.0])
    assert math.isnan(Z[0, 0]) and math.isnan(Z[1, 1]) and Z[1, 2] == 5 and Z[0, 1] == 1
    with pytest.raises(ValueError, match="contains 0.1 twice"):
        grid_points("a", [0.1, 0.1], "b", [1])
    with pytest.raises(ValueError, match="x_name and y_name must differ"):
        grid_points("a", [1], "a", [2])


# --- backends ---------------------------------------------------------------------------------------------


def test_serial_and_process_backends_give_identical_results(tmp_path):
    pts = grid_points("x", np.linspace(0.0, 3.0, 5), "y", [0.5, 1.5, 2.5])
    serial = run_sweep(smooth, pts, tmp_path / "s.jsonl", backend="serial", progress=False)
    proc = run_sweep(smooth, pts, tmp_path / "p.jsonl", backend="process", workers=2, progress=False)
    assert [r["result"] for r in serial] == [r["result"] for r in proc]
    assert [r["point"] for r in proc] == list(pts)
    assert all(r["status"] == "ok" for r in proc)
    assert all(not r["worker"].endswith(f":{os.getpid()}") for r in proc)  # computed in other processes
    r = serial[0]["result"]
    assert r["vector"] == [0.0, 0.25] and r["n"] == 3 and r["flag"] is False and math.isnan(r["nan"])
    raw = (tmp_path / "s.jsonl").read_text()
    assert '"nan":"NaN"' in raw and "NaN," not in raw  # strict JSON on disk
    header, records = load_sweep(tmp_path / "p.jsonl")
    assert header["format"] == FORMAT_NAME and header["version"] == 1
    assert header["parameters"] == ["x", "y"] and header["n_points"] == 15
    assert header["function"].endswith(":smooth") and header["grid"]["y"]["values"] == [0.5, 1.5, 2.5]
    assert [r["index"] for r in records] == list(range(15))


def test_dask_backend_matches_serial(tmp_path):
    pts = grid_points("x", [0.0, 1.0, 2.0], "y", [0.5, 1.5])
    serial = run_sweep(smooth, pts, tmp_path / "s.jsonl", backend="serial", progress=False)
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as client:
        dask = run_sweep(smooth, pts, tmp_path / "d.jsonl", backend="dask", dask_address=client, progress=False)
    assert [r["result"] for r in serial] == [r["result"] for r in dask]
    assert [r["index"] for r in load_sweep(tmp_path / "d.jsonl")[1]] == list(range(6))


@pytest.mark.slow
def test_dask_local_cluster_of_processes(tmp_path):
    pts = grid_points("x", [0.0, 1.0, 2.0], "y", [0.5, 1.5])
    serial = run_sweep(smooth, pts, tmp_path / "s.jsonl", backend="serial", progress=False)
    dask = run_sweep(smooth, pts, tmp_path / "d.jsonl", backend="dask", workers=2, progress=False)
    assert [r["result"] for r in serial] == [r["result"] for r in dask]
    assert all(not r["worker"].endswith(f":{os.getpid()}") for r in dask)


def test_dask_missing_gives_install_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if not installed
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "distributed" else 1)
    with pytest.raises(ImportError, match=r'pip install "codingschemes\[dask\]"'):
        run_sweep(smooth, [{"x": 1.0, "y": 1.0}], tmp_path / "d.jsonl", backend="dask", progress=False)


# --- resume -----------------------------------------------------------------------------------------------


def _start_sweep(path, log, n, options):
    """A subprocess running the sweep of slow_logged over n points (run_sweep keywords ``options``),
    returned once it has written at least 8 points."""
    code = (f"import functools, sys; sys.path[:0] = [{str(REPO)!r}, {str(REPO / 'tests')!r}]\n"
            f"from solvers.sweep import run_sweep\nfrom {slow_logged.__module__} import slow_logged\n"
            f"run_sweep(functools.partial(slow_logged, {str(log)!r}), [{{'i': i}} for i in range({n})], "
            f"{str(path)!r}, progress=False, {options})\n")
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True, cwd=str(path.parent),
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= 1 + 8:
            return proc
        if proc.poll() is not None:
            pytest.fail(proc.stderr.read().decode())
        time.sleep(0.01)
    _kill_group(proc)
    pytest.fail("the sweep subprocess wrote no points in 60 s")


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of its process group
    except ProcessLookupError:
        pass
    proc.wait()
    proc.stderr.close()


def _check_resumed(path, log, n, done_before, calls_before, records, created):
    """Every point exactly once in the file, and only the points missing before were computed again."""
    lines = _raw_lines(path)  # every line complete JSON: a cut-off one is gone
    assert lines[0]["created"] == created
    indices = [rec["index"] for rec in lines[1:]]
    assert sorted(indices) == list(range(n))  # every point exactly once
    assert [r["result"]["square"] for r in records] == [i * i for i in range(n)]
    calls_after = [int(s) for s in log.read_text().split()[calls_before:]]
    assert sorted(calls_after) == sorted(set(range(n)) - set(done_before))  # no recomputation
    for r in records:
        if r["index"] in done_before:
            assert r["finished"] == done_before[r["index"]]["finished"]


def test_resume_after_kill_neither_loses_nor_recomputes_points(tmp_path):
    n = 40
    path, log = tmp_path / "sweep.jsonl", tmp_path / "calls.log"
    points = [{"i": i} for i in range(n)]
    proc = _start_sweep(path, log, n, "workers=2")
    try:
        # a second sweep on the same file is refused while the first runs
        with pytest.raises(SweepError, match="locked"):
            run_sweep(functools.partial(slow_logged, str(log)), points, path, backend="serial", progress=False)
        workers = {int(r["worker"].rsplit(":", 1)[1]) for r in load_sweep(path)[1]}
        os.kill(proc.pid, signal.SIGKILL)  # the runner alone, as the OOM killer would
        proc.wait()
        deadline = time.monotonic() + 10  # its orphaned workers notice and exit
        while workers and time.monotonic() < deadline:
            workers = {pid for pid in workers if _alive(pid)}
            time.sleep(0.05)
        assert not workers, f"worker processes {workers} outlived the killed sweep"
    finally:
        _kill_group(proc)
    time.sleep(0.1)
    with open(path, "ab") as fh:  # as if killed in the middle of writing a line
        fh.write(b'{"index":39,"point":{"i":39},"status":"o')

    header, before = load_sweep(path)  # tolerates the cut-off line
    done_before = {r["index"]: r for r in before}
    assert 8 <= len(done_before) < n, "kill the sweep earlier or slow the function"
    calls_before = len(log.read_text().split())

    records = run_sweep(functools.partial(slow_logged, str(log)), points, path, workers=2, progress=False)
    _check_resumed(path, log, n, done_before, calls_before, records, header["created"])


def test_dask_local_cluster_killed_and_resumed(tmp_path):
    """A sweep on a LocalCluster of processes killed part way (runner, nannies and workers at once),
    then resumed on an in-process cluster: no point lost, none computed twice."""
    n = 30
    path, log = tmp_path / "sweep.jsonl", tmp_path / "calls.log"
    proc = _start_sweep(path, log, n, "backend='dask', workers=2")
    _kill_group(proc)
    time.sleep(0.1)
    header, before = load_sweep(path)
    done_before = {r["index"]: r for r in before}
    assert 8 <= len(done_before) < n, "kill the sweep earlier or slow the function"
    calls_before = len(log.read_text().split())

    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as client:
        records = run_sweep(functools.partial(slow_logged, str(log)), [{"i": i} for i in range(n)], path,
                            backend="dask", dask_address=client, progress=False)
    _check_resumed(path, log, n, done_before, calls_before, records, header["created"])
    assert all(not r["worker"].endswith(f":{os.getpid()}") for r in before)  # killed part: other processes


def test_header_mismatch_and_foreign_file_raise(tmp_path):
    path = tmp_path / "a.jsonl"
    pts = grid_points("x", [0.0, 1.0], "y", [1.0])
    run_sweep(smooth, pts, path, backend="serial", metadata={"T": 0.05}, progress=False)
    content = path.read_bytes()
    with pytest.raises(SweepMismatchError, match=r"metadata: file has \{\"T\":0.05\}"):
        run_sweep(smooth, pts, path, backend="serial", metadata={"T": 0.1}, progress=False)
    with pytest.raises(SweepMismatchError, match="points_sha256"):
        run_sweep(smooth, grid_points("x", [0.0, 2.0], "y", [1.0]), path, backend="serial",
                  metadata={"T": 0.05}, progress=False)
    with pytest.raises(SweepMismatchError, match="function"):
        run_sweep(slow_logged, pts, path, backend="serial", metadata={"T": 0.05}, progress=False)
    assert path.read_bytes() == content
    # the same sweep again: nothing to do, nothing written
    again = run_sweep(smooth, pts, path, backend="serial", metadata={"T": 0.05}, progress=False)
    assert len(again) == 2 and path.read_bytes() == content

    foreign = tmp_path / "notes.txt"
    foreign.write_text("my notes")
    with pytest.raises(SweepError, match="not a codingschemes-sweep file"):
        run_sweep(smooth, pts, foreign, backend="serial", progress=False)
    assert foreign.read_text() == "my notes"
    cut = tmp_path / "cut.jsonl"
    cut.write_text('{"format":"codingschemes-swe')  # killed while writing the header: started afresh
    assert len(run_sweep(smooth, pts, cut, backend="serial", progress=False)) == 2
    assert _raw_lines(cut)[0]["n_points"] == 2


def test_error_points_recorded_and_retried(tmp_path):
    path, flag = tmp_path / "e.jsonl", tmp_path / "flag"
    flag.write_text("")
    fn = functools.partial(failing_on, 1.0, str(flag))
    pts = [{"x": float(x)} for x in range(4)]
    seen = []
    records = run_sweep(fn, pts, path, backend="serial", progress=seen.append)
    assert [r["status"] for r in records] == ["ok", "error", "ok", "ok"]
    assert records[1]["error"] == "ValueError: no convergence at x=1.0" and records[1]["result"] is None
    assert "failing_on" in records[1]["traceback"]
    assert seen[-1].done == 4 and seen[-1].errors == 1 and seen[-1].total == 4
    flag.unlink()
    assert run_sweep(fn, pts, path, backend="serial", progress=False)[1]["status"] == "error"  # kept
    records = run_sweep(fn, pts, path, backend="serial", progress=False, retry_errors=True)
    assert [r["status"] for r in records] == ["ok"] * 4 and records[1]["result"] == {"double": 2.0}
    assert [rec["index"] for rec in _raw_lines(path)[1:]] == [0, 1, 2, 3, 1]  # appended; last one wins
    assert load_sweep(path)[1][1]["status"] == "ok"


def test_progress_events_and_stop_request(tmp_path):
    """Progress callbacks get solvers.progress events (stage "sweep", step = points done); returning
    False stops the sweep after the point in flight, and a second call resumes it."""
    from solvers.progress import ProgressEvent

    path, pts = tmp_path / "s.jsonl", [{"x": float(x)} for x in range(6)]
    seen = []

    def stop_after_two(event):
        seen.append(event)
        return event.step < 2

    first = run_sweep(functools.partial(failing_on, -1.0, str(tmp_path / "none")), pts, path, backend="serial",
                      progress=stop_after_two)
    assert [r["index"] for r in first] == [0, 1]
    assert all(isinstance(e, ProgressEvent) and e.stage == "sweep" and e.total == 6 for e in seen)
    assert [e.step for e in seen] == [0, 1, 2] and seen[-1].done == 2 and seen[-1].values["errors"] == 0
    rest = run_sweep(functools.partial(failing_on, -1.0, str(tmp_path / "none")), pts, path, backend="serial",
                     progress=False)
    assert [r["index"] for r in rest] == list(range(6)) and len(_raw_lines(path)) == 1 + 6


def test_clear_errors_for_bad_arguments(tmp_path):
    pts = [{"x": 1.0}]
    f = tmp_path / "f.jsonl"
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        run_sweep(smooth, pts, f, workers=0)
    with pytest.raises(ValueError, match="backend must be one of"):
        run_sweep(smooth, pts, f, backend="threads")
    with pytest.raises(ValueError, match="is a directory"):
        run_sweep(smooth, pts, tmp_path)
    with pytest.raises(ValueError, match="backend='serial'"):
        run_sweep(smooth, pts, f, backend="serial", workers=2)
    with pytest.raises(TypeError, match="cannot be sent to worker processes"):
        run_sweep(lambda p: {}, pts, f, backend="process")
    with pytest.raises(ValueError, match=r"points\[1\] .* duplicates points\[0\]"):
        run_sweep(smooth, [{"x": 1.0}, {"x": 1.0}], f, backend="serial")
    with pytest.raises(ValueError, match="all points must name the same parameters"):
        run_sweep(smooth, [{"x": 1.0}, {"y": 1.0}], f, backend="serial")
    assert not f.exists()


def test_function_returning_non_json_is_an_error_record(tmp_path):
    records = run_sweep(functools.partial(dict, bad=object()), [{"x": 1}], tmp_path / "j.jsonl",
                        backend="serial", progress=False)
    assert records[0]["status"] == "error" and "not JSON-serialisable" in records[0]["error"]


# --- phase diagram ----------------------------------------------------------------------------------------


def test_phase_diagram_png_from_small_sweep(tmp_path):
    from figures.phase_diagram import cell_edges, plot_phase_diagram

    np.testing.assert_allclose(cell_edges([1.0, 2.0, 4.0]), [0.5, 1.5, 3.0, 5.0])
    np.testing.assert_allclose(cell_edges([1.0, 100.0], "log"), [0.1, 10.0, 1000.0])
    path = tmp_path / "sweep.jsonl"
    run_sweep(smooth, grid_points("x", [0.0, 0.5, 2.0, 3.0], "y", [0.5, 1.0, 4.0]), path,
              backend="serial", progress=False)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-2]) + "\n")  # two points missing: drawn blank
    out = plot_phase_diagram(path, "x", "y", "label", out=tmp_path / "fig" / "phase.png",
                             boundaries=[{"x": [0.0, 3.0], "y": [0.5, 4.0], "kind": "guess"}])
    data = out.read_bytes()
    assert out == tmp_path / "fig" / "phase.png" and data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
