"""The convex dual G(t) of THEORY §2–3 with its integration state.

    G(t) = Φ(t) − Σ_c P_c t_cc + (T/2) Σ_c P_c ||t_c||²
    ∇G   = P_c (f_c − e_c + T t_c)
    ∇²G  = ∇²Φ + T diag(P_c)

:class:`DualObjective` evaluates these through :func:`readout_moments` and
owns what the integration needs between calls: the node mapping (mean and
covariance of p(a) at the last accepted iterate), the Gauss–Hermite order
and, for ``integrator="auto"``, the escalation GH → higher order → adaptive
cubature when the error check fails. Both solvers (Newton, fixed point) use
it, so they solve exactly the same discretised problem.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .options import SolverOptions
from .problem import ClassProblem
from .readout_integral import Mapping, QMCNodes, ReadoutMoments, readout_moments

__all__ = ["Evaluation", "OutsideDomain", "DualObjective"]


class OutsideDomain(Exception):
    """t lies where Φ(t) = ∞ (the single-neuron measure cannot be normalised)."""


@dataclass(frozen=True)
class Evaluation:
    t: np.ndarray
    value: float  # G(t)
    gradient: np.ndarray  # (m, m)
    residual: np.ndarray  # f − e + T t, (m, m)
    moments: ReadoutMoments

    @property
    def residual_norm(self) -> float:
        return float(np.max(np.abs(self.residual)))


class DualObjective:
    """G(t) and derivatives, with node placement and rule refinement."""

    def __init__(self, prob: ClassProblem, options: SolverOptions):
        self.prob = prob
        self.options = options
        m = prob.m
        self.mapping = Mapping.prior(m, prob.spec.sigma_a)
        self.order = options.order
        kind = options.integrator
        if kind == "auto":
            kind = "gauss-hermite" if m <= 4 else "qmc"
        self.kind = kind
        self.nfev = 0
        self.qmc_nodes = (QMCNodes.make(m, options.qmc_points, options.qmc_replicates, options.seed)
                          if kind == "qmc" else None)
        self._floor = 1e-6 * prob.spec.sigma_a
        self.log: list[str] = []

    # ------------------------------------------------------------------ evaluation
    def moments(self, t: np.ndarray, hessian: bool, check: bool) -> ReadoutMoments:
        if self.prob.margin(t) <= 0.0:
            raise OutsideDomain("q(t) >= 1")
        try:
            mo = readout_moments(self.prob, t, self.mapping, integrator=self.kind, order=self.order,
                                 check=check, hessian=hessian, hessian_order=min(12, self.order),
                                 rtol=self.options.integral_tol, qmc_nodes=self.qmc_nodes)
        except FloatingPointError as exc:
            raise OutsideDomain(str(exc)) from None
        self.nfev += 1
        return mo

    def evaluate(self, t: np.ndarray, hessian: bool = True, check: bool = False) -> Evaluation:
        mo = self.moments(t, hessian, check)
        P = self.prob.class_sizes[:, None]
        T = self.prob.temperature
        explicit, _ = self.prob.dual_objective_terms(t)
        residual = mo.outputs - np.eye(self.prob.m) + T * t
        return Evaluation(t=t.copy(), value=mo.log_partition + explicit, gradient=P * residual,
                          residual=residual, moments=mo)

    def hessian(self, ev: Evaluation) -> np.ndarray:
        """∇²G as (m², m²) in the flattening c*m + r."""
        P = np.repeat(self.prob.class_sizes, self.prob.m)
        return ev.moments.hessian + self.prob.temperature * np.diag(P)

    # ------------------------------------------------------------------ adaptation
    def update_mapping(self, ev: Evaluation) -> bool:
        """Re-centre the nodes on p(a) at an accepted iterate; True if they moved."""
        new = ev.moments.mapping(self._floor)
        old = self.mapping
        scale = np.linalg.norm(old.L, 2)
        moved = (np.linalg.norm(new.mu - old.mu) > 0.05 * scale
                 or np.linalg.norm(new.L @ new.L.T - old.L @ old.L.T) > 0.1 * scale**2)
        if moved:
            self.mapping = new
        return moved

    def verify(self, t: np.ndarray) -> tuple[Evaluation, bool]:
        """Evaluate with the integrator's error check; refine the rule if it fails.

        Returns (evaluation, ok). When not ok, the rule was refined and the
        solver should iterate again from t.
        """
        ev = self.evaluate(t, hessian=True, check=True)
        err = ev.moments.error_estimate
        if err <= self.options.integral_tol or self.kind == "qmc":
            return ev, True
        if self.kind == "gauss-hermite" and self.order < self.options.max_order:
            self.order = min(self.options.max_order, int(round(self.order * 1.5)))
            self.log.append(f"error {err:.1e} > {self.options.integral_tol:.0e}: Gauss–Hermite order -> {self.order}")
            return ev, False
        if self.kind == "gauss-hermite" and self.options.integrator == "auto" and self.prob.m <= 6:
            self.kind = "cubature"
            self.log.append(f"error {err:.1e} at Gauss–Hermite order {self.order}: switching to adaptive cubature")
            return ev, False
        return ev, True  # cannot refine further; the error estimate is reported as it is
