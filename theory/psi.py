"""Tables of the single-neuron cumulant function ψ(g) = log E e^{gφ(h)}.

The m-dimensional integrals over the readout a evaluate ψ, ψ', ψ'' at every
node, so ψ is tabulated once per (φ, σ_1, range) on a uniform grid in g with
its first three derivatives, and interpolated in compiled code:

* ψ and ψ' by quintic Hermite interpolation (values, first and second
  derivatives at both nodes; error O(step⁶));
* ψ'' by cubic Hermite interpolation (error O(step⁴)).

Outside the table, ψ is continued by its second-order Taylor polynomial from
the end node, which is the exact asymptotic form (linear for bounded φ,
quadratic for linearly growing φ); the integrators make the table wide enough
that only negligible weight lies outside.

Nodes come from the sympy closed form where one exists
(:func:`theory.derivation.derive_psi`), otherwise from mode-centred
Gauss–Hermite quadrature of the tilted law N(h; 0, σ²) e^{gφ(h)} (composite
Gauss–Legendre split at the kinks when φ has any, e.g. Max or Abs): the rule is
centred at the mode ĥ(g) and scaled by the local curvature, so large |g| costs
no more nodes. Each table reports its own error: the largest difference
between the 64- and 96-node rules (``quadrature_error``) and the largest
interpolation error at interval midpoints against direct evaluation
(``interpolation_error``).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
import math

import numba
import numpy as np

from .codegen import compile_to_numba
from .derivation import G, SIGMA, derive_psi
from .nonlinearities import Nonlinearity, get_nonlinearity
from .spec import SpecError

__all__ = ["PsiTable", "psi_table", "psi_interp", "gauss_hermite_psi", "composite_legendre_psi",
           "closed_form_psi"]

_MIN_GMAX = 16.0
_MAX_NODES = 1 << 14


@numba.njit(cache=True, inline="always")
def _quintic(u, h, f0, d0, s0, f1, d1, s1):
    u2 = u * u
    u3 = u2 * u
    u4 = u3 * u
    u5 = u4 * u
    h0 = 1.0 - 10.0 * u3 + 15.0 * u4 - 6.0 * u5
    h1 = u - 6.0 * u3 + 8.0 * u4 - 3.0 * u5
    h2 = 0.5 * u2 - 1.5 * u3 + 1.5 * u4 - 0.5 * u5
    h3 = 0.5 * u3 - u4 + 0.5 * u5
    h4 = -4.0 * u3 + 7.0 * u4 - 3.0 * u5
    h5 = 10.0 * u3 - 15.0 * u4 + 6.0 * u5
    return h0 * f0 + h * (h1 * d0 + h4 * d1) + h * h * (h2 * s0 + h3 * s1) + h5 * f1


@numba.njit(cache=True, inline="always")
def _cubic(u, h, f0, d0, f1, d1):
    u2 = u * u
    u3 = u2 * u
    return ((2.0 * u3 - 3.0 * u2 + 1.0) * f0 + (u3 - 2.0 * u2 + u) * h * d0
            + (-2.0 * u3 + 3.0 * u2) * f1 + (u3 - u2) * h * d1)


@numba.njit(cache=True)
def psi_interp(g, g0, step, tab):
    """(ψ(g), ψ'(g), ψ''(g)) from a table with columns ψ, ψ', ψ'', ψ'''."""
    n = tab.shape[0]
    x = (g - g0) / step
    if x <= 0.0 or x >= n - 1.0:
        j = 0 if x <= 0.0 else n - 1
        d = g - (g0 + j * step)
        return (tab[j, 0] + d * (tab[j, 1] + 0.5 * d * tab[j, 2]), tab[j, 1] + d * tab[j, 2], tab[j, 2])
    i = int(x)
    if i > n - 2:
        i = n - 2
    u = x - i
    p0 = _quintic(u, step, tab[i, 0], tab[i, 1], tab[i, 2], tab[i + 1, 0], tab[i + 1, 1], tab[i + 1, 2])
    p1 = _quintic(u, step, tab[i, 1], tab[i, 2], tab[i, 3], tab[i + 1, 1], tab[i + 1, 2], tab[i + 1, 3])
    p2 = _cubic(u, step, tab[i, 2], tab[i, 3], tab[i + 1, 2], tab[i + 1, 3])
    return p0, p1, p2


@numba.njit(cache=True)
def _psi_interp_vec(gs, g0, step, tab, out):
    for k in range(gs.shape[0]):
        r = psi_interp(gs[k], g0, step, tab)
        out[k, 0] = r[0]
        out[k, 1] = r[1]
        out[k, 2] = r[2]


def closed_form_psi(nl: Nonlinearity, sigma: float, gs: np.ndarray) -> np.ndarray | None:
    """(ψ, ψ', ψ'', ψ''') at ``gs`` from the sympy closed form, or None."""
    deriv = derive_psi(nl)
    if deriv is None:
        return None
    ident = nl.name if nl.name.isidentifier() else "user"
    gen = compile_to_numba(f"psi_{ident}", deriv.derivatives, [G, SIGMA])
    out = np.empty((gs.size, 4))
    gen.vector(np.ascontiguousarray(gs, dtype=np.float64), float(sigma), out)
    return out


def _log_tilt(nl: Nonlinearity, sigma: float, g: np.ndarray, hs: np.ndarray) -> np.ndarray:
    phi = nl(hs)
    if not np.all(np.isfinite(phi)):
        bad = hs[~np.isfinite(phi)].ravel()[0]
        raise SpecError(f"nonlinearity {nl.name!r} gives NaN or inf at h = {bad:g}; it must be finite for all h")
    return -0.5 * (hs / sigma) ** 2 + g * phi


def _window(nl: Nonlinearity, sigma: float, gs: np.ndarray) -> np.ndarray:
    """Half-width H(g) of an h-window holding all tilted mass: 12σ + 1.5σ²|g|α."""
    slope = max(abs(nl.slope_pos), abs(nl.slope_neg))
    return 12.0 * sigma + 1.5 * sigma**2 * np.abs(gs) * slope


def _tilted_mode(nl: Nonlinearity, sigma: float, gs: np.ndarray):
    """Mode ĥ(g), curvature scale s(g) and a multimodality flag of ℓ(h) = −h²/2σ² + gφ(h)."""
    half = _window(nl, sigma, gs)
    u = np.linspace(-1.0, 1.0, 401)
    hs = half[:, None] * u[None, :]
    ell = _log_tilt(nl, sigma, gs[:, None], hs)
    j = np.argmax(ell, axis=1)
    rows = np.arange(gs.size)
    # A second local maximum within 30 nats of the top makes the law multimodal.
    peak = (ell[:, 1:-1] > ell[:, :-2]) & (ell[:, 1:-1] >= ell[:, 2:]) & (ell[:, 1:-1] > ell[rows, j][:, None] - 30.0)
    multimodal = peak.sum(axis=1) > 1
    hhat = hs[rows, j]
    delta = half * (u[1] - u[0])
    for _ in range(30):  # successive parabolic refinement inside a shrinking bracket
        pts = hhat[:, None] + delta[:, None] * np.array([-1.0, 0.0, 1.0])[None, :]
        e = _log_tilt(nl, sigma, gs[:, None], pts)
        curv = e[:, 0] - 2.0 * e[:, 1] + e[:, 2]
        with np.errstate(all="ignore"):
            shift = np.where(curv < 0, 0.5 * delta * (e[:, 0] - e[:, 2]) / curv, 0.0)
        shift = np.clip(np.nan_to_num(shift), -delta, delta)
        hhat = hhat + shift
        delta = np.maximum(0.5 * delta, 1e-7 * sigma)
    d = 0.05 * sigma
    pts = hhat[:, None] + d * np.array([-1.0, 0.0, 1.0])[None, :]
    e = _log_tilt(nl, sigma, gs[:, None], pts)
    curv = (e[:, 0] - 2.0 * e[:, 1] + e[:, 2]) / d**2
    with np.errstate(all="ignore"):
        scale = np.where(curv < -1e-12, 1.0 / np.sqrt(-curv), sigma)
    return hhat, np.clip(scale, 1e-3 * sigma, 2.0 * sigma), multimodal


def gauss_hermite_psi(nl: Nonlinearity, sigma: float, gs: np.ndarray, n_nodes: int = 64,
                      mode=None) -> np.ndarray:
    """(ψ, ψ', ψ'', ψ''') at ``gs`` by mode-centred Gauss–Hermite quadrature.

    ψ(g) = log ∫ N(h; 0, σ²) e^{gφ(h)} dh with h = ĥ + √2 s x, and the
    cumulants of φ under the tilted law from the same nodes.
    """
    gs = np.asarray(gs, dtype=np.float64)
    hhat, scale, _ = _tilted_mode(nl, sigma, gs) if mode is None else mode
    x, w = np.polynomial.hermite.hermgauss(n_nodes)
    hs = hhat[:, None] + math.sqrt(2.0) * scale[:, None] * x[None, :]
    ell = _log_tilt(nl, sigma, gs[:, None], hs)
    ell0 = _log_tilt(nl, sigma, gs, hhat)
    logq = ell - ell0[:, None] + x[None, :] ** 2 + np.log(w)[None, :]
    top = logq.max(axis=1, keepdims=True)
    q = np.exp(logq - top)
    mass = q.sum(axis=1)
    psi = ell0 + top[:, 0] + np.log(mass) + np.log(math.sqrt(2.0) * scale) - 0.5 * math.log(2 * math.pi * sigma**2)
    return _cumulant_columns(nl, psi, q / mass[:, None], hs)


def composite_legendre_psi(nl: Nonlinearity, sigma: float, gs: np.ndarray, refine: int = 1,
                           nodes: int = 12) -> np.ndarray:
    """(ψ, ψ', ψ'', ψ''') by composite Gauss–Legendre with breakpoints at φ's kinks.

    For φ with kinks (ReLU written as Max(0, h), |h|, leaky ReLU, ...) or a
    multimodal tilted law, the whole window |h| <= H(g) is cut into panels of
    width <= σ/(3·refine), plus one break at every kink.
    """
    gs = np.asarray(gs, dtype=np.float64)
    half = _window(nl, sigma, gs)
    lo, hi = -half, half
    panels = int(np.ceil(np.max(2.0 * half) / (sigma / (3.0 * refine))))
    breaks = lo[:, None] + (hi - lo)[:, None] * np.linspace(0.0, 1.0, panels + 1)[None, :]
    if nl.kinks:
        kinks = np.clip(np.asarray(nl.kinks)[None, :], lo[:, None], hi[:, None])
        breaks = np.sort(np.concatenate([breaks, kinks], axis=1), axis=1)
    x, w = np.polynomial.legendre.leggauss(nodes)
    a, b = breaks[:, :-1], breaks[:, 1:]
    half = 0.5 * (b - a)
    hs = ((0.5 * (a + b))[:, :, None] + half[:, :, None] * x[None, None, :]).reshape(gs.size, -1)
    ws = (half[:, :, None] * w[None, None, :]).reshape(gs.size, -1)
    ell = _log_tilt(nl, sigma, gs[:, None], hs)
    with np.errstate(divide="ignore"):
        logq = ell + np.log(ws)
    top = logq.max(axis=1, keepdims=True)
    q = np.exp(logq - top)
    mass = q.sum(axis=1)
    psi = top[:, 0] + np.log(mass) - 0.5 * math.log(2 * math.pi * sigma**2)
    return _cumulant_columns(nl, psi, q / mass[:, None], hs)


def _cumulant_columns(nl, psi, p, hs):
    """Columns ψ, κ1, κ2, κ3 of φ under normalised node weights p."""
    phi = nl(hs)
    m1 = np.sum(p * phi, axis=1)
    c = phi - m1[:, None]
    m2 = np.sum(p * c * c, axis=1)
    m3 = np.sum(p * c * c * c, axis=1)
    return np.column_stack([psi, m1, m2, m3])


@dataclass(frozen=True, eq=False)
class PsiTable:
    """ψ and derivatives on a uniform grid g0 + k·step, k = 0..n−1."""

    nonlinearity: str
    sigma: float
    g0: float
    step: float
    values: np.ndarray  # (n, 4): ψ, ψ', ψ'', ψ'''
    method: str  # "closed-form" or "gauss-hermite"
    quadrature_error: float
    interpolation_error: float

    @property
    def gmax(self) -> float:
        return -self.g0

    @property
    def error_estimate(self) -> float:
        """Bound on the absolute error of interpolated ψ, ψ', ψ'' inside the table."""
        return self.quadrature_error + self.interpolation_error

    def __call__(self, g):
        """(ψ, ψ', ψ'') at ``g`` (array), as the compiled integrators see them."""
        gv = np.ascontiguousarray(np.asarray(g, dtype=np.float64).ravel())
        out = np.empty((gv.size, 3))
        _psi_interp_vec(gv, self.g0, self.step, self.values, out)
        shape = np.shape(g)
        return out[:, 0].reshape(shape), out[:, 1].reshape(shape), out[:, 2].reshape(shape)


def _exact_nodes(nl, sigma, gs):
    closed = closed_form_psi(nl, sigma, gs)
    if closed is not None:
        return closed, "closed-form", 0.0
    mode = _tilted_mode(nl, sigma, gs)
    if nl.kinks or mode[2].any():
        coarse = composite_legendre_psi(nl, sigma, gs, 1)
        fine = composite_legendre_psi(nl, sigma, gs, 2)
        method = "composite gauss-legendre (kinks or multimodal tilt)"
    else:
        coarse = gauss_hermite_psi(nl, sigma, gs, 64, mode)
        fine = gauss_hermite_psi(nl, sigma, gs, 96, mode)
        method = "gauss-hermite"
    scale = 1.0 + np.abs(fine)
    qerr = float(np.max(np.abs(fine[:, :3] - coarse[:, :3]) / scale[:, :3]))
    return fine, method, qerr


@lru_cache(maxsize=32)
def _build(name: str, sigma: float, gmax: float) -> PsiTable:
    nl = get_nonlinearity(name)
    n = int(min(_MAX_NODES, max(2049, round(2 * gmax * 64)))) | 1
    gs = np.linspace(-gmax, gmax, n)
    step = gs[1] - gs[0]
    values, method, qerr = _exact_nodes(nl, sigma, gs)
    if not np.all(np.isfinite(values)):
        raise SpecError(f"nonlinearity {name!r}: ψ(g) = log E exp(g φ(h)) is not finite on |g| <= {gmax:g} "
                        "(the single-neuron measure cannot be normalised)")
    values = np.ascontiguousarray(values)
    table = PsiTable(name, sigma, float(gs[0]), float(step), values, method, qerr, 0.0)
    # Interpolation error at midpoints of every 8th interval, against direct evaluation.
    mids = gs[:-1:8] + 0.5 * step
    direct, _, _ = _exact_nodes(nl, sigma, mids)
    interp = np.column_stack(table(mids))
    ierr = float(np.max(np.abs(interp - direct[:, :3]) / (1.0 + np.abs(direct[:, :3]))))
    object.__setattr__(table, "interpolation_error", ierr)
    return table


def psi_table(nonlinearity: str, sigma: float, gmax: float = _MIN_GMAX) -> PsiTable:
    """Cached ψ table covering |g| <= gmax (rounded up to a power of two)."""
    if not (math.isfinite(gmax) and gmax > 0):
        raise ValueError(f"gmax must be finite and > 0 (got {gmax})")
    g = _MIN_GMAX
    while g < gmax:
        g *= 2.0
    return _build(nonlinearity, float(sigma), g)
