"""Large-P solutions: branches, symmetry breaking and free energies (THEORY §4).

Scaling σ_a² = σ̄_a²/P at fixed class fractions ρ_c, the single-neuron
measure of THEORY §3 is ∝ exp(P·S(a; t)) with

    S(a; t) = −||a||²/(2σ̄_a²) + Σ_c ρ_c ψ(t_c·a)

(:mod:`solvers.large_p.problem`), so as P → ∞ it concentrates on the
global maxima a_γ of S: P(a) = Σ_γ P_γ δ(a − a_γ) (van Meegen &
Sompolinsky, Nat. Commun. 16, 3354 (2025)). The field t minimises the
convex, non-smooth G∞(t) = max_a S − Σ_c ρ_c t_cc + (T/2) Σ_c ρ_c ||t_c||²,
and the branches solve (:mod:`solvers.large_p.branches`)

    ∇_a S(a_γ) = 0,  S(a_γ) = S(a_1),  Σ_γ P_γ a_γ ψ'(t_c·a_γ) = e_c − T t_c,  Σ_γ P_γ = 1.

Observables (same units as the finite-P solver with σ_a = σ̄_a/√P; the
readout a is O(1) under the tilted measure, see :mod:`solvers.large_p.problem`):

    f[c, r]       = Σ_γ P_γ a_γr ψ'(t_c·a_γ)
    U             = Σ_γ P_γ a_γ a_γᵀ
    K diagonal_c  = Σ_γ P_γ q(t_c·a_γ),  q = ψ'' + ψ'²
    K blocks[c,d] = Σ_γ P_γ ψ'(t_c·a_γ) ψ'(t_d·a_γ)
    G∞            = lim G/P of the finite-P dual value (``SolveResult.free_energy``).

Sign of G: with Z the evidence, Z ∝ ∫ dt e^{N G(t)} over the imaginary t
contour, so G(t*) = min_t G is (log Z)/N up to constants (at high T,
G = −P/(2T) = (log Z)/N with f ≈ 0). The solution is the unique minimiser
t* of the convex G∞; a constrained solution (:func:`solve_branches`) is a
stationary point of G∞ restricted to its branch set, with value
G_n(t_n) = S(a_1) − Σ_c ρ_c t_cc + (T/2) Σ_c ρ_c ||t_c||² ≤ G∞(t_n)
(``extra["G_inf_at_t"]``). For the symmetric a = 0 branch of an odd φ below
T_c, G_1 = −1/(2T) lies below G∞(t*): a lower evidence, i.e. a higher free
energy −G than the symmetry-broken solution.

Entry points
------------
:func:`solve_large_p`
    The solution (minimiser of G∞): smoothed dual (:mod:`solvers.large_p.dual`)
    for growing β, then Newton on the branch equations, then a check that
    every occupied a_γ is a global maximum of S and P_γ ≥ 0 (a missing
    global maximum is added as a branch and the system re-solved; a negative
    occupation drops its branch). Failure is reported (``converged=False``)
    rather than returning a wrong answer.
:func:`solve_branches`
    Newton on the n-branch system from a guess, classified as ``"global"``
    or ``"constrained"`` (some branch is not a global maximum of S, or
    P_γ < 0): a stationary point of G∞ restricted to those branches, not
    its minimiser.
:func:`symmetric_solution`, :func:`solutions`
    The single-branch (n = 1, every neuron equivalent) solution and the
    list of symmetric and broken solutions with their free energies.

Odd φ: S(−a) = S(a) and all observables are even in a, so a branch stands
for the mirror orbit {a_γ, −a_γ} with its occupation split equally (the
P → ∞ limit of the finite-P measure, which is symmetric under a → −a).
Below T_c the odd-φ solution splits each broken direction into ± codes.
For orthogonal class data t stays diagonal (the minimiser is invariant
under flipping row and column r of t off the diagonal, a symmetry of G∞ for
odd φ), so S separates over coordinates and its maxima are all sign
patterns (±a*_1, ..., ±a*_m) of the broken directions, occupied with
pairwise uncorrelated signs. For m ≥ 4 broken directions these occupations
are not unique (higher sign correlations are free; the branch Jacobian is
singular and the message says so); the smoothing weights, uniform by
symmetry, are what is reported.

Linear φ: ψ = σ_1² g²/2 makes S quadratic; its maximum is a = 0 (S = 0)
while σ̄_a²σ_1² λ_max(tᵀ diag(ρ) t) < 1 and S is unbounded beyond. There is
no symmetry breaking: p(a) stays Gaussian. With t = diag(τ) (class
symmetry), in each class direction either τ_c = 1/T and f_cc = 0 (T ≥ T_c,c
= σ̄_a σ_1 √ρ_c: U_cc = O(1/P) → 0), or the domain constraint binds,
τ_c = 1/(σ̄_a σ_1 √ρ_c), and the whole population carries an O(1) Gaussian
readout variance U_cc = (1 − Tτ_c)/(σ_1² τ_c) along e_c (the "condensate"
is the whole Gaussian population, THEORY §4). This is the P → ∞ limit of
the finite-P closed form of THEORY §3 (:func:`theory.linear.linear_class_closed_form`).

Linearly growing φ (ReLU): see :mod:`solvers.large_p.condensate`.
"""
from __future__ import annotations

from dataclasses import replace
import time

import numpy as np

from theory.observables import Observables
from theory.spec import SpecError

from solvers.large_p.dual import minimise_smoothed_dual
from solvers.large_p.maxima import ActionMaxima, LocalMaximum
from solvers.large_p.problem import LargePProblem
from solvers.large_p.solution import (Branch, LargePSolution, branch_newton, branch_observables, classify_maxima,
                                      make_solution, match_maximum, orbits, polish, status_of)

__all__ = ["Branch", "LargePSolution", "solve_large_p", "solve_branches", "symmetric_solution", "solutions",
           "branch_observables", "linear_large_p", "polish_from", "condenses"]

#: β schedule of the smoothed dual (:mod:`solvers.large_p.dual`).
DEFAULT_BETAS = (1e3, 1e4, 1e5, 1e6)


# ---------------------------------------------------------------------- linear φ
def linear_large_p(problem: LargePProblem) -> LargePSolution:
    """Closed-form P → ∞ limit for linear φ (see the module docstring): no symmetry breaking."""
    start = time.perf_counter()
    m, T = problem.m, problem.temperature
    sa, s1, rho = problem.sigma_a_bar, problem.sigma_w, problem.rho
    tc = sa * s1 * np.sqrt(rho)  # = critical_temperatures(problem)
    tau = np.where(T >= tc, 1.0 / np.where(T > 0, T, 1.0), 1.0 / tc)
    if T == 0.0:
        tau = 1.0 / tc
    var = np.where(T >= tc, 0.0, (1.0 - T * tau) / (s1**2 * tau))
    t = np.diag(tau)
    U = np.diag(var)
    f = np.diag(s1**2 * tau * var)
    kd = s1**2 + s1**4 * tau**2 * var
    kb = np.diag(s1**4 * tau**2 * var)
    obs = Observables(outputs=f, readout_moment=U, kernel_diagonal=kd, kernel_blocks=kb)
    # S(a) = −½ aᵀ(I/σ̄_a² − σ_1² tᵀ diag(ρ) t) a: one maximum a = 0, flat (zero eigenvalue) along
    # the classes where the domain constraint binds
    w = np.sort(-1.0 / sa**2 + s1**2 * rho * tau**2)
    w[w > -1e-12 / sa**2] = 0.0
    best = LocalMaximum(a=np.zeros(m), value=0.0, gradient_norm=0.0, hessian_eigenvalues=w, is_global=True, starts=1)
    mx = ActionMaxima(t=t.copy(), maxima=(best,), escaped=0, escaped_value=-np.inf, global_tol=0.0)
    G = problem.free_energy(t, 0.0)
    residual = float(np.max(np.abs(f - np.eye(m) + T * t)))
    gauss = var > 0
    msg = ("linear φ: single branch a = 0 (no symmetry breaking); "
           + (f"O(1) Gaussian readout variance along classes {np.flatnonzero(gauss).tolist()} "
              "(domain constraint q(t) = 1 binds there, T < T_c,c = σ̄_a σ_1 √ρ_c)" if gauss.any()
              else "f = 0 (T ≥ T_c,c = σ̄_a σ_1 √ρ_c for every class)"))
    branch = Branch(a=np.zeros(m), occupation=1.0, value=0.0, hessian_eigenvalues=mx.best.hessian_eigenvalues,
                    is_global=True, mirror=False)
    return LargePSolution(problem=problem, t=t, branches=(branch,), maxima=mx, observables=obs, free_energy=G,
                          residual=residual, converged=residual < 1e-12, status=status_of(residual < 1e-12),
                          kind="linear-gaussian", message=msg,
                          time_seconds=time.perf_counter() - start,
                          extra={"gaussian_covariance": U.tolist(), "critical_temperatures": tc.tolist()})


# ---------------------------------------------------------------------- drivers
def condenses(problem) -> bool:
    """Whether φ grows linearly (ReLU and kin, not the linear φ): the large-P solution may hold a condensate."""
    nl = problem.phi
    if nl.linear_growth and nl.name != "linear":
        return True
    return False


_condenses = condenses  # old private name


def solve_large_p(problem: LargePProblem, *, t0=None, betas=DEFAULT_BETAS,
                  tol: float = 1e-10, global_tol: float = 1e-9, n_random: int = 16, seed: int = 0,
                  max_refits: int = 8) -> LargePSolution:
    """The P → ∞ solution (minimiser of G∞) for ``problem``; see the module docstring.

    ``t0``: starting field (default 0; the exact finite-P field ``solvers.solve(problem.to_spec(P)).t``
    is a good start near the crossover); ``betas``: smoothing schedule (non-empty);
    ``tol``: max |F| of the branch equations; ``global_tol``: relative
    tolerance on S for "global maximum".
    """
    if not isinstance(problem, LargePProblem):
        raise TypeError(f"problem must be a LargePProblem (got {type(problem).__name__})")
    if not len(betas) or min(betas) <= 0:
        raise SpecError(f"betas must be a non-empty sequence of positive numbers (got {betas!r})")
    start = time.perf_counter()
    if problem.nonlinearity == "linear":
        return linear_large_p(problem)
    if condenses(problem) and problem.temperature > 0.0:
        from solvers.large_p.condensate import solve_linear_growth
        return solve_linear_growth(problem, t0=t0, betas=betas, tol=tol, global_tol=global_tol,
                                   n_random=n_random, seed=seed, max_refits=max_refits)
    if problem.temperature == 0.0:
        return _zero_temperature(problem, dict(t0=None, betas=betas, tol=tol, global_tol=global_tol,
                                               n_random=n_random, seed=seed, max_refits=max_refits))
    m = problem.m
    t = np.zeros((m, m)) if t0 is None else np.array(t0, dtype=np.float64).reshape(m, m)
    notes, nit = [], 0
    warm = None
    for beta in betas:
        pt, ok, it = minimise_smoothed_dual(problem, t, beta, warm=warm, n_random=n_random, seed=seed)
        nit += it
        t, warm = pt.t, pt.maxima.points()
        sel = pt.weights > 1e-6
        A, P, mirror = orbits(problem, pt.maxima.points()[sel], pt.weights[sel])
        P = P / P.sum()
        sol, msg = polish(problem, t, A, P, mirror, tol=tol, global_tol=global_tol, n_random=n_random, seed=seed,
                           max_refits=max_refits, start=start, nit0=nit)
        if sol is not None:
            return sol
        notes.append(f"β = {beta:g}: smoothed dual {'converged' if ok else 'not converged'}; {msg}")
    mx = pt.maxima
    A, P, mirror = orbits(problem, mx.points()[pt.weights > 1e-6], pt.weights[pt.weights > 1e-6])
    info = [(match_maximum(a, mx, problem.phi.odd), True) for a in A]
    return make_solution(problem, t, A, P / P.sum(), mirror, mx, info, float(np.max(np.abs(pt.residual))), False,
                          "global", "not converged: " + " | ".join(notes), nit, start, {})


def polish_from(problem: LargePProblem, previous: LargePSolution, **kwargs) -> tuple:
    """Re-solve at ``problem`` starting from a solution of a nearby problem: (solution or None, message).

    Keeps the branch set (and the condensate directions), then runs the same
    checks as :func:`solve_large_p` (adding or dropping branches as needed).
    """
    start = time.perf_counter()
    A = np.array([b.a for b in previous.branches])
    P = np.array([b.occupation for b in previous.branches])
    mirror = [b.mirror for b in previous.branches]
    kw = dict(tol=kwargs.get("tol", 1e-10), global_tol=kwargs.get("global_tol", 1e-9),
              n_random=kwargs.get("n_random", 16), seed=kwargs.get("seed", 0),
              max_refits=kwargs.get("max_refits", 8), start=start)
    if condenses(problem):
        from solvers.large_p.condensate import polish_linear_growth
        cond = previous.condensate
        D = np.zeros((0, problem.m)) if cond is None else cond.directions
        lam = np.zeros(0) if cond is None else cond.mass
        return polish_linear_growth(problem, previous.t, A, P, mirror, D, lam, **kw)
    return polish(problem, previous.t, A, P, mirror, **kw)


def _zero_temperature(problem, kwargs):
    """T = 0 (G∞ not strongly convex): solve at T_aux = T_scale/10, then Newton at T_aux/4, T_aux/16, 0.

    T_scale = σ̄_a (max_c ρ_c Var φ)^{1/2}, the largest T_c of an odd φ.
    """
    start = time.perf_counter()
    var = float(problem.psi(np.array([0.0]))[2][0])
    T_aux = 0.1 * problem.sigma_a_bar * np.sqrt(max(problem.rho) * max(var, 1e-12))
    sol = solve_large_p(problem.replace(temperature=T_aux), **kwargs)
    if not sol.converged:
        return sol
    for T in (T_aux / 4, T_aux / 16, 0.0):
        new, msg = polish_from(problem.replace(temperature=T), sol, **kwargs)
        if new is None:
            return replace(sol, converged=False, status="not-converged", time_seconds=time.perf_counter() - start,
                           message=f"not converged at T = 0: homotopy from T = {T_aux:.3g} failed at T = {T:.3g}: {msg}")
        sol = new
    return replace(sol, message=sol.message + f" (T = 0 reached by Newton homotopy from T = {T_aux:.3g})",
                   time_seconds=time.perf_counter() - start)


def solve_branches(problem: LargePProblem, t, A, P, *, tol: float = 1e-10, global_tol: float = 1e-9,
                   n_random: int = 16, seed: int = 0) -> LargePSolution:
    """Newton on the n-branch system from (t, A (n, m), P (n,)), without adding or dropping branches.

    ``kind`` is "global" if every branch is a global maximum of S and all
    P_γ ≥ 0 (then it is the minimiser of G∞), else "constrained": a
    stationary point of G∞ restricted to these branches, which exists but is
    not the solution; the message says why.
    """
    start = time.perf_counter()
    A = np.atleast_2d(np.asarray(A, dtype=np.float64))
    P = np.atleast_1d(np.asarray(P, dtype=np.float64))
    if A.shape != (len(P), problem.m):
        raise ValueError(f"A must have shape (n, {problem.m}) matching P of length n (got {A.shape}, {P.shape})")
    out, t, A, P, cond = branch_newton(problem, np.asarray(t, dtype=np.float64), A, P, tol)
    odd = problem.phi.odd
    mirror = [bool(odd and np.linalg.norm(a) > 1e-8) for a in A]
    if not out.converged:
        info = [(None, False)] * len(P)
        return make_solution(problem, t, A, P, mirror, None, info, out.residual_norm, False, "constrained",
                              f"not converged: {out.message}", out.nit, start, {})
    try:
        mx, info = classify_maxima(problem, t, A, global_tol, n_random, seed)
    except RuntimeError as exc:
        info = [(None, False)] * len(P)
        return make_solution(problem, t, A, P, mirror, None, info, out.residual_norm, False, "constrained",
                              f"Newton converged to a field t where S is unbounded above: {exc}", out.nit, start, {})
    reasons = []
    S = problem.action(A, t, order=0)
    for g, (i, ok) in enumerate(info):
        if not ok:
            gap = mx.value - S[g]
            what = "a saddle or minimum of S" if i is None else "a non-global local maximum"
            reasons.append(f"branch {g} (a = {np.array2string(A[g], precision=4)}) is {what}, "
                           f"max S − S(a_γ) = {gap:.3e}")
    if P.min() < -1e-9:
        reasons.append(f"occupation P = {P.min():.3e} < 0")
    kind = "global" if not reasons else "constrained"
    msg = ("converged: every branch is a global maximum of S (minimiser of G∞)" if not reasons else
           "constrained solution (exists, but is not the minimiser of G∞): " + "; ".join(reasons))
    return make_solution(problem, t, A, P, mirror, mx, info, out.residual_norm, True, kind, msg, out.nit, start,
                          {"jacobian_conditioning": cond})


def symmetric_solution(problem: LargePProblem, guess=None, **kwargs) -> LargePSolution:
    """The single-branch solution n = 1 (all neurons equivalent).

    For odd φ and T > 0 it is a = 0, t = Y/T, f = 0 exactly (THEORY §4).
    Otherwise Newton from ``guess`` = (t, a), by default the most occupied
    branch of :func:`solve_large_p`.
    """
    m, T = problem.m, problem.temperature
    if guess is None and problem.phi.odd and T > 0:
        return solve_branches(problem, np.eye(m) / T, np.zeros((1, m)), np.ones(1), **kwargs)
    if guess is None:
        full = solve_large_p(problem)
        b = max(full.branches, key=lambda b: b.occupation)
        guess = (full.t, b.a)
    t, a = guess
    return solve_branches(problem, t, np.reshape(a, (1, m)), np.ones(1), **kwargs)


def solutions(problem: LargePProblem, **kwargs) -> list:
    """[symmetric (n = 1) solution, the global solution], each with its free energy and kind.

    Where symmetry is broken the first is a constrained solution (its
    branch is not a global maximum of S); both are returned so that their
    free energies can be compared.
    """
    glob = solve_large_p(problem, **kwargs)
    out = [glob]
    if glob.n_branches > 1 or glob.symmetry_broken or problem.phi.odd:
        try:
            sym = symmetric_solution(problem)
        except (SpecError, np.linalg.LinAlgError, RuntimeError) as exc:  # pragma: no cover - reported, not raised
            sym = None
            glob.extra["symmetric_error"] = str(exc)
        if sym is not None and not np.allclose(sym.t, glob.t, atol=1e-8):
            out.insert(0, sym)
    return out
