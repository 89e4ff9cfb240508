"""Linearly growing φ (ReLU) at large P: the domain constraint and its condensate (THEORY §4).

With φ(h) ≈ α± h as h → ±∞, ψ(g) ≈ σ_1² κ(g)/2, κ(g) = max((α₊g)₊², (−α₋g)₊²),
so S(a; t) is bounded above only where

    q(t) = max_{|â|=1} σ̄_a² σ_1² Σ_c ρ_c κ(t_c·â) ≤ 1.

The solution minimises the convex G∞(t) on this convex set. At the
optimum the constraint may bind; its KKT multiplier μ_j for each
maximising direction â_j of q gives the condensate mass λ_j = 2σ̄_a²σ_1² μ_j
of a few "outlier" neurons with O(√N) readouts along â_j. The KKT system
solved here (unknowns t, bulk branches (a_γ, P_γ), directions â_j, masses λ_j):

    Σ_γ P_γ a_γ ψ'(t_c·a_γ) + Σ_j λ_j k(t_c·â_j) â_j − e_c + T t_c = 0
    bulk: ∇_a S(a_γ) = 0, S(a_γ) = S(a_1), Σ_γ P_γ = 1            (:mod:`solvers.large_p.branches`)
    σ̄_a² σ_1² Σ_c ρ_c k(t_c·â_j) t_c − â_j = 0,   ||â_j||² = 1     (q = 1 at a stationary â_j)

with k(g) = κ'(g)/2 (k(g) = g₊ for ReLU). Condensate contributions
(THEORY §4, and :class:`solvers.finite_p.dual.Condensate` at finite P):

    f_c  += λ_j k(t_c·â_j) â_j,   U += λ_j â_j â_jᵀ / σ_1²,
    K_cd += λ_j σ_1² k(t_c·â_j) k(t_d·â_j)   (diagonal and blocks alike).

The code of direction j is {c : k(t_c·â_j) ≠ 0} (for ReLU {c : t_c·â_j > 0}).

Route: a log barrier −ε Σ_j log(1 − q_j(t)) on the smoothed dual of
:mod:`solvers.large_p.dual` for ε = 10⁻², 10⁻³, … (the multipliers
μ_j = ε/(1 − q_j) estimate the masses), then Newton on the KKT system,
then checks: λ_j ≥ 0, max_â q(t) = 1 only along the â_j (a new maximising
direction is added), every bulk branch a global maximum of S with S above
its asymptote along the â_j (the gap that keeps the condensate to a few
neurons), P_γ ≥ 0. When the constraint does not bind (q(t*) < 1, high T),
the solution is the bulk-only branch solution.
"""
from __future__ import annotations

from dataclasses import dataclass
import time

import numpy as np

from theory.domain import marginal_directions, top_eigenvalue_derivatives
from theory.observables import Observables

from solvers.large_p.branches import BranchSystem, newton_branches
from solvers.large_p.dual import domain_q, evaluate_smoothed_dual
from solvers.large_p.problem import LargePProblem, parameter_name
from solvers.newton import Point, damped_newton_minimise, max_abs

__all__ = ["LargePCondensate", "CondensateSystem", "condensate_system", "q_derivatives", "solve_linear_growth"]


# ---------------------------------------------------------------------- κ pieces
def _k(problem, g):
    """(k(g), k'(g)) with k = κ'/2: α₊² g for g > 0, α₋² g for g < 0."""
    nl = problem.phi
    ap2, an2 = nl.slope_pos**2, nl.slope_neg**2
    kp = np.where(g > 0, ap2, np.where(g < 0, an2, 0.0))
    return kp * g, kp


def q_derivatives(problem: LargePProblem, t, a_hat):
    """(q, ∇_t q (m²,), ∇²_t q (m², m²)) on the active set at the maximiser â (flattened c·m + s).

    On the cone where each class keeps its branch, q = s λ_max(M) with
    s = σ̄_a²σ_1², M = Σ_c ρ_c α_c² t_c t_cᵀ over active classes and â its top
    eigenvector v; d²λ = vᵀ d²M v + 2 Σ_{k≥2} (v_kᵀ dM v)²/(λ_1 − λ_k).
    """
    t = np.asarray(t, dtype=np.float64)
    s2 = problem.sigma_a_bar**2 * problem.sigma_w**2
    _, kp = _k(problem, t @ a_hat)
    coef = problem.rho * kp
    lam, grad, hess = top_eigenvalue_derivatives(t, coef, a_hat)
    return s2 * lam, s2 * grad, s2 * hess


def _directions(problem, t, warm=None):
    return marginal_directions(np.asarray(t, dtype=np.float64), problem.rho, problem.sigma_a_bar,
                               problem.sigma_w, problem.phi, warm=warm)


# ---------------------------------------------------------------------- the KKT system
@dataclass(frozen=True, eq=False)
class CondensateSystem:
    """Bulk branches (n) plus condensate directions (k): residual F(x, p), Jacobian (F_x, F_p).

    Packing: x = [branch-system x of :mod:`solvers.large_p.branches` (t, a_γ, P_γ),
    â_1..â_k (k·m, row-major), λ_1..λ_k]. Rows: the branch rows (the f rows
    include the condensate), then k·m eigen-rows, then k normalisation rows.
    """

    problem: LargePProblem
    n: int
    k: int
    parameter: str = "temperature"

    @property
    def bulk(self) -> BranchSystem:
        return BranchSystem(self.problem, self.n, self.parameter)

    @property
    def size(self) -> int:
        return self.bulk.size + self.k * (self.problem.m + 1)

    @property
    def p0(self) -> float:
        return self.problem.parameter_value(self.parameter)

    def __iter__(self):
        return iter((self.residual, self.jacobian, self.pack, self.unpack))

    def pack(self, t, A, P, D, lam) -> np.ndarray:
        m, k = self.problem.m, self.k
        return np.concatenate([self.bulk.pack(t, A, P), np.asarray(D, dtype=np.float64).reshape(k * m),
                               np.asarray(lam, dtype=np.float64).reshape(k)])

    def unpack(self, x):
        m, k = self.problem.m, self.k
        nb = self.bulk.size
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (self.size,):
            raise ValueError(f"x must have shape ({self.size},) (got {x.shape})")
        t, A, P = self.bulk.unpack(x[:nb])
        return t, A, P, x[nb:nb + k * m].reshape(k, m).copy(), x[nb + k * m:].copy()

    def residual(self, x, p=None) -> np.ndarray:
        bulk = self.bulk
        prob = self.problem if p is None else bulk.problem_at(p)
        m = prob.m
        t, A, P, D, lam = self.unpack(x)
        F = bulk.residual(x[:bulk.size], p)
        kk, _ = _k(prob, D @ t.T)  # (k, m): k(t_c·â_j)
        F[:m * m] += np.einsum("j,jc,jr->cr", lam, kk, D).ravel()
        s2 = prob.sigma_a_bar**2 * prob.sigma_w**2
        E = s2 * (kk * prob.rho) @ t - D
        N = np.sum(D * D, axis=1) - 1.0
        return np.concatenate([F, E.ravel(), N])

    def jacobian(self, x, p=None):
        bulk = self.bulk
        prob = self.problem if p is None else bulk.problem_at(p)
        m, k, nb = prob.m, self.k, bulk.size
        mm = m * m
        t, A, P, D, lam = self.unpack(x)
        Jb, Fpb = bulk.jacobian(x[:nb], p)
        N = self.size
        J = np.zeros((N, N))
        J[:nb, :nb] = Jb
        G = D @ t.T
        kk, kp = _k(prob, G)
        rho = prob.rho
        s2 = prob.sigma_a_bar**2 * prob.sigma_w**2
        I = np.eye(m)
        iD, iL = nb, nb + k * m
        rE, rN = nb, nb + k * m
        for j in range(k):
            d = D[j]
            # f rows [c, r]: λ k_c d_r
            Jt = np.zeros((m, m, m, m))
            Jt[np.arange(m), :, np.arange(m), :] = (lam[j] * kp[j])[:, None, None] * np.outer(d, d)[None]
            J[:mm, :mm] += Jt.reshape(mm, mm)
            Jd = lam[j] * (kp[j][:, None, None] * d[None, :, None] * t[:, None, :]
                           + kk[j][:, None, None] * I[None, :, :])  # [c, r, s]
            J[:mm, iD + j * m:iD + (j + 1) * m] = Jd.reshape(mm, m)
            J[:mm, iL + j] = (kk[j][:, None] * d[None, :]).ravel()
            # eigen rows E_j[r] = s2 Σ_c ρ_c k_c t_cr − d_r
            Et = s2 * rho[None, :, None] * (kp[j][None, :, None] * t.T[:, :, None] * d[None, None, :]
                                             + kk[j][None, :, None] * I[:, None, :])  # [r, c, s]
            J[rE + j * m:rE + (j + 1) * m, :mm] = Et.reshape(m, mm)
            J[rE + j * m:rE + (j + 1) * m, iD + j * m:iD + (j + 1) * m] = (
                s2 * np.einsum("c,cr,cs->rs", rho * kp[j], t, t) - I)
            J[rN + j, iD + j * m:iD + (j + 1) * m] = 2.0 * d
        # parameter derivative
        Fp = np.zeros(N)
        Fp[:nb] = Fpb
        kind, r = parameter_name(self.parameter, m)
        Epart = s2 * (kk * rho) @ t  # (k, m)
        if kind == "sigma_a_bar":
            Fp[rE:rN] = (2.0 / prob.sigma_a_bar * Epart).ravel()
        elif kind == "sigma_w":
            Fp[rE:rN] = (2.0 / prob.sigma_w * Epart).ravel()
        elif kind == "rho":
            drho = -rho / (1.0 - rho[r])
            drho[r] = 1.0
            Fp[rE:rN] = (s2 * (kk * drho) @ t).ravel()
        return J, Fp


def condensate_system(problem: LargePProblem, n_branches: int, n_directions: int,
                      parameter: str = "temperature") -> CondensateSystem:
    """The KKT system with n bulk branches and k condensate directions (unpacks like :func:`branch_system`)."""
    parameter_name(parameter, problem.m)
    return CondensateSystem(problem, int(n_branches), int(n_directions), parameter)


@dataclass(frozen=True)
class LargePCondensate:
    """Outlier neurons along the marginal directions â_j (THEORY §4)."""

    directions: np.ndarray  # (k, m)
    mass: np.ndarray  # λ_j >= 0
    codes: tuple  # per direction, the classes it activates
    outputs: np.ndarray  # contribution to f (m, m)
    readout_moment: np.ndarray  # contribution to U
    kernel: np.ndarray  # contribution to kernel blocks and diagonal
    q_max: float  # max_â q(t) (= 1 when the constraint binds)
    gap: np.ndarray  # S(a_1) − lim_{r→∞} S(r â_j): > 0 keeps the condensate to few neurons

    def to_json(self) -> dict:
        return {"directions": self.directions.tolist(), "mass": self.mass.tolist(),
                "codes": [list(c) for c in self.codes], "q_max": self.q_max, "gap": self.gap.tolist()}


def condensate_contributions(problem: LargePProblem, t, D, lam):
    """(f, U, K) added by masses λ_j along directions D (k, m); see the module docstring."""
    D = np.atleast_2d(np.asarray(D, dtype=np.float64)).reshape(-1, problem.m)
    lam = np.asarray(lam, dtype=np.float64).reshape(-1)
    kk, _ = _k(problem, D @ np.asarray(t).T)
    f = np.einsum("j,jc,jr->cr", lam, kk, D)
    U = np.einsum("j,jr,js->rs", lam, D, D) / problem.sigma_w**2
    K = problem.sigma_w**2 * np.einsum("j,jc,jd->cd", lam, kk, kk)
    return f, U, K


def _asymptote(problem, t, d):
    """lim_{r→∞} S(r d; t) for a direction with q = 1: Σ_c ρ_c L(sign t_c·d).

    At q(d) = 1 the quadratic parts cancel, −r²/(2σ̄_a²) + Σ_c ρ_c σ_1² κ(r g_c)/2 = 0,
    leaving L± = lim_{g→±∞} [ψ(g) − σ_1² κ(g)/2] (L₊ = 0, L₋ = −log 2 for ReLU),
    taken from the ψ table at |g| = G/2 and G, G = min(2·10³/σ_1, table reach), extrapolated in 1/g.
    """
    s = problem.sigma_w
    gmax = min(2e3 / s, problem.table().gmax)  # stay inside the table: beyond it ψ is a Taylor polynomial
    G = np.array([0.5, 1.0, -0.5, -1.0]) * gmax
    rest = problem.psi(G)[0] - 0.5 * s * s * problem.phi.kappa(G)
    L_pos, L_neg = 2 * rest[1] - rest[0], 2 * rest[3] - rest[2]
    g = np.asarray(t) @ d
    scale = 1e-10 * np.max(np.abs(g))
    return float(problem.rho @ np.where(g > scale, L_pos, np.where(g < -scale, L_neg, 0.0)))


# ---------------------------------------------------------------------- barrier phase
def _logdet_barrier(problem, t, eps):
    """−ε log det(I − s M), M = α² tᵀ diag(ρ) t, s = σ̄_a²σ_1², for φ with equal slopes α₊ = α₋ = α.

    Then q_k = s λ_k(M) for every eigenvalue k and the barrier −ε Σ_k log(1 − q_k) is
    smooth even where eigenvalues cross (the top one alone is not):
    ∂/∂t_c = 2ε s α² ρ_c W t_c with W = (I − s M)⁻¹, and
    ∂²/∂t_cr ∂t_c's = 2ε s α² ρ_c [W_rs δ_cc' + s α² ρ_c' (W_rs (t_c'ᵀW t_c) + (W t_c')_r (W t_c)_s)].
    Returns (value, gradient (m²,), Hessian, eigenvectors (rows), q_k) or None outside the domain.
    """
    m = problem.m
    rho = problem.rho
    sa2 = problem.sigma_a_bar**2 * problem.sigma_w**2 * problem.phi.slope_pos**2
    B = np.eye(m) - sa2 * t.T @ (rho[:, None] * t)
    w, V = np.linalg.eigh(B)
    if w[0] <= 0.0:
        return None
    W = (V / w) @ V.T
    Wt = t @ W  # row c: (W t_c)ᵀ
    grad = 2 * eps * sa2 * rho[:, None] * Wt
    C = Wt @ t.T  # C[c', c] = t_c'ᵀ W t_c
    H = np.einsum("c,rs,cd->crds", rho, W, np.eye(m))
    H += sa2 * np.einsum("c,d,rs,dc->crds", rho, rho, W, C) + sa2 * np.einsum("c,d,dr,cs->crds", rho, rho, Wt, Wt)
    H = 2 * eps * sa2 * H.reshape(m * m, m * m)
    return -eps * float(np.sum(np.log(w))), grad.ravel(), 0.5 * (H + H.T), V[:, ::-1].T, 1.0 - w[::-1]


def _barrier_point(problem, t, beta, eps, warm, n_random, seed):
    nl = problem.phi
    if nl.slope_pos == nl.slope_neg:
        bar = _logdet_barrier(problem, t, eps)
        if bar is None:
            return None, np.inf, None, None, np.zeros((0, problem.m)), np.array([])
        pt = evaluate_smoothed_dual(problem, t, beta, warm, True, n_random, seed)
        value, grad, hess, dirs, q = bar
        return (pt, pt.value + value, pt.gradient.ravel() + grad, pt.hessian + hess, dirs,
                eps / (1.0 - q))
    pt = evaluate_smoothed_dual(problem, t, beta, warm, True, n_random, seed)
    dirs, q = _directions(problem, t)
    keep = q > 0.5
    value, grad, hess = pt.value, pt.gradient.ravel().copy(), pt.hessian.copy()
    mus = []
    used = []
    for d, qj in zip(dirs[keep], q[keep]):
        if qj >= 1.0:
            return pt, np.inf, None, None, dirs[keep], np.array([])
        qv, gq, hq = q_derivatives(problem, t, d)
        if abs(qv - qj) > 1e-9 * max(1.0, qj):
            continue  # a kink of q on the sphere, not an eigen-maximiser of its active set: no barrier term
        if qv >= 1.0:  # qj < 1 ≤ qv within round-off: on the boundary, where μ = ε/(1 − q) is infinite
            return pt, np.inf, None, None, dirs[keep], np.array([])
        used.append(d)
        mu = eps / (1.0 - qv)
        value -= eps * np.log(1.0 - qv)
        grad += mu * gq
        hess += (mu / (1.0 - qv)) * np.outer(gq, gq) + mu * hq
        mus.append(mu)
    return pt, value, grad, hess, np.array(used).reshape(-1, problem.m), np.array(mus)


def _interior_start(problem, t, eps):
    """t pulled strictly inside the domain: q is homogeneous of degree 2 in t (κ is), so
    t → t·√((1 − ε)/q(t)) gives q = 1 − ε when q(t) > 1 − ε (a warm start from a neighbouring
    solution sits on the boundary q = 1, where the barrier −ε log(1 − q) is infinite, or a few
    ulps inside it, where q_derivatives may round to q = 1)."""
    t = np.array(t, dtype=np.float64)
    for _ in range(8):
        q = domain_q(problem, t)
        if not q > 1.0 - eps:
            return t
        t *= np.sqrt((1.0 - eps) / q) * (1.0 - 1e-12)
    raise ValueError(f"could not move the start t inside the domain q(t) < 1 (q = {domain_q(problem, t):.6g})")


def _minimise_barrier(problem, t, beta, eps, warm, n_random, seed, tol=1e-9, maxiter=40):
    """Damped Newton on the barrier dual G_β(t) − ε Σ_j log(1 − q_j(t)) from t (first moved inside
    the domain if the barrier is infinite there, see :func:`_interior_start`), with
    :func:`solvers.newton.damped_newton_minimise`: the direction is −H⁺∇ (least squares, rcond
    1e-14), replaced by −∇ when it is not a descent direction or H is not finite; Armijo
    backtracking (slack 1e-14) that stays inside q < 1 and where ∇ is finite; converged when
    max|∇/ρ| <= tol. Returns (t, dual point, barrier directions, μ_j = ε/(1 − q_j))."""
    pt, val, grad, hess, dirs, mus = _barrier_point(problem, t, beta, eps, warm, n_random, seed)
    if grad is None:  # on or outside q = 1 (a warm start from a neighbouring solution): move inside
        t = _interior_start(problem, t, eps)
        pt, val, grad, hess, dirs, mus = _barrier_point(problem, t, beta, eps, warm, n_random, seed)
        if grad is None:
            raise RuntimeError(f"the barrier is infinite at the start t (q = {domain_q(problem, t):.6g})")
    rho_rep = np.repeat(problem.rho, problem.m)

    def evaluate(tn, base, k):
        if not domain_q(problem, tn) < 1.0:
            return None
        try:
            new = _barrier_point(problem, tn, beta, eps, base.data[0].maxima.points(), n_random, seed)
        except RuntimeError:
            return None
        if new[2] is None or not np.all(np.isfinite(new[2])):
            return None
        return Point(new[1], new[2], new[3], (new[0],) + new[4:])

    out = damped_newton_minimise(evaluate, t, start=Point(val, grad, hess, (pt, dirs, mus)), tol=tol,
                                 maxiter=maxiter, measure=lambda p: max_abs(p.gradient / rho_rep),
                                 direction=_barrier_direction, slack=1e-14)
    return (out.x,) + out.point.data


def _barrier_direction(t, p):
    """(d, ∇·d): d = −H⁺∇ (least squares, rcond 1e-14), or −∇ where that is not a finite descent direction."""
    grad, hess, d = p.gradient, p.hessian, None
    if np.all(np.isfinite(hess)):
        try:
            d = -np.linalg.lstsq(hess, grad, rcond=1e-14)[0]
        except np.linalg.LinAlgError:  # "SVD did not converge" on a badly scaled Hessian
            d = None
    if d is None or not np.all(np.isfinite(d)) or grad @ d >= 0:
        d = -grad
    return d.reshape(t.shape), grad @ d


# ---------------------------------------------------------------------- driver
def _kkt_newton(problem, t, A, P, D, lam, tol):
    system = condensate_system(problem, len(P), len(lam))
    out = newton_branches(system, system.pack(t, A, P, D, lam), tol=tol)
    return out, system.unpack(out.x), system


def _condensate_solution(problem, result, tol, start):
    """LargePSolution from a successful :func:`_kkt_polish` result."""
    from solvers.large_p.solution import LargePSolution, make_solution, branch_observables

    t, A, P, mirror, D, lam, mx, info, msg, res, cond = result
    obs_b = branch_observables(problem, t, A, P)
    fc, Uc, Kc = condensate_contributions(problem, t, D, lam)
    obs = Observables(outputs=obs_b.outputs + fc, readout_moment=obs_b.readout_moment + Uc,
                      kernel_diagonal=obs_b.kernel_diagonal + np.diag(Kc), kernel_blocks=obs_b.kernel_blocks + Kc)
    base = make_solution(problem, t, A, P, mirror, mx, info, res, res <= 10 * tol, "global", msg, 0, start,
                          {"jacobian_conditioning": cond})
    kk, _ = _k(problem, D @ t.T)
    S1 = base.branches[0].value
    condensate = LargePCondensate(
        directions=D, mass=lam, codes=tuple(tuple(int(c) for c in np.flatnonzero(row != 0)) for row in kk),
        outputs=fc, readout_moment=Uc, kernel=Kc, q_max=domain_q(problem, t),
        gap=np.array([S1 - _asymptote(problem, t, d) for d in D]))
    return LargePSolution(problem=problem, t=t, branches=base.branches, maxima=mx, observables=obs,
                          free_energy=base.free_energy, residual=res, converged=base.converged,
                          status=base.status, kind="global", message=msg, iterations=0,
                          time_seconds=time.perf_counter() - start, condensate=condensate, extra=base.extra)


def polish_linear_growth(problem: LargePProblem, t, A, P, mirror, D, lam, *, tol: float = 1e-10,
                         global_tol: float = 1e-9, n_random: int = 16, seed: int = 0, max_refits: int = 8, start=None):
    """KKT Newton and checks from a guess (bulk only when D is empty); (solution or None, message)."""
    from solvers.large_p.solution import polish

    start = time.perf_counter() if start is None else start
    D = np.asarray(D, dtype=np.float64).reshape(-1, problem.m)
    if len(D) == 0:
        sol, msg = polish(problem, t, A, P, mirror, tol=tol, global_tol=global_tol, n_random=n_random, seed=seed,
                           max_refits=max_refits, start=start)
        if sol is not None and domain_q(problem, sol.t) >= 1.0:
            return None, f"bulk-only solution lies outside the domain q(t) < 1 (q = {domain_q(problem, sol.t):.6f})"
        return sol, msg
    result, msg = _kkt_polish(problem, t, A, P, mirror, D, lam, tol=tol, global_tol=global_tol, n_random=n_random,
                              seed=seed, max_refits=max_refits)
    if result is None:
        return None, msg
    return _condensate_solution(problem, result, tol, start), result[8]


def solve_linear_growth(problem: LargePProblem, *, t0=None, betas=(1e4,), tol: float = 1e-10,
                        global_tol: float = 1e-9, n_random: int = 16, seed: int = 0, max_refits: int = 8,
                        epsilons=(1e-2, 1e-3, 1e-4, 1e-5, 1e-6)):
    """Large-P solution for linearly growing φ (ReLU): bulk branches plus condensate; see the module docstring."""
    from solvers.large_p.solution import make_solution, orbits

    start = time.perf_counter()
    m = problem.m
    beta = float(betas[-1]) if len(betas) else 1e4
    t = np.zeros((m, m)) if t0 is None else np.array(t0, dtype=np.float64).reshape(m, m)
    warm, notes = None, []
    kw = dict(tol=tol, global_tol=global_tol, n_random=n_random, seed=seed, max_refits=max_refits, start=start)
    for eps in epsilons:
        t, pt, dirs, mus = _minimise_barrier(problem, t, beta, eps, warm, n_random, seed)
        warm = pt.maxima.points()
        if eps > 1e-4:
            continue
        lam0 = 2.0 * problem.sigma_a_bar**2 * problem.sigma_w**2 * mus
        sel = pt.weights > 1e-6
        A, P, mirror = orbits(problem, pt.maxima.points()[sel], pt.weights[sel])
        P = P / P.sum()
        qs = 1.0 - eps / np.maximum(mus, 1e-300) if len(mus) else np.zeros(0)
        active = qs > 0.99  # margins 1 − q_j of order ε where the constraint binds, O(1) where it does not
        sol, msg = polish_linear_growth(problem, t, A, P, mirror, dirs[active], lam0[active], **kw)
        if sol is not None:
            return sol
        notes.append(f"ε = {eps:g}: {msg}")
    info = [(None, False)] * len(P)
    return make_solution(problem, t, A, P, mirror, pt.maxima, info, float(np.max(np.abs(pt.residual))), False,
                          "global", "not converged (linearly growing φ, condensate): " + " | ".join(notes), 0,
                          start, {})


def _kkt_polish(problem, t, A, P, mirror, D, lam, *, tol, global_tol, n_random, seed, max_refits):
    """KKT Newton with checks (λ ≥ 0, q ≤ 1 elsewhere, bulk global, P ≥ 0); ((...), None) or (None, reason)."""
    from solvers.large_p.solution import classify_maxima, match_maximum

    odd = problem.phi.odd
    A, P, D, lam = np.array(A, float), np.array(P, float), np.array(D, float), np.array(lam, float)
    mirror = list(mirror)
    notes = []
    for _ in range(max_refits):
        out, (t, A, P, D, lam), system = _kkt_newton(problem, t, A, P, D, lam, tol)
        if not out.converged:
            return None, f"KKT Newton (n = {len(P)}, k = {len(lam)}): {out.message}" + (
                "; " + "; ".join(notes) if notes else "")
        if len(lam) and lam.min() < -1e-9:
            j = int(np.argmin(lam))
            notes.append(f"dropped direction {j} (λ = {lam[j]:.2e} < 0)")
            keep = np.arange(len(lam)) != j
            D, lam = D[keep], lam[keep]
            continue
        if P.min() < -1e-9:
            j = int(np.argmin(P))
            notes.append(f"dropped bulk branch {j} (P = {P[j]:.2e} < 0)")
            keep = np.arange(len(P)) != j
            A, P, mirror = A[keep], np.maximum(P[keep], 0), [x for x, kf in zip(mirror, keep) if kf]
            P /= P.sum()
            continue
        dirs, q = _directions(problem, t, warm=D)
        new = [d for d, qv in zip(dirs, q) if qv > 1.0 + 1e-9 and all(np.linalg.norm(d - e) > 1e-6 for e in D)]
        if new:
            notes.append(f"added marginal direction {np.array2string(new[0], precision=4)} (q = {q[0]:.6f})")
            D = np.vstack([D, new[0]])
            lam = np.append(lam, 0.0)
            continue
        try:
            mx, info = classify_maxima(problem, t, A, global_tol, n_random, seed)
        except RuntimeError as exc:
            return None, f"KKT Newton left the domain of S: {exc}"
        S1 = problem.action(A[:1], t, order=0)[0]
        covered = {i for i, _ in info if i is not None}
        if mx.value > S1 + global_tol * (1 + abs(S1)) or not all(ok for _, ok in info):
            ks = [i for i, x in enumerate(mx.maxima) if x.is_global and i not in covered]
            a_new = mx.maxima[ks[0] if ks else 0].a
            notes.append(f"added a global maximum of S at a = {np.array2string(a_new, precision=4)}")
            A = np.vstack([A, a_new])
            P = np.append(P, 0.0)
            mirror.append(bool(odd and np.linalg.norm(a_new) > 1e-8 and match_maximum(a_new, mx, odd) is not None))
            continue
        gaps = np.array([S1 - _asymptote(problem, t, d) for d in D])
        if len(gaps) and gaps.min() <= 0:
            return None, (f"the bulk maximum S = {S1:.6g} is not above S's asymptote along a condensate direction "
                          f"(gap {gaps.min():.3e}): the condensate would hold O(1) of the neurons, not implemented")
        J, _ = system.jacobian(system.pack(t, A, P, D, lam))
        sv = np.linalg.svd(J, compute_uv=False)
        res = float(np.max(np.abs(system.residual(system.pack(t, A, P, D, lam)))))
        msg = (f"converged: {len(P)} bulk branch{'es' if len(P) > 1 else ''} (global maxima of S) and "
               f"{len(lam)} condensate direction{'s' if len(lam) != 1 else ''} on q(t) = 1 with masses λ_j >= 0")
        if notes:
            msg += "; " + "; ".join(notes)
        return (t, A, P, mirror, D, lam, mx, info, msg, res, float(sv[-1] / sv[0])), None
    return None, f"no consistent set after {max_refits} refits: " + "; ".join(notes)
