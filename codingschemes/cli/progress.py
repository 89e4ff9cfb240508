"""The command line's progress renderer: a tqdm bar on stderr for :mod:`solvers.progress` events.

A :class:`ProgressBar` is a progress callback of the one protocol,
``progress(ProgressEvent(stage, step, total, values)) -> None``: each event moves the bar to
``step`` (of ``total`` when known) and shows ``values`` (residual, parameter, MCSE, ...) after it;
a new ``stage`` restarts the bar under that name. It never asks the caller to stop.

Solvers not yet converted to the protocol call their callback with positional arguments; a call
whose first argument is not a ProgressEvent is read as one of these legacy signatures:
``(iteration, residual)``, ``(k, n)`` (step k of n), ``(round, info)`` and ``(step, parameter, info)``
(info a dict of values), or one object with ``done`` and ``total`` (a sweep's progress record).
:func:`progress_bar` gives the bar for a subcommand's parsed arguments: None under ``--quiet``.
"""
from __future__ import annotations

from contextlib import contextmanager
from numbers import Integral, Real
import sys

from tqdm import tqdm

from solvers.progress import ProgressEvent

__all__ = ["ProgressBar", "progress_bar", "as_event"]


def _shown(values: dict) -> dict:
    """The scalar values worth a place on the bar, numbers in 3 significant digits."""
    out = {}
    for k, v in values.items():
        if isinstance(v, bool) or isinstance(v, str) and len(v) <= 24:
            out[k] = v
        elif isinstance(v, Integral):
            out[k] = int(v)
        elif isinstance(v, Real):
            out[k] = f"{float(v):.3g}"
    return out


def as_event(args, default_stage: str = "step") -> ProgressEvent:
    """The :class:`ProgressEvent` of one callback call's positional ``args`` (see the module docstring)."""
    if len(args) == 1 and isinstance(args[0], ProgressEvent):
        return args[0]
    if len(args) == 1 and hasattr(args[0], "done") and hasattr(args[0], "total"):
        rec = args[0]
        return ProgressEvent("sweep", int(rec.done), int(rec.total),
                             {k: getattr(rec, k) for k in ("errors", "eta") if hasattr(rec, k)})
    if len(args) == 2 and isinstance(args[1], dict):
        return ProgressEvent("round", int(args[0]), None, dict(args[1]))
    if len(args) == 2 and isinstance(args[1], Integral) and not isinstance(args[1], bool):
        return ProgressEvent(default_stage, int(args[0]), int(args[1]), {})
    if len(args) == 2:
        return ProgressEvent("iteration", int(args[0]), None, {"residual": args[1]})
    if len(args) == 3:
        info = args[2] if isinstance(args[2], dict) else {}
        return ProgressEvent(default_stage, int(args[0]), None, {"parameter": args[1], **info})
    raise TypeError(f"a progress callback takes a ProgressEvent or a legacy signature, got {len(args)} arguments")


class ProgressBar:
    """A tqdm bar on ``file`` (stderr) fed by progress events; ``label`` names the run."""

    def __init__(self, label: str, file=None):
        self.label = label
        self.file = file if file is not None else sys.stderr
        self._bar = None
        self._stage = None

    def __call__(self, *args) -> None:
        event = as_event(args)
        if self._bar is None or event.stage != self._stage:
            self.close()
            self._stage = event.stage
            self._bar = tqdm(total=event.total, desc=f"[{self.label}] {event.stage}", file=self.file,
                             leave=False, dynamic_ncols=True, mininterval=0.2)
        if event.total is not None and event.total != self._bar.total:
            self._bar.total = event.total
        self._bar.n = event.step
        self._bar.set_postfix(_shown(event.values), refresh=True)
        return None

    def close(self, message: str | None = None) -> None:
        """Remove the bar; print ``message`` (if any) on its own line."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if message:
            print(f"[{self.label}] {message}", file=self.file, flush=True)


@contextmanager
def progress_bar(args, label: str):
    """A :class:`ProgressBar` labelled ``label`` for the run, closed at the end; None under ``--quiet``."""
    if getattr(args, "quiet", False):
        yield None
        return
    bar = ProgressBar(label)
    try:
        yield bar
    finally:
        bar.close()
