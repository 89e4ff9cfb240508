"""Deep networks at large P (σ_a² = σ̄_a²/P, P → ∞) on orthogonal class data: solver of the
leading-order equations derived in :mod:`theory.deep_large_p` (read that docstring: the last hidden
layer saturates into binary units, the lower layers stay at their prior kernels).

* L = 1: the one-layer large-P theory, :func:`solvers.large_p.solve.solve_large_p` (THEORY §4), mapped
  to the deep schema (there is no class-shared ξ with K_0 = I, so nothing saturates).
* L >= 2, bounded non-decreasing φ (normcdf, erf, tanh): minimise the convex
  G∞(t) = max_b Q_b(t) − Σ_c ρ_c t_cc + (T/2) Σ_c ρ_c ||t_c||² over t (m × m), Q_b over the 2^m
  saturation patterns b ∈ {φ_-, φ_+}^m. Step 1: the smoothed dual with (1/β) log Σ_b e^{β Q_b}
  (analytic gradient and Hessian, damped Newton) for β = 10²..10⁶ (relative to max Q); step 2:
  damped Newton (:func:`solvers.newton.damped_newton`, least-squares steps) on the branch system
  (active patterns, occupations P_γ, t)

      Σ_γ P_γ b_γc a_γ + T t_c − e_c = 0,  Q_{b_γ} − Q_{b_1} = 0,  Σ_γ P_γ − 1 = 0,

  dropping patterns with P_γ < 0 and adding any pattern whose Q exceeds the branches' (exact
  enumeration, so "global" is certain). Reported: the branch-system residual (``residual``),
  ``converged`` (residual < tol, P_γ >= −tol, branches global), ``stable`` (G∞ strictly convex for
  T > 0: the minimiser is unique, hence stable), ``occupations_unique`` (full column rank of the
  occupation block; for odd φ with many symmetric orbits the occupations can be degenerate, as in
  :mod:`solvers.large_p.solve`).
* L >= 2, linear φ: the leading-order rich root of the deep linear closed form
  (:func:`theory.deep_large_p.linear_asymptotics`, evaluated at the spec's P: there is no finite
  limit), with its correction order.
* ReLU and other growing φ: SpecError (not implemented).

Measured checks (finite-P solver and sampled networks against this limit): docs/devlog.md.

References: THEORY §4–5; A. van Meegen and H. Sompolinsky, Nat. Commun. 16, 3354 (2025).
"""
from __future__ import annotations

from dataclasses import dataclass, field
import math
import time

import numpy as np

from theory.deep_blocks import OneD, tilted_moments
from theory.deep_large_p import linear_asymptotics, pattern_values, prior_kernels, saturation_levels, vertices
from solvers.deep.common import layer_sigmas, with_result_keys
from solvers.newton import Point, Stop, damped_newton, damped_newton_minimise, lstsq_solver
from solvers.results import Result
from theory.nonlinearities import get_nonlinearity
from theory.observables import Observables, check_layer, layer_summaries
from theory.spec import ModelSpec, SpecError, positive_float
from theory.codes import code_fractions, neuron_codes

__all__ = ["DeepLargePSolution", "solve_deep_large_p", "deep_large_p_json"]


@dataclass(frozen=True, kw_only=True)
class DeepLargePSolution(Result):
    """Leading-order large-P deep solution; interface of :class:`solvers.deep.nonlinear.DeepNonlinearSolution`
    (``outputs``, ``readout_moment``, ``layer_observables(ℓ)``, ``layer_summaries()``, ``to_json()``).
    ``branches``: per hidden layer a list of {"a", "pattern", "occupation", "code", "mirror"} (empty for
    layers without branches).

    Result protocol: ``residual`` is the residual of the equations solved (branch system, or the one-layer
    large-P equations); ``converged`` that residual below ``tol`` with the branches global;
    ``error_estimate`` the numerical error of the leading-order quantities (the prior-kernel quadrature;
    0 for the closed forms), not the O(1/√(P log P)) distance to finite P."""

    spec: ModelSpec
    sigmas: tuple
    sigma_a_bar: float
    method: str
    t: np.ndarray
    outputs: np.ndarray
    readout_moment: np.ndarray
    kernel_diagonals: list
    kernel_blocks: list
    branches: list
    code_fractions: list
    free_energy: float
    stable: bool
    occupations_unique: bool
    extra: dict = field(default_factory=dict)

    @property
    def layers(self) -> int:
        return len(self.sigmas)

    def layer_observables(self, ell: int) -> Observables:
        check_layer(ell, self.layers)
        return Observables(outputs=self.outputs, readout_moment=self.readout_moment,
                           kernel_diagonal=np.asarray(self.kernel_diagonals[ell - 1]),
                           kernel_blocks=np.asarray(self.kernel_blocks[ell - 1]))

    def observables(self) -> Observables:
        return self.layer_observables(self.layers)

    def layer_summaries(self) -> list:
        out = layer_summaries(self, self.layers)
        for ell, entry in enumerate(out):
            entry["branches"] = self.branches[ell]
            entry["code_fractions"] = self.code_fractions[ell]
        return out

    def to_json(self) -> dict:
        free_energy = self.free_energy if math.isfinite(self.free_energy) else None
        return with_result_keys(self, {
            "layers": self.layer_summaries(), "sigmas": list(self.sigmas), "sigma_a_bar": self.sigma_a_bar,
            "class_fractions": list(self.spec.class_fractions), "temperature": self.spec.temperature,
            "converged": self.converged, "stable": self.stable, "occupations_unique": self.occupations_unique,
            "outputs": self.outputs.tolist(), "readout_moment": self.readout_moment.tolist(), "t": self.t.tolist(),
            "free_energy": free_energy, "residual": self.residual, "message": self.message,
            "method": self.method, "time_seconds": self.time_seconds,
            **{k: v for k, v in self.extra.items() if isinstance(v, (int, float, str, bool, list, dict))}})


# ----------------------------------------------------------------------------- saturated readout problem
def _smoothed(t, B, rho, sbar, T, beta):
    """G_β, gradient (m²) and Hessian (m² × m²) of the smoothed dual (module docstring)."""
    m = len(rho)
    Q, A = pattern_values(t, B, rho, sbar)
    qmax = Q.max()
    w = np.exp(beta * (Q - qmax))
    Z = w.sum()
    pi = w / Z
    W = B * rho[None, :]  # w_b = ρ ⊙ b
    G = qmax + math.log(Z) / beta - rho @ np.diag(t) + 0.5 * T * rho @ np.sum(t * t, axis=1)
    g_b = np.einsum("bc,br->bcr", W, A).reshape(len(B), -1)  # ∂Q_b/∂t
    g = pi @ g_b + (T * rho[:, None] * t - np.diag(rho)).ravel()
    H = sbar**2 * np.kron((W * pi[:, None]).T @ W, np.eye(m))
    gm = pi @ g_b
    H += beta * ((g_b * pi[:, None]).T @ g_b - np.outer(gm, gm))
    H += T * np.kron(np.diag(rho), np.eye(m))
    return G, g, H, pi


def _minimise_smoothed(t, B, rho, sbar, T, betas):
    """Minimiser of G_β for the growing β of ``betas`` (relative to |max Q|) by
    :func:`solvers.newton.damped_newton_minimise`, each from the last; returns (t, π there)."""
    m = len(rho)
    pt = None
    for beta_rel in betas:
        Q, _ = pattern_values(t, B, rho, sbar)
        beta = beta_rel / max(abs(Q.max()), 1e-3)

        def evaluate(x, base, k, beta=beta):
            G, g, H, pi = _smoothed(x, B, rho, sbar, T, beta)
            return Point(G, g, H, pi)

        def direction(x, p):
            step = -np.linalg.solve(p.hessian + 1e-14 * np.eye(len(p.gradient)), p.gradient)
            return step.reshape(m, m), float(p.gradient @ step)

        def after_step(x, p, alpha, search):  # stop at the gradient or step size of the rounding floor
            if np.max(np.abs(search.point.gradient)) < 1e-12 or alpha * np.max(np.abs(search.d)) < 1e-14:
                return Stop(True, "converged", "converged")
            return None

        out = damped_newton_minimise(evaluate, t, maxiter=100, direction=direction, after_step=after_step)
        t, pt = out.x, out.point
    return t, pt.data


def _branch_residual(t, P, Bs, rho, sbar, T):
    m = len(rho)
    Q, A = pattern_values(t, Bs, rho, sbar)
    f = np.einsum("g,gc,gr->cr", P, Bs, A)
    return np.concatenate([(f + T * t - np.eye(m)).ravel(), Q[1:] - Q[0], [P.sum() - 1.0]]), f, A, Q


def _branch_jacobian(t, P, Bs, rho, sbar, T, A):
    m, n = len(rho), len(P)
    W = Bs * rho[None, :]
    J = np.zeros((m * m + n, m * m + n))
    # f-part: ∂f[c,r]/∂t[d,s] = σ̄² Σ_g P_g b_gc w_gd δ_rs ; ∂f[c,r]/∂P_g = b_gc a_gr
    J[:m * m, :m * m] = sbar**2 * np.kron((Bs * P[:, None]).T @ W, np.eye(m)) + T * np.eye(m * m)
    J[:m * m, m * m:] = np.einsum("gc,gr->crg", Bs, A).reshape(m * m, n)
    gQ = np.einsum("gc,gr->gcr", W, A).reshape(n, -1)
    J[m * m:m * m + n - 1, :m * m] = gQ[1:] - gQ[0]
    J[-1, m * m:] = 1.0
    return J


def _newton_branches(t, P, Bs, rho, sbar, T, tol, maxiter=60):
    """Damped Newton (:func:`solvers.newton.damped_newton`, SVD step with cut 1e-13) on the branch
    system in x = (t, P); returns (t, P, max|F|, occupations unique: full column rank of ∂F/∂P)."""
    m = len(rho)

    def split(x):
        return x[:m * m].reshape(m, m), x[m * m:]

    def residual(x):
        return _branch_residual(*split(x), Bs, rho, sbar, T)[0]

    def jacobian(x):
        tx, Px = split(x)
        return _branch_jacobian(tx, Px, Bs, rho, sbar, T, pattern_values(tx, Bs, rho, sbar)[1])

    out = damped_newton(residual, jacobian, np.r_[t.ravel(), P], tol=tol, maxiter=maxiter,
                        solve=lstsq_solver(1e-13))
    t, P = split(out.x)
    F, f, A, Q = _branch_residual(t, P, Bs, rho, sbar, T)
    J = _branch_jacobian(t, P, Bs, rho, sbar, T, A)
    occ_rank = np.linalg.matrix_rank(J[:, m * m:], tol=1e-9 * max(1.0, np.abs(J).max()))
    return t, P, float(np.max(np.abs(F))), bool(occ_rank == len(P))


def solve_saturated(rho, sigma_a_bar: float, temperature: float, levels, odd: bool, *, tol: float = 1e-11,
                    betas=(1e2, 1e3, 1e4, 1e5, 1e6), max_refits: int = 10, patterns=None) -> dict:
    """Minimiser t* of the saturated G∞ and its branches (module docstring). Returns a dict with t,
    patterns B (n, m), readouts A (n, m), occupations P (n,), Q_max, free energy, residual, flags.
    ``patterns``: the admissible activation patterns (rows), default all vertices {φ_-, φ_+}^m."""
    rho = np.asarray(rho, dtype=np.float64)
    m = len(rho)
    T = float(temperature)
    B = vertices(levels, m, odd) if patterns is None else np.atleast_2d(np.asarray(patterns, dtype=np.float64))
    t, pi = _minimise_smoothed(np.zeros((m, m)), B, rho, sigma_a_bar, T, betas)
    Q, _ = pattern_values(t, B, rho, sigma_a_bar)
    active = list(np.flatnonzero((Q >= Q.max() - 1e-7 * (1 + abs(Q.max()))) | (pi > 1e-8)))
    P = pi[active] / pi[active].sum()
    msg = ""
    for _ in range(max_refits):
        t, P, res, unique = _newton_branches(t, P, B[active], rho, sigma_a_bar, T, tol)
        Q, _ = pattern_values(t, B, rho, sigma_a_bar)
        qb = Q[active[0]]
        missing = [i for i in range(len(B)) if i not in active and Q[i] > qb + 1e-9 * (1 + abs(qb))]
        negative = [j for j, p in enumerate(P) if p < -tol]
        if not missing and not negative and res < tol:
            break
        if negative:
            j = int(np.argmin(P))
            del active[j]
            P = np.delete(P, j)
            P = np.maximum(P, 0) / np.maximum(P, 0).sum()
        for i in missing:
            active.append(i)
            P = np.append(P * 0.9, 0.1 / max(len(missing), 1))
        msg = f"re-fitted the branch set ({len(missing)} added, {len(negative)} negative)"
    Q, A = pattern_values(t, B, rho, sigma_a_bar)
    qmax = float(Q.max())
    is_global = bool(np.all(Q[active] >= qmax - 1e-9 * (1 + abs(qmax))))
    G = qmax - rho @ np.diag(t) + 0.5 * T * rho @ np.sum(t * t, axis=1)
    ok = bool(res < tol and np.all(P >= -tol) and is_global)
    return {"t": t, "B": B[active], "A": A[active], "P": P, "Q_max": qmax, "free_energy": float(G),
            "residual": res, "converged": ok, "occupations_unique": unique, "message": msg, "global": is_global}


# ----------------------------------------------------------------------------- codes
def _pattern_code(b, m) -> str:
    code = int(neuron_codes(np.asarray(b, dtype=np.float64)[None, :])[0])
    return "".join("1" if (code >> c) & 1 else "0" for c in range(m))


def _prior_codes(name, sigmas, priors, m, n, seed):
    """Code fractions of prior (untilted) neurons of each hidden layer: class means E_z φ(ξ_c + s z),
    ξ ~ N(0, σ_ℓ² k_{ℓ-1}) (zero for ℓ = 1), from ``n`` sampled neurons (error ~ √(f(1−f)/n))."""
    rng = np.random.default_rng(seed)
    oned = OneD.for_nonlinearity(name, 40)
    out = []
    for ell, sig in enumerate(sigmas, start=1):
        if ell == 1:
            xi, s = np.zeros((n, m)), np.full(m, sig)
        else:
            d, c = priors[ell - 2]  # prior input kernel: c on every pair (k = c 11ᵀ), d on the diagonal
            xi = sig * math.sqrt(max(c, 0.0)) * rng.standard_normal((n, 1)) * np.ones((1, m))
            s = np.full(m, sig * math.sqrt(max(d - c, 1e-300)))
        means = tilted_moments(oned, xi, np.zeros((n, m)), s, np.zeros(m))[1]
        out.append(code_fractions(neuron_codes(means), m))
    return out


# ----------------------------------------------------------------------------- entry point
def solve_deep_large_p(spec: ModelSpec, layers: int = 2, sigmas=None, sigma_a_bar: float | None = None, *,
                       patterns: str = "all", tol: float = 1e-11, code_neurons: int = 4000,
                       seed: int = 0) -> DeepLargePSolution:
    """Leading-order P → ∞ solution of the deep class-block theory (module docstring).

    ``spec``: orthogonal class data (its class fractions ρ_c, T, φ; σ_1 = ``spec.sigma_w``);
    ``sigmas``: hidden priors σ_1..σ_L (default: :func:`solvers.deep.linear.layer_sigmas`);
    ``sigma_a_bar``: σ̄_a (default σ_a √P of ``spec``). ``code_neurons``: prior neurons sampled for
    the lower layers' code fractions. ``patterns``: "all" (the P → ∞ limit: every saturation pattern is
    reachable at o(P) cost) or "prior-span" (only the patterns reachable with ξ in the span of the
    *prior* kernel k_{L-1}, i.e. b ∈ {φ_- 1, φ_+ 1} when Eφ ≠ 0 and b = 0 (no saturation, f = 0) for
    odd φ: the constrained solution that the finite-P theory follows while the √(P log P) cost of
    learning class contrasts in the lower layers still dominates, see :mod:`theory.deep_large_p`)."""
    t0 = time.perf_counter()
    if patterns not in ("all", "prior-span"):
        raise SpecError(f"patterns must be 'all' or 'prior-span' (got {patterns!r})")
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec must be a ModelSpec (got {type(spec).__name__})")
    if spec.inputs is not None:
        raise SpecError("solve_deep_large_p needs orthogonal class-structured data (inputs=None)")
    sig = layer_sigmas(spec, layers, sigmas)
    L, m = len(sig), spec.m
    sbar = positive_float("sigma_a_bar (σ̄_a, σ_a² = σ̄_a²/P)",
                          spec.sigma_a * math.sqrt(spec.P) if sigma_a_bar is None else sigma_a_bar)
    rho = np.asarray(spec.class_fractions, dtype=np.float64)
    T = spec.temperature
    name = get_name(spec)
    if L == 1:
        return _one_layer(spec, sig, sbar, rho, t0)
    if name == "linear":
        return _linear(spec, sig, sbar, rho, t0)
    lo, hi, odd = saturation_levels(name)
    if not T > 0.0:
        raise SpecError(f"temperature must be > 0 for the deep large-P solver (got {T!r}); at T = 0 G∞ is not "
                        "strictly convex and the branch system is degenerate")
    B = None
    if patterns == "prior-span":
        c_prior = prior_kernels(name, sig[:-1])[0][-1][1]
        B = np.array([[lo] * m, [hi] * m]) if c_prior > 1e-12 else np.zeros((1, m))
        odd = False
    sol = solve_saturated(rho, sbar, T, (lo, hi), odd, tol=tol, patterns=B)
    Bs, A, P = sol["B"], sol["A"], sol["P"]
    f = np.einsum("g,gc,gr->cr", P, Bs, A)
    U = np.einsum("g,gr,gs->rs", P, A, A)
    kb = np.einsum("g,gc,gd->cd", P, Bs, Bs)
    priors, perr = prior_kernels(name, sig)
    diags = [np.full(m, d) for d, _ in priors[:-1]] + [np.diag(kb).copy()]
    blocks = [np.full((m, m), c) for _, c in priors[:-1]] + [kb]
    if not np.any(Bs):  # prior-span for odd φ: nothing saturates, the last layer keeps its prior kernel
        diags[-1], blocks[-1] = np.full(m, priors[-1][0]), np.full((m, m), priors[-1][1])
    top = []
    for b, a, p in zip(Bs, A, P):
        top.append({"a": a.tolist(), "pattern": b.tolist(), "occupation": float(p), "code": _pattern_code(b, m),
                    "mirror": bool(odd)})
    fr: dict = {}
    for br in top:
        codes = [br["code"]] if not odd else [br["code"], _pattern_code(-np.asarray(br["pattern"]), m)]
        for c in codes:
            fr[c] = fr.get(c, 0.0) + br["occupation"] / len(codes)
    codes = _prior_codes(name, sig[:-1], priors[:-1], m, code_neurons, seed) if code_neurons else [{}] * (L - 1)
    msg = ("saturated last layer (binary codes), lower layers at their prior kernels; leading order, corrections "
           "O(1/sqrt(P log P)) (class-contrast codes). " + sol["message"]).strip()
    return DeepLargePSolution(
        spec=spec, sigmas=sig, sigma_a_bar=sbar,
        method="saturated" if patterns == "all" else "saturated, prior-span patterns", t=sol["t"], outputs=f,
        readout_moment=U, kernel_diagonals=diags, kernel_blocks=blocks, branches=[[] for _ in range(L - 1)] + [top],
        code_fractions=codes + [fr], free_energy=sol["free_energy"], residual=sol["residual"],
        converged=sol["converged"], status=_status(sol["converged"]), stable=True,
        occupations_unique=sol["occupations_unique"], message=msg, error_estimate=float(perr),
        extra={"prior_kernel_error": perr, "saturation_levels": [lo, hi], "n_patterns": len(Bs)},
        time_seconds=time.perf_counter() - t0)


def _status(converged: bool) -> str:
    return "converged" if converged else "not-converged"


def get_name(spec) -> str:
    return get_nonlinearity(spec.nonlinearity).name


def _one_layer(spec, sig, sbar, rho, t0):
    from solvers.large_p.solve import solve_large_p
    from solvers.large_p.problem import LargePProblem

    prob = LargePProblem(nonlinearity=spec.nonlinearity, sigma_w=sig[0], sigma_a_bar=sbar,
                         temperature=spec.temperature, class_fractions=tuple(rho))
    lp = solve_large_p(prob)
    o = lp.observables
    m = spec.m
    branches, fr = [], {}
    for a, p in lp.expanded_branches():
        means = prob.psi(np.asarray(a) @ lp.t.T)[1] if np.any(a) else prob.psi(np.zeros(m))[1]
        code = "".join("1" if (int(neuron_codes(np.atleast_2d(means))[0]) >> c) & 1 else "0" for c in range(m))
        branches.append({"a": np.asarray(a).tolist(), "class_means": np.asarray(means).tolist(),
                         "occupation": float(p), "code": code, "mirror": False})
        fr[code] = fr.get(code, 0.0) + float(p)
    return DeepLargePSolution(
        spec=spec, sigmas=sig, sigma_a_bar=sbar, method="one-layer large-P (solvers.large_p.solve)", t=lp.t,
        outputs=o.outputs, readout_moment=o.readout_moment, kernel_diagonals=[np.asarray(o.kernel_diagonal)],
        kernel_blocks=[np.asarray(o.kernel_blocks)], branches=[branches], code_fractions=[fr],
        free_energy=lp.free_energy, residual=lp.residual_norm, converged=lp.converged, status=_status(lp.converged),
        iterations=lp.nit, stable=lp.converged, occupations_unique=True, message=lp.message, extra={"kind": lp.kind},
        time_seconds=time.perf_counter() - t0)


def _linear(spec, sig, sbar, rho, t0):
    la = linear_asymptotics(rho, sbar, sig, spec.temperature, spec.P)
    blocks = [np.diag(b) for b in la["blocks"]]
    diags = [a + b for a, b in zip(la["alphas"], la["blocks"])]
    msg = (f"linear φ, L = {len(sig)}: leading-order rich root of the deep linear closed form at P = {spec.P} "
           f"(no finite P → ∞ limit; relative corrections ~{la['correction_order']:.2g})")
    return DeepLargePSolution(
        spec=spec, sigmas=sig, sigma_a_bar=sbar, method="linear-asymptotic", t=np.diag(la["tau"]),
        outputs=np.diag(la["f"]), readout_moment=np.diag(la["U"]), kernel_diagonals=diags, kernel_blocks=blocks,
        branches=[[] for _ in sig], code_fractions=[{} for _ in sig], free_energy=float("nan"), residual=0.0,
        converged=True, status="converged", error_estimate=0.0, stable=True, occupations_unique=True, message=msg,
        extra={"eps": la["eps"].tolist(), "correction_order": la["correction_order"]},
        time_seconds=time.perf_counter() - t0)


def deep_large_p_json(spec: ModelSpec, layers: int, sigmas=None, sigma_a_bar: float | None = None) -> dict:
    """JSON block for a ``solve --layers L --large-p`` style CLI flag (schema of
    :func:`solvers.deep.nonlinear.deep_nonlinear_json`)."""
    out = solve_deep_large_p(spec, layers, sigmas, sigma_a_bar).to_json()
    out["method"] = "deep large-P leading order (solvers.deep.large_p): " + out["method"]
    return out
