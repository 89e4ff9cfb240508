"""Large-P solutions: branches, symmetry breaking and free energies (THEORY §4).

Scaling σ_a² = σ̄_a²/P at fixed class fractions ρ_c, the single-neuron
measure of THEORY §3 is ∝ exp(P·S(a; t)) with

    S(a; t) = −||a||²/(2σ̄_a²) + Σ_c ρ_c ψ(t_c·a)

(:mod:`solvers.large_p_problem`), so as P → ∞ it concentrates on the
global maxima a_γ of S: P(a) = Σ_γ P_γ δ(a − a_γ) (van Meegen &
Sompolinsky, Nat. Commun. 16, 3354 (2025)). The field t minimises the
convex, non-smooth G∞(t) = max_a S − Σ_c ρ_c t_cc + (T/2) Σ_c ρ_c ||t_c||²,
and the branches solve (:mod:`solvers.large_p_branches`)

    ∇_a S(a_γ) = 0,  S(a_γ) = S(a_1),  Σ_γ P_γ a_γ ψ'(t_c·a_γ) = e_c − T t_c,  Σ_γ P_γ = 1.

Observables (same units as the finite-P solver with σ_a = σ̄_a/√P; the
readout a is O(1) under the tilted measure, see :mod:`solvers.large_p_problem`):

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
    The solution (minimiser of G∞): smoothed dual (:mod:`solvers.large_p_dual`)
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

Linearly growing φ (ReLU): see :mod:`solvers.large_p_condensate`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
import time

import numpy as np

from theory.observables import Observables
from theory.spec import SpecError

from .large_p_branches import branch_system, newton_branches
from .large_p_dual import minimise_smoothed_dual
from .large_p_maxima import ActionMaxima, LocalMaximum, maximise_action
from .large_p_problem import LargePProblem

__all__ = ["Branch", "LargePSolution", "solve_large_p", "solve_branches", "symmetric_solution", "solutions",
           "branch_observables", "linear_large_p", "polish_from"]

#: β schedule of the smoothed dual (:mod:`solvers.large_p_dual`).
DEFAULT_BETAS = (1e3, 1e4, 1e5, 1e6)


@dataclass(frozen=True)
class Branch:
    """One branch: readout a_γ occupied by a fraction P_γ of the neurons."""

    a: np.ndarray  # (m,)
    occupation: float  # P_γ (for a mirror orbit: the orbit's total, split equally between ±a)
    value: float  # S(a_γ; t)
    hessian_eigenvalues: np.ndarray  # of ∇²_a S at a_γ, ascending
    is_global: bool  # S(a_γ) = max_a S within the tolerance
    mirror: bool = False  # odd φ and a ≠ 0: stands for {a, −a}

    def to_json(self) -> dict:
        return {"a": self.a.tolist(), "occupation": self.occupation, "S": self.value,
                "hessian_eigenvalues": self.hessian_eigenvalues.tolist(), "global": self.is_global,
                "mirror": self.mirror}


@dataclass(frozen=True)
class LargePSolution:
    """A solution of the large-P equations (THEORY §4)."""

    problem: LargePProblem
    t: np.ndarray  # (m, m), t[c, r]
    branches: tuple  # of Branch (mirror orbits for odd φ)
    maxima: ActionMaxima | None  # every local maximum of S(·; t) found
    observables: Observables
    free_energy: float  # S(a_1) − Σ ρ_c t_cc + (T/2) Σ ρ_c ||t_c||² (= G∞(t) when kind == "global")
    residual_norm: float  # max |F| of the branch equations
    converged: bool
    kind: str  # "global" (minimiser of G∞), "constrained", or "linear-gaussian"
    message: str
    nit: int = 0
    time_seconds: float = 0.0
    condensate: object | None = None  # solvers.large_p_condensate.LargePCondensate, if any
    extra: dict = field(default_factory=dict)

    @property
    def n_branches(self) -> int:
        return len(self.branches)

    @property
    def outputs(self) -> np.ndarray:
        return self.observables.outputs

    @property
    def readout_moment(self) -> np.ndarray:
        return self.observables.readout_moment

    @property
    def symmetry_broken(self) -> bool:
        """More than one distinct readout is occupied (mirror orbits count as two)."""
        return sum(2 if b.mirror else 1 for b in self.branches if b.occupation > 0) > 1

    def expanded_branches(self) -> list:
        """(a, P) pairs with mirror orbits expanded into a and −a with P/2 each."""
        out = []
        for b in self.branches:
            if b.mirror:
                out += [(b.a.copy(), 0.5 * b.occupation), (-b.a, 0.5 * b.occupation)]
            else:
                out.append((b.a.copy(), b.occupation))
        return out

    def to_json(self) -> dict:
        out = {**self.problem.to_dict(), "t": self.t.tolist(), **self.observables.to_json(),
               "branches": [b.to_json() for b in self.branches], "free_energy": self.free_energy,
               "residual": self.residual_norm, "converged": self.converged, "kind": self.kind,
               "message": self.message, "iterations": self.nit, "time_seconds": self.time_seconds}
        if self.maxima is not None:
            out["maxima"] = self.maxima.to_json()
        if self.condensate is not None:
            out["condensate"] = self.condensate.to_json()
        out.update({k: v for k, v in self.extra.items() if isinstance(v, (int, float, str, bool, list, dict))})
        return out


# ---------------------------------------------------------------------- observables
def branch_observables(problem: LargePProblem, t, A, P) -> Observables:
    """f, U and kernel from branches (a_γ, P_γ); see the module docstring."""
    t = np.asarray(t, dtype=np.float64)
    A = np.atleast_2d(np.asarray(A, dtype=np.float64))
    P = np.asarray(P, dtype=np.float64)
    _, p1, p2 = problem.psi(A @ t.T)  # (n, m)
    f = np.einsum("g,gc,gr->cr", P, p1, A)
    U = np.einsum("g,gr,gs->rs", P, A, A)
    kd = P @ (p2 + p1 * p1)
    kb = np.einsum("g,gc,gd->cd", P, p1, p1)
    return Observables(outputs=f, readout_moment=U, kernel_diagonal=kd, kernel_blocks=kb)


def _orbits(problem, A, weights, tol=1e-6):
    """Merge mirror images (odd φ): representatives, summed weights, mirror flags."""
    odd = problem.phi.odd
    reps, ws, flags = [], [], []
    for a, w in zip(A, weights):
        for i, r in enumerate(reps):
            scale = tol * (1.0 + np.linalg.norm(r))
            if np.linalg.norm(a - r) <= scale or (odd and np.linalg.norm(a + r) <= scale):
                ws[i] += w
                break
        else:
            reps.append(np.array(a, dtype=np.float64))
            ws.append(float(w))
            flags.append(bool(odd and np.linalg.norm(a) > tol))
    return np.array(reps).reshape(-1, problem.m), np.array(ws), flags


def _same(a, b, odd: bool, tol=1e-6) -> bool:
    """a and b are the same point (or mirror images, for odd φ)."""
    scale = tol * (1.0 + np.linalg.norm(b))
    return bool(np.linalg.norm(a - b) <= scale or (odd and np.linalg.norm(a + b) <= scale))


def _match(a, maxima: ActionMaxima, odd: bool):
    """Index of the maximum at a (or −a for odd φ), else None."""
    for i, x in enumerate(maxima.maxima):
        if _same(a, x.a, odd):
            return i
    return None


# ---------------------------------------------------------------------- Newton + classification
def _newton(problem, t, A, P, tol):
    sysn = branch_system(problem, len(P))
    out = newton_branches(sysn, sysn.pack(t, A, P), tol=tol)
    t, A, P = sysn.unpack(out.x)
    J, _ = sysn.jacobian(out.x)
    sv = np.linalg.svd(J, compute_uv=False)
    return out, t, A, P, float(sv[-1] / sv[0])


def _classify(problem, t, A, global_tol, n_random, seed):
    """Maxima of S at t (warm-started at the branches) and, per branch, (index of its maximum or None, is_global)."""
    odd = problem.phi.odd
    warm = np.concatenate([A, -A]) if odd else A
    mx = maximise_action(problem, t, warm=warm, n_random=n_random, seed=seed, global_tol=global_tol)
    info = []
    for a in A:
        i = _match(a, mx, odd)
        info.append((i, i is not None and mx.maxima[i].is_global))
    return mx, info


def _make_solution(problem, t, A, P, mirror, mx, info, residual, converged, kind, message, nit, start, extra):
    S, _, H = problem.action(A, t)
    w = np.linalg.eigvalsh(H)
    branches = tuple(Branch(a=A[g].copy(), occupation=float(P[g]), value=float(S[g]), hessian_eigenvalues=w[g],
                            is_global=bool(info[g][1]), mirror=bool(mirror[g])) for g in range(len(P)))
    obs = branch_observables(problem, t, A, P)
    G = problem.free_energy(t, float(S[0]))
    extra = dict(extra)
    if mx is not None:
        extra["G_inf_at_t"] = problem.free_energy(t, mx.value)
    return LargePSolution(problem=problem, t=t, branches=branches, maxima=mx, observables=obs, free_energy=G,
                          residual_norm=residual, converged=converged, kind=kind, message=message, nit=nit,
                          time_seconds=time.perf_counter() - start, extra=extra)


def _polish(problem, t, A, P, mirror, *, tol, global_tol, n_random, seed, max_refits, start, nit0=0):
    """Branch Newton + global-maximum and P ≥ 0 checks, adding/dropping branches; (solution, ok)."""
    odd = problem.phi.odd
    notes = []
    nit = nit0
    A, P, mirror = np.array(A, dtype=np.float64), np.array(P, dtype=np.float64), list(mirror)
    for _ in range(max_refits):
        out, t, A, P, cond = _newton(problem, t, A, P, tol)
        nit += out.nit
        if not out.converged:
            return None, f"branch Newton with n = {len(P)}: {out.message}" + ("; " + "; ".join(notes) if notes else "")
        if P.min() < -1e-9:
            j = int(np.argmin(P))
            notes.append(f"dropped branch {j} (P = {P[j]:.2e} < 0)")
            keep = np.arange(len(P)) != j
            A, P, mirror = A[keep], P[keep], [mm for mm, k in zip(mirror, keep) if k]
            P = np.maximum(P, 0.0)
            P /= P.sum()
            continue
        try:
            mx, info = _classify(problem, t, A, global_tol, n_random, seed)
        except RuntimeError as exc:  # S unbounded above at t (linearly growing φ outside q(t) <= 1)
            return None, f"branch Newton with n = {len(P)} left the domain of S: {exc}"
        S_branch = problem.action(A[:1], t, order=0)[0]
        above = mx.value > S_branch + global_tol * (1.0 + abs(S_branch))
        if above or not all(ok for _, ok in info):
            # a branch that is not even a local maximum (a saddle of S) leaves the set
            saddle = [g for g, (i, _) in enumerate(info) if i is None]
            if saddle:
                keep = np.array([g not in saddle for g in range(len(P))])
                notes.append(f"dropped branch(es) {saddle} (not local maxima of S)")
                A, P, mirror = A[keep], np.maximum(P[keep], 0.0), [mm for mm, k in zip(mirror, keep) if k]
            missing = [x.a for x in mx.maxima if x.is_global and not any(_same(x.a, a, odd) for a in A)]
            if not missing:
                return None, "branches are not all global maxima of S and no other global maximum was found" + (
                    ": " + "; ".join(notes) if notes else "")
            a_new = missing[0]
            notes.append(f"added a global maximum of S at a = {np.array2string(a_new, precision=4)}")
            A = np.vstack([A, a_new])
            P = np.append(P, 0.0 if P.sum() > 0 else 1.0)
            P /= P.sum()
            mirror.append(bool(odd and np.linalg.norm(a_new) > 1e-8))
            continue
        # drop exactly unoccupied branches (P = 0 within rounding): they stay in the list of maxima
        keep = P > 1e-12
        if not keep.all():
            A, P, mirror = A[keep], P[keep], [mm for mm, k in zip(mirror, keep) if k]
            P /= P.sum()
            info = [x for x, k in zip(info, keep) if k]
        res = float(np.max(np.abs(branch_system(problem, len(P)).residual(
            branch_system(problem, len(P)).pack(t, A, P)))))
        msg = f"converged: {len(P)} branch{'es' if len(P) > 1 else ''}, all global maxima of S, P_γ >= 0"
        if cond < 1e-10:
            msg += (f"; the branch Jacobian is (near) singular (σ_min/σ_max = {cond:.1e}): occupations are not "
                    "unique, the reported P_γ are the minimum-change solution from the smoothing weights")
        if notes:
            msg += "; " + "; ".join(notes)
        sol = _make_solution(problem, t, A, P, mirror, mx, info, res, res <= 10 * tol, "global", msg, nit,
                             start, {"jacobian_conditioning": cond})
        return sol, msg
    return None, f"no consistent branch set after {max_refits} refits: " + "; ".join(notes)


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
                          residual_norm=residual, converged=residual < 1e-12, kind="linear-gaussian", message=msg,
                          time_seconds=time.perf_counter() - start,
                          extra={"gaussian_covariance": U.tolist(), "critical_temperatures": tc.tolist()})


# ---------------------------------------------------------------------- drivers
def _condenses(problem):
    nl = problem.phi
    if nl.linear_growth and nl.name != "linear":
        return True
    return False


def solve_large_p(problem: LargePProblem, *, t0=None, init_P: int | None = None, betas=DEFAULT_BETAS,
                  tol: float = 1e-10, global_tol: float = 1e-9, n_random: int = 16, seed: int = 0,
                  max_refits: int = 8) -> LargePSolution:
    """The P → ∞ solution (minimiser of G∞) for ``problem``; see the module docstring.

    ``t0``: starting field (default 0); ``init_P``: start instead from the
    exact finite-P field at this P (:func:`solvers.solve`, costs an
    m-dimensional integration); ``betas``: smoothing schedule (non-empty);
    ``tol``: max |F| of the branch equations; ``global_tol``: relative
    tolerance on S for "global maximum".
    """
    if not isinstance(problem, LargePProblem):
        raise TypeError(f"problem must be a LargePProblem (got {type(problem).__name__})")
    if not len(betas) or min(betas) <= 0:
        raise SpecError(f"betas must be a non-empty sequence of positive numbers (got {betas!r})")
    start = time.perf_counter()
    if init_P is not None:
        from .solve import solve
        t0 = solve(problem.to_spec(int(init_P))).t
    if problem.nonlinearity == "linear":
        return linear_large_p(problem)
    if _condenses(problem) and problem.temperature > 0.0:
        from .large_p_condensate import solve_linear_growth
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
        A, P, mirror = _orbits(problem, pt.maxima.points()[sel], pt.weights[sel])
        P = P / P.sum()
        sol, msg = _polish(problem, t, A, P, mirror, tol=tol, global_tol=global_tol, n_random=n_random, seed=seed,
                           max_refits=max_refits, start=start, nit0=nit)
        if sol is not None:
            return sol
        notes.append(f"β = {beta:g}: smoothed dual {'converged' if ok else 'not converged'}; {msg}")
    mx = pt.maxima
    A, P, mirror = _orbits(problem, mx.points()[pt.weights > 1e-6], pt.weights[pt.weights > 1e-6])
    info = [(_match(a, mx, problem.phi.odd), True) for a in A]
    return _make_solution(problem, t, A, P / P.sum(), mirror, mx, info, float(np.max(np.abs(pt.residual))), False,
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
    if _condenses(problem):
        from .large_p_condensate import polish_linear_growth
        cond = previous.condensate
        D = np.zeros((0, problem.m)) if cond is None else cond.directions
        lam = np.zeros(0) if cond is None else cond.mass
        return polish_linear_growth(problem, previous.t, A, P, mirror, D, lam, **kw)
    return _polish(problem, previous.t, A, P, mirror, **kw)


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
            return replace(sol, converged=False, time_seconds=time.perf_counter() - start,
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
    out, t, A, P, cond = _newton(problem, np.asarray(t, dtype=np.float64), A, P, tol)
    odd = problem.phi.odd
    mirror = [bool(odd and np.linalg.norm(a) > 1e-8) for a in A]
    if not out.converged:
        info = [(None, False)] * len(P)
        return _make_solution(problem, t, A, P, mirror, None, info, out.residual_norm, False, "constrained",
                              f"not converged: {out.message}", out.nit, start, {})
    try:
        mx, info = _classify(problem, t, A, global_tol, n_random, seed)
    except RuntimeError as exc:
        info = [(None, False)] * len(P)
        return _make_solution(problem, t, A, P, mirror, None, info, out.residual_norm, False, "constrained",
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
    return _make_solution(problem, t, A, P, mirror, mx, info, out.residual_norm, True, kind, msg, out.nit, start,
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
