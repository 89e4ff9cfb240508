"""Continuation of deep (L >= 2) solutions in one parameter: coexisting roots, folds, first-order jumps.

Deep linear networks on orthogonal class data (THEORY §5; :mod:`solvers.deep.linear`) reduce to one
scalar equation per class c. With u = −log(1 − x_c) (x_c the eigenvalue of the shared matrix X in
class c), s = Π_ℓ σ_ℓ² and τ(u) = √(x (1 − x)^{L−1} / (P_c σ_a² s)),

    h_c(u; p) = σ_a² s τ(u) e^{L u} + T τ(u) − 1 = 0,

whose roots are the saddle points of the non-convex deep action. This module follows the curve
h_c(e^v; p) = 0 in (v = log u, p) by pseudo-arclength continuation
(:func:`solvers.continuation.continue_branch`), so it passes the folds where two roots are born or
annihilate; a root is stable (a local maximum of the kernel potential Ψ) iff ∂h_c/∂u > 0. The
per-class action S_c (:func:`solvers.deep.linear_classes._class_roots`) ranks coexisting stable roots: where
two stable branches overlap, the selected (largest-S) root jumps at the parameter p* where their
actions cross, located by Brent's method on ΔS(p) — a first-order transition, which depth L >= 2
produces and L = 1 (convex, one root) cannot.

Parameters: ``temperature`` (T > 0), ``sigma_a`` (σ_a > 0), ``sigma_w`` (σ_ℓ = σ_w in every layer).
The selected solution is also tabulated on a uniform grid of ``n_points`` values by the closed form
(:func:`solvers.deep.linear_classes.solve_deep_linear_classes`), with per-layer kernels in the one-layer
schema, so the jumps of f, U and the kernels are visible.

Nonlinear φ (:func:`continue_deep_nonlinear`): each solve of the class-block deep theory
(:func:`solvers.deep.nonlinear.solve_deep_nonlinear`) is a Monte Carlo/quadrature Newton solve
costing seconds to minutes, so the nonlinear branch is followed by sequential (natural-parameter)
continuation on a grid of ``n_points`` values, each solve warm-started from the previous converged
one. Reported special points are brackets between neighbouring grid points, not located points:
"stability-change" (the selected saddle's Hessian stability flips) and "lost" (no solution found at
the next point, e.g. past a fold). Arclength continuation through folds is not done for nonlinear φ.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
import math
import time

import numpy as np
from scipy import optimize

from solvers.continuation import SpecialPoint, continue_branch, dedupe_branches
from solvers.deep.common import layer_sigmas, with_result_keys
from solvers.deep.linear_classes import _class_roots, solve_deep_linear_classes
from solvers.progress import report
from solvers.results import Result
from theory.observables import Observables
from theory.spec import ModelSpec, SpecError

__all__ = ["DEEP_PARAMETERS", "DeepContinuation", "DeepSpecialPoint", "continue_deep", "continue_deep_nonlinear"]

#: continued parameters and their valid ranges
DEEP_PARAMETERS = {"temperature": "(0, inf)", "sigma_a": "(0, inf)", "sigma_w": "(0, inf)"}


def _spec_at(spec: ModelSpec, parameter: str, p: float) -> ModelSpec:
    return replace(spec, **{parameter: float(p)})


class _ClassCurve:
    """h_c(e^v; p) and S_c for one class as functions of (v, p)."""

    def __init__(self, spec: ModelSpec, layers: int, parameter: str, c: int):
        self.spec, self.L, self.parameter, self.c = spec, layers, parameter, c
        self.Pc = spec.class_sizes[c]

    def constants(self, p):
        """(σ_a², s = Π_ℓ σ_ℓ² = σ_w^{2L}, T) at parameter value p (evaluated on every residual call:
        plain arithmetic, no ModelSpec is built)."""
        sa2, s, T = self.spec.sigma_a ** 2, self.spec.sigma_w ** (2 * self.L), self.spec.temperature
        if self.parameter == "temperature":
            return sa2, s, p
        if self.parameter == "sigma_a":
            return p * p, s, T
        return sa2, p ** (2 * self.L), T

    def tau(self, u, p):
        sa2, s, _ = self.constants(p)
        x = -math.expm1(-u)
        return math.sqrt(x * math.exp(-(self.L - 1) * u) / (self.Pc * sa2 * s))

    def h(self, u, p):
        sa2, s, T = self.constants(p)
        t = self.tau(u, p)
        return sa2 * s * t * math.exp(self.L * u) + T * t - 1.0

    def residual(self, v, p):
        """h_c(e^v; p); NaN outside the parameter's domain (p <= 0) or for overflowing u, which makes
        the continuation reject the step and shrink it."""
        v0 = float(v[0])
        if not (p > 0 and v0 < math.log(700.0 / self.L)):
            return np.array([math.nan])
        u = math.exp(v0)
        if u <= 0:
            return np.array([math.nan])
        return np.array([self.h(u, p)])

    def action(self, u, p):
        """S_c at a root (the per-class action of :func:`solvers.deep.linear_classes._class_roots`)."""
        _, _, T = self.constants(p)
        t = self.tau(u, p)
        return -0.5 * (self.L - 1) * math.expm1(u) + 0.5 * self.L * u - self.Pc * t + 0.5 * T * self.Pc * t * t

    def stable(self, u, p, eps=1e-7):
        return self.h(u * (1 + eps), p) > self.h(u * (1 - eps), p)

    def roots(self, p):
        sa2, s, T = self.constants(p)
        return [-math.log1p(-r[0]) for r in _class_roots(self.Pc, sa2, s, T, self.L)]

    def root_near(self, u0, p, rel=0.3):
        """The root of h(·; p) within a factor e^{±rel} of u0 (Brent), or None."""
        lo, hi = u0 * math.exp(-rel), u0 * math.exp(rel)
        try:
            if self.h(lo, p) * self.h(hi, p) > 0:
                return None
            return optimize.brentq(lambda u: self.h(u, p), lo, hi, xtol=1e-14, rtol=1e-14)
        except ValueError:
            return None


@dataclass
class DeepSpecialPoint(SpecialPoint):
    """A :class:`solvers.continuation.SpecialPoint` of the deep continuation: ``class_index`` (the class whose
    root curve it lies on; None for the nonlinear grid) and ``record``, the values of its JSON object beyond
    kind, class, p and bracket_p ("x" the root x_c, "residual", "free_energy", "roots_x", "x_before", "x_after").

    Folds are located by bisection (the SpecialPoint of :func:`solvers.continuation.continue_branch`);
    first-order transitions by Brent's method on ΔS(p) (``x``: v = log u of the two exchanging roots);
    nonlinear "stability-change", "lost" and "found" are brackets between grid points, not located
    (``converged`` False, ``bracket`` = ``bracket_p``). Item access ``sp["kind"]`` reads the JSON object."""

    class_index: int | None = None
    record: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"kind": self.kind, "class": self.class_index, "p": float(self.p),
                "bracket_p": [float(v) for v in self.bracket_p], **self.record}

    def __getitem__(self, key):
        return self.to_json()[key]

    @classmethod
    def of(cls, point: SpecialPoint, class_index, record: dict) -> "DeepSpecialPoint":
        return cls(**{f.name: getattr(point, f.name) for f in fields(SpecialPoint)}, class_index=class_index,
                   record=record)


def _bracketed(kind: str, index: int, p: float, bracket_p, class_index, record: dict, *, x=(), residual=math.nan,
               converged=False, stability=(-1, -1), test_values=None) -> DeepSpecialPoint:
    """A special point known by its parameter bracket only (no arclength coordinate, no tangent)."""
    lo, hi = (float(v) for v in bracket_p)
    return DeepSpecialPoint(kind=kind, index=int(index), p=float(p), x=np.asarray(x, dtype=np.float64),
                            arclength=math.nan, bracket=(lo, hi), bracket_p=(lo, hi), width=abs(hi - lo),
                            residual_norm=float(residual), converged=converged, test_values=test_values or {},
                            test_values_bracket={}, stability_before=stability[0], stability_after=stability[1],
                            tangent=np.zeros(0), class_index=class_index, record=record)


@dataclass(frozen=True, kw_only=True)
class DeepContinuation(Result):
    """Result of :func:`continue_deep`: per-class root curves with stability, action and special points
    (:class:`DeepSpecialPoint`: folds from the arclength continuation, first-order transitions of the
    selected root), and the selected solution on a uniform grid.

    Result protocol: ``converged`` (read-only alias ``success``) when every curve reached the end of the
    range (nonlinear: every grid point converged); ``status`` "reached-boundary", "stopped" (the progress
    callback asked to stop) or "not-converged"; ``iterations``: continuation points; ``residual``: the
    largest residual along the curves (nonlinear: of the solves); ``observables()``: the selected solution
    at the last parameter value."""

    spec: ModelSpec
    layers: int
    parameter: str
    p_from: float
    p_to: float
    branches: list
    special_points: list
    selected: list

    @property
    def success(self) -> bool:
        return self.converged

    def observables(self) -> Observables:
        last = self.selected[-1] if self.selected else None
        if last is None:
            nan = np.full((self.spec.m, self.spec.m), np.nan)
            return Observables(outputs=nan, readout_moment=nan, kernel_diagonal=np.full(self.spec.m, np.nan),
                               kernel_blocks=nan)
        top = last["layers"][-1]
        return Observables(outputs=np.asarray(last["outputs"]), readout_moment=np.asarray(last["readout_moment"]),
                           kernel_diagonal=np.asarray(top["kernel_diagonal"]),
                           kernel_blocks=np.asarray(top["kernel_blocks"]))

    def to_json(self) -> dict:
        return with_result_keys(self, {
            "spec": self.spec.to_dict(), "layers": self.layers, "parameter": self.parameter,
            "p_from": self.p_from, "p_to": self.p_to, "branches": self.branches,
            "special_points": [sp.to_json() for sp in self.special_points], "selected": self.selected,
            "success": self.success, "message": self.message, "time_seconds": self.time_seconds,
            "method": ("pseudo-arclength continuation of the deep linear class equations (THEORY §5)"
                       if self.spec.nonlinearity == "linear" else
                       "sequential warm-started solves of the deep class-block theory (solvers.deep.nonlinear)")})

    def table(self) -> str:
        lines = [f"deep linear, L = {self.layers}: {self.parameter} from {self.p_from:g} to {self.p_to:g}; "
                 f"{len(self.branches)} root curve(s), {len(self.special_points)} special point(s)"]
        for sp in (s.to_json() for s in self.special_points):
            if sp["class"] is None:
                lines.append(f"  {sp['kind']:<23s} between {self.parameter} = {sp['bracket_p'][0]:.6g} and "
                             f"{sp['bracket_p'][1]:.6g}")
                continue
            extra = (f"x {sp['x_before']:.4f} -> {sp['x_after']:.4f}" if sp["kind"] == "first-order transition"
                     else f"x = {sp['x']:.4f}")
            lines.append(f"  class {sp['class']}: {sp['kind']:<23s} at {self.parameter} = {sp['p']:.9g}  ({extra})")
        for r in (self.selected if self.spec.nonlinearity != "linear" else []):
            lines.append(f"  {self.parameter} = {r['p']:.6g}: f_cc = {np.round(np.diag(r['outputs']), 4).tolist()}, "
                         f"S = {r['free_energy']:.6g} ± {r['free_energy_error']:.1g}, "
                         f"{'stable' if r['stable'] else 'UNSTABLE'}")
        lines.append(f"{'reached the end' if self.success else 'NOT COMPLETE: ' + self.message} "
                     f"in {self.time_seconds:.2f} s")
        return "\n".join(lines)


def _trace_class(curve: _ClassCurve, p_from, p_to, max_steps):
    """Every root curve of one class between p_from and p_to (deduplicated), as Branch objects."""
    branches = []
    for p0, p1 in ((p_from, p_to), (p_to, p_from)):
        for u0 in curve.roots(p0):
            b = continue_branch(curve.residual, [math.log(u0)], p0, p1, method="arclength", max_steps=max_steps,
                                stability=lambda v, p: 0 if curve.stable(math.exp(float(v[0])), p) else 1,
                                step=0.01 * max(1.0, abs(p1 - p0)), max_step=0.05 * max(1.0, abs(p1 - p0)))
            branches.append(b)
    return dedupe_branches(branches, tol=1e-5)


def _transitions(curve: _ClassCurve, branches):
    """First-order transitions: p where the actions of two stable segments that overlap in p cross."""
    segments = []
    for b in branches:
        u = np.exp(b.x[:, 0])
        stable = b.stability == 0
        start = None
        for k in range(len(u) + 1):
            if k < len(u) and stable[k]:
                start = k if start is None else start
            elif start is not None:
                if k - start >= 2:
                    segments.append((b.p[start:k], u[start:k]))
                start = None
    out = []
    for i in range(len(segments)):
        for j in range(i + 1, len(segments)):
            (pa, ua), (pb, ub) = segments[i], segments[j]
            lo, hi = max(pa.min(), pb.min()), min(pa.max(), pb.max())
            if not lo < hi:
                continue

            def root(p, ps, us):
                k = int(np.argmin(np.abs(ps - p)))
                return curve.root_near(us[k], p)

            def dS(p):
                r1, r2 = root(p, pa, ua), root(p, pb, ub)
                if r1 is None or r2 is None or abs(r1 - r2) < 1e-9 * r1:
                    return math.nan
                return curve.action(r1, p) - curve.action(r2, p)

            grid = np.linspace(lo, hi, 41)
            vals = np.array([dS(p) for p in grid])
            for k in np.nonzero(np.isfinite(vals[:-1]) & np.isfinite(vals[1:]) & (np.sign(vals[:-1]) != np.sign(vals[1:])))[0]:
                ps = optimize.brentq(dS, grid[k], grid[k + 1], xtol=1e-13, rtol=1e-13)
                r1, r2 = root(ps, pa, ua), root(ps, pb, ub)
                # "before" = the root selected on the p_from side of the crossing
                S = float(curve.action(r1, ps))
                out.append(_bracketed(
                    "first-order transition", k, ps, (grid[k], grid[k + 1]), curve.c,
                    {"free_energy": S, "roots_x": sorted([float(-math.expm1(-r1)), float(-math.expm1(-r2))])},
                    x=np.log([r1, r2]), residual=max(abs(curve.h(r1, ps)), abs(curve.h(r2, ps))), converged=True,
                    stability=(0, 0), test_values={"delta_action": S - float(curve.action(r2, ps))}))
    return out


def _check(spec, layers, parameter, p_from, p_to, n_points):
    if spec.inputs is not None:
        raise SpecError("continue --layers needs orthogonal class-structured data (inputs=None)")
    layer_sigmas(spec, layers)
    if parameter not in DEEP_PARAMETERS:
        raise SpecError(f"parameter must be one of {sorted(DEEP_PARAMETERS)} for --layers >= 2 (got {parameter!r})")
    for name, v in (("from", p_from), ("to", p_to)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise SpecError(f"--{name}: {parameter} must be in {DEEP_PARAMETERS[parameter]} (got {v!r})")
    if p_from == p_to:
        raise SpecError(f"--from and --to must differ (got {p_from:g} for both)")
    if not (isinstance(n_points, (int, np.integer)) and n_points >= 2):
        raise SpecError(f"n_points must be an integer >= 2 (got {n_points})")


def continue_deep_nonlinear(spec: ModelSpec, layers: int, parameter: str, p_from: float, p_to: float, *,
                            n_points: int = 11, progress=None, options=None) -> DeepContinuation:
    """Sequential warm-started continuation of the nonlinear deep solution (module docstring).

    One branch (the selected saddle at every grid value); each point records converged, free energy
    (± error), stability, f, U, per-layer kernels and the solver's error estimate. ``success``: every
    grid point converged.
    """
    from solvers.deep.nonlinear import solve_deep_nonlinear

    start = time.perf_counter()
    _check(spec, layers, parameter, p_from, p_to, n_points)
    grid = np.linspace(p_from, p_to, n_points)
    points, specials, prev, residuals, stopped = [], [], None, [], False
    for k, p in enumerate(grid):
        sol = solve_deep_nonlinear(_spec_at(spec, parameter, p), layers, start=prev, options=options)
        rec = {"p": float(p), "converged": bool(sol.converged)}
        if sol.found:
            rec.update({"free_energy": float(sol.free_energy), "free_energy_error": float(sol.free_energy_error),
                        "stable": bool(sol.stable), "outputs": np.asarray(sol.outputs).tolist(),
                        "readout_moment": np.asarray(sol.readout_moment).tolist(),
                        "layers": sol.layer_summaries(), "error_estimate": float(np.max(sol.errors))})
        points.append(rec)
        if k:
            specials += _grid_specials(points[k - 1], rec, k, grid)
        prev = sol if sol.found else prev
        residuals.append(sol.residual)
        if not report(progress, "continuation", k + 1, n_points, **{parameter: float(p)}) and k + 1 < n_points:
            stopped = True
            break
    ok = not stopped and all(r["converged"] for r in points)
    bad = [r["p"] for r in points if not r["converged"]]
    branch = {"class": None, "p": grid[:len(points)].tolist(), "points": points,
              "stable": [r.get("stable", False) for r in points], "status": "reached-boundary" if ok else "incomplete"}
    selected = [r for r in points if r["converged"]]
    errors = [r["error_estimate"] for r in points if "error_estimate" in r]
    finite = [r for r in residuals if math.isfinite(r)]
    message = ("every grid point converged" if ok else f"no solution at {parameter} = {bad}" if bad else
               f"stopped by the progress callback after {len(points)} of {n_points} points")
    return DeepContinuation(spec=spec, layers=layers, parameter=parameter, p_from=float(p_from), p_to=float(p_to),
                            branches=[branch], special_points=specials, selected=selected, converged=ok,
                            status="reached-boundary" if ok else "stopped" if stopped else "not-converged",
                            message=message, iterations=len(points), residual=max(finite) if finite else math.nan,
                            error_estimate=max(errors) if errors else math.nan,
                            time_seconds=time.perf_counter() - start)


def _grid_specials(before: dict, rec: dict, k: int, grid) -> list:
    """Special points between grid points k − 1 and k of the nonlinear continuation (brackets, not located)."""
    bracket = (grid[k - 1], grid[k])
    if before["converged"] != rec["converged"]:
        stab = [0 if r.get("stable") else 1 if r["converged"] else -1 for r in (before, rec)]
        return [_bracketed("lost" if not rec["converged"] else "found", k - 1, grid[k], bracket, None,
                           {"x": math.nan}, stability=tuple(stab))]
    if rec["converged"] and before["stable"] != rec["stable"]:
        return [_bracketed("stability-change", k - 1, 0.5 * (grid[k - 1] + grid[k]), bracket, None, {"x": math.nan},
                           stability=(0 if before["stable"] else 1, 0 if rec["stable"] else 1))]
    return []


def continue_deep(spec: ModelSpec, layers: int, parameter: str, p_from: float, p_to: float, *, n_points: int = 41,
                  max_steps: int = 2000, progress=None) -> DeepContinuation:
    """Follow the deep linear solution (orthogonal class data) in ``parameter`` from ``p_from`` to ``p_to``.

    Returns :class:`DeepContinuation`. Nonlinear φ is passed on to :func:`continue_deep_nonlinear`.
    Raises :class:`theory.spec.SpecError` for explicit inputs, an unknown parameter or values outside
    its range (named with the valid range).
    """
    if spec.nonlinearity != "linear":
        return continue_deep_nonlinear(spec, layers, parameter, p_from, p_to, n_points=n_points, progress=progress)
    start = time.perf_counter()
    _check(spec, layers, parameter, p_from, p_to, n_points)
    branches_json, specials, ok, messages = [], [], True, []
    iterations, residual, stopped = 0, 0.0, False
    for c in range(spec.m):
        curve = _ClassCurve(spec, layers, parameter, c)
        branches = _trace_class(curve, p_from, p_to, max_steps)
        for b in branches:
            u = np.exp(b.x[:, 0])
            x = -np.expm1(-u)
            branches_json.append({"class": c, "p": b.p.tolist(), "x": x.tolist(),
                                  "free_energy": [curve.action(ui, pi) for ui, pi in zip(u, b.p)],
                                  "stable": (b.stability == 0).tolist(), "status": b.status,
                                  "max_residual": b.max_residual})
            for sp in b.folds:
                specials.append(DeepSpecialPoint.of(sp, c, {"x": float(-math.expm1(-math.exp(float(sp.x[0])))),
                                                            "residual": sp.residual_norm}))
            if not b.success and b.status not in ("stopped",):
                ok = False
                messages.append(f"class {c}: {b.message}")
            iterations += len(b.p)
            residual = max(residual, b.max_residual)
        specials += _transitions(curve, branches)
        if not report(progress, "continuation", c + 1, spec.m) and c + 1 < spec.m:
            stopped = True
            messages.append(f"stopped by the progress callback after {c + 1} of {spec.m} classes")
            break
    uniq = _distinct(specials)
    for sp in uniq:
        if sp.kind == "first-order transition":
            before = solve_deep_linear_classes(_spec_at(spec, parameter, sp.bracket_p[0 if p_from < p_to else 1]),
                                               layers)
            after = solve_deep_linear_classes(_spec_at(spec, parameter, sp.bracket_p[1 if p_from < p_to else 0]),
                                              layers)
            sp.record["x_before"], sp.record["x_after"] = (float(before.x[sp.class_index]),
                                                           float(after.x[sp.class_index]))
    selected = []
    for p in np.linspace(p_from, p_to, n_points):
        sol = solve_deep_linear_classes(_spec_at(spec, parameter, p), layers)
        selected.append({"p": float(p), "free_energy": sol.free_energy, "x": sol.x.tolist(),
                         "outputs": sol.outputs.tolist(), "readout_moment": sol.readout_moment.tolist(),
                         "layers": sol.layer_summaries()})
    ok = ok and not stopped
    return DeepContinuation(spec=spec, layers=layers, parameter=parameter, p_from=float(p_from), p_to=float(p_to),
                            branches=branches_json, special_points=uniq, selected=selected, converged=ok,
                            status="reached-boundary" if ok else "stopped" if stopped else "not-converged",
                            message="; ".join(messages) or "every root curve followed to the end of the range",
                            iterations=iterations, residual=residual, error_estimate=0.0,
                            time_seconds=time.perf_counter() - start)


def _distinct(specials) -> list:
    """Folds are found once per traced direction; keep one special point per class, kind and location."""
    uniq = []
    for sp in sorted(specials, key=lambda d: (d.class_index, d.kind, d.p)):
        if not any(u.class_index == sp.class_index and u.kind == sp.kind and abs(u.p - sp.p) < 1e-6
                   * max(1.0, abs(sp.p)) for u in uniq):
            uniq.append(sp)
    return uniq
