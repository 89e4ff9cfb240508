"""Mass-transfer moves between two neurons: they create, remove and move the outliers of a ReLU
network's condensate (THEORY §4, §7) with an exact Metropolis–Hastings ratio, in the hidden layer of
a one-layer network or in the last hidden layer of a deep one.

Target: the marginal of the weights W = W^L into the last hidden layer with the readout integrated
out (:mod:`validation.collapsed`, :mod:`validation.deep_network`), the lower layers held fixed,

    log p(W | W^{<L}, D) = −(m/2) log det M − (β/2) tr(Yᵀ M⁻¹ Y) − |W|²/(2σ_L²) + const,
    M = I_P + c φᵀφ,

c = σ_a² β N^{-2γ}, φ = φ(h), h = W Xᵀ/√n (N × P), where the layer's input X (P × n) is the data
(L = 1: X the inputs, n = N0) or the activations below (L >= 2: X = Φ_{L-1}ᵀ, n = N, unchanged by
the move). The network depends on the neurons only through φᵀφ = Σ_i φ_i φ_iᵀ and the prior through
|W|². The conditional of W^L given the lower layers is this marginal up to a constant, so an exact
move on it leaves the joint posterior of all layers invariant.

Move. Pick an ordered pair (i, j), i ≠ j, with probability

    s(i, j | W) = (w_i / S) · (w_j / (S − w_i)),   w_k = |W_k|² + σ_L²,   S = Σ_k w_k,

(heavy neurons, the outliers, are picked often), an angle θ from a law symmetric about 0
(an equal mixture of uniform laws on (−δ, δ), δ ∈ :data:`ANGLE_SCALES`), and rotate the two rows,

    W_i' = cos θ W_i − sin θ W_j,   W_j' = sin θ W_i + cos θ W_j.

The rotation has unit Jacobian and keeps |W_i|² + |W_j|² (so the prior term and S), and its
reverse is the same pair with angle −θ, of the same density. So the move is accepted with

    min(1, [p(W' | D) s(i, j | W')] / [p(W | D) s(i, j | W)]),

exactly, and a | W' is then drawn exactly (:func:`validation.networks.sample_readout`;
:func:`validation.deep_sampler.sample_readout` for a deep network), which leaves the joint posterior
invariant (the collapsed sweep's argument).

What it does. For linear φ, Σ_k φ_k φ_kᵀ over the pair is invariant and every move is accepted.
ReLU is positively homogeneous, so wherever the two rows keep their signs the pair's contribution
to φᵀφ is also invariant. An outlier (h_i ≈ r_i η on its active inputs, r_i = O(√N)) paired with a
bulk neuron hands the fraction sin² θ of its mass r_i² to it (an outlier is created); paired with
another outlier of the same direction the mass moves between them, and at tan θ = −r_j/r_i one of
them returns to the bulk (an outlier is removed). The local samplers do this only by slow
diffusion along the ridge of flat directions (the condensate's mass can be shared among any number
of outliers at almost equal cost); the collapsed sweep alone leaves the number of outliers, and
with it the kernel diagonal, mixing slowly (docs/devlog.md).

Cost: φᵀφ is built once per call (O(N P²)); each move updates it by rank 4 and factorises M
(O(P³)). A deep network adds one forward pass per call (Φ_{L-1}).
"""
from __future__ import annotations

import math

import numpy as np
from scipy.linalg import cho_factor, cho_solve, LinAlgError

from .deep_network import DeepNetwork
from .deep_sampler import sample_readout as sample_deep_readout
from .networks import Network, sample_readout

__all__ = ["ANGLE_SCALES", "PairMarginal", "pair_rotation_moves", "draw_angle", "selection_logprob"]

#: half-widths δ of the uniform laws of the rotation angle (an equal mixture): small steps that
#: move a little mass, and steps up to ±π/2 that create or remove a whole outlier
ANGLE_SCALES = (0.1, 0.5, 1.6)


def draw_angle(rng: np.random.Generator) -> float:
    """θ from the equal mixture of U(−δ, δ), δ ∈ :data:`ANGLE_SCALES` (symmetric about 0)."""
    delta = ANGLE_SCALES[int(rng.integers(len(ANGLE_SCALES)))]
    return float(rng.uniform(-delta, delta))


def selection_logprob(sq_norms: np.ndarray, i: int, j: int, sigma_w: float) -> float:
    """log s(i, j | W) of the module docstring from the squared row norms |W_k|²."""
    w = sq_norms + sigma_w**2
    S = float(np.sum(w))
    return math.log(w[i] / S) + math.log(w[j] / (S - w[i]))


def _select(rng, sq_norms, sigma_w):
    w = sq_norms + sigma_w**2
    i = int(rng.choice(len(w), p=w / w.sum()))
    rest = w.copy()
    rest[i] = 0.0
    j = int(rng.choice(len(w), p=rest / rest.sum()))
    return i, j


class PairMarginal:
    """The collapsed log density of W (module docstring), kept up to date under changes of two rows.

    Holds W, the activations φ (N × P), the Gram matrix φᵀφ and the log density; :meth:`propose`
    gives the log density after a rotation of two rows, :meth:`accept` adopts it. ``inputs`` (P × n)
    and ``sigma_w`` are the layer's input X and prior scale (default: the network's data and σ_1, the
    one-layer case); :meth:`last_layer` builds them for the last layer of a
    :class:`validation.deep_network.DeepNetwork`.
    """

    def __init__(self, net, W: np.ndarray, inputs: np.ndarray | None = None, sigma_w: float | None = None):
        self.net = net
        self.W = np.array(W, dtype=np.float64)
        self.X = net.inputs if inputs is None else np.asarray(inputs, dtype=np.float64)
        self.sigma_w = float(net.spec.sigma_w if sigma_w is None else sigma_w)
        self.scale = 1.0 / math.sqrt(self.X.shape[1])
        self.phi, _ = net.nonlinearity.eval(self.W @ self.X.T * self.scale)
        self.phi = np.array(self.phi)
        self.gram = self.phi.T @ self.phi
        self.Y = net.spec.targets()
        self.c = net.spec.sigma_a**2 * net.beta / net.width ** (2 * net.gamma)
        self.sq_norms = np.sum(self.W * self.W, axis=1)
        self.logp = self._logp(self.gram, float(np.sum(self.sq_norms)))

    @classmethod
    def last_layer(cls, net: DeepNetwork, Ws) -> "PairMarginal":
        """The target of the last hidden layer W^L of a deep network with weights ``Ws`` = [W¹..W^L]:
        input X = Φ_{L-1}ᵀ (X = the data for L = 1), prior scale σ_L."""
        inputs = net.inputs if net.layers == 1 else net.forward(Ws[:-1])[-1][1].T
        return cls(net, Ws[-1], inputs=inputs, sigma_w=net.sigmas[-1])

    def _logp(self, gram, sq_total) -> float:
        M = np.eye(len(gram)) + self.c * gram
        try:
            fac = cho_factor(M, lower=True)
        except LinAlgError:
            return -math.inf
        logdet = 2.0 * float(np.sum(np.log(np.diag(fac[0]))))
        beta = self.net.beta
        return (-0.5 * self.net.spec.m * logdet - 0.5 * beta * float(np.sum(self.Y * cho_solve(fac, self.Y)))
                - 0.5 * sq_total / self.sigma_w**2)

    def propose(self, i: int, j: int, angle: float):
        """(log p(W' | D), proposed rows (2 × N0), their activations (2 × P), Gram matrix) for the
        rotation of rows i, j by ``angle``."""
        c, s = math.cos(angle), math.sin(angle)
        rows = np.stack([c * self.W[i] - s * self.W[j], s * self.W[i] + c * self.W[j]])
        phi_new, _ = self.net.nonlinearity.eval(rows @ self.X.T * self.scale)
        phi_new = np.array(phi_new)
        old = self.phi[[i, j]]
        gram = self.gram + phi_new.T @ phi_new - old.T @ old
        sq_total = float(np.sum(self.sq_norms)) + float(np.sum(rows * rows)) - self.sq_norms[i] - self.sq_norms[j]
        return self._logp(gram, sq_total), rows, phi_new, gram

    def accept(self, i: int, j: int, proposal) -> None:
        logp, rows, phi_new, gram = proposal
        self.W[[i, j]] = rows
        self.phi[[i, j]] = phi_new
        self.gram = gram
        self.sq_norms[[i, j]] = np.sum(rows * rows, axis=1)
        self.logp = logp

    def log_acceptance(self, i: int, j: int, angle: float, proposal=None) -> float:
        """log of the MH ratio of the move (i, j, angle) from the current W (module docstring)."""
        proposal = proposal if proposal is not None else self.propose(i, j, angle)
        new_norms = self.sq_norms.copy()
        new_norms[[i, j]] = np.sum(proposal[1] * proposal[1], axis=1)
        sw = self.sigma_w
        return (proposal[0] - self.logp + selection_logprob(new_norms, i, j, sw)
                - selection_logprob(self.sq_norms, i, j, sw))

    def step(self, rng: np.random.Generator) -> bool:
        """One move: pair, angle, accept or reject (module docstring). Returns whether accepted."""
        i, j = _select(rng, self.sq_norms, self.sigma_w)
        angle = draw_angle(rng)
        prop = self.propose(i, j, angle)
        if rng.random() < math.exp(min(0.0, self.log_acceptance(i, j, angle, prop))):
            self.accept(i, j, prop)
            return True
        return False


def pair_rotation_moves(rng: np.random.Generator, net: Network | DeepNetwork, theta: np.ndarray, n_moves: int):
    """``n_moves`` pair rotations (module docstring) on θ = [W, a] (one layer) or on the last layer
    W^L of θ = [W¹, ..., W^L, a] (a :class:`validation.deep_network.DeepNetwork`); a | W redrawn
    exactly if any was accepted. Returns (θ, number accepted)."""
    if net.width < 2 or n_moves < 1:
        return theta, 0
    deep = isinstance(net, DeepNetwork)
    W, a = net.unpack(theta)
    state = PairMarginal.last_layer(net, W) if deep else PairMarginal(net, W)
    accepted = sum(state.step(rng) for _ in range(n_moves))
    if not accepted:
        return theta, 0
    if deep:
        Ws = [*W[:-1], state.W]
        return net.pack(Ws, sample_deep_readout(rng, net, Ws)), accepted
    return net.pack(state.W, sample_readout(rng, net, state.W)), accepted
