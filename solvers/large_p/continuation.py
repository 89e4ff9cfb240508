"""Continuation of the large-P solution in one parameter: where and how the symmetry breaks (THEORY §4).

The P → ∞ solution (:mod:`solvers.large_p.solve`) is a set of branches a_γ
(global maxima of S(a; t) = −||a||²/(2σ̄_a²) + Σ_c ρ_c ψ(t_c·a)) with
occupations P_γ, and the n-branch equations of :mod:`solvers.large_p.branches`

    Σ_γ P_γ a_γ ψ'(t_c·a_γ) = e_c − T t_c,   ∇_a S(a_γ) = 0,   S(a_γ) = S(a_1),   Σ_γ P_γ = 1

describe it as long as n stays fixed. :func:`continue_solution` follows the
solution from ``p_from`` to ``p_to`` in one parameter p ∈ {temperature,
sigma_a_bar, sigma_w, rho_r} with :func:`solvers.continuation.continue_branch`
(pseudo-arclength, analytic Jacobian (F_x, F_p) from
:class:`~solvers.large_p.branches.BranchSystem`), and watches a *physical*
stability count at every point (:mod:`solvers.large_p.stability`): 0 when the
continued solution is the minimiser of the convex dual G∞ (kind "global"),
otherwise it is a "constrained" stationary point of G∞ restricted to those n
branches.

Special points of the continued branch (located by bisection in arclength,
with a bracket, see :mod:`solvers.continuation`) are classified and acted on:

* ``"branch-point"`` (sign change of det [[F_x, F_p], [tangentᵀ]]): another
  solution branch of the n-branch system crosses. For odd φ at the symmetric
  branch a = 0 this is the pitchfork of THEORY §4: ∇²_a S(0) = diag(−1/σ̄_a² +
  ρ_r E[φ²] t_rr²) with t = Y/T, so direction r loses stability at
  T_c,r = σ̄_a (ρ_r E[φ(h)²])^{1/2} and the branch a = 0 splits into
  the codes ±a* e_r. The driver switches branches there
  (:func:`~solvers.continuation.switch_branch`), recognises mirrored or
  class-permuted copies of the new branches as one solution
  (:func:`symmetry_group`), and follows the new branches that are global.
* ``"stability-change"``: an occupied a_γ stops being a local maximum of S
  (a maximum splits into several: continuous symmetry breaking within the
  n-branch description), an occupation reaches 0 (a branch empties), or
  another maximum of S overtakes the occupied ones (first-order change of
  the code). The n-branch system can then no longer describe the global
  solution: the driver re-solves with :func:`~solvers.large_p.solve.solve_large_p`
  just past the point (offset δ, growing ×4 up to 4 times if the solve fails
  so close to the transition) and continues with the new n.
* ``"fold"``: the n-branch solution turns back in p (e.g. on the way back
  up in T, where branches merge); on a global branch the driver re-solves
  past it as well.

Second transition of odd φ (derivation, tested). If no occupied branch
codes class r (a_γr = 0 for all γ) then f[:, r] = 0, hence t[:, r] = e_r/T
and, for the row, t_r·a_γ = 0 is consistent with t[r, s] = 0 (s ≠ r). Then
∇²_a S(a_γ) e_r = (−1/σ̄_a² + ρ_r ψ''(0)/T²) e_r with ψ''(0) = E[φ²] (odd
φ: E φ = 0) for every occupied a_γ, whatever the other classes do. So class
r breaks at exactly T_c,r = σ̄_a (ρ_r E[φ²])^{1/2} also on the broken
branch, independently of the classes already broken: for ρ = (1/2, 1/4, 1/4),
erf, σ̄_a = σ_1 = 1, T_c,0 = 0.45743 (pitchfork of a = 0, a branch point
of the n = 1 system) and T_c,1 = T_c,2 = 0.32345 (classes 1 and 2 break
together because ρ_1 = ρ_2). At T_c,1 the n = 1 system is *not* singular:
the perturbation δa ∝ e_1 couples to t through f[0, 1] and f[1, 0], so the
Jacobian stays regular and the event is a ``"stability-change"`` (two
eigenvalues of ∇²_a S cross zero together), after which solve_large_p
finds 4 mirror orbits (8 readouts (±a_0, ±a_1, ±a_2), P_γ = 1/4).

Limitations. Several classes with equal ρ break together, so the
bifurcation is degenerate (null space of [F_x F_p] larger than 2):
:func:`switch_branch` needs a simple branch point, so the driver re-solves
past it instead (ρ = (1/3, 1/3, 1/3)). For m ≥ 4 the occupations of the
2^(m−1) sign-code orbits are not unique (the Jacobian of the full-code system
is singular); the driver then follows the branches it finds, which share t
and f, and says so in the record. The gap between a split and the re-solve
point (δ) is not traced (the new branches merge at the split, where the
Jacobian is singular); merges met in the other direction are located by
continuing the re-solved solution back. Continuation in ``sigma_w`` rebuilds
the ψ table for every σ_1 and is slow (timings: docs/devlog.md).

Linear φ (closed form, one event: the domain constraint starts to bind) and
linearly growing φ (ReLU: a condensate the branch system does not describe,
``method="sequential"``) are followed without the branch equations
(:mod:`solvers.large_p.paths`). Symmetry images of followed branches are
recognised with :func:`~solvers.large_p.symmetry.symmetry_group`; the driver
that acts on special points is :mod:`solvers.large_p.driver`, the prose of
the records :mod:`solvers.large_p.report`.

References: van Meegen & Sompolinsky, Nat. Commun. 16, 3354 (2025);
THEORY §4; continuation and branch switching as in H. B. Keller (1977) and
Yu. A. Kuznetsov, Elements of Applied Bifurcation Theory, ch. 10.
"""
from __future__ import annotations

from dataclasses import replace
import math
import time

import numpy as np

from theory.spec import SpecError

from solvers.continuation import ContinuationOptions
from solvers.progress import Progress
from solvers.large_p.solve import linear_large_p, solve_large_p
from solvers.large_p.problem import LargePProblem, canonical_parameter, check_parameter_value, parameter_range
from solvers.large_p.records import LargePBranchTrace, LargePContinuation, LargePSpecialPoint
from solvers.large_p.driver import Driver
from solvers.large_p.paths import linear_path, sequential_path
from solvers.large_p.symmetry import symmetry_group

__all__ = ["continue_solution", "LargePContinuation", "LargePBranchTrace", "LargePSpecialPoint",
           "symmetry_group", "canonical_parameter", "parameter_range"]


#: Continuation options used unless overridden (y = (t, a_γ, P_γ, p) is O(1/T) at small T, hence
#: a larger max_step than the generic default).
DEFAULT_OPTIONS = ContinuationOptions(step=0.02, max_step=0.25, min_step=1e-7, tol=1e-10)


def continue_solution(problem: LargePProblem, parameter: str, p_from: float, p_to: float, *,
                      method: str = "arclength", progress: Progress | None = None, max_steps: int = 2000,
                      step: float | None = None, follow_constrained: bool = False,
                      resolve_offset: float | None = None, max_traces: int = 24, probe_steps: int = 3,
                      global_check: bool = True, n_points: int = 41,
                      options: ContinuationOptions | None = None, **option_overrides) -> LargePContinuation:
    """Follow the large-P solution of ``problem`` in ``parameter`` from ``p_from`` to ``p_to``.

    Parameters
    ----------
    problem : LargePProblem
        Fixes every parameter except ``parameter`` (whose value in ``problem`` is ignored).
    parameter : str
        "temperature", "sigma_a_bar", "sigma_w" or "rho_r" (fraction of class r, 0-based; the
        other fractions are rescaled proportionally, :meth:`LargePProblem.with_parameter`).
    p_from, p_to : float
        Range of the parameter, p_from ≠ p_to, inside its valid range
        (:func:`parameter_range`: T ≥ 0, σ > 0, ρ_r ∈ (0, 1)).
    method : "arclength" | "natural" | "sequential"
        Continuation of the branch equations (pseudo-arclength or natural parameter, see
        :func:`solvers.continuation.continue_branch`), or independent solves on ``n_points``
        grid values (used automatically for ReLU-like φ, whose condensate the branch system
        does not describe).
    progress : callable(ProgressEvent) -> bool | None
        The progress protocol of :mod:`solvers.progress`: called with the event ("continuation",
        count, total, values) after every accepted point, values ``parameter``, ``branch`` (label),
        ``n_branches``, ``stability``, ``kind``, ``special_points``, ...; returning False stops the
        whole run.
    max_steps, step : continuation steps per branch and initial step size (in y = (x, p)).
    follow_constrained : bool
        Keep following a branch after it stopped being the global solution (to the end of the
        range; special points on it are recorded, not acted on). Default: stop it there.
    resolve_offset : float
        δ of the re-solve past a special point (default 10⁻³·|p_to − p_from|).
    options, **option_overrides : :class:`solvers.continuation.ContinuationOptions` fields.

    Returns a :class:`LargePContinuation`; failures to converge are reported in it
    (``success``, ``message``, ``notes``), invalid input raises :class:`theory.spec.SpecError`.
    """
    start_clock = time.perf_counter()
    parameter, p_from, p_to = _check_inputs(problem, parameter, p_from, p_to, method, n_points)
    opts = _continuation_options(options, option_overrides, max_steps, step)
    nl = problem.phi
    at_from = problem.with_parameter(parameter, p_from)

    def finish(branches, specials, start, success, message, notes, n_pts, n_eval, used_method, status=None):
        residual = max((tr.residual for tr in branches), default=math.nan)
        status = status or ("reached-boundary" if success else "not-converged")
        return LargePContinuation(problem=at_from, parameter=parameter, p_from=p_from, p_to=p_to, method=used_method,
                                  branches=branches, special_points=specials, start=start, converged=success,
                                  status=status, message=message, notes=notes, iterations=n_pts, residual=residual,
                                  time_seconds=time.perf_counter() - start_clock, n_points=n_pts,
                                  n_evaluations=n_eval, options=opts)

    if nl.name == "linear":
        tr, specials = linear_path(problem, parameter, p_from, p_to, n_points, progress)
        return finish([tr], specials, linear_large_p(at_from), True,
                      "linear φ: single branch a = 0 throughout (no symmetry breaking)", [], len(tr), len(tr),
                      "closed-form")
    if method == "sequential" or nl.linear_growth:
        note = [] if method == "sequential" else [
            f"{nl.name}: φ grows linearly, the solution has a condensate on q(t) = 1 that the branch system "
            "does not describe; followed by independent solves (method 'sequential')"]
        tr, specials = sequential_path(problem, parameter, p_from, p_to, n_points, progress,
                                       max(opts.locate_tol, 1e-6 * abs(p_to - p_from)), note)
        ok = tr.success
        return finish([tr], specials, None, ok, "reached the end" if ok else tr.message, note, len(tr), len(tr),
                      "sequential")

    start = solve_large_p(at_from)
    if not (start.converged and start.kind == "global"):
        return finish([], [], start, False, f"no converged solution at {parameter} = {p_from:g}: {start.message}",
                      [], 0, 0, method, "no-solution")
    drv = Driver(problem, parameter, p_from, p_to, method, opts, progress, follow_constrained, resolve_offset,
                 max_traces, probe_steps, global_check)
    drv.run(start)
    success, message = _outcome(drv)
    drv.specials.sort(key=lambda s: ((s.parameter - p_from) * drv.sign, s.branch_index))
    return finish(drv.traces, drv.specials, start, success, message, drv.notes, drv.n_points,
                  sum(e.calls for e in drv.evaluators.values()), method, "stopped" if drv.stopped else None)


def _check_inputs(problem, parameter, p_from, p_to, method, n_points):
    """(canonical parameter, p_from, p_to) after validation; SpecError naming the bad input."""
    if not isinstance(problem, LargePProblem):
        raise TypeError(f"problem must be a LargePProblem (got {type(problem).__name__})")
    parameter = canonical_parameter(parameter, problem.m)
    p_from = check_parameter_value(parameter, "from", p_from, problem.m)
    p_to = check_parameter_value(parameter, "to", p_to, problem.m)
    if p_from == p_to:
        raise SpecError(f"the range of parameter {parameter!r} must not be empty: from = to = {p_from:g} "
                        "(valid: from != to)")
    if method not in ("arclength", "natural", "sequential"):
        raise SpecError(f"method must be 'arclength', 'natural' or 'sequential' (got {method!r})")
    if not (isinstance(n_points, (int, np.integer)) and n_points >= 2):
        raise SpecError(f"n_points must be an integer >= 2 (got {n_points!r})")
    return parameter, p_from, p_to


def _continuation_options(options, option_overrides, max_steps, step) -> ContinuationOptions:
    """``options`` (default :data:`DEFAULT_OPTIONS`) with the overrides, ``max_steps`` and ``step``."""
    base = options if options is not None else DEFAULT_OPTIONS
    overrides = dict(option_overrides)
    overrides["max_steps"] = max_steps
    if step is not None:
        overrides["step"] = float(step)
        overrides.setdefault("max_step", max(base.max_step, float(step)))
        overrides.setdefault("min_step", min(base.min_step, float(step)))
    try:
        return replace(base, **overrides)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"continuation options: {exc}") from None


def _outcome(drv: Driver) -> tuple:
    """(success, message) of a driver run: was the global solution followed to p_to?"""
    p_from, p_to, parameter = drv.p_from, drv.p_to, drv.parameter
    path_end, end_trace = None, None
    for tr in drv.traces:
        if tr.duplicate_of is None and tr.kind and tr.kind[-1] == "global":
            v = tr.parameter[-1]
            if path_end is None or (v - path_end) * drv.sign > 0:
                path_end, end_trace = v, tr
    success = path_end is not None and abs(path_end - p_to) <= 1e-9 * max(1.0, abs(p_to)) and not drv.stopped
    if success:
        return True, f"followed the global solution from {p_from:g} to {p_to:g}"
    if drv.stopped:
        return False, "stopped by the progress callback"
    failed = [s for s in drv.specials if s.action == "failed"]
    message = (f"the global solution was followed only to {parameter} = {path_end}" if path_end is not None
               else "no global point was followed")
    if failed:
        message += "; " + failed[-1].note
    elif drv.notes:
        message += "; " + drv.notes[-1]
    elif end_trace is not None:
        message += f"; trace {end_trace.label}: {end_trace.message}"
    return False, message
