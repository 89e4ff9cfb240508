"""Tables of the single-neuron cumulant function ψ(g) = log E e^{gφ(h)}.

The m-dimensional integrals over the readout a evaluate ψ, ψ', ψ'' at every
node, so ψ is tabulated once per (φ, σ_1) with its first three derivatives
and interpolated in compiled code. The grid is uniform in x with
g = s·sinh(x), s = 4/σ_1: steps of 1/(64σ_1) near g = 0, where ψ has its
features, growing geometrically to |g| = 10⁶/σ_1 (closed forms) or the
quadrature's reach. The heavy tails of p(a) near the domain boundary, where
|g| is huge, are therefore still inside the table. In x:

* ψ and ψ' use quintic Hermite interpolation (values and the first two
  x-derivatives, obtained from the g-derivatives by the chain rule; error
  O(Δx⁶));
* ψ'' uses cubic Hermite interpolation (error O(Δx⁴)).

Beyond the table ψ is continued by its second-order Taylor polynomial in g
from the end node, the exact asymptotic form (linear for bounded φ,
quadratic for linearly growing φ).

Nodes come from the sympy closed form where one exists
(:func:`theory.derivation.derive_psi`). Otherwise they come from
mode-centred Gauss–Hermite quadrature of the tilted law N(h; 0, σ²) e^{gφ(h)},
scaled by the local curvature so that large |g| costs no more nodes.
Composite Gauss–Legendre split at the kinks replaces it when φ has kinks
(Max, Abs, Piecewise) or the tilted law is multimodal. Each table reports its
own error: the largest difference between two quadrature orders
(``quadrature_error``) and the largest interpolation error at interval
midpoints against direct evaluation (``interpolation_error``), both relative
to 1 + |value|.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
import math

import numba
import numpy as np

from theory.disk_cache import cache_key, read_arrays, source_digest, write_arrays
from theory.nonlinearities import Nonlinearity, get_nonlinearity
from theory.special import relu_psi_tail_vec
from theory.spec import SpecError

__all__ = ["PsiTable", "psi_table", "psi_interp", "gauss_hermite_psi", "composite_legendre_psi",
           "closed_form_psi"]

_DX = 1.0 / 256.0  # grid step in x, g = s sinh(x)
_SCALE = 4.0  # s·σ_1
_GMAX_CLOSED = 1e6  # reach (× 1/σ_1) of closed-form tables
_GMAX_QUADRATURE = 1e4  # reach of quadrature tables
_GMAX_WIDE = 64.0  # reach when φ grows linearly and the tilted law is multimodal


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


@numba.njit(cache=True, inline="always")
def _asinh(x):
    """asinh(x) = sign(x) log(|x| + √(x² + 1)) from the log and sqrt intrinsics (libm's asinh costs
    several times more in the compiled integrand; the two agree to a few ulp, which moves the
    interpolated ψ by ~1e-15 relative, far below the table's error)."""
    ax = abs(x)
    return math.copysign(math.log(ax + math.sqrt(ax * ax + 1.0)), x)


@numba.njit(cache=True)
def psi_interp(g, s, dx, tab):
    """(ψ(g), ψ'(g), ψ''(g)) from a sinh-grid table.

    Columns of ``tab``: g_k, ψ, ψ', ψ'', ψ''', dg/dx, d²g/dx² at x_k = −x_max + k·dx.
    """
    n = tab.shape[0]
    x = _asinh(g / s)
    pos = (x - _asinh(tab[0, 0] / s)) / dx
    if pos <= 0.0 or pos >= n - 1.0:
        j = 0 if pos <= 0.0 else n - 1
        d = g - tab[j, 0]
        return (tab[j, 1] + d * (tab[j, 2] + 0.5 * d * tab[j, 3]), tab[j, 2] + d * tab[j, 3], tab[j, 3])
    i = int(pos)
    if i > n - 2:
        i = n - 2
    u = pos - i
    a = tab[i]
    b = tab[i + 1]
    p0 = _quintic(u, dx, a[1], a[2] * a[5], a[3] * a[5] * a[5] + a[2] * a[6],
                  b[1], b[2] * b[5], b[3] * b[5] * b[5] + b[2] * b[6])
    p1 = _quintic(u, dx, a[2], a[3] * a[5], a[4] * a[5] * a[5] + a[3] * a[6],
                  b[2], b[3] * b[5], b[4] * b[5] * b[5] + b[3] * b[6])
    p2 = _cubic(u, dx, a[3], a[4] * a[5], b[3], b[4] * b[5])
    return p0, p1, p2


@numba.njit(cache=True)
def _psi_interp_vec(gs, s, dx, tab, out):
    for k in range(gs.shape[0]):
        r = psi_interp(gs[k], s, dx, tab)
        out[k, 0] = r[0]
        out[k, 1] = r[1]
        out[k, 2] = r[2]


@lru_cache(maxsize=16)
def _mpmath_functions(name: str):
    import mpmath as mp

    def w(x):
        return mp.mpf(0.5) / (mp.mpf(0.5) + mp.exp(x * x / 2) * mp.ncdf(x))

    specials = {"ReluTailWeight": w, "ReluLogTailWeight": lambda x: mp.log(w(x))}
    import sympy as sp
    from theory.derivation import G, SIGMA, derive_psi
    deriv = derive_psi(get_nonlinearity(name))
    return [sp.lambdify((G, SIGMA), e, modules=[specials, "mpmath"]) for e in deriv.derivatives]


def _mpmath_psi(nl: Nonlinearity, sigma: float, gs: np.ndarray) -> np.ndarray:
    """Closed-form ψ^(k), k = 0..3, at ``gs`` in 40-digit mpmath arithmetic (slow, exact)."""
    import mpmath as mp

    funcs = _mpmath_functions(nl.name)
    out = np.empty((gs.size, 4))
    with mp.workdps(40):
        for i, g in enumerate(gs):
            for k, f in enumerate(funcs):
                out[i, k] = float(f(mp.mpf(float(g)), mp.mpf(sigma)))
    return out


def closed_form_psi(nl: Nonlinearity, sigma: float, gs: np.ndarray) -> np.ndarray | None:
    """ψ^(k), k = 0..3, at ``gs`` from the sympy closed form, or None.

    The compiled expressions are checked against 40-digit mpmath at nodes
    probed outwards from g = 0; beyond the first |g| where they lose
    precision (cancellations at large |g|, e.g. ReLU's third derivative as
    g → −∞) the nodes are recomputed in mpmath.
    """
    from theory.codegen import compile_to_numba
    from theory.derivation import G, SIGMA, derive_psi
    deriv = derive_psi(nl)
    if deriv is None:
        return None
    ident = nl.name if nl.name.isidentifier() else "user"
    gen = compile_to_numba(f"psi_{ident}", deriv.derivatives, [G, SIGMA])
    gs = np.ascontiguousarray(gs, dtype=np.float64)
    out = np.empty((gs.size, 4))
    gen.vector(gs, float(sigma), out)
    if deriv.relu_tail:
        relu_psi_tail_vec(gs, float(sigma), out)
    order = np.argsort(np.abs(gs))
    for j in range(0, gs.size, max(1, gs.size // 48)):
        idx = order[j:j + 1]
        ref = _mpmath_psi(nl, sigma, gs[idx])
        if np.max(np.abs(ref - out[idx]) / (1.0 + np.abs(ref))) > 1e-11:
            redo = np.abs(gs) >= 0.5 * abs(gs[idx[0]])
            out[redo] = _mpmath_psi(nl, sigma, gs[redo])
            break
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
                           nodes: int = 12, mode=None) -> np.ndarray:
    """(ψ, ψ', ψ'', ψ''') by composite Gauss–Legendre with breakpoints at φ's kinks.

    For φ with kinks (ReLU written as Max(0, h), |h|, leaky ReLU, ...) the
    window ĥ ± 12σ (all of |h| <= H(g) when the tilted law is multimodal)
    is cut into panels of width <= σ/(3·refine), plus a break at every kink.
    """
    gs = np.asarray(gs, dtype=np.float64)
    hhat, _, multimodal = _tilted_mode(nl, sigma, gs) if mode is None else mode
    half = np.where(multimodal, _window(nl, sigma, gs), 12.0 * sigma)
    centre = np.where(multimodal, 0.0, hhat)
    lo, hi = centre - half, centre + half
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
    """ψ and derivatives on the grid g_k = s·sinh(x_k) (see the module docstring)."""

    nonlinearity: str
    sigma: float
    scale: float  # s
    dx: float
    values: np.ndarray  # (n, 7): g, ψ, ψ', ψ'', ψ''', dg/dx, d²g/dx²
    method: str
    quadrature_error: float
    interpolation_error: float

    @property
    def gmax(self) -> float:
        return float(self.values[-1, 0])

    @property
    def error_estimate(self) -> float:
        """Bound on the error of interpolated ψ, ψ', ψ'' relative to 1 + |value|."""
        return self.quadrature_error + self.interpolation_error

    def __call__(self, g):
        """(ψ, ψ', ψ'') at ``g`` (array), as the compiled integrators see them."""
        gv = np.ascontiguousarray(np.asarray(g, dtype=np.float64).ravel())
        out = np.empty((gv.size, 3))
        _psi_interp_vec(gv, self.scale, self.dx, self.values, out)
        shape = np.shape(g)
        return out[:, 0].reshape(shape), out[:, 1].reshape(shape), out[:, 2].reshape(shape)


def _exact_nodes(nl, sigma, gs):
    closed = closed_form_psi(nl, sigma, gs)
    if closed is not None:
        return closed, "closed-form", 0.0
    mode = _tilted_mode(nl, sigma, gs)
    if nl.kinks or mode[2].any():
        coarse = composite_legendre_psi(nl, sigma, gs, 1, 12, mode)
        fine = composite_legendre_psi(nl, sigma, gs, 2, 12, mode)
        method = "composite gauss-legendre (kinks or multimodal tilt)"
    else:
        coarse = gauss_hermite_psi(nl, sigma, gs, 64, mode)
        fine = gauss_hermite_psi(nl, sigma, gs, 96, mode)
        method = "gauss-hermite"
    scale = 1.0 + np.abs(fine)
    qerr = float(np.max(np.abs(fine[:, :3] - coarse[:, :3]) / scale[:, :3]))
    return fine, method, qerr


def _reach(nl: Nonlinearity, sigma: float) -> float:
    """Largest |g| the table covers for this φ."""
    from theory.derivation import derive_psi
    if derive_psi(nl) is not None:
        return _GMAX_CLOSED / sigma
    reach = _GMAX_QUADRATURE / sigma
    if nl.linear_growth:
        probe = np.array([-_GMAX_WIDE, -8.0, 8.0, _GMAX_WIDE]) / sigma
        if _tilted_mode(nl, sigma, probe)[2].any():
            reach = _GMAX_WIDE / sigma
        # stay where φ evaluates finitely over the whole h-window (log(1 + exp(h)) overflows)
        while reach > 16.0 / sigma:
            half = float(_window(nl, sigma, np.array([reach]))[0])
            with np.errstate(all="ignore"):
                if np.all(np.isfinite(nl(np.linspace(-half, half, 4001)))):
                    break
            reach /= 2.0
    return reach


#: the modules whose source decides a ψ table (its disk-cache key)
_DERIVED_FROM = ("psi", "derivation", "special", "nonlinearities", "codegen")


@lru_cache(maxsize=32)
def psi_table(nonlinearity: str, sigma: float) -> PsiTable:
    """Cached ψ table for φ = ``nonlinearity`` and σ_1 = ``sigma`` (in memory, and on disk together
    with its quadrature and interpolation errors, so a warm start skips the derivation)."""
    sigma = float(sigma)
    key = cache_key("psi", nonlinearity, sigma, source_digest(*_DERIVED_FROM))
    stored = read_arrays("psi", key)
    if stored is None:
        table = _build_psi_table(nonlinearity, sigma)
        write_arrays("psi", key, values=table.values, scale=table.scale, dx=table.dx, method=table.method,
                     quadrature_error=table.quadrature_error, interpolation_error=table.interpolation_error)
        return table
    return PsiTable(nonlinearity, sigma, float(stored["scale"]), float(stored["dx"]),
                    np.ascontiguousarray(stored["values"]), str(stored["method"]),
                    float(stored["quadrature_error"]), float(stored["interpolation_error"]))


def _build_psi_table(nonlinearity: str, sigma: float) -> PsiTable:
    """ψ at nodes g = s sinh(x), x on a uniform grid, with the error of the node values and of the
    interpolation between them (against direct evaluation at every 8th midpoint)."""
    nl = get_nonlinearity(nonlinearity)
    sigma = float(sigma)
    s = _SCALE / sigma
    xmax = math.asinh(_reach(nl, sigma) / s)
    n = 2 * int(math.ceil(xmax / _DX)) + 1
    x = np.linspace(-xmax, xmax, n)
    dx = float(x[1] - x[0])
    gs = s * np.sinh(x)
    values, method, qerr = _exact_nodes(nl, sigma, gs)
    if not np.all(np.isfinite(values)):
        raise SpecError(f"nonlinearity {nonlinearity!r}: ψ(g) = log E exp(g φ(h)) is not finite for some "
                        f"|g| <= {gs[-1]:.3g} (the single-neuron measure cannot be normalised)")
    tab = np.ascontiguousarray(np.column_stack([gs, values, s * np.cosh(x), gs]))
    table = PsiTable(nonlinearity, sigma, s, dx, tab, method, qerr, 0.0)
    # Interpolation error at the midpoints of every 8th interval, against direct evaluation.
    mids = s * np.sinh(x[:-1:8] + 0.5 * dx)
    direct, _, _ = _exact_nodes(nl, sigma, mids)
    interp = np.column_stack(table(mids))
    ierr = float(np.max(np.abs(interp - direct[:, :3]) / (1.0 + np.abs(direct[:, :3]))))
    object.__setattr__(table, "interpolation_error", ierr)
    return table
