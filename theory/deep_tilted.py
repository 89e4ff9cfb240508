"""The 1-D tilted integrals of one class-block layer (THEORY §5; derivation in :mod:`theory.deep_blocks`).

For z ~ N(0, 1), h = ξ + s z and the tilt l(h) = u φ(h) + ½ d φ(h)²,

    ζ = log E_z e^{l},   and the tilted means E_1 φ, E_1 φ², E_1 z, E_1 z².

Linear φ: with A = 1 − d s², b = s (u + d ξ), c0 = u ξ + ½ d ξ², ζ = c0 + b²/(2A) − ½ log A and
z ~ N(b/A, 1/A) (domain A > 0). ReLU: the untilted lower tail z < −ξ/s plus the same Gaussian on the
upper part (truncated-normal moments with log_ndtr). Smooth bounded φ: probabilists' Gauss–Hermite
with ``nz`` nodes (compiled). :func:`growth_rate` is the domain bound of the outer y-integral:
lim ζ(r u, r ξ)/r² summed over classes must stay below ½.

Shaped φ (the homotopy in the nonlinearity's shape, :mod:`solvers.deep.shape_homotopy`):
φ_σ(h) = (1 − σ) h + σ φ(h), σ ∈ [0, 1] (``OneD.shape``; 1 is φ itself). Smooth φ: the same compiled
Gauss–Hermite rule with σ passed into one compiled kernel (no new expression per σ), its nodes centred on
the Gaussian tilt of the linear part (1 − σ) h, which is integrated in closed form; φ_σ grows like (1 − σ) h, so the 1-D domain is 1 − (1 − σ)² δ̃ s² > 0 and the y-domain is the linear one with
u → (1 − σ) u, δ̃ → (1 − σ)² δ̃. ReLU: φ_σ is the leaky ReLU with slope a = 1 − σ below 0; its lower part
z < −ξ/s is the linear Gaussian with u → a u, δ̃ → a² δ̃, truncated (closed form as the upper part).

Affine φ (the homotopy between sigmoids, :mod:`solvers.deep.sigmoid_homotopy`): φ_A(h) = α + β φ(κ h)
(``OneD.affine`` = (α, β, κ)) is integrated exactly through φ's own rule. With ψ = φ(κ h), h = ξ + s z,

    u φ_A + ½ d φ_A² = (u α + ½ d α²) + (u + d α) β ψ + ½ d β² ψ²,

so ζ_A(ξ, u, s, d) = u α + ½ d α² + ζ(κ ξ, (u + d α) β, κ s, d β²), E φ_A = α + β E ψ,
E φ_A² = α² + 2 α β E ψ + β² E ψ², and the moments of z are φ's (z is the same variable).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
import functools
import math

import numba
import numpy as np
from scipy.special import log_ndtr

from theory.domain_errors import OutsideDomain
from theory.nonlinearities import get_nonlinearity
from theory.spec import SpecError

__all__ = ["OneD", "PhiCache", "tilted_moments", "growth_rate", "growth_directions", "gauss_hermite_1d"]

_LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class OneD:
    """How the 1-D tilted integrals of φ are done: ``kind`` "linear" | "relu" (closed forms) or
    "smooth" (Gauss–Hermite with ``nz`` nodes; ``code`` 1 normcdf, 2 erf, 3 tanh compiled inline,
    0 any other kink-free φ evaluated through its compiled kernel). ``shape`` σ: the integrals are those of
    φ_σ(h) = (1 − σ) h + σ φ(h) (module docstring; 1, the default, is φ itself). ``affine`` (α, β, κ): those
    of α + β φ(κ h) (smooth φ only; (0, 1, 1), the default, is φ itself)."""

    kind: str
    name: str
    nz: int = 40
    code: int = 0
    shape: float = 1.0
    affine: tuple = (0.0, 1.0, 1.0)

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
        return replace(self, nz=nz)

    def shaped(self, shape: float) -> "OneD":
        """The integrals of φ_σ(h) = (1 − σ) h + σ φ(h) with σ = ``shape`` in [0, 1] (linear φ: itself)."""
        if not 0.0 <= shape <= 1.0:
            raise SpecError(f"shape must lie in [0, 1] (got {shape})")
        return self if self.kind == "linear" else replace(self, shape=float(shape))

    def affined(self, offset: float, gain: float, scale: float) -> "OneD":
        """The integrals of α + β φ(κ h) with (α, β, κ) = (``offset``, ``gain``, ``scale``), β, κ > 0 (smooth φ)."""
        if self.kind != "smooth":
            raise SpecError(f"an affine φ needs a smooth bounded φ (got {self.kind!r})")
        if not (gain > 0.0 and scale > 0.0 and math.isfinite(offset)):
            raise SpecError(f"affine φ: gain and scale must be > 0 and the offset finite (got {offset}, {gain}, {scale})")
        return replace(self, affine=(float(offset), float(gain), float(scale)))

    @property
    def grows(self) -> bool:
        """φ grows linearly (linear, ReLU, or a shaped φ with σ < 1): the integrals have a domain."""
        return self.kind != "smooth" or self.shape < 1.0

    def growth_args(self, B, d):
        """(kind, B, δ̃, leak) for :func:`growth_rate` (and the 1-D domain) of this φ with tilt factor B."""
        a = 1.0 - self.shape
        if self.kind == "smooth":
            return "linear", a * B, a * a * d, 0.0
        return self.kind, B, d, (a if self.kind == "relu" else 0.0)


@numba.njit(cache=True, inline="always")
def _phi_builtin(code, h):
    if code == 1:
        return 0.5 * (1.0 + math.erf(h / 1.4142135623730951))
    if code == 2:
        return math.erf(0.8862269254527580 * h)  # √π/2
    return math.tanh(h)


@numba.njit(cache=True, inline="always")
def _weighted_moments(e, mx, ph, zz, shift, out):
    """out[:] = (shift + log Σ_k w_k, E φ, E φ², E z, E z²) under the weights w_k = e^{e_k − mx} at nodes zz_k
    with φ values ph_k (mx = max_k e_k, so the sum cannot overflow)."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    sz = 0.0
    sz2 = 0.0
    for k in range(e.shape[0]):
        w = math.exp(e[k] - mx)
        s0 += w
        s1 += w * ph[k]
        s2 += w * ph[k] * ph[k]
        sz += w * zz[k]
        sz2 += w * zz[k] * zz[k]
    out[0] = shift + mx + math.log(s0)
    out[1] = s1 / s0
    out[2] = s2 / s0
    out[3] = sz / s0
    out[4] = sz2 / s0


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
            _weighted_moments(e, mx, ph, z, 0.0, out[i, c])


@numba.njit(cache=True)
def _shaped_moments(code, shape, phi_pre, xi, u, s, d, z, logw, out):
    """:func:`_smooth_moments` of φ_σ = (1 − σ) h + σ φ(h), σ = ``shape``: the linear part's Gaussian tilt
    (a = 1 − σ: u → a u, d → a² d) is integrated in closed form and the Gauss–Hermite nodes are centred on it,
    z_k = μ + z'_k/√A, so only the bounded remainder u σ φ + ½ d σ φ (2 a h + σ φ) is integrated by the rule.
    φ at the mapped nodes from ``phi_pre[i, c, k]`` (code 0) or inline (codes 1–3)."""
    n, m = u.shape
    nz = z.shape[0]
    a = 1.0 - shape
    e = np.empty(nz)
    ph = np.empty(nz)
    zz = np.empty(nz)
    for i in range(n):
        for c in range(m):
            uc, dc, x, sc = u[i, c], d[c], xi[i, c], s[c]
            A = 1.0 - a * a * dc * sc * sc
            b = sc * (a * uc + a * a * dc * x)
            mu = b / A
            lin = a * uc * x + 0.5 * a * a * dc * x * x + 0.5 * b * mu - 0.5 * math.log(A)
            sd = 1.0 / math.sqrt(A)
            mx = -np.inf
            for k in range(nz):
                zk = mu + sd * z[k]
                h = x + sc * zk
                f = phi_pre[i, c, k] if code == 0 else _phi_builtin(code, h)
                p = a * h + shape * f
                v = logw[k] + uc * shape * f + 0.5 * dc * shape * f * (2.0 * a * h + shape * f)
                zz[k], ph[k], e[k] = zk, p, v
                if v > mx:
                    mx = v
            _weighted_moments(e, mx, ph, zz, lin, out[i, c])


@numba.njit(cache=True)
def _phi_fill(code, xi, s, z, redo, out):
    """out[i, c, k] = φ(ξ_ic + s_c z_k) for the classes c with ``redo[c]`` (φ inline, codes 1–3)."""
    n, m = xi.shape
    nz = z.shape[0]
    for i in range(n):
        for c in range(m):
            if redo[c]:
                for k in range(nz):
                    out[i, c, k] = _phi_builtin(code, xi[i, c] + s[c] * z[k])


class PhiCache:
    """The values φ(ξ_ic + s_c z_k) of the last :func:`tilted_moments` call of one layer and rule (the
    bulk of its cost): a class whose ξ column and s_c are bitwise unchanged keeps its values, so a
    finite-difference step in the tilt u (or in one class's input kernel) recomputes no φ (or one class).
    Results are identical to the uncached call."""

    def __init__(self):
        self.key = self.xi = self.s = self.phi = None

    def values(self, oned: "OneD", xi, s, z) -> np.ndarray:
        key = (oned.code, oned.nz, xi.shape)
        if self.key != key:
            self.key, self.xi, self.s = key, np.full(xi.shape, np.nan), np.full(len(s), np.nan)
            self.phi = np.empty(xi.shape + (len(z),))
        redo = ~(np.all(xi == self.xi, axis=0) & (s == self.s))
        if np.any(redo):
            _phi_fill(oned.code, xi, s, z, redo, self.phi)
            self.xi[:, redo], self.s[redo] = xi[:, redo], s[redo]
        return self.phi


@functools.lru_cache(maxsize=32)
def _gh_1d(nz):
    z, w = np.polynomial.hermite_e.hermegauss(nz)
    logw = np.log(w / math.sqrt(2.0 * math.pi))
    z.flags.writeable = logw.flags.writeable = False  # shared by every caller
    return z, logw


def tilted_moments(oned: OneD, xi, u, s, d, cache: PhiCache | None = None):
    """(ζ, E_1 φ, E_1 φ², E_1 z, E_1 z²), each (n, m), of the 1-D tilted laws
    p(z) ∝ N(z; 0, 1) exp(u φ(ξ + s z) + ½ d φ(ξ + s z)²) (:mod:`theory.deep_blocks`).

    ``xi``, ``u``: (n, m); ``s`` (> 0), ``d``: (m,). Raises :class:`OutsideDomain` when a linear/ReLU
    integral diverges (1 − d s² <= 0). ``cache``: a :class:`PhiCache` reusing the φ values of the
    previous call where ξ and s did not change (smooth φ with a built-in code only; same results).
    """
    xi = np.asarray(xi, dtype=np.float64)
    u = np.asarray(u, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    d = np.asarray(d, dtype=np.float64)
    if oned.affine != (0.0, 1.0, 1.0):
        return _affine(oned, xi, u, s, d, cache)
    if oned.kind == "smooth" and oned.shape < 1.0:
        return _shaped(oned, xi, u, s, d)
    if oned.kind == "smooth":
        z, logw = _gh_1d(oned.nz)
        out = np.empty(u.shape + (5,))
        code = oned.code
        if code == 0:
            h = xi[..., None] + s[None, :, None] * z[None, None, :]
            phi_pre = np.ascontiguousarray(get_nonlinearity(oned.name)(h))
        elif cache is not None:
            phi_pre, code = cache.values(oned, np.ascontiguousarray(xi), s, z), 0
        else:
            phi_pre = np.empty((1, 1, 1))
        _smooth_moments(code, phi_pre, np.ascontiguousarray(xi), np.ascontiguousarray(u), s, d, z, logw, out)
        return out[..., 0], out[..., 1], out[..., 2], out[..., 3], out[..., 4]
    if oned.kind == "relu":  # shape σ: the leaky ReLU with slope 1 − σ (σ = 1: the ReLU)
        return _leaky_relu_moments(1.0 - oned.shape, xi, u, s, d)
    A = 1.0 - d * s * s
    if np.any(A <= 0.0):
        raise OutsideDomain(f"1-D integral diverges: 1 − δ̃ s² = {A.min():.3g} <= 0")
    b = s * (u + d * xi)
    c0 = u * xi + 0.5 * d * xi * xi
    mu = b / A
    zeta = c0 + 0.5 * b * mu - 0.5 * np.log(A)  # linear φ
    ez = mu
    ez2 = 1.0 / A + mu * mu
    m1 = xi + s * ez
    m2 = xi * xi + 2.0 * xi * s * ez + s * s * ez2
    return zeta, m1, m2, ez, ez2


def _affine(oned: OneD, xi, u, s, d, cache):
    """:func:`tilted_moments` of α + β φ(κ h), (α, β, κ) = ``oned.affine``, through φ's own (module docstring)."""
    al, be, ka = oned.affine
    zeta, e1, e2, ez, ez2 = tilted_moments(replace(oned, affine=(0.0, 1.0, 1.0)), ka * xi, (u + d * al) * be,
                                           ka * s, d * be * be, cache)
    return (zeta + u * al + 0.5 * d * al * al, al + be * e1, al * al + 2.0 * al * be * e1 + be * be * e2, ez, ez2)


def _shaped(oned: OneD, xi, u, s, d):
    """:func:`tilted_moments` of a smooth φ shaped by σ = ``oned.shape`` < 1 (:func:`_shaped_moments`)."""
    a = 1.0 - oned.shape
    A = 1.0 - a * a * d * s * s
    if np.any(A <= 0.0):
        raise OutsideDomain(f"1-D integral of the shaped φ diverges: 1 − (1 − σ)² δ̃ s² = {A.min():.3g} <= 0")
    z, logw = _gh_1d(oned.nz)
    xi, u = np.ascontiguousarray(xi), np.ascontiguousarray(u)
    phi_pre = np.empty((1, 1, 1))
    if oned.code == 0:
        mu = s * (a * u + a * a * d * xi) / A
        h = (xi + s * mu)[..., None] + (s / np.sqrt(A))[None, :, None] * z[None, None, :]
        phi_pre = np.ascontiguousarray(get_nonlinearity(oned.name)(h), dtype=np.float64)
    out = np.empty(u.shape + (5,))
    _shaped_moments(oned.code, float(oned.shape), phi_pre, xi, u, s, d, z, logw, out)
    return out[..., 0], out[..., 1], out[..., 2], out[..., 3], out[..., 4]


def _truncated_gaussian(u, d, xi, s, z0, upper):
    """The linear-φ tilt u h + ½ d h² (h = ξ + s z) on z > z0 (``upper``) or z < z0: (log mass, E z, E z²) of
    N(z; 0, 1) e^{u h + ½ d h²} there (mass unnormalised, moments normalised)."""
    A = 1.0 - d * s * s
    b = s * (u + d * xi)
    mu = b / A
    sqA = np.sqrt(A)
    alpha = (z0 - mu) * sqA
    sgn = 1.0 if upper else -1.0
    log_p = log_ndtr(-sgn * alpha)
    log_mass = u * xi + 0.5 * d * xi * xi + 0.5 * b * mu - 0.5 * np.log(A) + log_p
    lam = np.exp(-0.5 * alpha * alpha - 0.5 * _LOG_2PI - log_p)  # inverse Mills ratio
    ez = mu + sgn * lam / sqA
    var = np.maximum((1.0 + sgn * alpha * lam - lam * lam) / A, 0.0)
    return log_mass, ez, var + ez * ez


def _leaky_relu_moments(a, xi, u, s, d):
    """:func:`tilted_moments` of the leaky ReLU φ(h) = h (h > 0), a h (h < 0), 0 <= a < 1 (a = 0: the ReLU):
    the upper part z > z0 = −ξ/s the Gaussian N(b/A, 1/A) times its mass, the lower part the same with
    u → a u, δ̃ → a² δ̃ (for a = 0 the untilted normal tail); both truncated Gaussians (log_ndtr)."""
    A = 1.0 - d * s * s
    if np.any(A <= 0.0):
        raise OutsideDomain(f"1-D integral diverges: 1 − δ̃ s² = {A.min():.3g} <= 0")
    z0 = -xi / s
    if a == 0.0:
        lm0 = log_ndtr(z0)
        e0 = -np.exp(-0.5 * z0 * z0 - 0.5 * _LOG_2PI - lm0)  # E[z | z < z0]
        e0sq = 1.0 + z0 * e0
    else:
        lm0, e0, e0sq = _truncated_gaussian(a * u, a * a * d, xi, s, z0, upper=False)
    lm1, e1, e1sq = _truncated_gaussian(u, d, xi, s, z0, upper=True)
    zeta = np.logaddexp(lm0, lm1)
    p0, p1 = np.exp(lm0 - zeta), np.exp(lm1 - zeta)
    ez = p0 * e0 + p1 * e1
    ez2 = p0 * e0sq + p1 * e1sq
    m1 = p0 * a * (xi + s * e0) + p1 * (xi + s * e1)
    m2 = (p0 * a * a * (xi * xi + 2.0 * xi * s * e0 + s * s * e0sq)
          + p1 * (xi * xi + 2.0 * xi * s * e1 + s * s * e1sq))
    return zeta, m1, m2, ez, ez2


def _growth_classes(kind, u, xi, s, d, leak=0.0):
    """g_c = lim_{r→∞} ζ_c(r u, r ξ) / r² = max_z' [−z'²/2 + u φ(ξ + s z') + ½ d φ(ξ + s z')²] for φ = h
    (linear), (h)₊ (relu) or the leaky ReLU with slope ``leak`` below 0; arrays (n, m)."""
    A = 1.0 - d * s * s
    zs = s * (u + d * xi) / A
    hs = xi + s * zs
    inner = -0.5 * zs * zs + u * hs + 0.5 * d * hs * hs
    if kind == "linear":
        return inner
    vb = -0.5 * (xi / s) ** 2  # on the kink h = 0
    if leak == 0.0:
        return np.maximum(np.where(hs > 0, inner, -np.inf), np.where(xi <= 0, 0.0, vb))
    lower = _growth_classes("linear", leak * u, xi, s, leak * leak * d)
    h_lo = xi + s * s * (leak * u + leak * leak * d * xi) / (1.0 - leak * leak * d * s * s)
    return np.maximum(np.maximum(np.where(hs > 0, inner, -np.inf), np.where(h_lo < 0, lower, -np.inf)), vb)


def growth_rate(kind, sizes, B, s, d, C=None, n_random=256, seed=0, leak=0.0):
    """max over unit y of Σ_c P_c g_c(u_c(y), ξ_c(y)) with u = B v, ξ = C w, y = (v, w): the y-integrand
    behaves like exp(r² (growth − ½)) along r y, so the layer's integral converges iff growth < ½.

    Linear φ: g is the quadratic form ½ (u, ξ) H_c (u, ξ)ᵀ, H_c = [[s²/A, 1 + d s²/A], [·, d + d² s²/A]],
    A = 1 − d s², and the growth is the top eigenvalue of ½ Σ_c P_c M_cᵀ H_c M_c (exact). ReLU:
    random unit directions refined by a vectorised random-perturbation hill climb (a lower bound
    of the maximum that is tight in practice; the linear bound is the quadratic form's maximum); ``leak``: the
    slope below 0 of a leaky ReLU (0: ReLU)."""
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

    return _climb(_growth_function(kind, P, B, s, d, C, leak), m if C is None else 2 * m, n_random, seed)


def _growth_function(kind, P, B, s, d, C, leak):
    """Σ_c P_c g_c at the unit directions y (rows of Y, normalised here) of :func:`growth_rate`."""
    m = len(P)

    def g(Y):
        Y = Y / np.linalg.norm(Y, axis=1, keepdims=True)
        u = Y[:, :m] @ B.T
        xi = np.zeros_like(u) if C is None else Y[:, m:] @ C.T
        return _growth_classes(kind, u, xi, s, d, leak) @ P

    return g


def _climb(g, dim, n_random, seed):
    """The largest value of g over unit directions: random directions and the ± axes, the 8 best refined by a
    vectorised random-perturbation hill climb (:func:`growth_rate`)."""
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


def growth_directions(kind, sizes, B, s, d, C=None, leak=0.0, n_starts=256, seed=0, q_min=0.0, max_directions=6):
    """The local maximisers ŷ_j of the growth of :func:`growth_rate` over unit y, with q_j = 2 × their growth
    (the layer's integral converges iff every q_j < 1; along ŷ_j its integrand decays like e^{−(1 − q_j) r²/2}: the
    needle directions of any φ with linear growth, the leaky ReLU of the shape homotopy included). Each of
    ``n_starts`` random directions and the ± axes climbs on its own (random perturbations, shrinking scale); the
    results with q >= ``q_min`` are returned best first without near-duplicates (|ŷ·ŷ'| >= 0.98), at most
    ``max_directions``: (directions (k, dim), q (k,))."""
    P = np.asarray(sizes, dtype=np.float64)
    dim = len(P) if C is None else 2 * len(P)
    g = _growth_function(kind, P, np.asarray(B, dtype=np.float64),
                         np.asarray(s, dtype=np.float64), np.asarray(d, dtype=np.float64), C, leak)
    rng = np.random.default_rng(seed)
    Y = np.concatenate([rng.standard_normal((n_starts, dim)), np.eye(dim), -np.eye(dim)])
    Y /= np.linalg.norm(Y, axis=1, keepdims=True)
    vals, scale = g(Y), 0.3
    for _ in range(60):
        cand = Y[:, None, :] + scale * rng.standard_normal((len(Y), 12, dim))
        cand /= np.linalg.norm(cand, axis=2, keepdims=True)
        cv = g(cand.reshape(-1, dim)).reshape(len(Y), 12)
        best = np.argmax(cv, axis=1)
        better = cv[np.arange(len(Y)), best] > vals
        Y[better], vals[better] = cand[better, best[better]], cv[better, best[better]]
        scale *= 0.85
    dirs, qs = [], []
    for i in np.argsort(vals)[::-1]:
        if 2.0 * vals[i] < q_min or len(dirs) == max_directions:
            break
        if all(abs(float(Y[i] @ y)) < 0.98 for y in dirs):
            dirs.append(Y[i].copy())
            qs.append(2.0 * float(vals[i]))
    return np.array(dirs).reshape(-1, dim), np.array(qs)


#: probabilists' Gauss–Hermite nodes and log weights (Σ e^{logw} = 1) of order ``nz``
gauss_hermite_1d = _gh_1d
