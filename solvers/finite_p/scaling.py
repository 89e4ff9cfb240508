"""Finite-size scaling of the symmetry breaking: the finite-P crossover sharpening into the large-P
transition at T_c (THEORY §3–4).

With σ_a² = σ̄_a²/P and P_c = ρ_c P the finite-P measure is exactly p_t(a) ∝ exp(P·S(a; t)), S the
large-P action of THEORY §4, so P plays the role of an inverse temperature of the readout
fluctuations. Along T at each P the finite-P solution is followed by warm-started solves
(:func:`solvers.finite_p.maps.solve_line`) on a window around the large-P transition T_c: the
pitchfork T_c,r = σ̄_a (ρ_r E[φ²])^{1/2} of the a = 0 branch for odd φ (THEORY §4), otherwise the
first special point of the large-P continuation in T from above
(:func:`solvers.large_p.continuation.continue_solution`).

Order parameter: the readout spread s = tr Cov_p(a) = tr U − |E a|²
(:func:`solvers.finite_p.measure.single_neuron_measure`). As P → ∞, p(a) → Σ_γ P_γ δ(a − a_γ)
(THEORY §4), so s → s_∞ = Σ_γ P_γ |a_γ − ā|²: zero in the symmetric phase (one branch) and
positive once the symmetry is broken, growing like T_c − T at a pitchfork (a* ∝ (T_c − T)^{1/2}).
At finite P the symmetric phase keeps s = O(1/P) (Gaussian fluctuations of width P^{-1/2}), and
the kink of s_∞ at T_c is rounded.

Crossover, from the excess spread δ(T; P) = s − s_∞ (the finite-size rounding of the kink of s_∞
at T_c): its height max δ and its full width at half maximum w(P); and the temperature T_split(P)
below which p(a) is multimodal (the grid bracket of the first point with several modes), its
shift T_split − T_c; and s(T_c; P). Each is fitted to A·P^{-x} by :func:`scipy.optimize.curve_fit` in log space,
the error of x from the covariance (the shift weighted by its grid bracket). For a Landau
(mean-field) theory of p(a) ∝ e^{P S}, s√P is a function of (T − T_c)√P: width and height
scale like P^{-1/2}; the mode split moves with the O(1/P) corrections to t. The collapse plots
s·P^{x_h} against (T − T_c)·P^{x_w} with the fitted exponents x_h of the height and x_w of the
equivalent width of the susceptibility (below).
Rows are points of a resumable sweep (one line per P).

The excess δ peaks in a cusp pinned at T_c (the kink of s_∞ is subtracted, not rounded), and its
half maximum is hidden by the O(1/P) background. The measured crossover is therefore the rounding
of the kink itself, the susceptibility χ(T; P) = ∂²s/∂T² − ∂²s_∞/∂T²|_regular (:func:`susceptibility`):
at P → ∞ the slope of s_∞ jumps by J = s_∞'(T_c⁺) − s_∞'(T_c⁻) at T_c, so χ → J δ(T − T_c); the
smooth 1/P background B(T)/P adds only B''/P. At finite P χ is a peak of area ≈ J, with location
T*(P) (shift T* − T_c → 0), height χ_max, full width at half maximum and equivalent width J/χ_max
(finite whenever the peak lies inside the window). In the Landau form s = P^{-1/2} F((T − T_c)√P)
+ B(T)/P, χ_max ∝ P^{1/2} and both widths and the shift ∝ P^{-1/2}. ∂²s/∂T² is the second
difference on the line's grid; the regular ∂²s_∞/∂T² and J come from large-P solves at T ± η,
η = 10⁻³ T_c, never straddling T_c (:func:`large_p_curvature`). A crossover enters the power-law
fits only where it is isolated: the window's ∫χ dT equals J within ``AREA_TOLERANCE`` (at small P
the rounding of the next transition below T_c overlaps it and adds its own area).

:func:`large_p_rate` measures how fast the finite-P observables approach the large-P solution
away from T_c (:func:`solvers.finite_p.compare_large_p.compare_with_finite_p`): gap ∝ P^{-x} with
x ≈ 1 (Laplace corrections, 1/P).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
import math
import time

import numpy as np

from theory.spec import SpecError

from solvers.finite_p.maps import solve_line
from solvers.large_p.problem import LargePProblem
from solvers.options import SolverOptions
from solvers.results import Result

__all__ = ["transition_temperature", "window", "scaling_line", "crossover", "susceptibility", "fit_power_law",
           "large_p_spread", "large_p_curvature", "ScalingResult", "finite_size_scaling", "large_p_rate", "DEFAULT_P",
           "SCALING_KIND", "SUSCEPTIBILITY_KEYS", "AREA_TOLERANCE"]

DEFAULT_P = (16, 32, 64, 128, 256, 512, 1024)
SCALING_KIND = "codingschemes finite-size scaling"
#: point keys kept per temperature (the full coding scheme is in the sweep file's rows too)
_KEEP = ("temperature", "spread", "n_modes", "label", "code_masses", "mode_masses", "f_diag", "U_diag",
         "converged", "status", "error_estimate", "time_seconds", "iterations")
#: the crossover measures of :func:`susceptibility` that are fitted to power laws of P
SUSCEPTIBILITY_KEYS = ("equivalent_width", "susceptibility_width", "susceptibility_peak", "susceptibility_shift")
#: large-P stencil step η / T_c of :func:`large_p_curvature`
CURVATURE_STEP = 1e-3
#: a crossover is isolated when the window's ∫χ dT is within this fraction of J (one rounded kink)
AREA_TOLERANCE = 0.25


def transition_temperature(problem: LargePProblem) -> tuple[float, str]:
    """(T_c, how it was found): the closed-form pitchfork max_r T_c,r for odd φ, else the first special
    point of the large-P continuation in T from 4·T_scale down to 0.01 (THEORY §4)."""
    from solvers.large_p.problem import critical_temperatures
    from theory.nonlinearities import get_nonlinearity

    if get_nonlinearity(problem.nonlinearity).odd:
        tc = critical_temperatures(problem)
        return float(tc.max()), "closed form T_c,r = σ̄_a (ρ_r E[φ²])^½, largest over r (THEORY §4)"
    from solvers.large_p.continuation import continue_solution

    res = continue_solution(problem, "temperature", 1.0, 0.01)
    specials = sorted((sp for sp in res.special_points if sp.converged), key=lambda sp: -sp.parameter)
    if not specials:
        raise SpecError(f"no large-P transition in temperature in (0.01, 1) for {problem.nonlinearity!r}; "
                        "give --tc explicitly")
    sp = specials[0]
    return float(sp.parameter), f"large-P continuation: {sp.kind} at T = {sp.parameter:.6g}"


def window(tc: float, P: int, lo: float, hi: float, n: int) -> list[float]:
    """n temperatures T = T_c (1 + u/√P), u evenly in [lo, hi], all > 0 (a window that shrinks like
    P^{-1/2}, so every P sees its crossover on the same number of points)."""
    u = np.linspace(lo, hi, n)
    T = tc * (1.0 + u / math.sqrt(P))
    return [float(v) for v in T[T > 1e-3 * tc]]


def scaling_line(job: dict) -> dict:
    """The sweep function: the finite-P solution along T at one P (warm-started), slim rows."""
    start = time.perf_counter()
    problem = LargePProblem(**job["problem"])
    spec = problem.to_spec(int(job["P"]))
    rows = solve_line(spec, "temperature", job["temperatures"], SolverOptions(**job["options"]))
    return {"P": spec.P, "class_sizes": list(spec.class_sizes), "points": [{k: r[k] for k in _KEEP} for r in rows],
            "time_seconds": time.perf_counter() - start}


def _peak(T, y) -> tuple[int, float]:
    """(index, location) of the maximum of y(T): a parabola through the top three values."""
    k = int(np.nanargmax(y))
    loc = float(T[k])
    if 0 < k < len(T) - 1:
        c = np.polyfit(T[k - 1:k + 2] - T[k], y[k - 1:k + 2], 2)
        if c[0] < 0:
            loc = float(T[k] - c[1] / (2 * c[0]))
    return k, loc


def _half_crossing(T, y, k: int, half: float, step: int) -> float:
    """Where y falls below ``half`` walking from index k by ``step`` (linear interpolation; NaN if never)."""
    i = k
    while 0 <= i + step < len(T):
        j = i + step
        if y[j] < half <= y[i]:
            return float(T[i] + (half - y[i]) * (T[j] - T[i]) / (y[j] - y[i]))
        i = j
    return math.nan


def crossover(T, s, s_inf, n_modes, tc: float) -> dict:
    """The crossover of one curve s(T) at fixed P against the large-P curve s_∞(T).

    * excess spread δ = s − s_∞ (the finite-size rounding of the kink of s_∞ at T_c): its
      maximum ``height``, the location of that maximum and its full ``width`` at half maximum
      (NaN when δ stays above half its maximum at an end of the window: at small P the O(1/P)
      Gaussian spread of the symmetric branch does not decay within it);
    * ``split``: where p(a) turns multimodal (the highest T with more than one mode, from the
      grid: the midpoint of the bracket, ``split_error`` its half width), ``shift`` = split − T_c;
    * ``spread_at_tc``: s(T_c) (linear interpolation).
    """
    T, s = np.asarray(T, dtype=np.float64), np.asarray(s, dtype=np.float64)
    order = np.argsort(T)
    T, s = T[order], s[order]
    delta = s - np.asarray(s_inf, dtype=np.float64)[order]
    modes = np.asarray(n_modes)[order]
    k, loc = _peak(T, delta)
    half = 0.5 * delta[k]
    width = _half_crossing(T, delta, k, half, 1) - _half_crossing(T, delta, k, half, -1)
    multi = np.nonzero(modes > 1)[0]
    split = split_error = math.nan
    if len(multi) and multi[-1] < len(T) - 1:
        i = multi[-1]
        split, split_error = 0.5 * (T[i] + T[i + 1]), 0.5 * (T[i + 1] - T[i])
    return {"location": loc, "height": float(delta[k]), "width": width, "split": split,
            "split_error": split_error, "shift": split - tc, "spread_at_tc": float(np.interp(tc, T, s)),
            "edge": k in (0, len(T) - 1)}


def _second_difference(T, y) -> np.ndarray:
    """∂²y/∂T² at the interior points of a (possibly uneven) grid; NaN at both ends."""
    out = np.full(len(T), np.nan)
    hm, hp = np.diff(T)[:-1], np.diff(T)[1:]
    out[1:-1] = 2.0 * ((y[2:] - y[1:-1]) / hp - (y[1:-1] - y[:-2]) / hm) / (hp + hm)
    return out


def susceptibility(T, s, curvature_inf, jump: float, tc: float) -> dict:
    """The rounded kink of one curve s(T) at fixed P: χ = ∂²s/∂T² − ∂²s_∞/∂T² (regular part).

    ``curvature_inf``: the regular ∂²s_∞/∂T² on the same temperatures, ``jump``: J, the slope jump
    of s_∞ at T_c (:func:`large_p_curvature`). Returns ``susceptibility`` (χ on the grid, NaN at
    the ends), ``susceptibility_peak`` (χ_max), ``susceptibility_location`` (T* of the maximum: a
    parabola through the top three), ``susceptibility_shift`` (T* − T_c), ``susceptibility_width``
    (full width at half maximum, NaN where the window holds only one half crossing),
    ``equivalent_width`` (J/χ_max), ``susceptibility_area`` (∫χ dT / J over the window: the share
    of the jump that the window holds), ``susceptibility_edge`` (the maximum sits next to an end) and
    ``isolated``: the window holds one rounded kink (|∫χ dT / J − 1| <= ``AREA_TOLERANCE`` and the
    maximum inside); at small P the rounding of a neighbouring transition adds its own area.
    """
    T, s = np.asarray(T, dtype=np.float64), np.asarray(s, dtype=np.float64)
    order = np.argsort(T)
    T, s = T[order], s[order]
    chi = _second_difference(T, s) - np.asarray(curvature_inf, dtype=np.float64)[order]
    if not np.any(np.isfinite(chi)):
        return {"susceptibility": chi.tolist(), "susceptibility_peak": math.nan, "susceptibility_location": math.nan,
                "susceptibility_shift": math.nan, "susceptibility_width": math.nan, "equivalent_width": math.nan,
                "susceptibility_area": math.nan, "susceptibility_edge": True, "isolated": False}
    k, loc = _peak(T, chi)
    half = 0.5 * chi[k]
    width = _half_crossing(T, chi, k, half, 1) - _half_crossing(T, chi, k, half, -1)
    ok = np.isfinite(chi)
    area = float(np.trapezoid(chi[ok], T[ok])) / jump if jump > 0 else math.nan
    edge = k <= 1 or k >= len(T) - 2
    return {"susceptibility": chi.tolist(), "susceptibility_peak": float(chi[k]), "susceptibility_location": loc,
            "susceptibility_shift": loc - tc, "susceptibility_width": width,
            "equivalent_width": jump / float(chi[k]) if jump > 0 and chi[k] > 0 else math.nan,
            "susceptibility_area": area, "susceptibility_edge": edge,
            "isolated": bool(abs(area - 1.0) <= AREA_TOLERANCE and not edge)}


def fit_power_law(P, y, errors=None) -> dict:
    """Fit |y| = A·P^{-x} (log |y| = log A − x log P, :func:`scipy.optimize.curve_fit`): x, A and their
    standard errors from the covariance (NaN with fewer than 3 finite points). With ``errors``
    (standard errors of y) the fit is weighted by them (absolute sigma in log space, σ_y/|y|);
    without, the errors come from the scatter about the fit."""
    from scipy.optimize import curve_fit

    P, y = np.asarray(P, dtype=np.float64), np.abs(np.asarray(y, dtype=np.float64))
    ok = np.isfinite(y) & (y > 0)
    sigma = None if errors is None else np.asarray(errors, dtype=np.float64)
    if sigma is not None:
        ok &= np.isfinite(sigma) & (sigma > 0) & (sigma < y)
    if ok.sum() < 3:
        return {"exponent": math.nan, "exponent_error": math.nan, "amplitude": math.nan, "amplitude_error": math.nan,
                "n": int(ok.sum())}
    popt, pcov = curve_fit(lambda lp, la, x: la - x * lp, np.log(P[ok]), np.log(y[ok]), p0=(0.0, 0.5),
                           sigma=None if sigma is None else sigma[ok] / y[ok], absolute_sigma=sigma is not None)
    err = np.sqrt(np.diag(pcov))
    return {"exponent": float(popt[1]), "exponent_error": float(err[1]), "amplitude": float(np.exp(popt[0])),
            "amplitude_error": float(np.exp(popt[0]) * err[0]), "n": int(ok.sum())}


def large_p_spread(problem: LargePProblem, temperatures) -> list[float]:
    """s_∞(T) = Σ_γ P_γ |a_γ − ā|² of the large-P solution at each T (NaN where it fails).

    The temperatures are solved in the order given, each warm-started from the previous solution
    (:func:`solvers.large_p.phase_diagram.warm_point`: Newton on its branches with the global-maximum
    check, the global solver where that fails), so pass them sorted."""
    from solvers.large_p.phase_diagram import warm_point

    out, prev = [], None
    for T in temperatures:
        try:
            sol, _ = warm_point(problem.with_parameter("temperature", float(T)), prev)
            prev = sol
            br = sol.expanded_branches()
            a = np.array([b[0] for b in br])
            w = np.array([b[1] for b in br], dtype=np.float64)
            mean = w @ a / w.sum()
            out.append(float(w @ np.sum((a - mean) ** 2, axis=1) / w.sum()))
        except Exception:  # noqa: BLE001 - a failed reference point is a gap in the curve, not an error
            out.append(math.nan)
            prev = None
    return out


def large_p_curvature(problem: LargePProblem, temperatures, tc: float, spread=None) -> dict:
    """The large-P reference of :func:`susceptibility`: the regular ∂²s_∞/∂T² at each T and the
    slope jump J at T_c.

    Central differences with step η = ``CURVATURE_STEP``·T_c on s_∞ (:func:`large_p_spread`, whose
    values at the temperatures may be passed as ``spread``); a stencil that would straddle T_c is
    replaced by the mean of the two stencils centred at T_c ∓ 2η. J = s_∞'(T_c + 2η) − s_∞'(T_c − 2η)
    from central differences with step η. Returns {"curvature": [...], "slope_below",
    "slope_above", "slope_jump", "step"}.
    """
    T = np.asarray(temperatures, dtype=np.float64)
    eta = CURVATURE_STEP * tc
    centre = np.where(np.abs(T - tc) < 2.0 * eta, np.nan, T)
    near = np.isnan(centre)
    if spread is None:
        spread = large_p_spread(problem, T)
    mid = np.asarray(spread, dtype=np.float64)
    nodes = [tc - 3 * eta, tc - 2 * eta, tc - eta, tc + eta, tc + 2 * eta, tc + 3 * eta]
    side = np.array(large_p_spread(problem, nodes))
    lo = np.array(large_p_spread(problem, T[~near] - eta))
    hi = np.array(large_p_spread(problem, T[~near] + eta))
    curvature = np.empty(len(T))
    curvature[~near] = (hi - 2.0 * mid[~near] + lo) / eta**2
    curvature[near] = 0.5 * ((side[0] - 2 * side[1] + side[2]) + (side[3] - 2 * side[4] + side[5])) / eta**2
    below, above = (side[2] - side[0]) / (2 * eta), (side[5] - side[3]) / (2 * eta)
    return {"curvature": curvature.tolist(), "slope_below": float(below), "slope_above": float(above),
            "slope_jump": float(above - below), "step": eta}


@dataclass(frozen=True, kw_only=True)
class ScalingResult(Result):
    """Crossovers at each P and their power-law fits (:func:`finite_size_scaling`).

    ``lines[i]``: the points along T at ``P[i]`` (None if not computed); ``crossovers[i]``: the
    output of :func:`crossover`; ``susceptibilities[i]``: the output of :func:`susceptibility`;
    ``fits``: {"width", "height", "spread_at_tc", "shift", *SUSCEPTIBILITY_KEYS} →
    :func:`fit_power_law` (the susceptibility keys over the P whose crossover is ``isolated``); ``large_p``: {"temperature": [...], "spread": [...]}, the P → ∞ curve,
    and the reference of the susceptibility (``curvature_on_lines``, ``slope_below``,
    ``slope_above``, ``slope_jump``). ``converged``: every point converged; ``error_estimate``: the
    largest exponent error.
    """

    problem: LargePProblem
    tc: float
    tc_source: str
    P: tuple
    lines: list
    crossovers: list
    fits: dict
    large_p: dict
    susceptibilities: list = field(default_factory=list)
    path: str | None = None

    def observables(self):
        raise NotImplementedError("a scaling study holds curves per P, not one set of observables")

    def to_json(self) -> dict:
        return {**self.result_json(), "problem": self.problem.to_dict(), "tc": self.tc, "tc_source": self.tc_source,
                "P": list(self.P), "lines": self.lines, "crossovers": self.crossovers, "fits": self.fits,
                "susceptibilities": self.susceptibilities, "large_p": self.large_p, "path": self.path, "order_parameter": "spread tr Cov_p(a) = tr U - |E a|^2"}

    def table(self) -> str:
        lines = [f"{self.problem.nonlinearity}: T_c = {self.tc:.6g} ({self.tc_source}); "
                 f"slope jump of s_∞ at T_c: {self.large_p.get('slope_jump', math.nan):.4g}",
                 f"{'P':>6s} {'max δ at':>10s} {'height':>10s} {'width':>10s} {'T_split':>10s} {'shift':>11s} "
                 f"{'χ_max':>10s} {'χ peak at':>10s} {'χ shift':>11s} {'χ FWHM':>10s} {'J/χ_max':>10s} {'∫χ/J':>6s}"]
        chis = self.susceptibilities or [None] * len(self.P)
        for P, c, x in zip(self.P, self.crossovers, chis):
            if c is None:
                lines.append(f"{P:6d}  (not computed)")
                continue
            row = (f"{P:6d} {c['location']:10.5g} {c['height']:10.4g} {c['width']:10.4g} {c['split']:10.5g} "
                   f"{c['shift']:11.4g}")
            if x is not None:
                row += (f" {x['susceptibility_peak']:10.4g} {x['susceptibility_location']:10.5g} "
                        f"{x['susceptibility_shift']:11.4g} {x['susceptibility_width']:10.4g} "
                        f"{x['equivalent_width']:10.4g} {x['susceptibility_area']:6.2f}")
            flags = [w for w, on in (("δ peak", c["edge"]), ("χ peak", x and x["susceptibility_edge"])) if on]
            lines.append(row + (f"  ({' and '.join(flags)} at the window edge)" if flags else ""))
        for k, f in self.fits.items():
            lines.append(f"{k:>13s} ∝ P^-x, x = {f['exponent']:.3f} ± {f['exponent_error']:.3f}")
        lines.append(self.message)
        return "\n".join(lines)


def finite_size_scaling(problem: LargePProblem, path, *, P_values=DEFAULT_P, window_u=(-3.0, 2.0),
                        n_temperatures: int = 21, tc: float | None = None, options: SolverOptions | None = None,
                        workers: int | None = None, backend: str = "process", progress=True) -> ScalingResult:
    """Follow the finite-P solution through T_c at each P (σ_a² = σ̄_a²/P); fit width and shift.

    ``problem`` fixes φ, ρ, σ̄_a and σ_1 (its temperature is not used); ``tc`` overrides
    :func:`transition_temperature`. Each P is one point of a resumable sweep at ``path``.
    ``options`` default to :data:`solvers.finite_p.compare_large_p.COMPARISON_OPTIONS` (tensor
    rules up to 96 nodes per axis: at large P the modes are sharp).
    """
    from solvers.finite_p.compare_large_p import COMPARISON_OPTIONS
    from solvers.sweep import run_sweep

    start = time.perf_counter()
    P_values = tuple(int(p) for p in P_values)
    if tc is None:
        tc, source = transition_temperature(problem)
    else:
        source = "given"
    options = options or COMPARISON_OPTIONS
    jobs = [{"problem": problem.to_dict(), "P": P, "options": asdict(options),
             "temperatures": window(tc, P, window_u[0], window_u[1], n_temperatures)} for P in P_values]
    records = run_sweep(scaling_line, jobs, path, workers=workers, backend=backend, progress=progress,
                        metadata={"kind": SCALING_KIND, "problem": problem.to_dict(), "tc": tc})
    lines = [None] * len(P_values)
    for r in records:
        if r["status"] == "ok":
            lines[r["index"]] = r["result"]
    s_inf = [None if ln is None else large_p_spread(problem, [p["temperature"] for p in ln["points"]])
             for ln in lines]
    crossovers = [None if ln is None else crossover([p["temperature"] for p in ln["points"]],
                                                    [p["spread"] for p in ln["points"]], si,
                                                    [p["n_modes"] for p in ln["points"]], tc)
                  for ln, si in zip(lines, s_inf)]
    done = [(P, c) for P, c in zip(P_values, crossovers) if c is not None]
    Ps = [P for P, _ in done]
    fits = {k: fit_power_law(Ps, [c[k] for _, c in done]) for k in ("width", "height", "spread_at_tc")}
    fits["shift"] = fit_power_law(Ps, [c["shift"] for _, c in done], [c["split_error"] for _, c in done])
    curv = [None if ln is None else large_p_curvature(problem, [p["temperature"] for p in ln["points"]], tc, si)
            for ln, si in zip(lines, s_inf)]
    chis = [None if ln is None else susceptibility([p["temperature"] for p in ln["points"]],
                                                   [p["spread"] for p in ln["points"]], cv["curvature"],
                                                   cv["slope_jump"], tc)
            for ln, cv in zip(lines, curv)]
    iso = [(P, x) for P, x in zip(P_values, chis) if x is not None and x["isolated"]]
    fits.update({k: fit_power_law([P for P, _ in iso], [x[k] for _, x in iso]) for k in SUSCEPTIBILITY_KEYS})
    lo, hi = (tc * (1 + u / math.sqrt(min(P_values))) for u in window_u)
    T_ref = np.linspace(max(lo, 1e-3 * tc), hi, 41)
    ref = next((cv for cv in curv if cv is not None), {})
    large = {"temperature": T_ref.tolist(), "spread": large_p_spread(problem, T_ref),
             "spread_on_lines": s_inf, "curvature_on_lines": [None if cv is None else cv["curvature"] for cv in curv],
             **{k: ref.get(k, math.nan) for k in ("slope_below", "slope_above", "slope_jump")}}
    points = [p for ln in lines if ln is not None for p in ln["points"]]
    converged = all(ln is not None for ln in lines) and all(p["converged"] for p in points)
    errs = [f["exponent_error"] for f in fits.values() if np.isfinite(f["exponent_error"])]
    message = (f"{sum(ln is not None for ln in lines)} of {len(lines)} P values, "
               f"{sum(p['converged'] for p in points)} of {len(points)} points converged")
    return ScalingResult(problem=problem, tc=tc, tc_source=source, P=P_values, lines=lines, crossovers=crossovers,
                         fits=fits, large_p=large, susceptibilities=chis, path=str(path), converged=converged,
                         status="converged" if converged else "not-converged", message=message,
                         iterations=len(points), error_estimate=max(errs, default=math.nan),
                         time_seconds=time.perf_counter() - start)


def large_p_rate(problem: LargePProblem, P_values, options: SolverOptions | None = None) -> dict:
    """Gaps max|finite P − large P| of f, U and the kernel at each P and their fitted rate P^{-x}
    (:func:`compare_with_finite_p`, away from T_c: expected x ≈ 1)."""
    from solvers.finite_p.compare_large_p import compare_with_finite_p

    comps = compare_with_finite_p(problem, P_values, options=options, concentration=False)
    keys = ("outputs", "readout_moment", "kernel_diagonal", "kernel_blocks")
    gaps = {k: [c.gaps[k] for c in comps] for k in keys}
    return {"P": [c.P for c in comps], "success": [c.success for c in comps], "gaps": gaps,
            "fits": {k: fit_power_law([c.P for c in comps], gaps[k]) for k in keys}}
