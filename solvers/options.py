"""Options of every solver: frozen dataclasses on one base that validate themselves on construction.

Subclass :class:`Options`, declare fields with defaults, and implement ``validate()`` with the
checks of :mod:`theory.checks`; a bad value raises :class:`theory.spec.SpecError` naming the
field and its valid range, before any work starts.
"""
from __future__ import annotations

from dataclasses import dataclass
import numbers
from theory.checks import check_choice, check_float, check_int
from theory.spec import SpecError

__all__ = ["Options", "METHODS", "STARTS", "INTEGRATOR_CHOICES", "SolverOptions", "LARGE_P_START_MAX_SIGMA_BAR2"]

METHODS = ("newton", "fixed-point")
STARTS = ("auto", "zero", "large-p")
#: ``start="auto"`` warm-starts from the large-P solution when σ̄_a² = P σ_a² is at most this (the
#: paper's regime σ_a² ∝ 1/P, where p(a) concentrates on sharp modes far from t = 0's prior)
LARGE_P_START_MAX_SIGMA_BAR2 = 4.0
INTEGRATOR_CHOICES = ("auto", "trapezoid", "gauss-hermite", "cubature", "qmc")


@dataclass(frozen=True)
class Options:
    """Base of every options class: ``validate()`` runs on construction and on ``replace``."""

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Raise :class:`theory.spec.SpecError` for a bad field (subclasses override)."""


@dataclass(frozen=True)
class SolverOptions(Options):
    """How to solve the saddle-point equations.

    method
        ``"newton"`` (Newton on the convex dual G with a domain-respecting
        Armijo line search) or ``"fixed-point"`` (preconditioned fixed point
        t ← t − D⁻¹∇G with Anderson mixing).
    tol
        Convergence when max_{c,r} |f_cr − δ_cr + T t_cr| <= tol.
    integral_tol
        Required integrator error estimate on f, U and the kernel at the
        solution, relative to each observable's scale max(1, max|value|); the
        rule is refined until it is met, and a result that misses it is not
        ``converged`` (QMC's error bar, ~5e-3 for m = 5, misses the default).
    integrator
        ``"auto"`` (tensor trapezoid for m <= 4 with order escalation; QMC
        for m >= 5), or one of ``"trapezoid"``, ``"gauss-hermite"``,
        ``"cubature"`` (adaptive Genz–Malik, slower, the reference), ``"qmc"``.
    order, max_order
        Initial and largest tensor-rule nodes per axis.
    qmc_points, qmc_replicates, seed
        Randomised QMC nodes per replicate, number of replicates, seed.
    start
        Starting field: ``"zero"`` (t = 0, always inside the domain), ``"large-p"`` (the
        P → ∞ solution of :func:`solvers.large_p.solve.solve_large_p` with σ̄_a² = P σ_a², used
        if the finite-P dual is lower there than at t = 0) or ``"auto"`` (``"large-p"`` for
        nonlinear φ with σ̄_a² <= ``LARGE_P_START_MAX_SIGMA_BAR2``, else ``"zero"``). G is
        convex, so the start changes the path, not the solution.
    """

    method: str = "newton"
    tol: float = 1e-7
    integral_tol: float = 1e-7
    maxiter: int = 200
    integrator: str = "auto"
    order: int = 24
    max_order: int = 72
    anderson_memory: int = 6
    qmc_points: int = 4096
    qmc_replicates: int = 8
    seed: int = 0
    start: str = "auto"

    def validate(self) -> None:
        check_choice("method", self.method, METHODS)
        check_choice("start", self.start, STARTS)
        check_choice("integrator", self.integrator, INTEGRATOR_CHOICES)
        for name in ("tol", "integral_tol"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real):  # check_float would also take the string "1e-7"
                raise SpecError(f"{name} must be a finite number in (0, 1) (got {value!r})")
            check_float(name, value, 0.0, 1.0, lo_open=True, hi_open=True)
        for name, lo in (("maxiter", 1), ("order", 2), ("max_order", 2), ("anderson_memory", 0),
                         ("qmc_points", 64), ("qmc_replicates", 2)):
            check_int(name, getattr(self, name), lo)
        if self.max_order < self.order:
            raise SpecError(f"max_order must be >= order ({self.order}) (got {self.max_order})")
