"""Where to put integration nodes for the readout law p_t(a) ∝ e^{S(a)}.

    S(a) = −|a|²/(2σ_a²) + Σ_c P_c ψ(t_c·a)

p_t(a) can be multimodal (sigmoids: one mode per code) and, for linearly
growing φ near the domain boundary, carry a long "needle" along a marginal
direction â* (the smoothed ReLU condensate of THEORY §4: length
~ σ_a/√(1 − q), width O(1)). No single Gaussian map resolves all of that, so
nodes are placed by a mixture of Gaussian components N_j = N(μ_j, L_j L_jᵀ):

* ``moments``: mean and covariance of the bulk of p_t (without the needle
  shares below) at the previous iterate;
* ``mode``: instead of ``moments``, the Laplace approximation at every local
  maximum of S within 25 nats of the highest (multi-start Newton ascent,
  :func:`find_modes`, from the start set of the large-P maximiser, whose
  radii follow the fixed point a = σ_a² Σ_c P_c ψ'(t_c·a) t_c, plus the
  previous modes and the bulk axes: :func:`search_modes`), when the modes
  are sharp and well separated (every pair more than 6 standard deviations
  apart, each narrower than the bulk): the large-P regime of THEORY §4.
  Flat-topped or overlapping bumps are better served by the single moments
  Gaussian; a mode that Gaussian does not resolve (:func:`covers`: far from
  it, or much narrower) gets its own Laplace component next to it;
* :class:`Needle`: for linearly growing φ, one per marginal direction â*
  with q >= 0.95, with the asymptotic transverse covariance of the cone
  around â*, (σ_a⁻² I − σ_1² Σ_c P_c α_c² t_c t_cᵀ)⁻¹, whose eigenvalue
  along â* is floored at the exact marginal precision (1 − q)/σ_a².

The integrand is split exactly: a smooth step s_n(a) = Φ_N((a·â_n − R_n)/w_n)
along each needle (R_n five bulk standard deviations out, w_n half of one)
gives the needle share β_n = s_n Π_{k<n}(1 − s_k) and leaves 1 − Σ_n β_n to
the bulk, which the mixture components share by the balance heuristic
N_j / Σ_i N_i. Both are partitions of unity, so the total is exact for any
components; they only decide the accuracy per node. The tensor rules
integrate a needle's share on a trapezoid grid in log-radius along â* times
Gauss–Hermite across it, fading out smoothly at ``CONDENSATE_RADIUS`` step
widths (the mass beyond is the condensate, :mod:`solvers.finite_p.dual`), so the
tail costs a few thousand nodes. Across the needle each slice a·â = r gets its own
Gauss–Hermite map, the Laplace fit of e^{S} on that slice (:meth:`Needle.slices`): the
slice law moves from the edge of the bulk near the step to the asymptotic cone far out,
which one fixed Gaussian resolves only at a power-law rate in the order. Cubature and
QMC use the needle's Gaussian instead. Components that nearly duplicate an earlier
one (symmetric KL < 0.25) are dropped. Covariances are inflated by 1.25 so
that integrand/weight ratios decay in every direction.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import math

import numpy as np
from scipy import special


from solvers.finite_p.problem import ClassProblem
from solvers.mode_search import ascend, distinct
from solvers.rules import gauss_hermite_nodes

__all__ = ["NEEDLE_MIN_Q", "Component", "Needle", "Placement", "find_modes", "search_modes", "mode_starts", "covers",
           "placement_covers", "laplace_component", "build_placement", "log_tilt_derivatives", "INFLATION"]

INFLATION = 1.25
#: Marginal directions with q(t) at least this get a needle (and, beyond it, carry the condensate)
NEEDLE_MIN_Q = 0.95
_MODE_WINDOW = 25.0
#: Needle rules fade out (a Φ_N step of CUTOFF_WIDTH widths) this many step widths beyond the
#: step; the mass beyond is the condensate.
CONDENSATE_RADIUS = 256.0
CUTOFF_WIDTH = 16.0


@dataclass(frozen=True)
class Component:
    mu: np.ndarray
    L: np.ndarray  # lower Cholesky factor of the covariance
    kind: str

    @classmethod
    def from_cov(cls, mu, cov, kind, floor=1e-12):
        cov = 0.5 * (cov + cov.T)
        w, V = np.linalg.eigh(cov)
        w = np.maximum(w, floor)
        return cls(np.asarray(mu, dtype=np.float64).copy(), np.linalg.cholesky((V * w) @ V.T), kind)

    @property
    def cov(self) -> np.ndarray:
        return self.L @ self.L.T

    def log_density(self, A: np.ndarray) -> np.ndarray:
        m = len(self.mu)
        Z = np.linalg.solve(self.L, (A - self.mu).T)
        return (-0.5 * np.sum(Z * Z, axis=0) - float(np.sum(np.log(np.diag(self.L))))
                - 0.5 * m * math.log(2 * math.pi))


@dataclass(frozen=True)
class Needle:
    """The heavy tail of p(a) along a marginal direction â (see the module docstring)."""

    direction: np.ndarray  # â, unit vector
    basis: np.ndarray  # (m, m−1) orthonormal complement of â
    L_cross: np.ndarray  # Cholesky factor of the transverse covariance (m−1, m−1)
    centre: np.ndarray  # transverse centre (m−1,)
    start: float  # R: centre of the smooth step along â
    width: float  # w: its width
    gaussian: Component  # Gaussian stand-in for cubature and QMC
    q: float
    problem: ClassProblem | None = None  # with ``t``: the transverse rule follows each slice (:meth:`slices`)
    t: np.ndarray | None = None  # the field the needle was placed at
    _fits: dict = field(default_factory=dict, compare=False, repr=False)  # slice fits per radial grid

    def log_step(self, A: np.ndarray) -> np.ndarray:
        """log s(a) and log(1 − s(a)), s = Φ_N((a·â − R)/w)."""
        x = (A @ self.direction - self.start) / self.width
        return special.log_ndtr(x), special.log_ndtr(-x)

    def nodes(self, order: int):
        """Nodes A (n, m) and log weights for ∫ (·) da over the needle: trapezoid in log ρ × GH across.

        r = R − 8w + ρ, ρ = e^x, x on a uniform grid of step 2/order; on the slice a·â = r the
        transverse coordinates y = y_r + L_r z use Gauss–Hermite in z with max(6, order/2) nodes
        per axis, (y_r, L_r L_rᵀ) the slice's Laplace fit (:meth:`slices`). The log weights
        include the trapezoid weight, the Jacobian ρ and 1/N(y; y_r, L_r L_rᵀ).
        """
        h = 2.0 / order
        r0 = self.start - 8.0 * self.width
        xs = np.arange(math.log(1e-4 * self.width), math.log(self._reach() - r0) + h, h)
        rho = np.exp(xs)
        r = r0 + rho
        m1 = self.basis.shape[1]
        z, lz = gauss_hermite_nodes(m1, max(6, order // 2))
        centres, L = self.slices(order, r)
        y = centres[:, None, :] + np.einsum("nij,kj->nki", L, z)
        log_det = np.sum(np.log(np.diagonal(L, axis1=1, axis2=2)), axis=1)
        log_ny = (-0.5 * np.sum(z * z, axis=1))[None, :] - log_det[:, None] - 0.5 * m1 * math.log(2 * math.pi)
        A = r[:, None, None] * self.direction[None, None, :] + y @ self.basis.T
        # smooth cut-off at the condensate radius: mass beyond it is the condensate
        r_cut = self.start + CONDENSATE_RADIUS * self.width
        log_keep = special.log_ndtr((r_cut - r) / (CUTOFF_WIDTH * self.width))
        logv = (np.log(h * rho) + log_keep)[:, None] + lz[None, :] - log_ny
        return np.ascontiguousarray(A.reshape(-1, len(self.direction))), logv.ravel()

    def slices(self, order: int, r: np.ndarray):
        """Transverse centres y_r (n, m−1) and Cholesky factors L_r (n, m−1, m−1) on the slices a·â = r.

        The Laplace fit of e^{S} on each slice (its maximiser in y and −(∂²_y S)⁻¹, inflated by
        ``INFLATION``), by Newton from the needle's centre: near the step the slice law is the edge
        of the bulk, far out the asymptotic cone around â, narrower and centred elsewhere, which
        one fixed Gaussian across the whole needle resolves only with many more nodes. Slices
        whose fit fails (no negative definite maximum) keep the fixed ``centre`` and ``L_cross``.
        Cached per ``order`` (the radial grid depends only on it)."""
        n, m1 = len(r), self.basis.shape[1]
        fixed = (np.broadcast_to(self.centre, (n, m1)), np.broadcast_to(self.L_cross, (n, m1, m1)))
        if self.problem is None or self.t is None:
            return fixed
        if order not in self._fits:
            self._fits[order] = _slice_laplace(self, r, *fixed)
        return self._fits[order]

    def _reach(self) -> float:
        """Upper end of the needle rule: where the tail weight is below e^{-60} of its peak, but
        at most the smooth cut-off at ``CONDENSATE_RADIUS`` widths beyond the step (plus its
        own width ×9). Mass beyond the cut-off is in the asymptotic regime and is carried by the
        condensate (:mod:`solvers.finite_p.dual`)."""
        var = float(self.direction @ self.gaussian.cov @ self.direction)
        return min(self.start + 12.0 * math.sqrt(var),
                   self.start + (CONDENSATE_RADIUS + 9 * CUTOFF_WIDTH) * self.width)


def _slice_laplace(nd: Needle, r: np.ndarray, centre: np.ndarray, L_fixed: np.ndarray, iters: int = 40):
    """(centres, Cholesky factors) of the Laplace fits of e^{S(r â + B y)} in y, one per slice r
    (:meth:`Needle.slices`); Newton steps capped at 3 standard deviations of ``L_fixed``."""
    B, a_hat = nd.basis, nd.direction
    cap = 3.0 * float(np.sqrt(np.max(np.linalg.eigvalsh(nd.L_cross @ nd.L_cross.T))))
    y = np.array(centre, dtype=np.float64)

    def derivatives(y):
        _, g, H = log_tilt_derivatives(nd.problem, nd.t, r[:, None] * a_hat[None, :] + y @ B.T)
        return g @ B, np.einsum("ri,nrs,sj->nij", B, H, B)

    for _ in range(iters):
        gy, Hy = derivatives(y)
        ok = np.linalg.eigvalsh(Hy)[:, -1] < 0
        step = np.zeros_like(y)
        step[ok] = -np.linalg.solve(Hy[ok], gy[ok][..., None])[..., 0]
        size = np.sqrt(np.sum(step * step, axis=1))
        step *= np.minimum(1.0, cap / np.maximum(size, 1e-300))[:, None]
        y = y + step
        if np.all(size[ok] < 1e-9 * cap) and ok.all():
            break
    gy, Hy = derivatives(y)
    good = (np.linalg.eigvalsh(Hy)[:, -1] < 0) & np.all(np.isfinite(y), axis=1)
    rest = np.linalg.solve(Hy[good], gy[good][..., None])[..., 0]  # the remaining Newton step
    good[good] = np.sqrt(np.sum(rest * rest, axis=1)) < 1e-6 * cap
    L = np.array(L_fixed, dtype=np.float64)
    C = -np.linalg.inv(Hy[good]) * INFLATION**2
    L[good] = np.linalg.cholesky(0.5 * (C + np.swapaxes(C, 1, 2)))
    centres = np.array(centre, dtype=np.float64)
    centres[good] = y[good]
    return centres, L


@dataclass(frozen=True)
class Placement:
    components: tuple
    needles: tuple = ()

    def log_mixture(self, A: np.ndarray) -> np.ndarray:
        """log Σ_j π_j N_j(A), π_j = 1/J, over the bulk components."""
        logs = np.array([c.log_density(A) for c in self.components])
        top = logs.max(axis=0)
        return top + np.log(np.mean(np.exp(logs - top), axis=0))

    def log_shares(self, A: np.ndarray):
        """(log of the bulk share 1 − Σβ_n, [log β_n]) at the rows of A."""
        log_rest = np.zeros(len(A))
        out = []
        for nd in self.needles:
            log_s, log_1ms = nd.log_step(A)
            out.append(log_rest + log_s)
            log_rest = log_rest + log_1ms
        return log_rest, out

    def as_gaussian_mixture(self) -> "Placement":
        """Bulk components plus the needles' Gaussian stand-ins, no needles (for cubature and QMC)."""
        return Placement(self.components + tuple(nd.gaussian for nd in self.needles))

    def describe(self) -> str:
        kinds = [c.kind for c in self.components] + ["needle"] * len(self.needles)
        return ", ".join(f"{kinds.count(k)} {k}" for k in dict.fromkeys(kinds))


def _sym_kl(a: Component, b: Component) -> float:
    m = len(a.mu)
    Ca, Cb = a.cov, b.cov
    iCa, iCb = np.linalg.inv(Ca), np.linalg.inv(Cb)
    d = a.mu - b.mu
    return 0.25 * (np.trace(iCb @ Ca) + np.trace(iCa @ Cb) - 2 * m + d @ (iCa + iCb) @ d)


def log_tilt_derivatives(prob: ClassProblem, t, A):
    """S, ∇S, ∇²S at the rows of A."""
    table = prob.table()
    P = prob.class_sizes
    g = A @ t.T
    psi, d1, d2 = table(g)
    inv = 1.0 / prob.spec.sigma_a**2
    S = -0.5 * inv * np.sum(A * A, axis=1) + psi @ P
    grad = -inv * A + (d1 * P) @ t
    H = -inv * np.eye(len(t))[None] + np.einsum("nc,cr,cs->nrs", d2 * P, t, t)
    return S, grad, H


def find_modes(prob: ClassProblem, t: np.ndarray, starts: np.ndarray, iters: int = 60):
    """Local maxima of S(a; t) from many starts: (modes (k, m), S (k,), Hessians (k, m, m)), best first.

    The shared saddle-free Newton ascent (:func:`solvers.mode_search.ascend`, at most 5·``iters``
    trial steps, trust radius 10 σ_a) on :func:`log_tilt_derivatives`; end points with a negative
    definite Hessian that did not run away are merged within 10⁻⁴ (σ_a + max |a|)."""
    t = np.asarray(t, dtype=np.float64)
    m = t.shape[1]
    sa = prob.spec.sigma_a
    run = ascend(lambda X: log_tilt_derivatives(prob, t, X), np.asarray(starts, dtype=np.float64),
                 tol=1e-10, maxiter=5 * iters, radius=10.0 * sa, scale=sa**2)
    A, S, H = run.A, run.S, run.hess
    top = np.linalg.eigvalsh(H)[:, -1] if len(A) else np.zeros(0)
    keep = np.isfinite(S) & ~run.escaped & (top < 0)  # strict local maxima only (no saddle, no flat top)
    atol = 1e-4 * (sa + np.max(np.abs(A))) if len(A) else 0.0
    found, _ = distinct(A, S, keep, rel=0.0, atol=atol)
    return A[found].reshape(-1, m), S[found], H[found].reshape(-1, m, m)


def _large_p_view(prob: ClassProblem):
    """The same action in the units of THEORY §4 (S_finite = P·S_large), for its start set."""
    view = prob._warm.get("large_p")
    if view is None:
        from solvers.large_p.problem import LargePProblem
        view = LargePProblem.from_spec(prob.spec)
        prob._warm["large_p"] = view
    return view


def mode_starts(prob: ClassProblem, t: np.ndarray, mean=None, cov=None, previous_modes=None, seed: int = 0):
    """Start points for the mode search of S(·; t): the deterministic set of the large-P maximiser
    (±axes, ± class directions t̂_c and ±t̂_c ± t̂_d at radii set by the fixed point
    a = σ_a² Σ_c P_c ψ'(t_c·a) t_c, :func:`solvers.large_p.maxima.start_points`), the previous modes,
    and, if given, the bulk moments ± its principal axes. The fixed-point scale reaches modes that
    a first Newton step of the dual moves far from the previous bulk (σ_a² ≪ 1, small T)."""
    from solvers.large_p.maxima import start_points
    m = prob.m
    pts = [start_points(_large_p_view(prob), t, n_random=8, seed=seed)]
    if previous_modes is not None and len(previous_modes):
        pts.append(np.asarray(previous_modes, dtype=np.float64).reshape(-1, m))
    if mean is not None:
        w, V = np.linalg.eigh(0.5 * (cov + cov.T))
        axes = (V * np.sqrt(np.maximum(w, 0))).T
        pts += [mean[None], mean + 1.5 * axes, mean - 1.5 * axes]
    A = np.concatenate(pts)
    return A[np.all(np.isfinite(A), axis=1)]


def search_modes(prob: ClassProblem, t: np.ndarray, mean=None, cov=None, previous_modes=None, seed: int = 0):
    """Local maxima of S within ``_MODE_WINDOW`` nats of the best one: (modes, S, Hessians), best first.

    Linear φ: S is quadratic, S(a) = −|a|²/2σ_a² + (σ_1²/2) Σ_c P_c (t_c·a)², so inside the domain its
    only maximum is a = 0 with Hessian −U(t)⁻¹ (no search needed)."""
    if prob.spec.nonlinearity == "linear":
        zero = np.zeros((1, len(t)))
        S0, _, H0 = log_tilt_derivatives(prob, t, zero)
        if np.linalg.eigvalsh(H0[0]).max() < 0:
            return zero, S0, H0
    modes, S, H = find_modes(prob, t, mode_starts(prob, t, mean, cov, previous_modes, seed))
    keep = S >= S[0] - _MODE_WINDOW if len(S) else np.zeros(0, bool)
    return modes[keep], S[keep], H[keep]


def laplace_component(mode: np.ndarray, hess: np.ndarray) -> Component:
    """N(mode, −H⁻¹) inflated by ``INFLATION``: the Laplace approximation of e^S at a mode."""
    return Component.from_cov(mode, -np.linalg.inv(hess) * INFLATION**2, "mode")


def covers(comp: Component, mode: np.ndarray, hess: np.ndarray, radius: float = 4.0, width: float = 0.25,
           max_width: float = math.inf) -> bool:
    """Whether the rule of ``comp`` resolves the Laplace bump N(mode, −H⁻¹): the mode lies within
    ``radius`` of the component's standard deviations of its centre, and the bump is nowhere
    narrower than ``width`` of them (nor wider than ``max_width`` of them, by default no limit: the
    Laplace width of a flat-topped law overstates its spread, and mass that spreads beyond a box
    widens the box, :mod:`solvers.finite_p.readout_tensor`). Bumps a little narrower than the
    rule's spacing are resolved by the order escalation that the error check triggers; mass that
    the rule does not reach at all, or bumps that fall between its nodes at every order, are not."""
    Linv_d = np.linalg.solve(comp.L, mode - comp.mu)
    if float(Linv_d @ Linv_d) > radius**2:
        return False
    # whitened variances of the bump: 1 / eigenvalues of Lᵀ(−H)L; a bump much wider than the
    # component (p_t spread out since the nodes were placed) is cut off by its box
    M = comp.L.T @ (-hess) @ comp.L
    lam = np.linalg.eigvalsh(0.5 * (M + M.T))
    return bool(1.0 / lam.max() >= width**2 and 1.0 / lam.min() <= max_width**2)


def _needles(prob: ClassProblem, t: np.ndarray, bulk: Component) -> list:
    nl = prob.nonlinearity
    if not nl.linear_growth or not np.any(t):
        return []
    sa, sw = prob.spec.sigma_a, prob.spec.sigma_w
    m = len(t)
    dirs, qs = prob.marginal(t)
    out = []
    for a_hat, q in zip(dirs, qs):
        if q < NEEDLE_MIN_Q or q >= 1.0:
            continue
        g = t @ a_hat
        alpha = np.where(nl.slope_pos * g >= -nl.slope_neg * g, nl.slope_pos, nl.slope_neg)
        alpha = np.where((nl.slope_pos * g > 0) | (-nl.slope_neg * g > 0), alpha, 0.0)
        prec = np.eye(m) / sa**2 - sw**2 * (t.T * (prob.class_sizes * alpha**2)) @ t
        prec = 0.5 * (prec + prec.T)
        # transverse basis: orthonormal complement of â; precision restricted to it
        Q, _ = np.linalg.qr(np.column_stack([a_hat, np.eye(m)]))
        basis = Q[:, 1:m] * np.sign(Q[:, :1].T @ a_hat)
        cross = basis.T @ prec @ basis
        w, V = np.linalg.eigh(0.5 * (cross + cross.T))
        w = np.maximum(w, 1e-3 / sa**2)
        # transverse covariance wide enough for both the asymptotic tail and the bulk it leaves
        c_tail = (V / w) @ V.T
        c_bulk = basis.T @ bulk.cov @ basis / INFLATION**2
        wb, Vb = np.linalg.eigh(np.linalg.solve(np.linalg.cholesky(c_tail), np.linalg.solve(np.linalg.cholesky(c_tail), c_bulk).T))
        Lt = np.linalg.cholesky(c_tail)
        c_cross = Lt @ (Vb * np.maximum(wb, 1.0)) @ Vb.T @ Lt.T
        L_cross = np.linalg.cholesky(0.5 * (c_cross + c_cross.T) * INFLATION**2)
        # Gaussian stand-in: asymptotic precision, floored along â at (1 − q)/σ_a²
        wf, Vf = np.linalg.eigh(prec)
        wf = np.maximum(wf, (1.0 - q) / sa**2)
        gauss = Component.from_cov(np.zeros(m), (Vf / wf) @ Vf.T * INFLATION**2, "needle")
        sd = float(np.sqrt(a_hat @ bulk.cov @ a_hat))
        start = max(0.0, float(a_hat @ bulk.mu)) + 5.0 * sd
        out.append(Needle(direction=a_hat, basis=basis, L_cross=L_cross, centre=basis.T @ bulk.mu, start=start, width=0.5 * sd,
                          gaussian=gauss, q=float(q), problem=prob, t=np.array(t, dtype=np.float64)))
    return out


def _well_separated(comps, bulk: Component) -> bool:
    for c in comps:
        if np.linalg.eigvalsh(c.cov).max() > np.linalg.eigvalsh(bulk.cov).max():
            return False
    for i, a in enumerate(comps):
        for b in comps[i + 1:]:
            d = a.mu - b.mu
            if min(d @ np.linalg.solve(a.cov, d), d @ np.linalg.solve(b.cov, d)) < 36.0 * INFLATION**2:
                return False
    return True


def build_placement(prob: ClassProblem, t: np.ndarray, mean: np.ndarray | None, cov: np.ndarray | None,
                    previous_modes: np.ndarray | None = None, seed: int = 0) -> tuple[Placement, np.ndarray]:
    """Components for p_t given the previous iterate's bulk moments; also returns the modes found.

    Sharp, well separated modes (:func:`_well_separated`) get one Laplace component each and
    nothing else; otherwise the bulk moments Gaussian is kept and every mode it does not
    resolve (:func:`covers`: a mode far from the previous bulk, or much narrower than it) gets
    its own Laplace component next to it.
    """
    m = prob.m
    sa = prob.spec.sigma_a
    if mean is None:
        mean, cov = np.zeros(m), sa**2 * np.eye(m)
    base = Component.from_cov(mean, cov * INFLATION**2, "moments", floor=(1e-6 * sa) ** 2)
    comps = [base]
    if not np.any(t):
        return Placement(tuple(comps)), np.zeros((0, m))
    modes, S, H = search_modes(prob, t, mean, cov, previous_modes, seed)
    laplace = [laplace_component(a, Hs) for a, Hs in zip(modes, H)]
    if prob.spec.nonlinearity == "linear" and len(laplace) == 1:
        # ψ is exactly quadratic: p_t(a) = N(0, U(t)) and its Laplace component is exact, while the
        # moments Gaussian of the previous iterate is not (U changes with t) and would need a second
        # component: one exact component halves the work per evaluation
        return Placement(tuple(laplace)), modes
    if len(laplace) > 1 and _well_separated(laplace, base):
        comps = laplace
        needles = _needles(prob, t, comps[0])
    else:
        # modes out in a needle's share (local maxima of S along a marginal direction of ReLU-like φ)
        # are integrated by the needle rule
        needles = _needles(prob, t, base)
        comps += [c for c, a, Hs in zip(laplace, modes, H) if not covers(base, a, Hs) and not _in_needle(needles, a)]
    unique = []
    for c in comps:
        if all(_sym_kl(c, u) > 0.25 for u in unique):
            unique.append(c)
    return Placement(tuple(unique), tuple(needles)), modes


def _in_needle(needles, a: np.ndarray) -> bool:
    """Whether ``a`` lies beyond the step of some needle (where the needle rule takes over)."""
    return any(float(a @ nd.direction) > nd.start for nd in needles)


def placement_covers(placement: Placement, modes: np.ndarray, hessians: np.ndarray) -> bool:
    """Whether every mode is resolved by some bulk component of ``placement`` (:func:`covers`)."""
    return all(any(covers(c, a, Hs) for c in placement.components) or _in_needle(placement.needles, a)
               for a, Hs in zip(modes, hessians))
