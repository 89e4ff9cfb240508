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
stability count at every point (x, p) = (t, a_γ, P_γ; p):

    stability = Σ_γ #{eigenvalues of ∇²_a S(a_γ; t) > 0}      (a_γ not a local maximum of S)
              + #{γ : P_γ < 0}                                   (an occupation turned negative)
              + [some local maximum of S lies above S(a_γ)]      (the branches are no longer global)

(the last term is 1 whenever one of the first two is nonzero: a saddle of S
is never its global maximum). stability = 0 means the continued solution is
the minimiser of the convex dual G∞ (kind "global"); otherwise it is a
"constrained" stationary point of G∞ restricted to those n branches. The
global check runs :func:`~solvers.large_p.maxima.maximise_action` with its
full multi-start set at every 4th evaluation and, in between, an ascent from
the maxima found last (they move continuously with (t, p)); a competing
maximum is therefore caught unless it is born and overtakes the occupied
ones within a few points.

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
the ψ table for every σ_1 and is slow (about 100 s for σ_1 from 0.5 to 2).

Linear φ (:func:`solvers.large_p.solve.linear_large_p`): S is quadratic with the
single maximum a = 0, so there is no symmetry breaking; the closed form is
evaluated along the parameter, and the one event recorded is the onset of
the O(1) Gaussian readout variance along e_c where the domain constraint
starts to bind, σ̄_a σ_1 √ρ_c = T (kind ``"domain-boundary"``).

Linearly growing φ (ReLU): the solution carries a condensate on the domain
boundary q(t) = 1 (:mod:`solvers.large_p.condensate`), which the n-branch
system does not describe; these are followed by ``method="sequential"``:
independent :func:`solve_large_p` solves on a grid (warm-started with the
previous field), with changes of the structure (number of branches and
condensate directions) located by bisection of solves.

Symmetries (:func:`symmetry_group`) act on the packed x consistently:
for odd φ the sign of each a_γ (a branch stands for its mirror orbit);
permutations of the branches γ (a_γ and P_γ together); permutations π of
classes with equal ρ (not the class r varied by ``rho_r``):
t → Π t Πᵀ (rows and columns), a_γ → Π a_γ.

References: van Meegen & Sompolinsky, Nat. Commun. 16, 3354 (2025);
THEORY §4; continuation and branch switching as in H. B. Keller (1977) and
Yu. A. Kuznetsov, Elements of Applied Bifurcation Theory, ch. 10.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
import math
import time
from typing import Callable

import numpy as np

from theory.spec import SpecError

from solvers.continuation import (Branch, ContinuationOptions, SymmetryGroup, branches_equivalent, continue_branch,
                           switch_branch)
from solvers.large_p.solve import LargePSolution, branch_observables, linear_large_p, solve_branches, solve_large_p
from solvers.large_p.branches import BranchSystem, branch_system
from solvers.large_p.maxima import maximise_action
from solvers.large_p.problem import LargePProblem, parameter_name, phi_second_moment

__all__ = ["continue_solution", "LargePContinuation", "LargePBranchTrace", "LargePSpecialPoint",
           "symmetry_group", "canonical_parameter", "parameter_range"]

#: Continuation options used unless overridden (y = (t, a_γ, P_γ, p) is O(1/T) at small T, hence
#: a larger max_step than the generic default).
DEFAULT_OPTIONS = ContinuationOptions(step=0.02, max_step=0.25, min_step=1e-7, tol=1e-10)
EIG_TOL = 1e-12  # eigenvalue of ∇²_a S counted positive above EIG_TOL·(1/σ̄_a² + max|eigenvalue|)
OCC_TOL = 1e-9  # occupation counted negative below −OCC_TOL, occupied above +OCC_TOL
GLOBAL_TOL = 1e-9  # relative tolerance on S for "global maximum" (as solve_large_p)


# ---------------------------------------------------------------------- parameters
def canonical_parameter(parameter: str, m: int) -> str:
    """"temperature", "sigma_a_bar", "sigma_w" or "rho_r" (aliases T, sigma_a, sigma_1 accepted)."""
    kind, r = parameter_name(parameter, m)
    return f"rho_{r}" if kind == "rho" else kind


def parameter_range(parameter: str, m: int) -> tuple:
    """(lo, hi, text) of the valid values of ``parameter`` along a continuation."""
    kind, r = parameter_name(parameter, m)
    if kind == "temperature":
        return 0.0, math.inf, "[0, inf)"
    if kind == "rho":
        return 0.0, 1.0, "(0, 1)"
    return 0.0, math.inf, "(0, inf)"


def _check_value(parameter, name, value, m):
    lo, hi, text = parameter_range(parameter, m)
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SpecError(f"{name} value of parameter {parameter!r} must be a number in {text} (got {value!r})") from None
    closed_lo = text.startswith("[")
    if not math.isfinite(v) or v > hi or v < lo or (v == lo and not closed_lo) or (v == hi and hi < math.inf):
        raise SpecError(f"{name} value of parameter {parameter!r} must be in {text} (got {value!r})")
    return v


# ---------------------------------------------------------------------- symmetry
def symmetry_group(problem: LargePProblem, n: int, parameter: str = "temperature",
                   max_order: int = 4096) -> SymmetryGroup:
    """The symmetry group of the n-branch system as signed permutations of the packed x.

    Generators (see the module docstring): for odd φ the sign flip of each
    a_γ; transpositions of neighbouring branches (a_γ, P_γ); transpositions of
    classes with equal ρ (excluding the class varied by ``rho_r``), acting as
    t → Π t Πᵀ, a_γ → Π a_γ. The group is closed by composition; if its order
    would exceed ``max_order`` the branch permutations are left out (then
    branch-permuted copies are not identified, which only costs duplicate
    work). ``group.order_note`` says what was included.
    """
    m = problem.m
    d = m * m + n * m + n
    kind, rvar = parameter_name(parameter, m)
    ident = np.arange(d)
    flips, bperms, cperms = [], [], []
    if problem.phi.odd:
        for g in range(n):
            s = np.ones(d)
            s[m * m + g * m:m * m + (g + 1) * m] = -1.0
            flips.append((ident.copy(), s))
    for g in range(n - 1):
        p = ident.copy()
        for r in range(m):
            i, j = m * m + g * m + r, m * m + (g + 1) * m + r
            p[i], p[j] = j, i
        i, j = m * m + n * m + g, m * m + n * m + g + 1
        p[i], p[j] = j, i
        bperms.append((p, np.ones(d)))
    rho = problem.rho
    classes = [c for c in range(m) if not (kind == "rho" and c == rvar)]
    for i, c in enumerate(classes):
        for c2 in classes[i + 1:]:
            if abs(rho[c] - rho[c2]) <= 1e-12 * max(rho[c], rho[c2]):
                pi = np.arange(m)
                pi[c], pi[c2] = c2, c
                p = ident.copy()
                for a in range(m):
                    for b in range(m):
                        p[a * m + b] = pi[a] * m + pi[b]
                for g in range(n):
                    for r in range(m):
                        p[m * m + g * m + r] = m * m + g * m + pi[r]
                cperms.append((p, np.ones(d)))
    n_class = math.factorial(len(classes))  # upper bound of the class part
    est = (2 ** n if flips else 1) * math.factorial(n) * n_class
    note = "mirror flips per branch, branch permutations, equal-fraction class permutations"
    gens = flips + bperms + cperms
    if est > max_order:
        gens = flips + cperms
        note = "mirror flips per branch and equal-fraction class permutations (branch permutations left out: order)"
    elements = [(ident.copy(), np.ones(d))]
    seen = {(ident.tobytes(), np.ones(d).tobytes())}
    k = 0
    while k < len(elements):
        p1, s1 = elements[k]
        for p2, s2 in gens:
            p, s = p1[p2], s2 * s1[p2]  # x → s2·(s1·x[p1])[p2]
            key = (p.tobytes(), s.tobytes())
            if key not in seen:
                if len(elements) >= max_order:
                    raise ValueError(f"symmetry group order exceeds max_order={max_order}")
                seen.add(key)
                elements.append((p, s))
        k += 1
    group = SymmetryGroup([(lambda x, p=p, s=s: s * np.asarray(x, dtype=np.float64)[p]) for p, s in elements],
                          include_identity=False)
    group.signed_permutations = elements
    group.order_note = note
    return group


# ---------------------------------------------------------------------- results
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


@dataclass
class LargePBranchTrace:
    """One followed branch: per-point arrays along the parameter (k points, n branches a_γ, m classes).

    ``kind[i]`` is "global" (stability 0: the minimiser of G∞), "constrained",
    or "linear-gaussian" (linear φ). ``n_occupied`` counts distinct occupied
    readouts with mirror images separately ({a, −a} counts 2 for odd φ);
    ``n_branches`` is the size n of the branch system (mirror orbits).
    ``free_energy`` is S(a_1) − Σ_c ρ_c t_cc + (T/2) Σ_c ρ_c ||t_c||², which
    equals G∞ where the point is global. ``duplicate_of`` is the index of the
    trace this one is a symmetry image of (then ``symmetry_action`` names the
    action index of :func:`symmetry_group`).
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
    residual: np.ndarray
    status: str
    message: str
    origin: dict = field(default_factory=dict)
    duplicate_of: int | None = None
    symmetry_action: int | None = None
    raw: Branch | None = None  # the generic continuation record (not in JSON)
    special: list = field(default_factory=list)  # per point: "" or the kind of an inserted special point

    @property
    def success(self) -> bool:
        return self.status == "reached-boundary"

    def __len__(self) -> int:
        return len(self.parameter)

    def to_json(self) -> dict:
        keys = ("label", "n_branches", "parameter", "t", "a", "occupation", "f", "U", "kernel_diagonal",
                "kernel_blocks", "free_energy", "n_occupied", "stability", "hessian_max", "kind", "arclength",
                "residual", "special", "status", "message", "origin", "duplicate_of", "symmetry_action")
        out = {k: _plain(getattr(self, k)) for k in keys}
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

    def to_json(self) -> dict:
        return _plain({k: getattr(self, k) for k in self.__dataclass_fields__})


@dataclass
class LargePContinuation:
    """Result of :func:`continue_solution`: followed branches, special points, the global path.

    ``success``: the global solution was followed from ``p_from`` to ``p_to``.
    """

    problem: LargePProblem
    parameter: str
    p_from: float
    p_to: float
    method: str
    branches: list
    special_points: list
    start: LargePSolution | None
    success: bool
    message: str
    notes: list
    time_seconds: float
    n_points: int  # accepted continuation points (all branches, bisection points excluded)
    n_evaluations: int  # stability evaluations, bisection included
    options: ContinuationOptions | None = None

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
        lines = [f"continuation of the large-P solution in {self.parameter} from {self.p_from:g} to {self.p_to:g} "
                 f"({self.problem.nonlinearity}, ρ = {[round(float(r), 6) for r in self.problem.rho]}, "
                 f"σ_1 = {self.problem.sigma_w:g}, σ̄_a = {self.problem.sigma_a_bar:g}, T = {self.problem.temperature:g})",
                 f"  {len(self.branches)} branch trace(s), {self.n_points} points, {self.time_seconds:.2f} s; "
                 f"{'reached the end' if self.success else 'NOT COMPLETE: ' + self.message}"]
        lines.append("  special points:")
        if not self.special_points:
            lines.append("    none")
        for s in self.special_points:
            lines.append(f"    {s.kind:17s} {self.parameter} = {s.parameter:.8f}  bracket [{s.bracket[0]:.10f}, "
                         f"{s.bracket[1]:.10f}]  occupied {s.n_occupied_before} -> {s.n_occupied_after}  "
                         f"({s.action}, branch {s.branch})")
            lines.append(f"      {s.description}")
        path = self.global_path()
        k = len(path["parameter"])
        m = self.problem.m
        if k:
            lines.append(f"  global solution ({k} points):")
            lines.append(f"    {self.parameter:>12s} " + " ".join(f"f_{c}{c}".rjust(9) for c in range(m)) + " "
                         + " ".join(f"U_{c}{c}".rjust(9) for c in range(m)) + "  n_occ        G∞")
            for i in np.unique(np.linspace(0, k - 1, min(k, 12)).round().astype(int)):
                lines.append(f"    {path['parameter'][i]:12.6f} "
                             + " ".join(f"{path['f'][i][c, c]:9.5f}" for c in range(m)) + " "
                             + " ".join(f"{path['U'][i][c, c]:9.5f}" for c in range(m))
                             + f"  {path['n_occupied'][i]:5d} {path['free_energy'][i]:9.5f}")
        return "\n".join(lines)


# ---------------------------------------------------------------------- physical stability
def _eig_threshold(prob, w) -> float:
    """Eigenvalues of ∇²_a S above this count as positive (rounding level of the Hessian)."""
    return EIG_TOL * (1.0 / prob.sigma_a_bar**2 + float(np.max(np.abs(w))))


def _distinct(points, limit: int, tol: float = 1e-4) -> np.ndarray:
    """The first ``limit`` rows of ``points`` (best first) that differ by more than tol·(1 + |a|)."""
    out = []
    for a in points:
        if all(np.linalg.norm(a - b) > tol * (1.0 + np.linalg.norm(b)) for b in out):
            out.append(a)
            if len(out) >= limit:
                break
    return np.array(out).reshape(-1, points.shape[1] if np.ndim(points) == 2 else 0)


class _Evaluator:
    """Stability of (x, p) for an n-branch system: Hessian signs, negative occupations, global check."""

    def __init__(self, system: BranchSystem, *, global_check: bool = True, n_random: int = 8,
                 full_every: int = 4):
        self.system = system
        self.odd = system.problem.phi.odd
        self.global_check = global_check
        self.n_random = n_random
        self.full_every = max(1, int(full_every))
        self.known = None  # local maxima of S found by the last search (tracked between full searches)
        self.searches = 0
        self.cache = {}
        self.calls = 0

    def _maxima(self, prob, t, A):
        """Local maxima of S(·; t): every ``full_every``-th call the full multi-start search of
        :func:`maximise_action` (deterministic set + ``n_random`` random starts + warm starts), in between
        an ascent from the tracked maxima of the last search and the branches only (the maxima move
        continuously with (t, p); a new one is picked up by the next full search)."""
        warm = np.concatenate([A, -A]) if self.odd else A
        if self.known is not None and len(self.known):
            warm = np.concatenate([warm, self.known] + ([-self.known] if self.odd else []))
        warm = _distinct(warm, 4 * len(warm) + 1)
        full = self.known is None or self.searches % self.full_every == 0
        self.searches += 1
        if full:
            mx = maximise_action(prob, t, warm=warm, n_random=self.n_random, seed=0, global_tol=GLOBAL_TOL)
        else:
            mx = maximise_action(prob, t, starts=np.concatenate([warm, np.zeros((1, A.shape[1]))]),
                                 global_tol=GLOBAL_TOL)
        self.known = _distinct(mx.points(), 24)
        return mx

    def residual(self, x, p):
        """F(x, p); NaN outside the valid parameter range (the continuation then rejects the step)."""
        try:
            return self.system.residual(x, p)
        except SpecError:
            return np.full(self.system.size, np.nan)

    def jacobian(self, x, p):
        try:
            return self.system.jacobian(x, p)
        except SpecError:
            d = self.system.size
            return np.full((d, d), np.nan), np.full(d, np.nan)

    def details(self, x, p) -> dict:
        x = np.asarray(x, dtype=np.float64)
        key = (x.tobytes(), float(p))
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        self.calls += 1
        prob = self.system.problem_at(float(p))
        t, A, P = self.system.unpack(x)
        S, _, H = prob.action(A, t)
        w, V = np.linalg.eigh(H)
        thr = _eig_threshold(prob, w)
        n_pos = (w > thr).sum(axis=1)
        neg = P < -OCC_TOL
        unstable = int(n_pos.sum() + neg.sum())
        higher, best = unstable > 0, None
        if not higher and self.global_check:
            try:
                mx = self._maxima(prob, t, A)
                s_ref = float(np.max(S))
                if mx.value > s_ref + GLOBAL_TOL * (1.0 + abs(s_ref)) or mx.unbounded:
                    higher, best = True, (mx.best.a.copy(), mx.best.value, bool(mx.unbounded))
            except RuntimeError:  # no maximum found at all: S unbounded above
                higher, best = True, (None, math.inf, True)
        out = {"t": t, "A": A, "P": P, "S": S, "w": w, "V": V, "n_pos": n_pos, "negative": neg,
               "higher": bool(higher), "higher_found": best is not None, "best": best,
               "stability": unstable + int(higher), "problem": prob}
        if len(self.cache) > 20000:
            self.cache.clear()
        self.cache[key] = out
        return out

    def stability(self, x, p) -> int:
        return self.details(x, p)["stability"]


def _n_occupied(A, P, odd, tol=1e-7) -> int:
    """Distinct occupied readouts, mirror images counted separately."""
    pts = []
    for a, p in zip(A, P):
        if p <= OCC_TOL:
            continue
        for b in ([a, -a] if odd else [a]):
            if not any(np.linalg.norm(b - c) <= tol * (1.0 + np.linalg.norm(c)) for c in pts):
                pts.append(b)
    return len(pts)


def _trace_from_branch(ev: _Evaluator, br: Branch, label: str, origin: dict, status=None, message=None):
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
        nocc[i] = _n_occupied(a, pp, ev.odd)
        hmax[i] = float(np.max(np.linalg.eigvalsh(H)))
    stab = np.array([q[3] for q in pts], dtype=int)
    kind = ["global" if s == 0 else "constrained" for s in stab]
    return LargePBranchTrace(label=label, n_branches=n, parameter=np.array([q[1] for q in pts]), t=T, a=A,
                             occupation=P, f=f, U=U, kernel_diagonal=kd, kernel_blocks=kb, free_energy=G,
                             n_occupied=nocc, stability=stab, hessian_max=hmax, kind=kind,
                             arclength=np.array([q[0] for q in pts]), residual=np.array([q[4] for q in pts]),
                             status=status or br.status, message=message or br.message, origin=origin, raw=br,
                             special=[q[5] for q in pts])


# ---------------------------------------------------------------------- descriptions
def _vec(v, digits=3) -> str:
    v = np.where(np.abs(v) < 0.5 * 10.0**-digits, 0.0, v)
    return "(" + ", ".join(f"{x:.{digits}g}" for x in v) + ")"


def _branch_text(a, n, odd) -> str:
    if np.linalg.norm(a) < 1e-7:
        return "symmetric branch a = 0" if n == 1 else "branch a = 0"
    return f"branch {'±' if odd else ''}a = {_vec(a)}"


def _closest_readouts(A, P, odd, scale):
    """(distance / scale, text) of the closest pair of occupied readouts, mirror images included (for
    odd φ, a_γ and −a_γ merge at a = 0); (inf, "") if there is no pair."""
    pts = [(g, 1, a) for g, a in enumerate(A) if P[g] > OCC_TOL]
    if odd:
        pts += [(g, -1, -a) for g, a, in enumerate(A) if P[g] > OCC_TOL]
    scale = max(scale, 1e-300)
    best, text = math.inf, ""
    for i in range(len(pts)):
        for j in range(i + 1, len(pts)):
            (g, s1, a), (h, s2, b) = pts[i], pts[j]
            if g == h and s1 == s2:
                continue
            d = float(np.linalg.norm(a - b)) / scale
            if d < best:
                best = d
                text = (f"the mirror images ±a_{g} merge at a = 0" if g == h else
                        f"readouts a_{g} and {'−' if s1 * s2 < 0 else ''}a_{h} merge")
    return best, text


def _formula(problem: LargePProblem, parameter: str, r: int, p_star: float) -> dict | None:
    """Value of the parameter where σ̄_a² ρ_r E[φ²] = T² (odd φ; the class-r instability of THEORY §4)."""
    if not problem.phi.odd or problem.nonlinearity == "linear":
        return None

    def g(p):
        pr = problem.with_parameter(parameter, p)
        return pr.sigma_a_bar**2 * pr.rho[r] * phi_second_moment(pr.nonlinearity, pr.sigma_w) - pr.temperature**2

    lo_b, hi_b, _ = parameter_range(parameter, problem.m)
    lo, hi = p_star * (1 - 1e-3), p_star * (1 + 1e-3)
    for _ in range(12):
        lo_c, hi_c = max(lo, lo_b + 1e-12), min(hi, hi_b - 1e-12) if math.isfinite(hi_b) else hi
        try:
            if g(lo_c) * g(hi_c) <= 0:
                from scipy.optimize import brentq
                v = brentq(g, lo_c, hi_c, xtol=1e-15, rtol=4 * np.finfo(float).eps)
                return {"class": int(r), "value": float(v),
                        "expression": "σ̄_a² ρ_r E[φ(h)²] = T²  (T_c,r = σ̄_a (ρ_r E[φ²])^{1/2})"}
        except SpecError:
            return None
        lo, hi = p_star - 2 * (p_star - lo), p_star + 2 * (hi - p_star)
    return None


def _describe(ev: _Evaluator, sp, br: Branch, parameter: str, problem: LargePProblem) -> dict:
    """Physical reading of a special point: description, unstable directions, classes, formula value."""
    n = ev.system.n
    i0 = max(0, min(sp.index, len(br.p) - 2))
    before = ev.details(br.x[i0], br.p[i0])
    after = ev.details(br.x[i0 + 1], br.p[i0 + 1])
    at = ev.details(sp.x, sp.p)
    A = before["A"]  # the branch as it was just before the point (the located point may sit off it)
    texts, dirs, classes, formula = [], [], set(), None
    groups = {}  # (gained, where) -> branch descriptions: branches that change alike are described once
    for g in range(n):
        gained = int(after["n_pos"][g]) - int(before["n_pos"][g])
        if gained == 0:
            continue
        # the eigenvalues that cross: the |gained| ones closest to zero at the located point
        V = at["V"][g][:, np.sort(np.argsort(np.abs(at["w"][g]))[:abs(gained)])]
        proj = np.einsum("rk,rk->r", V, V)
        cls = [int(c) for c in np.flatnonzero(proj > 0.25)]
        classes.update(cls)
        for j in range(V.shape[1]):
            dirs.append(V[:, j])
        cl = f"class{'es' if len(cls) > 1 else ''} {', '.join(map(str, cls))}"
        v = V[:, 0] * np.sign(V[np.argmax(np.abs(V[:, 0])), 0])  # sign fixed: largest component > 0
        where = (f"direction {_vec(v)} ({cl})" if V.shape[1] == 1
                 else f"{V.shape[1]} directions (spanning {cl})")
        groups.setdefault((gained, where, bool(np.linalg.norm(A[g]) < 1e-7)), []).append(
            _branch_text(A[g], n, ev.odd))
        if ev.odd and problem.nonlinearity != "linear":
            for c in cls:
                if np.all(np.abs(A[:, c]) < 1e-6 * (1.0 + np.max(np.abs(A)))):
                    formula = formula or _formula(problem, parameter, c, float(sp.p))
    for (gained, where, at_zero), descs in groups.items():
        desc = descs[0] if len(descs) == 1 else f"all {len(descs)} branches ({'; '.join(descs)})"
        verb = "loses" if len(descs) == 1 else "lose"
        k = abs(gained)
        if gained > 0:
            if sp.kind == "branch-point" and ev.odd and at_zero:
                texts.append(f"{desc} {verb} stability in {where}: pitchfork to codes ±")
            elif sp.kind == "branch-point":
                texts.append(f"{desc} {verb} stability in {where}: branch point, symmetry-broken branches "
                             "of the n-branch system cross here")
            else:
                texts.append(f"{desc} stop{'s' if len(descs) == 1 else ''} being a local maximum of S in {where}: "
                             f"each such readout splits into {2 ** k}"
                             + (" (equal-fraction classes break together)" if k > 1 else ""))
        else:
            texts.append(f"{desc} become{'s' if len(descs) == 1 else ''} a local maximum of S again in {where}")
    for g in np.flatnonzero(before["negative"] != after["negative"]):
        texts.append(f"occupation P_{g} of {_branch_text(A[g], n, ev.odd)} crosses 0: the branch "
                     + ("empties" if after["negative"][g] else "fills again"))
    if before["higher_found"] != after["higher_found"]:
        best = (after if after["higher_found"] else before)["best"]
        other = "" if best is None or best[0] is None else f" at a = {_vec(best[0])}"
        texts.append(f"another local maximum of S{other} " + ("becomes higher than" if after["higher_found"] else
                     "falls below") + " the occupied branches: first-order change of the code")
    m = ev.system.m
    scale = float(np.max(np.linalg.norm(np.asarray(br.x)[:, m * m:m * m + n * m].reshape(len(br.p), n, m), axis=2)))
    gap, pair = _closest_readouts(A, before["P"], ev.odd, scale)
    gap_at, _ = _closest_readouts(at["A"], at["P"], ev.odd, scale)
    merging = min(gap, gap_at) < 0.1
    if sp.kind == "fold":
        texts.insert(0, f"fold: the {n}-branch solution turns back in {parameter}"
                     + (f" where {pair} (relative distance {gap:.2g} just before): the reverse of a split, "
                        "the number of occupied readouts drops" if merging else ""))
    elif sp.kind == "branch-point" and merging and not texts:
        texts.append(f"branch point where {pair}: with coinciding readouts the {n}-branch system has a family "
                     "of degenerate solutions (occupations undetermined); part of the merge")
    if not texts:
        texts.append(f"{sp.kind} of the {n}-branch system (stability {sp.stability_before} -> {sp.stability_after})")
    return {"description": "; ".join(texts), "unstable_directions": [d.tolist() for d in dirs],
            "classes": sorted(classes), "formula": formula,
            "state": {"t": at["t"], "a": A, "P": at["P"]},
            "n_occupied_before": _n_occupied(before["A"], before["P"], ev.odd),
            "n_occupied_after": _n_occupied(after["A"], after["P"], ev.odd)}


# ---------------------------------------------------------------------- the driver
class _Driver:
    def __init__(self, problem, parameter, p_from, p_to, method, options, progress, follow_constrained,
                 resolve_offset, max_traces, probe_steps, global_check):
        self.problem, self.parameter, self.p_from, self.p_to = problem, parameter, p_from, p_to
        self.method, self.options, self.user_progress = method, options, progress
        self.follow = follow_constrained
        self.sign = 1.0 if p_to > p_from else -1.0
        self.resolve_offset = resolve_offset if resolve_offset is not None else 1e-3 * abs(p_to - p_from)
        self.max_traces, self.probe_steps, self.global_check = max_traces, probe_steps, global_check
        self.traces, self.specials, self.notes = [], [], []
        self.evaluators, self.groups = {}, {}
        self.n_points = 0
        self.stopped = False

    # -- per-n machinery
    def evaluator(self, n) -> _Evaluator:
        if n not in self.evaluators:
            self.evaluators[n] = _Evaluator(branch_system(self.problem, n, self.parameter),
                                            global_check=self.global_check)
        return self.evaluators[n]

    def group(self, n) -> SymmetryGroup:
        if n not in self.groups:
            self.groups[n] = symmetry_group(self.problem, n, self.parameter)
        return self.groups[n]

    def callback(self, label, n):
        state = {"p_prev": None, "reason": None}

        def cb(step, p, info):
            self.n_points += 1
            st = int(info["stability"])
            if self.user_progress is not None:
                extra = {**info, "branch": label, "n_branches": n, "kind": "global" if st == 0 else "constrained",
                         "special_points": len(self.specials)}
                if self.user_progress(self.n_points, p, extra) is False:
                    state["reason"] = "stopped by the progress callback"
                    self.stopped = True
                    return False
            if not self.follow:
                if st > 0:
                    state["reason"] = f"stopped: the branch is no longer the global solution (stability {st})"
                    return False
                if state["p_prev"] is not None and (p - state["p_prev"]) * self.sign < 0:
                    state["reason"] = "stopped: the branch turned back in the parameter"
                    return False
            state["p_prev"] = p
            return True

        return cb, state

    def add(self, trace: LargePBranchTrace) -> int:
        self.traces.append(trace)
        return len(self.traces) - 1

    def wrap(self, ev, br, label, origin, state) -> LargePBranchTrace:
        status, message = br.status, br.message
        if br.status == "stopped" and state["reason"]:
            status, message = ("stopped" if self.stopped else "left-global"), state["reason"] + f" at p = {br.p[-1]:.10g}"
        return _trace_from_branch(ev, br, label, origin, status, message)

    # -- tracing
    def follow_from(self, sol: LargePSolution, p0: float, label: str, origin: dict):
        n = sol.n_branches
        ev = self.evaluator(n)
        x0 = ev.system.pack(sol.t, np.array([b.a for b in sol.branches]), [b.occupation for b in sol.branches])
        cb, state = self.callback(label, n)
        try:
            br = continue_branch(ev.residual, x0, p0, self.p_to, method=self.method,
                                 jacobian=ev.jacobian, stability=ev.stability, progress=cb, label=label,
                                 options=self.options)
        except (ValueError, np.linalg.LinAlgError) as exc:
            self.notes.append(f"could not continue the {n}-branch solution from {self.parameter} = {p0:.10g}: {exc}")
            return None
        return self.add(self.wrap(ev, br, label, origin, state))

    def switch(self, parent_idx, sp, direction, probe):
        parent = self.traces[parent_idx]
        ev = self.evaluator(parent.n_branches)
        label = f"{parent.label}>bp@{sp.p:.6g}{'+' if direction > 0 else '-'}"
        cb, state = self.callback(label, parent.n_branches)
        point = replace(sp, tangent=parent.raw.tangent[max(sp.index, 0)])  # regular tangent just before the point
        opts = replace(self.options, max_steps=self.probe_steps) if probe else self.options
        window = (min(self.p_from, self.p_to), max(self.p_from, self.p_to))
        br = switch_branch(ev.residual, parent.raw, point, directions=(direction,),
                           jacobian=ev.jacobian, stability=ev.stability, progress=cb, p_range=window,
                           options=opts)[0]
        origin = {"kind": "switched", "parent": parent.label, "parent_index": parent_idx, "parameter": sp.p,
                  "direction": direction, "sigma_min": br.origin.get("sigma_min")}
        tr = self.wrap(ev, br, label, origin, state)
        if probe and br.status == "max-steps":
            tr.status, tr.message = "probe", f"probe of {self.probe_steps} steps (a symmetry image or not global)"
        return tr

    def duplicate_of(self, tr: LargePBranchTrace):
        group = self.group(tr.n_branches)
        for j, other in enumerate(self.traces):
            if other.n_branches != tr.n_branches or other.raw is None or other.duplicate_of is not None:
                continue
            g = branches_equivalent(other.raw, tr.raw, group, tol=1e-6)
            if g is not None:
                return j, g
        return None

    def forward_global(self, tr: LargePBranchTrace) -> bool:
        """The trace leaves its start as the global solution, moving towards p_to."""
        raw = tr.raw
        return (len(raw.p) > 1 and int(raw.stability[1]) == 0 and (raw.p[1] - raw.p[0]) * self.sign > 0)

    def resolve(self, p_star, t_guess):
        notes = []
        for k in range(5):
            p = p_star + self.sign * self.resolve_offset * 4.0**k
            if (p - self.p_to) * self.sign >= 0:
                notes.append(f"{self.parameter} = {p:.6g} is past the end {self.p_to:g}")
                break
            sol = solve_large_p(self.problem.with_parameter(self.parameter, p), t0=t_guess)
            if sol.converged and sol.kind == "global":
                return p, sol, notes
            notes.append(f"solve_large_p at {self.parameter} = {p:.8g}: {sol.message[:160]}")
        return None, None, notes

    def simple_branch_point(self, ev, sp) -> bool:
        Fx, Fp = ev.system.jacobian(sp.x, sp.p)
        s = np.linalg.svd(np.column_stack([Fx, Fp]), compute_uv=False)
        return bool(s[-2] > 1e-6 * s[0] and s[-2] > 30.0 * s[-1])

    # -- special points
    def handle(self, idx):
        tr = self.traces[idx]
        ev = self.evaluator(tr.n_branches)
        queue = []
        for sp in tr.raw.special_points:
            info = _describe(ev, sp, tr.raw, self.parameter, self.problem)
            rec = LargePSpecialPoint(
                kind=sp.kind, parameter=float(sp.p), bracket=tuple(sorted(map(float, sp.bracket_p))),
                bracket_arclength=tuple(map(float, sp.bracket)), width=float(sp.width), converged=bool(sp.converged),
                residual=float(sp.residual_norm), branch=tr.label, branch_index=idx, description=info["description"],
                n_occupied_before=info["n_occupied_before"], n_occupied_after=info["n_occupied_after"],
                n_branches_before=tr.n_branches, n_branches_after=tr.n_branches,
                stability_before=int(sp.stability_before), stability_after=int(sp.stability_after),
                unstable_directions=info["unstable_directions"], classes=info["classes"], formula=info["formula"],
                state=info["state"])
            self.specials.append(rec)
            leaves = sp.stability_before == 0 and (sp.stability_after > 0 or sp.kind == "fold")
            if not leaves or self.stopped:
                rec.note = ("the branch was already constrained" if sp.stability_before > 0 else
                            "the continued branch stays the global solution")
                continue
            if len(self.traces) >= self.max_traces:
                rec.action, rec.note = "failed", f"max_traces = {self.max_traces} reached"
                continue
            followed = []
            if sp.kind == "branch-point":
                if self.simple_branch_point(ev, sp):
                    followed = self.switch_at(idx, sp, rec, queue)
                else:
                    rec.note = "degenerate branch point (null space of [F_x F_p] larger than 2): not switched; "
            if followed:
                continue
            self.resolve_at(tr, sp, rec, queue)
        return queue

    def switch_at(self, idx, sp, rec, queue):
        followed = []
        for direction in (1, -1):
            try:
                probe = self.switch(idx, sp, direction, probe=True)
            except (ValueError, np.linalg.LinAlgError) as exc:
                rec.note += f"switching ({direction:+d}) failed: {exc}; "
                continue
            dup = self.duplicate_of(probe)
            if dup is None and self.forward_global(probe):
                full = self.switch(idx, sp, direction, probe=False)
                j = self.add(full)
                rec.children.append(full.label)
                followed.append(j)
                queue.append(j)
                continue
            j = self.add(probe)
            rec.children.append(probe.label)
            if dup is not None:
                probe.duplicate_of, probe.symmetry_action = dup
                probe.message = (f"symmetry image of trace {dup[0]} ({self.traces[dup[0]].label}) under action "
                                 f"{dup[1]} of the group ({self.group(probe.n_branches).order_note})")
        if followed:
            first = self.traces[followed[0]]
            rec.action = "switched"
            rec.n_occupied_after = int(first.n_occupied[1])
            rec.n_branches_after = first.n_branches
            dups = [t for t in self.traces if t.label in rec.children and t.duplicate_of is not None]
            rec.note += (f"followed {len(followed)} new branch(es)"
                         + (f"; {len(dups)} switched branch(es) recognised as symmetry images" if dups else ""))
            if len(followed) > 1:
                a, b = self.traces[followed[0]], self.traces[followed[1]]
                k = min(len(a), len(b)) - 1
                same_t = k > 0 and np.max(np.abs(a.t[1:k + 1] - b.t[1:k + 1])) < 1e-6 * (1 + np.max(np.abs(a.t)))
                rec.note += ("; the followed branches have the same field t (and f) but different readouts/"
                             "occupations: the global solution is degenerate (occupations of the sign codes are "
                             "not unique, as for m >= 4)" if same_t else
                             "; the followed branches are distinct solutions not related by the known symmetries")
        return followed

    def resolve_at(self, tr, sp, rec, queue):
        t_guess = self.evaluator(tr.n_branches).system.unpack(sp.x)[0]
        p, sol, notes = self.resolve(float(sp.p), t_guess)
        if sol is None:
            rec.action = "failed"
            rec.note += "re-solve past the point failed: " + "; ".join(notes)
            return
        if sp.kind == "fold":
            self.refine_merge(tr, sp, rec, sol, p)
        label = f"{tr.label}>re@{p:.6g}"
        j = self.follow_from(sol, p, label, {"kind": "re-solved", "parent": tr.label, "parameter": p,
                                             "special_point": float(sp.p), "message": sol.message})
        rec.action, rec.resolved_at = "re-solved", float(p)
        rec.n_branches_after = sol.n_branches
        rec.n_occupied_after = _n_occupied(np.array([b.a for b in sol.branches]),
                                           np.array([b.occupation for b in sol.branches]), self.problem.phi.odd)
        rec.note += (f"the {tr.n_branches}-branch system no longer describes the global solution: re-solved with "
                     f"solve_large_p at {self.parameter} = {p:.8g} (offset {abs(p - sp.p):.2e} past the point), "
                     f"continued with n = {sol.n_branches}")
        if notes:
            rec.note += " (" + "; ".join(notes) + ")"
        if j is None:
            rec.action = "failed"
        else:
            rec.children.append(label)
            queue.append(j)

    def refine_merge(self, tr, sp, rec, sol, p_past):
        """Locate a merge (fold of the followed n-branch solution) as the split point of the re-solved
        n'-branch solution: continue it back from ``p_past`` until it stops being global; the traced part is
        kept (it is the global solution between the merge and ``p_past``)."""
        n = sol.n_branches
        ev = self.evaluator(n)
        x0 = ev.system.pack(sol.t, np.array([b.a for b in sol.branches]), [b.occupation for b in sol.branches])
        i0 = max(0, min(sp.index, len(tr.raw.p) - 1))
        p_back = float(tr.raw.p[i0]) - self.sign * 4.0 * abs(p_past - float(sp.p))
        lo_b, hi_b, _ = parameter_range(self.parameter, self.problem.m)
        p_back = min(max(p_back, lo_b + 1e-12 * max(1.0, abs(p_past))), hi_b - 1e-12 if math.isfinite(hi_b) else p_back)
        label = f"{tr.label}>merge@{p_past:.6g}"

        def cb(step, p, info):
            self.n_points += 1
            return int(info["stability"]) == 0

        try:
            br = continue_branch(ev.residual, x0, p_past, p_back, method="arclength", jacobian=ev.jacobian,
                                 stability=ev.stability, progress=cb, label=label, options=self.options)
        except (ValueError, np.linalg.LinAlgError) as exc:
            rec.note += f"merge not refined ({exc}); "
            return
        hits = [q for q in br.special_points if q.stability_before == 0 and q.stability_after > 0]
        back = _trace_from_branch(ev, br, label, {"kind": "merge-refinement", "parent": tr.label,
                                                  "parameter": p_past}, "left-global" if hits else br.status,
                                  "continued back from the re-solve point to locate the merge")
        self.add(back)
        if not hits:
            rec.note += "merge not refined (no stability change of the re-solved solution found); "
            return
        q = hits[0]
        rec.state["detected"] = {"parameter": rec.parameter, "bracket": rec.bracket, "converged": rec.converged}
        rec.parameter, rec.bracket = float(q.p), tuple(sorted(map(float, q.bracket_p)))
        rec.bracket_arclength, rec.width = tuple(map(float, q.bracket)), float(q.width)
        rec.converged, rec.residual = bool(q.converged), float(q.residual_norm)
        info = _describe(ev, q, br, self.parameter, self.problem)
        rec.formula = rec.formula or info["formula"]
        rec.classes = rec.classes or info["classes"]
        rec.unstable_directions = rec.unstable_directions or info["unstable_directions"]
        rec.description += (f"; located as the point where the re-solved {n}-branch solution, continued back, "
                            f"stops being global ({info['description']})")
        rec.note += f"merge located on the re-solved {n}-branch solution (trace {label}); "

    def run(self, start: LargePSolution):
        first = self.follow_from(start, self.p_from, "start", {"kind": "start", "parameter": self.p_from,
                                                                "message": start.message})
        queue = [] if first is None else [first]
        while queue:
            queue += self.handle(queue.pop(0))


# ---------------------------------------------------------------------- linear φ and sequential solves
def _solution_arrays(sols, params, label, origin, odd, status, message):
    k = len(sols)
    n = max(s.n_branches for s in sols)
    m = sols[0].problem.m
    A = np.full((k, n, m), np.nan)
    P = np.full((k, n), np.nan)
    for i, s in enumerate(sols):
        for g, b in enumerate(s.branches):
            A[i, g], P[i, g] = b.a, b.occupation
    nocc = []
    for i, s in enumerate(sols):
        cnt = _n_occupied(A[i, :s.n_branches], P[i, :s.n_branches], odd)
        nocc.append(cnt + _n_condensate(s))
    stab = np.array([0 if (s.converged and s.kind in ("global", "linear-gaussian")) else 1 for s in sols])
    return LargePBranchTrace(
        label=label, n_branches=n, parameter=np.asarray(params, dtype=np.float64),
        t=np.array([s.t for s in sols]), a=A, occupation=P, f=np.array([s.outputs for s in sols]),
        U=np.array([s.readout_moment for s in sols]),
        kernel_diagonal=np.array([s.observables.kernel_diagonal for s in sols]),
        kernel_blocks=np.array([s.observables.kernel_blocks for s in sols]),
        free_energy=np.array([s.free_energy for s in sols]), n_occupied=np.array(nocc, dtype=int),
        stability=stab, hessian_max=np.array([max(float(np.max(b.hessian_eigenvalues)) for b in s.branches)
                                              for s in sols]),
        kind=[s.kind if s.converged else "failed" for s in sols],
        arclength=np.abs(np.asarray(params) - params[0]), residual=np.array([s.residual_norm for s in sols]),
        status=status, message=message, origin=origin, special=[""] * k)


def _linear_path(problem, parameter, p_from, p_to, n_points, progress):
    """Closed form along the parameter (linear φ): one branch a = 0; records where σ̄_a σ_1 √ρ_c = T."""
    grid = np.linspace(p_from, p_to, n_points)

    def margin(p):  # > 0 while class c has f_cc = 0, per class
        pr = problem.with_parameter(parameter, p)
        return pr.temperature - pr.sigma_a_bar * pr.sigma_w * np.sqrt(pr.rho)

    marg = np.array([margin(p) for p in grid])
    specials = []
    for c in range(problem.m):
        for i in np.flatnonzero(np.sign(marg[:-1, c]) != np.sign(marg[1:, c])):
            lo, hi = float(grid[i]), float(grid[i + 1])
            f_lo = margin(lo)[c]
            for _ in range(200):
                if abs(hi - lo) <= 1e-12 * max(1.0, abs(lo)):
                    break
                mid = 0.5 * (lo + hi)
                if np.sign(margin(mid)[c]) == np.sign(f_lo):
                    lo = mid
                else:
                    hi = mid
            p_star = 0.5 * (lo + hi)
            onset = np.sign(marg[i + 1, c]) < 0
            specials.append(LargePSpecialPoint(
                kind="domain-boundary", parameter=p_star, bracket=(min(lo, hi), max(lo, hi)),
                bracket_arclength=(abs(lo - p_from), abs(hi - p_from)), width=abs(hi - lo), converged=True,
                residual=0.0, branch="linear", branch_index=0,
                description=(f"linear φ: the domain constraint q(t) = 1 {'starts' if onset else 'stops'} to bind along "
                             f"class {c} (σ̄_a σ_1 √ρ_{c} = T): an O(1) Gaussian readout variance U_{c}{c} "
                             f"{'appears' if onset else 'disappears'}; the single branch a = 0 persists "
                             "(analog coding, no symmetry breaking)"),
                n_occupied_before=1, n_occupied_after=1, n_branches_before=1, n_branches_after=1,
                stability_before=0, stability_after=0, classes=[c],
                formula={"class": c, "value": p_star, "expression": "σ̄_a σ_1 √ρ_c = T"}))
    merged = []
    for sp in sorted(specials, key=lambda s: s.parameter):
        if merged and abs(sp.parameter - merged[-1].parameter) <= 1e-12 * max(1.0, abs(sp.parameter)) \
                and sp.description.split("class")[0] == merged[-1].description.split("class")[0]:
            prev = merged[-1]
            prev.classes = sorted(set(prev.classes) | set(sp.classes))
            cl = ", ".join(map(str, prev.classes))
            prev.description = prev.description.replace(f"along class {prev.classes[0]} ", f"along classes {cl} ")
            prev.description = prev.description.replace(f"√ρ_{prev.classes[0]} = T", "√ρ_c = T")
            prev.description = prev.description.replace(f"variance U_{prev.classes[0]}{prev.classes[0]}",
                                                        "variance U_cc")
            continue
        merged.append(sp)
    specials = merged
    params = sorted(set(grid.tolist()) | {s.parameter for s in specials}, key=lambda v: (v - p_from) * np.sign(p_to - p_from))
    sols = []
    for i, p in enumerate(params):
        sols.append(linear_large_p(problem.with_parameter(parameter, p)))
        if progress is not None:
            progress(i + 1, p, {"branch": "linear", "n_branches": 1, "stability": 0, "kind": "linear-gaussian",
                                "special_points": len(specials)})
    tr = _solution_arrays(sols, params, "linear", {"kind": "closed-form"}, True, "reached-boundary",
                          "linear φ: closed form (solvers.large_p.solve.linear_large_p) on a grid")
    tr.n_occupied[:] = 1
    specials.sort(key=lambda s: (s.parameter - p_from) * np.sign(p_to - p_from))
    return tr, specials


def _n_condensate(sol: LargePSolution) -> int:
    """Number of condensate directions â_j (ReLU-like φ), 0 without a condensate."""
    if sol.condensate is None:
        return 0
    return int(np.atleast_2d(np.asarray(sol.condensate.directions)).shape[0])


def _structure(sol: LargePSolution) -> tuple:
    return (sol.n_branches, _n_condensate(sol), sol.converged)


def _solve_warm(problem, t0, notes):
    """solve_large_p warm-started at field t0; on an exception or no convergence, again from t = 0."""
    if t0 is not None:
        try:
            s = solve_large_p(problem, t0=t0)
            if s.converged:
                return s
        except (RuntimeError, ValueError, TypeError, ArithmeticError, np.linalg.LinAlgError) as exc:
            notes.append(f"warm-started solve failed at {problem.to_dict()}: {type(exc).__name__}: {exc}")
    return solve_large_p(problem)


def _sequential_path(problem, parameter, p_from, p_to, n_points, progress, locate_tol, notes):
    """Independent solve_large_p solves on a grid (warm start: the previous field); structure changes
    (number of branches, condensate directions) located by bisection of solves to ``locate_tol``."""
    grid = np.linspace(p_from, p_to, n_points)
    sols, params, specials = [], [], []
    t0 = None
    for i, p in enumerate(grid):
        s = _solve_warm(problem.with_parameter(parameter, p), t0, notes)
        if s.converged:
            t0 = s.t
        if sols and _structure(s) != _structure(sols[-1]):
            lo, hi, s_lo, s_hi = params[-1], float(p), sols[-1], s
            while abs(hi - lo) > locate_tol:
                mid = 0.5 * (lo + hi)
                s_mid = _solve_warm(problem.with_parameter(parameter, mid), s_lo.t, notes)
                if _structure(s_mid) == _structure(s_lo):
                    lo, s_lo = mid, s_mid
                else:
                    hi, s_hi = mid, s_mid
            nb, nd, _ = _structure(s_lo)
            na, nda, _ = _structure(s_hi)
            specials.append(LargePSpecialPoint(
                kind="structure-change", parameter=0.5 * (lo + hi), bracket=(min(lo, hi), max(lo, hi)),
                bracket_arclength=(abs(lo - p_from), abs(hi - p_from)), width=abs(hi - lo), converged=True,
                residual=max(s_lo.residual_norm, s_hi.residual_norm), branch="sequential", branch_index=0,
                description=(f"the solution changes from {nb} branch(es) and {nd} condensate direction(s) to "
                             f"{na} branch(es) and {nda} condensate direction(s)"),
                n_occupied_before=_n_occupied(np.array([b.a for b in s_lo.branches]),
                                              np.array([b.occupation for b in s_lo.branches]), problem.phi.odd) + nd,
                n_occupied_after=_n_occupied(np.array([b.a for b in s_hi.branches]),
                                             np.array([b.occupation for b in s_hi.branches]), problem.phi.odd) + nda,
                n_branches_before=nb, n_branches_after=na, stability_before=0, stability_after=0,
                action="re-solved", state={"t": s_hi.t}))
            params += [lo, hi]
            sols += [s_lo, s_hi]
        params.append(float(p))
        sols.append(s)
        if progress is not None and progress(i + 1, float(p), {"branch": "sequential", "n_branches": s.n_branches,
                                                               "stability": 0 if s.converged else 1,
                                                               "kind": s.kind, "special_points": len(specials)}) is False:
            break
    order = np.argsort([(p - p_from) * np.sign(p_to - p_from) for p in params], kind="stable")
    sols, params = [sols[i] for i in order], [params[i] for i in order]
    ok = all(s.converged for s in sols)
    tr = _solution_arrays(sols, params, "sequential", {"kind": "sequential"}, problem.phi.odd,
                          "reached-boundary" if ok else "failed",
                          "independent solve_large_p solves" + ("" if ok else "; some did not converge"))
    return tr, specials


# ---------------------------------------------------------------------- entry point
def continue_solution(problem: LargePProblem, parameter: str, p_from: float, p_to: float, *,
                      method: str = "arclength", progress: Callable | None = None, max_steps: int = 2000,
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
    progress : callable(count, p, info) -> bool | None
        Called after every accepted point (``info``: branch label, n_branches, stability, kind,
        special_points, ...); returning False stops the whole run.
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
    if not isinstance(problem, LargePProblem):
        raise TypeError(f"problem must be a LargePProblem (got {type(problem).__name__})")
    parameter = canonical_parameter(parameter, problem.m)
    p_from = _check_value(parameter, "from", p_from, problem.m)
    p_to = _check_value(parameter, "to", p_to, problem.m)
    if p_from == p_to:
        raise SpecError(f"the range of parameter {parameter!r} must not be empty: from = to = {p_from:g} "
                        "(valid: from != to)")
    if method not in ("arclength", "natural", "sequential"):
        raise SpecError(f"method must be 'arclength', 'natural' or 'sequential' (got {method!r})")
    if not (isinstance(n_points, (int, np.integer)) and n_points >= 2):
        raise SpecError(f"n_points must be an integer >= 2 (got {n_points!r})")
    base = options if options is not None else DEFAULT_OPTIONS
    overrides = dict(option_overrides)
    overrides["max_steps"] = max_steps
    if step is not None:
        overrides["step"] = float(step)
        overrides.setdefault("max_step", max(base.max_step, float(step)))
        overrides.setdefault("min_step", min(base.min_step, float(step)))
    try:
        opts = replace(base, **overrides)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"continuation options: {exc}") from None
    nl = problem.phi
    at_from = problem.with_parameter(parameter, p_from)

    def finish(branches, specials, start, success, message, notes, n_pts, n_eval, used_method):
        return LargePContinuation(problem=at_from, parameter=parameter, p_from=p_from, p_to=p_to, method=used_method,
                                  branches=branches, special_points=specials, start=start, success=success,
                                  message=message, notes=notes, time_seconds=time.perf_counter() - start_clock,
                                  n_points=n_pts, n_evaluations=n_eval, options=opts)

    if nl.name == "linear":
        tr, specials = _linear_path(problem, parameter, p_from, p_to, n_points, progress)
        return finish([tr], specials, linear_large_p(at_from), True,
                      "linear φ: single branch a = 0 throughout (no symmetry breaking)", [], len(tr), len(tr),
                      "closed-form")
    if method == "sequential" or nl.linear_growth:
        note = [] if method == "sequential" else [
            f"{nl.name}: φ grows linearly, the solution has a condensate on q(t) = 1 that the branch system "
            "does not describe; followed by independent solves (method 'sequential')"]
        tr, specials = _sequential_path(problem, parameter, p_from, p_to, n_points, progress,
                                        max(opts.locate_tol, 1e-6 * abs(p_to - p_from)), note)
        ok = tr.success
        return finish([tr], specials, None, ok, "reached the end" if ok else tr.message, note, len(tr), len(tr),
                      "sequential")

    start = solve_large_p(at_from)
    if not (start.converged and start.kind == "global"):
        return finish([], [], start, False, f"no converged solution at {parameter} = {p_from:g}: {start.message}",
                      [], 0, 0, method)
    drv = _Driver(problem, parameter, p_from, p_to, method, opts, progress, follow_constrained, resolve_offset,
                  max_traces, probe_steps, global_check)
    drv.run(start)
    path_end, end_trace = None, None
    for tr in drv.traces:
        if tr.duplicate_of is None and tr.kind and tr.kind[-1] == "global":
            v = tr.parameter[-1]
            if path_end is None or (v - path_end) * drv.sign > 0:
                path_end, end_trace = v, tr
    success = path_end is not None and abs(path_end - p_to) <= 1e-9 * max(1.0, abs(p_to)) and not drv.stopped
    if success:
        message = f"followed the global solution from {p_from:g} to {p_to:g}"
    elif drv.stopped:
        message = "stopped by the progress callback"
    else:
        failed = [s for s in drv.specials if s.action == "failed"]
        message = (f"the global solution was followed only to {parameter} = {path_end}" if path_end is not None
                   else "no global point was followed")
        if failed:
            message += "; " + failed[-1].note
        elif drv.notes:
            message += "; " + drv.notes[-1]
        elif end_trace is not None:
            message += f"; trace {end_trace.label}: {end_trace.message}"
    drv.specials.sort(key=lambda s: ((s.parameter - p_from) * drv.sign, s.branch_index))
    return finish(drv.traces, drv.specials, start, success, message, drv.notes, drv.n_points,
                  sum(e.calls for e in drv.evaluators.values()), method)
