"""Finite Bayesian networks with the conventions of THEORY §1.

    h_i(x)  = N0^{-1/2} Σ_j W_ij x_j,
    f_r(x)  = N^{-γ} Σ_i a_ri φ(h_i(x)),
    log p(θ | D) = −(β/2) Σ_μ ||f(x_μ) − y_μ||² − |W|²/(2σ_1²) − |a|²/(2σ_a²) + const,

with β = N/T for the mean-field scaling γ = 1 and β = 1/T for the standard
(lazy) scaling γ = 1/2. Parameters are one flat vector θ = [vec(W), vec(a)]
so that samplers see a plain R^d target. The forward and backward passes are
matrix products plus the compiled elementwise φ, φ' of the nonlinearity
(:class:`theory.nonlinearities.Nonlinearity`), so there are no Python loops
over neurons or inputs. Hidden layers are a list (``weights``) so that L >= 2
adds entries, not a rewrite; only L = 1 is implemented so far.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from theory.nonlinearities import Nonlinearity, get_nonlinearity
from theory.spec import ModelSpec, SpecError

__all__ = ["Network", "orthogonal_inputs", "sample_readout", "gibbs_sweep"]


def orthogonal_inputs(P: int) -> np.ndarray:
    """x_μ = √N0 e_μ with N0 = P, so that K0 = X Xᵀ/N0 = I (THEORY §3)."""
    return np.sqrt(P) * np.eye(P)


@dataclass(frozen=True, eq=False)
class Network:
    """One-hidden-layer network of width N on the data of a :class:`ModelSpec`."""

    spec: ModelSpec
    width: int
    scaling: str = "mean-field"  # or "standard"

    def __post_init__(self):
        if not isinstance(self.width, (int, np.integer)) or self.width < 1:
            raise SpecError(f"width must be an integer >= 1 (got {self.width!r})")
        if self.scaling not in ("mean-field", "standard"):
            raise SpecError(f"scaling must be 'mean-field' or 'standard' (got {self.scaling!r})")
        if self.spec.temperature <= 0:
            raise SpecError("sampling needs temperature > 0 (the T = 0 posterior is singular)")

    # ------------------------------------------------------------------ sizes
    @property
    def nonlinearity(self) -> Nonlinearity:
        return get_nonlinearity(self.spec.nonlinearity)

    @property
    def inputs(self) -> np.ndarray:
        return self.spec.inputs if self.spec.inputs is not None else orthogonal_inputs(self.spec.P)

    @property
    def gamma(self) -> float:
        return 1.0 if self.scaling == "mean-field" else 0.5

    @property
    def beta(self) -> float:
        T = self.spec.temperature
        return self.width / T if self.scaling == "mean-field" else 1.0 / T

    @property
    def shapes(self):
        """[(N, N0), (m, N)]: first-layer weights, then readout."""
        return [(self.width, self.inputs.shape[1]), (self.spec.m, self.width)]

    @property
    def dim(self) -> int:
        return sum(r * c for r, c in self.shapes)

    def unpack(self, theta: np.ndarray):
        (n1, n0), (m, n) = self.shapes
        W = theta[:n1 * n0].reshape(n1, n0)
        a = theta[n1 * n0:].reshape(m, n)
        return W, a

    def pack(self, W: np.ndarray, a: np.ndarray) -> np.ndarray:
        return np.concatenate([np.ravel(W), np.ravel(a)])

    # ------------------------------------------------------------------ forward / backward
    def preactivations(self, W: np.ndarray) -> np.ndarray:
        """h (N × P) on the training inputs."""
        X = self.inputs
        return W @ X.T / np.sqrt(X.shape[1])

    def outputs(self, theta: np.ndarray) -> np.ndarray:
        """f (P × m) on the training inputs."""
        W, a = self.unpack(theta)
        phi, _ = self.nonlinearity.eval(self.preactivations(W))
        return (a @ phi).T / self.width**self.gamma

    def prior_sample(self, rng: np.random.Generator) -> np.ndarray:
        (n1, n0), (m, n) = self.shapes
        W = self.spec.sigma_w * rng.standard_normal((n1, n0))
        a = self.spec.sigma_a * rng.standard_normal((m, n))
        return self.pack(W, a)

    def logdensity_and_grad(self, theta: np.ndarray):
        """(log p(θ | D) up to a constant, ∇ log p) — the target of the samplers."""
        W, a = self.unpack(theta)
        X = self.inputs
        Y = self.spec.targets()
        h = self.preactivations(W)
        phi, dphi = self.nonlinearity.eval(h)
        scale = 1.0 / self.width**self.gamma
        f = (a @ phi).T * scale  # P × m
        err = f - Y
        beta, sw2, sa2 = self.beta, self.spec.sigma_w**2, self.spec.sigma_a**2
        logp = -0.5 * beta * np.sum(err * err) - 0.5 * np.sum(W * W) / sw2 - 0.5 * np.sum(a * a) / sa2
        # ∂/∂a: −β scale errᵀ φᵀ ; ∂/∂W via h: −β scale (aᵀ errᵀ) ⊙ φ'(h), then h = W Xᵀ/√N0
        g_a = -beta * scale * (err.T @ phi.T) - a / sa2
        g_h = -beta * scale * (a.T @ err.T) * dphi  # N × P
        g_W = g_h @ X / np.sqrt(X.shape[1]) - W / sw2
        return float(logp), self.pack(g_W, g_a)


def sample_readout(rng: np.random.Generator, net: Network, W: np.ndarray) -> np.ndarray:
    """Exact draw of a | W (m × N): the stiff output modes of THEORY §7 handled in closed form.

    Given W the log posterior is quadratic in a: for each output r,
    a_r | W ~ N(Λ⁻¹ B y'_r, Λ⁻¹) with B = √β N^{-γ} φ(h) (N × P), y' = √β Y,
    Λ = σ_a⁻² I + B Bᵀ. Matheron's rule samples it at O(N P²):
    a = a₀ + σ_a² B (I + σ_a² BᵀB)⁻¹ (√β y_r − Bᵀa₀ − u), a₀ ~ N(0, σ_a² I), u ~ N(0, I_P).
    """
    phi, _ = net.nonlinearity.eval(net.preactivations(W))
    sb = np.sqrt(net.beta)
    B = sb * phi / net.width**net.gamma  # N × P
    sa2 = net.spec.sigma_a**2
    Y = net.spec.targets()  # P × m
    m, N, P = net.spec.m, net.width, B.shape[1]
    a0 = np.sqrt(sa2) * rng.standard_normal((N, m))
    u = rng.standard_normal((P, m))
    G = np.eye(P) + sa2 * B.T @ B
    corr = np.linalg.solve(G, sb * Y - B.T @ a0 - u)
    return (a0 + sa2 * B @ corr).T


def gibbs_sweep(rng: np.random.Generator, net: Network, theta: np.ndarray, step_size: float, n_mala: int = 5):
    """One sweep: exact a | W, then ``n_mala`` MALA steps on W | a. Returns (θ, W-acceptance rate)."""
    from .samplers import mala_init, mala_step

    W, _ = net.unpack(theta)
    a = sample_readout(rng, net, W)
    nW = W.size

    def logp_W(w):
        lp, g = net.logdensity_and_grad(net.pack(w, a))
        return lp, g[:nW]

    state = mala_init(W.ravel(), logp_W)
    accepted = 0
    for _ in range(n_mala):
        state, info = mala_step(rng, state, logp_W, step_size)
        accepted += info.accepted
    return net.pack(state.position, a), accepted / max(n_mala, 1)
