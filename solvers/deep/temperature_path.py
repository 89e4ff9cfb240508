"""Continuation in the temperature T of the deep class-block equations, from a solution at a warmer T_w down
towards the target T (THEORY §5; the equations: :mod:`solvers.deep.model`; the search that uses it:
``_Search.from_warmer`` in :mod:`solvers.deep.nonlinear`).

At small T the single-neuron measures of every layer sharpen into several narrow modes, and the direct starts
of the search (prior kernels, the homotopies in P and in φ's shape) stop short of the saddle; at a warmer T they
reach it, and the class-contrast branch is smooth in T between the two. So the branch is followed in log T by
natural-parameter continuation (Allgower & Georg, Introduction to Numerical Continuation Methods, §2.1): each
step solves the residual at T_k by the deep solver's Newton with moment-matched proposals
(:func:`solvers.deep.newton.solve_at`), started from the previous step's point and proposals (mixtures and
all),

    log T_{k+1} = log T_k − Δ,   Δ ≤ ``step`` (= log(T_w/T)/4 in the search),

and a failed step is halved in log T, up to ``max_halvings`` times, from the last solved point. The path
stops one step short of T: the last step, to T itself, is the caller's (the search solves it with its
coverage check and mixture rounds, :meth:`solvers.deep.nonlinear._Search.attempt`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from solvers.deep.newton import solve_at

__all__ = ["TemperaturePath", "follow_temperature"]


@dataclass
class TemperaturePath:
    """Where the continuation in T got: ``x`` and ``proposals`` at the lowest temperature solved (``reached``;
    the warm start's T_w if no step was solved), the solved ``temperatures`` in order (T_w first), ``done``
    (True when the next step reaches the target: the caller solves it) and ``message``."""

    reached: float
    x: np.ndarray
    proposals: list
    temperatures: list
    done: bool
    message: str


def follow_temperature(model_at, x, props, log, warm: float, target: float, step: float,
                       max_halvings: int = 3, label: str = "continuation") -> TemperaturePath:
    """Follow the equations ``model_at(T)`` (a :class:`solvers.deep.model.DeepModel` at temperature T) from their
    solution (``x``, ``props``) at T = ``warm`` down towards ``target`` < ``warm`` in steps of ``step`` in log T,
    halved on a failed step up to ``max_halvings`` times (module docstring). ``log``: the solve's
    :class:`solvers.deep.newton.SolveLog` (its budget bounds the path: :class:`solvers.deep.newton.BudgetSpent`
    propagates)."""
    log_t, halvings, temps = math.log(warm), 0, [warm]
    while log_t - step > math.log(target) + 1e-12:
        Tk = math.exp(log_t - step)
        out = solve_at(model_at(Tk), x, props, log, f"{label} from T = {warm:.4g}, T = {Tk:.4g}", jacobians=False)
        if out is None:
            if halvings == max_halvings:
                return TemperaturePath(temps[-1], x, props, temps, False,
                                       f"{label} from T = {warm:.4g}: Newton failed at T = {Tk:.4g}")
            step, halvings = step / 2.0, halvings + 1
            continue
        x, props, log_t = out[0], out[4], log_t - step
        temps.append(Tk)
    return TemperaturePath(temps[-1], x, props, temps, True,
                           f"{label} from T = {warm:.4g}: reached T = {temps[-1]:.4g} in {len(temps) - 1} steps")
