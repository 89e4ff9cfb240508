"""How close a deep ReLU class-block solution is to its readout condensate (THEORY §4, §5).

The last hidden layer's y-integral converges iff q(t, K_{L-1}) < 1 (:mod:`theory.deep_condensate`:
q = 2 max_ŷ Σ_c P_c g_c). In the paper's regime (classes 32,16,16, σ_a² P = 1, T = 0.05) the deep ReLU
solution approaches q = 1 along one-class directions: there the theory needs a condensate (outlier neurons
with O(√N) readouts, as for one hidden layer, :mod:`solvers.finite_p.dual`) that the class-block equations do
not carry, and the homotopy in P stops. :func:`readout_domain` measures q and the condensate directions at
a point of the deep equations; :func:`domain_note` turns them into the sentence that the solver's failure
message adds (:mod:`solvers.deep.nonlinear`).

Near the boundary the measure grows a needle along each maximiser ŷ*_j: along it the integrand decays
like e^{−(1 − q_j) r²/2}, so its length is ~(1 − q_j)^{−1/2} standard deviations, far beyond a
moment-matched Gaussian, which then misses the needle's share of f, U and K̃_{L-1}. :func:`with_needles`
adds one Gaussian component per needle to the last layer's proposal (a
:class:`theory.deep_mixture.MixtureProposal`, balance heuristic): along ŷ*_j standard deviation
``NEEDLE_ALONG``/√(1 − q_j), centred ``NEEDLE_SHIFT`` of that out, variance ``NEEDLE_TRANSVERSE`` across.
Only for nested (Sobol') rules, whose replicate spread stays an honest error estimate; a tensor
Gauss–Hermite rule does not resolve the elongated components.
"""
from __future__ import annotations

import numpy as np

from solvers.deep.kkt import tilted_first_layer
from solvers.deep.model import DeepModel
from theory.deep_condensate import ReadoutDomain, condensate_directions
from theory.deep_layer import layer_needle_directions, log_integrand
from theory.deep_mixture import MixtureProposal
from theory.deep_needle import bulk_laplace, needle_length, slice_needle
from theory.deep_rules import Proposal

__all__ = ["NEAR_BOUNDARY", "NEEDLE_ALONG", "NEEDLE_SHIFT", "NEEDLE_TRANSVERSE", "MAX_NEEDLES", "readout_domain",
           "domain_note", "with_needles", "slice_mixture", "needle_rounds", "first_layer_directions"]

#: margin 1 − q below which the failure message names the condensate directions, and a direction gets a
#: needle component
NEAR_BOUNDARY = 0.05
#: needle component: standard deviation along ŷ* in units of (1 − q)^{-1/2}, its centre in units of that
#: standard deviation, its variance across, and the most needles per layer
NEEDLE_ALONG, NEEDLE_SHIFT, NEEDLE_TRANSVERSE, MAX_NEEDLES = 1.5, 0.7, 1.0, 6
#: weight of the defensive component of a proposal with needles
NEEDLE_DEFENSIVE = 0.3


def readout_domain(model: DeepModel, x) -> ReadoutDomain | None:
    """The readout domain of the last hidden layer at the packed point ``x`` of ``model`` (ReLU only;
    None for other φ). For L = 1 the input kernel is K_0 = I (ξ = 0, s = σ_1)."""
    if model.oned.kind != "relu":
        return None
    t, ker = model.unpack(np.asarray(x, dtype=np.float64))
    if ker:
        R, delta = ker[-1]
    else:
        R, delta = np.zeros((model.m, model.m)), np.ones(model.m)
    return condensate_directions(t, model.spec.sigma_a, R, delta, model.sigmas[-1], model.sizes)


def domain_note(last) -> str:
    """'' or the sentence on the readout domain at ``last`` = (model, x), the last point a continuation
    solved (None: ''), when its margin is below :data:`NEAR_BOUNDARY`."""
    if last is None:
        return ""
    model, x = last
    dom = readout_domain(model, x)
    if dom is None or not len(dom.q) or dom.margin >= NEAR_BOUNDARY:
        return ""
    near = list(dict.fromkeys(c for c, q in zip(dom.code_strings(), dom.q) if q >= 1.0 - NEAR_BOUNDARY))[:4]
    return (f"; at P = {float(np.sum(model.sizes)):.4g} the last hidden layer is near its ReLU readout domain "
            f"boundary (q = {dom.q[0]:.4f}, margin {dom.margin:.1e}) along directions with codes "
            f"{', '.join(near)}: the solution needs a condensate of outlier neurons (THEORY §4), which the "
            "class-block measure of L >= 2 does not carry")


def first_layer_directions(model: DeepModel, ev):
    """(directions (k, m), q (k,)) of the first hidden layer's domain (L >= 2) under the tilt (k̃_1, δ̃_1) of
    the evaluation ``ev`` (:func:`solvers.deep.kkt.tilted_first_layer`)."""
    up = ev["layers"][1]
    return tilted_first_layer(up.kt_in, up.dt_in, model.sigmas[0], model.sizes)[2:]


def _needle_mixture(proposal, dirs):
    """The defensive Gaussian of ``proposal`` plus one needle component per (ŷ, q) in ``dirs``."""
    defensive = proposal if isinstance(proposal, Proposal) else Proposal(proposal.means[0], proposal.chols[0])
    dim = len(defensive.mean)
    means, covs = [], []
    for y, q in dirs:
        sd = NEEDLE_ALONG / np.sqrt(1.0 - q)
        means.append(NEEDLE_SHIFT * sd * y)
        covs.append(sd * sd * np.outer(y, y) + NEEDLE_TRANSVERSE * (np.eye(dim) - np.outer(y, y)))
    return MixtureProposal.build(defensive, means, covs, np.ones(len(means)), NEEDLE_DEFENSIVE)


def slice_mixture(model: DeepModel, x, proposal, dirs, ev=None, inflate: float = 1.5) -> MixtureProposal:
    """The defensive Gaussian of ``proposal``, the Laplace Gaussian of the bulk
    (:func:`theory.deep_needle.bulk_laplace`) and one slice needle (:func:`theory.deep_needle.slice_needle`) per
    (ŷ, q) in ``dirs`` for the last layer's y-measure at ``x`` or, given the evaluation ``ev`` (L >= 2), the first
    layer's under its tilt: the needle's cross-section and profile follow the integrand slice by slice instead of
    one elongated Gaussian."""
    defensive = proposal if isinstance(proposal, Proposal) else Proposal(proposal.means[0], proposal.chols[0])
    if ev is None:
        t, ker = model.unpack(np.asarray(x, dtype=np.float64))
        R, delta = ker[-1] if ker else (None, None)
        kw = dict(R_in=R, delta_in=delta, t=t, sigma_a=model.spec.sigma_a)
        sigma = model.sigmas[-1]
    else:
        up = ev["layers"][1]
        kw, sigma = dict(kt=up.kt_in, dt=up.dt_in), model.sigmas[0]

    def logf(y):
        return log_integrand(model.oned, model.sizes, sigma, y, **kw)

    needles = tuple(slice_needle(logf, y, needle_length(q), inflate=inflate) for y, q in dirs)
    mode, cov = bulk_laplace(logf, len(defensive.mean))
    w = (1.0 - NEEDLE_DEFENSIVE) / (len(needles) + 1)
    return MixtureProposal(np.stack([defensive.mean, mode]), np.stack([defensive.chol, np.linalg.cholesky(cov)]),
                           np.log(np.array([NEEDLE_DEFENSIVE] + [w] * (len(needles) + 1))), needles)


def _near(directions, q) -> list:
    """The (ŷ, q) with margin below :data:`NEAR_BOUNDARY`, best first, without near-duplicates."""
    dirs = []
    for y, qj in zip(directions, q):
        if qj < 1.0 - NEAR_BOUNDARY or len(dirs) == MAX_NEEDLES:
            break
        if qj < 1.0 and all(abs(float(y @ d)) < 0.99 for d, _ in dirs):
            dirs.append((np.asarray(y, dtype=np.float64), float(qj)))
    return dirs


def _readout_directions(model: DeepModel, x):
    """(unit directions, q) of the last layer's needles at x: the ReLU readout domain's maximisers
    (:func:`readout_domain`), or for the shape homotopy's leaky ReLU (σ < 1) the maximisers of its growth
    (:func:`theory.deep_layer.layer_needle_directions`), whose negative side grows too."""
    if model.oned.shape < 1.0:
        t, ker = model.unpack(np.asarray(x, dtype=np.float64))
        return layer_needle_directions(model.oned, model.sizes, model.sigmas[-1], q_min=1.0 - NEAR_BOUNDARY,
                                       **model.layer_kwargs(model.L, t, ker, None))
    dom = readout_domain(model, x)
    y = dom.directions[:, :model.dims[-1]]  # L = 1: y = v (ŵ = 0 there)
    return y / np.linalg.norm(y, axis=1, keepdims=True), dom.q


def _first_directions(model: DeepModel, x, ev):
    """(unit directions, q) of the first hidden layer's needles under the tilt of ``ev``: as
    :func:`_readout_directions` (:func:`first_layer_directions` for the ReLU itself)."""
    if model.oned.shape < 1.0:
        t, ker = model.unpack(np.asarray(x, dtype=np.float64))
        return layer_needle_directions(model.oned, model.sizes, model.sigmas[0], q_min=1.0 - NEAR_BOUNDARY,
                                       **model.layer_kwargs(1, t, ker, ev))
    return first_layer_directions(model, ev)


def with_needles(model: DeepModel, x, props, kind: str = "gauss") -> list:
    """``props`` with needle components (module docstring) in the last layer's proposal for each maximiser of
    its readout domain at ``x`` with margin below :data:`NEAR_BOUNDARY`, and likewise in the first hidden
    layer's (L >= 2) for its tilted domain (:func:`first_layer_directions`; for the leaky ReLU of the shape
    homotopy the maximisers of each layer's growth, :func:`_readout_directions`); only layers with nested rules.
    ``props`` itself when φ is not ReLU or no layer needs needles."""
    if model.oned.kind != "relu":
        return props
    out = list(props)
    try:
        if model.rules[-1].nested:
            dirs = _near(*_readout_directions(model, x))
            if dirs:
                out[-1] = (slice_mixture(model, x, props[-1], dirs) if kind == "slice"
                           else _needle_mixture(props[-1], dirs))
        if model.L >= 2 and model.rules[0].nested:
            ev = model.safe_eval(x, out)
            if ev is not None:
                dirs = _near(*_first_directions(model, x, ev))
                if dirs:
                    out[0] = (slice_mixture(model, x, props[0], dirs, ev) if kind == "slice"
                              else _needle_mixture(props[0], dirs))
    except (ValueError, np.linalg.LinAlgError):
        return props
    return props if all(a is b for a, b in zip(out, props)) else out


def needle_rounds(model: DeepModel, x0, props, solve, rounds: int = 3):
    """``solve(x, props)`` (a :func:`solvers.deep.newton.solve_at` tuple or None) from ``x0``, re-solved with
    needle proposals placed at each solution (:func:`with_needles`) while it lies near the readout domain
    boundary, at most ``rounds`` times. None if a re-solve that needed needles fails: a solution whose last
    layer misses its needles is not kept."""
    new = with_needles(model, x0, props)
    if new is not props:  # other φ and starts away from the boundary: exactly solve(x0, props)
        x0, props = _evaluable(model, x0, new), new
    out = None if x0 is None else _solve_fresh(model, x0, props, solve)
    for _ in range(rounds):
        if out is None:
            return None
        new = with_needles(model, out[0], out[4])
        if new is out[4]:
            return out
        x = _evaluable(model, out[0], new)
        out = None if x is None else _solve_fresh(model, x, new, solve)
    return out


def _solve_fresh(model: DeepModel, x, props, solve):
    """``solve(x, props)`` after a full search of the last layer's readout maximisers for the condensate
    barrier (:class:`solvers.deep.kkt.Barrier`, tracked from there during the solve), if the model has one."""
    if model.condensate is not None:
        model.condensate.refresh(model, x)
    return solve(x, props)


def _evaluable(model: DeepModel, x, props, shrink: float = 0.85, tries: int = 15):
    """x, or x with t scaled down until the equations evaluate with ``props`` (the needles' share of the
    last layer's conjugate kernel can tilt a lower ReLU layer out of its domain); None if none does."""
    y = np.array(x, dtype=np.float64)
    for _ in range(tries):
        if model.safe_eval(y, props) is not None:
            return y
        y[:model.nt] *= shrink
    return None
