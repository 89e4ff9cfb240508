"""Reflection moves for deep networks: exact Metropolis–Hastings involutions of one neuron's incoming
weights that let it change its code in one step (THEORY §7, ergodicity).

Target: the collapsed posterior of :mod:`validation.deep_network` (readout integrated out),

    log p(W | D) = ℓ(G) − Σ_ℓ |W^ℓ|²/(2σ_ℓ²),   ℓ(G) = −(m/2) log det M − (β/2) tr(Yᵀ M⁻¹ Y),
    M = I_P + c G,   G = Φ_LᵀΦ_L,   c = σ_a² β N^{-2γ}.

Every move below maps W to W' by an involution with unit Jacobian that keeps each |W^ℓ_i| (so the
Gaussian prior), chosen by an index drawn independently of the state; it is its own reverse, so
Metropolis–Hastings accepts with min(1, exp[ℓ(G') − ℓ(G)]).

Sign flips (:func:`last_layer_reflections`), for φ(−h) = s − φ(h) with s = 2φ(0) (:func:`reflection_offset`):
normcdf (s = 1; 0/1 codes 100 ↔ 011, 010 ↔ 101, 001 ↔ 110, 111 ↔ 000), erf and tanh (s = 0). W^L_i → −W^L_i
turns row i of Φ_L into s − φ_i. ReLU has no such identity (φ(h) + φ(−h) = |h|: the flipped neuron's
activations are no image of its old ones) and for linear φ the flip leaves G and every observable unchanged
(linear networks have no codes): both are refused.

Class-contrast reflections (:func:`contrast_reflections`, any φ): W^L_i → (I − 2 u_c u_cᵀ) W^L_i for a
class c, u_c the unit part of class c's mean activation of layer L − 1 orthogonal to the other classes'
means (:func:`contrast_directions`; Φ_{L−1} does not change in these moves). It reflects the neuron's
class-c mean preactivation about its prediction from the other classes' (e.g. 100 ↔ 110) and leaves those
unchanged.

Both change one row of Φ_L, φ → φ'. Then G' = G − φφᵀ + φ'φ'ᵀ, i.e. M' = M + U S Uᵀ with U = [φ', φ]
(P × 2), S = c diag(1, −1), and with A = Uᵀ M⁻¹ U, B = Uᵀ M⁻¹ Y (matrix determinant lemma; Woodbury):

    log det M' − log det M = log det(I₂ + S A),
    tr(Yᵀ M'⁻¹ Y) − tr(Yᵀ M⁻¹ Y) = −tr(Bᵀ (S⁻¹ + A)⁻¹ B),
    log r = −(m/2) log det(I₂ + S A) + (β/2) tr(Bᵀ (S⁻¹ + A)⁻¹ B),

and after an accepted move M⁻¹ ← M⁻¹ − M⁻¹U (S⁻¹ + A)⁻¹ UᵀM⁻¹ (O(P²) per attempt, compiled: :func:`_row_attempts`).
Attempts run in passes over distinct neurons in random order, so each proposal is made from the row it
replaces. A sweep's attempts start from a fresh Cholesky factor of M; afterwards ℓ is recomputed from the
new G and its difference from ℓ + Σ (accepted log r) is reported as the update's rounding error.

Hidden-layer flips (:func:`hidden_layer_reflections`, symmetric φ): (W^ℓ_i, W^{ℓ+1}_{:,i}) → −(W^ℓ_i,
W^{ℓ+1}_{:,i}) for ℓ < L; row i of Φ_ℓ becomes s − φ_i, so H^{ℓ+1} shifts by −s W^{ℓ+1}_{:,i}/√N in every
input, and G' is recomputed (O(N P²) per attempt).

After any accepted move the readout is drawn again from a | W (exact Gibbs step,
:func:`validation.deep_sampler.sample_readout`), so the joint posterior π(W, a) is invariant.
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
from theory.spec import SpecError, class_labels

from .deep_network import DeepNetwork
from .deep_sampler import sample_readout

__all__ = ["reflection_offset", "check_reflections", "reflections_text", "readout_scale", "readout_inverse",
           "collapsed_loglik", "RowMoves", "last_layer_reflections", "contrast_directions", "contrast_reflections",
           "hidden_flip_loglik", "hidden_layer_reflections", "Reflections", "combine_reflections", "SYMMETRY_TOL"]

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


def check_reflections(count, nonlinearity: str, hidden=0, contrasts=0) -> tuple:
    """(``count``, ``hidden``, ``contrasts``): last-layer sign flips, hidden-layer flips and last-layer
    class-contrast reflections per sweep as ints >= 0; if a flip count is > 0 also :func:`reflection_offset`
    (SpecError for φ without the symmetry; the contrast reflections need none)."""
    count, hidden = check_int("reflections", count, 0), check_int("hidden_reflections", hidden, 0)
    contrasts = check_int("contrast_reflections", contrasts, 0)
    if count or hidden:
        reflection_offset(nonlinearity)
    return count, hidden, contrasts


def reflections_text(count: int, hidden: int, contrasts: int = 0, lead: str = ", ", tail: str = "") -> str:
    """The reports' words for the reflections asked for ("" for none)."""
    parts = ([f"{count} last-layer reflections"] if count else []) + (
        [f"{hidden} hidden-layer reflections"] if hidden else []) + (
        [f"{contrasts} last-layer class-contrast reflections"] if contrasts else [])
    return lead + " and ".join(parts) + " per sweep" + tail if parts else ""


def readout_scale(net: DeepNetwork) -> float:
    """c = σ_a² β N^{-2γ} of M = I + c Φ_LᵀΦ_L (:attr:`DeepNetwork.readout_scale`)."""
    return net.readout_scale


def readout_inverse(net: DeepNetwork, phi: np.ndarray):
    """(M⁻¹, ℓ(G)) for G = Φ_LᵀΦ_L of the last layer's activations ``phi`` (N × P), M = I + c G
    (module docstring); None where M is not positive definite."""
    factor = net.readout_factor(phi.T @ phi)
    if factor is None:
        return None
    return cho_solve(factor[0], np.eye(phi.shape[1]), check_finite=False), net.readout_loglik(factor)


def collapsed_loglik(net: DeepNetwork, phi: np.ndarray) -> float:
    """ℓ(G) = −(m/2) log det M − (β/2) tr(Yᵀ M⁻¹ Y) of the last layer's activations ``phi`` (−inf where M is
    not positive definite; :meth:`DeepNetwork.readout_loglik`)."""
    return net.readout_loglik(net.readout_factor(phi.T @ phi))


@numba.njit(cache=True)
def _row_attempts(phi, Minv, MinvY, order, proposals, log_u, c, beta, accepted):
    """Attempt k replaces row ``order[k]`` of Φ_L (``phi``, N × P) by ``proposals[k]`` with the exact ratio
    of the module docstring (the neurons in ``order`` distinct, so each proposal was made from the row it
    replaces); ``phi``, M⁻¹ and M⁻¹Y are updated in place after every accepted move, ``accepted[k]`` set.
    Returns Σ accepted log r."""
    P = phi.shape[1]
    m = MinvY.shape[1]
    v = np.empty(P)
    w = np.empty(P)
    b1 = np.empty(m)
    b2 = np.empty(m)
    total = 0.0
    for k in range(order.shape[0]):
        i = order[k]
        phin = proposals[k]
        for p in range(P):  # v = M⁻¹φ, w = M⁻¹φ'
            acc = 0.0
            acc2 = 0.0
            for q in range(P):
                acc += Minv[p, q] * phi[i, q]
                acc2 += Minv[p, q] * phin[q]
            v[p] = acc
            w[p] = acc2
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
        accepted[k] = True
        total += log_r
    return total


class RowMoves:
    """The state of one sweep's last-layer row moves: Φ_L, M⁻¹, M⁻¹Y and ℓ at its start (a fresh Cholesky
    factor), :meth:`attempt` for a pass of proposals on distinct neurons, :meth:`update_error` at the end."""

    def __init__(self, net: DeepNetwork, phi: np.ndarray):
        self.net, self.phi = net, np.array(phi)
        start = readout_inverse(net, self.phi)
        self.ok = start is not None
        if self.ok:
            self.Minv, self.ell = start
            self.MinvY = self.Minv @ net._setup["Y"]
        self.total = 0.0

    def attempt(self, rng, order, proposals) -> np.ndarray:
        """Rows ``order`` (distinct) → ``proposals``, each by MH; returns the accepted mask."""
        accepted = np.zeros(len(order), dtype=np.bool_)
        self.total += _row_attempts(self.phi, self.Minv, self.MinvY, np.asarray(order, dtype=np.int64),
                                    np.ascontiguousarray(proposals, dtype=np.float64), np.log(rng.random(len(order))),
                                    readout_scale(self.net), float(self.net.beta), accepted)
        return accepted

    def update_error(self, phi_fresh) -> float:
        """|ℓ recomputed from ``phi_fresh`` − (ℓ at the start + Σ accepted log r)|."""
        fresh = readout_inverse(self.net, phi_fresh)
        return abs(fresh[1] - (self.ell + self.total)) if fresh is not None else math.inf


def _passes(count: int, width: int):
    """Pass sizes of ``count`` attempts on distinct neurons (at most ``width`` per pass)."""
    return [width] * (count // width) + ([count % width] if count % width else [])


def last_layer_reflections(rng: np.random.Generator, net: DeepNetwork, theta: np.ndarray, count: int,
                           offset: float):
    """``count`` flips W^L_i → −W^L_i (passes of distinct neurons in random order), each accepted with the
    exact ratio of the module docstring (``offset`` = s of φ(−h) = s − φ(h)); then a | W if any was
    accepted. Returns (θ, {"accepted", "update_error": |ℓ updated − ℓ recomputed|})."""
    n = net.dim_hidden
    Ws = [W.copy() for W in net.unpack_hidden(np.array(theta[:n], dtype=np.float64))]
    moves = RowMoves(net, net.forward(Ws)[-1][1])
    if not moves.ok:
        return theta, {"accepted": 0, "update_error": 0.0}
    flips, n_acc = np.zeros(net.width, dtype=bool), 0
    for k in _passes(count, net.width):
        order = rng.permutation(net.width)[:k]
        accepted = moves.attempt(rng, order, offset - moves.phi[order])
        flips[order[accepted]] ^= True
        n_acc += int(accepted.sum())
    if not flips.any():
        return theta, {"accepted": n_acc, "update_error": 0.0}
    Ws[-1][flips] *= -1.0
    error = moves.update_error(np.array(net.forward(Ws)[-1][1]))
    return net.pack(Ws, sample_readout(rng, net, Ws)), {"accepted": n_acc, "update_error": float(error)}


def contrast_directions(phi_prev: np.ndarray, class_sizes) -> np.ndarray:
    """u_c (N × m, unit columns): the part of class c's mean activation m_c of the layer below (``phi_prev``,
    N × P) orthogonal to the other classes' means, i.e. the columns of M (MᵀM)⁻¹ normalised (M = [m_1..m_m])."""
    labels = class_labels(class_sizes)
    means = np.stack([phi_prev[:, labels == c].mean(axis=1) for c in range(len(class_sizes))], axis=1)
    dual = means @ np.linalg.inv(means.T @ means)
    return dual / np.linalg.norm(dual, axis=0)


def contrast_reflections(rng: np.random.Generator, net: DeepNetwork, theta: np.ndarray, count: int):
    """``count`` Householder reflections W^L_i → (I − 2 u_c u_cᵀ) W^L_i of a last-layer neuron i and a class c
    (uniform; passes of distinct neurons), u_c of :func:`contrast_directions` from Φ_{L−1}, each accepted with
    the exact ratio of the module docstring. Then a | W if any was accepted. Returns (θ, {"accepted",
    "update_error"})."""
    n = net.dim_hidden
    Ws = [W.copy() for W in net.unpack_hidden(np.array(theta[:n], dtype=np.float64))]
    fwd = net.forward(Ws)
    moves = RowMoves(net, fwd[-1][1])
    if not moves.ok:
        return theta, {"accepted": 0, "update_error": 0.0}
    U = contrast_directions(fwd[-2][1], net.spec.class_sizes)
    V = (U.T @ fwd[-2][1]) * net._setup["inv_sqrt_n"]  # u_cᵀ Φ_{L−1}/√N: the change of H^L_i per unit of W_i·u_c
    H, W, n_acc = fwd[-1][0].copy(), Ws[-1], 0
    for k in _passes(count, net.width):
        order, cls = rng.permutation(net.width)[:k], rng.integers(0, net.spec.m, size=k)
        proj = np.einsum("kn,nk->k", W[order], U[:, cls])
        H_new = H[order] - 2.0 * proj[:, None] * V[cls]
        accepted = moves.attempt(rng, order, net._phi(H_new)[0])
        rows = order[accepted]
        W[rows] -= 2.0 * proj[accepted, None] * U[:, cls[accepted]].T
        H[rows] = H_new[accepted]
        n_acc += int(accepted.sum())
    if not n_acc:
        return theta, {"accepted": 0, "update_error": 0.0}
    error = moves.update_error(np.array(net.forward(Ws)[-1][1]))
    return net.pack(Ws, sample_readout(rng, net, Ws)), {"accepted": n_acc, "update_error": float(error)}


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
    """``after_sweep`` hook of :func:`validation.deep_chain.run_deep_chain`: per sweep ``count`` last-layer
    sign flips (:func:`last_layer_reflections`), ``contrasts`` class-contrast reflections of the last layer
    (:func:`contrast_reflections`; only after the first ``contrast_from`` sweeps), ``hidden`` joint flips in
    every hidden layer ℓ < L (:func:`hidden_layer_reflections`), then ``after`` (a further hook).
    :meth:`summary` gives the acceptance per layer after burn-in and the largest update error."""

    def __init__(self, count: int, nonlinearity: str, after=None, hidden: int = 0, contrasts: int = 0,
                 contrast_from: int = 0):
        self.count, self.hidden = check_reflections(count, nonlinearity, hidden)[:2]
        self.contrasts = check_int("contrast_reflections", contrasts, 0)
        if not (self.count or self.hidden or self.contrasts):
            raise SpecError("Reflections needs reflections, hidden_reflections or contrast_reflections >= 1 "
                            "(all are 0)")
        self.offset = reflection_offset(nonlinearity) if (self.count or self.hidden) else None
        self.contrast_from = check_int("contrast_from", contrast_from, 0)
        self.after, self.sweep, self.update_error = after, 0, 0.0
        self.tally = {}  # ("flip" | "contrast", layer) -> [attempts, accepted] after burn-in

    def _count(self, key, attempts, accepted, burning):
        t = self.tally.setdefault(key, [0, 0])
        if not burning:
            t[0] += attempts
            t[1] += accepted

    def __call__(self, rng, net, theta, burning: bool):
        self.sweep += 1
        if self.count:
            theta, info = last_layer_reflections(rng, net, theta, self.count, self.offset)
            self.update_error = max(self.update_error, info["update_error"])
            self._count(("flip", net.layers), self.count, info["accepted"], burning)
        if self.contrasts and self.sweep > self.contrast_from:
            theta, info = contrast_reflections(rng, net, theta, self.contrasts)
            self.update_error = max(self.update_error, info["update_error"])
            self._count(("contrast", net.layers), self.contrasts, info["accepted"], burning)
        for layer in range(1, net.layers if self.hidden else 1):
            theta, info = hidden_layer_reflections(rng, net, theta, self.hidden, self.offset, layer)
            self._count(("flip", layer), self.hidden, info["accepted"], burning)
        return theta if self.after is None else self.after(rng, net, theta, burning)

    def summary(self) -> dict:
        """{"per_sweep", "hidden_per_sweep", "contrast_per_sweep", "layers": sign flips per layer [{"layer",
        "attempts", "accepted", "acceptance"}], "contrast": the same for the class-contrast reflections (if
        asked for), "update_error"}."""
        def row(key):
            att, acc = self.tally.get(key, [0, 0])
            return {"layer": key[1], "attempts": att, "accepted": acc, "acceptance": acc / att if att else None}

        flips = sorted(k for k in self.tally if k[0] == "flip")
        contrast = [row(k) for k in self.tally if k[0] == "contrast"]
        return {"per_sweep": self.count, "hidden_per_sweep": self.hidden, "contrast_per_sweep": self.contrasts,
                "update_error": self.update_error, "layers": [row(k) for k in flips],
                **({"contrast": contrast[0] if contrast else {"layer": None, "attempts": 0, "accepted": 0,
                                                                "acceptance": None}} if self.contrasts else {})}


def combine_reflections(summaries: list) -> dict:
    """The JSON block ``reflections`` of several chains (each :meth:`Reflections.summary`): per layer (and for
    the class-contrast moves, "contrast") the acceptance over all chains and per chain, and the largest
    update error."""
    def pooled(rows):
        att, acc = sum(r["attempts"] for r in rows), sum(r["accepted"] for r in rows)
        return {"layer": rows[0]["layer"], "attempts": att, "accepted": acc, "acceptance": acc / att if att else None,
                "acceptance_per_chain": [r["acceptance"] for r in rows]}

    out = {key: summaries[0][key] for key in ("per_sweep", "hidden_per_sweep", "contrast_per_sweep")}
    out["layers"] = [pooled([s["layers"][k] for s in summaries]) for k in range(len(summaries[0]["layers"]))]
    out["update_error"] = max(s["update_error"] for s in summaries)
    if "contrast" in summaries[0]:
        out["contrast"] = pooled([s["contrast"] for s in summaries])
    return out
