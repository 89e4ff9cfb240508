"""Progress of a sweep in the one progress protocol (:mod:`solvers.progress`), and its stderr line.

After every finished point (and once at the start) the sweep sends a :class:`SweepProgress`, a
:class:`~solvers.progress.ProgressEvent` with stage ``"sweep"``, ``step`` the points done and
``total`` the points in the sweep; a callback that returns ``False`` stops the sweep after the
points in flight. ``progress=True`` renders the events as one line on stderr.
"""
from __future__ import annotations

import math
import sys
import time

from solvers.progress import ProgressEvent

__all__ = ["SweepProgress", "StderrProgress", "send"]


class SweepProgress(ProgressEvent):
    """The event sent after each finished point: ``ProgressEvent("sweep", done, total, values)``.

    ``values`` holds ``resumed`` (points read back from the file), ``errors`` (points whose latest
    record is an error), ``elapsed`` (seconds in this call), ``rate`` (points per second computed
    in this call), ``eta`` (estimated seconds left, ``nan`` before the first point finishes) and
    ``record`` (the record just written, ``None`` at the start). They and ``done`` (= ``step``,
    counting resumed points too) are also read-only attributes, as before the protocol.
    """

    __slots__ = ()

    def __new__(cls, done: int, total: int, resumed: int, errors: int, elapsed: float, rate: float,
                eta: float, record: dict | None):
        values = {"resumed": resumed, "errors": errors, "elapsed": elapsed, "rate": rate, "eta": eta,
                  "record": record}
        return super().__new__(cls, "sweep", int(done), int(total), values)

    done = property(lambda self: self.step, doc="points with a record, resumed ones included")
    resumed = property(lambda self: self.values["resumed"])
    errors = property(lambda self: self.values["errors"])
    elapsed = property(lambda self: self.values["elapsed"])
    rate = property(lambda self: self.values["rate"])
    eta = property(lambda self: self.values["eta"])
    record = property(lambda self: self.values["record"])


def send(progress, event: ProgressEvent) -> bool:
    """Deliver ``event`` to ``progress`` (if any); False when the callback asked to stop."""
    return progress is None or progress(event) is not False


def _format_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else (f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s")


class StderrProgress:
    """One updating line on a terminal; otherwise a line at most every 10 s and at the end."""

    def __init__(self, label: str, stream=None):
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.last = -math.inf
        self.width = 0

    def __call__(self, p: SweepProgress):
        rate = f"{p.rate:.3g}" if math.isfinite(p.rate) else "?"
        text = (f"sweep {self.label}: {p.done}/{p.total} points ({p.errors} errors, {p.resumed} resumed), "
                f"{rate} points/s, ETA {_format_seconds(p.eta)}")
        final = p.done == p.total
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + text.ljust(self.width) + ("\n" if final else ""))
            self.width = len(text)
        elif final or now - self.last >= 10.0:
            self.stream.write(text + "\n")
            self.last = now
        self.stream.flush()
