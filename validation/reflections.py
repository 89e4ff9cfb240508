"""Reflection moves for deep networks whose φ has a reflection symmetry: exact Metropolis–Hastings
involutions that flip one neuron's incoming weights (THEORY §7, ergodicity).

Symmetry. φ(−h) = s − φ(h) for every h, with s = 2φ(0) (:func:`reflection_offset`): normcdf (s = 1;
a flip maps the 0/1 code 100 ↔ 011, 010 ↔ 101, 001 ↔ 110, 111 ↔ 000), erf and tanh (s = 0). ReLU has no
such identity (φ(h) + φ(−h) = |h|), so a flipped neuron's activations are no affine image of its old ones
and the move is not a code exchange; linear φ has it (s = 0), but a flip then leaves Φ_LᵀΦ_L, the target
and every observable unchanged, and linear networks have no codes. Both are refused.

Target: the collapsed posterior of :mod:`validation.deep_network` (readout integrated out),

    log p(W | D) = ℓ(G) − Σ_ℓ |W^ℓ|²/(2σ_ℓ²),   ℓ(G) = −(m/2) log det M − (β/2) tr(Yᵀ M⁻¹ Y),
    M = I_P + c G,   G = Φ_LᵀΦ_L,   c = σ_a² β N^{-2γ}.

Last-layer move (:func:`last_layer_reflections`). Pick a neuron i uniformly and propose W^L_i → −W^L_i.
The map is an involution with unit Jacobian, its own reverse (the same i), and the Gaussian prior is
even, so Metropolis–Hastings accepts with min(1, exp[ℓ(G') − ℓ(G)]). Row i of Φ_L goes from φ to
φ' = s 1 − φ, so G' = G − φφᵀ + φ'φ'ᵀ, i.e. M' = M + U S Uᵀ with U = [φ', φ] (P × 2), S = c diag(1, −1).
With A = Uᵀ M⁻¹ U and B = Uᵀ M⁻¹ Y (matrix determinant lemma; Woodbury):

    log det M' − log det M = log det(I₂ + S A),
    tr(Yᵀ M'⁻¹ Y) − tr(Yᵀ M⁻¹ Y) = −tr(Bᵀ (S⁻¹ + A)⁻¹ B),
    log r = −(m/2) log det(I₂ + S A) + (β/2) tr(Bᵀ (S⁻¹ + A)⁻¹ B),

and after an accepted flip M⁻¹ ← M⁻¹ − M⁻¹U (S⁻¹ + A)⁻¹ UᵀM⁻¹ (O(P²) per attempt, compiled). A sweep's
K attempts start from a fresh Cholesky factor of M; afterwards ℓ is recomputed from the new G and its
difference from ℓ + Σ (accepted log r) is reported as the update's rounding error. If a flip was accepted,
the readout is drawn again from a | W (exact Gibbs step, :func:`validation.deep_sampler.sample_readout`),
so the joint posterior π(W, a) is invariant.

:class:`Reflections` is an ``after_sweep`` hook of :func:`validation.deep_chain.run_deep_chain` with
acceptance counts per layer (after burn-in).
"""
from __future__ import annotations

import math

import numba
import numpy as np
from scipy.linalg import cho_solve

from theory.checks import check_int
from theory.nonlinearities import get_nonlinearity
from theory.spec import SpecError

from .deep_network import DeepNetwork
from .deep_sampler import sample_readout

__all__ = ["reflection_offset", "check_reflections", "reflections_text", "readout_scale", "readout_inverse", "collapsed_loglik",
           "last_layer_reflections", "hidden_flip_loglik", "hidden_layer_reflections", "Reflections",
           "combine_reflections", "SYMMETRY_TOL"]

#: |φ(h) + φ(−h) − 2φ(0)| allowed on the check grid (relative to 1 + |φ|) for φ to count as symmetric
SYMMETRY_TOL = 1e-12


def reflection_offset(nonlinearity: str) -> float:
    """s with φ(−h) = s − φ(h) for all h (s = 2φ(0)): 1 for normcdf, 0 for erf and tanh. Checked on a grid
    h ∈ [−8, 8]; SpecError for linear φ and for φ without the symmetry (ReLU), saying why."""
    if nonlinearity == "linear":
        raise SpecError("reflections need a nonlinear φ: for linear φ a flip W_i → −W_i leaves Φ_LᵀΦ_L, the target "
                        "and every observable unchanged (always accepted, nothing moves), and linear networks have "
                        "no codes")
    phi = get_nonlinearity(nonlinearity)
    h = np.linspace(-8.0, 8.0, 1601)
    up, down = phi.eval(h)[0], phi.eval(-h)[0]
    s = 2.0 * float(phi.eval(np.zeros(1))[0][0])
    gap = float(np.max(np.abs(up + down - s) / (1.0 + np.abs(up))))
    if not gap <= SYMMETRY_TOL:
        raise SpecError(f"reflections need φ(−h) = s − φ(h) for all h (normcdf, erf, tanh); {nonlinearity} has "
                        f"max |φ(h) + φ(−h) − 2φ(0)| = {gap:.3g} on [−8, 8] (ReLU: φ(h) + φ(−h) = |h|), so a flipped "
                        "neuron's activations are no image of its old ones and the flip is not a code exchange")
    return s


def check_reflections(count, nonlinearity: str, hidden=0) -> tuple:
    """(``count``, ``hidden``): last-layer and hidden-layer attempts per sweep as ints >= 0; if either is
    > 0 also :func:`reflection_offset` (SpecError for φ without the symmetry)."""
    count, hidden = check_int("reflections", count, 0), check_int("hidden_reflections", hidden, 0)
    if count or hidden:
        reflection_offset(nonlinearity)
    return count, hidden


def reflections_text(count: int, hidden: int, lead: str = ", ", tail: str = "") -> str:
    """The reports' words for the reflections asked for ("" for none)."""
    parts = ([f"{count} last-layer reflections"] if count else []) + (
        [f"{hidden} hidden-layer reflections"] if hidden else [])
    return lead + " and ".join(parts) + " per sweep" + tail if parts else ""


def readout_scale(net: DeepNetwork) -> float:
    """c = σ_a² β N^{-2γ} of M = I + c Φ_LᵀΦ_L."""
    return net.spec.sigma_a**2 * net.beta / net.width ** (2 * net.gamma)


def readout_inverse(net: DeepNetwork, phi: np.ndarray):
    """(M⁻¹, ℓ(G)) for G = Φ_LᵀΦ_L of the last layer's activations ``phi`` (N × P), M = I + c G
    (module docstring); None where M is not positive definite."""
    factor = net.readout_factor(phi.T @ phi)
    if factor is None:
        return None
    fac, logdet, _ = factor
    Y = net._setup["Y"]
    Minv = cho_solve(fac, np.eye(phi.shape[1]), check_finite=False)
    return Minv, -0.5 * net.spec.m * logdet - 0.5 * net.beta * float(np.vdot(Y, Minv @ Y))


def collapsed_loglik(net: DeepNetwork, phi: np.ndarray) -> float:
    """ℓ(G) = −(m/2) log det M − (β/2) tr(Yᵀ M⁻¹ Y) of the last layer's activations ``phi`` (−inf where M is
    not positive definite)."""
    factor = net.readout_factor(phi.T @ phi)
    if factor is None:
        return -math.inf
    fac, logdet, _ = factor
    Y = net._setup["Y"]
    return -0.5 * net.spec.m * logdet - 0.5 * net.beta * float(np.vdot(Y, cho_solve(fac, Y, check_finite=False)))


@numba.njit(cache=True)
def _flip_attempts(phi, Minv, MinvY, order, log_u, s, c, beta, flips):
    """The K attempts of :func:`last_layer_reflections` in order (module docstring); ``phi`` (N × P),
    M⁻¹ and M⁻¹Y are updated in place after every accepted flip, ``flips[i]`` toggled. Returns
    (accepted, Σ accepted log r)."""
    N, P = phi.shape
    m = MinvY.shape[1]
    v = np.empty(P)
    w = np.empty(P)
    phin = np.empty(P)
    b1 = np.empty(m)
    b2 = np.empty(m)
    accepted = 0
    total = 0.0
    for k in range(order.shape[0]):
        i = order[k]
        for p in range(P):  # v = M⁻¹φ, φ' = s − φ, w = M⁻¹φ' = s M⁻¹1 − v
            acc = 0.0
            row = 0.0
            for q in range(P):
                acc += Minv[p, q] * phi[i, q]
                row += Minv[p, q]
            v[p] = acc
            w[p] = s * row - acc
            phin[p] = s - phi[i, p]
        a11 = 0.0
        a12 = 0.0
        a22 = 0.0
        for p in range(P):
            a11 += phin[p] * w[p]
            a12 += phin[p] * v[p]
            a22 += phi[i, p] * v[p]
        for r in range(m):
            t1 = 0.0
            t2 = 0.0
            for p in range(P):
                t1 += phin[p] * MinvY[p, r]
                t2 += phi[i, p] * MinvY[p, r]
            b1[r] = t1
            b2[r] = t2
        det = (1.0 + c * a11) * (1.0 - c * a22) + c * c * a12 * a12  # det(I₂ + S A)
        if not det > 0.0:
            continue
        c11 = 1.0 / c + a11  # S⁻¹ + A
        c22 = -1.0 / c + a22
        detc = c11 * c22 - a12 * a12
        quad = 0.0
        for r in range(m):
            quad += c22 * b1[r] * b1[r] - 2.0 * a12 * b1[r] * b2[r] + c11 * b2[r] * b2[r]
        quad /= detc
        log_r = -0.5 * m * math.log(det) + 0.5 * beta * quad
        if not log_u[k] < log_r:
            continue
        i11, i12, i22 = c22 / detc, -a12 / detc, c11 / detc  # (S⁻¹ + A)⁻¹
        for p in range(P):  # M⁻¹ −= [w v] C⁻¹ [w v]ᵀ,  M⁻¹Y −= [w v] C⁻¹ B
            xp = i11 * w[p] + i12 * v[p]
            yp = i12 * w[p] + i22 * v[p]
            for q in range(P):
                Minv[p, q] -= xp * w[q] + yp * v[q]
            for r in range(m):
                MinvY[p, r] -= xp * b1[r] + yp * b2[r]
        for p in range(P):
            phi[i, p] = phin[p]
        flips[i] = not flips[i]
        accepted += 1
        total += log_r
    return accepted, total


def last_layer_reflections(rng: np.random.Generator, net: DeepNetwork, theta: np.ndarray, count: int,
                           offset: float):
    """``count`` flips W^L_i → −W^L_i of uniformly drawn last-layer neurons, each accepted with the exact
    ratio of the module docstring (``offset`` = s of φ(−h) = s − φ(h)); then a | W if any was accepted.
    Returns (θ, {"accepted", "update_error": |ℓ updated − ℓ recomputed|})."""
    n = net.dim_hidden
    Ws = [W.copy() for W in net.unpack_hidden(np.array(theta[:n], dtype=np.float64))]
    phi = np.array(net.forward(Ws)[-1][1])
    start = readout_inverse(net, phi)
    if start is None:
        return theta, {"accepted": 0, "update_error": 0.0}
    Minv, ell = start
    order = rng.integers(0, net.width, size=count)
    log_u = np.log(rng.random(count))
    flips = np.zeros(net.width, dtype=np.bool_)
    accepted, total = _flip_attempts(phi, Minv, Minv @ net._setup["Y"], order, log_u, float(offset),
                                     readout_scale(net), float(net.beta), flips)
    if not accepted:
        return theta, {"accepted": 0, "update_error": 0.0}
    Ws[-1][flips] *= -1.0
    fresh = readout_inverse(net, np.array(net.forward(Ws)[-1][1]))
    error = abs(fresh[1] - (ell + total)) if fresh is not None else math.inf
    a = sample_readout(rng, net, Ws)
    return net.pack(Ws, a), {"accepted": int(accepted), "update_error": float(error)}


def hidden_flip_loglik(net: DeepNetwork, Ws, H_next: np.ndarray, layer: int, i: int, scale: float):
    """(H^{ℓ+1} after the flip of neuron i of layer ℓ = ``layer``, ℓ(G') after it) with ``scale`` = s/√N:
    H^{ℓ+1} − s W^{ℓ+1}_{:,i} 1ᵀ/√N, propagated through the layers above (:func:`hidden_layer_reflections`)."""
    H_new = H_next - scale * Ws[layer][:, i:i + 1]
    phi = net._phi(H_new)[0]
    for W in Ws[layer + 1:]:
        phi = net._phi((W @ phi) * net._setup["inv_sqrt_n"])[0]
    return H_new, collapsed_loglik(net, phi)


def hidden_layer_reflections(rng: np.random.Generator, net: DeepNetwork, theta: np.ndarray, count: int,
                             offset: float, layer: int = 1):
    """``count`` joint flips (W^ℓ_i, W^{ℓ+1}_{:,i}) → −(W^ℓ_i, W^{ℓ+1}_{:,i}) of uniformly drawn neurons i of
    hidden layer ℓ = ``layer`` < L, each accepted with min(1, exp[ℓ(G') − ℓ(G)]) (module docstring: the
    prior is even in both, the map is an involution with unit Jacobian). Row i of Φ_ℓ goes to s − φ_i, so
    H^{ℓ+1} → H^{ℓ+1} − s W^{ℓ+1}_{:,i} 1ᵀ/√N; layers above ℓ + 1 are propagated again and G' recomputed.
    Then a | W if any was accepted. Returns (θ, {"accepted"})."""
    n = net.dim_hidden
    Ws = [W.copy() for W in net.unpack_hidden(np.array(theta[:n], dtype=np.float64))]
    fwd = net.forward(Ws)
    ell = collapsed_loglik(net, fwd[-1][1])
    H_next = fwd[layer][0].copy()
    scale = offset * net._setup["inv_sqrt_n"]
    order = rng.integers(0, net.width, size=count)
    log_u = np.log(rng.random(count))
    accepted = 0
    for i, lu in zip(order, log_u):
        H_new, ell_new = hidden_flip_loglik(net, Ws, H_next, layer, i, scale)
        if lu < ell_new - ell:
            Ws[layer - 1][i] *= -1.0
            Ws[layer][:, i] *= -1.0
            H_next, ell = H_new, ell_new
            accepted += 1
    if not accepted:
        return theta, {"accepted": 0}
    return net.pack(Ws, sample_readout(rng, net, Ws)), {"accepted": accepted}


class Reflections:
    """``after_sweep`` hook of :func:`validation.deep_chain.run_deep_chain`: ``count`` last-layer
    reflections per sweep (:func:`last_layer_reflections`), ``hidden`` joint flips in every hidden layer
    ℓ < L (:func:`hidden_layer_reflections`), then ``after`` (a further hook). :meth:`summary` gives the
    acceptance per layer after burn-in and the largest update error of the last-layer moves."""

    def __init__(self, count: int, nonlinearity: str, after=None, hidden: int = 0):
        self.count = check_int("reflections", count, 0)
        self.hidden = check_int("hidden_reflections", hidden, 0)
        if not (self.count or self.hidden):
            raise SpecError("Reflections needs reflections >= 1 or hidden_reflections >= 1 (both are 0)")
        self.offset = reflection_offset(nonlinearity)
        self.after = after
        self.tally = {}  # layer -> [attempts, accepted] after burn-in
        self.update_error = 0.0

    def _count(self, layer, attempts, accepted, burning):
        t = self.tally.setdefault(layer, [0, 0])
        if not burning:
            t[0] += attempts
            t[1] += accepted

    def __call__(self, rng, net, theta, burning: bool):
        if self.count:
            theta, info = last_layer_reflections(rng, net, theta, self.count, self.offset)
            self.update_error = max(self.update_error, info["update_error"])
            self._count(net.layers, self.count, info["accepted"], burning)
        for layer in range(1, net.layers if self.hidden else 1):
            theta, info = hidden_layer_reflections(rng, net, theta, self.hidden, self.offset, layer)
            self._count(layer, self.hidden, info["accepted"], burning)
        return theta if self.after is None else self.after(rng, net, theta, burning)

    def summary(self) -> dict:
        """{"per_sweep", "hidden_per_sweep", "layers": [{"layer", "attempts", "accepted", "acceptance"}],
        "update_error"}."""
        return {"per_sweep": self.count, "hidden_per_sweep": self.hidden, "update_error": self.update_error,
                "layers": [{"layer": layer, "attempts": att, "accepted": acc, "acceptance": acc / att if att else None}
                           for layer, (att, acc) in sorted(self.tally.items())]}


def combine_reflections(summaries: list) -> dict:
    """The JSON block ``reflections`` of several chains: per layer the acceptance over all chains and per
    chain, and the largest update error."""
    layers = []
    for k, lay in enumerate(summaries[0]["layers"]):
        att = sum(s["layers"][k]["attempts"] for s in summaries)
        acc = sum(s["layers"][k]["accepted"] for s in summaries)
        layers.append({"layer": lay["layer"], "attempts": att, "accepted": acc,
                       "acceptance": acc / att if att else None,
                       "acceptance_per_chain": [s["layers"][k]["acceptance"] for s in summaries]})
    return {"per_sweep": summaries[0]["per_sweep"], "hidden_per_sweep": summaries[0]["hidden_per_sweep"],
            "layers": layers,
            "update_error": max(s["update_error"] for s in summaries)}
