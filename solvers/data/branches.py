"""Large-P branch form of the mean-field theory on arbitrary inputs (THEORY §2 + §4, issue 5).

Scaling σ_a² = σ̄_a²/P (σ̄_a = ``spec.sigma_a``·√P), the readout a ∈ R^m of one neuron has the
marginal p_t(a) ∝ exp(P·S(a; t)) with (van Meegen & Sompolinsky, Nat. Commun. 16, 3354 (2025))

    S(a; t) = −||a||²/(2σ̄_a²) + Λ(t a)/P,      Λ(g) = log E_{h~N(0,σ_1²K0)} exp(g·φ(h)),  g ∈ R^P.

For K0 = I and class-constant t this is THEORY §4's S (Λ = Σ_c P_c ψ(t_c·a)); the module
generalises :mod:`solvers.large_p.solve` to any input kernel K0. As P → ∞ the measure concentrates on
the global maxima a_γ of S (branches) with occupations P_γ ≥ 0, Σ P_γ = 1; given a_γ the
preactivations follow the tilted Gaussian p(h | a_γ) ∝ N(h; 0, σ_1²K0) e^{g_γ·φ(h)}, g_γ = t a_γ.
With m_γ = E_{h|a_γ}[φ(h)] (P-vector) and C_γ = Cov_{h|a_γ}[φ(h)], the equations are

    ∇_a S(a_γ) = 0     ⇔  a_γ = (σ̄_a²/P) tᵀ m_γ
    S(a_γ) = λ         (equal global maxima)
    f = Σ_γ P_γ m_γ a_γᵀ = Y − T t,       Σ_γ P_γ = 1,

the KKT conditions of the convex, non-smooth dual G∞(t) = max_a S − tr(tᵀY)/P + (T/2P)||t||².
Observables: U = Σ P_γ a_γ a_γᵀ, K = Σ P_γ E_{h|a_γ}[φφᵀ], test predictor
f(x*) = Σ P_γ a_γ E_{h|a_γ}[E[φ(h*) | h]] (h* | h Gaussian, :func:`theory.general.test_conditional`,
:func:`theory.general.gaussian_phi_mean`). Odd φ: S(−a) = S(a) and every observable is even in a,
so a branch stands for the mirror orbit {a_γ, −a_γ} with its occupation split equally.

Numerics:

* **Tilted sampler** (:class:`.tilted_chains.TiltedChains`): generalised elliptical slice sampling (Murray,
  Adams & MacKay 2010; Nishihara, Murray & Adams 2014) of p(z) ∝ N(z; 0, I) e^{g_c·φ(Lz)},
  σ_1²K0 = LLᵀ, many tilt vectors g_c at once (one per chain; chains grouped by tilt), with a
  Gaussian reference N(μ_k, S_k) per tilt group fitted between runs (exact for any reference).
* **Λ by thermodynamic integration**: Λ(g) = ∫₀¹ g·m(s g) ds on Clenshaw–Curtis nodes (s = 0
  in closed form, E_prior φ(h_μ) = E φ(N(0, σ_1²K0_μμ))); error = Monte Carlo standard error
  (MCSE, from independent chain groups) ⊕ |CC_n − CC_{n/2}| (nested rule).
* **Branch search** (:func:`find_maxima`): the minorise–maximise fixed point
  a ← (σ̄_a²/P) tᵀ m(t a) (S ≥ its linearisation in the convex Λ, so S never decreases) from
  sign-pattern starts in {−1, 0, 1}^m (m ≤ 4) plus random starts, all sampled in one batch;
  end points clustered (modulo a → −a for odd φ); a local maximum needs ∇²S = −I/σ̄_a² +
  tᵀC t/P ≺ 0; heights by thermodynamic integration.
* **Outer solve** (:func:`solve_general_branches`): Newton on the full KKT system in
  (t, a_γ, P_γ, λ) with the sampled Jacobian (C_γ from the samples); between samplings the
  Newton iterations use the importance-weighted surrogate of each branch (common random
  numbers: m_γ, C_γ and Λ_γ at a new g_γ by reweighting the fixed sample; the trust region is an
  importance-sampling ESS ≥ ``min_ess_fraction``). Branches whose occupation turns negative are
  dropped; at convergence the branch search runs again at the final t and a maximum above the
  occupied ones (by more than 3 errors) is added and the solve continues.
* **Convergence**: rms of r̂/MCSE(r̂) ≤ ``z_tol`` for the f-equation r̂ = Σ P_γ m_γ a_γᵀ + T t − Y,
  max MCSE(r̂) ≤ ``f_tol``, the stationarity ‖∇_a S‖ and the height differences within 3 MCSE.
  The reported f = Σ P_γ m_γ a_γᵀ at the last sampled point; its error is MCSE ⊕ |r̂| per entry
  (the group MCSE alone misses the noise that (t, a_γ, P_γ) carry from the previous round's
  sample: on K0 = I single entries were off by 5 MCSE with the rms z ≈ 1.8).

Linear φ: Λ = σ_1² gᵀK0 g/2 exactly, S is quadratic with its maximum at a = 0 inside the domain
σ̄_a²σ_1² tᵀK0t/P ⪯ I; the solution is one Gaussian branch (a = 0, h | a the prior) whose readout
covariance U is the multiplier of that constraint: f = σ_1² K0 t U = Y − T t, U ⪰ 0,
U (I − σ̄_a²σ_1² tᵀK0t/P) = 0. Solved without sampling as the concave dual
max_{U⪰0} −½ vec(Y)ᵀ(T I + σ_1² U ⊗ K0)⁻¹vec(Y) − (P/2σ̄_a²) tr U (:func:`linear_branch_form`);
for K0 = I it is :func:`solvers.large_p.solve.linear_large_p`.

ReLU (and other φ with linear growth): the condensate of THEORY §4 is not implemented here;
:func:`solve_general_branches` raises :class:`SpecError`.

Measurements (K0 = I and digits, erf and normcdf, P = 12–300): ``docs/devlog.md``.

Limits: the branch search explores sign-pattern starts only (m ≤ 4 exhaustively); heights carry
TI errors that grow with P (S error ≈ 0.002 at P = 300); the Newton trust region (importance
ESS) makes rounds short but many when a branch has to be added far from the solution.
"""
from __future__ import annotations

from typing import NamedTuple
import time

import numpy as np
from scipy.optimize import nnls

from solvers.data.branch_result import GeneralBranch, GeneralBranchSolution, branch_code
from solvers.data.chains import prior_factor
from solvers.data.estimators import group_mcse
from solvers.data.kkt import BranchSystem
from solvers.data.linear_branch import linear_branch_form
from solvers.data.maxima import Maximum, find_maxima
from solvers.data.options import GeneralBranchOptions
from solvers.data.thermodynamic import clenshaw_curtis, thermodynamic_lambda
from solvers.data.tilted_chains import TiltedChains
from solvers.newton import Point, Stop, damped_newton_minimise
from solvers.progress import report
from theory.nonlinearities import get_nonlinearity
from theory.spec import ModelSpec, SpecError

__all__ = ["GeneralBranchOptions", "GeneralBranch", "GeneralBranchSolution", "TiltedChains", "find_maxima",
           "solve_general_branches", "linear_branch_form", "clenshaw_curtis", "thermodynamic_lambda", "Maximum"]


def _check_spec(spec):
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec must be a ModelSpec (got {type(spec).__name__})")
    if spec.inputs is None:
        raise SpecError("solve_general_branches needs explicit inputs (spec.inputs); for orthogonal data use "
                        "solvers.large_p.solve.solve_large_p")
    nl = get_nonlinearity(spec.nonlinearity)
    if nl.linear_growth and nl.name != "linear":
        raise SpecError(f"large-P branch form for ReLU on general data not implemented (nonlinearity "
                        f"{spec.nonlinearity!r} grows linearly: its condensate, THEORY §4, is not handled here); "
                        "use a bounded φ (erf, normcdf, tanh), linear, or solvers.data.solve.solve_general")
    if spec.temperature <= 0.0:
        raise SpecError(f"temperature must be > 0 for the branch solver (got {spec.temperature})")
    return nl


def _template_field(spec):
    """t_μ = t∞_{c(μ)} of the orthogonal-data large-P solution (same ρ_c, σ_1, σ̄_a, T); τ₀Y with
    τ₀ = min(1/T, 3) if that solve does not converge."""
    from solvers.large_p.solve import solve_large_p
    from solvers.large_p.problem import LargePProblem

    Y = spec.targets()
    prob = LargePProblem(nonlinearity=spec.nonlinearity, sigma_w=spec.sigma_w,
                         sigma_a_bar=spec.sigma_a * np.sqrt(spec.P), temperature=spec.temperature,
                         class_fractions=tuple(spec.class_fractions))
    ref = solve_large_p(prob)
    if not ref.converged:
        return min(1.0 / spec.temperature, 3.0) * Y
    return Y @ ref.t


def _initial(spec, opt, rng, L, K0, t0):
    """Start: field t0 (default: the orthogonal-data large-P field t_c of the same class fractions,
    σ_1, σ̄_a and T, :func:`solvers.large_p.solve.solve_large_p`, copied to every input of class c, which is
    exact for K0 = I), its maxima, occupations by NNLS on the f-equation (the minimum-norm
    subgradient of G∞ over the simplex)."""
    Y, T = spec.targets(), spec.temperature
    if t0 is None:
        t = _template_field(spec)
    else:
        t = np.array(t0, dtype=np.float64)
        if t.shape != Y.shape or not np.all(np.isfinite(t)):
            raise SpecError(f"initial_field must be a finite array of shape (P, m) = {Y.shape} (got {t.shape})")
    mx = find_maxima(spec, t, opt, rng=rng, L=L, K0=K0)
    if not mx:
        raise RuntimeError("solve_general_branches: the branch search found no local maximum of S at the start")
    A = np.array([x.a for x in mx])
    lam, _, smp, _ = thermodynamic_lambda(L, spec.nonlinearity, K0, spec.sigma_w, A @ t.T, opt, rng, opt.sweeps)
    # NNLS on the f-equation with Σπ = 1 enforced by a heavy row
    cols = np.array([np.outer(s.mean(), a).ravel() for s, a in zip(smp, A)]).T
    w = 10.0 * np.sqrt(cols.shape[0])
    Aeq = np.vstack([cols, w * np.ones(len(A))])
    beq = np.concatenate([(Y - T * t).ravel(), [w]])
    pi = nnls(Aeq, beq)[0]
    start_info = {"start_maxima": [(np.round(x.a, 3).tolist(), round(x.value, 5)) for x in mx],
                  "occupations": np.round(pi, 4).tolist()}
    keep = pi > 1e-3
    if not keep.any():
        keep[0] = True
        pi[0] = 1.0
    return t, A[keep], pi[keep] / pi[keep].sum(), start_info


class _Assessment(NamedTuple):
    """Residuals of one round at the sampled point, with group MCSE."""

    r: np.ndarray  # Σ P_γ m_γ a_γᵀ + T t − Y
    se: np.ndarray
    z_rms: float
    Fg: np.ndarray  # f per chain group (G × P × m)
    grad: np.ndarray  # ∇_a S per branch
    S: np.ndarray  # heights S(a_γ)
    S_err: np.ndarray
    spread: float
    spread_err: float
    stat_ok: bool
    height_ok: bool


def _assess(spec, t, A, pi, smp, lam0, lerr) -> _Assessment:
    """f-equation residual, stationarity ∇_a S and the height differences, each with its group MCSE."""
    P, T, Y = spec.P, spec.temperature, spec.targets()
    sb2 = spec.sigma_a**2 * P
    n = len(A)
    Mg = np.array([s.group_means() for s in smp])  # n × G × P
    Fg = np.einsum("g,gkp,gr->kpr", pi, Mg, A)  # G × P × m
    r = Fg.mean(axis=0) + T * t - Y
    se = group_mcse(Fg)
    z_rms = float(np.sqrt(np.mean((r / np.maximum(se, 1e-300)) ** 2)))
    grad_g = np.einsum("gkp,pr->gkr", Mg, t) / P - A[:, None, :] / sb2  # n × G × m
    grad, grad_se = grad_g.mean(axis=1), group_mcse(grad_g.transpose(1, 0, 2))
    S = lam0 / P - np.sum(A * A, axis=1) / (2 * sb2)
    S_err = lerr / P
    spread = float(S.max() - S.min())
    spread_err = float(np.sqrt(np.sort(S_err)[-2:] @ np.sort(S_err)[-2:])) if n > 1 else 0.0
    stat_ok = bool(np.all(np.abs(grad) <= 3 * grad_se + 1e-3 / sb2 * (1 + np.abs(A))))
    height_ok = spread <= 3 * spread_err + 1e-6
    return _Assessment(r, se, z_rms, Fg, grad, S, S_err, spread, spread_err, stat_ok, height_ok)


def _round_info(rnd, opt, sweeps, sb2, A, pi, a: _Assessment) -> dict:
    """The log entry of one round."""
    n = len(A)
    return {"round": rnd, "branches": n, "sweeps": sweeps, "samples": int(n * opt.chains * opt.keep),
            "residual": float(np.max(np.abs(a.r))),
            "mcse": float(np.max(a.se)), "z_rms": a.z_rms, "grad": float(np.max(np.abs(a.grad)) * sb2),
            "height_spread": a.spread, "height_error": a.spread_err, "occupations": np.round(pi, 4).tolist(),
            "a": np.round(A, 3).tolist()}


def _higher_maxima(spec, opt, rng, L, K0, nl, t, A, a: _Assessment):
    """Final check: the branch search at t; returns (all maxima, those above the occupied branches by
    more than 3 errors that are not one of them)."""
    mx = find_maxima(spec, t, opt, rng=rng, L=L, K0=K0)
    higher = [x for x in mx if x.value > a.S.max() + 3 * np.hypot(x.value_error, a.S_err.max()) + 1e-6
              and not any(np.linalg.norm(x.a - b) < 0.05 * (1 + np.linalg.norm(b))
                          or (nl.odd and np.linalg.norm(x.a + b) < 0.05 * (1 + np.linalg.norm(b)))
                          for b in A)]
    return mx, higher


def _kkt_newton(sys_, opt, t, A, pi, lam_mult):
    """Newton on the surrogate KKT system R(x) = 0 (fixed samples) with
    :func:`solvers.newton.damped_newton_minimise` on the merit function of ``sys_``: the step
    J⁻¹(−R) (least squares, rcond 1e-12, where J is singular), slope −2·merit; a trial is accepted
    inside the importance-ESS trust region (ESS fraction >= ``min_ess_fraction``) with
    merit(R(x + αΔx)) <= (1 − 10⁻⁴α) merit(R(x)), at most 20 trials; up to ``max_newton`` steps,
    a damped step ends them. Returns (t, A, π, λ, steps, α of the last line search, last rejection)."""
    steps, limit = 0, ""

    def evaluate(x, base, k):
        tn, An, _, _ = sys_.unpack(x)
        st = sys_.branch_stats(tn, An)
        R, essf = sys_.residual(x, st)
        return Point(sys_.merit(R), data=(st, R, essf))

    def direction(x, p):
        J, R = sys_.jacobian(x, p.data[0]), p.data[1]
        try:
            dx = np.linalg.solve(J, -R)
        except np.linalg.LinAlgError:
            dx = np.linalg.lstsq(J, -R, rcond=1e-12)[0]
        if not np.all(np.isfinite(dx)):
            dx = np.linalg.lstsq(J, -R, rcond=1e-12)[0]
        return dx, -2.0 * p.value

    def accept(new, alpha, search):
        nonlocal limit
        if new.data[2] < opt.min_ess_fraction:
            limit = "ess"
        elif new.value > (1 - 1e-4 * alpha) * search.point.value:
            limit = "merit"
        else:
            return True
        return False

    def after_step(x, p, alpha, search):
        nonlocal steps
        steps += 1
        return Stop(False, "stopped", "a damped step") if alpha < 1.0 else None

    x = sys_.pack(t, A, pi, lam_mult)
    stats = sys_.branch_stats(t, A)
    R, essf = sys_.residual(x, stats)
    out = damped_newton_minimise(evaluate, x, start=Point(sys_.merit(R), data=(stats, R, essf)),
                                 maxiter=opt.max_newton, measure=lambda p: p.value, direction=direction,
                                 accept=accept, max_trials=20, min_alpha=None, after_step=after_step)
    t, A, pi, lam_mult = sys_.unpack(out.x)
    return t.copy(), A.copy(), pi.copy(), lam_mult, steps, out.damping, limit


def _clip_occupations(sys_, spec, t, A, pi, S_err, info):
    """A branch strictly above all others (by 3 errors) must stay occupied: clip it; any other branch
    with P_γ < 0 is dropped (complementarity: P_γ = 0 where S_γ may lie below λ). Returns (A, π,
    whether a branch was dropped)."""
    P, sb2 = spec.P, spec.sigma_a**2 * spec.P
    if np.any(pi < 0):
        Sn = sys_.branch_stats(t, A, need_cov=False)[2] / P - np.sum(A * A, axis=1) / (2 * sb2)
        second = np.array([np.max(np.delete(Sn, i)) if len(Sn) > 1 else -np.inf for i in range(len(Sn))])
        top = Sn > second + 3 * float(np.max(S_err))
        cand = np.flatnonzero((pi < 0) & ~top)
        if cand.size == 0:
            pi = np.maximum(pi, 0.0)
            pi = pi / pi.sum()
    if not np.any(pi < 0):
        return A, pi, False
    drop = int(cand[np.argmin(pi[cand])])
    info["dropped"] = np.round(A[drop], 3).tolist()
    keep = np.arange(len(A)) != drop
    A, pi = A[keep], np.maximum(pi[keep], 0.0)
    return A, pi / pi.sum(), True


def _branch_solution(spec, opt, nl, sampled, smp, a: _Assessment, log, converged, message, start):
    """Observables at the last sampled point."""
    t, A, pi = sampled
    P, G, sb2 = spec.P, opt.groups, spec.sigma_a**2 * spec.P
    Kg = np.zeros((G, P, P))
    for p_, s in zip(pi, smp):  # loop over branches
        Pg = s.Phi.reshape(G, -1, P)
        Kg += p_ * np.einsum("gsi,gsj->gij", Pg, Pg) / Pg.shape[1]
    odd = nl.odd
    branches = [GeneralBranch(a=b.copy(), occupation=float(p_), value=float(sv), value_error=float(se_),
                              mirror=bool(odd and np.linalg.norm(b) > 1e-9), code=branch_code(b, odd))
                for b, p_, sv, se_ in zip(A, pi, a.S, a.S_err)]
    r, se = a.r, a.se
    imax = np.unravel_index(np.argmax(np.abs(r)), r.shape)
    return GeneralBranchSolution(
        spec=spec, t=t, branches=branches, outputs=a.Fg.mean(axis=0), outputs_error=np.sqrt(se**2 + r**2),
        readout_moment=np.einsum("g,gr,gs->rs", pi, A, A), kernel=Kg.mean(axis=0), residual=float(abs(r[imax])),
        residual_error=float(se[imax]), z_rms=a.z_rms, stationarity=float(np.max(np.abs(a.grad)) * sb2),
        height_spread=a.spread, height_error=a.spread_err, converged=converged, iterations=len(log) - 1,
        status="converged" if converged else "not-converged", error_estimate=float(np.max(np.sqrt(se**2 + r**2))),
        time_seconds=time.perf_counter() - start, log=log,
        message=message or f"converged: {len(A)} branches, rms residual/MCSE {a.z_rms:.2f} <= {opt.z_tol}",
        _samples=smp)


def solve_general_branches(spec: ModelSpec, options: GeneralBranchOptions | None = None, progress=None,
                           initial_field: np.ndarray | None = None) -> GeneralBranchSolution:
    """Large-P branch solution on the inputs of ``spec`` (σ̄_a = σ_a√P; module docstring).

    ``progress`` (:mod:`solvers.progress`) receives ``ProgressEvent("round", round, max_rounds, info)``
    after every round (info has "samples", "residual", "mcse", "z_rms", so
    :func:`solvers.data.solve.progress_printer` works). ``initial_field`` (P × m)
    replaces the template start. Raises :class:`SpecError` for ReLU-type
    φ, T = 0 and missing inputs; non-convergence is reported in ``converged``/``message``."""
    nl = _check_spec(spec)
    opt = options or GeneralBranchOptions()
    if nl.name == "linear":
        return linear_branch_form(spec)
    start = time.perf_counter()
    rng = np.random.default_rng(opt.seed)
    K0 = spec.input_kernel()
    L = prior_factor(K0, spec.sigma_w)
    sb2 = spec.sigma_a**2 * spec.P
    t, A, pi, start_info = _initial(spec, opt, rng, L, K0, initial_field)
    lam_mult = 0.0
    sweeps = opt.sweeps
    log, converged, message = [start_info], False, ""
    state = None
    added = 0
    for rnd in range(1, opt.max_rounds + 1):
        n = len(A)
        lam0, lerr, smp, state = thermodynamic_lambda(L, spec.nonlinearity, K0, spec.sigma_w, A @ t.T, opt, rng,
                                                      sweeps, state=state if state and
                                                      state[0].shape[0] == opt.nodes * n * opt.chains else None)
        sys_ = BranchSystem(spec, smp, lam0)
        sampled = (t.copy(), A.copy(), pi.copy())  # the point the reported observables belong to
        a = _assess(spec, t, A, pi, smp, lam0, lerr)
        info = _round_info(rnd, opt, sweeps, sb2, A, pi, a)
        if a.z_rms <= opt.z_tol and float(np.max(a.se)) <= opt.f_tol and a.stat_ok and a.height_ok:
            mx, higher = _higher_maxima(spec, opt, rng, L, K0, nl, t, A, a)
            if not higher or added >= 4:
                converged = True
                message = "" if not higher else "a higher maximum of S remains after 4 additions"
                info["check_maxima"] = len(mx)
                log.append(info)
                report(progress, "round", rnd, opt.max_rounds, **info)
                break
            A = np.vstack([A, higher[0].a])
            pi = np.concatenate([pi, [0.0]])
            added += 1
            sweeps = opt.sweeps  # far from the solution again: short rounds until the residual is small
            info["added"] = np.round(higher[0].a, 3).tolist()
            log.append(info)
            report(progress, "round", rnd, opt.max_rounds, **info)
            state = None
            continue
        if a.z_rms <= 4 * opt.z_tol:
            sweeps = min(2 * sweeps, opt.max_sweeps)
        lam_mult = float(np.mean(a.S)) if rnd == 1 else lam_mult
        t, A, pi, lam_mult, steps, alpha, limit = _kkt_newton(sys_, opt, t, A, pi, lam_mult)
        info.update(newton_steps=steps, alpha=alpha, limited_by=limit)
        A, pi, dropped = _clip_occupations(sys_, spec, t, A, pi, a.S_err, info)
        if dropped:
            state = None
        log.append(info)
        report(progress, "round", rnd, opt.max_rounds, **info)
    else:
        message = (f"no convergence in {opt.max_rounds} rounds: rms residual/MCSE {a.z_rms:.2f} (tolerance "
                   f"{opt.z_tol}), max MCSE {float(np.max(a.se)):.2g} (target {opt.f_tol}), stationarity "
                   f"{'ok' if a.stat_ok else 'not met'}, height spread {a.spread:.2g} ± {a.spread_err:.1g}")
    return _branch_solution(spec, opt, nl, sampled, smp, a, log, converged, message, start)
