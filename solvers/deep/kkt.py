"""The condensate of the last hidden layer of a deep ReLU network: the KKT terms of the class-block saddle point
(THEORY §4 condensate, §5 deep networks).

The last layer's y-integral converges only inside the readout domain q_j(t, K_{L-1}) < 1
(:mod:`theory.deep_condensate`: q = 2 max_ŷ Σ_c P_c g_c, maximisers ŷ*_j = (v̂_j, ŵ_j)). As for one hidden
layer (THEORY §4; :class:`solvers.finite_p.dual.Condensate`), the saddle point of the action of THEORY §5 is a
KKT point of the constraints q_j <= 1: with multipliers μ_j >= 0, μ_j (1 − q_j) = 0, the action's readout term
log Z_L gains μ_j (q_j − 1), so by Danskin's theorem (ŷ*_j isolated)

    f_c       += (μ_j / P_c) ∂q_j/∂t_c = 2 μ_j σ_a h*_{j,c} v̂_j            (readout stationarity),
    K̃_{L-1}   += 2 μ_j ∂q_j/∂K_{L-1}                                      (the layer below tilted by the outliers),

with h*_{j,c} = ξ*_c + s_c² u*_c the activation of class c per unit radius where on (0 off). The outliers are a
vanishing fraction ν of neurons at radius r → ∞ along ŷ*_j with ν r² = 2 μ_j, so they also add

    U += 2 μ_j σ_a² v̂_j v̂_jᵀ,    k_L += 2 μ_j h*_j h*_jᵀ   (class-shared: δ_L unchanged),

and their mass is λ_j = 2 μ_j σ_a² σ_L² (THEORY §4's λ at L = 1). In class-block coordinates
K = E k Eᵀ + D_δ, K̃ = E k̃ Eᵀ + D_δ̃ (:mod:`theory.deep_blocks`), ∂q/∂k = σ² (P ∂g/∂ξ)(P ∂g/∂ξ)ᵀ / q
(:func:`theory.deep_condensate.kernel_gradient`), and from tr K̃ K,

    k̃_cd += 2 μ_j (∂q/∂k)_cd / (P_c P_d),    δ̃_c += 2 μ_j (∂q/∂δ_c) / P_c − 2 μ_j (∂q/∂k)_cc / P_c²,

exact for δ and the off-diagonal k; for k_cc it is the outliers' own tilt σ² E[W_c²] (:mod:`theory.deep_blocks`),
which equals the derivative at q = 1 (the two differ by O(μ (1 − q)), the barrier's bias below).

The multipliers come from the log barrier −ε Σ_j log(1 − q_j) (μ_j = ε/(1 − q_j)), the central path of the
one-layer solver (:mod:`solvers.finite_p.dual`), over the maximisers with q_j >= :data:`Q_MIN`; or, with an onset
q_0 (:class:`Barrier` ``onset``), from the barrier ε Σ_j ψ(q_j) with

    ψ(q) = −log((1 − q)/(1 − q_0)) − (q − q_0)/(1 − q_0)  (q > q_0),  0 (q <= q_0),
    μ_j = ε ψ'(q_j) = ε [1/(1 − q_j) − 1/(1 − q_0)],

which is C¹ in q, so that a maximiser that appears below q_0 (a search finds a new local maximum of the domain)
enters the equations with zero multiplier: the residual stays continuous along a continuation. Both barriers
have the same limit ε → 0 (the KKT point). :class:`Barrier` adds these terms to the last layer's result
inside :meth:`solvers.deep.model.DeepModel.evaluate` (its ``condensate`` hook), so the deep Newton solve, its
needle proposals (:mod:`solvers.deep.condensate`) and its error estimates apply unchanged. The bulk keeps the
needle's near part (integrated with needle components in the proposal); at margin 1 − q = ε/μ the far tail of
the bulk, of relative weight ~2^{−P_off} (1 − q)^{−1/2}, is what the barrier replaces.

The outliers' tilt of K̃_{L-1} can push the first hidden layer (input K_0 = I) to its own domain boundary
q_1(K̃_1) = 1; there layer 1 condenses the same way: K_1 = 2 ∂ log Z_1/∂K̃_1 gains 2 μ_1 ∂q_1/∂K̃_1
(:func:`first_layer_terms`). :func:`solve_with_condensate` makes the barrier a second attempt of the deep solver.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from theory.deep_blocks import OneD
from theory.deep_condensate import (ReadoutDomain, condensate_directions, domain_gradients, kernel_gradient,
                                    track_directions)
from theory.deep_fields import tilt_factor
from theory.domain import marginal_directions
from theory.domain_errors import OutsideDomain
from theory.nonlinearities import get_nonlinearity

__all__ = ["CondensateTerms", "condensate_terms", "Barrier", "Q_MIN", "EPSILON", "barrier_weights",
           "solve_with_condensate", "first_layer_terms"]

#: the barrier weight of the deep solver's condensate (``DeepOptions.condensate_epsilon`` None): multipliers
#: μ ~ 10 (masses ~0.4 at σ_a² = 1/64) sit at margins ~1e-3, where the forward-difference Jacobian of the
#: residual stays accurate (at ε = 1e-3, margins ~6e-5, Newton stalls), and the barrier's bias on f is ~1e-4
#: (measured in the L = 1 limit against the one-layer solver at ε = 1e-8: docs/devlog.md)
EPSILON = 1e-2
#: local maximisers of q below this carry no barrier term (their multiplier ε/(1 − q) <= 2ε is noise)
Q_MIN = 0.5


@dataclass(frozen=True)
class CondensateTerms:
    """The KKT terms of the outliers along ``directions`` ŷ_j (module docstring): multipliers μ_j, their
    shares of f, U, k_L, k̃_{L-1}, δ̃_{L-1} (None at L = 1), and per direction readout v̂_j, activations h*_j
    per unit radius and code."""

    directions: np.ndarray
    q: np.ndarray
    multipliers: np.ndarray
    outputs: np.ndarray
    readout_moment: np.ndarray
    kernel: np.ndarray
    kt: np.ndarray | None
    dt: np.ndarray | None
    readout: np.ndarray
    h: np.ndarray
    codes: tuple
    per_direction: np.ndarray  # (k, m, m): each direction's share of f
    mass_scale: float  # 2 σ_a² σ_L²

    @property
    def margins(self) -> np.ndarray:
        return 1.0 - self.q

    @property
    def mass(self) -> np.ndarray:
        """λ_j = 2 μ_j σ_a² σ_L² (THEORY §4's condensate mass at L = 1)."""
        return self.mass_scale * self.multipliers

    def output_shares(self, outputs) -> np.ndarray:
        """(k, m): each direction's share of the correct-class outputs f_cc (``outputs`` the total f)."""
        return np.array([np.diag(fj) / np.diag(outputs) for fj in self.per_direction]).reshape(-1, len(outputs))

    def to_json(self, outputs=None) -> dict:
        out = {"directions": self.directions.tolist(), "readout_directions": self.readout.tolist(),
               "activations": self.h.tolist(), "multipliers": self.multipliers.tolist(),
               "mass": self.mass.tolist(), "margins": self.margins.tolist(),
               "codes": ["".join("1" if c in code else "0" for c in range(self.h.shape[1])) for code in self.codes]}
        if outputs is not None:
            out["output_shares"] = self.output_shares(outputs).tolist()
        return out


def condensate_terms(dom: ReadoutDomain, mu, t, sigma_a, R, delta, sigma, sizes, hidden: bool) -> CondensateTerms:
    """The KKT terms (module docstring) of the maximisers of ``dom`` with multipliers ``mu`` for the readout layer
    with field ``t``, input kernel k = R Rᵀ and δ (``hidden``: L >= 2, else K_0 = I and no k̃ term)."""
    P = np.asarray(sizes, dtype=np.float64)
    m = len(P)
    mu = np.asarray(mu, dtype=np.float64)
    f, U, K = np.zeros((m, m)), np.zeros((m, m)), np.zeros((m, m))
    kt, dt = (np.zeros((m, m)), np.zeros(m)) if hidden else (None, None)
    parts = []
    for y, v, h, mu_j in zip(dom.directions, dom.readout, dom.h, mu):
        dq_dt = domain_gradients(y, t, sigma_a, R, delta, sigma, P)[0]
        parts.append(mu_j * dq_dt / P[:, None])
        f += parts[-1]
        U += 2.0 * mu_j * sigma_a**2 * np.outer(v, v)
        K += 2.0 * mu_j * np.outer(h, h)
        if hidden:
            S, gd = kernel_gradient(y, t, sigma_a, R, delta, sigma, P)
            kt += 2.0 * mu_j * S / np.outer(P, P)
            dt += 2.0 * mu_j * (gd / P - np.diag(S) / P**2)
    return CondensateTerms(dom.directions, dom.q, mu, f, U, K, kt, dt, dom.readout, dom.h, dom.codes,
                           np.array(parts).reshape(-1, m, m), 2.0 * sigma_a**2 * sigma**2)


def _readout_layer(model, ker):
    """(R, δ, hidden) of the last layer's input kernel: K_{L-1}, or K_0 = I (ξ = 0, s = σ_L) at L = 1."""
    if ker:
        R, delta = ker[-1]
        return R, delta, True
    return np.zeros((model.m, model.m)), np.ones(model.m), False


def barrier_weights(q, epsilon: float, onset: float | None = None, q_min: float = Q_MIN):
    """(keep, μ, barrier value) of the maximisers with ``q``: the log barrier over q >= ``q_min``
    (``onset`` None; μ = ε/(1 − q), value −ε Σ log(1 − q)), or the C¹ barrier ε Σ ψ(q) with onset q_0 (module
    docstring; μ = ε [1/(1 − q) − 1/(1 − q_0)] over q > q_0)."""
    q = np.asarray(q, dtype=np.float64)
    if onset is None:
        keep = q >= q_min
        qk = q[keep]
        return keep, epsilon / (1.0 - qk), -epsilon * float(np.sum(np.log(1.0 - qk)))
    keep = q > onset
    qk, a = q[keep], 1.0 - onset
    value = epsilon * float(np.sum(-np.log((1.0 - qk) / a) - (qk - onset) / a))
    return keep, epsilon * (1.0 / (1.0 - qk) - 1.0 / a), value


class Barrier:
    """The log barrier −ε Σ_j log(1 − q_j) over the maximisers with q_j >= :data:`Q_MIN` (μ_j = ε/(1 − q_j)), or
    with an ``onset`` the C¹ barrier of :func:`barrier_weights`, as
    the ``condensate`` hook of :class:`solvers.deep.model.DeepModel`: called with the last layer's
    :class:`theory.deep_layer.LayerResult`, it returns that result with the KKT terms added (f, U, k_L, k̃, δ̃
    and log Z += −ε Σ log(1 − q_j)). The maximisers are found by the full search at :meth:`refresh` and tracked
    (polished) from there at each evaluation, so that the residual is a smooth function of the unknowns."""

    def __init__(self, epsilon: float, onset: float | None = None):
        self.epsilon = float(epsilon)
        self.onset = onset  # None: the log barrier over q >= Q_MIN; else the C¹ barrier (barrier_weights)
        self.known = None  # directions (k, 2m) of the last full search

    def refresh(self, model, x) -> ReadoutDomain:
        """Full search of the maximisers at the packed point ``x`` (:func:`condensate_directions`)."""
        t, ker = model.unpack(np.asarray(x, dtype=np.float64))
        R, delta, _ = _readout_layer(model, ker)
        dom = condensate_directions(t, model.spec.sigma_a, R, delta, model.sigmas[-1], model.sizes)
        self.known = dom.directions
        return dom

    def domain(self, model, t, ker) -> ReadoutDomain:
        R, delta, _ = _readout_layer(model, ker)
        args = (t, model.spec.sigma_a, R, delta, model.sigmas[-1], model.sizes)
        if self.known is None or not len(self.known):
            dom = condensate_directions(*args)
            self.known = dom.directions
            return dom
        return track_directions(self.known, *args)

    def terms(self, model, t, ker) -> CondensateTerms | None:
        """The KKT terms at (t, kernels), None if no maximiser has q >= :data:`Q_MIN`; :class:`OutsideDomain`
        if one has q >= 1."""
        dom = self.domain(model, t, ker)
        if len(dom.q) and dom.q[0] >= 1.0:
            raise OutsideDomain(f"readout domain: q = {dom.q[0]:.6g} >= 1")
        keep, mu, _ = barrier_weights(dom.q, self.epsilon, self.onset)
        if not keep.any() or self.epsilon <= 0.0:
            return None
        dom = ReadoutDomain(dom.directions[keep], dom.q[keep], dom.readout[keep], dom.xi[keep], dom.h[keep],
                            tuple(c for c, k in zip(dom.codes, keep) if k))
        R, delta, hidden = _readout_layer(model, ker)
        return condensate_terms(dom, mu, t, model.spec.sigma_a, R, delta, model.sigmas[-1], model.sizes, hidden)

    def __call__(self, model, ell, t, ker, r, kw):
        """The layer result ``r`` of layer ``ell`` with its condensate terms: the last layer's (:meth:`terms`) or,
        for L >= 2, the first layer's under its tilt ``kw["kt"]``, ``kw["dt"]`` (:func:`first_layer_terms`)."""
        if ell != model.L:
            if ell != 1 or self.epsilon <= 0.0:
                return r
            return first_layer_terms(r, kw["kt"], kw["dt"], model.sigmas[0], model.sizes, self.epsilon, self.onset)
        c = self.terms(model, t, ker)
        if c is None:
            return r
        value = barrier_weights(c.q, self.epsilon, self.onset)[2]
        kw = dict(log_z=r.log_z + value, outputs=r.outputs + c.outputs,
                  readout_moment=r.readout_moment + c.readout_moment, k=r.k + c.kernel)
        if c.kt is not None:
            kw.update(kt_in=r.kt_in + c.kt, dt_in=r.dt_in + c.dt)
        return replace(r, **kw)


def solve_with_condensate(solve, spec, opt):
    """The deep solve ``solve(options, start)`` (a :class:`solvers.deep.nonlinear_result.DeepNonlinearSolution`;
    start None: the caller's) with the condensate barrier as a second attempt: for ReLU with
    ``opt.condensate_epsilon`` None, the equations without it first (their results unchanged where they
    converge), then with ε = :data:`EPSILON` if they give no solution within ``error_tol``, started from the first
    solution where there is one; the solution with the smaller error estimate is returned, with both logs."""
    if opt.condensate_epsilon is not None or OneD.for_nonlinearity(spec.nonlinearity, opt.nz).kind != "relu":
        return solve(opt, None)
    first = solve(replace(opt, condensate_epsilon=0.0), None)
    if first.converged:
        return first
    second = solve(replace(opt, condensate_epsilon=EPSILON), first if first.found else None)
    if first.found and not second.found:  # the barrier's branch may not connect to that start: the searches
        second = solve(replace(opt, condensate_epsilon=EPSILON), None)
    better = second.found and (not first.found or second.error_estimate < first.error_estimate)
    best = second if better else first
    note = (f"without the condensate barrier: {first.message}; with it (ε = {EPSILON:g}): {second.message}; "
            f"kept: {'with' if better else 'without'}")
    return replace(best, message=f"{best.message} [{note}]", iterations=first.iterations + second.iterations,
                   time_seconds=first.time_seconds + second.time_seconds,
                   log=list(first.log) + [f"-- with the condensate barrier, ε = {EPSILON:g} --"] + list(second.log))


def _tilt(kt, dt, sigma, m):
    """(B = chol k̃_1, A_c = 1 − δ̃_c σ²) of the first hidden layer's tilt (k̃_1, δ̃_1)."""
    B, dtilt = tilt_factor(m, kt=kt, dt=dt)
    return B, 1.0 - dtilt * sigma**2


def tilted_first_layer(kt, dt, sigma, sizes):
    """(B, A, directions (k, m), q (k,)) of the first hidden layer's domain (input K_0 = I) under the tilt
    (k̃_1, δ̃_1) (:func:`_tilt`): the maximisers v of Σ_c P_c σ² (B_c·v)₊²/(2 A_c), the one-layer form of
    :func:`theory.domain.marginal_directions` with t_c = B_c/√A_c (σ_a = 1); no directions where some A_c <= 0."""
    P = np.asarray(sizes, dtype=np.float64)
    B, A = _tilt(kt, dt, sigma, len(P))
    if np.any(A <= 0.0):
        return B, A, np.zeros((0, len(P))), np.zeros(0)
    dirs, q = marginal_directions(B / np.sqrt(A)[:, None], P, 1.0, sigma, get_nonlinearity("relu"))
    return B, A, dirs, q


def first_layer_terms(r, kt, dt, sigma, sizes, epsilon, onset=None):
    """Layer 1's result ``r`` (input K_0 = I) with the barrier −ε Σ_j log(1 − q_j) of its own readout-like domain
    under the tilt (k̃_1, δ̃_1) that the last layer's outliers strengthen: with u = B v (B = chol k̃_1) and
    A_c = 1 − δ̃_c σ², q = max_v Σ_c P_c σ² (u_c)₊²/A_c (:func:`tilted_first_layer`), and at its maximiser, with
    D u = (P_c σ² u_c/A_c on the classes with u_c > 0),

        ∂q/∂k̃ = (Du)(Du)ᵀ/q,    ∂q/∂δ̃_c = P_c σ⁴ u_c²/A_c²,

    so K_1 = 2 ∂ log Z_1/∂K̃_1 gains, as k̃ in :func:`condensate_terms`, k_cd += 2μ (∂q/∂k̃)_cd/(P_c P_d) and
    δ_c += 2μ (∂q/∂δ̃_c)/P_c − 2μ (∂q/∂k̃)_cc/P_c²: outlier neurons of layer 1 with class-shared activations."""
    B, A, dirs, q = tilted_first_layer(kt, dt, sigma, sizes)
    if len(q) and q[0] >= 1.0:
        raise OutsideDomain(f"first layer's domain: q = {q[0]:.6g} >= 1")
    keep, mu, barrier = barrier_weights(q, epsilon, onset)
    if not keep.any():
        return r
    dk, dd = _first_layer_sums(B, A, sigma, sizes, dirs[keep], q[keep], mu)
    return replace(r, k=r.k + dk, delta=r.delta + dd, log_z=r.log_z + barrier)


def first_layer_condensate(kt, dt, sigma, sizes, epsilon, dirs, q, onset=None):
    """(Δk_1, Δδ_1, barrier value) of :func:`first_layer_terms` for the maximisers ``dirs`` (rows v) with ``q``
    (all of them: no cut at :data:`Q_MIN`; the onset of :func:`barrier_weights` applies)."""
    q = np.asarray(q, dtype=np.float64)
    keep, mu, barrier = barrier_weights(q, epsilon, onset, q_min=-np.inf)
    return (*_first_layer_sums(*_tilt(kt, dt, sigma, len(sizes)), sigma, sizes, np.asarray(dirs)[keep], q[keep], mu),
            barrier)


def _first_layer_sums(B, A, sigma, sizes, dirs, q, multipliers):
    """(Δk_1, Δδ_1) of :func:`first_layer_condensate`: the sums over the maximisers with ``multipliers``, given
    the tilt's (B, A)."""
    P = np.asarray(sizes, dtype=np.float64)
    dk, dd = np.zeros((len(P), len(P))), np.zeros(len(P))
    for v, qj, mu in zip(dirs, q, multipliers):
        u = B @ v
        Du = np.where(u > 0.0, P * sigma**2 * u / A, 0.0)
        S = np.outer(Du, Du) / qj
        g = np.where(u > 0.0, P * sigma**4 * u * u / A**2, 0.0)
        dk += 2.0 * mu * S / np.outer(P, P)
        dd += 2.0 * mu * (g / P - np.diag(S) / P**2)
    return dk, dd
