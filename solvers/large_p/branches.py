"""Branch equations of the P → ∞ limit (THEORY §4) with analytic Jacobian.

A solution with n branches a_γ ∈ R^m, occupations P_γ and field t solves

    Σ_γ P_γ a_γ ψ'(t_c·a_γ) − e_c + T t_c = 0          (m² equations, [c, r])
    ∇_a S(a_γ; t) = −a_γ/σ̄_a² + Σ_c ρ_c ψ'(t_c·a_γ) t_c = 0   (n·m)
    S(a_γ; t) − S(a_1; t) = 0,  γ = 2..n                (n − 1)
    Σ_γ P_γ − 1 = 0                                     (1)

a square system in m² + n·m + n unknowns. These are the optimality
conditions 0 ∈ ∂G∞(t) of the convex non-smooth dual
G∞(t) = max_a S − Σ_c ρ_c t_cc + (T/2) Σ_c ρ_c ||t_c||², whose
subdifferential is the convex hull of ρ_c(a_γ ψ'(t_c·a_γ) − e_c + T t_c)
over the global maximisers a_γ. The system does not know whether the a_γ
are global maxima or whether P_γ ≥ 0; :mod:`solvers.large_p.solve` checks both.

Packing of x (``BranchSystem.pack`` / ``unpack``)::

    x = [ t[0, 0..m-1], ..., t[m-1, 0..m-1],      # t[c, r] at c*m + r
          a_1[0..m-1], ..., a_n[0..m-1],          # a_γ[r] at m² + γ*m + r
          P_1, ..., P_n ]                         # at m² + n*m + γ

Parameters p (``branch_system(problem, n, parameter)``): ``"temperature"``,
``"sigma_a_bar"``, ``"sigma_w"`` (σ_1; ψ tables are rebuilt per value, and
∂ψ/∂σ_1 comes from :meth:`LargePProblem.psi_sigma_derivatives`), or
``"rho_r"`` (class fraction of class r, 0-based; the other fractions are
rescaled proportionally so that Σρ = 1, see
:meth:`LargePProblem.with_parameter`).

For odd φ, S is even in a and all observables are even, so a_γ and −a_γ
are interchangeable: a branch of this system stands for the mirror orbit
{a_γ, −a_γ} (how :mod:`solvers.large_p.solve` reports it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solvers.newton import NewtonOutcome, damped_newton, lstsq_solver
from solvers.large_p.problem import LargePProblem, parameter_name

__all__ = ["BranchSystem", "branch_system", "newton_branches", "NewtonOutcome"]


@dataclass(frozen=True, eq=False)
class BranchSystem:
    """The n-branch residual F(x, p) and its Jacobian (F_x, F_p); see the module docstring."""

    problem: LargePProblem
    n: int
    parameter: str = "temperature"

    def __post_init__(self):
        if not isinstance(self.n, (int, np.integer)) or self.n < 1:
            raise ValueError(f"n_branches must be an integer >= 1 (got {self.n!r})")
        parameter_name(self.parameter, self.problem.m)

    def __iter__(self):
        """``residual, jacobian, pack, unpack = branch_system(...)``."""
        return iter((self.residual, self.jacobian, self.pack, self.unpack))

    # ------------------------------------------------------------------ packing
    @property
    def m(self) -> int:
        return self.problem.m

    @property
    def size(self) -> int:
        m, n = self.m, self.n
        return m * m + n * m + n

    @property
    def p0(self) -> float:
        """The parameter's value in ``problem``."""
        return self.problem.parameter_value(self.parameter)

    def pack(self, t, A, P) -> np.ndarray:
        m, n = self.m, self.n
        t = np.asarray(t, dtype=np.float64).reshape(m, m)
        A = np.asarray(A, dtype=np.float64).reshape(n, m)
        P = np.asarray(P, dtype=np.float64).reshape(n)
        return np.concatenate([t.ravel(), A.ravel(), P])

    def unpack(self, x):
        """(t (m, m), A (n, m), P (n,)) from x (copies)."""
        m, n = self.m, self.n
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (self.size,):
            raise ValueError(f"x must have shape ({self.size},) for m = {m}, n = {n} (got {x.shape})")
        return x[:m * m].reshape(m, m).copy(), x[m * m:m * m + n * m].reshape(n, m).copy(), x[m * m + n * m:].copy()

    def problem_at(self, p: float) -> LargePProblem:
        if p == self.p0:
            return self.problem
        return self.problem.with_parameter(self.parameter, p)

    # ------------------------------------------------------------------ residual
    def residual(self, x, p=None) -> np.ndarray:
        prob = self.problem if p is None else self.problem_at(p)
        t, A, P = self.unpack(x)
        rho, sa2 = prob.rho, prob.sigma_a_bar**2
        p0, p1, _ = prob.psi(A @ t.T)
        f = np.einsum("g,gc,gr->cr", P, p1, A)
        Ff = f - np.eye(self.m) + prob.temperature * t
        Fa = -A / sa2 + (p1 * rho) @ t
        S = -0.5 * np.sum(A * A, axis=1) / sa2 + p0 @ rho
        return np.concatenate([Ff.ravel(), Fa.ravel(), S[1:] - S[0], [P.sum() - 1.0]])

    def jacobian(self, x, p=None):
        """(F_x (N, N), F_p (N,)) at (x, p), analytic."""
        prob = self.problem if p is None else self.problem_at(p)
        m, n = self.m, self.n
        mm, N = m * m, self.size
        t, A, P = self.unpack(x)
        rho, sa, T = prob.rho, prob.sigma_a_bar, prob.temperature
        sa2 = sa * sa
        G = A @ t.T
        p0, p1, p2 = prob.psi(G)
        I = np.eye(m)
        J = np.zeros((N, N))
        ia, iP = mm, mm + n * m
        # f rows [c, r]
        Jft = np.zeros((m, m, m, m))  # [c, r, c', s]
        blocks = np.einsum("g,gc,gr,gs->crs", P, p2, A, A) + T * I[None]
        Jft[np.arange(m), :, np.arange(m), :] = blocks
        J[:mm, :mm] = Jft.reshape(mm, mm)
        Jfa = (P[None, None, :, None] * (I[None, :, None, :] * p1.T[:, None, :, None]
                                         + np.einsum("gr,gc,cs->crgs", A, p2, t)))  # [c, r, γ, s]
        J[:mm, ia:iP] = Jfa.reshape(mm, n * m)
        J[:mm, iP:] = np.einsum("gr,gc->crg", A, p1).reshape(mm, n)
        # stationarity rows [γ, r]
        Jat = rho[None, None, :, None] * (np.einsum("gc,gs,cr->grcs", p2, A, t)
                                          + p1[:, None, :, None] * I[None, :, None, :])  # [γ, r, c, s]
        J[ia:iP, :mm] = Jat.reshape(n * m, mm)
        H = np.einsum("gc,cr,cs->grs", p2 * rho, t, t) - I[None] / sa2
        for g in range(n):
            J[ia + g * m:ia + (g + 1) * m, ia + g * m:ia + (g + 1) * m] = H[g]
        # equal-S rows
        grad = -A / sa2 + (p1 * rho) @ t
        dSdt = (rho[None, :, None] * p1[:, :, None] * A[:, None, :]).reshape(n, mm)  # [γ, (c, s)]
        for g in range(1, n):
            row = iP + g - 1
            J[row, :mm] = dSdt[g] - dSdt[0]
            J[row, ia + g * m:ia + (g + 1) * m] = grad[g]
            J[row, ia:ia + m] -= grad[0]
        J[N - 1, iP:] = 1.0
        return J, self._parameter_derivative(prob, t, A, P, G, p0, p1)

    def _parameter_derivative(self, prob, t, A, P, G, p0, p1) -> np.ndarray:
        m, n = self.m, self.n
        kind, r = parameter_name(self.parameter, m)
        rho, sa = prob.rho, prob.sigma_a_bar
        Ff, Fa, FS = np.zeros((m, m)), np.zeros((n, m)), np.zeros(n)
        if kind == "temperature":
            Ff = t.copy()
        elif kind == "sigma_a_bar":
            Fa = 2.0 * A / sa**3
            FS = np.sum(A * A, axis=1) / sa**3
        elif kind == "rho":
            drho = -rho / (1.0 - rho[r])
            drho[r] = 1.0
            Fa = (p1 * drho) @ t
            FS = p0 @ drho
        else:  # sigma_w
            d0, d1 = prob.psi_sigma_derivatives(G)
            Ff = np.einsum("g,gc,gr->cr", P, d1, A)
            Fa = (d1 * rho) @ t
            FS = d0 @ rho
        return np.concatenate([Ff.ravel(), Fa.ravel(), FS[1:] - FS[0], [0.0]])


def branch_system(problem: LargePProblem, n_branches: int, parameter: str = "temperature") -> BranchSystem:
    """The n-branch system; unpacks as ``residual, jacobian, pack, unpack``.

    ``residual(x, p)`` → F (N,), ``jacobian(x, p)`` → (F_x (N, N), F_p (N,)),
    N = m² + n·m + n, with x packed as in the module docstring and p the
    value of ``parameter`` (None: the problem's own value).
    """
    return BranchSystem(problem, int(n_branches), parameter)


def newton_branches(system: BranchSystem, x0, p=None, tol: float = 1e-10, maxiter: int = 60) -> NewtonOutcome:
    """Damped Newton on F(x, p) = 0 (:func:`solvers.newton.damped_newton`: backtracking on ||F||₂);
    converged when max|F| <= tol. Steps are least squares (SVD, rcond 1e-13): the minimum-norm step
    where J is singular, e.g. occupations that the equations do not determine (odd φ with m >= 4
    sign patterns)."""
    return damped_newton(lambda x: system.residual(x, p), lambda x: system.jacobian(x, p)[0],
                         np.asarray(x0, dtype=np.float64).copy(), tol=tol, maxiter=maxiter,
                         solve=lstsq_solver(1e-13))
