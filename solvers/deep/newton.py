"""Newton–Broyden on the deep class-block residual with the integration proposals held fixed, and the
outer loop that moment-matches the proposals between Newton solves (:mod:`solvers.deep.nonlinear`).

The Newton iteration is :func:`solvers.newton.damped_newton` (least-squares steps, backtracking on
||r||₂ down to λ = 1e-4) with a stateful Jacobian: a forward-difference J, or after a full step
Δx (λ = 1) that halved ||r|| the good Broyden update

    J ← J + (Δr − J Δx) Δxᵀ / (Δxᵀ Δx),

and a fresh J again when the line search fails with an updated one (the ``retry`` hook)
(Dennis & Schnabel, Numerical Methods for Unconstrained Optimization, §8.1).

Along a path of nearby solves (a continuation in P) a :class:`JacobianMemory` carries J from one solve to the next:
the solve starts from the J the previous one ended with (the last Broyden update applied with its final step), updates
it after every accepted step, damped or not, that reduced ||r|| by the memory's ``contraction`` factor or was taken
with a fresh J, and computes a fresh forward-difference J only when a step with an updated one does not, or its line
search fails (the chord–Broyden corrector of continuation methods,
Allgower & Georg, Introduction to Numerical Continuation Methods, §7.2). A fresh J costs n + 1 evaluations, an
update none.
"""
from __future__ import annotations

import time

import numpy as np

from solvers.newton import damped_newton
from solvers.progress import report
from solvers.deep.model import DeepModel
from theory.deep_blocks import Proposal
from theory.deep_mixture import MixtureProposal

__all__ = ["SolveLog", "BudgetSpent", "JacobianMemory", "fd_jacobian", "newton", "mix_proposals", "solve_at",
           "t_only"]


class BudgetSpent(RuntimeError):
    """Raised by :func:`solve_at` before a Newton solve when the search's Newton-iteration budget
    (:attr:`SolveLog.budget`) is spent; the search (:mod:`solvers.deep.nonlinear`) catches it and ends."""


class SolveLog(list):
    """The log lines of one solve (a list of str), the Newton iterations it spent (``iterations``), the
    iterations it may spend (``budget``) and the process CPU time (``time.process_time``) at which it must
    stop (``deadline``; either None: no limit; :class:`BudgetSpent` once one is reached), and an optional
    ``progress`` callback (:mod:`solvers.progress`) that gets each new line as a "deep solve" event
    (step = number of lines; a request to stop is not honoured: the search runs to its end)."""

    iterations: int = 0
    budget: int | None = None
    deadline: float | None = None
    progress = None

    def append(self, line) -> None:
        super().append(line)
        report(self.progress, "deep solve", len(self), None, line=str(line)[:24])

    def set_budget(self, iterations: int = 0, seconds: float = 0.0) -> None:
        """Limit the solve to ``iterations`` more Newton iterations and ``seconds`` more CPU seconds (0: no limit)."""
        self.budget = self.iterations + iterations if iterations else None
        self.deadline = time.process_time() + seconds if seconds else None

    def check_budget(self) -> None:
        """Raise :class:`BudgetSpent` if the Newton iterations spent have reached ``budget`` or the CPU time
        ``deadline`` has passed."""
        if self.budget is not None and self.iterations >= self.budget:
            raise BudgetSpent(f"search budget of {self.budget} Newton iterations spent")
        if self.deadline is not None and time.process_time() >= self.deadline:
            raise BudgetSpent("search budget of CPU seconds spent")


def fd_jacobian(model, x, ev, props, idx):
    """Forward-difference Jacobians of the residual (rows/columns ``idx``) and of the observables."""
    r = ev["residual"][idx]
    J = np.empty((len(idx), len(idx)))
    Jo = np.empty((len(ev["obs"]), len(idx)))
    for j, i in enumerate(idx):
        h = 1e-7 * max(1.0, abs(x[i]))
        xp = x.copy()
        xp[i] += h
        evp = model.safe_eval(xp, props)
        if evp is None:
            xp[i] -= 2 * h
            evp = model.safe_eval(xp, props)
            h = -h
            if evp is None:
                return None, None
        J[:, j] = (evp["residual"][idx] - r) / h
        Jo[:, j] = (evp["obs"] - ev["obs"]) / h
    return J, Jo


class JacobianMemory:
    """The Jacobian carried across the Newton solves of a path (module docstring). ``contraction``: a step that
    reduced ||r||₂ by this factor (or more) keeps the Jacobian (Broyden update), any other gets a fresh one.
    ``min_damping``: the line search gives up below this λ (a kept J is then replaced by a fresh one, and with a
    fresh one the solve fails: along a path a smaller step is cheaper than a long backtracking).
    ``J`` is stored with a ``key`` naming its coordinates (recalled only under the same key and shape);
    :meth:`projected` gives the view of a subspace with orthonormal basis Q of the stored coordinates. Counts:
    ``fresh`` (finite-difference Jacobians), ``updates`` (Broyden updates), ``reused`` (solves started from a kept
    J)."""

    def __init__(self, contraction: float = 0.9, min_damping: float = 1.0 / 16.0):
        if not 0.0 < contraction < 1.0:
            raise ValueError(f"JacobianMemory: contraction must be in (0, 1), got {contraction!r}")
        if not 0.0 < min_damping < 1.0:
            raise ValueError(f"JacobianMemory: min_damping must be in (0, 1), got {min_damping!r}")
        self.contraction, self.min_damping = float(contraction), float(min_damping)
        self.J, self.key = None, None
        self.fresh = self.updates = self.reused = 0

    def recall(self, n: int, key=None):
        """A copy of the kept J if it is n × n in the coordinates ``key``, else None."""
        if self.J is None or self.J.shape != (n, n) or self.key != key:
            return None
        self.reused += 1
        return self.J.copy()

    def keep(self, J, key=None) -> None:
        self.J, self.key = (None, None) if J is None or not np.all(np.isfinite(J)) else (np.array(J), key)

    def forget(self) -> None:
        self.J, self.key = None, None

    def count(self, what: str) -> None:
        setattr(self, what, getattr(self, what) + 1)

    def projected(self, Q, key=None) -> "_ProjectedMemory":
        """The memory seen in the coordinates z of the subspace w = Q z (Q orthonormal columns; the kept J in w's
        coordinates ``key``): J_z = Qᵀ J_w Q, and a J_z kept as Q J_z Qᵀ."""
        return _ProjectedMemory(self, np.asarray(Q, dtype=np.float64), key)


class _ProjectedMemory:
    """:meth:`JacobianMemory.projected`."""

    def __init__(self, parent: JacobianMemory, Q, key):
        self.parent, self.Q, self.wkey = parent, Q, key
        self.contraction, self.min_damping = parent.contraction, parent.min_damping

    def recall(self, n: int, key=None):
        Jw = self.parent.recall(self.Q.shape[0], self.wkey) if self.Q.shape[1] == n else None
        return None if Jw is None else self.Q.T @ Jw @ self.Q

    def keep(self, J, key=None) -> None:
        self.parent.keep(None if J is None else self.Q @ J @ self.Q.T, self.wkey)

    def count(self, what: str) -> None:
        self.parent.count(what)


class _Broyden:
    """Residual, stateful Jacobian, step solve and retry hook of the Newton–Broyden iteration on the
    unknowns ``idx`` for :func:`solvers.newton.damped_newton` (see :func:`newton`). ``ev`` holds the
    model evaluation at the last point evaluated; ``J``, ``Jo`` the Jacobians at ``x`` (fresh or
    Broyden-updated, ``fresh`` says which)."""

    def __init__(self, model: DeepModel, x, props, idx, memory=None):
        self.model, self.full, self.props, self.idx = model, np.array(x, dtype=np.float64), props, idx
        self.point, self.ev = None, None  # last evaluated sub-vector and its evaluation
        self.x = self.r = self.J = self.Jo = self.step = None
        self.fresh = self.fresh_wanted = False
        self.memory = memory
        self.inherited = None if memory is None else memory.recall(len(idx))

    def embed(self, z):
        out = self.full.copy()
        out[self.idx] = z
        return out

    def evaluate(self, z):
        if self.point is None or not np.array_equal(z, self.point):
            self.point, self.ev = np.array(z), self.model.safe_eval(self.embed(z), self.props)
        return self.ev

    def residual(self, z):
        ev = self.evaluate(z)
        return np.full(len(self.idx), np.nan) if ev is None else ev["residual"][self.idx]

    def jacobian(self, z):
        """Good Broyden update after a full step (λ = 1) that halved ||r||, fresh finite differences otherwise;
        with a memory: its J at the first call, then the update after any accepted step that reduced ||r|| by its
        ``contraction``."""
        r = self.residual(z)
        if self.inherited is not None:
            self.J, self.inherited, self.fresh = self.inherited, None, False
        elif self._keeps(z, r):
            self._update(z, r)
        else:
            self.J, self.Jo = fd_jacobian(self.model, self.embed(z), self.evaluate(z), self.props, self.idx)
            self.fresh = True
            if self.memory is not None:
                self.memory.count("fresh")
        self.x, self.r, self.fresh_wanted = np.array(z), r, False
        return self.J if self.J is not None else np.full((len(r), len(r)), np.nan)

    def _keeps(self, z, r) -> bool:
        """Whether the step to ``z`` (residual ``r``) keeps J (a Broyden update) rather than a fresh one."""
        if self.J is None or self.fresh_wanted or self.step is None or np.array_equal(z, self.x):
            return False
        if self.memory is None:
            return np.array_equal(z, self.x + self.step) and np.linalg.norm(r) < 0.5 * np.linalg.norm(self.r)
        # a fresh J that contracted poorly is updated too: the next finite differences would be no better there
        return self.fresh or np.linalg.norm(r) <= self.memory.contraction * np.linalg.norm(self.r)

    def _update(self, z, r) -> None:
        """The good Broyden update J ← J + (Δr − J Δx) Δxᵀ / (Δxᵀ Δx) with the step from the last J's point to z."""
        dx = z - self.x
        self.J = self.J + np.outer(r - self.r - self.J @ dx, dx) / float(dx @ dx)
        self.fresh = False
        if self.memory is not None:
            self.memory.count("updates")

    def finish(self, z) -> None:
        """Keep J in the memory, updated with the last step (to the solution ``z``) if one was taken."""
        if self.memory is None or self.J is None or not np.all(np.isfinite(self.J)):
            return
        r = self.residual(z)
        if self.x is not None and not np.array_equal(z, self.x) and np.all(np.isfinite(r)):
            self._update(z, r)
        self.memory.keep(self.J)

    def solve(self, A, b):
        self.step = np.full(len(b), np.nan) if not np.all(np.isfinite(A)) else np.linalg.lstsq(A, b, rcond=None)[0]
        return self.step

    def retry(self, z):
        """A failed line search with a Broyden Jacobian is retried with a fresh one."""
        self.fresh_wanted = not self.fresh
        return self.fresh_wanted

    def refreshed(self, z):
        """(J, Jo) fresh at z (None, None where the finite differences leave the domain)."""
        if not (self.fresh and self.x is not None and np.array_equal(z, self.x)):
            self.J, self.Jo = fd_jacobian(self.model, self.embed(z), self.evaluate(z), self.props, self.idx)
            self.x, self.fresh = np.array(z), True
        return self.J, self.Jo


def newton(model: DeepModel, x, props, active=None, tol=1e-10, maxiter=30, jacobians=True, memory=None):
    """Newton–Broyden by :func:`solvers.newton.damped_newton`: forward-difference Jacobian, rank-one
    (good Broyden) updates after full steps that reduce ||r|| by half or more, a fresh Jacobian otherwise
    and when the line search fails with an updated one (``retry``); backtracking on ||r||₂ down to
    λ = 1e-4. ``active``: indices of the unknowns (and equations) solved for. ``memory``
    (:class:`JacobianMemory`): start from its J and keep the last one there (module docstring). Returns
    (x, ev, J, Jo, ok, nit) with J, Jo fresh finite-difference Jacobians at the returned x (None, None
    with ``jacobians=False``, for callers that only want x) and nit the Newton iterations spent; a line
    search that fails with a fresh Jacobian still counts as converged when max|r| < 10³ tol."""
    idx = np.arange(len(x)) if active is None else np.asarray(active)
    b = _Broyden(model, x, props, idx, memory)
    out = damped_newton(b.residual, b.jacobian, np.asarray(x, dtype=np.float64)[idx], tol=tol, maxiter=maxiter,
                        solve=b.solve, min_damping=1e-4 if memory is None else memory.min_damping, retry=b.retry)
    b.finish(out.x)
    ev = b.evaluate(out.x)
    if ev is None:
        return b.embed(out.x), None, None, None, False, out.iterations
    ok = out.converged or (out.status == "line-search-failed" and out.residual < 1e3 * tol)
    if not jacobians:
        return b.embed(out.x), ev, None, None, ok, out.iterations
    J, Jo = b.refreshed(out.x) if ok else (b.J, b.Jo)
    return b.embed(out.x), ev, J, Jo, ok and J is not None, out.iterations


def mix_proposals(a, b, w: float):
    """Interpolate two proposals (weight ``w`` on ``b``): Gaussians by mean and Cholesky factor, mixtures
    of the same size componentwise (:meth:`theory.deep_mixture.MixtureProposal.mix`); otherwise ``b``."""
    if isinstance(a, Proposal) and isinstance(b, Proposal):
        return Proposal((1 - w) * a.mean + w * b.mean, (1 - w) * a.chol + w * b.chol)
    return a.mix(b, w) if isinstance(a, MixtureProposal) else b


def solve_at(model: DeepModel, x, props, log, label, rounds=None, tol=None, maxiter=None, jacobians=True,
             memory=None):
    """Newton with fixed proposals, then moment-match the proposals, until they settle. When Newton
    fails after a proposal update, the update is retried halfway (up to three times), then the
    previous round's solution is returned. Returns (x, ev, J, Jo, proposals) or None; J, Jo (fresh
    finite differences at the returned x and the proposals it was solved with) only with ``jacobians``,
    else None. Raises :class:`BudgetSpent` before any Newton iteration when ``log``'s budget is spent. ``memory``: a
    :class:`JacobianMemory` carried by :func:`newton` from solve to solve."""
    if isinstance(log, SolveLog):
        log.check_budget()
    out = _rounds(model, x, props, log, label, rounds, tol, maxiter, memory)
    if out is None:
        return None
    x, ev, used, ret = out
    if not jacobians:
        return x, ev, None, None, ret
    J, Jo = fd_jacobian(model, x, ev, used, np.arange(len(x)))
    return None if J is None else (x, ev, J, Jo, ret)


def _rounds(model: DeepModel, x, props, log, label, rounds, tol, maxiter, memory=None):
    """The rounds of :func:`solve_at`: (x, ev, the proposals x solves with, the proposals returned) or None."""
    o = model.opt
    inflate = o.inflate if o.inflate is not None else (1.0 if model.exact else 1.5)
    ptol = o.proposal_tol if o.proposal_tol is not None else (1e-9 if model.exact else 0.05)
    tol = tol if tol is not None else (o.tol if model.exact else max(o.tol, 1e-9))
    maxiter = o.maxiter if maxiter is None else maxiter
    out = None
    for rnd in range(rounds or o.max_rounds):
        if rnd and isinstance(log, SolveLog):
            log.check_budget()
        trial = props
        for shrink in range(4 if out is not None else 1):
            x1, ev, _, _, ok, nit = newton(model, x, trial, tol=tol, maxiter=maxiter, jacobians=False, memory=memory)
            if isinstance(log, SolveLog):
                log.iterations += nit
            log.append(f"{label}: round {rnd}, Newton {'converged' if ok else 'FAILED'} in {nit} iterations"
                       + (f", max|residual| {np.max(np.abs(ev['residual'])):.1e}" if ev is not None else ""))
            if ok:
                break
            if out is not None:
                trial = [mix_proposals(a, b, 0.5) for a, b in zip(out[2], trial)]
        if not ok:  # the previous round's solution (a fixed point for its own proposals) or None
            return out
        x, props = x1, trial
        out = (x, ev, props, props)
        new = model.adapt(ev, inflate, props)
        dist = max(a.distance(b) for a, b in zip(new, props))
        if dist < ptol or rounds is not None:
            return (x, ev, props, new if rounds is not None else props)
        props = new
    return out  # proposals still moving: the error estimate (alternative rules) covers the mismatch


def t_only(model: DeepModel, x, props):
    x, ev, _, _, ok, _ = newton(model, x, props, active=np.arange(model.nt), tol=1e-8, maxiter=30, jacobians=False)
    return x if ev is not None else None
