"""Both deep ReLU condensates as KKT unknowns: the class-block equations with the multipliers of the readout's and
the first hidden layer's domain constraints (and at L >= 3 the middle layers') solved for, by a smoothed
Fischer–Burmeister complementarity (THEORY §4 condensate, §5 deep networks; :mod:`solvers.deep.kkt` for the terms,
:mod:`solvers.deep.hidden_condensate` for the middle layers').

The deep ReLU saddle is a KKT point of the constraints q_j <= 1 of the last layer's readout domain (maximisers
ŷ_j, :mod:`theory.deep_condensate`) and of the first layer's tilted domain (maximisers v_i,
:func:`solvers.deep.kkt.tilted_first_layer`): multipliers μ_j >= 0 add, by Danskin's theorem at the tracked
maximisers, exactly the terms of :mod:`solvers.deep.kkt` (f, U, k_L, k̃_{L-1}, δ̃_{L-1} for the readout's;
k_1 += 2μ_1 ∂q_1/∂k̃_1, δ_1 likewise, for the first layer's), and log Z gains μ_j (q_j − 1). Here the μ are
unknowns next to the packed x of :class:`solvers.deep.model.DeepModel`, and each carries the equation

    φ_δ(μ_j, s_j) = μ_j + s_j − sqrt(μ_j² + s_j² + 2δ²) = 0,    s_j = 1 − q_j,

whose zeros are exactly μ_j > 0, s_j > 0, μ_j s_j = δ² (δ > 0), and μ_j >= 0, s_j >= 0, μ_j s_j = 0 at δ = 0
(Fischer, Optimization 24, 269 (1992); Kanzow, SIAM J. Matrix Anal. Appl. 17, 851 (1996) for the smoothing).
So at δ² = ε the solution is the log barrier's central point of :class:`solvers.deep.kkt.Barrier` (μ = ε/(1 − q)),
but the Jacobian is different: the barrier's μ = ε/(1 − q) has derivative μ²/ε in q, which the forward-difference
Jacobian of the reduced system cannot resolve at small ε; here every entry stays bounded (|∂φ_δ/∂μ|,
|∂φ_δ/∂s| <= 2, the terms linear in μ), so the path δ → 0 can be followed and, at fixed δ, a fold of the
reduced system in a parameter is a regular turning point of this one.

The bulk (the layer integrals of :func:`theory.deep_layer.layer_integral`) is truncated explicitly: each rule's
estimate is the integral over the region its nodes cover (a tensor Gauss–Hermite rule of order n on a
moment-matched Gaussian proposal reaches about sqrt(4n) proposal standard deviations; Sobol' points the
proposal's tails and needle components of finite length), which omits the far tail of the needle along each active
maximiser, of relative weight ~2^{−P_off} (1 − q)^{−1/2} at finite P (P_off the inputs of the classes the direction
is off on); that tail is what the condensate replaces. With ``truncated`` (the default) the layer integrals skip
their domain check (growth rate < 1/2), so the equations evaluate on both sides of q_j = 1: the forward-difference
Jacobian and the integration rules' replicates then exist at margins far below their perturbations (at the paper's
regime the first layer's margins are ~δ²/μ ~ 1e-6, while a Sobol' replicate moves its tilt by ~1e-2), and δ = 0 is
allowed. Beyond q = 1 the truncated estimate grows with the nodes' reach, so proposals moment-matched to it can run
away along the needle: hold the proposals (or re-match them only where every q < 1) when the truncated bulk is
used. Without it, a point with some q >= 1 does not evaluate (:class:`theory.domain_errors.OutsideDomain`) and
δ > 0 keeps every margin positive at the solution (s_j = δ²/μ_j).

The maximisers are a fixed list per model (those with q above ``q_min`` at its construction, :func:`kkt_model`),
each tracked from its last position at every evaluation (:func:`theory.deep_condensate.track_directions` for the
readout's; the ascent of :func:`theory.domain.marginal_directions` from the previous v, nearest end, for the first
layer's), so that the residual is a smooth function of (x, μ).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace

import numpy as np

from solvers.deep.kkt import _first_layer_sums, _readout_layer, _tilt, condensate_terms, tilted_first_layer
from solvers.deep.model import DeepModel, prior_start
from solvers.deep.size_steps import SizeSteps, with_memory
from theory.deep_condensate import ReadoutDomain, condensate_directions, track_directions
from theory.deep_needle_tail import Needles
from theory.domain import marginal_directions
from theory.domain_errors import OutsideDomain
from theory.nonlinearities import get_nonlinearity

__all__ = ["fischer_burmeister", "Multipliers", "KKTModel", "kkt_model", "Q_MIN", "truncated_bulk"]

#: maximisers with q below this at the model's construction get no multiplier
Q_MIN = 0.5

#: width w of the smooth half-spaces of the readout's needle split (:class:`KKTModel`, ``needle_split``): the
#: reweighting of the rule's nodes is smooth in the tracked maximisers, as Newton's forward differences need
NEEDLE_WIDTH = 0.5
#: Sobol' nodes per cross-section of the readout's needle split (docs/devlog.md, deeprelu15: with the radial rule of
#: theory.deep_needle_tail.radial_rule, as precise as 2^11 on the 120-radius trapezoid grid)
NEEDLE_POINTS = 2**10


def fischer_burmeister(mu, s, delta: float):
    """φ_δ(μ, s) = μ + s − sqrt(μ² + s² + 2δ²) (module docstring), elementwise; zero iff μ s = δ², μ, s > 0
    (δ > 0), or the complementarity μ, s >= 0, μ s = 0 (δ = 0)."""
    mu, s = np.asarray(mu, dtype=np.float64), np.asarray(s, dtype=np.float64)
    return mu + s - np.sqrt(mu * mu + s * s + 2.0 * delta * delta)


class Multipliers:
    """The ``condensate`` hook of :class:`KKTModel`: the KKT terms of the readout's maximisers ``last`` (rows ŷ,
    (k_L, 2m)), the first layer's ``first`` (rows v, (k_1, m)) and, at L >= 3, each middle layer ℓ's ``hidden[ℓ]``
    (rows ŷ, (k_ℓ, 2m); :mod:`solvers.deep.hidden_condensate`) with the multipliers ``mu`` (in the order of
    :attr:`sets`) set before each evaluation; records the tracked margins s = 1 − q (``margins``) of that
    evaluation."""

    def __init__(self, last, first, check: bool = True, hidden=None):
        self.check = check  # raise OutsideDomain where a tracked q >= 1 (off for a truncated bulk)
        self.last = np.asarray(last, dtype=np.float64).reshape(-1, 0 if last is None else np.shape(last)[-1])
        self.first = np.asarray(first, dtype=np.float64).reshape(-1, 0 if first is None else np.shape(first)[-1])
        self.hidden = {int(ell): np.asarray(y, dtype=np.float64).reshape(-1, np.shape(y)[-1])
                       for ell, y in sorted((hidden or {}).items())}
        self.mu = np.zeros(sum(len(a) for a in self.sets))
        self.q = np.full(len(self.mu), np.nan)
        self.tracked = [a.copy() for a in self.sets]  # the maximisers of the last evaluation
        self._tracked_domain = (None, None)  # (key, ReadoutDomain) of the last readout tracking

    @property
    def sets(self) -> list:
        """[readout's, first layer's, middle layers' in increasing ℓ] maximisers: the blocks of ``mu``."""
        return [self.last, self.first] + list(self.hidden.values())

    def slice(self, block: int) -> slice:
        n = [len(a) for a in self.sets]
        return slice(sum(n[:block]), sum(n[:block + 1]))

    def retrack(self) -> None:
        """Track from the maximisers of the last evaluation from now on (between solves of a path)."""
        self.last, self.first = (a.copy() for a in self.tracked[:2])
        self.hidden = {ell: a.copy() for ell, a in zip(self.hidden, self.tracked[2:])}

    @property
    def margins(self) -> np.ndarray:
        return 1.0 - self.q

    def readout_domain(self, model, t, ker) -> ReadoutDomain:
        """The readout maximisers tracked from the rows of ``last``, one each, in that order (the last result is
        kept for the same (t, K_{L-1}): the needle split and the KKT terms of one evaluation track once)."""
        R, delta, _ = _readout_layer(model, ker)
        key = (self.last.tobytes(), np.asarray(t).tobytes(), np.asarray(R).tobytes(), np.asarray(delta).tobytes())
        if self._tracked_domain[0] == key:
            return self._tracked_domain[1]
        args = (t, model.spec.sigma_a, R, delta, model.sigmas[-1], model.sizes)
        doms = [track_directions(y[None, :], *args) for y in self.last]
        if any(len(d.q) != 1 for d in doms):
            raise OutsideDomain("a readout maximiser of the condensate was lost while tracking")
        dom = ReadoutDomain(*(np.concatenate([getattr(d, a) for d in doms]) for a in
                              ("directions", "q", "readout", "xi", "h")), tuple(d.codes[0] for d in doms))
        self._tracked_domain = (key, dom)
        return dom

    def first_layer(self, kt, dt, sigma, sizes):
        """(B, A, directions (k_1, m), q (k_1,)) of the first layer's maximisers nearest the rows of ``first``."""
        B, A = _tilt(kt, dt, sigma, len(sizes))
        if np.any(A <= 0.0):
            raise OutsideDomain("first layer's tilt: some A_c <= 0")
        dirs, q = [], []
        for v in self.first:
            D, Q = marginal_directions(B / np.sqrt(A)[:, None], sizes, 1.0, sigma, get_nonlinearity("relu"),
                                       n_random=0, warm=v[None, :])
            if not len(Q):
                raise OutsideDomain("a first-layer maximiser of the condensate was lost while tracking")
            i = int(np.argmax(D @ v))
            dirs.append(D[i])
            q.append(Q[i])
        return B, A, np.array(dirs).reshape(-1, len(sizes)), np.array(q)

    def __call__(self, model, ell, t, ker, r, kw):
        """Layer ``ell``'s result ``r`` with its condensate terms (module docstring)."""
        kL = len(self.last)
        if ell == model.L and kL:
            dom = self.readout_domain(model, t, ker)
            self._check(dom.q, "readout")
            self.q[:kL] = dom.q
            self.tracked[0] = dom.directions
            mu = self.mu[:kL]
            R, delta, hidden = _readout_layer(model, ker)
            c = condensate_terms(dom, mu, t, model.spec.sigma_a, R, delta, model.sigmas[-1], model.sizes, hidden)
            upd = dict(log_z=r.log_z + float(mu @ (dom.q - 1.0)), outputs=r.outputs + c.outputs,
                       readout_moment=r.readout_moment + c.readout_moment, k=r.k + c.kernel)
            if c.kt is not None:
                upd.update(kt_in=r.kt_in + c.kt, dt_in=r.dt_in + c.dt)
            return replace(r, **upd)
        if ell == 1 and model.L >= 2 and len(self.first):
            B, A, dirs, q = self.first_layer(kw["kt"], kw["dt"], model.sigmas[0], model.sizes)
            self._check(q, "first layer's")
            self.q[self.slice(1)] = q
            self.tracked[1] = dirs
            mu = self.mu[self.slice(1)]
            dk, dd = _first_layer_sums(B, A, model.sigmas[0], model.sizes, dirs, q, mu)
            return replace(r, k=r.k + dk, delta=r.delta + dd, log_z=r.log_z + float(mu @ (q - 1.0)))
        if 2 <= ell < model.L and len(self.hidden.get(ell, ())):
            from solvers.deep.hidden_condensate import middle_layer_terms
            return middle_layer_terms(self, 2 + list(self.hidden).index(ell), model, ell, r, kw)
        return r

    def _check(self, q, which):
        if self.check and np.max(q, initial=-np.inf) >= 1.0:
            raise OutsideDomain(f"{which} domain: q = {np.max(q):.6g} >= 1")


class KKTModel(DeepModel):
    """The deep equations with the multipliers as unknowns (module docstring): x = (the packed x of
    :class:`solvers.deep.model.DeepModel`, μ of the readout's maximisers, μ of the first layer's), residual =
    (the deep residual with the condensate terms, φ_δ(μ_j, 1 − q_j)). ``delta`` is the smoothing δ >= 0;
    ``truncated``: the bulk's layer integrals without their domain check (module docstring)."""

    def __init__(self, spec, sigmas, options, last, first, delta: float, sizes=None, truncated: bool = True,
                 hidden=None):
        super().__init__(spec, sigmas, replace(options, condensate_epsilon=0.0), sizes=sizes)
        if self.oned.kind != "relu":
            raise ValueError(f"KKTModel: the condensate is the ReLU's, not {spec.nonlinearity!r}'s")
        if not delta >= 0.0:
            raise ValueError(f"KKTModel: delta must be >= 0, got {delta!r}")
        self.delta = float(delta)
        self.condensate = Multipliers(last, first, check=not truncated, hidden=hidden)
        self.truncated = bool(truncated)
        self.n_base = self.n
        self.n_mu = len(self.condensate.mu)
        self.n = self.n_base + self.n_mu

    def multipliers(self, x) -> np.ndarray:
        return np.asarray(x, dtype=np.float64)[self.n_base:self.n]

    def with_multipliers(self, x_base, mu) -> np.ndarray:
        return np.concatenate([np.asarray(x_base, dtype=np.float64)[:self.n_base], np.asarray(mu, dtype=np.float64)])

    def evaluate(self, x, proposals, rules=None, oned=None):
        x = np.asarray(x, dtype=np.float64)
        hook = self.condensate
        hook.mu = x[self.n_base:self.n].copy()
        hook.q[:] = np.nan
        ev = super().evaluate(x[:self.n_base], proposals, rules=rules, oned=oned)
        comp = fischer_burmeister(hook.mu, hook.margins, self.delta)
        ev["residual"] = np.concatenate([ev["residual"], comp])
        ev["obs"] = np.concatenate([ev["obs"], hook.mu])
        ev["q"] = hook.q.copy()
        return ev

    def kernel_coords(self, x):
        return super().kernel_coords(np.asarray(x)[:self.n_base])

    def readout_needles(self, t, ker):
        """With ``options.needle_split`` = r_c > 0: the readout's integral split along every tracked readout
        maximiser ŷ_j (all of them, active or not, so the split does not switch as a μ_j reaches 0), smooth
        half-spaces of width :data:`NEEDLE_WIDTH`, the slices' Sobol' seed from ``options.seed``
        (:class:`theory.deep_needle_tail.Needles`); None when off or without readout maximisers."""
        r_c = self.opt.needle_split
        if not r_c or not len(self.condensate.last):
            return None
        dom = self.condensate.readout_domain(self, t, ker)
        return Needles(dom.directions, float(r_c), width=NEEDLE_WIDTH, n_points=NEEDLE_POINTS,
                       seed=1000 * self.opt.seed)

    def hidden_needles(self, ell: int, kw: dict):
        """With ``options.hidden_needle_split`` = r_c > 0: hidden layer ℓ's integral split along every maximiser of its
        domain that the model tracks (active or not), in the layer's own y: the first layer's v (y = v, u = B v;
        :meth:`Multipliers.first_layer`), a middle layer's (v, w)
        (:func:`solvers.deep.hidden_condensate.tracked_hidden`);
        the half-spaces and slices as the readout's (:meth:`readout_needles`), the slices' seed 1000·seed + ℓ. None
        when off or without tracked maximisers in that layer."""
        r_c = self.opt.hidden_needle_split
        hook = self.condensate
        if not r_c or not len(hook.first if ell == 1 else hook.hidden.get(ell, ())):
            return None
        if ell == 1:
            dirs, q = hook.first_layer(kw["kt"], kw["dt"], self.sigmas[0], self.sizes)[2:]
        else:
            from solvers.deep.hidden_condensate import hidden_fields, tracked_hidden
            fields = hidden_fields(kw["kt"], kw["dt"], self.sigmas[ell - 1], kw["R_in"], kw["delta_in"])
            dirs, q = tracked_hidden(fields, self.sizes, hook.hidden[ell])
        needles = Needles(dirs, float(r_c), width=NEEDLE_WIDTH, n_points=NEEDLE_POINTS, seed=1000 * self.opt.seed + ell)
        reach = float(needles.rule.radii[-1])
        if np.max(q) - 1.0 > 1.0 / reach**2:  # e^{(q − 1) r²/2} grows by more than e^{1/2} along the slices
            raise OutsideDomain(f"layer {ell}'s needle split: q = {np.max(q):.6g} > 1 + 1/r_max², r_max = {reach:.4g}")
        return needles


def _is_local_maximum(y, args, size: float = 1e-3, tries: int = 4) -> bool:
    """Whether the ascent of :func:`theory.deep_condensate.track_directions` from random perturbations of size
    ``size`` around ``y`` returns to ``y`` (cosine > 1 − 1e-6): a local maximum of the readout domain, not a
    stationary saddle (which :func:`theory.deep_condensate.condensate_directions` also keeps), whose tracking
    would jump to another maximiser under small changes of the unknowns."""
    rng = np.random.default_rng(0)
    for _ in range(tries):
        d = track_directions(y + size * rng.standard_normal(len(y)), *args).directions
        if len(d) != 1 or float(d[0] @ y) < 1.0 - 1e-6:
            return False
    return True


def _active_maximisers(model: DeepModel, x, ev, q_min: float):
    """([readout maximisers, first-layer maximisers, middle layers' maximisers...], [their q]) with q >= ``q_min``
    at ``x`` (``ev`` its evaluation; the first layer's only at L >= 2, the middle layers' ℓ = 2..L−1 at L >= 3): the
    readout's local maxima of its domain (:func:`_is_local_maximum`), the first layer's under the tilt of ``ev``
    (:func:`solvers.deep.kkt.tilted_first_layer`), the middle layers' by
    :func:`solvers.deep.hidden_condensate.hidden_maximisers`."""
    t, ker = model.unpack(x)
    R, delta_in, _ = _readout_layer(model, ker)
    args = (t, model.spec.sigma_a, R, delta_in, model.sigmas[-1], model.sizes)
    dom = condensate_directions(*args)
    keep = (dom.q >= q_min) & np.array([_is_local_maximum(y, args) for y in dom.directions], dtype=bool)
    sets, qs = [dom.directions[keep]], [dom.q[keep]]
    if model.L >= 2:
        up = ev["layers"][1]
        _, _, dirs, q = tilted_first_layer(up.kt_in, up.dt_in, model.sigmas[0], model.sizes)
        sets.append(dirs[q >= q_min])
        qs.append(q[q >= q_min])
    else:
        sets.append(np.zeros((0, model.m)))
        qs.append(np.zeros(0))
    if model.L >= 3:
        from solvers.deep.hidden_condensate import hidden_maximisers
        more, mq = hidden_maximisers(model, x, ev, q_min)
        sets += more
        qs += mq
    return sets, qs


def _hidden(sets) -> dict:
    """{ℓ: maximisers} of the middle layers ℓ = 2.. from the sets of :func:`_active_maximisers`."""
    return {ell: y for ell, y in enumerate(sets[2:], start=2)}


def kkt_model(model: DeepModel, x, props, delta: float, q_min: float = Q_MIN, sizes=None, fit: bool = True,
              truncated: bool = True):
    """(a :class:`KKTModel` of ``model``'s spec, σ's and options with smoothing ``delta``, its start x) at the
    solved (or barrier) point ``x`` of ``model``: the readout's and the first layer's maximisers with q >= ``q_min``
    there get multipliers, started at :func:`fitted_multipliers` (``fit``) or on the central path μ = δ²/(1 − q)
    (0 at δ = 0)."""
    x = np.asarray(x, dtype=np.float64)[:model.n if not isinstance(model, KKTModel) else model.n_base]
    ev = model.safe_eval(x, props) if model.L >= 2 else None
    if model.L >= 2 and ev is None:
        raise OutsideDomain("kkt_model: the start does not evaluate")
    sets, qs = _active_maximisers(model, x, ev, q_min)
    kkt = KKTModel(model.spec, model.sigmas, model.opt, sets[0], sets[1], delta,
                   sizes=model.sizes if sizes is None else sizes, truncated=truncated, hidden=_hidden(sets))
    q = np.concatenate(qs)
    if fit:
        return kkt, kkt.with_multipliers(x, fitted_multipliers(kkt, x, props))
    mu = delta**2 / np.maximum(1.0 - q, 1e-300) if delta > 0 else np.zeros(len(q))
    return kkt, kkt.with_multipliers(x, mu)


def fitted_multipliers(model: KKTModel, x, props) -> np.ndarray:
    """The multipliers μ >= 0 that minimise ||r(x, μ)||₂ over the deep residual r at fixed x (non-negative least
    squares): r is affine in μ at fixed x (the terms are linear in μ, the maximisers do not depend on it, except the
    first layer's through the tilt when the readout's μ change it), so k + 1 evaluations give it. A start for
    Newton far better than the central path's δ²/(1 − q) when x is not yet a KKT point."""
    from scipy.optimize import nnls

    x = np.asarray(x, dtype=np.float64)[:model.n_base]
    k = model.n_mu
    ev0 = model.safe_eval(model.with_multipliers(x, np.zeros(k)), props)
    if ev0 is None:
        raise OutsideDomain("fitted_multipliers: the start does not evaluate")
    nb = len(ev0["residual"]) - k
    cols = []
    for j in range(k):
        ev = model.safe_eval(model.with_multipliers(x, np.eye(k)[j]), props)
        cols.append(np.zeros(nb) if ev is None else ev["residual"][:nb] - ev0["residual"][:nb])
    return nnls(np.array(cols).T.reshape(nb, k), -ev0["residual"][:nb])[0]


def follow_delta(model: KKTModel, x, props, deltas, log, label: str = "δ", halvings: int = 4, rounds: int = 2,
                 solve=None):
    """Follow the KKT point of ``model`` through the smoothings ``deltas`` (in order, e.g. decreasing to the
    complementarity δ → 0) from the point (``x``, ``props``) solved at ``model.delta``: each δ solved by ``solve``
    (model, x, props, label) → (x, proposals) or None (default :func:`solvers.deep.newton.solve_at`) from the last
    solved point (the maximisers re-tracked from there), a failed δ replaced by the geometric midpoint with the last
    solved δ up to ``halvings`` times in a row (a failure at the last solved δ itself stops at once).
    Returns ([(δ, x, proposals, Newton iterations)] of the solved points, '' or where it stopped)."""
    if solve is None:
        from solvers.deep.newton import solve_at

        def solve(mdl, xs, ps, lab):
            out = solve_at(mdl, xs, ps, log, lab, rounds=rounds, tol=1e-9, jacobians=False)
            return None if out is None else (out[0], out[4])

    points, todo, fails = [], [float(d) for d in deltas], 0
    last = model.delta
    while todo:
        d = todo[0]
        model.delta = d
        nit = log.iterations
        out = solve(model, x, props, f"{label} = {d:.3g}")
        if out is None:
            model.delta = last
            fails += 1
            if fails > halvings or d == last:
                return points, f"{label}: Newton failed at {d:.3g}, last solved {last:.3g}"
            todo.insert(0, float(np.sqrt(last * d)) if last > 0 and d > 0 else 0.5 * (last + d))
            continue
        (x, props), fails, last = out, 0, d
        todo.pop(0)
        model.safe_eval(x, props)
        model.condensate.retrack()
        points.append((d, x, props, log.iterations - nit))
    return points, ""


def refreshed(model: KKTModel, x, props, q_min: float = Q_MIN):
    """(``model`` with the maximisers found afresh at ``x``, its x) or (``model``, ``x``) unchanged: the full searches
    of both domains (:func:`kkt_model`'s selection, the first layer under the tilt with the readout's terms); a
    maximiser within cosine 1e-6 of a tracked one keeps its multiplier, a new one starts on the central path
    μ = δ²/(1 − q); tracked ones the searches no longer find are dropped (the maximisers of a domain change along a
    homotopy: at small P the readout's are 111 and 011, at the paper's P the one-class ones)."""
    ev = model.safe_eval(x, props)
    if ev is None:
        return model, x
    new_sets, new_q = _active_maximisers(model, x, ev, q_min)
    old_sets = model.condensate.tracked
    mu_old = model.multipliers(x)
    old_mu = [mu_old[model.condensate.slice(i)] for i in range(len(old_sets))]
    old_sets, old_mu = (list(old_sets) + [np.zeros((0, np.shape(y)[-1])) for y in new_sets[len(old_sets):]],
                        old_mu + [np.zeros(0)] * (len(new_sets) - len(old_mu)))  # layers without a set before
    same = all(len(a) == len(b) and (not len(a) or np.all(np.max(a @ b.T, axis=1) > 1 - 1e-6))
               for a, b in zip(new_sets, old_sets))
    if same:
        return model, x
    mu = []
    for new, q, old, mo in zip(new_sets, new_q, old_sets, old_mu):
        for y, qj in zip(new, q):
            cos = old @ y if len(old) else np.zeros(0)
            j = int(np.argmax(cos)) if len(cos) else -1
            mu.append(mo[j] if j >= 0 and cos[j] > 1 - 1e-6 else model.delta**2 / max(1.0 - qj, model.delta))
    out = KKTModel(model.spec, model.sigmas, model.opt, new_sets[0], new_sets[1], model.delta, sizes=model.sizes,
                   truncated=model.truncated, hidden=_hidden(new_sets))
    out.T = model.T
    return out, out.with_multipliers(x, np.array(mu))


def scaled_kkt(model: KKTModel, spec, sizes) -> KKTModel:
    """``model``'s equations (maximisers tracked from its last ones, same δ) at real class sizes ``sizes`` with
    σ_a² P as in ``spec`` (the paper's scaling; the homotopy in P of :func:`follow_sizes`)."""
    P, Ps = float(np.sum(spec.class_sizes)), float(np.sum(sizes))
    return KKTModel(spec.replace(sigma_a=spec.sigma_a * np.sqrt(P / Ps)), model.sigmas, model.opt,
                    model.condensate.last, model.condensate.first, model.delta, sizes=sizes,
                    truncated=model.truncated, hidden=model.condensate.hidden)


def _solve_kkt(model: KKTModel, x, props, log, label, symmetric: bool, **kw):
    """:func:`solvers.deep.newton.solve_at` on ``model`` from ``x`` (``kw``: its options), or with ``symmetric`` in
    the subspace symmetric under permutations of equal-size classes with group-averaged proposals
    (:mod:`solvers.deep.class_symmetry`); (x, ev, None, None, proposals) in ``model``'s coordinates, or None."""
    from solvers.deep.class_symmetry import symmetric_solve
    from solvers.deep.newton import solve_at

    if not symmetric:
        return solve_at(model, x, props, log, label, jacobians=False, **kw)
    # at a symmetric point the rule's asymmetry puts one of two equal maximisers' q past 1 when the margins are
    # ~δ²/μ: the symmetric steps run with the truncated bulk (unless the rule is exactly symmetric,
    # DeepOptions.symmetric_rule)
    with truncated_bulk(model):
        out = symmetric_solve(model, x, props, log, label + " (symmetric)", **kw)
    return None if out is None else (out[0], out[1], None, None, out[3])


@contextmanager
def truncated_bulk(model: KKTModel):
    """``model`` with the truncated bulk and no domain checks inside the block (unchanged when its rule is exactly
    class-symmetric, ``class_perms``), as it was after it."""
    saved = model.truncated, model.condensate.check
    if model.class_perms is None:
        model.truncated, model.condensate.check = True, False
    try:
        yield model
    finally:
        model.truncated, model.condensate.check = saved


def start_of_sizes(spec, sigmas, options, delta: float, truncated: bool, start=None) -> tuple:
    """The start of :func:`follow_sizes`: (model, x, proposals, its P) — ``start`` as given (its P = Σ its sizes) or
    the prior KKT start at class sizes P_c/min P_c (model None if it does not solve)."""
    if start is not None:
        model, x, props = start
        return model, x, props, float(np.sum(model.sizes))
    sizes = np.asarray(spec.class_sizes, dtype=np.float64)
    lo, total = float(np.min(sizes)), float(np.sum(sizes))
    model, x, props = _prior_kkt_start(spec, sigmas, options, delta, truncated, sizes / lo, lo)
    return model, x, props, total / lo


def secant_predictor(trial: KKTModel, points, P: float, multipliers: bool = False):
    """The first guess at P of :func:`follow_sizes`: the secant in log P through the last two solved ``points`` on the
    base unknowns (the multipliers, whose list may have changed, as solved; with ``multipliers``, on them too where
    both points have the same number of them, each kept >= 0), shrunk towards the last point by 0.5 % steps if
    ``trial`` cannot evaluate it; None if no such point evaluates."""
    from solvers.deep.condensate import _evaluable

    x0 = points[-1].x
    if len(points) >= 2:
        a, b = points[-2], points[-1]
        nb = len(b.x) if multipliers and len(a.x) == len(b.x) else trial.n_base
        x0 = b.x.copy()
        x0[:nb] += (b.x[:nb] - a.x[:nb]) * np.log(P / b.p) / np.log(b.p / a.p)
        if nb > trial.n_base:  # extrapolated multipliers kept >= 0
            x0[trial.n_base:] = np.maximum(x0[trial.n_base:], 0.0)
    if trial.safe_eval(x0, points[-1].props) is None:
        x0 = _evaluable(trial, x0, points[-1].props, shrink=0.995, tries=60)
    return x0


def follow_sizes(spec, sigmas, options, delta: float, log, ratio: float = 1.25, halvings: int = 6,
                 progress=None, truncated: bool = False, symmetric: float = np.inf, start=None,
                 keep_on_refresh_failure: bool = False, solve=None, refresh=None, on_point=None, previous=None,
                 first_ratio=None, memory=None, until=None):
    """The homotopy in P of the deep search (``_Search.from_small_p`` in :mod:`solvers.deep.nonlinear`: class sizes
    s·P_c/min P_c at fixed σ_a² P, from s = 1 to the spec's sizes) with both condensates as KKT unknowns from the
    start (smoothing ``delta``; the maximisers with q >= :data:`Q_MIN` at s = 1, where no constraint is active, are
    the ones tracked): each step from the secant predictor in log s, t shrunk by 0.5 % steps if that leaves a
    domain, corrected by :func:`solvers.deep.newton.solve_at`; a step that took at most 5 Newton iterations lets
    the ratio grow by 1.2 (at most ``ratio``), a failed step is halved in log s up to ``halvings`` times in a row.
    ``progress`` (:mod:`solvers.progress`) gets each solved P. ``truncated``: the bulk without its domain checks
    (:class:`KKTModel`); off by default here, because far from a KKT point the truncated bulk beyond q = 1 is
    huge rather than refused and misleads the line search. ``symmetric``: the steps at P >= this solved in the subspace
    symmetric under permutations of equal-size classes (:func:`_solve_kkt`). ``start``: (a :class:`KKTModel` at class
    sizes s·P_c/min P_c, its x, proposals) to go on from instead of the prior start at s = 1 (at L = 3 the prior start
    does not solve at small T: :func:`solvers.deep.small_p_start.small_p_start`). ``keep_on_refresh_failure``: where
    the equations with a newly found maximiser do not solve, go on with the tracked ones instead of stopping.
    ``solve`` (default :func:`_solve_kkt`), ``refresh`` (default :func:`refreshed`): the step's solver and the
    maximisers' refresh, same signatures (at L >= 3: :mod:`solvers.deep.layer_symmetry`); ``on_point`` (model, P,
    x, proposals) is called at each solved point (e.g. to save it for a resumption). ``previous``: an earlier solved
    (P, x) of the start's path (the first step's secant predictor; without it the first step starts at the start's
    x, which at L = 3 near the boundaries leaves a domain even for a step of 0.5 %); ``first_ratio``: the first step's
    ratio (default ``ratio``; a start near a constraint's onset needs steps of ~1 %). ``memory``
    (:class:`solvers.deep.newton.JacobianMemory`): the Jacobian carried from step to step (``solve`` gets it as
    ``memory=``), the secant on the multipliers too, and the step control of :mod:`solvers.deep.size_steps`.
    ``until``: end the homotopy at this P (default: the spec's). Returns
    (:class:`solvers.deep.barrier_path.Path` of the solved points, p = P, and the :class:`KKTModel` of the last one)."""
    from solvers.deep.barrier_path import Path, PathPoint
    from solvers.progress import report

    solve, refresh = with_memory(solve or _solve_kkt, memory), refresh or refreshed
    sizes = np.asarray(spec.class_sizes, dtype=np.float64)
    total = float(np.sum(sizes))
    model, x, props, P0 = start_of_sizes(spec, sigmas, options, delta, truncated, start)
    if model is None:
        return Path(stopped="homotopy in P: the prior start at s = 1 does not solve"), None
    out = solve(model, x, props, log, f"KKT P = {P0:.4g}", P0 >= symmetric, rounds=2, tol=1e-9)
    if out is None:
        return Path(stopped=f"homotopy in P: Newton failed at the start P = {P0:.4g}"), model
    path = Path(([PathPoint(float(previous[0]), np.asarray(previous[1]), out[4], 0)] if previous is not None else [])
                + [PathPoint(P0, out[0], out[4], 0)])
    _retracked(model, out[0], out[4])
    steps, end = SizeSteps(ratio, first_ratio, halvings, memory), total if until is None else float(until)
    while path.last.p < end * (1 - 1e-12):
        P = min(end, path.last.p * steps.step)
        trial = scaled_kkt(model, spec, sizes * P / total)
        x0 = secant_predictor(trial, path.points, P, multipliers=memory is not None)
        steps.begin(log)
        out = None if x0 is None else solve(trial, x0, path.last.props, log, f"KKT P = {P:.4g}", P >= symmetric,
                                            rounds=2, tol=1e-9, maxiter=25)
        if out is None:
            if steps.failed():
                path.stopped = f"homotopy in P: Newton failed at P = {P:.4g}, last solved {path.last.p:.4g}"
                return path, model
            continue
        steps.converged()
        props = out[4] if trial.safe_eval(out[0], out[4]) is not None else path.last.props
        model = tracked = _retracked(trial, out[0], props)
        model, xr = refresh(model, out[0], props) if steps.backoff.due() else (model, out[0])
        if xr is not out[0]:  # the maximisers changed: re-solved with the new multipliers
            steps.before_refresh()
            again = solve(model, xr, props, log, f"KKT P = {P:.4g}, maximisers refreshed", P >= symmetric, rounds=2,
                          tol=1e-9, maxiter=25)
            steps.refreshed(again is not None)
            if again is None and not keep_on_refresh_failure:
                path.stopped = f"homotopy in P: Newton failed after the maximisers changed at P = {P:.4g}"
                return path, model
            model, out = (tracked, out) if again is None else (model, again)  # None: go on with the tracked ones
            _retracked(model, out[0], props)
        path.points.append(PathPoint(P, out[0], props, steps.iterations(log)))
        if on_point is not None:
            on_point(model, P, out[0], props)
        if not report(progress, "homotopy in P (KKT)", len(path.points) - 1, None, p=P,
                      iterations=steps.iterations(log)):
            path.stopped = f"homotopy in P: stopped by the caller at P = {P:.4g}"
            return path, model
        steps.solved(log)
    return path, model


def _retracked(model: KKTModel, x, props) -> KKTModel:
    """``model`` with its maximisers tracked from those of an evaluation at (``x``, ``props``) from now on."""
    model.safe_eval(x, props)
    model.condensate.retrack()
    return model


def _prior_kkt_start(spec, sigmas, options, delta, truncated, sizes, scale):
    """(the :class:`KKTModel` at real class sizes ``sizes``, with σ_a² P as in ``spec`` (``scale`` = P/ΣP_s),
    its x, proposals) from the prior start with t solved at fixed kernels (:func:`solvers.deep.newton.t_only`);
    (None, None, None) if that fails."""
    from solvers.deep.newton import t_only

    plain = DeepModel(spec.replace(sigma_a=spec.sigma_a * np.sqrt(scale)), sigmas, options, sizes=sizes)
    x = prior_start(plain, spec.temperature)
    props = plain.initial_proposals(x, options.inflate if options.inflate is not None else 1.5)
    x = t_only(plain, x, props)
    if x is None:
        return None, None, None
    model, x = kkt_model(plain, x, props, delta, truncated=truncated)
    return model, x, props
