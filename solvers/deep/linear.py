"""Deep linear networks, L >= 1 hidden layers, mean-field readout (THEORY §5, any inputs).

Network (THEORY §1): h¹ = W¹x/√N0, h^ℓ = W^ℓ h^{ℓ-1}/√N (ℓ = 2..L), f = N^{-1} a h^L,
priors W^ℓ_ij ~ N(0, σ_ℓ²), a_ri ~ N(0, σ_a²), β = N/T. Hidden layers keep the standard
scaling; only the readout is mean-field. N → ∞ at fixed P.

Conventions
-----------
"Layer ℓ" is described by its activation kernel K_ℓ = (1/N) Σ_j φ(h^ℓ_j) φ(h^ℓ_j)ᵀ (P × P),
which for φ(h) = h equals the preactivation kernel; K_0 = X Xᵀ/N0; K̃_ℓ is the conjugate of
K_ℓ; s_ℓ = σ_1² ⋯ σ_ℓ², s = s_L.

Mean-field equations
--------------------
Per neuron the action of THEORY §5 is Σ_{ℓ<L} [−½ tr K̃_ℓ K_ℓ + log Z_ℓ] + Φ_L(t; K_{L-1})
− Σ_μ t_μ·y_μ + (T/2)||t||². For linear φ every layer is Gaussian:

* layer ℓ < L: p(h) ∝ N(h; 0, σ_ℓ² K_{ℓ-1}) e^{½ hᵀK̃_ℓ h}, log Z_ℓ = −½ log det(I − σ_ℓ² K_{ℓ-1} K̃_ℓ);
* layer L: integrating the readout a ~ N(0, σ_a² I) out of e^{Σ_μ t_μ·a h_μ} leaves the Gaussian
  tilt e^{½ hᵀ K̃_L h} with the *effective* conjugate K̃_L := σ_a² t tᵀ, and
  Φ_L = −½ log det(I − σ_a² σ_L² tᵀ K_{L-1} t).

Stationarity in K̃_ℓ gives K_ℓ = E[h hᵀ] (the tilted covariance); stationarity in K_{ℓ-1} gives
K̃_{ℓ-1} = 2 ∂ log Z_ℓ / ∂K_{ℓ-1} = σ_ℓ² K̃_ℓ (I − σ_ℓ² K_{ℓ-1} K̃_ℓ)⁻¹. With
K̃ (I − A K̃)⁻¹ = K̃ + K̃ (A⁻¹ − K̃)⁻¹ K̃ this is the general-L recursion

    K_ℓ     = ((σ_ℓ² K_{ℓ-1})⁻¹ − K̃_ℓ)⁻¹ = (I − σ_ℓ² K_{ℓ-1} K̃_ℓ)⁻¹ σ_ℓ² K_{ℓ-1},   ℓ = 1..L,
    K̃_{ℓ-1} = σ_ℓ² (K̃_ℓ + K̃_ℓ K_ℓ K̃_ℓ),                                       ℓ = 2..L,
    K̃_L     = σ_a² t tᵀ,
    U       = E[a aᵀ] = (σ_a⁻² I − σ_L² tᵀ K_{L-1} t)⁻¹,
    f       = E[a h^L] = σ_L² K_{L-1} t U = σ_a² K_L t = Y − T t.

For L = 2 this is THEORY §5 (K̃_1 = σ_2² t U tᵀ because σ_a² + σ_a⁴ tᵀK_2 t = U; K_2 by
Woodbury). For L = 1 it is the one-layer closed form of THEORY §2 (:mod:`theory.linear`).

Solution: one m × m matrix for every depth
------------------------------------------
Every conjugate is a rank-m form K̃_ℓ = t Q_ℓ tᵀ. With B_ℓ = σ_ℓ² tᵀ K_{ℓ-1} t the recursion
gives Q_{ℓ-1} = σ_ℓ² Q_ℓ (I − B_ℓ Q_ℓ)⁻¹ and B_{ℓ+1} = σ_{ℓ+1}² B_ℓ (I − Q_ℓ B_ℓ)⁻¹, from which
X_ℓ := B_ℓ Q_ℓ obeys X_{ℓ+1} = X_ℓ: **all layers share one symmetric m × m matrix**

    X = σ_a² σ_L² tᵀ K_{L-1} t,   0 ⪯ X ≺ I   (the domain of every layer's Gaussian),

and everything follows from X (s = s_L):

    U = σ_a² (I − X)⁻¹,   Q_ℓ = σ_a² (s/s_ℓ) (I − X)^{−(L−ℓ)},   K_ℓ t = s_ℓ K_0 t (I − X)^{−ℓ},
    K_ℓ = s_ℓ K_0 + σ_a² s s_ℓ K_0 t [Σ_{k=1}^{ℓ} (I − X)^{−(L+k−1)}] tᵀ K_0,
    f = σ_a² s K_0 t (I − X)^{−L}.

Each layer multiplies the readout directions by (I − X)⁻¹ (a matrix-valued kernel
renormalisation). The two remaining equations are

    (1)  σ_a² s K_0 t (I − X)^{−L} + T t = Y        (t given X: diagonal in the eigenbases of K_0, X),
    (2)  σ_a² s tᵀ K_0 t = X (I − X)^{L−1}.

For L = 1, (2) is X = σ_a² σ_1² tᵀK_0 t and the solution is unique (convex dual). For L >= 2
the action is not convex and (1)–(2) can have several roots: with orthogonal class data each
class c is a scalar problem, τ_c(x) = √(x(1−x)^{L−1}/(P_c σ_a² s)), and
h_c(x) = σ_a² s τ_c (1−x)^{−L} + T τ_c − 1 has one root for L = 1 or T = 0 but three (a "lazy"
root at small x, an unstable middle one and a "rich" root near x → 1) when σ_a √(s/P_c) is
small and T moderate: a first-order transition in depth >= 2 linear networks.

Which root: free energy and stability
-------------------------------------
Integrating the conjugates out (they are Legendre variables: large deviations of the empirical
kernels, and the one-layer dual for t) leaves log Z / N = max over K_1..K_{L-1} of
Ψ = F_L(K_{L-1}) − Σ_{ℓ<L} I_ℓ(K_ℓ | K_{ℓ-1}), with F_L the one-layer log-partition on kernel
σ_L² K_{L-1} (THEORY §2 dual) and I_ℓ(K | K') = ½[tr(A⁻¹K) − P − log det(A⁻¹K)], A = σ_ℓ² K',
the Wishart rate function. At a root, Ψ equals the action

    S = −((L−1)/2) tr[X (I − X)⁻¹] − (L/2) log det(I − X) − tr(tᵀY) + (T/2) ||t||²,

(log Z_ℓ = Φ_L = −½ log det(I − X) and tr K̃_ℓ K_ℓ = tr X(I − X)⁻¹ in every layer). The
solver returns the root with the largest S among the stable ones (local maxima of Ψ) and lists
all roots it found (:attr:`DeepLinearSolution.saddles`). For orthogonal class data Ψ reduces,
per class, to the class-mean eigenvalues λ_ℓ of K_ℓ (:func:`class_potential`); at a root
λ_ℓ = (1 − x)^{−ℓ}, and the tests check that S = Ψ there and that the roots with h_c'(x) > 0 are
exactly the local maxima of Ψ. For general inputs the stability flag uses the same criterion in
matrix form (all eigenvalues of the Jacobian of the residual (2) in X have negative real part,
which for one class is h' > 0); this is a heuristic there, not a proof.

Mean predictor: E[h^ℓ(x*) | h^ℓ(train)] only sees the training tilt, so
k_ℓ(x*)ᵀ = k_{ℓ-1}(x*)ᵀ K_{ℓ-1}⁺ K_ℓ and f(x*) = k_0(x*)ᵀ K_0⁺ f = σ_a² s k_0(x*)ᵀ t (I − X)^{−L}:
at T = 0 the lazy predictor k_0ᵀ K_0⁺ Y for every depth.

Singular K_0
------------
With K_0 = V diag(λ) Vᵀ, its numerical null space (λ <= P ε λ_max, as numpy.linalg.matrix_rank)
set to λ = 0 exactly and P_r, P_n the projectors on range and null space, (1) is diagonal in V:
t = t_r + t_n with t_n = P_n Y / T, which no kernel sees (K_ℓ t_n = 0, so (2), U, K_ℓ, f only
involve t_r), and f ∈ range(K_0). So f + T t = Y at every T > 0, the network fitting P_r Y and
T t_n the rest. At T = 0 the limit T → 0 is returned: t_n is dropped (T t_n → P_n Y), f = P_r Y
at L = 1, and the predictor is k_0(x*)ᵀ K_0⁺ Y (k_0(x*) ∈ range(K_0)). Products K_ℓ t are formed
from t_r (``range_t``), never from t, whose O(Y/T) null part would cancel only to round-off.
T = 0 with a singular K_0 is solved for L = 1; for L >= 2 it raises SpecError.

Class-structured orthogonal data (K_0 = I): :mod:`solvers.deep.linear_classes` (one scalar equation per
class; re-exported here).
"""
from __future__ import annotations

from dataclasses import dataclass, field
import math
import time

import numpy as np

from solvers.deep.common import (RESIDUAL_TOL, DeepLinearError, check_linear_spec, layer_sigmas, linear_verdict,
                                 with_result_keys)
from solvers.deep.linear_classes import (DeepLinearClassSolution, _class_roots, class_potential,  # noqa: F401
                                         solve_deep_linear_classes)
from solvers.results import Result
from theory.linear import class_summary
from theory.observables import Observables, layer_summaries
from theory.spec import ModelSpec, SpecError

__all__ = ["DeepLinearError", "DeepLinearSolution", "DeepLinearClassSolution", "layer_sigmas",
           "solve_deep_linear", "solve_deep_linear_classes", "deep_linear_residuals", "class_potential",
           "solve_deep_json", "RESIDUAL_TOL", "with_result_keys", "kernel_eigen"]


def _sym(A):
    return 0.5 * (A + A.T)


def _mpow(w, R, p):
    """R diag(w**p) Rᵀ."""
    return (R * w**p) @ R.T


# ----------------------------------------------------------------------------- general inputs
@dataclass(frozen=True, kw_only=True)
class DeepLinearSolution(Result):
    """Deep linear mean-field solution on arbitrary inputs (module docstring for the equations).

    ``kernels[ℓ-1]`` = K_ℓ (P × P activation = preactivation kernel of hidden layer ℓ);
    ``conjugates[ℓ-1]`` = K̃_ℓ for ℓ = 1..L, the last one the effective K̃_L = σ_a² t tᵀ.
    ``X``: the shared m × m matrix; ``free_energy``: the action S at this root (= log Z/N up to
    constants); ``saddles``: every root found, [{"free_energy", "stable", "X_eigenvalues",
    "selected"}]. ``residual``: the max relative residual of the P × P equations
    (:func:`deep_linear_residuals`); ``converged`` needs a stable root and ``residual`` <= RESIDUAL_TOL;
    ``iterations``: root searches started; ``error_estimate`` 0 (closed form).
    """

    spec: ModelSpec
    sigmas: tuple  # σ_1..σ_L
    X: np.ndarray
    t: np.ndarray  # (P, m)
    readout_moment: np.ndarray  # U (m, m)
    outputs: np.ndarray  # f (P, m)
    kernels: tuple
    conjugates: tuple
    free_energy: float
    stable: bool
    saddles: list = field(default_factory=list)
    range_t: np.ndarray | None = None  # t's component in the range of K_0 (module docstring, singular K_0)
    range_conjugates: tuple | None = None  # K̃_ℓ restricted to the range of K_0, t_r Q_ℓ t_rᵀ

    @property
    def layers(self) -> int:
        return len(self.sigmas)

    def observables(self) -> Observables:
        """Last-layer observables in the one-layer schema (f, U, kernel of layer L)."""
        return class_summary(self.spec.class_sizes, self.outputs, self.readout_moment, self.kernels[-1])

    def layer_observables(self, ell: int) -> Observables:
        return class_summary(self.spec.class_sizes, self.outputs, self.readout_moment, self.kernels[ell - 1])

    def layer_summaries(self) -> list:
        """[{"layer": ℓ, "kernel_diagonal", "kernel_blocks"}] for ℓ = 1..L (:func:`theory.observables.layer_summaries`)."""
        return layer_summaries(self, self.layers)

    def predict(self, test_inputs) -> np.ndarray:
        """Mean test predictor f(x*) = σ_a² s k_0(x*)ᵀ t (I − X)^{−L} = k_0(x*)ᵀ K_0⁻¹ f, (n_test, m)."""
        X = self.spec.inputs if self.spec.inputs is not None else np.sqrt(self.spec.P) * np.eye(self.spec.P)
        Xs = np.atleast_2d(np.asarray(test_inputs, dtype=np.float64))
        if Xs.shape[1] != X.shape[1]:
            raise SpecError(f"test_inputs must have {X.shape[1]} columns like the training inputs (got {Xs.shape[1]})")
        w, R = np.linalg.eigh(self.X)
        s = float(np.prod(np.square(self.sigmas)))
        t = self.t if self.range_t is None else self.range_t  # k_0(x*) is orthogonal to the null space of K_0
        weights = self.spec.sigma_a**2 * s * t @ _mpow(1.0 - w, R, -self.layers)
        return Xs @ X.T / X.shape[1] @ weights

    def to_json(self) -> dict:
        o = self.observables()
        return with_result_keys(self, {
            "layers": self.layer_summaries(), "sigmas": list(self.sigmas), "outputs": o.outputs.tolist(),
            "readout_moment": self.readout_moment.tolist(), "free_energy": self.free_energy,
            "stable": self.stable, "residual": self.residual, "saddles": self.saddles,
            "time_seconds": self.time_seconds})


def kernel_eigen(K0):
    """(λ, V, null) of K_0 = V diag(λ) Vᵀ with the numerical null space (λ <= P eps λ_max, the rank
    tolerance of numpy.linalg.matrix_rank) set to exactly λ = 0; ``null`` flags those eigenvectors."""
    lam, V = np.linalg.eigh(K0)
    null = lam <= len(lam) * np.finfo(np.float64).eps * max(lam.max(), np.finfo(np.float64).tiny)
    return np.where(null, 0.0, lam), V, null


class _General:
    """t(X) and the residual of (2) for explicit inputs."""

    def __init__(self, spec: ModelSpec, sig2):
        self.K0 = spec.input_kernel()
        self.Y = spec.targets()
        self.lam, self.V, self.null = kernel_eigen(self.K0)
        self.Yq = self.V.T @ self.Y
        self.T, self.sa2, self.L = spec.temperature, spec.sigma_a**2, len(sig2)
        self.s = float(np.prod(sig2))
        self.m = spec.m
        self.iu = np.triu_indices(self.m)

    def field(self, X):
        """t from (1): t̃_ij = (VᵀYR)_ij / (σ_a² s λ_i (1 − ξ_j)^{−L} + T), t = V t̃ Rᵀ."""
        w, R = np.linalg.eigh(_sym(X))
        den = self.sa2 * self.s * self.lam[:, None] * (1.0 - w[None, :]) ** (-self.L) + self.T
        if self.T == 0.0:
            den[self.null] = np.inf  # T -> 0 limit: T t -> Y along the null space, t itself is dropped there
        tq = (self.Yq @ R) / den
        return self.V @ tq @ R.T, tq, w, R

    def range_part(self, tq, R):
        """t's component in the range of K_0, V_r t̃_r Rᵀ (no cancellation against the O(Y/T) null part)."""
        return self.V[:, ~self.null] @ tq[~self.null] @ R.T

    def kernel_times(self, tq, R):
        """K_0 t = V Λ t̃ Rᵀ with the null eigenvalues exactly 0."""
        return self.V @ (self.lam[:, None] * tq) @ R.T

    def residual_matrix(self, X):
        """(I − X)^{−(L−1)/2} σ_a² s tᵀK_0t (I − X)^{−(L−1)/2} − X: equation (2), normalised so that
        X → I (where both sides of (2) vanish) is not a spurious root."""
        t, tq, w, R = self.field(X)
        d = (1.0 - w) ** (-0.5 * (self.L - 1))
        G = ((tq.T * self.lam) @ tq) * d[:, None] * d[None, :]  # in X's eigenbasis
        return _sym(self.sa2 * self.s * R @ G @ R.T - X)

    # unknowns: Z = −log(I − X) (symmetric), so that X = I − e^{−Z} ≺ I always
    def X_of(self, z):
        Z = np.zeros((self.m, self.m))
        Z[self.iu] = z
        Z = Z + np.triu(Z, 1).T
        w, R = np.linalg.eigh(Z)
        return _mpow(-np.expm1(-w), R, 1)

    def z_of(self, X):
        w, R = np.linalg.eigh(_sym(X))
        w = np.clip(w, -0.5, 1 - 1e-12)
        return _mpow(-np.log1p(-w), R, 1)[self.iu]

    def residual(self, z):
        if not np.all(np.isfinite(z)):
            return np.full(len(z), 1e10)
        with np.errstate(all="ignore"):
            try:
                r = self.residual_matrix(self.X_of(z))[self.iu]
            except np.linalg.LinAlgError:
                return np.full(len(z), 1e10)
        return np.where(np.isfinite(r), r, 1e10)

    def action(self, X, t):
        w = np.linalg.eigvalsh(_sym(X))
        return float(-0.5 * (self.L - 1) * np.sum(w / (1 - w)) - 0.5 * self.L * np.sum(np.log1p(-w))
                     - np.sum(t * self.Y) + 0.5 * self.T * np.sum(t * t))


def _jacobian(fun, x, eps=1e-7):
    f0 = fun(x)
    J = np.empty((len(f0), len(x)))
    for k in range(len(x)):
        dx = eps * max(1.0, abs(x[k]))
        e = np.zeros_like(x)
        e[k] = dx
        J[:, k] = (fun(x + e) - fun(x - e)) / (2 * dx)
    return J


def _general_roots(prob: _General):
    """All roots of (2) found from several starts, as a list of (X, z) (deduplicated), and the number of
    starts."""
    from scipy import optimize  # imported here: ~0.5 s, and the CLI's start-up does not need it
    m, T, sa2, s = prob.m, prob.T, prob.sa2, prob.s
    starts = []
    # lazy start: t from (1) at X = 0
    t0 = prob.field(np.zeros((m, m)))[0]
    starts.append(prob.z_of(np.clip(sa2 * s * t0.T @ prob.K0 @ t0, 0, 0.9)))
    # rich start: one-layer T = 0 relation at σ² = s: V A V + V = σ_a⁻² I, A = Yᵀ K_0⁺ Y / s, X = I − σ_a² V
    rng = ~prob.null  # the null space of K_0 is fitted by T t, not by the network
    lam = np.maximum(prob.lam[rng], T / s)
    A = _sym((prob.Yq[rng].T / lam) @ prob.Yq[rng] / s)
    a, W = np.linalg.eigh(A)
    a = np.maximum(a, 0.0)
    v = np.where(a > 1e-14, (-1 + np.sqrt(1 + 4 * a / sa2)) / (2 * np.where(a > 1e-14, a, 1.0)), 1.0 / sa2)
    starts.append(prob.z_of(np.eye(m) - sa2 * _mpow(v, W, 1)))
    for zeta in (0.05, 0.3, 1.0, 2.0, 4.0, 8.0, 16.0):
        starts.append((zeta * np.eye(m))[prob.iu])
    roots = []
    for z0 in starts:
        sol = optimize.root(prob.residual, z0, method="hybr", options={"xtol": 1e-13, "maxfev": 400 * len(z0)})
        if not np.all(np.isfinite(sol.x)):
            continue
        try:
            X = prob.X_of(sol.x)
            w = np.linalg.eigvalsh(X)
            r = prob.residual_matrix(X)
        except np.linalg.LinAlgError:
            continue
        if w.min() < -1e-10 or w.max() >= 1 or not np.all(np.isfinite(r)):
            continue
        if np.max(np.abs(r)) > 1e-10 * max(1.0, np.max(np.abs(X))):
            continue
        if all(np.max(np.abs(X - Y)) > 1e-7 for Y, _ in roots):
            roots.append((X, sol.x))
    return roots, len(starts)


def solve_deep_linear(spec: ModelSpec, layers: int = 2, sigmas=None) -> DeepLinearSolution:
    """Deep linear mean-field solution, L = ``layers`` hidden layers, on the inputs of ``spec``.

    ``sigmas``: per-layer prior standard deviations σ_1..σ_L (default: all ``spec.sigma_w``).
    Roots of the reduced equation (2) are searched from a lazy start, a rich start and a ladder of
    X = (1 − e^{−ζ}) I; the stable root with the largest action S is returned, all roots in
    ``saddles``. Singular K_0: module docstring (T = 0 then needs L = 1). Raises :class:`DeepLinearError` if no root inside
    the domain 0 ⪯ X ≺ I is found.
    """
    check_linear_spec(spec, "solve_deep_linear")
    sig = layer_sigmas(spec, layers, sigmas)
    start = time.perf_counter()
    sig2 = [s * s for s in sig]
    prob = _General(spec, sig2)
    if spec.temperature == 0.0 and prob.null.any() and len(sig) > 1:
        raise SpecError("temperature = 0 with layers >= 2 needs a non-singular input kernel K0 = X Xᵀ/N0 "
                        "(inputs are linearly dependent); use temperature > 0, or layers = 1")
    roots, n_starts = _general_roots(prob)
    if not roots:
        raise DeepLinearError(f"deep linear equations: no root inside the domain 0 <= X < I found "
                              f"(layers = {len(sig)}, T = {spec.temperature}); please report")
    saddles = []
    for X, z in roots:
        t = prob.field(X)[0]
        ev = np.linalg.eigvals(_jacobian(prob.residual, z))
        saddles.append({"free_energy": prob.action(X, t), "stable": bool(np.all(ev.real < 0)),
                        "X_eigenvalues": np.linalg.eigvalsh(X).tolist(), "selected": False})
    order = sorted(range(len(roots)), key=lambda i: (not saddles[i]["stable"], -saddles[i]["free_energy"]))
    best = order[0]
    saddles[best]["selected"] = True
    saddles = [saddles[i] for i in order]
    sol = _build_general(spec, sig, prob, roots[best][0], saddles[0]["free_energy"], saddles[0]["stable"], saddles)
    res = max(deep_linear_residuals(sol).values())
    verdict = linear_verdict(sol.stable, res)
    if prob.null.any():
        verdict["message"] += _null_space_note(prob)
    return DeepLinearSolution(**{**sol.__dict__, "residual": res, **verdict,
                                 "iterations": n_starts,
                                 "time_seconds": time.perf_counter() - start})


def _null_space_note(prob) -> str:
    yn = float(np.linalg.norm(prob.Yq[prob.null]))
    note = f"; K0 has rank {int(np.sum(~prob.null))} < P = {len(prob.lam)}"
    if prob.T == 0.0:
        return note + f": T = 0 limit, the targets' null-space part (norm {yn:.3g}) is T t, not fitted (f = P_r Y)"
    return note + f": the targets' null-space part (norm {yn:.3g}) is fitted by T t alone"


def _build_general(spec, sig, prob, X, S, stable, saddles):
    sig2 = [s * s for s in sig]
    sa2, s = spec.sigma_a**2, prob.s
    L = len(sig)
    t, tq, w, R = prob.field(X)
    K0 = prob.K0
    K0t = prob.kernel_times(tq, R)
    kernels, acc = [], np.zeros_like(X)
    for ell in range(1, L + 1):
        sl = float(np.prod(sig2[:ell]))
        acc = acc + _mpow(1.0 - w, R, -(L + ell - 1))
        kernels.append(_sym(sl * K0 + sa2 * s * sl * K0t @ acc @ K0t.T))
    tr = prob.range_part(tq, R)
    conj, conj_r = [], []
    for ell in range(1, L + 1):
        Q = sa2 * s / float(np.prod(sig2[:ell])) * _mpow(1.0 - w, R, -(L - ell))
        conj.append(_sym(t @ Q @ t.T))
        conj_r.append(_sym(tr @ Q @ tr.T))
    U = sa2 * _mpow(1.0 - w, R, -1)
    f = sa2 * s * K0t @ _mpow(1.0 - w, R, -L)
    return DeepLinearSolution(spec=spec, sigmas=sig, X=X, t=t, readout_moment=U, outputs=f, kernels=tuple(kernels),
                              conjugates=tuple(conj), free_energy=S, stable=stable, saddles=saddles,
                              range_t=tr, range_conjugates=tuple(conj_r),
                              converged=False, status="not-converged", residual=math.nan, error_estimate=0.0)


def deep_linear_residuals(sol: DeepLinearSolution, relative: bool = True) -> dict:
    """Max-abs residuals of the P × P recursion, written without inverting K_0:

    * ``kernel``: (I − σ_ℓ² K_{ℓ-1} K̃_ℓ) K_ℓ − σ_ℓ² K_{ℓ-1}, ℓ = 1..L;
    * ``conjugate``: K̃_{ℓ-1} − σ_ℓ² (K̃_ℓ + K̃_ℓ K_ℓ K̃_ℓ), ℓ = 2..L, and K̃_L − σ_a² t tᵀ;
    * ``readout``: U (σ_a⁻² I − σ_L² tᵀ K_{L-1} t) − I;
    * ``outputs``: f − σ_L² K_{L-1} t U and f − σ_a² K_L t;
    * ``field``: f + T t − Y (at T = 0: f − P_r Y, the T → 0 limit, P_r the projector on the range of K_0).

    Every K_ℓ annihilates the null space of K_0, so products K_ℓ t and K_ℓ K̃ K_ℓ' are evaluated with t's
    range component t_r and the range conjugates t_r Q_ℓ t_rᵀ (``sol.range_t``, ``sol.range_conjugates``):
    equal in exact arithmetic, and free of the cancellation against the O(Y/T) null part of t. The
    conjugate recursion is checked on the range conjugates (its exact projection), K̃_L = σ_a² t tᵀ on both.
    With ``relative`` each residual is divided by max(1, largest |entry| of the terms it compares).
    """
    spec = sol.spec
    K0 = spec.input_kernel()
    P, m = sol.t.shape
    sig2 = [s * s for s in sol.sigmas]
    Ks = [K0, *sol.kernels]
    t, U, f = sol.t, sol.readout_moment, sol.outputs
    tr = t if sol.range_t is None else sol.range_t
    conj = sol.conjugates if sol.range_conjugates is None else sol.range_conjugates

    def r(*terms):
        tot = sum(terms)
        scale = max(1.0, *(float(np.max(np.abs(x))) for x in terms)) if relative else 1.0
        return float(np.max(np.abs(tot))) / scale

    r_k = max(r(Ks[ell + 1], -sig2[ell] * Ks[ell] @ conj[ell] @ Ks[ell + 1], -sig2[ell] * Ks[ell])
              for ell in range(len(sig2)))
    r_c = max(r(sol.conjugates[-1], -spec.sigma_a**2 * t @ t.T), r(conj[-1], -spec.sigma_a**2 * tr @ tr.T))
    for ell in range(1, len(sig2)):
        Kt = conj[ell]
        r_c = max(r_c, r(conj[ell - 1], -sig2[ell] * Kt, -sig2[ell] * Kt @ Ks[ell + 1] @ Kt))
    r_u = r(U / spec.sigma_a**2, -sig2[-1] * U @ tr.T @ Ks[-2] @ tr, -np.eye(m))
    r_f = max(r(f, -sig2[-1] * Ks[-2] @ tr @ U), r(f, -spec.sigma_a**2 * Ks[-1] @ tr))
    if spec.temperature > 0.0:
        r_t = r(f, spec.temperature * t, -spec.targets())
    else:
        _, V, null = kernel_eigen(K0)
        Y = spec.targets()
        r_t = r(f, -Y, V[:, null] @ (V[:, null].T @ Y))
    return {"kernel": r_k, "conjugate": r_c, "readout": r_u, "outputs": r_f, "field": r_t}


def solve_deep_json(spec: ModelSpec, layers: int, sigmas=None) -> dict:
    """JSON block for ``codingschemes solve --layers L``: {"layers": [...], "outputs", ...}.

    Orthogonal data use the class-block solver, explicit inputs the general one. Linear φ only.
    """
    sol = (solve_deep_linear_classes if spec.inputs is None else solve_deep_linear)(spec, layers, sigmas)
    out = sol.to_json()
    out["method"] = "deep linear closed form (solvers.deep.linear)" + (
        ", class-block reduction" if spec.inputs is None else ", general inputs")
    return out
