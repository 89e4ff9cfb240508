"""The deep solve reports its progress through the one protocol (solvers.progress): one "deep solve" event per
log line, in order, and a request to stop does not cut the search short (the solution is the same)."""
import numpy as np

from solvers.deep.nonlinear import DeepOptions, solve_deep_nonlinear
from solvers.progress import ProgressEvent
from theory.spec import ModelSpec


def test_every_log_line_is_a_progress_event_and_stop_requests_do_not_change_the_solution():
    spec = ModelSpec(nonlinearity="normcdf", class_sizes=(3, 2), temperature=0.5)
    opts = DeepOptions(search=False, code_neurons=0)
    events = []

    def progress(ev):
        events.append(ev)
        return False  # asks to stop: the deep search does not honour it (documented)

    sol = solve_deep_nonlinear(spec, 2, options=opts, progress=progress)
    quiet = solve_deep_nonlinear(spec, 2, options=opts)
    assert sol.converged and len(events) == len(sol.log) > 0
    assert all(isinstance(e, ProgressEvent) and e.stage == "deep solve" for e in events)
    assert [e.step for e in events] == list(range(1, len(events) + 1))
    assert [e.values["line"] for e in events] == [line[:24] for line in sol.log]
    assert np.array_equal(sol.outputs, quiet.outputs)
