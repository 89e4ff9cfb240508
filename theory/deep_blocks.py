"""Deep nonlinear networks on orthogonal class-structured data: the class-block reduced action
(THEORY §3, §5), its one-dimensional and Hubbard–Stratonovich integrals, and its observables.

Setting
-------
K_0 = I (P × P), classes c = 1..m of sizes P_c, L hidden layers with priors σ_1..σ_L, readout
σ_a, temperature T, φ one of linear, relu (closed-form 1-D integrals) or a smooth φ
(normcdf, erf, tanh, or a kink-free expression; 1-D Gauss–Hermite).

Per hidden layer ℓ the activation kernel K_ℓ = (1/N) Σ_i φ(h_i^ℓ) φ(h_i^ℓ)ᵀ and its conjugate
K̃_ℓ are class-block matrices (exact at the symmetric saddle point)

    K = E k Eᵀ + D_δ,   K̃ = E k̃ Eᵀ + D_δ̃,       E = class indicator (P × m),

k, k̃ symmetric m × m, D_δ = diag(δ_c(μ)); δ_c >= 0 is the within-class diagonal excess, so
K_μν = k_cd (μ ∈ c, ν ∈ d, μ ≠ ν) and K_μμ = k_cc + δ_c: ``kernel_blocks`` = k and
``kernel_diagonal`` = diag(k) + δ in the schema of :mod:`theory.observables`. With Π = diag(P_c)

    tr K̃ K = Σ_cd P_c P_d k̃_cd k_cd + Σ_c P_c (k̃_cc δ_c + δ̃_c k_cc + δ̃_c δ_c).

Action per neuron (THEORY §5)
-----------------------------
    S = Σ_{ℓ<L} [−½ tr K̃_ℓ K_ℓ + log Z_ℓ] + log Z_L − Σ_c P_c t_cc + (T/2) Σ_c P_c ||t_c||²,

    Z_ℓ = E_{h ~ N(0, σ_ℓ² K_{ℓ-1})} exp(½ φ(h)ᵀ K̃_ℓ φ(h))                       (ℓ < L),
    Z_L = E_{a ~ N(0, σ_a² I)} E_h exp(Σ_μ (t_{c(μ)}·a) φ(h_μ)) = (same form, k̃ = σ_a² t tᵀ, δ̃ = 0):

integrating the readout out, a | h ~ N(σ_a² Σ_μ t_μ φ_μ, σ_a²), leaves the block tilt
½ σ_a² Sᵀ t tᵀ S with S_c = Σ_{μ ∈ c} φ(h_μ).

Reduction of one layer (input kernel (k, δ), prior σ, tilt (k̃, δ̃)):

* Hubbard–Stratonovich: e^{½ Sᵀ k̃ S} = E_{u ~ N(0, k̃)} e^{u·S} (k̃ ⪰ 0: it is a Gram matrix, below);
  u = B v with v ~ N(0, I_m), B = chol(k̃) for a hidden tilt and B = σ_a t (u_c = t_c·a,
  a = σ_a v) for the readout;
* the block-covariance Gaussian h ~ N(0, σ² K) splits into a class-shared ξ = σ R w
  (w ~ N(0, I_m), k = R Rᵀ) and independent within-class noise h_μ = ξ_c + s_c z_μ,
  s_c = σ √δ_c, z_μ ~ N(0, 1); for ℓ = 1 (K_0 = I): ξ = 0, s = σ_1;
* given (v, w) the inputs factorise, so with the 1-D cumulant

      ζ_c(ξ_c, u_c) = log E_{z ~ N(0,1)} exp(u_c φ(ξ_c + s_c z) + ½ δ̃_c φ(ξ_c + s_c z)²)

  the layer costs one integral over y = (v, w) ∈ R^m (ℓ = 1) or R^{2m} (ℓ >= 2):

      log Z = log E_{y ~ N(0, I)} exp(Σ_c P_c ζ_c).

The tilted measure of the layer is the y-measure ∝ N(y; 0, I) e^{Σ_c P_c ζ_c} times, for each
μ ∈ c, the 1-D tilted law p(z | y) ∝ N(z) e^{u_c φ + ½ δ̃_c φ²}. Writing E_1 for 1-D tilted means
and E for the y-average:

* kernel of this layer (the K̃-stationarity, K_ℓ = E[φ φᵀ]):
      k_cd = E[E_1[φ]_c E_1[φ]_d],   δ_c = E[E_1[φ²]_c] − E[E_1[φ]_c²];
* readout layer: f_cr = E[a_r E_1[φ]_c], U = E[a aᵀ];
* conjugate of the input kernel (K-stationarity, K̃_{ℓ-1} = 2 ∂ log Z_ℓ / ∂K_{ℓ-1}): the Gaussian
  identity ∂/∂K_μν E_{N(0,σ²K)}[F] = (σ²/2) E[∂_μ ∂_ν F] (entries taken as independent) with
  F = E_u Π_μ e^{l_μ(h_μ)}, l = u_c φ + ½ δ̃_c φ², gives K̃_μν = σ² E[l'_μ l'_ν] (μ ≠ ν) and
  K̃_μμ = σ² E[l''_μ + l'_μ²]. Stein's identity in z removes φ' and φ'' (so ReLU's kink costs
  nothing): E_1[l'] = E_1[z] / s and E_1[l'' + l'²] = (E_1[z²] − 1) / s². Hence

      k̃_cd = σ² E[W_c W_d],  W_c = E_1[z]_c / s_c        (a Gram matrix: k̃ ⪰ 0, HS applies),
      δ̃_c = σ² E[Var_1(z)_c − 1] / s_c² = E[Var_1(z)_c − 1] / δ_c.

  Linear check: the readout layer has Var_1(z) = 1, so δ̃ = 0, and W_c = u_c, so
  k̃ = σ_L² t U tᵀ: THEORY §5's K̃_{L-1}.

1-D integrals: linear φ is Gaussian in z: with A = 1 − δ̃ s², b = s (u + δ̃ ξ),
c0 = u ξ + ½ δ̃ ξ², ζ = c0 + b²/(2A) − ½ log A and z | y ~ N(b/A, 1/A) (domain A > 0). ReLU splits
at z0 = −ξ/s into the untilted lower tail (mass Φ_N(z0)) and the same Gaussian on z > z0
(truncated-normal moments with log_ndtr, no cancellation). Smooth φ: probabilists' Gauss–Hermite
with ``nz`` nodes (compiled; :func:`one_d_error` compares two orders).

Outer integrals over y: a :class:`Rule` of standard-normal nodes (tensor Gauss–Hermite or
scrambled Sobol replicates), mapped through a Gaussian proposal y = μ + C x (:class:`Proposal`,
moment-matched to the tilted y-measure by the solver), with importance log-weights
log N(y; 0, I) − log N(x; 0, I) + log|det C| + Σ_c P_c ζ_c. For linear φ the y-integrand is
exactly Gaussian; once the proposal matches it, Gauss–Hermite is exact (machine precision).

References: A. van Meegen and H. Sompolinsky, Nat. Commun. 16, 3354 (2025), arXiv:2406.16689;
../shared/THEORY.md §5 (derivation route; the formulas above are derived here and checked
against the deep linear closed form, the one-layer solver and sampled deep networks in
tests/test_deep_nonlinear.py).
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numba
import numpy as np
from scipy.special import log_ndtr, logsumexp, ndtri
from scipy.stats import qmc

from theory.nonlinearities import get_nonlinearity
from theory.spec import SpecError

__all__ = ["OutsideDomain", "OneD", "Rule", "Proposal", "gauss_hermite_rule", "sobol_rule", "smolyak_rule", "tilted_moments",
           "LayerResult", "layer_integral", "block_trace", "tril_pack", "tril_unpack", "untilted_kernels",
           "growth_rate", "log_integrand", "find_modes"]

_SQRT2 = math.sqrt(2.0)
_SQRT_PI_2 = math.sqrt(math.pi) / 2.0
_LOG_2PI = math.log(2.0 * math.pi)


class OutsideDomain(ArithmeticError):
    """A 1-D or y-integral diverges (linear/ReLU with 1 − δ̃ s² <= 0) or is not finite."""


# ----------------------------------------------------------------------------- 1-D integrals
@dataclass(frozen=True)
class OneD:
    """How the 1-D tilted integrals of φ are done: ``kind`` "linear" | "relu" (closed forms) or
    "smooth" (Gauss–Hermite with ``nz`` nodes; ``code`` 1 normcdf, 2 erf, 3 tanh compiled inline,
    0 any other kink-free φ evaluated through its compiled kernel)."""

    kind: str
    name: str
    nz: int = 40
    code: int = 0

    @staticmethod
    def for_nonlinearity(name: str, nz: int = 40) -> "OneD":
        nl = get_nonlinearity(name)
        if nl.name == "linear" or (nl.expr.is_polynomial() and str(nl.expr) == "h"):
            return OneD("linear", nl.name)
        if nl.name == "relu" or str(nl.expr) == "Max(0, h)":
            return OneD("relu", nl.name)
        if nl.kinks:
            raise SpecError(f"the deep nonlinear solver handles linear, relu and kink-free φ; {name!r} has kinks "
                            f"at {list(nl.kinks)}")
        if nl.linear_growth:
            raise SpecError(f"the deep nonlinear solver handles linear, relu and bounded smooth φ; {name!r} grows "
                            "linearly (its 1-D tilted integrals need a domain check that is not implemented)")
        code = {"normcdf": 1, "erf": 2, "tanh": 3}.get(nl.name, 0)
        return OneD("smooth", nl.name, nz=nz, code=code)

    def with_nz(self, nz: int) -> "OneD":
        return OneD(self.kind, self.name, nz, self.code)


@numba.njit(cache=True, inline="always")
def _phi_builtin(code, h):
    if code == 1:
        return 0.5 * (1.0 + math.erf(h / 1.4142135623730951))
    if code == 2:
        return math.erf(0.8862269254527580 * h)  # √π/2
    return math.tanh(h)


@numba.njit(cache=True)
def _smooth_moments(code, phi_pre, xi, u, s, d, z, logw, out):
    """out[i, c] = (ζ, E_1 φ, E_1 φ², E_1 z, E_1 z²) by Gauss–Hermite: nodes z_k, log weights logw_k
    (Σ e^{logw} = 1); φ(ξ + s z_k) from ``phi_pre[i, c, k]`` (code 0) or inline (codes 1–3)."""
    n, m = u.shape
    nz = z.shape[0]
    e = np.empty(nz)
    ph = np.empty(nz)
    for i in range(n):
        for c in range(m):
            mx = -np.inf
            uc = u[i, c]
            dc = 0.5 * d[c]
            for k in range(nz):
                if code == 0:
                    p = phi_pre[i, c, k]
                else:
                    p = _phi_builtin(code, xi[i, c] + s[c] * z[k])
                ph[k] = p
                v = logw[k] + uc * p + dc * p * p
                e[k] = v
                if v > mx:
                    mx = v
            s0 = 0.0
            s1 = 0.0
            s2 = 0.0
            sz = 0.0
            sz2 = 0.0
            for k in range(nz):
                w = math.exp(e[k] - mx)
                s0 += w
                s1 += w * ph[k]
                s2 += w * ph[k] * ph[k]
                sz += w * z[k]
                sz2 += w * z[k] * z[k]
            out[i, c, 0] = mx + math.log(s0)
            out[i, c, 1] = s1 / s0
            out[i, c, 2] = s2 / s0
            out[i, c, 3] = sz / s0
            out[i, c, 4] = sz2 / s0


def _gh_1d(nz):
    z, w = np.polynomial.hermite_e.hermegauss(nz)
    return z, np.log(w / math.sqrt(2.0 * math.pi))


def tilted_moments(oned: OneD, xi, u, s, d):
    """(ζ, E_1 φ, E_1 φ², E_1 z, E_1 z²), each (n, m), of the 1-D tilted laws
    p(z) ∝ N(z; 0, 1) exp(u φ(ξ + s z) + ½ d φ(ξ + s z)²) (module docstring).

    ``xi``, ``u``: (n, m); ``s`` (> 0), ``d``: (m,). Raises :class:`OutsideDomain` when a linear/ReLU
    integral diverges (1 − d s² <= 0).
    """
    xi = np.asarray(xi, dtype=np.float64)
    u = np.asarray(u, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    d = np.asarray(d, dtype=np.float64)
    if oned.kind == "smooth":
        z, logw = _gh_1d(oned.nz)
        out = np.empty(u.shape + (5,))
        if oned.code == 0:
            h = xi[..., None] + s[None, :, None] * z[None, None, :]
            phi_pre = np.ascontiguousarray(get_nonlinearity(oned.name)(h))
        else:
            phi_pre = np.empty((1, 1, 1))
        _smooth_moments(oned.code, phi_pre, np.ascontiguousarray(xi), np.ascontiguousarray(u), s, d, z, logw, out)
        return out[..., 0], out[..., 1], out[..., 2], out[..., 3], out[..., 4]
    A = 1.0 - d * s * s
    if np.any(A <= 0.0):
        raise OutsideDomain(f"1-D integral diverges: 1 − δ̃ s² = {A.min():.3g} <= 0")
    b = s * (u + d * xi)
    c0 = u * xi + 0.5 * d * xi * xi
    mu = b / A
    if oned.kind == "linear":
        zeta = c0 + 0.5 * b * mu - 0.5 * np.log(A)
        ez = mu
        ez2 = 1.0 / A + mu * mu
        m1 = xi + s * ez
        m2 = xi * xi + 2.0 * xi * s * ez + s * s * ez2
        return zeta, m1, m2, ez, ez2
    # relu: lower part z < z0 (φ = 0, untilted), upper part z > z0 (Gaussian N(b/A, 1/A) times mass)
    z0 = -xi / s
    log_m0 = log_ndtr(z0)
    sqA = np.sqrt(A)
    alpha = (z0 - mu) * sqA
    log_m1 = c0 + 0.5 * b * mu - 0.5 * np.log(A) + log_ndtr(-alpha)
    zeta = np.logaddexp(log_m0, log_m1)
    p0 = np.exp(log_m0 - zeta)
    p1 = np.exp(log_m1 - zeta)
    logpdf = lambda x: -0.5 * x * x - 0.5 * _LOG_2PI  # noqa: E731
    lam0 = np.exp(logpdf(z0) - log_m0)  # E[z | z < z0] = −lam0
    e0 = -lam0
    e0sq = 1.0 + z0 * e0
    lam1 = np.exp(logpdf(alpha) - log_ndtr(-alpha))  # inverse Mills ratio of the upper part
    e1 = mu + lam1 / sqA
    var1 = np.maximum((1.0 + alpha * lam1 - lam1 * lam1) / A, 0.0)
    e1sq = var1 + e1 * e1
    ez = p0 * e0 + p1 * e1
    ez2 = p0 * e0sq + p1 * e1sq
    m1 = p1 * (xi + s * e1)
    m2 = p1 * (xi * xi + 2.0 * xi * s * e1 + s * s * e1sq)
    return zeta, m1, m2, ez, ez2


def _growth_classes(kind, u, xi, s, d):
    """g_c = lim_{r→∞} ζ_c(r u, r ξ) / r² = max_z' [−z'²/2 + u φ(ξ + s z') + ½ d φ(ξ + s z')²] for φ = h
    (linear) or (h)₊ (relu); arrays (n, m)."""
    A = 1.0 - d * s * s
    zs = s * (u + d * xi) / A
    hs = xi + s * zs
    inner = -0.5 * zs * zs + u * hs + 0.5 * d * hs * hs
    if kind == "linear":
        return inner
    vb = -0.5 * (xi / s) ** 2  # on the kink h = 0
    return np.maximum(np.where(hs > 0, inner, -np.inf), np.where(xi <= 0, 0.0, vb))


def growth_rate(kind, sizes, B, s, d, C=None, n_random=256, seed=0):
    """max over unit y of Σ_c P_c g_c(u_c(y), ξ_c(y)) with u = B v, ξ = C w, y = (v, w): the y-integrand
    behaves like exp(r² (growth − ½)) along r y, so the layer's integral converges iff growth < ½.

    Linear φ: g is the quadratic form ½ (u, ξ) H_c (u, ξ)ᵀ, H_c = [[s²/A, 1 + d s²/A], [·, d + d² s²/A]],
    A = 1 − d s², and the growth is the top eigenvalue of ½ Σ_c P_c M_cᵀ H_c M_c (exact). ReLU:
    random unit directions refined by a vectorised random-perturbation hill climb (a lower bound
    of the maximum that is tight in practice; the linear bound is the quadratic form's maximum)."""
    P = np.asarray(sizes, dtype=np.float64)
    m = len(P)
    dim = m if C is None else 2 * m
    s = np.asarray(s, dtype=np.float64)
    d = np.asarray(d, dtype=np.float64)
    if kind == "linear":
        A = 1.0 - d * s * s
        G = np.zeros((dim, dim))
        for c in range(m):
            M = np.zeros((2, dim))
            M[0, :m] = B[c]
            if C is not None:
                M[1, m:] = C[c]
            off = 1.0 + d[c] * s[c] ** 2 / A[c]
            H = np.array([[s[c] ** 2 / A[c], off], [off, d[c] + d[c] ** 2 * s[c] ** 2 / A[c]]])
            G += 0.5 * P[c] * M.T @ H @ M
        return float(np.linalg.eigvalsh(0.5 * (G + G.T))[-1])

    def g(Y):
        Y = Y / np.linalg.norm(Y, axis=1, keepdims=True)
        u = Y[:, :m] @ B.T
        xi = np.zeros_like(u) if C is None else Y[:, m:] @ C.T
        return _growth_classes(kind, u, xi, s, d) @ P

    rng = np.random.default_rng(seed)
    Y = np.concatenate([rng.standard_normal((n_random, dim)), np.eye(dim), -np.eye(dim)])
    vals = g(Y)
    top = Y[np.argsort(vals)[-8:]]
    top /= np.linalg.norm(top, axis=1, keepdims=True)
    best = float(np.max(vals))
    scale = 0.3
    for _ in range(25):
        cand = (top[:, None, :] + scale * rng.standard_normal((len(top), 16, dim))).reshape(-1, dim)
        cand = np.concatenate([top, cand])
        cv = g(cand)
        idx = np.argsort(cv)[-8:]
        top = cand[idx] / np.linalg.norm(cand[idx], axis=1, keepdims=True)
        best = max(best, float(cv[idx[-1]]))
        scale *= 0.8
    return best


# ----------------------------------------------------------------------------- outer rules
@dataclass(frozen=True, eq=False)
class Rule:
    """Standard-normal nodes ``x`` (n, d) with log weights ``logw`` (n,), in ``groups`` contiguous
    equal replicate blocks, each normalised (logsumexp over a block = −log groups)."""

    x: np.ndarray
    logw: np.ndarray
    groups: int
    name: str
    sign: np.ndarray | None = None  # signs of the weights (sparse grids have negative ones); None: all +

    @property
    def n(self) -> int:
        return len(self.logw)

    def group(self, r: int) -> "Rule":
        """Replicate block r alone (normalised)."""
        k = self.n // self.groups
        sl = slice(r * k, (r + 1) * k)
        return Rule(self.x[sl], self.logw[sl] + math.log(self.groups), 1, f"{self.name} [replicate {r}]")


def gauss_hermite_rule(d: int, order: int) -> Rule:
    """Tensor probabilists' Gauss–Hermite rule, ``order``^d nodes (exact for polynomials of
    degree <= 2·order − 1 in each coordinate against N(0, I_d))."""
    z, logw = _gh_1d(order)
    grids = np.meshgrid(*([z] * d), indexing="ij")
    lw = np.meshgrid(*([logw] * d), indexing="ij")
    x = np.stack([g.ravel() for g in grids], axis=1)
    return Rule(np.ascontiguousarray(x), np.sum([v.ravel() for v in lw], axis=0), 1,
                f"Gauss–Hermite {order}^{d}")


def smolyak_rule(d: int, level: int) -> Rule:
    """Smolyak sparse grid (combination technique) of probabilists' Gauss–Hermite rules with
    n(k) = 2k − 1 points, k = 1..level+1: A(q, d) = Σ_{q−d+1 <= |k| <= q} (−1)^{q−|k|} C(d−1, q−|k|)
    ⊗_i U^{k_i}, q = d + level; exact for polynomials of total degree <= 2·level + 1 against N(0, I_d)
    (S. A. Smolyak, Soviet Math. Dokl. 4, 240 (1963); T. Gerstner and M. Griebel, Numer. Algorithms
    18, 209 (1998)). Coinciding nodes are merged; weights may be negative (``sign``)."""
    import itertools

    q = d + level
    one_d = {k: _gh_1d(2 * k - 1) for k in range(1, level + 2)}
    acc: dict = {}
    for k in itertools.product(range(1, level + 2), repeat=d):
        tot = sum(k)
        if tot < max(d, q - d + 1) or tot > q:
            continue
        coef = (-1) ** (q - tot) * math.comb(d - 1, q - tot)
        grids = np.meshgrid(*[one_d[ki][0] for ki in k], indexing="ij")
        wgrid = np.exp(np.sum(np.meshgrid(*[one_d[ki][1] for ki in k], indexing="ij"), axis=0))
        pts = np.stack([g.ravel() for g in grids], axis=1)
        for pt, w in zip(np.round(pts, 12), wgrid.ravel()):
            key = tuple(pt)
            acc[key] = acc.get(key, 0.0) + coef * w
    keys = [kk for kk, w in acc.items() if abs(w) > 1e-300]
    x = np.array(keys, dtype=np.float64)
    w = np.array([acc[kk] for kk in keys])
    return Rule(np.ascontiguousarray(x), np.log(np.abs(w)), 1, f"Smolyak Gauss–Hermite level {level} in {d}-D "
                f"({len(w)} nodes)", sign=np.sign(w))


def sobol_rule(d: int, log2n: int, replicates: int, seed: int = 0) -> Rule:
    """``replicates`` independently scrambled Sobol' nets of 2^log2n points each, mapped to N(0, I_d)
    by the inverse normal CDF (Owen scrambling; the replicate spread estimates the error)."""
    xs = []
    for r in range(replicates):
        pts = qmc.Sobol(d, scramble=True, seed=np.random.default_rng([seed, d, r])).random_base2(log2n)
        xs.append(ndtri(np.clip(pts, 1e-15, 1 - 1e-15)))
    n = replicates << log2n
    return Rule(np.ascontiguousarray(np.concatenate(xs)), np.full(n, -math.log(n)), replicates,
                f"scrambled Sobol' {replicates} × 2^{log2n}")


@dataclass(frozen=True, eq=False)
class Proposal:
    """Gaussian proposal y = mean + chol x for the y-integral of one layer."""

    mean: np.ndarray
    chol: np.ndarray

    @staticmethod
    def standard(d: int) -> "Proposal":
        return Proposal(np.zeros(d), np.eye(d))

    @staticmethod
    def from_moments(mean, cov, inflate: float = 1.0) -> "Proposal":
        cov = 0.5 * (cov + cov.T) * inflate
        w, V = np.linalg.eigh(cov)
        w = np.maximum(w, 1e-6 * max(w.max(), 1e-12))
        return Proposal(np.array(mean, dtype=np.float64), np.linalg.cholesky((V * w) @ V.T))

    def distance(self, other: "Proposal") -> float:
        return float(max(np.max(np.abs(self.mean - other.mean)), np.max(np.abs(self.chol - other.chol))))


# ----------------------------------------------------------------------------- block helpers
def tril_pack(A) -> np.ndarray:
    return np.asarray(A)[np.tril_indices(len(A))]


def tril_unpack(v, m) -> np.ndarray:
    A = np.zeros((m, m))
    A[np.tril_indices(m)] = v
    return A


def block_trace(kt, dt, k, d, sizes) -> float:
    """tr K̃ K for class-block K = E k Eᵀ + D_δ, K̃ = E k̃ Eᵀ + D_δ̃ (module docstring)."""
    P = np.asarray(sizes, dtype=np.float64)
    return float(P @ (kt * k) @ P + np.sum(P * (np.diag(kt) * d + dt * np.diag(k) + dt * d)))


# ----------------------------------------------------------------------------- one layer
@dataclass(frozen=True, eq=False)
class LayerResult:
    """Everything one layer's y-integral gives (module docstring), for one rule.

    ``log_z``; ``k``, ``delta`` (this layer's activation kernel); ``kt_in``, ``dt_in`` (conjugate of
    the input kernel, ℓ >= 2 only); ``outputs`` f (m, m) [c, r] and ``readout_moment`` U (readout
    layer only); ``y_mean``, ``y_cov`` (tilted moments of y, for the proposal); ``ess`` (Kish
    effective sample size fraction of the importance weights)."""

    log_z: float
    k: np.ndarray
    delta: np.ndarray
    kt_in: np.ndarray | None
    dt_in: np.ndarray | None
    outputs: np.ndarray | None
    readout_moment: np.ndarray | None
    y_mean: np.ndarray
    y_cov: np.ndarray
    ess: float


def log_integrand(oned: OneD, sizes, sigma: float, y, *, R_in=None, delta_in=None, t=None, sigma_a=None, kt=None,
                  dt=None) -> np.ndarray:
    """λ(y) = −½|y|² + Σ_c P_c ζ_c(u_c(y), ξ_c(y)): the log density (up to a constant) of one layer's
    tilted y-measure at the points ``y`` (n, d); arguments as :func:`layer_integral`."""
    P = np.asarray(sizes, dtype=np.float64)
    m = len(P)
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    if t is not None:
        B, dtilt = sigma_a * np.asarray(t, dtype=np.float64), np.zeros(m)
    else:
        w_, V_ = np.linalg.eigh(0.5 * (kt + kt.T))
        B, dtilt = V_ * np.sqrt(np.maximum(w_, 0.0)), np.asarray(dt, dtype=np.float64)
    u = y[:, :m] @ B.T
    if R_in is not None:
        xi, s = sigma * (y[:, m:] @ np.asarray(R_in).T), sigma * np.sqrt(np.asarray(delta_in, dtype=np.float64))
    else:
        xi, s = np.zeros_like(u), np.full(m, sigma)
    zeta = tilted_moments(oned, xi, u, s, dtilt)[0]
    return -0.5 * np.sum(y * y, axis=1) + zeta @ P


def find_modes(fun, starts, iters: int = 150, tol: float = 1e-3):
    """Local maxima of ``fun`` (batch → values) by vectorised gradient ascent with per-point step
    control (forward-difference gradients) from ``starts`` (n, d); returns (modes, values, log
    Laplace masses λ* + ½ log det(2π (−∇²λ)⁻¹), Hessians), duplicates (distance < 10·tol) merged.
    Modes whose Hessian is not negative definite get mass −inf."""
    X = np.array(starts, dtype=np.float64)
    n, d = X.shape
    eye = np.eye(d)
    f = fun(X)
    lr = np.full(n, 0.1)
    h = 1e-5
    for _ in range(iters):
        g = np.stack([(fun(X + h * eye[j]) - f) / h for j in range(d)], axis=1)
        Xn = X + lr[:, None] * g
        fn = fun(Xn)
        up = np.isfinite(fn) & (fn > f)
        X[up], f[up] = Xn[up], fn[up]
        lr = np.where(up, lr * 1.3, lr * 0.5)
        if np.all(lr * np.linalg.norm(g, axis=1) < tol * 1e-2):
            break
    order = np.argsort(-f)
    modes, vals = [], []
    for i in order:
        if np.isfinite(f[i]) and all(np.linalg.norm(X[i] - q) > 10 * tol + 1e-2 for q in modes):
            modes.append(X[i].copy())
            vals.append(f[i])
    masses, hessians = [], []
    e = 1e-3
    for q, v in zip(modes, vals):
        H = np.empty((d, d))
        for i in range(d):
            for j in range(d):
                pts = np.array([q + e * (eye[i] + eye[j]), q + e * (eye[i] - eye[j]), q - e * (eye[i] - eye[j]),
                                q - e * (eye[i] + eye[j])])
                fp = fun(pts)
                H[i, j] = (fp[0] - fp[1] - fp[2] + fp[3]) / (4 * e * e)
        w = np.linalg.eigvalsh(0.5 * (H + H.T))
        hessians.append(0.5 * (H + H.T))
        masses.append(v + 0.5 * d * math.log(2 * math.pi) - 0.5 * float(np.sum(np.log(-w))) if w.max() < 0
                      else -np.inf)
    return np.array(modes), np.array(vals), np.array(masses), hessians


def tilt_factor(m: int, *, t=None, sigma_a=None, kt=None, dt=None):
    """(B, δ̃) with u = B v, v ~ N(0, I_m), the Hubbard–Stratonovich field of one layer's block tilt:
    B = σ_a t for the readout (δ̃ = 0), B = chol k̃ for a hidden tilt (eigen-factor when k̃ is
    singular; :class:`OutsideDomain` if k̃ is not positive semidefinite), δ̃ = ``dt``."""
    if t is not None:
        return sigma_a * np.asarray(t, dtype=np.float64), np.zeros(m)
    kt = np.asarray(kt, dtype=np.float64)
    kt = 0.5 * (kt + kt.T)
    scale = max(float(np.max(np.abs(kt))), 1e-300)
    try:
        B = np.linalg.cholesky(kt + 1e-13 * scale * np.eye(m))
    except np.linalg.LinAlgError:
        w_, V_ = np.linalg.eigh(kt)
        if w_.min() < -1e-8 * scale:
            raise OutsideDomain(f"hidden tilt k̃ is not positive semidefinite (eigenvalue {w_.min():.3g})")
        B = V_ * np.sqrt(np.maximum(w_, 0.0))
    return B, np.asarray(dt, dtype=np.float64)


def layer_integral(oned: OneD, sizes, sigma: float, rule: Rule, proposal: Proposal, *, R_in=None, delta_in=None,
                   t=None, sigma_a=None, kt=None, dt=None, neurons: int = 0, rng=None):
    """One layer's y-integral (module docstring).

    Input kernel: ``R_in`` (k = R Rᵀ) and ``delta_in`` (m,), or both None for K_0 = I (layer 1).
    Tilt: readout (``t`` (m, m) rows t_c, ``sigma_a``) or hidden (``kt`` = k̃ ⪰ 0, ``dt`` = δ̃).
    Returns a :class:`LayerResult`; with ``neurons`` > 0 instead the class-mean activations
    (neurons × m) of that many neurons drawn from the layer's single-neuron measure
    (:func:`_sample_patterns`).
    """
    P = np.asarray(sizes, dtype=np.float64)
    m = len(P)
    has_xi = R_in is not None
    x = rule.x
    y = proposal.mean + x @ proposal.chol.T
    v = y[:, :m]
    readout = t is not None
    B, dtilt = tilt_factor(m, t=t, sigma_a=sigma_a, kt=kt, dt=dt)
    u = v @ B.T
    if has_xi:
        delta_in = np.asarray(delta_in, dtype=np.float64)
        if np.any(delta_in <= 0):
            raise OutsideDomain("within-class kernel excess δ must be > 0")
        xi = sigma * (y[:, m:] @ np.asarray(R_in).T)
        s = sigma * np.sqrt(delta_in)
    else:
        xi = np.zeros_like(u)
        s = np.full(m, sigma)
    if oned.kind != "smooth":
        if np.any(1.0 - dtilt * s * s <= 0.0):
            raise OutsideDomain("1-D integral diverges: 1 − δ̃ s² <= 0")
        C = sigma * np.asarray(R_in) if has_xi else None
        grow = growth_rate(oned.kind, P, B, s, dtilt, C)
        if grow >= 0.5 * (1.0 - 1e-9):
            raise OutsideDomain(f"y-integral diverges: growth rate {grow:.4g} >= 1/2 (outside the domain)")
    zeta, m1, m2, ez, ez2 = tilted_moments(oned, xi, u, s, dtilt)
    logdet = float(np.sum(np.log(np.abs(np.diag(proposal.chol)))))
    lam = -0.5 * np.sum(y * y, axis=1) + 0.5 * np.sum(x * x, axis=1) + logdet + zeta @ P
    lw = rule.logw + lam
    if not np.all(np.isfinite(lw)):
        raise OutsideDomain("non-finite importance weight in the y-integral")
    if rule.sign is None:
        log_z = float(logsumexp(lw))
        p = np.exp(lw - log_z)
    else:
        log_z, sgn = logsumexp(lw, b=rule.sign, return_sign=True)
        if sgn <= 0:
            raise OutsideDomain("sparse-grid estimate of the partition function is not positive")
        log_z = float(log_z)
        p = rule.sign * np.exp(lw - log_z)
    if neurons:
        return _sample_patterns(oned, P, p, xi, u, s, dtilt, ez, ez2, neurons, rng)
    ess = float(np.sum(np.abs(p)) ** 2 / np.sum(p * p) / len(p))
    k = (m1 * p[:, None]).T @ m1
    delta = p @ m2 - np.diag(k)
    y_mean = p @ y
    yc = y - y_mean
    y_cov = (yc * p[:, None]).T @ yc
    kt_in = dt_in = f = U = None
    if has_xi:
        W = ez / s
        kt_in = sigma**2 * (W * p[:, None]).T @ W
        dt_in = (p @ (ez2 - ez * ez) - 1.0) / delta_in
    if readout:
        a = sigma_a * v
        f = (m1 * p[:, None]).T @ a
        U = (a * p[:, None]).T @ a
    return LayerResult(log_z, 0.5 * (k + k.T), delta, None if kt_in is None else 0.5 * (kt_in + kt_in.T), dt_in,
                       f, U, y_mean, y_cov, ess)


@numba.njit(cache=True)
def _inverse_cdf(cdf, grid, r, out):
    """out[i, j] = grid value where the row cdf[i] (non-decreasing, last entry 1) reaches r[i, j]
    (linear interpolation between grid nodes)."""
    n, G = cdf.shape
    for i in range(n):
        for j in range(r.shape[1]):
            lo, hi = 0, G - 1
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if cdf[i, mid] < r[i, j]:
                    lo = mid
                else:
                    hi = mid
            span = cdf[i, hi] - cdf[i, lo]
            w = (r[i, j] - cdf[i, lo]) / span if span > 0 else 0.0
            out[i, j] = grid[i, lo] + min(max(w, 0.0), 1.0) * (grid[i, hi] - grid[i, lo])


def _sample_patterns(oned, P, p, xi, u, s, dtilt, ez, ez2, neurons, rng, n_grid=801):
    """Class-mean activations of ``neurons`` neurons from the tilted single-neuron measure: nodes y
    resampled with their normalised weights p, then for each class c the P_c within-class
    variables z_μ drawn from the 1-D tilted law ∝ N(z) e^{u_c φ + ½ δ̃_c φ²} by inverse CDF on a
    grid of ``n_grid`` points spanning E_1 z ± 10 sd (and at least ±6)."""
    rng = rng if rng is not None else np.random.default_rng(0)
    pp = np.maximum(p, 0.0)  # (sparse grids: negative weights dropped for resampling)
    idx = rng.choice(len(p), size=neurons, p=pp / pp.sum())
    phi = (lambda h: h) if oned.kind == "linear" else (lambda h: np.maximum(h, 0.0)) if oned.kind == "relu" \
        else get_nonlinearity(oned.name)
    m = len(P)
    out = np.empty((neurons, m))
    for c in range(m):  # m classes (a handful); everything inside is vectorised over neurons and draws
        mu = ez[idx, c]
        sd = np.sqrt(np.maximum(ez2[idx, c] - mu * mu, 1e-6))
        half = np.maximum(10.0 * sd, 6.0)
        grid = mu[:, None] + half[:, None] * np.linspace(-1.0, 1.0, n_grid)[None, :]
        h = xi[idx, c][:, None] + s[c] * grid
        ph = np.asarray(phi(h), dtype=np.float64)
        logd = -0.5 * grid * grid + u[idx, c][:, None] * ph + 0.5 * dtilt[c] * ph * ph
        dens = np.exp(logd - logd.max(axis=1, keepdims=True))
        cdf = np.concatenate([np.zeros((neurons, 1)), np.cumsum(0.5 * (dens[:, 1:] + dens[:, :-1]), axis=1)], axis=1)
        cdf /= cdf[:, -1:]
        z = np.empty((neurons, int(P[c])))
        _inverse_cdf(np.ascontiguousarray(cdf), np.ascontiguousarray(grid), rng.random((neurons, int(P[c]))), z)
        out[:, c] = np.mean(np.asarray(phi(xi[idx, c][:, None] + s[c] * z), dtype=np.float64), axis=1)
    return out


def untilted_kernels(oned: OneD, sizes, sigmas, rule_for) -> list:
    """Prior (NNGP) class-block kernels [(k_ℓ, δ_ℓ)] for ℓ = 1..L−1 (no tilt), with
    ``rule_for(d)`` giving the rule for a d-dimensional y-integral."""
    m = len(sizes)
    out = []
    R, delta = None, None
    for ell, sig in enumerate(sigmas[:-1], start=1):
        d = m if R is None else 2 * m
        res = layer_integral(oned, sizes, sig, rule_for(d), Proposal.standard(d), R_in=R, delta_in=delta,
                             kt=np.zeros((m, m)), dt=np.zeros(m))
        out.append((res.k, res.delta))
        w, V = np.linalg.eigh(res.k)
        R = np.linalg.cholesky((V * np.maximum(w, 0)) @ V.T + 1e-12 * np.eye(m))
        delta = res.delta
    return out


# ----------------------------------------------------------------------------- neurons of one layer (validation)
__all__ += ["layer_fields", "tilted_z_grid", "tilted_z_logpdf", "sample_layer_neurons"]


def layer_fields(sizes, sigma: float, *, R_in=None, delta_in=None, t=None, sigma_a=None, kt=None, dt=None):
    """(B, δ̃, C, s) of one layer in the coordinates of :func:`layer_integral` (module docstring):
    u = B v (B = σ_a t for the readout, chol k̃ for a hidden tilt), ξ = C w (C = σ R_in; None for
    layer 1, where ξ = 0), s_c = σ √δ_c (σ for layer 1), δ̃ the diagonal tilt (0 for the readout)."""
    m = len(sizes)
    B, dtilt = tilt_factor(m, t=t, sigma_a=sigma_a, kt=kt, dt=dt)
    if R_in is not None:
        delta_in = np.asarray(delta_in, dtype=np.float64)
        if np.any(delta_in <= 0):
            raise OutsideDomain("within-class kernel excess δ must be > 0")
        return B, dtilt, sigma * np.asarray(R_in, dtype=np.float64), sigma * np.sqrt(delta_in)
    return B, dtilt, None, np.full(m, float(sigma))


def _phi_of(oned: OneD):
    if oned.kind == "linear":
        return lambda h: np.asarray(h, dtype=np.float64)
    if oned.kind == "relu":
        return lambda h: np.maximum(h, 0.0)
    nl = get_nonlinearity(oned.name)
    return lambda h: np.asarray(nl(h), dtype=np.float64)


def tilted_z_grid(oned: OneD, xi, u, s: float, d: float, n_grid: int = 801):
    """Grid and CDF (each (n, n_grid)) of the 1-D tilted laws p(z) ∝ N(z; 0, 1) e^{u φ(ξ + s z) + ½ d φ²}
    for the n pairs (ξ, u) (vectors) of one class: n_grid points spanning E_1 z ± max(10 sd, 6)
    (moments from :func:`tilted_moments`), cell masses by the trapezoid rule. The law sampled by
    inverse CDF with linear interpolation is piecewise uniform, with the exact density
    :func:`tilted_z_logpdf` (what an exact Metropolis–Hastings ratio needs)."""
    xi = np.asarray(xi, dtype=np.float64)[:, None]
    u = np.asarray(u, dtype=np.float64)[:, None]
    _, _, _, ez, ez2 = tilted_moments(oned, xi, u, np.array([s]), np.array([d]))
    mu, sd = ez[:, 0], np.sqrt(np.maximum(ez2[:, 0] - ez[:, 0] ** 2, 1e-6))
    half = np.maximum(10.0 * sd, 6.0)
    grid = np.ascontiguousarray(mu[:, None] + half[:, None] * np.linspace(-1.0, 1.0, n_grid)[None, :])
    code = {"linear": -1, "relu": -2}.get(oned.kind, oned.code)
    ph = _phi_of(oned)(xi + s * grid) if code == 0 else np.empty((1, 1))
    cdf = np.empty_like(grid)
    _grid_cdf(code, np.ascontiguousarray(ph), grid, np.ascontiguousarray(xi[:, 0]), np.ascontiguousarray(u[:, 0]),
              float(s), float(d), cdf)
    return grid, cdf


@numba.njit(cache=True)
def _grid_cdf(code, ph_pre, grid, xi, u, s, d, cdf):
    """Trapezoid CDF (normalised) of ∝ N(z) e^{u φ + ½ d φ²} on each row of ``grid``; φ(ξ + s z) inline
    (code −1 linear, −2 relu, 1–3 :func:`_phi_builtin`) or from ``ph_pre`` (code 0)."""
    n, G = grid.shape
    lg = np.empty(G)
    for i in range(n):
        mx = -np.inf
        for k in range(G):
            z = grid[i, k]
            if code == 0:
                p = ph_pre[i, k]
            elif code == -1:
                p = xi[i] + s * z
            elif code == -2:
                p = max(xi[i] + s * z, 0.0)
            else:
                p = _phi_builtin(code, xi[i] + s * z)
            v = -0.5 * z * z + u[i] * p + 0.5 * d * p * p
            lg[k] = v
            if v > mx:
                mx = v
        acc = 0.0
        prev = math.exp(lg[0] - mx)
        cdf[i, 0] = 0.0
        for k in range(1, G):
            cur = math.exp(lg[k] - mx)
            acc += 0.5 * (prev + cur)
            cdf[i, k] = acc
            prev = cur
        for k in range(G):
            cdf[i, k] /= acc


@numba.njit(cache=True)
def _grid_logpdf(cdf, grid, z, out):
    """out[i, j] = log density at z[i, j] of the piecewise-uniform law with row CDF cdf[i] on grid[i]."""
    n, G = cdf.shape
    for i in range(n):
        for j in range(z.shape[1]):
            x = z[i, j]
            if x < grid[i, 0] or x > grid[i, G - 1]:
                out[i, j] = -np.inf
                continue
            lo, hi = 0, G - 1
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if grid[i, mid] <= x:
                    lo = mid
                else:
                    hi = mid
            mass = cdf[i, hi] - cdf[i, lo]
            out[i, j] = math.log(mass / (grid[i, hi] - grid[i, lo])) if mass > 0 else -np.inf


def tilted_z_logpdf(grid, cdf, z) -> np.ndarray:
    """Log density (n, k) at the points ``z`` (n, k) of the laws of :func:`tilted_z_grid` (−inf off the grid)."""
    z = np.ascontiguousarray(np.atleast_2d(np.asarray(z, dtype=np.float64)))
    out = np.empty(z.shape)
    _grid_logpdf(cdf, grid, z, out)
    return out


def sample_layer_neurons(oned: OneD, sizes, sigma: float, proposal: Proposal, neurons: int, rng, *, R_in=None,
                         delta_in=None, t=None, sigma_a=None, kt=None, dt=None, candidates: int = 16,
                         n_grid: int = 801, chunk: int = 2048) -> dict:
    """``neurons`` independent neurons of one layer from its tilted single-neuron measure (module
    docstring; arguments as :func:`layer_integral`), with preactivations on all P inputs.

    y = (v, w) by sampling-importance-resampling: ``candidates`` × ``neurons`` draws from the Gaussian
    ``proposal``, log weights λ(y) − log N(x; 0, I) (λ of :func:`log_integrand`), resampled
    multinomially; then for each input μ of class c, z_μ from the 1-D tilted law by inverse CDF
    (:func:`tilted_z_grid`) and h_μ = ξ_c + s_c z_μ. Returns {"h" (neurons × P, classes in
    consecutive blocks), "a" (neurons × m, readout layer: a = σ_a v; else None), "y", "u", "xi",
    "s", "dtilt", "ess" (Kish effective sample size fraction of the candidate weights), "distinct"
    (fraction of distinct candidates among the resampled neurons)}.
    """
    P = np.asarray(sizes, dtype=np.float64)
    m = len(P)
    B, dtilt, C, s = layer_fields(sizes, sigma, R_in=R_in, delta_in=delta_in, t=t, sigma_a=sigma_a, kt=kt, dt=dt)
    d = len(proposal.mean)
    M = int(neurons) * int(candidates)
    x = rng.standard_normal((M, d))
    y = proposal.mean + x @ proposal.chol.T
    u = y[:, :m] @ B.T
    xi = np.zeros_like(u) if C is None else y[:, m:] @ C.T
    zeta = tilted_moments(oned, xi, u, s, dtilt)[0]
    lw = -0.5 * np.sum(y * y, axis=1) + 0.5 * np.sum(x * x, axis=1) + zeta @ P
    if not np.all(np.isfinite(lw)):
        raise OutsideDomain("non-finite importance weight while sampling a layer's neurons")
    w = np.exp(lw - lw.max())
    ess = float(w.sum() ** 2 / np.sum(w * w) / M)
    idx = rng.choice(M, size=int(neurons), p=w / w.sum())
    y, u, xi = y[idx], u[idx], xi[idx]
    labels = np.repeat(np.arange(m), np.asarray(sizes, dtype=np.int64))
    H = np.empty((int(neurons), int(P.sum())))
    for c in range(m):  # m classes; inside: vectorised over neurons (in chunks) and inputs
        cols = np.flatnonzero(labels == c)
        for lo in range(0, int(neurons), chunk):
            sl = slice(lo, lo + chunk)
            grid, cdf = tilted_z_grid(oned, xi[sl, c], u[sl, c], float(s[c]), float(dtilt[c]), n_grid)
            z = np.empty((len(grid), len(cols)))
            _inverse_cdf(cdf, grid, rng.random(z.shape), z)
            H[sl, cols] = xi[sl, c][:, None] + s[c] * z
    return {"h": H, "a": sigma_a * y[:, :m] if t is not None else None, "y": y, "u": u, "xi": xi, "s": s,
            "dtilt": dtilt, "ess": ess, "distinct": float(len(np.unique(idx)) / len(idx))}
