"""Continuation of the deep ReLU equations with the condensate barrier (THEORY §4, §5; :mod:`solvers.deep.kkt`).

The barrier ε Σ_j ψ(q_j) of the last layer's readout domain and of the first layer's tilted domain
(:func:`solvers.deep.kkt.barrier_weights`: the log barrier, or its C¹ form with an onset) makes the deep ReLU
equations a smooth function of (x, ε, P) inside both domains; its solution x(ε, P) is the central path of the
KKT system, which at ε → 0 is the saddle point with its condensates (μ_j = ε ψ'(q_j)). A start on that path is
the plain solution at small P, where no constraint is active (there x(ε → 0) is the plain solution).
:func:`follow` steps one parameter p (ε, or the total P with the class proportions and σ_a² P fixed)
geometrically from p_0 to p_1 in log p, each step started from the secant predictor

    x_{k+1}⁰ = x_k + (x_k − x_{k−1}) (log p_{k+1} − log p_k)/(log p_k − log p_{k−1}),

with t shrunk until both domains hold if the predictor leaves one, then corrected by Newton
(:func:`solvers.deep.newton.solve_at`), the maximisers of both domains searched afresh at each step (and,
optionally, the last layer's needle components placed afresh, :func:`solvers.deep.condensate.with_needles`).
Step control: the step in log p grows by 3/2 (at most 2 log ``ratio``) after a step that took at most 5 Newton
iterations and is halved after a failure, up to ``halvings`` times in a row.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import math

import numpy as np

from solvers.deep.condensate import _evaluable, with_needles
from solvers.deep.newton import solve_at
from solvers.progress import report

__all__ = ["PathPoint", "Path", "follow"]


@dataclass
class PathPoint:
    """One solved point of a path: the parameter, the unknowns, the proposals, the Newton iterations spent."""

    p: float
    x: np.ndarray
    props: list
    iterations: int


@dataclass
class Path:
    """The solved points of :func:`follow` (the start first) and where it stopped (``stopped``: '' if it
    reached p_1)."""

    points: list = field(default_factory=list)
    stopped: str = ""

    @property
    def last(self) -> PathPoint:
        return self.points[-1]

    @property
    def reached(self) -> bool:
        return not self.stopped


def _secant(points, log_p):
    a, b = points[-2], points[-1]
    la, lb = math.log(a.p), math.log(b.p)
    return b.x + (b.x - a.x) * ((log_p - lb) / (lb - la))


def _step(model, x0, props, log, label, maxiter, needles, rounds=2):
    """One corrector: Newton with the proposal rounds from x0, the maximisers of the barrier searched afresh at
    x0; with ``needles`` ("gauss" or "slice", :func:`with_needles`) the needle components placed afresh at x0,
    else the proposals carried (moment-matched, :func:`solvers.deep.newton.solve_at`)."""
    def solve(xs, ps):
        return solve_at(model, xs, ps, log, label, rounds=rounds, tol=1e-8, maxiter=maxiter, jacobians=False)

    if needles:
        props = with_needles(model, x0, props, "gauss" if needles is True else needles)
    if model.condensate is not None:
        model.condensate.refresh(model, x0)
    x0 = _evaluable(model, x0, props, shrink=0.98, tries=25)  # a lower layer tilted past its domain: t shrunk
    return None if x0 is None else solve(x0, props)


def follow(model_at, p0: float, p1: float, x, props, log, label: str, ratio: float = 2.0,
           halvings: int = 6, maxiter: int = 25, needles: bool | str = False, adapt: bool = True,
           progress=None) -> Path:
    """Follow the solution of ``model_at(p)`` (a :class:`solvers.deep.model.DeepModel`) from the solved point
    (``x``, ``props``) at p0 to p1 (module docstring); p0, p1 > 0 in either order. ``adapt`` False: the
    proposals held fixed (one Newton solve per step, a deterministic path). ``needles``: True or "gauss" (Gaussian
    needle components) or "slice" (slice needles, :func:`solvers.deep.condensate.slice_mixture`) placed afresh
    at each step. ``progress`` (:mod:`solvers.progress`) gets each solved point (p, Newton iterations); False
    from it stops the path there. Returns the :class:`Path`."""
    path = Path([PathPoint(p0, np.asarray(x, dtype=np.float64), props, 0)])
    sign = 1.0 if p1 >= p0 else -1.0
    step, fails = math.log(ratio), 0
    end = math.log(p1)
    while sign * (end - math.log(path.last.p)) > 1e-12:
        log_p = math.log(path.last.p) + sign * step
        log_p = min(log_p, end) if sign > 0 else max(log_p, end)
        p = math.exp(log_p)
        model = model_at(p)
        x0 = _secant(path.points, log_p) if len(path.points) >= 2 else path.last.x
        if len(path.points) >= 2 and model.safe_eval(x0, path.last.props) is None:
            x0 = path.last.x
        nit = log.iterations
        out = _step(model, x0, path.last.props, log, f"{label} = {p:.4g}", maxiter, needles and adapt,
                    2 if adapt else 1)
        if out is None:
            fails += 1
            if fails > halvings:
                path.stopped = f"{label}: Newton failed at {p:.4g}, last solved {path.last.p:.4g}"
                return path
            step *= 0.5
            continue
        used = log.iterations - nit
        path.points.append(PathPoint(p, out[0], out[4] if adapt else path.last.props, used))
        fails = 0
        if not report(progress, label, len(path.points) - 1, None, p=p, iterations=used):
            path.stopped = f"{label}: stopped by the caller at {p:.4g}"
            return path
        if used <= 5:
            step = min(1.5 * step, 2.0 * math.log(ratio))
    return path
