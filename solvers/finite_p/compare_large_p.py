"""Finite P against P → ∞: the exact solver of THEORY §3 approaching the branches of §4.

With σ_a = σ̄_a/√P and P_c = ρ_c P the finite-P single-neuron measure is
exactly p_t(a) ∝ exp(P·S(a; t)) (:mod:`solvers.large_p.problem`), so f, U,
the kernel and t of :func:`solvers.solve` are compared with the large-P
solution without any rescaling, and G/P with G∞. The gaps are expected to
shrink like 1/P (Laplace corrections: Gaussian fluctuations of width
P^{-1/2} around each a_γ, and O(1/P) shifts of t and of the occupations).

:func:`readout_concentration` integrates p_t(a) ∝ exp(P S(a; t)) on a grid
(m ≤ 3) and assigns each point to the nearest branch (mirror images
included): the mass per branch tends to P_γ and the spread to 0 like P^{-1/2}.
"""
from __future__ import annotations

from dataclasses import dataclass
import time

import numpy as np

from solvers.large_p.solve import LargePSolution, solve_large_p
from solvers.large_p.problem import LargePProblem
from solvers.finite_p.solve import solve_class_data
from solvers.options import SolverOptions

__all__ = ["FiniteComparison", "compare_with_finite_p", "readout_concentration", "COMPARISON_OPTIONS"]


@dataclass(frozen=True)
class FiniteComparison:
    P: int
    class_sizes: tuple
    success: bool
    message: str
    time_seconds: float
    gaps: dict  # max |finite − large-P| per observable, plus "t" and "free_energy" (G/P − G∞)
    masses: np.ndarray | None  # finite-P mass per expanded branch (None if not computed)
    spread: np.ndarray | None  # RMS distance of a from its branch, per expanded branch

    def to_json(self) -> dict:
        return {"P": self.P, "class_sizes": list(self.class_sizes), "success": self.success,
                "message": self.message, "time_seconds": self.time_seconds, "gaps": self.gaps,
                "masses": None if self.masses is None else self.masses.tolist(),
                "spread": None if self.spread is None else self.spread.tolist()}


def _nearest(points, centres, chunk=200_000):
    """(index of the nearest centre, squared distance to it) for every point, in chunks."""
    idx = np.empty(len(points), dtype=np.int64)
    d2 = np.empty(len(points))
    for s in range(0, len(points), chunk):
        d = np.sum((points[s:s + chunk, None, :] - centres[None, :, :]) ** 2, axis=2)
        idx[s:s + chunk] = np.argmin(d, axis=1)
        d2[s:s + chunk] = d[np.arange(len(d)), idx[s:s + chunk]]
    return idx, d2


def readout_concentration(problem: LargePProblem, t, P: int, centres, n_grid: int | None = None):
    """(mass, RMS spread) of p(a) ∝ exp(P S(a; t)) in the nearest-centre cells of ``centres`` (k, m).

    Two tensor rules (m ≤ 3):

    * global: one grid over a box holding every centre plus 8 standard
      deviations of the widest direction, used when its spacing resolves the
      narrowest Gaussian width 1/√(P|λ_max|) by two nodes (moderate P; the
      default ``n_grid`` is chosen so, even and at most 160 per axis: no node
      lies on a coordinate plane, where mirror cells would tie);
    * local: per centre, a grid in the eigenbasis of ∇²S spanning ±8 widths
      per direction, restricted to the centre's cell (large P, when the mass
      sits well inside those boxes).
    """
    centres = np.atleast_2d(np.asarray(centres, dtype=np.float64))
    m = problem.m
    if m > 3:
        raise ValueError(f"readout_concentration integrates on a tensor grid and needs m <= 3 (got m = {m})")
    t = np.asarray(t, dtype=np.float64)
    S0, _, H = problem.action(centres, t)
    lam = np.abs(np.linalg.eigvalsh(H))
    soft = max(float(lam.min()), 1e-3 / problem.sigma_a_bar**2)
    stiff = float(lam.max())
    half = float(np.max(np.abs(centres))) + 8.0 / np.sqrt(P * soft)
    if n_grid is None:  # even, resolving the narrowest width by 2 nodes, at most 160 per axis
        n_grid = int(min(160, max(40, 2 * np.ceil(2.0 * half * np.sqrt(P * stiff) + 1))))
    if 2.0 * half / (n_grid - 1) <= 0.5 / np.sqrt(P * stiff):
        axis = np.linspace(-half, half, n_grid)
        grid = np.stack(np.meshgrid(*([axis] * m), indexing="ij"), axis=-1).reshape(-1, m)
        logw = P * problem.action(grid, t, order=0)
        w = np.exp(logw - logw.max())
        near, d2 = _nearest(grid, centres)
        mass = np.bincount(near, weights=w, minlength=len(centres))
        spread = np.sqrt(np.bincount(near, weights=w * d2, minlength=len(centres)) / np.maximum(mass, 1e-300))
        return mass / mass.sum(), spread
    ref = float(S0.max())
    u = np.linspace(-8.0, 8.0, 33)
    cube = np.stack(np.meshgrid(*([u] * m), indexing="ij"), axis=-1).reshape(-1, m)
    mass, spread = np.zeros(len(centres)), np.zeros(len(centres))
    for j, (c, Hj) in enumerate(zip(centres, H)):
        ev, V = np.linalg.eigh(-Hj)
        widths = 1.0 / np.sqrt(P * np.maximum(ev, 1e-3 / problem.sigma_a_bar**2))
        pts = c + (cube * widths) @ V.T
        near, d2 = _nearest(pts, centres)
        w = np.exp(P * (problem.action(pts, t, order=0) - ref)) * (near == j) * np.prod(widths)
        mass[j] = w.sum()
        spread[j] = np.sqrt((w @ d2) / max(w.sum(), 1e-300))
    return mass / mass.sum(), spread


#: Default options of the finite-P solves of :func:`compare_with_finite_p`: the default solver
#: options with tensor rules refined up to 96 nodes per axis (default 72), since at small P the
#: readout law is sharp enough that the 72-node rule can miss the default ``integral_tol``.
COMPARISON_OPTIONS = SolverOptions(max_order=96)


def compare_with_finite_p(problem: LargePProblem, P_values, solution: LargePSolution | None = None,
                          options=None, concentration: bool = True) -> list:
    """Solve the finite-P theory at each P (σ_a = σ̄_a/√P, P_c = round(ρ_c P)) and measure the gaps.

    ``options`` default to :data:`COMPARISON_OPTIONS`. Returns one :class:`FiniteComparison` per
    P; a finite-P solve that does not converge (including one whose integrator error estimate
    stays above ``integral_tol``) is reported (``success``, ``message``), not raised.
    """
    sol = solution if solution is not None else solve_large_p(problem)
    centres = np.array([a for a, _ in sol.expanded_branches()])
    out = []
    for P in P_values:
        spec = problem.to_spec(int(P))
        start = time.perf_counter()
        res = solve_class_data(spec, options or COMPARISON_OPTIONS)
        elapsed = time.perf_counter() - start
        gaps = res.observables.difference(sol.observables)
        gaps["t"] = float(np.max(np.abs(res.t - sol.t)))
        if res.free_energy is not None:
            gaps["free_energy"] = float(res.free_energy / spec.P - sol.free_energy)
        masses = spread = None
        if concentration and problem.m <= 3:
            exact = LargePProblem.from_spec(spec)  # the spec's own ρ_c = P_c/P and σ̄_a
            masses, spread = readout_concentration(exact, res.t, spec.P, centres)
        out.append(FiniteComparison(P=spec.P, class_sizes=spec.class_sizes, success=bool(res.success),
                                    message=res.message, time_seconds=elapsed, gaps=gaps, masses=masses,
                                    spread=spread))
    return out
