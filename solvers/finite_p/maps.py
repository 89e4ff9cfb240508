"""Finite-P sweeps: warm-started solves along a line, 2-D maps, both resumable (THEORY §3).

At finite P and T > 0 the dual G(t) = Φ(t) − Σ_c P_c t_cc + (T/2) Σ_c P_c ||t_c||² is strictly
convex: every parameter point has one solution t*, and symmetry breaking shows up as the modes
of p_t(a) appearing and moving, not as several t (THEORY §2). A sweep through the crossover
therefore traces no branches: along a line each point starts Newton from its neighbour's t*
(:func:`warm_solve`; t* moves continuously, so a few Newton steps suffice), and falls back to the
solver's own start (:func:`solvers.finite_p.solve.solve_class_data`) when the warm start is outside the domain or
does not converge there. Each point records the coding scheme of p_t
(:func:`solvers.finite_p.measure.measure_summary`).

* :func:`finite_p_map` — a 2-D map over two of :data:`PARAMETERS`: the rows (fixed y, warm-started
  along x) are the points of a resumable sweep (:func:`solvers.sweep.run_sweep`), written as they
  finish and computed in parallel; :func:`load_finite_p_map` reads a (partial) map back.
* :func:`continue_finite_p` — a 1-D warm-started sweep: every parameter value is one sweep point,
  computed in order in this process (serial backend), each warm-started from the previous
  record's t, also after a resume.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
import math
import time

import numpy as np

from theory.observables import Observables
from theory.spec import ModelSpec, SpecError

from solvers.finite_p.dual import DualObjective, OutsideDomain
from solvers.finite_p.measure import measure_summary
from solvers.finite_p.newton import newton
from solvers.finite_p.problem import ClassProblem
from solvers.finite_p.solve import solve_class_data
from solvers.options import SolverOptions
from solvers.results import STATUS, Result, SolveResult

__all__ = ["PARAMETERS", "spec_with", "check_values", "warm_solve", "solve_line", "map_row", "FiniteMap",
           "finite_p_map", "load_finite_p_map", "FiniteContinuation", "continue_finite_p", "MAP_KIND",
           "CONTINUATION_KIND"]

#: the parameters a finite-P sweep varies (sigma_a_bar sets σ_a = σ̄_a/√P)
PARAMETERS = ("temperature", "sigma_a", "sigma_a_bar", "sigma_w")
MAP_KIND = "codingschemes finite-P map"
CONTINUATION_KIND = "codingschemes finite-P continuation"


def spec_with(spec: ModelSpec, name: str, value: float) -> ModelSpec:
    """``spec`` with parameter ``name`` (one of :data:`PARAMETERS`) set to ``value``."""
    if name == "sigma_a_bar":
        return spec.replace(sigma_a=float(value) / math.sqrt(spec.P))
    if name not in PARAMETERS:
        raise SpecError(f"parameter must be one of {', '.join(PARAMETERS)} (got {name!r})")
    return spec.replace(**{name: float(value)})


def check_values(name: str, values, label: str) -> list[float]:
    """The values of parameter ``name`` as floats, all finite and > 0; SpecError naming ``label``."""
    if name not in PARAMETERS:
        raise SpecError(f"{label}: parameter must be one of {', '.join(PARAMETERS)} (got {name!r})")
    vals = [float(v) for v in values]
    if not vals:
        raise SpecError(f"{label}: no values")
    bad = [v for v in vals if not (math.isfinite(v) and v > 0.0)]
    if bad:
        raise SpecError(f"{label}: {name} must be in (0, inf) at finite P (got {bad[0]:g})")
    if len(set(vals)) != len(vals):
        raise SpecError(f"{label}: the values of {name} must be distinct")
    return vals


def _warm_result(spec: ModelSpec, dual: DualObjective, out, start: float) -> SolveResult:
    """The :class:`SolveResult` of a converged warm Newton run (f, U, kernel with the condensate)."""
    ev, mo = out.evaluation, out.evaluation.moments
    parts = {"outputs": mo.outputs, "readout_moment": mo.readout_moment,
             "kernel_diagonal": mo.kernel_diagonal, "kernel_blocks": mo.kernel_blocks}
    extra = {"start": "warm: the neighbouring point's t"}
    if ev.condensate is not None:
        c = ev.condensate
        for key, add in (("outputs", c.outputs), ("readout_moment", c.readout_moment),
                         ("kernel_diagonal", np.diag(c.kernel)), ("kernel_blocks", c.kernel)):
            parts[key] = parts[key] + add
        extra["condensate"] = c.to_json()
    obs = Observables(**parts, errors={k: mo.error[k] for k in parts})
    return SolveResult(spec=spec, method="newton", t=ev.t, observables=obs, converged=True,
                       status=STATUS[out.status], message=f"{out.message} (warm start)", iterations=out.nit,
                       nfev=dual.nfev, residual=ev.residual_norm, error_estimate=mo.error_estimate,
                       integrator=mo.integrator, readout_mean=mo.readout_mean, free_energy=ev.value,
                       time_seconds=time.perf_counter() - start, log=tuple(dual.log), extra=extra)


def warm_solve(spec: ModelSpec, options: SolverOptions | None = None, t0=None) -> SolveResult:
    """Solve ``spec`` by Newton from the field ``t0`` (a neighbouring point's t*).

    Without ``t0``, or when Newton from it fails (``t0`` outside the domain, no convergence, the
    integrator's error bound missed), the result is :func:`solve_class_data` from the solver's
    own start, so the verdict is always the solver's. Orthogonal class-structured data only.
    """
    if spec.data_kind != "orthogonal":
        raise SpecError("warm_solve needs orthogonal class-structured data (inputs=None)")
    options = options or SolverOptions()
    if t0 is None or options.method != "newton":
        return solve_class_data(spec, options)
    start = time.perf_counter()
    t0 = np.asarray(t0, dtype=np.float64)
    prob = ClassProblem.from_spec(spec)
    if t0.shape != (prob.m, prob.m) or not np.all(np.isfinite(t0)):
        return solve_class_data(spec, options)
    if prob.margin(t0) <= 0.0:  # on or beyond the boundary q = 1 (ReLU condensate): step inside
        t0 = t0 * (1.0 - 1e-3)
    dual = DualObjective(prob, options)
    try:
        out = newton(dual, t0, options.tol, options.maxiter)
    except (OutsideDomain, FloatingPointError, np.linalg.LinAlgError):
        return solve_class_data(spec, options)
    if not out.success or out.evaluation.moments.relative_error_estimate > options.integral_tol:
        return solve_class_data(spec, options)
    return _warm_result(spec, dual, out, start)


def _point(spec: ModelSpec, name: str, value: float, options: SolverOptions, t0):
    """(row, t*) of one point of a line: the measure summary plus the parameter value."""
    res = warm_solve(spec_with(spec, name, value), options, t0)
    row = measure_summary(res)
    row[name] = float(value)
    row["start"] = res.extra.get("start", "")
    t = np.asarray(res.t, dtype=np.float64)
    return row, (t if np.all(np.isfinite(t)) else t0)


def solve_line(spec: ModelSpec, name: str, values, options: SolverOptions | None = None, t0=None) -> list[dict]:
    """Rows of :func:`measure_summary` along ``name`` = ``values``, each warm-started from the previous."""
    options = options or SolverOptions()
    rows = []
    for v in values:
        row, t0 = _point(spec, name, v, options, t0)
        rows.append(row)
    return rows


def _spec_from(d: dict) -> ModelSpec:
    return ModelSpec(nonlinearity=d["nonlinearity"], sigma_w=d["sigma_w"], sigma_a=d["sigma_a"],
                     temperature=d["temperature"], class_sizes=tuple(d["class_sizes"]))


def _spec_dict(spec: ModelSpec) -> dict:
    d = spec.to_dict()
    d.pop("data", None)
    return d


def map_row(job: dict) -> dict:
    """One row of a finite-P map (the sweep function): the points along x at fixed y, warm-started.

    ``job``: ``spec`` (:meth:`ModelSpec.to_dict` without ``data``), ``options`` (the fields of
    :class:`SolverOptions`), ``x_name``, ``x_values``, ``y_name``, ``y``.
    """
    start = time.perf_counter()
    spec = spec_with(_spec_from(job["spec"]), job["y_name"], job["y"])
    rows = solve_line(spec, job["x_name"], job["x_values"], SolverOptions(**job["options"]))
    for r in rows:
        r[job["y_name"]] = float(job["y"])
    return {"x": [float(v) for v in job["x_values"]], "y": float(job["y"]), "points": rows,
            "time_seconds": time.perf_counter() - start}


@dataclass(frozen=True, kw_only=True)
class FiniteMap(Result):
    """The coding scheme of p_t on an (x, y) grid: ``rows[j]["points"][i]`` at (x[i], y[j]).

    ``converged``: every row computed and every point converged; ``iterations``: rows computed;
    ``error_estimate``: the largest error estimate of a point; ``residual``: the largest residual.
    A map holds one set of observables per point, so ``observables()`` raises; :meth:`grid`
    arranges any key of the points as a (len(y), len(x)) array.
    """

    spec: ModelSpec
    x_name: str
    y_name: str
    x: np.ndarray
    y: np.ndarray
    rows: list  # per y: the row dict of :func:`map_row`, or None when not computed
    path: str | None = None

    def observables(self):
        raise NotImplementedError("a finite-P map holds one set of observables per grid point; read them with "
                                  "grid('f_diag'), grid('U_diag'), ... or rows[j]['points'][i]")

    def points(self) -> list:
        return [p for r in self.rows if r is not None for p in r["points"]]

    def grid(self, key, fill=np.nan) -> np.ndarray:
        """``key`` of every point (a name or a callable of the point) as Z[j, i]; ``fill`` where missing."""
        Z = np.empty((len(self.y), len(self.x)), dtype=object)
        Z[...] = fill
        for j, r in enumerate(self.rows):
            for i, p in enumerate(r["points"] if r is not None else []):
                Z[j, i] = key(p) if callable(key) else p[key]
        try:
            return Z.astype(np.float64)
        except (TypeError, ValueError):
            return Z

    def to_json(self) -> dict:
        return {**self.result_json(), "spec": _spec_dict(self.spec), "x_name": self.x_name,
                "y_name": self.y_name, "x": self.x.tolist(), "y": self.y.tolist(), "rows": self.rows,
                "path": self.path}


def _summary_fields(points, n_expected: int, start_time: float) -> dict:
    conv = [bool(p["converged"]) for p in points]
    n_ok = sum(conv)
    converged = len(points) == n_expected and all(conv)
    errs = [p["error_estimate"] for p in points if np.isfinite(p["error_estimate"])]
    res = [p["residual"] for p in points if np.isfinite(p["residual"])]
    message = f"{len(points)} of {n_expected} points computed, {n_ok} converged"
    return dict(converged=converged, status="converged" if converged else "not-converged", message=message,
                residual=max(res, default=math.nan), error_estimate=max(errs, default=math.nan),
                time_seconds=_elapsed(points, start_time))


def _elapsed(points, start_time: float | None) -> float:
    return float(sum(p["time_seconds"] for p in points)) if start_time is None else time.perf_counter() - start_time


def _assemble_map(spec, x_name, y_name, xs, ys, records, path, start_time=None) -> FiniteMap:
    rows = [None] * len(ys)
    for r in records:
        if r["status"] == "ok" and r["index"] < len(rows):
            rows[r["index"]] = r["result"]
    points = [p for r in rows if r is not None for p in r["points"]]
    return FiniteMap(spec=spec, x_name=x_name, y_name=y_name, x=np.asarray(xs, dtype=np.float64),
                     y=np.asarray(ys, dtype=np.float64), rows=rows, path=None if path is None else str(path),
                     iterations=sum(r is not None for r in rows),
                     **_summary_fields(points, len(xs) * len(ys), start_time))


def finite_p_map(spec: ModelSpec, x_name: str, x_values, y_name: str, y_values, path, *,
                 options: SolverOptions | None = None, workers: int | None = None, backend: str = "process",
                 dask_address=None, progress=True) -> FiniteMap:
    """The coding scheme of the finite-P measure on the ``x_values × y_values`` grid; resumable.

    ``spec`` fixes the class sizes, φ and the parameters that are not axes; ``x_name``/``y_name``
    are two different :data:`PARAMETERS`. Rows (fixed y) are the sweep points written to
    ``path`` as they finish (rerun the same call to resume); along a row each point is
    warm-started from the previous one. ``workers``, ``backend``, ``dask_address``, ``progress``:
    as :func:`solvers.sweep.run_sweep`.
    """
    from solvers.sweep import run_sweep

    if not isinstance(spec, ModelSpec) or spec.data_kind != "orthogonal":
        raise SpecError("finite_p_map needs a ModelSpec of orthogonal class-structured data (inputs=None)")
    xs, ys = check_values(x_name, x_values, "x"), check_values(y_name, y_values, "y")
    if {x_name, y_name} <= {"sigma_a", "sigma_a_bar"} or x_name == y_name:
        raise SpecError(f"x and y must be different parameters (got {x_name!r} and {y_name!r})")
    options = options or SolverOptions()
    base = {"spec": _spec_dict(spec), "options": asdict(options), "x_name": x_name, "x_values": xs,
            "y_name": y_name}
    jobs = [{**base, "y": y} for y in ys]
    start = time.perf_counter()
    records = run_sweep(map_row, jobs, path, workers=workers, backend=backend, dask_address=dask_address,
                        progress=progress, metadata={"kind": MAP_KIND, "x": x_name, "y": y_name,
                                                     "spec": _spec_dict(spec), "options": asdict(options)})
    return _assemble_map(spec, x_name, y_name, xs, ys, records, path, start)


def load_finite_p_map(path) -> FiniteMap:
    """The (possibly partial) map stored in a finite-P map sweep file."""
    from solvers.sweep import load_sweep

    header, records = load_sweep(path)
    meta = header.get("metadata") or {}
    if meta.get("kind") != MAP_KIND:
        raise SpecError(f"{path} is not a finite-P map sweep file")
    xs = header["grid"]["x"]["values"] if header.get("grid") else None
    if xs is None:
        jobs = [r["point"] for r in records]
        xs = jobs[0]["x_values"] if jobs else []
    ys = [None] * header["n_points"]
    for r in records:
        ys[r["index"]] = r["point"]["y"]
    return _assemble_map(_spec_from(meta["spec"]), meta["x"], meta["y"], xs,
                         [np.nan if y is None else y for y in ys], records, path)


class WarmPoints:
    """The sweep function of :func:`continue_finite_p`: one point per call, warm-started from the
    previous call's t* (``t``), in order in one process (serial backend)."""

    def __init__(self, spec: ModelSpec, parameter: str, options: SolverOptions, t=None):
        self.spec, self.parameter, self.options = spec, parameter, options
        self.t = None if t is None else np.asarray(t, dtype=np.float64)

    def __call__(self, point: dict) -> dict:
        row, self.t = _point(self.spec, self.parameter, point[self.parameter], self.options, self.t)
        return row


@dataclass(frozen=True, kw_only=True)
class FiniteContinuation(Result):
    """Points of a warm-started finite-P sweep in one parameter (:func:`continue_finite_p`).

    ``points[i]`` is the row of :func:`measure_summary` at ``values[i]`` (None if not computed).
    Fields of the result protocol as :class:`FiniteMap`.
    """

    spec: ModelSpec
    parameter: str
    values: np.ndarray
    points: list
    path: str | None = None

    def observables(self):
        raise NotImplementedError("a finite-P continuation holds one set of observables per point; read "
                                  "points[i]['outputs'], ...")

    def series(self, key) -> np.ndarray:
        """``key`` of every point (NaN where missing), as an array along ``values``."""
        return np.array([np.nan if p is None else p[key] for p in self.points], dtype=np.float64)

    def to_json(self) -> dict:
        return {**self.result_json(), "finite_p": True, "spec": _spec_dict(self.spec), "parameter": self.parameter,
                "values": self.values.tolist(), "points": self.points, "path": self.path}

    def table(self) -> str:
        lines = [f"{self.parameter:>12s}  conv  modes  spread      label"]
        for v, p in zip(self.values, self.points):
            if p is None:
                lines.append(f"{v:12.6g}  (not computed)")
                continue
            lines.append(f"{v:12.6g}  {'yes' if p['converged'] else 'NO ':4s}  {p['n_modes']:5d}  "
                         f"{p['spread']:.4e}  {p['label']}")
        lines.append(self.message)
        return "\n".join(lines)


def continue_finite_p(spec: ModelSpec, parameter: str, values, path, *, options: SolverOptions | None = None,
                      progress=True) -> FiniteContinuation:
    """Follow the finite-P solution through ``parameter`` = ``values`` (in the given order); resumable.

    Every value is one sweep point written to ``path`` as it finishes; each solve starts from the
    previous point's t* (after a resume: from the last finished point's). Rerun the same call to
    resume an interrupted sweep.
    """
    from solvers.sweep import load_sweep, run_sweep

    if not isinstance(spec, ModelSpec) or spec.data_kind != "orthogonal":
        raise SpecError("continue_finite_p needs a ModelSpec of orthogonal class-structured data (inputs=None)")
    vals = check_values(parameter, values, "values")
    options = options or SolverOptions()
    t0 = None
    try:
        _, done = load_sweep(path)
        ok = [r for r in done if r["status"] == "ok"]
        t0 = ok[-1]["result"]["t"] if ok else None
    except (OSError, ValueError, KeyError):  # no file yet (or not ours: run_sweep reports that)
        t0 = None
    function = WarmPoints(spec, parameter, options, t0)
    start = time.perf_counter()
    records = run_sweep(function, [{parameter: v} for v in vals], path, backend="serial", progress=progress,
                        metadata={"kind": CONTINUATION_KIND, "parameter": parameter, "spec": _spec_dict(spec),
                                  "options": asdict(options)})
    points = [None] * len(vals)
    for r in records:
        if r["status"] == "ok":
            points[r["index"]] = r["result"]
    done_points = [p for p in points if p is not None]
    return FiniteContinuation(spec=spec, parameter=parameter, values=np.asarray(vals), points=points,
                              path=str(path), iterations=len(done_points),
                              **_summary_fields(done_points, len(vals), start))
