"""Smoothed minimisation of the non-smooth dual G∞(t) (THEORY §4).

G∞(t) = max_a S(a; t) − Σ_c ρ_c t_cc + (T/2) Σ_c ρ_c ||t_c||² is convex but
not differentiable where the maximiser of S is not unique, which is exactly
where the solution sits once the symmetry is broken. The finite-P dual is a
smoothing of it: Φ(t)/P = (1/P) log ∫ e^{P S(a; t)} da (+ const). Here the
same smoothing is applied to the local maxima a_k(t) of S only,

    M_β(t) = (1/β) log Σ_k e^{β S_k(t)},    S_k(t) = S(a_k(t); t),
    G_β(t) = M_β(t) − Σ_c ρ_c t_cc + (T/2) Σ_c ρ_c ||t_c||²,

so no m-dimensional integral is needed (it is Laplace's method at P = β
without the Gaussian prefactors). Each S_k is convex in t and smooth while
a_k is a strict maximum, with (envelope theorem, implicit a_k(t))

    ∇_t S_k  = v_k,  v_k[c, s] = ρ_c ψ'(t_c·a_k) a_ks,
    ∇²_t S_k = S_tt − S_taᵀ H_k⁻¹ S_at      (H_k = ∇²_a S, negative definite),

and G_β has gradient Σ_k π_k v_k − ρ_c e_c + T ρ_c t_c and Hessian
Σ_k π_k ∇²S_k + β Cov_π(v) + T diag(ρ), π = softmax(β S_k). G_β → G∞
uniformly (0 ≤ M_β − max S ≤ log K/β), so Newton on G_β for growing β
tracks the minimiser of G∞ and the weights π_k concentrate on the occupied
branches. :mod:`solvers.large_p.solve` then polishes the result with the exact
branch equations.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from theory.domain import marginal_directions

from solvers.large_p.maxima import ActionMaxima, maximise_action
from solvers.large_p.problem import LargePProblem
from solvers.newton import damped_newton_minimise, max_abs, solve_or_lstsq

__all__ = ["SmoothedDualPoint", "evaluate_smoothed_dual", "minimise_smoothed_dual", "domain_q"]


def domain_q(problem: LargePProblem, t) -> float:
    """q(t) = max_{|â|=1} σ̄_a² σ_1² Σ_c ρ_c κ(t_c·â) (THEORY §4; 0 for sublinear φ). S is bounded iff q ≤ 1."""
    nl = problem.phi
    if not nl.linear_growth:
        return 0.0
    _, q = marginal_directions(np.asarray(t, dtype=np.float64), problem.rho, problem.sigma_a_bar,
                               problem.sigma_w, nl)
    return float(q[0]) if len(q) else 0.0


@dataclass(frozen=True)
class SmoothedDualPoint:
    t: np.ndarray
    beta: float
    value: float  # G_β(t)
    gradient: np.ndarray  # (m, m)
    residual: np.ndarray  # Σ π_k a_k ψ'(t_c·a_k) − e_c + T t_c, (m, m)
    weights: np.ndarray  # π_k over maxima.maxima
    maxima: ActionMaxima
    hessian: np.ndarray | None = None  # (m², m²)


def _maximum_derivatives(problem, t, a):
    """(v (m, m), ∇²_t S_k (m², m²)) for one strict local maximum a."""
    m = problem.m
    rho, sa2 = problem.rho, problem.sigma_a_bar**2
    g = t @ a
    _, p1, p2 = problem.psi(g)
    v = (rho * p1)[:, None] * a[None, :]
    Stt = np.zeros((m, m, m, m))
    Stt[np.arange(m), :, np.arange(m), :] = (rho * p2)[:, None, None] * np.outer(a, a)[None]
    Sat = rho[None, :, None] * (p1[None, :, None] * np.eye(m)[:, None, :]
                                + p2[None, :, None] * t.T[:, :, None] * a[None, None, :])  # [r, c, s]
    Sat = Sat.reshape(m, m * m)
    H = np.einsum("c,cr,cs->rs", rho * p2, t, t) - np.eye(m) / sa2
    hess = Stt.reshape(m * m, m * m) - Sat.T @ np.linalg.solve(H, Sat)
    return v, hess


def evaluate_smoothed_dual(problem: LargePProblem, t, beta: float, warm=None, hessian: bool = True,
                           n_random: int = 16, seed: int = 0) -> SmoothedDualPoint:
    t = np.asarray(t, dtype=np.float64)
    m = problem.m
    rho, T = problem.rho, problem.temperature
    mx = maximise_action(problem, t, warm=warm, n_random=n_random, seed=seed)
    S = np.array([x.value for x in mx.maxima])
    z = beta * (S - S[0])
    pi = np.exp(z)
    Z = pi.sum()
    pi /= Z
    value = S[0] + np.log(Z) / beta - rho @ np.diag(t) + 0.5 * T * rho @ np.sum(t * t, axis=1)
    vs, hs = [], []
    for x, w in zip(mx.maxima, pi):
        if w < 1e-300 and not hessian:
            vs.append(np.zeros((m, m)))
            continue
        v, h = _maximum_derivatives(problem, t, x.a)
        vs.append(v)
        hs.append(h)
    vs = np.array(vs)
    vbar = np.einsum("k,kcs->cs", pi, vs)
    grad = vbar - rho[:, None] * np.eye(m) + T * rho[:, None] * t
    residual = grad / rho[:, None]
    H = None
    if hessian:
        V = vs.reshape(len(pi), m * m)
        dv = V - vbar.ravel()[None]
        H = np.einsum("k,kij->ij", pi, np.array(hs)) + beta * (dv.T * pi) @ dv + T * np.diag(np.repeat(rho, m))
        H = 0.5 * (H + H.T)
    return SmoothedDualPoint(t=t.copy(), beta=beta, value=float(value), gradient=grad, residual=residual,
                             weights=pi, maxima=mx, hessian=H)


def minimise_smoothed_dual(problem: LargePProblem, t0, beta: float, *, tol: float = 1e-9, maxiter: int = 60,
                           warm=None, n_random: int = 16, seed: int = 0, q_max: float | None = None):
    """Newton with Armijo backtracking on G_β from t0 (:func:`solvers.newton.damped_newton_minimise`;
    steepest descent where the Newton step is not a descent direction); returns (point, converged, nit).

    ``q_max``: reject trial points with q(t) ≥ q_max (domain of S for
    linearly growing φ, see :func:`domain_q`).
    """
    def evaluate(t, base, k):
        if q_max is not None and domain_q(problem, t) >= q_max:
            return None
        try:
            return evaluate_smoothed_dual(problem, t, beta, base.maxima.points(), True, n_random, seed)
        except RuntimeError:
            return None

    def direction(t, pt):
        g = pt.gradient.ravel()
        d = solve_or_lstsq(pt.hessian, -g)
        if g @ d >= 0:
            d = -g
        return d.reshape(t.shape), float(g @ d)

    start = evaluate_smoothed_dual(problem, np.asarray(t0, dtype=np.float64), beta, warm, True, n_random, seed)
    out = damped_newton_minimise(evaluate, t0, start=start, tol=tol, maxiter=maxiter,
                                 measure=lambda pt: max_abs(pt.residual), direction=direction, slack=1e-13)
    return out.point, out.converged, out.iterations
