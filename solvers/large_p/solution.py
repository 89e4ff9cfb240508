"""Large-P solutions as objects: branches, the solution type, and their polishing (THEORY §4).

A solution is a set of branches (readout vectors a_γ, equal global maxima of S(a; t)) with
occupations P_γ >= 0, Σ P_γ = 1, solving

    ∇_a S(a_γ) = 0,   S(a_γ) = S(a_1),   Σ_γ P_γ a_γ ψ'(t_c·a_γ) = e_c − T t_c.

:func:`polish` runs Newton on these equations from a guess and then checks with
:func:`solvers.large_p.maxima.maximise_action` that the branches are the global maxima of S.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import time

import numpy as np

from theory.observables import Observables

from solvers.results import Result

from solvers.large_p.branches import branch_system, newton_branches
from solvers.large_p.maxima import ActionMaxima, maximise_action
from solvers.large_p.problem import LargePProblem

__all__ = ["Branch", "LargePSolution", "status_of", "branch_newton", "branch_observables", "orbits", "match_maximum", "classify_maxima",
           "make_solution", "polish"]


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


@dataclass(frozen=True, kw_only=True)
class LargePSolution(Result):
    """A solution of the large-P equations (THEORY §4), on the result protocol (:class:`solvers.results.Result`).

    ``residual`` is max |F| of the branch equations, ``iterations`` the branch-Newton iterations,
    ``status`` "converged" or "not-converged" (a constrained stationary point, a failed Newton);
    ``error_estimate`` is not estimated (NaN). Read-only aliases of earlier names: ``nit``
    (``iterations``), ``residual_norm`` (``residual``), ``success`` (``converged``).
    """

    problem: LargePProblem
    t: np.ndarray  # (m, m), t[c, r]
    branches: tuple  # of Branch (mirror orbits for odd φ)
    maxima: ActionMaxima | None  # every local maximum of S(·; t) found
    observables: Observables
    free_energy: float  # S(a_1) − Σ ρ_c t_cc + (T/2) Σ ρ_c ||t_c||² (= G∞(t) when kind == "global")
    kind: str  # "global" (minimiser of G∞), "constrained", or "linear-gaussian"
    condensate: object | None = None  # solvers.large_p.condensate.LargePCondensate, if any
    extra: dict = field(default_factory=dict)

    nit = property(lambda self: self.iterations, doc="read-only alias of ``iterations``")
    residual_norm = property(lambda self: self.residual, doc="read-only alias of ``residual``")
    success = property(lambda self: self.converged, doc="read-only alias of ``converged``")

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
               "kind": self.kind, **self.result_json()}
        if self.maxima is not None:
            out["maxima"] = self.maxima.to_json()
        if self.condensate is not None:
            out["condensate"] = self.condensate.to_json()
        out.update({k: v for k, v in self.extra.items() if isinstance(v, (int, float, str, bool, list, dict))})
        return out


def status_of(converged: bool) -> str:
    """The status string of a large-P solution."""
    return "converged" if converged else "not-converged"


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


def orbits(problem, A, weights, tol=1e-6):
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


def same_point(a, b, odd: bool, tol=1e-6) -> bool:
    """a and b are the same point (or mirror images, for odd φ)."""
    scale = tol * (1.0 + np.linalg.norm(b))
    return bool(np.linalg.norm(a - b) <= scale or (odd and np.linalg.norm(a + b) <= scale))


def match_maximum(a, maxima: ActionMaxima, odd: bool):
    """Index of the maximum at a (or −a for odd φ), else None."""
    for i, x in enumerate(maxima.maxima):
        if same_point(a, x.a, odd):
            return i
    return None


# ---------------------------------------------------------------------- Newton + classification
def branch_newton(problem, t, A, P, tol):
    sysn = branch_system(problem, len(P))
    out = newton_branches(sysn, sysn.pack(t, A, P), tol=tol)
    t, A, P = sysn.unpack(out.x)
    J, _ = sysn.jacobian(out.x)
    sv = np.linalg.svd(J, compute_uv=False)
    return out, t, A, P, float(sv[-1] / sv[0])


def classify_maxima(problem, t, A, global_tol, n_random, seed):
    """Maxima of S at t (warm-started at the branches) and, per branch, (index of its maximum or None, is_global)."""
    odd = problem.phi.odd
    warm = np.concatenate([A, -A]) if odd else A
    mx = maximise_action(problem, t, warm=warm, n_random=n_random, seed=seed, global_tol=global_tol)
    info = []
    for a in A:
        i = match_maximum(a, mx, odd)
        info.append((i, i is not None and mx.maxima[i].is_global))
    return mx, info


def make_solution(problem, t, A, P, mirror, mx, info, residual, converged, kind, message, nit, start, extra):
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
                          residual=residual, converged=converged, status=status_of(converged), kind=kind,
                          message=message, iterations=nit,
                          time_seconds=time.perf_counter() - start, extra=extra)


def polish(problem, t, A, P, mirror, *, tol, global_tol, n_random, seed, max_refits, start, nit0=0):
    """Branch Newton + global-maximum and P ≥ 0 checks, adding/dropping branches; (solution, ok)."""
    odd = problem.phi.odd
    notes = []
    nit = nit0
    A, P, mirror = np.array(A, dtype=np.float64), np.array(P, dtype=np.float64), list(mirror)
    for _ in range(max_refits):
        out, t, A, P, cond = branch_newton(problem, t, A, P, tol)
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
            mx, info = classify_maxima(problem, t, A, global_tol, n_random, seed)
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
            missing = [x.a for x in mx.maxima if x.is_global and not any(same_point(x.a, a, odd) for a in A)]
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
        sol = make_solution(problem, t, A, P, mirror, mx, info, res, res <= 10 * tol, "global", msg, nit,
                             start, {"jacobian_conditioning": cond})
        return sol, msg
    return None, f"no consistent branch set after {max_refits} refits: " + "; ".join(notes)
