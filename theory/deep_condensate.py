"""The domains of a deep ReLU network's layers (the readout's and, with a diagonal tilt, any hidden layer's) and their
condensate directions (THEORY §4, §5).

Setting: the readout layer L of the class-block theory (:mod:`theory.deep_blocks`) with field t (rows
t_c), readout prior σ_a, layer prior σ and input kernel K_{L-1} = E k Eᵀ + D_δ, k = R Rᵀ. Its y-integral,
y = (v, w) ∈ R^{2m}, has the exponent −½|y|² + Σ_c P_c ζ_c(u_c, ξ_c) with u = σ_a t v, ξ = σ R w and
s_c = σ √δ_c. Along a ray y = r ŷ the 1-D cumulant of φ = (h)₊ grows like r² g_c with

    g_c(u, ξ) = max_z [−z²/2 + u (ξ + s z)₊]
              = s² u²/2 + u ξ          if h* = ξ + s² u > 0      ("on": the class is active),
              = 0                      if h* <= 0 and ξ <= 0     ("off"),
              = −ξ²/(2 s²)             if h* <= 0 and ξ > 0      ("kink": held at h = 0),

so the integral converges iff q(t, k, δ) = 2 max_{|ŷ|=1} F(ŷ) < 1, F(ŷ) = Σ_c P_c g_c(u_c(ŷ), ξ_c(ŷ)).
For K_{L-1} = σ_1²-scaled identity (ξ = 0, s = σ_1) this is the one-layer domain of THEORY §3,
q = σ_a² σ_1² max_â Σ_c P_c (t_c·â)₊² (:mod:`theory.domain`).

On the boundary q = 1 the theory carries a condensate (THEORY §4): a vanishing fraction of neurons with
O(√N) readouts along the maximisers ŷ*_j, readout direction v̂*_j, class-shared preactivation ξ*_j and
activations ∝ h*_{j,c} on the classes that are "on". Its code is {c : h*_{j,c} > 0}. With the
multiplier μ_j of the constraint q <= 1 the saddle-point equations of THEORY §5 gain, by Danskin's
theorem (ŷ*_j an isolated maximiser),

    f_c += (μ_j / P_c) ∂q/∂t_c = 2 μ_j σ_a h*_{j,c} v̂*_j,
    K̃_{L-1} += 2 μ_j ∂q/∂K_{L-1}   (in (R, δ) coordinates: :func:`domain_gradients`).

Within a fixed branch pattern F is the quadratic form ŷᵀ M ŷ with
M = Σ_c P_c M_c, M_c = s²ūūᵀ/2 + (ūx̄ᵀ + x̄ūᵀ)/2 (on), 0 (off), −x̄x̄ᵀ/(2s²) (kink), ū_c = (σ_a t_c, 0),
x̄_c = (0, σ R_c); its local maxima on the sphere are eigenvectors of M. :func:`condensate_directions`
finds them by a shifted power ascent from many starts, then polishes each to the eigenvector of its
pattern's M (exact to rounding).

A hidden layer ℓ < L has the same structure with u = B v, B = chol k̃_ℓ, and a diagonal tilt d = δ̃_ℓ inside the
1-D cumulant: :func:`hidden_domain` and :func:`hidden_gradients` (the same functions with d; the readout is d = 0).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ReadoutDomain", "branch_values", "readout_growth", "condensate_directions", "track_directions",
           "domain_gradients", "kernel_gradient", "hidden_domain", "hidden_gradients"]

ON, OFF, KINK = 0, 1, 2


def branch_values(u, xi, s, d=None):
    """(g, dg/du, dg/dξ, dg/ds, branch) of the growth g_c(u, ξ; s, d) (module docstring; ``d`` the diagonal tilt
    δ̃ of a hidden layer, :func:`hidden_domain`; None or 0 for the readout), arrays (n, m)."""
    u, xi = np.asarray(u, dtype=np.float64), np.asarray(xi, dtype=np.float64)
    d = np.zeros(np.shape(s)) if d is None else np.asarray(d, dtype=np.float64)
    A = 1.0 - d * s * s
    hs = (xi + s * s * u) / A
    ud = (u + d * xi) / A  # u + d h*: the tilt's slope at h*
    on_val = u * xi + 0.5 * d * xi * xi + 0.5 * s * s * (u + d * xi) * ud
    kink_val = -0.5 * (xi / s) ** 2
    off_val = np.where(xi <= 0.0, 0.0, kink_val)
    on = (hs > 0.0) & (on_val >= off_val)
    branch = np.where(on, ON, np.where(xi <= 0.0, OFF, KINK))
    g = np.where(on, on_val, off_val)
    du = np.where(on, hs, 0.0)
    dxi = np.where(on, ud, np.where(branch == KINK, -xi / (s * s), 0.0))
    ds = np.where(on, s * ud * ud, np.where(branch == KINK, xi * xi / s**3, 0.0))
    return g, du, dxi, ds, branch


def _fields(y, B, C, m):
    u = y[:, :m] @ B.T
    xi = y[:, m:] @ C.T
    return u, xi


def readout_growth(y, B, C, s, sizes, d=None):
    """F(ŷ) = Σ_c P_c g_c for the rows ŷ of ``y`` (normalised here); u = B v, ξ = C w (B = σ_a t, C = σ R; a hidden
    layer's B = chol k̃ and diagonal tilt ``d``, :func:`hidden_domain`)."""
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    y = y / np.linalg.norm(y, axis=1, keepdims=True)
    u, xi = _fields(y, B, C, len(sizes))
    return branch_values(u, xi, s, d)[0] @ np.asarray(sizes, dtype=np.float64)


def _pattern_form(branch, B, C, s, P, d=None):
    """M of the branch pattern ``branch`` (m,): F = ŷᵀ M ŷ on the cone where the pattern holds (on: g = ½ (u, ξ) H
    (u, ξ)ᵀ with H = [[s²/A, 1 + d s²/A], [·, d + d² s²/A]], A = 1 − d s², the linear layer's form)."""
    m = len(P)
    d = np.zeros(m) if d is None else np.asarray(d, dtype=np.float64)
    M = np.zeros((2 * m, 2 * m))
    for c in range(m):
        ub = np.concatenate([B[c], np.zeros(m)])
        xb = np.concatenate([np.zeros(m), C[c]])
        if branch[c] == ON:
            A = 1.0 - d[c] * s[c] ** 2
            off = 1.0 + d[c] * s[c] ** 2 / A
            M += P[c] * 0.5 * (s[c] ** 2 / A * np.outer(ub, ub) + off * (np.outer(ub, xb) + np.outer(xb, ub))
                               + (d[c] + d[c] ** 2 * s[c] ** 2 / A) * np.outer(xb, xb))
        elif branch[c] == KINK:
            M -= P[c] * np.outer(xb, xb) / (2.0 * s[c] ** 2)
    return M


def _polish(y, B, C, s, P, d=None):
    """The eigenvector of the pattern form nearest to ŷ, iterated while the pattern is kept and F does
    not decrease; ŷ itself if the first eigenvector leaves the pattern."""
    m = len(P)
    for _ in range(10):
        u, xi = _fields(y[None, :], B, C, m)
        br = branch_values(u, xi, s, d)[4][0]
        w, V = np.linalg.eigh(_pattern_form(br, B, C, s, P, d))
        k = int(np.argmax(np.abs(V.T @ y)))
        new = V[:, k] * (1.0 if V[:, k] @ y >= 0 else -1.0)
        un, xn = _fields(new[None, :], B, C, m)
        if not np.array_equal(branch_values(un, xn, s, d)[4][0], br) or \
                readout_growth(new, B, C, s, P, d)[0] < readout_growth(y, B, C, s, P, d)[0] - 1e-14:
            return y
        if np.allclose(new, y, atol=1e-15, rtol=0):
            return new
        y = new
    return y


def _stationary(y, B, C, s, P, rtol=1e-8, d=None) -> bool:
    """Whether ŷ is an eigenvector of its pattern's form (a stationary point of F on the sphere): drops the
    unconverged ascent ends that :func:`_polish` could not move onto one."""
    u, xi = _fields(y[None, :], B, C, len(P))
    M = _pattern_form(branch_values(u, xi, s, d)[4][0], B, C, s, P, d)
    r = M @ y - float(y @ M @ y) * y
    return bool(np.linalg.norm(r) <= rtol * max(np.linalg.norm(M, 2), 1e-300))


@dataclass(frozen=True)
class ReadoutDomain:
    """Local maximisers ŷ*_j = (v̂_j, ŵ_j) of F, best first: ``q`` (2F, the domain function; the integral
    converges iff q[0] < 1), ``readout`` v̂_j (the outliers' readout direction), ``xi`` ξ*_j (class-shared
    preactivation per unit r), ``h`` h*_j (activation per unit r where on), ``codes`` (classes on)."""

    directions: np.ndarray
    q: np.ndarray
    readout: np.ndarray
    xi: np.ndarray
    h: np.ndarray
    codes: tuple

    @property
    def margin(self) -> float:
        """1 − q of the top direction (> 0 inside the domain)."""
        return float(1.0 - self.q[0]) if len(self.q) else 1.0

    def code_strings(self) -> list:
        m = self.readout.shape[1]
        return ["".join("1" if c in code else "0" for c in range(m)) for code in self.codes]

    def to_json(self) -> dict:
        return {"q": self.q.tolist(), "margin": self.margin, "readout_directions": self.readout.tolist(),
                "xi": self.xi.tolist(), "activations": self.h.tolist(), "codes": self.code_strings()}


def _fields_of(t, sigma_a, R, delta, sigma):
    B = sigma_a * np.asarray(t, dtype=np.float64)
    C = sigma * np.asarray(R, dtype=np.float64)
    s = sigma * np.sqrt(np.asarray(delta, dtype=np.float64))
    return B, C, s


def condensate_directions(t, sigma_a, R, delta, sigma, sizes, n_random=256, seed=0, iters=400) -> ReadoutDomain:
    """The maximisers of F on the unit sphere of R^{2m} (module docstring) for the readout layer with
    field ``t``, readout prior ``sigma_a``, input kernel k = R Rᵀ, δ = ``delta``, layer prior ``sigma``."""
    P = np.asarray(sizes, dtype=np.float64)
    m = len(P)
    B, C, s = _fields_of(t, sigma_a, R, delta, sigma)
    rng = np.random.default_rng(seed)
    Y = np.concatenate([rng.standard_normal((n_random, 2 * m)), np.eye(2 * m), -np.eye(2 * m)])
    Y /= np.linalg.norm(Y, axis=1, keepdims=True)
    return _domain(*_ascend(Y, B, C, s, P, iters), B, C, s, P)


def _ascend(Y, B, C, s, P, iters, d=None):
    """Shifted power ascent y ← (I + M(y)/c) y, c >= ||M|| (monotone on a fixed pattern) from the rows of ``Y``:
    (the end points, which of them converged: last step below 1e-13)."""
    m = len(P)
    d = np.zeros(m) if d is None else np.asarray(d, dtype=np.float64)
    A = 1.0 - d * s**2
    bound = float(np.sum(P * (s**2 * np.sum(B * B, 1) / A
                              + np.abs(1.0 + d * s**2 / A) * np.linalg.norm(B, axis=1) * np.linalg.norm(C, axis=1)
                              + np.abs(d + d * d * s**2 / A) * np.sum(C * C, 1) + np.sum(C * C, 1) / s**2))) + 1e-300
    step = np.full(len(Y), np.inf)
    for _ in range(iters):
        u, xi = _fields(Y, B, C, m)
        _, du, dxi, _, _ = branch_values(u, xi, s, d)
        grad = np.concatenate([(P * du) @ B, (P * dxi) @ C], axis=1)  # ∇F = 2 M ŷ on a fixed pattern
        new = Y + grad / (2.0 * bound)
        new /= np.linalg.norm(new, axis=1, keepdims=True)
        step = np.max(np.abs(new - Y), axis=1)
        Y = new
        if np.max(step) < 1e-13:
            break
    return Y, step < 1e-13


def track_directions(previous, t, sigma_a, R, delta, sigma, sizes) -> ReadoutDomain:
    """The maximisers of F near the rows of ``previous`` (earlier maximisers, (k, 2m)): the ascent of
    :func:`condensate_directions` from them, each end polished to the eigenvector of its pattern's form; the
    cheap update between small changes of (t, k, δ). Maximisers that appear away from ``previous`` are not
    found (run :func:`condensate_directions` again for that)."""
    P = np.asarray(sizes, dtype=np.float64)
    B, C, s = _fields_of(t, sigma_a, R, delta, sigma)
    Y = np.atleast_2d(np.asarray(previous, dtype=np.float64))
    return _domain(*_ascend(Y / np.linalg.norm(Y, axis=1, keepdims=True), B, C, s, P, 400), B, C, s, P)


def _domain(Y, converged, B, C, s, P, d=None) -> ReadoutDomain:
    """The :class:`ReadoutDomain` of the ascent ends ``Y`` (rows, unit): polished, deduplicated, best first; an
    end that neither converged nor polishes to a stationary point is dropped."""
    m = len(P)
    F = readout_growth(Y, B, C, s, P, d)
    order = np.argsort(-F)
    dirs = []
    for i in order:
        if any(np.linalg.norm(Y[i] - d) < 1e-3 for d in dirs):
            continue
        y = _polish(Y[i], B, C, s, P, d)
        if readout_growth(y, B, C, s, P, d)[0] <= 0.0 or not (converged[i] or _stationary(y, B, C, s, P, d=d)):
            continue
        if all(np.linalg.norm(y - d) > 1e-6 for d in dirs):
            dirs.append(y)
    D = np.array(dirs).reshape(-1, 2 * m)
    q = 2.0 * readout_growth(D, B, C, s, P, d) if len(D) else np.zeros(0)
    idx = np.argsort(-q)
    D, q = D[idx], q[idx]
    u, xi = _fields(D, B, C, m)
    br = branch_values(u, xi, s, d)[4]
    h = np.where(br == ON, branch_values(u, xi, s, d)[1], 0.0)
    codes = tuple(tuple(int(c) for c in np.flatnonzero(b == ON)) for b in br)
    return ReadoutDomain(D, q, D[:, :m], xi, h, codes)


def _branch_at(y, t, sigma_a, R, delta, sigma, sizes):
    """(P, unit ŷ, branch_values at ŷ): the fields of the direction ``y`` shared by the two gradients below."""
    P = np.asarray(sizes, dtype=np.float64)
    B, C, s = _fields_of(t, sigma_a, R, delta, sigma)
    y = np.asarray(y, dtype=np.float64) / np.linalg.norm(y)
    u, xi = _fields(y[None, :], B, C, len(P))
    return P, y, branch_values(u, xi, s)


def domain_gradients(y, t, sigma_a, R, delta, sigma, sizes):
    """(∂q/∂t (m, m), ∂q/∂R (m, m, lower triangle), ∂q/∂δ (m,)) at the maximiser ``y`` of F (Danskin:
    the derivative of q = 2F(ŷ*) at fixed ŷ*)."""
    P, y, (_, du, dxi, ds, _) = _branch_at(y, t, sigma_a, R, delta, sigma, sizes)
    m = len(P)
    du, dxi, ds = du[0], dxi[0], ds[0]
    v, w = y[:m], y[m:]
    dt = 2.0 * (P * du)[:, None] * sigma_a * v[None, :]
    dR = np.tril(2.0 * (P * dxi)[:, None] * sigma * w[None, :])
    dd = 2.0 * P * ds * sigma / (2.0 * np.sqrt(np.asarray(delta, dtype=np.float64)))
    return dt, dR, dd


def kernel_gradient(y, t, sigma_a, R, delta, sigma, sizes):
    """(∂q/∂k (m, m) symmetric, entries taken as independent, ∂q/∂δ (m,)) at the maximiser ``y`` of F, in the
    coordinates of the input kernel K_{L-1} = E k Eᵀ + D_δ itself (not its Cholesky factor). With
    ξ = σ R w, dk = dR Rᵀ + R dRᵀ and the stationarity ∇_w F = Cᵀ(P ∂g/∂ξ) = q w of the maximiser,
    dξ = ½ σ² dk (P ∂g/∂ξ)/q, so ∂q/∂k = σ² (P ∂g/∂ξ)(P ∂g/∂ξ)ᵀ / q (no inverse of R)."""
    P, _, (g, _, dxi, ds, _) = _branch_at(y, t, sigma_a, R, delta, sigma, sizes)
    q = 2.0 * float(g[0] @ P)
    Pg = P * dxi[0]
    dd = P * ds[0] * sigma / np.sqrt(np.asarray(delta, dtype=np.float64))
    return sigma**2 * np.outer(Pg, Pg) / q, dd


def hidden_domain(B, C, s, d, sizes, previous=None, n_random=256, seed=0) -> ReadoutDomain:
    """The maximisers of F of a hidden layer ℓ < L (THEORY §5: p(h^ℓ) ∝ N(h; 0, σ² K_{ℓ-1}) e^{½ φᵀ K̃_ℓ φ}) on the
    unit sphere of y = (v, w) ∈ R^{2m}: u = B v with B = chol k̃_ℓ, ξ = C w with C = σ R_{ℓ-1} (zeros for ℓ = 1,
    K_0 = I: then w = 0 at every maximiser), s_c = σ √δ_{ℓ-1,c} (σ for ℓ = 1) and the diagonal tilt d = δ̃_ℓ
    (requires A_c = 1 − d_c s_c² > 0), so that on the branch h* = (ξ + s² u)/A > 0

        g_c = u ξ + ½ d ξ² + s² (u + d ξ)²/(2A),

    the readout's g of the module docstring at d = 0 (where B = σ_a t). The layer's integral converges iff
    q = 2 max F < 1. ``previous`` (rows): track from earlier maximisers (each polished to the eigenvector of its
    pattern's form where that keeps the pattern and is stationary, else the ascent of :func:`track_directions`),
    else the full search of :func:`condensate_directions`. The ``readout`` field of the result is the Hubbard–Stratonovich
    direction v̂ here."""
    P = np.asarray(sizes, dtype=np.float64)
    m = len(P)
    B, C = np.asarray(B, dtype=np.float64), np.zeros((m, m)) if C is None else np.asarray(C, dtype=np.float64)
    s, d = np.asarray(s, dtype=np.float64), np.asarray(d, dtype=np.float64)
    if previous is None:
        rng = np.random.default_rng(seed)
        Y = np.concatenate([rng.standard_normal((n_random, 2 * m)), np.eye(2 * m), -np.eye(2 * m)])
        iters = 400
    else:
        Y, iters = np.atleast_2d(np.asarray(previous, dtype=np.float64)), 400
        Y = Y / np.linalg.norm(Y, axis=1, keepdims=True)
        polished = np.array([_polish(y, B, C, s, P, d) for y in Y]).reshape(Y.shape)
        if all(float(p @ y) > 1.0 - 1e-3 and _stationary(p, B, C, s, P, d=d) for p, y in zip(polished, Y)):
            return _domain(polished, np.ones(len(Y), dtype=bool), B, C, s, P, d)  # the same pattern's eigenvectors
    Y = Y / np.linalg.norm(Y, axis=1, keepdims=True)
    return _domain(*_ascend(Y, B, C, s, P, iters, d), B, C, s, P, d)


def hidden_gradients(y, B, C, s, d, sizes, sigma: float, delta_in=None):
    """(∂q/∂k̃ (m, m), ∂q/∂δ̃ (m,), ∂q/∂k_{ℓ-1} (m, m) or None, ∂q/∂δ_{ℓ-1} (m,) or None) at the maximiser ``y`` of
    the hidden layer's F (:func:`hidden_domain`; Danskin: at fixed ŷ, entries of k̃ and k taken as independent).
    With the stationarity Bᵀ(P g_u) = q v̂ and Cᵀ(P g_ξ) = q ŵ of a maximiser (F homogeneous of degree 2),

        ∂q/∂k̃ = (P g_u)(P g_u)ᵀ / q,   ∂q/∂δ̃_c = P_c h*_c²,   ∂q/∂k = σ² (P g_ξ)(P g_ξ)ᵀ / q,
        ∂q/∂δ_c = P_c (∂g/∂s)_c s_c/δ_c,

    g_u = h*, g_ξ = (u + d ξ)/A, ∂g/∂s = s (u + d ξ)²/A² on the branch (−ξ/s², ξ²/s³ on the kink; ∂g/∂d = ½ h*²).
    The input-kernel terms are None for ℓ = 1 (``C`` None, K_0 = I fixed)."""
    P = np.asarray(sizes, dtype=np.float64)
    m = len(P)
    Cz = np.zeros((m, m)) if C is None else np.asarray(C, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64) / np.linalg.norm(y)
    u, xi = _fields(y[None, :], np.asarray(B, dtype=np.float64), Cz, m)
    g, du, dxi, ds, br = (a[0] for a in branch_values(u, xi, np.asarray(s, dtype=np.float64), d))
    q = 2.0 * float(g @ P)
    Pu = P * du
    dkt, ddt = np.outer(Pu, Pu) / q, np.where(br == ON, P * du * du, 0.0)
    if C is None:
        return dkt, ddt, None, None
    Pg = P * dxi
    return dkt, ddt, sigma**2 * np.outer(Pg, Pg) / q, P * ds * np.asarray(s) / np.asarray(delta_in, dtype=np.float64)
