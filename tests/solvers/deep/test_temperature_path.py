"""Continuation in T of the deep class-block equations (solvers.deep.temperature_path) and where the search uses it
(solvers.deep.nonlinear): the path solves the equations at every temperature it reports, in steps of at most the
given one in log T, and the outputs approach the targets as T falls; at L >= 3 and small T the search tries the
warm start before the shape homotopy at the target T, and the warm solve may run the shape homotopy."""
import math

import numpy as np

from solvers.deep.common import layer_sigmas
from solvers.deep.model import DeepModel
from solvers.deep.newton import SolveLog
from solvers.deep.nonlinear import DeepOptions, _run_starts, _Search
from solvers.deep.temperature_path import follow_temperature
from solvers.progress import report
from theory.spec import ModelSpec


def test_the_path_solves_the_equations_at_each_temperature_down_to_one_step_above_the_target(deep_class_theory):
    warm = deep_class_theory("normcdf")  # classes 3,2, L = 2, T = 0.5
    spec, opt = warm.spec, DeepOptions(search=False, code_neurons=0)
    models = {}

    def model_at(T):
        models[T] = DeepModel(spec.replace(temperature=T), warm.sigmas, opt)
        return models[T]

    step = math.log(2.5) / 4.0
    path = follow_temperature(model_at, warm.x, warm.proposals, SolveLog(), 0.5, 0.3, step)
    assert path.done and path.temperatures[0] == 0.5 and len(path.temperatures) == 3, path.message
    assert np.allclose(np.diff(np.log(path.temperatures)), -step)  # no step failed: no halving
    assert math.log(path.reached) - step <= math.log(0.3) + 1e-12  # the last step, to T itself, is the caller's
    ev = models[path.reached].safe_eval(path.x, path.proposals)
    assert np.max(np.abs(ev["residual"])) < 1e-6
    f_end = ev["layers"][-1].outputs
    assert np.all(np.diag(f_end) > np.diag(warm.outputs))  # colder: closer to the one-hot targets


def test_three_layers_at_small_t_try_the_warm_start_before_the_shape_homotopy(monkeypatch):
    """The order of the small-T starts at L = 3 once the prior start fails (every start stubbed to fail; the
    search's own logic only). A nested warm solve (depth 1) at L = 2 does not run the shape homotopy."""
    spec = ModelSpec(nonlinearity="erf", class_sizes=(3, 2), temperature=0.02)
    assert _Search(spec, layer_sigmas(spec, 2), DeepOptions(), depth=1).from_shape() is False
    calls = []
    for name in ("from_prior", "from_large_p", "from_small_p", "from_warmer", "from_shape"):
        monkeypatch.setattr(_Search, name, lambda self, name=name: bool(calls.append(name)))
    monkeypatch.setattr(_Search, "continuation", lambda self, Ts, label: None)
    _run_starts(_Search(spec, layer_sigmas(spec, 3), DeepOptions(search=False)), None)
    assert calls == ["from_prior", "from_warmer", "from_shape", "from_large_p", "from_small_p"]


def test_the_nested_warm_solve_reports_its_progress_under_its_own_stage(monkeypatch):
    """A long nested solve at T_w is not silent: its events reach the outer callback, restaged."""
    import types

    import solvers.deep.nonlinear as nonlinear

    def nested(spec, sig, start, opt, depth=0, progress=None):
        report(progress, "deep solve", 1, None, line="nested")
        return types.SimpleNamespace(found=False, log=[], iterations=0)

    monkeypatch.setattr(nonlinear, "_solve", nested)
    events = []
    spec = ModelSpec(nonlinearity="erf", class_sizes=(3, 2), temperature=0.02)
    assert _Search(spec, layer_sigmas(spec, 3), DeepOptions(), progress=events.append).from_warmer() is False
    assert [e.stage for e in events] == [f"deep solve at T_w = {DeepOptions().warm_ratio * 0.02:.3g}"]
