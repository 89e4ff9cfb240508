"""Phase diagrams of coding schemes in the large-P limit (THEORY §4).

Every point of a two-parameter grid is labelled by the coding scheme of the
large-P solution there (:func:`solvers.large_p.coding.coding_scheme`): ``"symmetric"`` or
``"broken, <n> groups: <codes>"``. A change of the number of groups is a phase transition
(symmetry breaking); a change of codes at the same number of groups is a crossover of the
threshold rule.

The grid is computed row by row (:func:`phase_row`, one row = fixed y): along
x each solve starts from the previous point's branches
(:func:`solvers.large_p.solve.solve_branches`, Newton on the branch equations) and falls back to the global solver
(:func:`solvers.large_p.solve.solve_large_p`) whenever the warm solution is not
the minimiser of G∞ (a branch stopped being a global maximum of S, an
occupation turned negative, Newton failed) — which is exactly what happens
at a transition. Between neighbouring points with different labels the
transition is located by bisection in x (``refine`` halvings), each
boundary point carrying its bracket (one change per grid interval: two
changes closer than the grid spacing are resolved only by a finer grid). Rows are the points of a resumable
sweep (:func:`solvers.sweep.run_sweep`): each finished row is written to
the sweep file at once, an interrupted diagram resumes without recomputing
finished rows, and rows run in parallel (processes, or Dask across
machines). Symmetry-breaking transitions are then followed through the
plane by pseudo-arclength continuation of the condition that an occupied
branch stops being a local maximum of S (:func:`trace_transition`);
crossovers of the code threshold are drawn by joining the bisected points
of consecutive rows.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
import time

import numpy as np

from theory.spec import SpecError

from solvers.large_p.solve import LargePSolution, condenses, polish_from, solve_branches, solve_large_p
from solvers.large_p.coding import MIN_OCCUPATION, coding_scheme
from solvers.large_p.problem import LargePProblem, parameter_name
from solvers.large_p.solution import same_point
from solvers.large_p.transition import same_curve, trace_transition
from solvers.results import Result
from solvers.sweep import run_sweep

__all__ = ["coding_scheme", "phase_row", "warm_point", "PhaseDiagram", "phase_diagram", "load_phase_diagram",
           "trace_transition"]


#: random starts of the global-maximum check in warm steps (the deterministic starts, the previous
#: point's maxima and the class directions are always used; the global solver uses 16)
WARM_RANDOM_STARTS = 4


def _orbits(maxima, odd: bool) -> np.ndarray:
    """Global maxima of S, one representative per mirror orbit {a, −a} for odd φ."""
    reps = []
    for x in maxima.global_maxima:
        if odd and any(np.linalg.norm(x.a + r) <= 1e-6 * (1 + np.linalg.norm(r)) for r in reps):
            continue
        reps.append(x.a)
    return np.array(reps)


def _distinct_branches(sol: LargePSolution, odd: bool) -> bool:
    """No two branches at the same point (or mirror images, odd φ): where maxima of S merge (a
    pitchfork), Newton from the previous branches lets several of them converge onto one."""
    A = [b.a for b in sol.branches]
    return not any(same_point(A[i], A[j], odd) for i in range(len(A)) for j in range(i))


def warm_point(prob: LargePProblem, prev: LargePSolution | None) -> tuple[LargePSolution, bool]:
    """(solution, used_global_solver) at ``prob`` starting from the neighbouring solution ``prev``.

    1. Newton on prev's branches. 2. If they stop being the minimiser of G∞ (a transition), or two
    of them converge onto the same maximum of S (maxima merging), Newton
    on the global maxima of S at the field just found, equally occupied. 3. Only if both fail, the
    global solver (smoothed dual; timings in docs/devlog.md).

    Linearly growing φ (ReLU): step 1 is instead the KKT Newton of the condensate system from prev's
    branches and condensate directions, with the global solver's checks
    (:func:`solvers.large_p.solve.polish_from`): a point passing them satisfies the KKT conditions
    of the convex G∞ on its convex domain, so it is the global solver's minimiser t* (to the
    Newton tolerance). Only if they fail, the global solver (barrier and smoothed dual).
    """
    warm = prev is not None and prev.converged and prev.kind == "global"
    if warm and condenses(prob):
        try:
            sol, _ = polish_from(prob, prev)
        except (RuntimeError, ValueError, np.linalg.LinAlgError, FloatingPointError):
            sol = None
        if sol is not None and sol.converged and sol.kind == "global":
            return sol, False
    elif warm and prev.condensate is None:
        A = np.array([b.a for b in prev.branches])
        P = np.array([b.occupation for b in prev.branches])
        try:
            sol = solve_branches(prob, prev.t, A, P, n_random=WARM_RANDOM_STARTS)
            if (sol.converged and sol.kind == "global" and min(b.occupation for b in sol.branches) > MIN_OCCUPATION
                    and _distinct_branches(sol, prob.phi.odd)):
                return sol, False
            if sol.maxima is not None:
                A2 = _orbits(sol.maxima, prob.phi.odd)
                sol2 = solve_branches(prob, sol.t, A2, np.full(len(A2), 1.0 / len(A2)), n_random=WARM_RANDOM_STARTS)
                if (sol2.converged and sol2.kind == "global"
                        and min(b.occupation for b in sol2.branches) > MIN_OCCUPATION):
                    return sol2, False
        except (RuntimeError, np.linalg.LinAlgError, FloatingPointError):
            pass
    return solve_large_p(prob, t0=None if prev is None else prev.t), True


_warm = warm_point  # old private name


def _point_summary(sol: LargePSolution) -> dict:
    scheme = coding_scheme(sol)
    return {**scheme, "converged": bool(sol.converged), "kind": sol.kind, "free_energy": float(sol.free_energy),
            "f_diag": np.diag(sol.outputs).tolist(), "U_diag": np.diag(sol.readout_moment).tolist()}


def phase_row(job: dict) -> dict:
    """One row of the diagram (the sweep function): labels along x at fixed y, transitions located.

    ``job``: ``problem`` (:meth:`LargePProblem.to_dict`), ``x_name``, ``x_values``, ``y_name``,
    ``y`` and ``refine`` (bisection halvings per transition). Returns per-x lists (``label``,
    ``symmetric``, ``n_groups``, ``codes``, ``converged``, ``free_energy``, ``f_diag``, ``U_diag``)
    and ``boundaries``: [{x, bracket [lo, hi], left, right}].
    """
    start = time.perf_counter()
    base = LargePProblem(**job["problem"]).with_parameter(job["y_name"], job["y"])
    xs = [float(x) for x in job["x_values"]]
    sols, n_global = [], 0
    prev = None
    for x in xs:
        sol, used = warm_point(base.with_parameter(job["x_name"], x), prev)
        n_global += used
        sols.append(sol)
        prev = sol
    points = [_point_summary(s) for s in sols]
    boundaries = []
    for i in range(len(xs) - 1):
        left, right = points[i]["label"], points[i + 1]["label"]
        if left == right:
            continue
        lo, hi, s_lo = xs[i], xs[i + 1], sols[i]
        for _ in range(int(job.get("refine", 8))):
            mid = 0.5 * (lo + hi)
            s_mid, used = warm_point(base.with_parameter(job["x_name"], mid), s_lo)
            n_global += used
            if coding_scheme(s_mid)["label"] == left:
                lo, s_lo = mid, s_mid
            else:
                hi = mid
        kind = "transition" if points[i]["n_groups"] != points[i + 1]["n_groups"] else "crossover"
        boundaries.append({"x": 0.5 * (lo + hi), "bracket": [lo, hi], "left": left, "right": right,
                           "kind": kind, "left_groups": points[i]["n_groups"],
                           "right_groups": points[i + 1]["n_groups"]})
    keys = {k for p in points for k in p}
    out = {k: [p.get(k) for p in points] for k in sorted(keys)}  # condensate_codes only where condensed
    out.update({"x": xs, "y": float(job["y"]), "boundaries": boundaries, "global_solves": n_global,
                "time_seconds": time.perf_counter() - start})
    return out


@dataclass(frozen=True)
class PhaseDiagram(Result):
    """Labels on the (x, y) grid, located transitions and boundary curves.

    The result protocol (:class:`solvers.results.Result`, its fields keyword-only after the
    positional ones here): ``converged`` means every row was computed and every point's solution
    converged; ``iterations`` counts the computed rows; ``error_estimate`` is the widest
    bisection bracket of a located boundary (0 without boundaries); ``time_seconds`` the summed
    row times; ``residual`` is not defined (NaN). A diagram holds labels, not one set of
    observables: ``observables()`` raises.
    """

    x_name: str
    y_name: str
    x: np.ndarray
    y: np.ndarray
    labels: np.ndarray  # (len(y), len(x)) object array, None where not computed
    rows: list  # the row results (dicts), None for missing rows
    path: str | None = None
    traced: tuple = ()  # transition curves followed by continuation (:func:`trace_transition`)

    def observables(self):
        raise NotImplementedError("a phase diagram holds coding-scheme labels per grid point, not one set of "
                                  "observables; see rows[i]['f_diag'] and rows[i]['U_diag']")

    @property
    def boundary_points(self) -> list:
        return [dict(b, y=r["y"]) for r in self.rows if r is not None for b in r["boundaries"]]

    def boundary_curves(self) -> list:
        """[{"x": [...], "y": [...], "kind": ...}]: the transitions followed by continuation
        (kind "transition (continued)"), and every other pair of labels separated on consecutive
        rows as the bisected points joined in y order (kind "transition" or "crossover")."""
        curves: dict = {}
        traced = {tuple(g) for c in self.traced if c["success"] for g in c["groups"]}
        for b in sorted(self.boundary_points, key=lambda b: (b["y"], b["x"])):
            key = " | ".join(sorted((b["left"], b["right"])))
            if b["kind"] == "transition" and tuple(sorted((b["left_groups"], b["right_groups"]))) in traced:
                continue
            curves.setdefault((b["kind"], key), []).append((b["x"], b["y"]))
        out = [{"x": c["x"], "y": c["y"], "kind": c["kind"]} for c in self.traced if c["success"]]
        return out + [{"x": [p[0] for p in pts], "y": [p[1] for p in pts], "kind": kind}
                      for (kind, _), pts in curves.items()]

    def records(self) -> list:
        """Per-point records in the sweep-record layout (for :func:`figures.phase_diagram.plot_phase_diagram`)."""
        out = []
        for r in self.rows:
            if r is None:
                continue
            for j, x in enumerate(r["x"]):
                out.append({"point": {self.x_name: x, self.y_name: r["y"]}, "status": "ok",
                            "result": {k: r[k][j] for k in ("label", "symmetric", "n_groups", "converged",
                                                            "free_energy")}})
        return out

    def to_json(self) -> dict:
        return {**self.result_json(), "x_name": self.x_name, "y_name": self.y_name, "x": self.x.tolist(), "y": self.y.tolist(),
                "labels": [[lab for lab in row] for row in self.labels.tolist()],
                "boundaries": self.boundary_points, "curves": self.boundary_curves(),
                "traced": list(self.traced), "path": self.path}


def _assemble(x_name, y_name, xs, ys, records, path) -> PhaseDiagram:
    rows = [None] * len(ys)
    for rec in records:
        if rec["status"] == "ok":
            rows[rec["index"]] = rec["result"]
    labels = np.full((len(ys), len(xs)), None, dtype=object)
    for i, r in enumerate(rows):
        if r is not None:
            labels[i, :] = r["label"]
    done = [r for r in rows if r is not None]
    n_bad = sum(not ok for r in done for ok in r.get("converged", []))
    widths = [abs(b["bracket"][1] - b["bracket"][0]) for r in done for b in r["boundaries"]]
    converged = len(done) == len(rows) and n_bad == 0
    return PhaseDiagram(x_name, y_name, np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64),
                        labels, rows, None if path is None else str(path),
                        converged=converged, status="converged" if converged else "not-converged",
                        message=f"{len(done)} of {len(rows)} rows computed, {n_bad} point(s) not converged",
                        iterations=len(done), error_estimate=max(widths, default=0.0),
                        time_seconds=float(sum(r.get("time_seconds", 0.0) for r in done)))


def phase_diagram(problem: LargePProblem, x_name: str, x_values, y_name: str, y_values, path, *,
                  workers: int | None = None, backend: str = "process", dask_address=None, refine: int = 8,
                  progress=True, trace: bool = True) -> PhaseDiagram:
    """Label every grid point by its coding scheme, locate the transitions; resumable (``path``).

    ``x_name``/``y_name``: "temperature", "sigma_a_bar", "sigma_w" or "rho_r" (class fraction r,
    the others rescaled). Rows (fixed y) are the sweep points written to ``path``. With ``trace``,
    every transition (change in the number of groups) is then followed through the plane by
    continuation from its middle row (:func:`trace_transition`); crossovers of the code threshold
    are drawn by joining their bisected points.
    """
    if not isinstance(problem, LargePProblem):
        raise TypeError(f"problem must be a LargePProblem (got {type(problem).__name__})")
    m = problem.m
    if parameter_name(x_name, m) == parameter_name(y_name, m):
        raise SpecError(f"x and y must be different parameters (got {x_name!r} twice)")
    xs = [float(v) for v in x_values]
    ys = [float(v) for v in y_values]
    if len(xs) < 2 or len(ys) < 1:
        raise SpecError(f"need at least 2 x values and 1 y value (got {len(xs)} and {len(ys)})")
    for name, vals in ((x_name, xs), (y_name, ys)):
        for v in (min(vals), max(vals)):
            problem.with_parameter(name, v)  # validates the range (T >= 0, σ > 0, 0 < ρ < 1)
    if not isinstance(refine, int) or refine < 0:
        raise SpecError(f"refine must be an integer >= 0 (got {refine!r})")
    jobs = [{"problem": problem.to_dict(), "x_name": x_name, "x_values": xs, "y_name": y_name, "y": y,
             "refine": refine} for y in ys]
    records = run_sweep(phase_row, jobs, path, workers=workers, backend=backend, dask_address=dask_address,
                        progress=progress, metadata={"kind": "codingschemes phase-diagram", "x": x_name,
                                                     "y": y_name, **problem.to_dict()})
    diagram = _assemble(x_name, y_name, xs, ys, records, path)
    if not trace or len(ys) < 2:
        return diagram
    groups: dict = {}
    for b in diagram.boundary_points:
        if b["kind"] == "transition":
            groups.setdefault(" | ".join(sorted((b["left"], b["right"]))), []).append(b)
    traced = []
    for key, pts in groups.items():
        mid = sorted(pts, key=lambda b: b["y"])[len(pts) // 2]
        try:
            curve = trace_transition(problem, x_name, y_name, mid, (min(ys), max(ys)))
        except (ValueError, RuntimeError, np.linalg.LinAlgError) as exc:
            curve = {"x": [], "y": [], "kind": "transition (continued)", "success": False, "message": str(exc)}
        same = [c for c in traced if c["success"] and curve["success"] and same_curve(c, curve)]
        groups_pair = sorted((mid["left_groups"], mid["right_groups"]))
        if same:  # one transition seen with different codes on its two sides in different rows
            same[0]["labels"] += " || " + key
            same[0]["groups"].append(groups_pair)
            continue
        traced.append({**curve, "labels": key, "groups": [groups_pair]})
    return replace(diagram, traced=tuple(traced))


def load_phase_diagram(path) -> PhaseDiagram:
    """The (possibly partial) diagram stored in a phase-diagram sweep file."""
    from solvers.sweep import load_sweep

    header, records = load_sweep(path)
    meta = header["metadata"]
    if meta.get("kind") != "codingschemes phase-diagram":
        raise SpecError(f"{path} is not a phase-diagram sweep file")
    ok = [r for r in records if r["status"] == "ok"]
    xs = ok[0]["point"]["x_values"] if ok else []
    ys = [None] * header["n_points"]
    for r in records:
        ys[r["index"]] = r["point"]["y"]
    return _assemble(meta["x"], meta["y"], xs, [y if y is not None else np.nan for y in ys], records, path)
