"""Step control of the homotopy in P (:func:`solvers.deep.complementarity.follow_sizes`, THEORY §4–5): the step
ratio, its halving on failure and growth after cheap steps, the Jacobian carried from step to step
(:class:`solvers.deep.newton.JacobianMemory`) and the back-off of the maximisers' refresh.

Without a memory the ratio grows ×1.2 (at most the cap) after a step of at most 5 Newton iterations and is halved in
log P after a failed step, as the homotopy always ran. With a memory a Newton iteration costs one or two
evaluations instead of n + 1, so the iteration count no longer measures a step's cost: the log of the ratio grows
×1.25 (at most the cap) after every step whose solve needed no fresh Jacobian (a refresh after it does not
count); a failed step restores the Jacobian of the
last solved point; and a refresh whose re-solve failed is tried again only 1, 2, 4, ... steps later (on the
three-layer route the same marginal candidates fail again at the next step).
"""
from __future__ import annotations

import numpy as np

__all__ = ["SizeSteps", "RefreshBackoff", "with_memory"]


class RefreshBackoff:
    """When to refresh the maximisers: after every step, or (``active``) after a refresh whose re-solve failed only
    1, 2, 4, ... steps later."""

    def __init__(self, active: bool):
        self.active, self.wait, self.failures = active, 0, 0

    def due(self) -> bool:
        self.wait -= 1
        return not self.active or self.wait < 0

    def record(self, solved: bool) -> None:
        self.failures = 0 if solved else self.failures + 1
        self.wait = 0 if solved else 2 ** (self.failures - 1)


class SizeSteps:
    """The step ratio P_{k+1}/P_k of the homotopy (module docstring): first ``first`` (default the cap ``ratio``),
    halved in log P after a failed step up to ``halvings`` times in a row; ``memory`` the Jacobian carried across
    steps or None."""

    def __init__(self, ratio: float, first=None, halvings: int = 6, memory=None):
        self.ratio, self.step, self.halvings, self.fails = float(ratio), float(first or ratio), int(halvings), 0
        self.memory, self.backoff = memory, RefreshBackoff(memory is not None)
        self.start_iterations, self.kept, self.at_solution, self.fresh_in_step = 0, None, None, False

    def begin(self, log) -> None:
        """Before a step: the iterations so far and the memory's state (restored if the step fails)."""
        self.start_iterations = log.iterations
        m = self.memory
        self.kept = None if m is None else (m.J, m.key, m.fresh)

    def iterations(self, log) -> int:
        return log.iterations - self.start_iterations

    def converged(self) -> None:
        """After the step's own solve converged (before any refresh): whether it computed a fresh Jacobian."""
        self.fresh_in_step = self.memory is not None and self.memory.fresh != self.kept[2]

    def failed(self) -> bool:
        """After a failed step: True when the homotopy must stop, else the ratio halved in log P."""
        self.fails += 1
        if self.fails > self.halvings:
            return True
        self.step = float(np.sqrt(self.step))
        if self.memory is not None:
            self.memory.keep(*self.kept[:2])
        return False

    def solved(self, log) -> None:
        """After a solved step: the next ratio (module docstring)."""
        self.fails = 0
        its = self.iterations(log)
        if self.memory is None:
            self.step = min(self.step * 1.2, self.ratio) if its <= 5 else self.step
        elif its <= 5 or not self.fresh_in_step:
            self.step = float(min(np.exp(1.25 * np.log(self.step)), self.ratio))

    def before_refresh(self) -> None:
        """Before the re-solve of a refresh: the Jacobian of the tracked maximisers' solution."""
        self.at_solution = None if self.memory is None else (self.memory.J, self.memory.key)

    def refreshed(self, solved_again: bool) -> None:
        """After the re-solve of a refresh: without success the Jacobian of :meth:`before_refresh` is restored (the
        homotopy goes on with the tracked maximisers); the back-off records it."""
        if not solved_again and self.memory is not None:
            self.memory.keep(*self.at_solution)
        self.backoff.record(solved_again)


def with_memory(solve, memory):
    """``solve`` with ``memory=memory`` in every call (``solve`` itself without a memory)."""
    if memory is None:
        return solve

    def solve_with_memory(*args, **kw):
        return solve(*args, memory=memory, **kw)
    return solve_with_memory
