"""Moves of a hidden layer below the last at fixed next-layer preactivations: one neuron's incoming weights
change while H^{ℓ+1} stays put, then W^{ℓ+1} is drawn again from its exact conditional (THEORY §5, §7).

Why. Only MALA moves a layer ℓ < L, and a change of one row of Φ_ℓ shifts every preactivation of layer
ℓ + 1, which the sharp likelihood punishes; so the kernel K_ℓ = Φ_ℓᵀΦ_ℓ/N wanders slowly. Holding H^{ℓ+1}
fixed and integrating W^{ℓ+1} out removes that coupling: the neurons of layer ℓ then see each other only
through K_ℓ, as in the theory's tilted single-neuron measure of THEORY §5.

Partially collapsed target. Given Φ_ℓ (N × P, rank P <= N), each row of H^{ℓ+1} = W^{ℓ+1}Φ_ℓ/√N is
N(0, σ²K) with σ = σ_{ℓ+1}, K = Φ_ℓᵀΦ_ℓ/N, so with W^{ℓ+1} integrated out

    log p(W^{≤ℓ}, H^{ℓ+1}, ...) = ℓ_K(Φ_ℓ) − Σ_{k<=ℓ} |W^k|²/(2σ_k²) + (terms without W^{≤ℓ}),
    ℓ_K(Φ_ℓ) = −(N/2) log det K − (1/(2σ²)) tr(H^{ℓ+1} K⁻¹ H^{ℓ+1}ᵀ)

(the layers above ℓ + 1 and the readout depend on W^{≤ℓ} only through H^{ℓ+1}, which does not move).

Moves of row i of W^ℓ, each prior-reversible, so Metropolis–Hastings accepts with min(1, exp Δℓ_K):

* pCN: W^ℓ_i → ρ W^ℓ_i + √(1 − ρ²) σ_ℓ ξ, ξ ~ N(0, I) (reversible with respect to the prior; Cotter,
  Roberts, Stuart & White, Statist. Sci. 28, 424 (2013));
* sign flips W^ℓ_i → −W^ℓ_i for φ(−h) = s − φ(h) (:func:`validation.reflections.reflection_offset`);
* class-contrast reflections W^ℓ_i → (I − 2 u_c u_cᵀ) W^ℓ_i, u_c of
  :func:`validation.reflections.contrast_directions` on the input of layer ℓ (X/√N0 for ℓ = 1, Φ_{ℓ−1}/√N
  above): the class-c bit of the neuron's code flips.

A changed row φ → φ' is K' = K + U S Uᵀ, U = [φ', φ], S = diag(1, −1)/N, and Δℓ_K has the Woodbury form of
:mod:`validation.reflections` with M → K, Y → H^{ℓ+1}ᵀ, m → N, β → 1/σ² (the same compiled kernel,
:func:`validation.reflections._row_attempts`, O(P (P + N)) per attempt). Attempts run in passes over
distinct neurons. Pair rotations that move weight mass between two neurons of the layer (its outliers,
for ReLU) are :mod:`validation.layer_pairs`, run here after the passes on the same target.

Afterwards W^{ℓ+1} | (Φ_ℓ, H^{ℓ+1}) is drawn exactly (Matheron's rule for the prior N(0, σ² I) on each row
conditioned on the noise-free constraint W^{ℓ+1}Φ_ℓ = √N H^{ℓ+1}):

    W^{ℓ+1} = Z + (√N H^{ℓ+1} − Z Φ_ℓ)(Φ_ℓᵀΦ_ℓ)⁻¹Φ_ℓᵀ,   Z ~ N(0, σ²)^{N×N}.

The composition (MH on W^{≤ℓ} under the W^{ℓ+1}-marginal, then W^{ℓ+1} from its conditional) leaves the
joint posterior invariant (partially collapsed Gibbs; van Dyk & Park, JASA 103, 790 (2008)). Φ_L and so
the readout's conditional a | W are unchanged. :class:`LayerMoves` is an ``after_sweep`` hook of
:func:`validation.deep_chain.run_deep_chain` with acceptance counts per layer and kind after burn-in.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from theory.checks import check_float, check_int
from theory.spec import SpecError

from .deep_network import DeepNetwork
from .layer_pairs import LayerPairs
from .reflections import _row_attempts, contrast_directions, reflection_offset

__all__ = ["next_layer_loglik", "NextLayerRows", "layer_input", "redraw_next_weights", "layer_moves",
           "check_layer_moves", "check_layer_pairs", "LayerMoves", "combine_layer_moves", "layer_moves_text",
           "DEFAULT_RHO"]

#: the pCN proposal's ρ (correlation of the proposed row with the current one)
DEFAULT_RHO = 0.9


def next_layer_loglik(phi: np.ndarray, H_next: np.ndarray, sigma: float):
    """(K⁻¹, K⁻¹ H^{ℓ+1}ᵀ, ℓ_K) for K = ΦᵀΦ/N of layer ℓ's activations ``phi`` (N × P) and the next layer's
    preactivations ``H_next`` (N × P) with prior scale ``sigma`` = σ_{ℓ+1}: ℓ_K = −(N/2) log det K −
    tr(H K⁻¹ Hᵀ)/(2σ²) (module docstring); None where K is not positive definite."""
    N, P = phi.shape
    try:
        fac = cho_factor(phi.T @ phi / N, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return None
    Kinv = cho_solve(fac, np.eye(P), check_finite=False)
    KinvY = Kinv @ H_next.T
    logdet = 2.0 * float(np.sum(np.log(np.diag(fac[0]))))
    return Kinv, KinvY, -0.5 * N * logdet - 0.5 * float(np.vdot(H_next.T, KinvY)) / sigma**2


class NextLayerRows:
    """One sweep's row moves of layer ℓ at fixed H^{ℓ+1}: Φ_ℓ, K⁻¹, K⁻¹H^{ℓ+1}ᵀ and ℓ_K at its start (a fresh
    Cholesky factor), :meth:`attempt` for a pass on distinct neurons, :meth:`update_error` at the end."""

    def __init__(self, phi: np.ndarray, H_next: np.ndarray, sigma: float):
        self.phi, self.H_next, self.sigma = np.array(phi), H_next, float(sigma)
        start = next_layer_loglik(self.phi, H_next, sigma)
        self.ok = start is not None
        if self.ok:
            self.Kinv, self.KinvY, self.ell = start
        self.total = 0.0

    def attempt(self, rng, order, proposals) -> np.ndarray:
        """Rows ``order`` (distinct) of Φ_ℓ → ``proposals``, each by MH on Δℓ_K; returns the accepted mask."""
        accepted = np.zeros(len(order), dtype=np.bool_)
        self.total += _row_attempts(self.phi, self.Kinv, self.KinvY, np.asarray(order, dtype=np.int64),
                                    np.ascontiguousarray(proposals, dtype=np.float64), np.log(rng.random(len(order))),
                                    1.0 / self.phi.shape[0], 1.0 / self.sigma**2, accepted)
        return accepted

    def update_error(self) -> float:
        """|ℓ_K recomputed from the current Φ_ℓ − (ℓ_K at the start + Σ accepted Δℓ_K)|."""
        fresh = next_layer_loglik(self.phi, self.H_next, self.sigma)
        return abs(fresh[2] - (self.ell + self.total)) if fresh is not None else math.inf


def layer_input(net: DeepNetwork, fwd, layer: int) -> np.ndarray:
    """B_ℓ (fan-in × P) with H^ℓ = W^ℓ B_ℓ: Xᵀ/√N0 for ℓ = 1, Φ_{ℓ−1}/√N above (``fwd``: :meth:`DeepNetwork.forward`)."""
    if layer == 1:
        return net._setup["XsT"]
    return fwd[layer - 2][1] * net._setup["inv_sqrt_n"]


def redraw_next_weights(rng: np.random.Generator, phi: np.ndarray, H_next: np.ndarray, sigma: float) -> np.ndarray:
    """W^{ℓ+1} ~ p(W^{ℓ+1} | Φ_ℓ, H^{ℓ+1}) exactly: Z + (√N H − Z Φ)(ΦᵀΦ)⁻¹Φᵀ with Z ~ N(0, σ²) (N × N)."""
    N = phi.shape[0]
    Z = sigma * rng.standard_normal((N, N))
    fac = cho_factor(phi.T @ phi, lower=True, check_finite=False)
    return Z + cho_solve(fac, (math.sqrt(N) * H_next - Z @ phi).T, check_finite=False).T @ phi.T


def _pass(rng, net, rows, W, B, proposal_rows):
    """One pass: rows ``order`` of W^ℓ → ``proposal_rows(order)`` (new weight rows), MH at fixed H^{ℓ+1};
    accepted rows written into W. Returns the number accepted."""
    order = rng.permutation(net.width)
    W_new = proposal_rows(order)
    accepted = rows.attempt(rng, order, net._phi(W_new @ B)[0])
    W[order[accepted]] = W_new[accepted]
    return int(accepted.sum())


def layer_moves(rng: np.random.Generator, net: DeepNetwork, theta: np.ndarray, layer: int, pcn: int = 1,
                flips: int = 0, contrasts: int = 0, rho: float = DEFAULT_RHO, pairs: int = 0):
    """Passes over all N neurons of hidden layer ℓ = ``layer`` < L at fixed H^{ℓ+1}: ``pcn`` passes of pCN
    proposals (``rho``), ``flips`` passes of sign flips (φ(−h) = s − φ(h) only), ``contrasts`` passes of
    class-contrast reflections (a uniform class per neuron), then ``pairs`` pair rotations
    (:mod:`validation.layer_pairs`); then W^{ℓ+1} | (Φ_ℓ, H^{ℓ+1}) (module docstring).
    Returns (θ, {"attempts": {kind: n}, "accepted": {kind: n}, "update_error"})."""
    n = net.dim_hidden
    Ws = [W.copy() for W in net.unpack_hidden(np.array(theta[:n], dtype=np.float64))]
    fwd = net.forward(Ws)
    W, B, H_next = Ws[layer - 1], layer_input(net, fwd, layer), fwd[layer][0]
    sigma_w, sigma_next = net.sigmas[layer - 1], net.sigmas[layer]
    rows = NextLayerRows(fwd[layer - 1][1], H_next, sigma_next)
    kinds = {"pcn": pcn * net.width, "flip": flips * net.width, "contrast": contrasts * net.width, "pair": pairs}
    info = {"attempts": {k: v for k, v in kinds.items() if v}, "accepted": {k: 0 for k, v in kinds.items() if v},
            "update_error": 0.0}
    if not rows.ok:
        info["attempts"] = {k: 0 for k in info["attempts"]}
        return theta, info
    c = math.sqrt(max(0.0, 1.0 - rho * rho)) * sigma_w
    U = contrast_directions(B, net.spec.class_sizes) if contrasts else None
    for _ in range(pcn):
        info["accepted"]["pcn"] += _pass(rng, net, rows, W, B,
                                         lambda o: rho * W[o] + c * rng.standard_normal((len(o), W.shape[1])))
    for _ in range(flips):
        info["accepted"]["flip"] += _pass(rng, net, rows, W, B, lambda o: -W[o])

    def reflect(order):
        u = U[:, rng.integers(0, net.spec.m, size=len(order))].T
        return W[order] - 2.0 * np.sum(W[order] * u, axis=1)[:, None] * u

    for _ in range(contrasts):
        info["accepted"]["contrast"] += _pass(rng, net, rows, W, B, reflect)
    if any(info["accepted"].values()):
        info["update_error"] = float(rows.update_error())
    if pairs:
        rotations = LayerPairs(W, B, rows.phi, H_next, sigma_w, sigma_next, lambda H: net._phi(H)[0])
        info["accepted"]["pair"] = sum(rotations.step(rng) for _ in range(pairs))
        info["update_error"] = max(info["update_error"], rotations.update_error())
    if not any(info["accepted"].values()):
        return theta, info
    Ws[layer] = redraw_next_weights(rng, rows.phi, H_next, sigma_next)
    _, a = net.unpack(theta)
    return net.pack(Ws, a), info


def check_layer_moves(passes, layers: int, widths=(), P: int = 0) -> int:
    """``passes`` (layer-move passes per sweep) as an int >= 0; SpecError naming it for passes > 0 with
    ``layers`` < 2 (there is no hidden layer below the last) or a width in ``widths`` below ``P`` (K_ℓ = Φ_ℓᵀΦ_ℓ/N
    has rank <= N, so H^{ℓ+1} has no density given Φ_ℓ)."""
    passes = check_int("layer_moves", passes, 0)
    if passes and layers < 2:
        raise SpecError(f"layer_moves needs a hidden layer below the last (layers >= 2, got {layers})")
    if passes and widths and min(widths) < P:
        raise SpecError(f"layer_moves needs every width N >= P = {P} (got N = {min(widths)}): the next layer's "
                        "preactivations have a density given Φ_ℓ only if Φ_ℓᵀΦ_ℓ has full rank")
    return passes


def check_layer_pairs(pairs, layers: int, widths=(), P: int = 0) -> int:
    """``pairs`` (layer pair rotations per sweep, :mod:`validation.layer_pairs`) as an int >= 0, with the conditions
    of :func:`check_layer_moves` (SpecError naming ``layer_pairs``)."""
    pairs = check_int("layer_pairs", pairs, 0)
    if pairs:
        try:
            check_layer_moves(1, layers, widths, P)
        except SpecError as exc:
            raise SpecError(str(exc).replace("layer_moves", "layer_pairs")) from None
    return pairs


def layer_moves_text(passes: int, lead: str = ", ", tail: str = "", pairs: int = 0) -> str:
    """The reports' words for the layer moves and pair rotations asked for ("" for none)."""
    if not (passes or pairs):
        return ""
    kinds = [f"{passes} pass{'es' if passes > 1 else ''} of layer moves (pCN, sign flips where φ(−h) = s − φ(h), "
             f"class-contrast reflections)"] if passes else []
    kinds += [f"{pairs} pair rotations"] if pairs else []
    return (f"{lead}{' and '.join(kinds)} per sweep in every hidden layer below the last at fixed next-layer "
            f"preactivations{tail}")


class LayerMoves:
    """``after_sweep`` hook: :func:`layer_moves` in every hidden layer ℓ < L after each sweep from sweep ``start``
    + 1 on, ``passes`` passes of each kind (pCN with ``rho``; sign flips only for φ(−h) = s − φ(h); class-contrast
    reflections) and ``pairs`` pair rotations (:mod:`validation.layer_pairs`), then ``after``. :meth:`summary` gives the acceptance per layer and kind after burn-in and the
    largest update error."""

    def __init__(self, passes: int, layers: int, nonlinearity: str, rho: float = DEFAULT_RHO, after=None,
                 start: int = 0, pairs: int = 0):
        self.passes = check_layer_moves(passes, layers)
        self.pairs = check_int("layer_pairs", pairs, 0)
        if self.pairs and layers < 2:
            raise SpecError(f"layer_pairs needs a hidden layer below the last (layers >= 2, got {layers})")
        if not (self.passes or self.pairs):
            raise SpecError("LayerMoves needs layer_moves >= 1 or layer_pairs >= 1 (both are 0)")
        self.rho = check_float("layer_moves_rho", rho, 0.0, 1.0, hi_open=True)
        try:
            reflection_offset(nonlinearity)
            self.flips = self.passes
        except SpecError:
            self.flips = 0
        self.start, self.sweep = check_int("layer_moves_from", start, 0), 0
        self.after, self.update_error, self.tally = after, 0.0, {}

    def __call__(self, rng, net, theta, burning: bool):
        self.sweep += 1
        for layer in range(1, net.layers if self.sweep > self.start else 1):
            theta, info = layer_moves(rng, net, theta, layer, self.passes, self.flips, self.passes, self.rho,
                                      self.pairs)
            self.update_error = max(self.update_error, info["update_error"])
            if not burning:
                for kind, att in info["attempts"].items():
                    t = self.tally.setdefault((layer, kind), [0, 0])
                    t[0] += att
                    t[1] += info["accepted"][kind]
        return theta if self.after is None else self.after(rng, net, theta, burning)

    def summary(self) -> dict:
        """{"passes", "rho", "update_error", "moves": [{"layer", "kind" ("pcn", "flip", "contrast", "pair"),
        "attempts", "accepted", "acceptance"}]}, and "pairs" (rotations per sweep) if there are any."""
        rows = [{"layer": layer, "kind": kind, "attempts": att, "accepted": acc, "acceptance": acc / att if att else None}
                for (layer, kind), (att, acc) in sorted(self.tally.items())]
        return {"passes": self.passes, "rho": self.rho, "update_error": self.update_error, "moves": rows,
                **({"pairs": self.pairs} if self.pairs else {})}


def combine_layer_moves(summaries: list) -> dict:
    """The JSON block ``layer_moves`` of several chains (each :meth:`LayerMoves.summary`): per layer and kind
    the acceptance over all chains and per chain, and the largest update error."""
    out = {k: summaries[0][k] for k in ("passes", "rho")}
    out["update_error"] = max(s["update_error"] for s in summaries)
    out["moves"] = []
    for k, row in enumerate(summaries[0]["moves"]):
        rows = [s["moves"][k] for s in summaries]
        att, acc = sum(r["attempts"] for r in rows), sum(r["accepted"] for r in rows)
        out["moves"].append({"layer": row["layer"], "kind": row["kind"], "attempts": att, "accepted": acc,
                             "acceptance": acc / att if att else None,
                             "acceptance_per_chain": [r["acceptance"] for r in rows]})
    return out
