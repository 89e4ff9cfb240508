"""Result records of the large-P continuation (THEORY §4): followed branches, special points, the run.

:class:`LargePBranchTrace` holds the per-point arrays of one followed branch (field t, readouts
a_γ, occupations P_γ, observables f, U, kernel, the free energy and the stability count),
:class:`LargePSpecialPoint` a located special point with its physical reading, and
:class:`LargePContinuation` the whole run with the global path through it;
:func:`trace_from_branch` turns a continued :class:`solvers.continuation.Branch` into a trace.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import math

import numpy as np

from theory.observables import Observables

from solvers.continuation import Branch, ContinuationOptions, SpecialPoint
from solvers.results import Result
from solvers.large_p.solve import LargePSolution, branch_observables, linear_large_p, solve_branches
from solvers.large_p.problem import LargePProblem
from solvers.large_p.report import continuation_table
from solvers.large_p.stability import BranchEvaluator, count_occupied

__all__ = ["LargePBranchTrace", "LargePSpecialPoint", "LargePContinuation", "trace_from_branch"]


def _plain(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


@dataclass(frozen=True, kw_only=True)
class LargePBranchTrace(Result):
    """One followed branch: per-point arrays along the parameter (k points, n branches a_γ, m classes).

    ``kind[i]`` is "global" (stability 0: the minimiser of G∞), "constrained",
    or "linear-gaussian" (linear φ). ``n_occupied`` counts distinct occupied
    readouts with mirror images separately ({a, −a} counts 2 for odd φ);
    ``n_branches`` is the size n of the branch system (mirror orbits).
    ``free_energy`` is S(a_1) − Σ_c ρ_c t_cc + (T/2) Σ_c ρ_c ||t_c||², which
    equals G∞ where the point is global. ``duplicate_of`` is the index of the
    trace this one is a symmetry image of (then ``symmetry_action`` names the
    action index of :func:`symmetry_group`).

    The result protocol (:class:`solvers.results.Result`): ``converged`` means the trace reached the
    end of the parameter range (``status`` "reached-boundary"; else "left-global", "probe",
    "stopped", "min-step", "max-steps", "boundary-failed", "not-converged"), ``iterations`` counts
    its points after the first, ``residual`` is the largest max|F| (``residuals`` holds the
    per-point values, the JSON key "residual"), ``observables()`` the observables at its last
    point. ``success`` is a read-only alias of ``converged``.
    """

    label: str
    n_branches: int
    parameter: np.ndarray  # (k,)
    t: np.ndarray  # (k, m, m)
    a: np.ndarray  # (k, n, m)
    occupation: np.ndarray  # (k, n)
    f: np.ndarray  # (k, m, m), [c, r]
    U: np.ndarray  # (k, m, m)
    kernel_diagonal: np.ndarray  # (k, m)
    kernel_blocks: np.ndarray  # (k, m, m)
    free_energy: np.ndarray  # (k,)
    n_occupied: np.ndarray  # (k,)
    stability: np.ndarray  # (k,)
    hessian_max: np.ndarray  # (k,) largest eigenvalue of ∇²_a S over the branches
    kind: list
    arclength: np.ndarray
    residuals: np.ndarray  # (k,) max|F| at each point
    origin: dict = field(default_factory=dict)
    duplicate_of: int | None = None
    symmetry_action: int | None = None
    raw: Branch | None = None  # the generic continuation record (not in JSON)
    special: list = field(default_factory=list)  # per point: "" or the kind of an inserted special point

    @property
    def success(self) -> bool:
        return self.converged

    def observables(self) -> Observables:
        """f, U and the kernel at the last point of the trace."""
        return Observables(outputs=self.f[-1], readout_moment=self.U[-1], kernel_diagonal=self.kernel_diagonal[-1],
                           kernel_blocks=self.kernel_blocks[-1])

    def __len__(self) -> int:
        return len(self.parameter)

    def to_json(self) -> dict:
        keys = ("label", "n_branches", "parameter", "t", "a", "occupation", "f", "U", "kernel_diagonal",
                "kernel_blocks", "free_energy", "n_occupied", "stability", "hessian_max", "kind", "arclength",
                "residuals", "special", "status", "message", "origin", "duplicate_of", "symmetry_action")
        out = {**_plain(self.result_json()), **{k: _plain(getattr(self, k)) for k in keys}}
        out["residual"] = out.pop("residuals")  # the per-point values keep their JSON key
        out["P"] = out["occupation"]  # short aliases
        return out


@dataclass
class LargePSpecialPoint:
    """A located special point with its physical reading.

    ``parameter`` is the located value and ``bracket`` = (lo, hi) the
    parameter values at the ends of the final bisection interval (the point
    lies inside it); ``bracket_arclength`` the same interval in arclength.
    ``action``: "switched" (new branches followed from here), "re-solved"
    (solve_large_p at ``resolved_at`` just past the point, continued with the
    new n), "recorded" (nothing to do: the branch was already constrained, or
    the global solution is unchanged), or "failed" (see ``note``).
    """

    kind: str
    parameter: float
    bracket: tuple
    bracket_arclength: tuple
    width: float
    converged: bool
    residual: float
    branch: str
    branch_index: int
    description: str
    n_occupied_before: int
    n_occupied_after: int
    n_branches_before: int
    n_branches_after: int
    stability_before: int
    stability_after: int
    action: str = "recorded"
    children: list = field(default_factory=list)
    resolved_at: float | None = None
    unstable_directions: list = field(default_factory=list)
    classes: list = field(default_factory=list)
    formula: dict | None = None
    note: str = ""
    state: dict = field(default_factory=dict)  # t, a_γ, P_γ at the point
    point: SpecialPoint | None = None  # the located point of the continued branch (None: located by solves)

    @property
    def index(self) -> int | None:
        return None if self.point is None else self.point.index

    @property
    def tangent(self) -> np.ndarray | None:
        return None if self.point is None else self.point.tangent

    @property
    def kernel_dimension(self) -> int | None:
        return None if self.point is None else self.point.kernel_dimension

    @property
    def status(self) -> str:
        return "converged" if self.converged else "not-converged"

    def to_json(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "point"}
        return _plain({**out, "index": self.index, "kernel_dimension": self.kernel_dimension, "status": self.status})


@dataclass(frozen=True, kw_only=True)
class LargePContinuation(Result):
    """Result of :func:`continue_solution`: followed branches, special points, the global path.

    The result protocol (:class:`solvers.results.Result`): ``converged`` means the global solution
    was followed from ``p_from`` to ``p_to`` (``status`` "reached-boundary"; else "stopped",
    "no-solution" at the start, or "not-converged"); ``iterations`` counts the accepted
    continuation points (``n_points``), ``residual`` is the largest max|F| over all traces,
    ``observables()`` the global solution's observables at the end of the global path.
    ``success`` is a read-only alias of ``converged``.
    """

    problem: LargePProblem
    parameter: str
    p_from: float
    p_to: float
    method: str
    branches: list
    special_points: list
    start: LargePSolution | None
    notes: list
    n_points: int  # accepted continuation points (all branches, bisection points excluded)
    n_evaluations: int  # stability evaluations, bisection included
    options: ContinuationOptions | None = None

    @property
    def success(self) -> bool:
        return self.converged

    def observables(self) -> Observables:
        """f, U and the kernel of the global solution at the end of the global path."""
        path = self.global_path()
        if not len(path["parameter"]):
            raise ValueError("the continuation has no global point")
        return Observables(outputs=path["f"][-1], readout_moment=path["U"][-1],
                           kernel_diagonal=path["kernel_diagonal"][-1], kernel_blocks=path["kernel_blocks"][-1])

    @property
    def global_branches(self) -> list:
        return [b for b in self.branches if b.duplicate_of is None]

    def global_path(self) -> dict:
        """The global solution along the parameter: the global points of all distinct branches, ordered
        from ``p_from`` to ``p_to`` (arrays ``parameter``, ``f``, ``U``, ``kernel_diagonal``,
        ``kernel_blocks``, ``free_energy``, ``n_occupied``, ``n_branches``, and ``branch`` (trace index),
        ``index`` (point index in it))."""
        rows = []
        for bi, b in enumerate(self.branches):
            if b.duplicate_of is not None:
                continue
            for i, k in enumerate(b.kind):
                if k in ("global", "linear-gaussian"):
                    rows.append((b.parameter[i], bi, i))
        sign = 1.0 if self.p_to > self.p_from else -1.0
        rows.sort(key=lambda r: (sign * r[0], r[1]))
        out = {"parameter": np.array([r[0] for r in rows]), "branch": np.array([r[1] for r in rows], dtype=int),
               "index": np.array([r[2] for r in rows], dtype=int)}
        for key in ("f", "U", "kernel_diagonal", "kernel_blocks", "free_energy", "n_occupied"):
            out[key] = np.array([getattr(self.branches[b], key)[i] for _, b, i in rows])
        out["n_branches"] = np.array([self.branches[b].n_branches for _, b, _ in rows], dtype=int)
        return out

    def solution_at(self, value: float, **kwargs) -> LargePSolution:
        """The solution at parameter ``value``: Newton on the branch equations
        (:func:`solvers.large_p.solve.solve_branches`) from the nearest global point of the continuation
        (for linear φ the closed form). ``kind`` of the result says whether it is global."""
        prob = self.problem.with_parameter(self.parameter, value)
        if self.problem.nonlinearity == "linear":
            return linear_large_p(prob)
        path = self.global_path()
        if not len(path["parameter"]):
            raise ValueError("the continuation has no global point")
        i = int(np.argmin(np.abs(path["parameter"] - float(value))))
        b = self.branches[path["branch"][i]]
        j = path["index"][i]
        return solve_branches(prob, b.t[j], b.a[j], b.occupation[j], **kwargs)

    def to_json(self) -> dict:
        path = self.global_path()
        return _plain({
            **self.result_json(),
            "problem": self.problem.to_dict(), "parameter": self.parameter, "from": self.p_from, "to": self.p_to,
            "method": self.method, "success": self.success, "message": self.message, "notes": self.notes,
            "time_seconds": self.time_seconds, "n_points": self.n_points, "n_evaluations": self.n_evaluations,
            "start": None if self.start is None else {"kind": self.start.kind, "n_branches": self.start.n_branches,
                                                      "converged": self.start.converged,
                                                      "message": self.start.message},
            "special_points": [s.to_json() for s in self.special_points],
            "branches": [b.to_json() for b in self.branches],
            "global_path": path,
        })

    def table(self) -> str:
        """Human-readable summary: special points, then the global path at up to 12 parameter values."""
        return continuation_table(self)


def trace_from_branch(ev: BranchEvaluator, br: Branch, label: str, origin: dict, status=None, message=None):
    """Per-point arrays of a traced branch. The located special points where the branch stops being
    global are inserted (in arclength order) as the last global point of their segment (``special``
    names the kind there), so that the global solution is drawn up to the transition itself."""
    system = ev.system
    m, n = system.m, system.n
    pts = [(float(br.arclength[i]), float(br.p[i]), br.x[i], int(br.stability[i]), float(br.residual_norm[i]), "")
           for i in range(len(br.p))]
    for sp in br.special_points:
        if sp.stability_before == 0 and sp.stability_after > 0 and sp.kind != "fold":
            pts.append((float(sp.arclength), float(sp.p), sp.x, 0, float(sp.residual_norm), sp.kind))
    pts.sort(key=lambda q: q[0])
    k = len(pts)
    T = np.empty((k, m, m))
    A = np.empty((k, n, m))
    P = np.empty((k, n))
    f, U, kb = np.empty((k, m, m)), np.empty((k, m, m)), np.empty((k, m, m))
    kd, G, nocc, hmax = np.empty((k, m)), np.empty(k), np.empty(k, dtype=int), np.empty(k)
    for i, (_, p, x, _, _, _) in enumerate(pts):
        prob = system.problem_at(p)
        t, a, pp = system.unpack(x)
        T[i], A[i], P[i] = t, a, pp
        obs = branch_observables(prob, t, a, pp)
        f[i], U[i], kd[i], kb[i] = obs.outputs, obs.readout_moment, obs.kernel_diagonal, obs.kernel_blocks
        S, _, H = prob.action(a, t)
        G[i] = prob.free_energy(t, float(S[0]))
        nocc[i] = count_occupied(a, pp, ev.odd)
        hmax[i] = float(np.max(np.linalg.eigvalsh(H)))
    stab = np.array([q[3] for q in pts], dtype=int)
    kind = ["global" if s == 0 else "constrained" for s in stab]
    residuals = np.array([q[4] for q in pts])
    status = status or br.status
    return LargePBranchTrace(converged=status == "reached-boundary", status=status, iterations=k - 1,
                             residual=float(np.max(residuals)), time_seconds=br.time_seconds, label=label, n_branches=n, parameter=np.array([q[1] for q in pts]), t=T, a=A,
                             occupation=P, f=f, U=U, kernel_diagonal=kd, kernel_blocks=kb, free_energy=G,
                             n_occupied=nocc, stability=stab, hessian_max=hmax, kind=kind,
                             arclength=np.array([q[0] for q in pts]), residuals=residuals,
                             message=message or br.message, origin=origin, raw=br,
                             special=[q[5] for q in pts])
