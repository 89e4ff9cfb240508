"""The one progress protocol of every long-running solver, sweep and sampler.

A progress callback is ``progress(event: ProgressEvent) -> bool | None``, called after every
iteration, round, continuation step or sweep point. Returning ``False`` asks the caller to stop
early and return what it has (continuation and sweeps honour it; solvers that cannot stop
cleanly ignore it). ``None`` means no progress reporting. The command line renders events as a
tqdm bar on stderr (:mod:`codingschemes.cli.progress`); ``--quiet`` passes ``None``.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional

__all__ = ["ProgressEvent", "Progress", "report", "restaged"]


class ProgressEvent(NamedTuple):
    """stage: what runs ("newton", "round", "continuation", "sweep", "chain", ...); step: 1-based
    count so far; total: the expected count or None; values: a few numbers worth showing
    (residual, parameter, MCSE, ...)."""

    stage: str
    step: int
    total: Optional[int] = None
    values: dict = {}


Progress = Callable[[ProgressEvent], Optional[bool]]


def report(progress: Progress | None, stage: str, step: int, total: int | None = None, **values) -> bool:
    """Send one event to ``progress`` (if any); False when the callback asked to stop."""
    if progress is None:
        return True
    return progress(ProgressEvent(stage, int(step), total, values)) is not False


def restaged(progress: Progress | None, stage: str) -> Progress | None:
    """``progress`` with every event's stage replaced by ``stage`` (a repeated run, such as a
    replica, reported apart from the first)."""
    if progress is None:
        return None
    return lambda event: progress(event._replace(stage=stage))
