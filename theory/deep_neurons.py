"""Neurons drawn from one layer's tilted single-neuron measure (THEORY §5, §7; :mod:`theory.deep_blocks`).

y = (v, w) from the layer's importance weights (resampled), then for each input μ of class c the
within-class variable z_μ from the 1-D tilted law p(z | y) ∝ N(z; 0, 1) e^{u_c φ + ½ δ̃_c φ²} by inverse
CDF on a grid (trapezoid masses; the sampled law is piecewise uniform with density
:func:`tilted_z_logpdf`), and h_μ = ξ_c + s_c z_μ.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from theory.deep_fields import layer_fields
from theory.deep_tilted import OneD, _phi_builtin, tilted_moments
from theory.domain_errors import OutsideDomain
from theory.nonlinearities import get_nonlinearity

__all__ = ["layer_fields", "tilted_z_grid", "tilted_z_logpdf", "sample_layer_neurons", "neurons_at"]


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


def sample_layer_neurons(oned: OneD, sizes, sigma: float, proposal, neurons: int, rng, *, R_in=None,
                         delta_in=None, t=None, sigma_a=None, kt=None, dt=None, candidates: int = 16,
                         n_grid: int = 801, chunk: int = 2048, rule=None) -> dict:
    """``neurons`` independent neurons of one layer from its tilted single-neuron measure
    (:mod:`theory.deep_blocks`; arguments as :func:`layer_integral`), with preactivations on all P inputs.

    y = (v, w) by sampling-importance-resampling: ``candidates`` × ``neurons`` draws from ``proposal``
    (a Gaussian or a :class:`theory.deep_mixture.MixtureProposal`), log weights λ(y) − log q(y)
    (λ of :func:`log_integrand`), resampled multinomially; with a ``rule`` (:class:`theory.deep_rules.Rule`,
    positive weights) the candidates are instead its nodes mapped through ``proposal`` with their weights, so
    the neurons come from exactly the discrete measure whose moments :func:`layer_integral` returns (the
    truncated bulk of a condensate, :mod:`solvers.deep.complementarity`). Then for each input μ of class c, z_μ
    from the 1-D tilted law by inverse CDF (:func:`tilted_z_grid`) and h_μ = ξ_c + s_c z_μ
    (:func:`neurons_at`). Returns {"h" (neurons × P, classes in consecutive blocks), "a" (neurons × m, readout
    layer: a = σ_a v; else None), "y", "u", "xi", "s", "dtilt", "ess" (Kish effective sample size fraction of
    the candidate weights), "distinct" (fraction of distinct candidates among the resampled neurons)}.
    """
    P = np.asarray(sizes, dtype=np.float64)
    m = len(P)
    B, dtilt, C, s = layer_fields(sizes, sigma, R_in=R_in, delta_in=delta_in, t=t, sigma_a=sigma_a, kt=kt, dt=dt)
    if rule is None:
        y, base = proposal.draw(rng, int(neurons) * int(candidates))
        logw = 0.0
    elif rule.sign is not None:
        raise ValueError("sample_layer_neurons: a rule with negative weights cannot be resampled")
    else:
        y, logw, base = proposal.map(rule)
    u = y[:, :m] @ B.T
    xi = np.zeros_like(u) if C is None else y[:, m:] @ C.T
    zeta = tilted_moments(oned, xi, u, s, dtilt)[0]
    lw = logw + base + zeta @ P
    if not np.all(np.isfinite(lw)):
        raise OutsideDomain("non-finite importance weight while sampling a layer's neurons")
    w = np.exp(lw - lw.max())
    ess = float(w.sum() ** 2 / np.sum(w * w) / len(w))
    idx = rng.choice(len(w), size=int(neurons), p=w / w.sum())
    out = neurons_at(oned, sizes, y[idx], rng, fields=(B, dtilt, C, s), n_grid=n_grid, chunk=chunk)
    out["a"] = sigma_a * y[idx, :m] if t is not None else None
    return {**out, "ess": ess, "distinct": float(len(np.unique(idx)) / len(idx))}


def neurons_at(oned: OneD, sizes, y, rng, *, fields, n_grid: int = 801, chunk: int = 2048) -> dict:
    """Neurons of one layer at given layer variables ``y`` (rows (v, w), or v for layer 1): for each input μ of
    class c, z_μ from the 1-D tilted law p(z | y) by inverse CDF (:func:`tilted_z_grid`) and h_μ = ξ_c + s_c z_μ,
    with u = B v, ξ = C w and ``fields`` = (B, δ̃, C, s) of :func:`theory.deep_fields.layer_fields`. Returns
    {"h" (n × P, classes in consecutive blocks), "y", "u", "xi", "s", "dtilt"}."""
    B, dtilt, C, s = fields
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    m = len(sizes)
    u = y[:, :m] @ B.T
    xi = np.zeros_like(u) if C is None else y[:, m:] @ C.T
    labels = np.repeat(np.arange(m), np.asarray(sizes, dtype=np.int64))
    n = len(y)
    H = np.empty((n, len(labels)))
    for c in range(m):  # m classes; inside: vectorised over neurons (in chunks) and inputs
        cols = np.flatnonzero(labels == c)
        for lo in range(0, n, chunk):
            sl = slice(lo, lo + chunk)
            grid, cdf = tilted_z_grid(oned, xi[sl, c], u[sl, c], float(s[c]), float(dtilt[c]), n_grid)
            z = np.empty((len(grid), len(cols)))
            _inverse_cdf(cdf, grid, rng.random(z.shape), z)
            H[sl, cols] = xi[sl, c][:, None] + s[c] * z
    return {"h": H, "y": y, "u": u, "xi": xi, "s": s, "dtilt": dtilt}
