"""The convex dual G(t) of THEORY §2–3 with its integration state.

    G(t) = Φ(t) − Σ_c P_c t_cc + (T/2) Σ_c P_c ||t_c||²
    ∇G   = P_c (f_c − e_c + T t_c)
    ∇²G  = ∇²Φ + T diag(P_c)

:class:`DualObjective` evaluates these through :func:`readout_moments` and
owns what the integration needs between calls: the node placement
(:mod:`solvers.finite_p.placement`), built from the moments and modes of p(a) and
kept while they move little (:meth:`DualObjective.update_placement`), so that
Newton minimises one discretised G (a log-sum-exp of functions convex in t, so
itself convex) until its steps are small; a trial point whose modes of S leave
the placement rebuilds it (:meth:`DualObjective.cover`; the mode search is skipped
where the known modes barely moved, and is always run at the final check); the
tensor-rule order, raised when the error check or the line search fails (to the
order that the e^{−c n} decay of two failed checks predicts, else ×1.5, up to
``max_order``); and, for φ that can condense (ReLU-like), the
log-barrier weight ε whose multipliers are the condensate (:class:`Condensate`).
Both solvers (Newton, fixed point) use it, so they solve the same
discretised problem.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np

from theory.domain import kappa_and_slope, top_eigenvalue_derivatives

from solvers.options import SolverOptions
from solvers.finite_p.placement import NEEDLE_MIN_Q, build_placement, log_tilt_derivatives, placement_covers, search_modes
from solvers.finite_p.problem import ClassProblem
from solvers.finite_p.readout_integral import QMCNodes, ReadoutMoments, readout_hessian, readout_moments
from solvers.finite_p.readout_tensor import check_order

__all__ = ["Evaluation", "OutsideDomain", "DualObjective", "Outcome", "Condensate", "EPSILON_MIN", "MARGIN_MIN",
           "INTERIOR_MARGIN"]

#: Final weight of the log barrier −ε Σ_j log(1 − q_j(t)) for linearly growing φ. Its
#: minimiser is an exact KKT point for q_j <= 1 − O(ε); the multipliers μ_j = ε/(1 − q_j)
#: are the condensate (THEORY §4). At ε = 1e-8 the margins are ~1e-8, which shifts the
#: observables by ~1e-8 relative; smaller ε makes the residual ill-conditioned
#: (∂μ/∂t ~ ε/(1 − q)² amplifies rounding in t).
EPSILON_MIN = 1e-8
#: Smallest margin 1 − q_j the barrier is shrunk to. The multipliers μ_j = ε/(1 − q_j) carry the
#: rounding of q (~1e-16) relative to the margin, so the condensate outputs have a noise floor of
#: ~1e-16/margin relative, which must stay below tol. At margin 1e-8 the bias of the barrier on
#: the observables (~margin, relative) and the rounding floor (~1e-8) are both below tol; ε stops
#: shrinking there.
MARGIN_MIN = 1e-8
#: Below ``EPSILON_MIN`` the barrier keeps shrinking, direction by direction, where the margin
#: 1 − q_j is at least this and the multiplier's share of f is above 1% of tol: no condensate is
#: forming there (a condensate's margin follows ε/μ_j down to ~ε), so μ_j = ε/(1 − q_j) → 0 and
#: that share, ~ε/(1 − q_j), is a bias of the barrier (at finite P near the domain boundary,
#: margins ~1e-5–1e-3: up to ~1e-4 of f at ε = 1e-8), while the ill-conditioning ~ε/(1 − q_j)²
#: that small margins bring stays negligible.
INTERIOR_MARGIN = 1e-5
#: The placement is kept while the bulk moments of p_t stay within this symmetric Kullback–Leibler
#: divergence of those it was built from (a mean shift of ~0.3 standard deviations): the rule then
#: integrates the same smooth convex discretised G from iterate to iterate, so the line search
#: compares values of one function.
PLACEMENT_KL = 0.05
#: A mode search is skipped when every known mode of S moves, under the new field, by less than
#: this fraction of its own width (one Newton step of the ascent, in its Hessian metric).
MODE_SHIFT = 0.1


class OutsideDomain(ArithmeticError):
    """t lies where Φ(t) = ∞ (the single-neuron measure cannot be normalised).

    An ``ArithmeticError``, like the ``OutsideDomain`` of :mod:`theory.deep_blocks`, so that one
    ``except`` clause can catch both (the two are to be merged into one shared class).
    """


@dataclass(frozen=True)
class Condensate:
    """Mass beyond the needle rules along marginal directions â_j (THEORY §4).

    From the barrier multipliers μ_j = ε/(1 − q_j): the outliers along â_j add
    f_c += μ_j σ_a²σ_1² κ'(t_c·â_j) â_j, U += 2μ_j σ_a² â_j â_jᵀ and kernel
    K_cd += 2μ_j σ_a² σ_1⁴ (κ'_c/2)(κ'_d/2). For ReLU, λ_j = 2μ_j σ_a²σ_1² is
    the condensate mass of THEORY §4 (f_c += λ_j (t_c·â_j)₊ â_j,
    U += λ_j â_j â_jᵀ/σ_1²).
    """

    directions: np.ndarray  # (k, m)
    multipliers: np.ndarray  # μ_j
    margins: np.ndarray  # 1 − q_j
    outputs: np.ndarray  # (m, m) contribution to f
    readout_moment: np.ndarray  # (m, m) contribution to U
    kernel: np.ndarray  # (m, m) contribution to kernel blocks (and diagonal)
    mass: np.ndarray  # λ_j = 2 μ_j σ_a² σ_1²
    codes: tuple  # per direction, the classes it activates: {c : κ(t_c·â_j) > 0}
    shares: np.ndarray | None = None  # per direction, max |its contribution to f|

    def to_json(self) -> dict:
        """The directions that carry a condensate: those with a needle (q >= 0.95, margin <= 0.05,
        :mod:`solvers.finite_p.placement`). Further local maximisers of q kept by the barrier
        (0.5 < q < 0.95) carry only its O(ε) bias; their share stays in f, U and the kernel."""
        keep = self.margins <= 1.0 - NEEDLE_MIN_Q
        return {"directions": self.directions[keep].tolist(), "mass": self.mass[keep].tolist(),
                "margins": self.margins[keep].tolist(), "codes": [list(c) for c, k in zip(self.codes, keep) if k]}


@dataclass(frozen=True)
class Evaluation:
    t: np.ndarray
    value: float  # G(t) (+ barrier)
    gradient: np.ndarray  # (m, m)
    residual: np.ndarray  # f − e + T t, (m, m), f including the condensate
    moments: ReadoutMoments
    condensate: Condensate | None = None

    @property
    def residual_norm(self) -> float:
        return float(np.max(np.abs(self.residual)))


@dataclass
class Outcome:
    evaluation: Evaluation
    success: bool
    status: int
    message: str
    nit: int

    @classmethod
    def finished(cls, ev: "Evaluation", state: str, nit: int) -> "Outcome":
        """Outcome for a ``small_residual_step`` state "done" or "floor"."""
        if state == "done":
            return cls(ev, True, 0, "converged: residual below tol and integrator error check passed", nit)
        return cls(ev, False, 2, "stopped at the integration noise floor: residual "
                                 f"{ev.residual_norm:.2e} with the most accurate rule", nit)



class DualObjective:
    """G(t) and derivatives, with node placement and rule refinement."""

    def __init__(self, prob: ClassProblem, options: SolverOptions):
        self.prob = prob
        self.options = options
        m = prob.m
        self.placement, self.modes = build_placement(prob, np.zeros((m, m)), None, None)
        self._bulk = (np.zeros(m), prob.spec.sigma_a**2 * np.eye(m))  # moments at the last accepted iterate
        self._covered = None  # the t at which the placement was last checked against the modes of S
        self._searched = None  # the t of the last full mode search
        self._placed = None  # (mean, cov, margins) the placement was built from
        self.checks: list[tuple[int, float]] = []  # (order, relative error estimate) of failed checks
        self.rebuilds = 0
        self.order = options.order
        kind = options.integrator
        if kind == "auto":
            kind = "trapezoid" if m <= 4 else "qmc"
        self.kind = kind
        self.nfev = 0
        self.qmc_points = options.qmc_points
        self.qmc_nodes = (QMCNodes.make(m, options.qmc_points, options.qmc_replicates, options.seed)
                          if kind == "qmc" else None)
        self.log: list[str] = []
        # Log-barrier weight ε for the condensate (newton.py). Only φ that grow linearly on one
        # side, or with different slopes, can condense: there the far tail along â* is suppressed
        # by 2^{-P_c} factors of the inactive classes, so Φ's divergence at q = 1 is invisible
        # in double precision. For φ = αh the tail is the whole Gaussian and Φ diverges properly.
        nl = prob.nonlinearity
        self.epsilon = 1e-2 if nl.linear_growth and nl.slope_pos != nl.slope_neg else 0.0
        # barrier weights below EPSILON_MIN for interior directions: (unit vectors (k, m), weights (k,))
        self.interior = (np.zeros((0, m)), np.zeros(0))

    # ------------------------------------------------------------------ evaluation
    def moments(self, t: np.ndarray, hessian: bool, check: bool, order: int | None = None) -> ReadoutMoments:
        if self.prob.margin(t) <= 0.0:
            raise OutsideDomain("q(t) >= 1")
        self.cover(t)
        order = self.order if order is None else order
        try:
            mo = readout_moments(self.prob, t, self.placement, integrator=self.kind, order=order,
                                 check=check, hessian=hessian, hessian_order=order,
                                 rtol=self.options.integral_tol, qmc_nodes=self.qmc_nodes)
        except FloatingPointError as exc:
            raise OutsideDomain(str(exc)) from None
        self.nfev += 1
        return mo

    def evaluate(self, t: np.ndarray, hessian: bool = True, check: bool = False,
                 order: int | None = None) -> Evaluation:
        """G and its derivatives at ``t`` on the current rule (``order`` overrides the tensor order)."""
        mo = self.moments(t, hessian, check, order)
        P = self.prob.class_sizes[:, None]
        T = self.prob.temperature
        value = mo.log_partition + self.prob.explicit_dual_term(t)
        outputs = mo.outputs
        cond = self._condensate(t) if self.epsilon > 0 else None
        if cond is not None:
            value -= float(np.sum(cond.multipliers * cond.margins * np.log(cond.margins)))  # Σ_j ε_j log(1 − q_j)
            outputs = outputs + cond.outputs
        residual = outputs - np.eye(self.prob.m) + T * t
        return Evaluation(t=t.copy(), value=value, gradient=P * residual, residual=residual, moments=mo,
                          condensate=cond)

    def _condensate(self, t: np.ndarray) -> Condensate | None:
        prob = self.prob
        nl = prob.nonlinearity
        sa, sw = prob.spec.sigma_a, prob.spec.sigma_w
        dirs, q = prob.marginal(t)
        keep = q > 0.5
        if not keep.any():
            return None
        dirs, q = dirs[keep], q[keep]
        mu = self._weights(dirs) / (1.0 - q)
        m = prob.m
        f = np.zeros((m, m))
        U = np.zeros((m, m))
        K = np.zeros((m, m))
        codes, shares = [], []
        for a_hat, mu_j in zip(dirs, mu):
            _, dk = kappa_and_slope(t @ a_hat, nl.slope_pos, nl.slope_neg)
            codes.append(tuple(int(c) for c in np.flatnonzero(dk != 0)))
            f_j = mu_j * sa**2 * sw**2 * dk[:, None] * a_hat[None, :]
            shares.append(float(np.max(np.abs(f_j))))
            f += f_j
            U += 2 * mu_j * sa**2 * np.outer(a_hat, a_hat)
            K += 2 * mu_j * sa**2 * sw**4 * np.outer(dk / 2, dk / 2)
        return Condensate(directions=dirs, multipliers=mu, margins=1.0 - q, outputs=f, readout_moment=U,
                          kernel=K, mass=2 * mu * sa**2 * sw**2, codes=tuple(codes), shares=np.array(shares))

    def _weights(self, dirs: np.ndarray) -> np.ndarray:
        """Barrier weight ε_j per marginal direction: ε, or the smaller weight of the interior
        direction it matches (cosine > 0.99, :meth:`shrink_interior`)."""
        eps = np.full(len(dirs), self.epsilon)
        known, weights = self.interior
        if len(known):
            cos = dirs @ known.T
            best = np.argmax(cos, axis=1)
            match = cos[np.arange(len(dirs)), best] > 0.99
            eps[match] = weights[best[match]]
        return eps

    def shrink_interior(self, ev: Evaluation, tol: float) -> bool:
        """Once ε has stopped shrinking: shrink by 10⁻³ the weights of the directions whose margin is
        at least ``INTERIOR_MARGIN`` and whose share of f exceeds 1% of ``tol`` (there the multipliers
        are a bias of the barrier, see ``INTERIOR_MARGIN``); True if any weight changed."""
        cond = ev.condensate
        if cond is None:
            return False
        eps = self._weights(cond.directions)
        pick = (cond.margins >= INTERIOR_MARGIN) & (cond.shares > 1e-2 * tol) & (eps > 1e-300)
        if not pick.any():
            return False
        known, weights = self.interior
        keep = np.ones(len(known), bool)
        if len(known):
            keep = np.max(known @ cond.directions[pick].T, axis=1) <= 0.99  # the picked ones get new weights
        self.interior = (np.vstack([known[keep], cond.directions[pick]]),
                         np.concatenate([weights[keep], 1e-3 * eps[pick]]))
        self.log.append(f"barrier weight of {int(pick.sum())} interior direction(s) -> {np.min(1e-3 * eps[pick]):.0e}")
        return True

    def hessian(self, ev: Evaluation) -> np.ndarray:
        """∇²G (+ barrier) as (m², m²) in the flattening c*m + r (computed here if ``ev`` lacks it)."""
        prob = self.prob
        m = prob.m
        P = np.repeat(prob.class_sizes, m)
        H_phi = ev.moments.hessian
        if H_phi is None:
            H_phi = readout_hessian(prob, ev.t, self.placement, integrator=self.kind, order=self.order,
                                    qmc_nodes=self.qmc_nodes)
        H = H_phi + prob.temperature * np.diag(P)
        cond = ev.condensate
        if cond is not None:
            for a_hat, mu_j, margin in zip(cond.directions, cond.multipliers, cond.margins):
                grad_q, hess_q = self._q_derivatives(ev.t, a_hat)
                H += (mu_j / margin) * np.outer(grad_q, grad_q) + mu_j * hess_q
        return H

    def _q_derivatives(self, t: np.ndarray, a_hat: np.ndarray):
        """Gradient and exact Hessian of q_j(t) (flattened c*m + r) on the active set at â_j.

        On the cone where each class keeps its branch, q = σ_a²σ_1² λ_max(M),
        M = Σ_c P_c α_c² t_c t_cᵀ, with â its top eigenvector v_1. Eigenvalue
        perturbation theory: d²λ = v_1ᵀ d²M v_1 + 2 Σ_{k>=2} (v_kᵀ dM v_1)²/(λ_1 − λ_k),
        the second term being how â turns with t.
        """
        prob = self.prob
        nl = prob.nonlinearity
        s2 = prob.spec.sigma_a**2 * prob.spec.sigma_w**2
        g = t @ a_hat
        u, v = np.maximum(nl.slope_pos * g, 0.0), np.maximum(-nl.slope_neg * g, 0.0)
        coef = prob.class_sizes * np.where(u >= v, nl.slope_pos, nl.slope_neg) ** 2 * (np.maximum(u, v) > 0)
        _, grad, hess = top_eigenvalue_derivatives(t, coef, a_hat)
        return s2 * grad, s2 * hess

    # ------------------------------------------------------------------ adaptation
    def update_placement(self, ev: Evaluation) -> bool:
        """Re-place the nodes for p(a) at an accepted iterate if p_t moved since they were placed
        (:meth:`_stale`); True if the placement changed."""
        mean, cov = ev.moments.bulk_moments()
        self._bulk = (mean, cov)
        if not self._stale(ev.t, mean, cov):
            return False
        self._rebuild(ev.t, mean, cov, self.modes)
        return True

    def _rebuild(self, t, mean, cov, modes) -> None:
        self.placement, self.modes = build_placement(self.prob, t, mean, cov, modes)
        self._placed = (mean, cov, self._needle_margins(t))
        self._covered = self._searched = t.copy()

    def _needle_margins(self, t: np.ndarray) -> np.ndarray:
        if not self.prob.nonlinearity.linear_growth or not np.any(t):
            return np.zeros(0)
        _, q = self.prob.marginal(t)
        return 1.0 - q[q >= NEEDLE_MIN_Q]

    def _stale(self, t: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> bool:
        """Whether the placement no longer fits p_t: its bulk moments moved by more than
        ``PLACEMENT_KL`` (symmetric KL divergence), or a needle's margin 1 − q changed by more than
        10% (the needle's length scales like (1 − q)^{-1/2}), or needles appeared or vanished."""
        if self._placed is None:
            return True
        mean0, cov0, margins0 = self._placed
        margins = self._needle_margins(t)
        if len(margins) != len(margins0) or np.any(np.abs(np.sort(margins) / np.sort(margins0) - 1.0) > 0.1):
            return True
        m = len(mean)
        floor = (1e-6 * self.prob.spec.sigma_a) ** 2 * np.eye(m)
        try:
            i0, i1 = np.linalg.inv(cov0 + floor), np.linalg.inv(cov + floor)
        except np.linalg.LinAlgError:
            return True
        d = mean - mean0
        kl = 0.25 * (np.trace(i0 @ (cov + floor)) + np.trace(i1 @ (cov0 + floor)) - 2 * m + d @ (i0 + i1) @ d)
        return not kl <= PLACEMENT_KL

    def _modes_barely_moved(self, t: np.ndarray) -> bool:
        """Whether every mode of the last full search is still a maximum of S(·; t) within
        ``MODE_SHIFT`` of its width: then it is covered as before and the search is skipped.
        (A mode appearing far from all known ones is found by the full search at the next
        placement rebuild and at the final check, :meth:`verify`.)"""
        if self._searched is None or self.modes is None or not len(self.modes):
            return False
        if self.prob.spec.nonlinearity == "linear":
            return False  # its search is a closed form, cheaper than this test
        _, grad, H = log_tilt_derivatives(self.prob, t, self.modes)
        try:
            L = np.linalg.cholesky(-H)
        except np.linalg.LinAlgError:
            return False  # a mode turned into a saddle
        y = np.linalg.solve(L, grad[..., None])[..., 0]  # |y|² = gradᵀ(−H)⁻¹grad: the squared shift in widths
        return bool(np.all(np.sum(y * y, axis=1) < MODE_SHIFT**2))

    def cover(self, t: np.ndarray, force: bool = False) -> None:
        """Make the placement resolve every mode of p_t before integrating at ``t``.

        The nodes are placed at accepted iterates and kept while p_t moves little. A trial point
        can move p_t far from them: for σ_a² ≪ 1 at small T a first Newton step from t = 0 puts
        the modes of S hundreds of prior standard deviations out, 10³–10⁴ nats above anything
        the old nodes see, and the rule then returns a smooth, convex-looking but wrong Φ
        (its order-doubling error check cannot notice mass that no order reaches). So the modes
        of S(·; t) are searched (:func:`solvers.finite_p.placement.search_modes`, warm-started) and, if
        one within the mode window is not resolved by a component, the placement is rebuilt
        at ``t`` (bulk moments of the last accepted iterate plus Laplace components). The search
        is skipped where the known modes barely moved (:meth:`_modes_barely_moved`) unless ``force``.
        """
        same = self._covered is not None and self._covered.shape == t.shape and np.array_equal(self._covered, t)
        searched = self._searched is not None and np.array_equal(self._searched, t)
        if (same and not force) or searched or not np.any(t):
            self._covered = t.copy()
            return
        self._covered = t.copy()
        if not force and self._modes_barely_moved(t):
            return
        modes, _, H = search_modes(self.prob, t, previous_modes=self.modes)
        self._searched = t.copy()
        if placement_covers(self.placement, modes, H):
            if len(modes):
                self.modes = modes
            return
        mean, cov = self._bulk
        self._rebuild(t, mean, cov, modes)
        self.rebuilds += 1

    def verify(self, t: np.ndarray) -> tuple[Evaluation, bool]:
        """Evaluate with the integrator's error check, after a full mode search; refine the rule if
        the check fails.

        Returns (evaluation, ok). When not ok, the rule was refined and the
        solver should iterate again from t. When the rule cannot be refined
        further, ok is True and the error estimate is reported as it is.
        """
        self.cover(t, force=True)
        ev = self.evaluate(t, hessian=True, check=True)
        err = ev.moments.relative_error_estimate
        if err <= self.options.integral_tol:
            return ev, True
        if self.kind == "qmc" and not self._qmc_reachable(err):
            return ev, True  # reported as it is: the verdict says the bound is missed
        self.checks.append((self.order, err))
        return ev, not self.refine(f"error estimate {err:.1e} > {self.options.integral_tol:.0e}")

    def _qmc_reachable(self, err: float) -> bool:
        """Whether the QMC points left before the cap can bring the error bar ``err`` to
        ``integral_tol``, at the Monte Carlo rate N^(-1/2) (randomised QMC is at least that fast)."""
        left = 16 * self.options.qmc_points / self.qmc_points
        return left > 1.0 and err / np.sqrt(left) <= self.options.integral_tol

    def tolerance(self, ev: Evaluation, tol: float) -> float:
        """Residual tolerance: ``tol``, or for Monte Carlo rules 3 error bars of f if larger."""
        if self.kind == "qmc":
            return max(tol, 3.0 * float(np.max(ev.moments.error["outputs"])))
        return tol

    def can_refine(self) -> bool:
        if self.kind == "qmc":
            return self.qmc_points < 16 * self.options.qmc_points
        return self.kind in ("trapezoid", "gauss-hermite") and self.order < self.options.max_order

    def refine(self, reason: str) -> bool:
        """Make the rule more accurate (higher tensor order, or twice the QMC points); False if it cannot."""
        if self.kind == "qmc" and self.qmc_points < 16 * self.options.qmc_points:
            self.qmc_points *= 2
            self.qmc_nodes = QMCNodes.make(self.prob.m, self.qmc_points, self.options.qmc_replicates,
                                           self.options.seed)
            self.log.append(f"{reason}: QMC points per replicate -> {self.qmc_points}")
            return True
        if self.kind in ("trapezoid", "gauss-hermite") and self.order < self.options.max_order:
            self.order = min(self.options.max_order, self._next_order())
            self.log.append(f"{reason}: {self.kind} order -> {self.order}")
            return True
        return False

    def _next_order(self) -> int:
        """The tensor order the error estimates call for: the rule's error falls like e^{−c n}, so
        two failed checks (n₁, e₁), (n₂, e₂) at the current placement give c and the order where
        e reaches integral_tol/2 (at least the current order + 4); otherwise ×1.5."""
        n = self.order
        if len(self.checks) >= 2 and self.checks[-1][0] == n:
            (n1, e1), (n2, e2) = self.checks[-2], self.checks[-1]
            if n2 > n1 and 0.0 < e2 < e1:
                c = math.log(e1 / e2) / (n2 - n1)
                need = n2 + math.log(e2 / (0.5 * self.options.integral_tol)) / c
                return int(min(max(math.ceil(need), n + 4), 2 * n))
        return int(round(n * 1.5))

    def shrink_barrier(self, ev: Evaluation, factor: float = 1e-3):
        """ε → factor·ε with a predictor step that keeps the multipliers μ_j = ε/(1 − q_j).

        Moving t so that every active margin 1 − q_j shrinks by the same factor
        keeps the condensate masses, so Newton starts next to the new
        central-path point. The predictor solves q_j(t + Δ) = 1 − factor·(1 − q_j(t))
        by a few Gauss–Newton steps (least squares, exact ∇q_j) along the
        directions of the active outliers.
        """
        eps_new = max(EPSILON_MIN, self.epsilon * factor)
        ratio = eps_new / self.epsilon
        self.epsilon = eps_new
        cond, t = ev.condensate, ev.t
        # predict only for a real condensate; for interior solutions μ_j → 0 as ε → 0 is the right path
        if cond is None or np.max(np.abs(cond.outputs)) < 1e-3:
            return t, self.evaluate(t)
        prob = self.prob
        # only the directions that carry a condensate: pushing a direction with a negligible
        # multiplier (a secondary local maximiser of q, margin O(1)) to the boundary as well moves
        # t far off the central path
        active = cond.mass >= 1e-2 * np.max(cond.mass)
        target = 1.0 - ratio * cond.margins[active]  # wanted q_j
        dirs = cond.directions[active]
        delta = np.zeros_like(t)
        for _ in range(6):
            trial = t + delta
            found, q_all = prob.marginal(trial)
            idx = [int(np.argmax(found @ a)) for a in dirs]
            dirs, q = found[idx], q_all[idx]
            if np.max(np.abs(q - target) / (1.0 - target)) < 0.1:
                break
            rows = np.array([self._q_derivatives(trial, a)[0] for a in dirs])
            delta = delta + np.linalg.lstsq(rows, target - q, rcond=None)[0].reshape(t.shape)
        here = self.evaluate(t)
        for _ in range(30):
            if prob.margin(t + delta) > 0.0:
                try:
                    pred = self.evaluate(t + delta)
                except OutsideDomain:
                    pred = None
                # a predictor that does not lower the residual of the new barrier problem is no help
                if pred is not None and pred.residual_norm < here.residual_norm:
                    return t + delta, pred
                if pred is not None:
                    break
            delta = 0.5 * delta
        return t, here

    def small_residual_step(self, ev: Evaluation, tol: float):
        """At small residual: shrink the barrier (then the weights of interior directions), else run
        the error check.

        Returns (evaluation, state): "done" (converged, checked), "continue" (go on from the returned
        evaluation, possibly a predictor point or a refined rule) or "floor" (the checked residual
        exceeds tol and the rule cannot be refined: the residual is at the integration noise floor).
        """
        cond = ev.condensate
        margin = float(np.min(cond.margins)) if cond is not None else 1.0
        if self.epsilon > EPSILON_MIN and margin > 2.0 * MARGIN_MIN:
            return self.shrink_barrier(ev, factor=max(1e-3, MARGIN_MIN / margin))[1], "continue"
        if self.shrink_interior(ev, tol):
            return self.evaluate(ev.t), "continue"
        checked, ok = self.verify(ev.t)
        if not ok:
            return self.evaluate(ev.t), "continue"
        if checked.residual_norm <= self.tolerance(checked, tol):
            return checked, "done"
        return checked, "floor" if not self.can_refine() else "continue"
