"""Networks drawn from the theory's single-neuron measure (THEORY §2, §7).

For orthogonal inputs x_μ = √P e_μ the preactivations are the first-layer
weights themselves (h = W), and the mean-field measure factorises over
neurons:

    a ~ p_t(a) ∝ N(a; 0, σ_a² I) Π_c Z(t_c·a)^{P_c},
    h_μ | a ~ N(h; 0, σ_1²) e^{g φ(h)} / Z(g),   g = t_{c(μ)}·a, independently over μ.

:func:`theory_initial_state` draws N such neurons: a by sampling-importance-
resampling (50 Student-t candidates per neuron from the bulk Gaussian of
p_t, weighted by e^{S(a)}/q(a)), h by inverse-CDF sampling of the 1-D tilted
laws on a fine grid. Starting chains there is the stationarity test of
THEORY §7: if the theory is right the observables stay at its values.
The ReLU condensate (outliers beyond the needle radius) is not drawn here:
:func:`validation.populations.theory_start` places it (one outlier per
condensate direction) and draws the bulk with these functions.
"""
from __future__ import annotations

import numpy as np

from solvers.finite_p.placement import log_tilt_derivatives
from solvers.finite_p.problem import ClassProblem
from solvers.results import SolveResult

from .networks import Network

__all__ = ["sample_readouts", "sample_preactivations", "theory_initial_state", "NeuronProposal", "neuron_swap",
           "theory_code_fractions"]


_NU = 5.0  # Student-t degrees of freedom of the readout proposals


def _readout_proposal(result: SolveResult):
    """(mean, Cholesky factor of 1.5² × covariance) of the theory's p_t(a): the Student-t proposal."""
    m = result.spec.m
    mean = result.readout_mean if result.readout_mean is not None else np.zeros(m)
    cov = result.readout_moment - np.outer(mean, mean)
    return mean, np.linalg.cholesky(cov * 1.5**2 + 1e-12 * np.eye(m))


def sample_readouts(prob: ClassProblem, result: SolveResult, n: int, rng: np.random.Generator,
                    candidates: int = 50) -> np.ndarray:
    """n readout vectors (n × m) from p_t(a) by sampling-importance-resampling."""
    m, nu = prob.m, _NU
    t = result.t
    mean, L = _readout_proposal(result)
    k = n * candidates
    z = rng.standard_normal((k, m)) / np.sqrt(rng.chisquare(nu, k) / nu)[:, None]
    A = mean + z @ L.T
    log_q = -0.5 * (nu + m) * np.log1p(np.sum(z * z, axis=1) / nu)  # up to a constant
    S, _, _ = log_tilt_derivatives(prob, t, A)
    logw = S - log_q
    w = np.exp(logw - logw.max())
    idx = rng.choice(k, size=n, replace=True, p=w / w.sum())
    return A[idx]


def sample_preactivations(prob: ClassProblem, t: np.ndarray, A: np.ndarray, rng: np.random.Generator,
                          grid: int = 1201, chunk: int = 1024) -> np.ndarray:
    """h (n × P): for neuron i and input μ in class c, a draw from ∝ N(h; 0, σ_1²) e^{(t_c·a_i) φ(h)}.

    Inverse-CDF sampling on a uniform grid covering the tilted mass, linear inside a cell,
    in chunks of neurons to bound memory.
    """
    nl = prob.nonlinearity
    sigma = prob.spec.sigma_w
    sizes = prob.spec.class_sizes
    G = A @ t.T  # n × m
    slope = max(abs(nl.slope_pos), abs(nl.slope_neg))
    half = 12.0 * sigma + 1.5 * sigma**2 * float(np.max(np.abs(G))) * slope
    h = np.linspace(-half, half, grid)
    dh = h[1] - h[0]
    phi = nl(h)
    out = np.empty((len(A), int(sum(sizes))))
    col = 0
    for c, Pc in enumerate(sizes):
        for lo in range(0, len(A), chunk):
            g = G[lo:lo + chunk, c:c + 1]
            logp = -0.5 * (h / sigma) ** 2 + g * phi[None, :]
            cdf = np.cumsum(np.exp(logp - logp.max(axis=1, keepdims=True)), axis=1)
            cdf /= cdf[:, -1:]
            u = rng.random((len(g), Pc))
            j = np.clip(np.array([np.searchsorted(row, ui) for row, ui in zip(cdf, u)]), 1, grid - 1)
            c0, c1 = np.take_along_axis(cdf, j - 1, axis=1), np.take_along_axis(cdf, j, axis=1)
            frac = np.where(c1 > c0, (u - c0) / np.where(c1 > c0, c1 - c0, 1.0), 0.5)
            out[lo:lo + chunk, col:col + Pc] = h[j - 1] + frac * dh
        col += Pc
    return out


def theory_initial_state(net: Network, result: SolveResult, rng: np.random.Generator) -> np.ndarray:
    """θ of a width-N network whose neurons are independent draws from the theory's measure."""
    if net.spec.inputs is not None:
        raise ValueError("theory starts need orthogonal class-structured inputs (inputs=None)")
    prob = ClassProblem.from_spec(result.spec)
    A = sample_readouts(prob, result, net.width, rng)
    h = sample_preactivations(prob, result.t, A, rng)
    return net.pack(h, A.T)  # orthogonal inputs with N0 = P: W = h


class NeuronProposal:
    """Independence proposal for one neuron's (a_i, w_i), with an exactly known density.

    a ~ multivariate Student-t (ν = 5) with the mean and 1.5× the covariance of the theory's
    p_t(a); then h_μ | a from the exact tilted law N(h; 0, σ_1²) e^{g φ(h)} / Z(g), g = t_{c(μ)}·a,
    whose normaliser Z = e^{ψ(g)} comes from the ψ table. For orthogonal inputs w_i = h_i. Used by
    :func:`neuron_swap`, it lets a neuron jump between modes (codes) in one Metropolis step.
    """

    def __init__(self, result: SolveResult):
        self.prob = ClassProblem.from_spec(result.spec)
        self.t = result.t
        self.mean, self.L = _readout_proposal(result)
        self.labels = np.repeat(np.arange(result.spec.m), result.spec.class_sizes)

    def draw(self, rng):
        m, nu = self.prob.m, _NU
        z = rng.standard_normal(m) / np.sqrt(rng.chisquare(nu) / nu)
        a = self.mean + self.L @ z
        h = sample_preactivations(self.prob, self.t, a[None, :], rng)[0]
        return a, h

    def log_density(self, a, h) -> float:
        m, nu = self.prob.m, _NU
        z = np.linalg.solve(self.L, a - self.mean)
        log_t = -0.5 * (nu + m) * np.log1p(z @ z / nu)  # constants cancel in the MH ratio
        g = (self.t @ a)[self.labels]
        psi, _, _ = self.prob.table()(g)
        sigma = self.prob.spec.sigma_w
        phi = self.prob.nonlinearity(h)
        return float(log_t + np.sum(-0.5 * (h / sigma) ** 2 + g * phi - psi))


def neuron_swap(rng: np.random.Generator, net: Network, theta: np.ndarray, proposal: NeuronProposal):
    """One Metropolis independence move on a random neuron: returns (θ, accepted)."""
    W, a = net.unpack(theta)
    i = int(rng.integers(net.width))
    a_new, h_new = proposal.draw(rng)
    W2, a2 = W.copy(), a.copy()
    W2[i], a2[:, i] = h_new, a_new
    theta2 = net.pack(W2, a2)
    log_ratio = (net.logdensity_and_grad(theta2)[0] - net.logdensity_and_grad(theta)[0]
                 + proposal.log_density(a[:, i], W[i]) - proposal.log_density(a_new, h_new))
    if np.log(rng.random()) < log_ratio:
        return theta2, True
    return theta, False


def theory_code_fractions(result: SolveResult, n: int = 10000, seed: int = 0) -> dict:
    """Code fractions of the theory: ``n`` neurons from the single-neuron measure, coded like the
    sampled network (class-mean activation over the P_c inputs of each class,
    :func:`validation.observables.neuron_codes`)."""
    from .observables import code_fractions, neuron_codes

    rng = np.random.default_rng(seed)
    prob = ClassProblem.from_spec(result.spec)
    A = sample_readouts(prob, result, n, rng)
    h = sample_preactivations(prob, result.t, A, rng)
    phi = prob.nonlinearity(h)
    labels = np.repeat(np.arange(prob.m), result.spec.class_sizes)
    means = np.stack([phi[:, labels == c].mean(axis=1) for c in range(prob.m)], axis=1)
    return code_fractions(neuron_codes(means), prob.m)
