"""Mode-changing moves for deep networks: Metropolis independence proposals that redraw one last-layer
neuron (its incoming weight row W^L_i and its readout a_i) from the theory's single-neuron measure.

THEORY §7 (ergodicity): local samplers freeze the fractions of neurons per code; this move lets a
neuron jump between codes in one step. It is the deep analogue of :func:`validation.theory_init.neuron_swap`.

Proposal (layer L of a :class:`solvers.deep.nonlinear.DeepNonlinearSolution`, coordinates of
:mod:`theory.deep_blocks`): y = (v, w) ~ q(y) = N(mean, C Cᵀ) (the solver's proposal of layer L),
a = σ_a v, ξ = σ_L R w (ξ = 0 for L = 1), then z_μ ~ q₁(z | y) (the piecewise-uniform inverse-CDF law
of :func:`theory.deep_blocks.tilted_z_grid`, exact density) and h_μ = ξ_c + s_c z_μ. The weight row is
the prior conditioned on h = W_i Φ_{L-1}/√N (Matheron; W_i = h for L = 1 with orthogonal inputs).

Target: the joint posterior π(W, a) of THEORY §1. For neuron i, with G = Φ_{L-1}ᵀΦ_{L-1}/N (Φ_{L-1}
does not change), the prior factorises as p(W_i) = N(h; 0, σ_L² G) p(W_i | h), and the conditional
factor cancels against the proposal's. h does not determine (ξ, z), so the move runs on the space
extended by the auxiliary w with the normalised reverse density r(ξ | h) = the Gaussian posterior of
ξ under the untilted prior (ξ ~ N(0, σ_L² k), h_μ | ξ ~ N(ξ_c, s_c²)):

    precision Λ = (σ_L² k)⁻¹ + diag(P_c / s_c²),   mean = Λ⁻¹ (Σ_{μ∈c} h_μ / s_c²)_c.

The current neuron's auxiliary is refreshed from r (a Gibbs step), then the independence move is
accepted with probability min(1, ω(new)/ω(old)),

    log ω = log N(h; 0, σ_L² G) + log N(a; 0, σ_a² I) − (β/2) ||f − Y||² + log r(ξ | h)
            − log q(y) − Σ_μ log q₁(z_μ | y),

(the Jacobian of (v, w, z) → (a, ξ, h) is constant), f updated by (a_i' φ(h_i')ᵀ − a_i φ(h_i)ᵀ)/N.
This is exact Metropolis–Hastings on the extended space, so π(W, a) is invariant whatever the
quality of the proposal; the proposal only sets the acceptance rate. When G is singular (silent ReLU
units at tiny N) no move is made; Φ_{L-1} is unchanged by the moves, so this keeps detailed balance.

Checks of exactness, acceptance rates and cost: docs/devlog.md.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from theory.deep_blocks import OneD, _inverse_cdf, layer_fields, tilted_z_grid, tilted_z_logpdf
from theory.spec import ModelSpec, SpecError, class_labels

from .deep_chain import run_deep_chain
from .deep_network import DeepNetwork
from .deep_theory_sample import layer_measure_kwargs
from .observables import neuron_codes

__all__ = ["LastLayerProposal", "last_layer_swaps", "run_deep_chain_with_swaps"]

_LOG_2PI = math.log(2.0 * math.pi)


class LastLayerProposal:
    """Independence proposal for one last-layer neuron (module docstring) with its exact log density."""

    def __init__(self, theory, n_grid: int = 801):
        if not getattr(theory, "converged", False) or theory.proposals is None:
            raise SpecError("theory must be a converged DeepNonlinearSolution (with its integration proposals)")
        self.theory, self.spec, self.L = theory, theory.spec, theory.layers
        self.oned = OneD.for_nonlinearity(self.spec.nonlinearity)
        self.sizes = np.asarray(self.spec.class_sizes)
        self.m = len(self.sizes)
        self.labels = class_labels(self.spec.class_sizes)
        self.sigma = float(theory.sigmas[-1])
        kw = layer_measure_kwargs(theory, self.L)
        self.B, self.dtilt, self.C, self.s = layer_fields(self.spec.class_sizes, self.sigma, **kw)
        prop = theory.proposals[-1]
        self.mean, self.chol = np.asarray(prop.mean), np.asarray(prop.chol)
        self.logdet = float(np.sum(np.log(np.abs(np.diag(self.chol)))))
        self.n_grid = n_grid
        if self.C is not None:  # reverse density r(ξ | h): Gaussian posterior of ξ under the untilted prior
            kin = self.C @ self.C.T
            self.r_prec = np.linalg.inv(kin) + np.diag(self.sizes / self.s**2)
            self.r_cov_chol = np.linalg.cholesky(np.linalg.inv(self.r_prec))
            self.r_logdet = float(np.linalg.slogdet(self.r_prec)[1])

    def log_q_y(self, y) -> float:
        x = np.linalg.solve(self.chol, y - self.mean)
        return float(-0.5 * x @ x - self.logdet - 0.5 * len(y) * _LOG_2PI)

    def _fields(self, y):
        u = self.B @ y[:self.m]
        xi = np.zeros(self.m) if self.C is None else self.C @ y[self.m:]
        return u, xi

    def log_q_z(self, y, z) -> float:
        """Σ_μ log q₁(z_μ | y) (−inf where z_μ lies off its grid)."""
        u, xi = self._fields(y)
        tot = 0.0
        for c in range(self.m):  # m classes; each class one vectorised grid
            grid, cdf = tilted_z_grid(self.oned, xi[c:c + 1], u[c:c + 1], float(self.s[c]), float(self.dtilt[c]),
                                      self.n_grid)
            tot += float(np.sum(tilted_z_logpdf(grid, cdf, z[self.labels == c][None, :])))
        return tot

    def draw(self, rng):
        """(y, z, h, a) of one neuron."""
        y = self.mean + self.chol @ rng.standard_normal(len(self.mean))
        u, xi = self._fields(y)
        z = np.empty(len(self.labels))
        for c in range(self.m):
            grid, cdf = tilted_z_grid(self.oned, xi[c:c + 1], u[c:c + 1], float(self.s[c]), float(self.dtilt[c]),
                                      self.n_grid)
            cols = self.labels == c
            r = rng.random((1, int(cols.sum())))
            zc = np.empty_like(r)
            _inverse_cdf(cdf, grid, r, zc)
            z[cols] = zc[0]
        h = xi[self.labels] + self.s[self.labels] * z
        return y, z, h, self.spec.sigma_a * y[:self.m]

    def r_mean(self, h):
        S = np.bincount(self.labels, weights=h, minlength=self.m) / self.s**2
        return np.linalg.solve(self.r_prec, S)

    def log_r(self, xi, h) -> float:
        d = xi - self.r_mean(h)
        return float(-0.5 * d @ self.r_prec @ d + 0.5 * self.r_logdet - 0.5 * self.m * _LOG_2PI)

    def complete(self, rng, h, a):
        """Auxiliary of the current neuron: ξ ~ r(· | h), then (y, z) with h_μ = ξ_c + s_c z_μ, a = σ_a v."""
        if self.C is None:
            xi, w = np.zeros(self.m), np.zeros(0)
        else:
            xi = self.r_mean(h) + self.r_cov_chol @ rng.standard_normal(self.m)
            w = np.linalg.solve(self.C, xi)
        z = (h - xi[self.labels]) / self.s[self.labels]
        return np.concatenate([a / self.spec.sigma_a, w]), z, xi

    def log_proposal(self, y, z) -> float:
        return self.log_q_y(y) + self.log_q_z(y, z)


def _codes(phi_row, labels, m):
    means = np.bincount(labels, weights=phi_row, minlength=m) / np.bincount(labels, minlength=m)
    return int(neuron_codes(means[None, :])[0])


def last_layer_swaps(rng: np.random.Generator, net: DeepNetwork, theta: np.ndarray, proposal: LastLayerProposal,
                     swaps: int = 1):
    """``swaps`` Metropolis independence moves, each on a uniformly chosen last-layer neuron (module
    docstring). Returns (θ, {"accepted", "code_changes"}): accepted moves and accepted moves that
    changed the neuron's code (:func:`validation.observables.neuron_codes` on class-mean φ), "skipped"
    (all moves when G = Φ_{L-1}ᵀΦ_{L-1}/N is singular)."""
    spec = net.spec
    if net.spec.nonlinearity != proposal.spec.nonlinearity or net.layers != proposal.L:
        raise SpecError("proposal theory and network differ in φ or depth")
    if net.scaling != "mean-field":
        raise SpecError("last_layer_swaps is written for the mean-field scaling (γ = 1)")
    N, m = net.width, spec.m
    Ws, a = net.unpack(np.array(theta, dtype=np.float64))
    Ws, a = [W.copy() for W in Ws], a.copy()
    fwd = net.forward(Ws)
    H, Phi = fwd[-1][0].copy(), fwd[-1][1].copy()
    if net.layers >= 2:
        A = fwd[-2][1] / math.sqrt(N)  # N × P, unchanged by these moves
        try:  # G singular (e.g. silent ReLU units at tiny N): h is confined to a subspace, no moves from here;
            Gf = cho_factor(A.T @ A, lower=True)  # Φ_{L-1} is unchanged by the moves, so skipping keeps balance
        except np.linalg.LinAlgError:
            return np.array(theta, dtype=np.float64), {"accepted": 0, "code_changes": 0, "skipped": int(swaps)}
    else:
        if not net._setup["diagonal"] or net._setup["c_in"] != 1.0:
            raise SpecError("L = 1 swaps need orthogonal inputs x_μ = √P e_μ (h = W)")
        Gf = None
    Y = spec.targets()
    f = (a @ Phi).T / N  # P × m
    beta, sa2, s2 = net.beta, spec.sigma_a**2, proposal.sigma**2
    phi = net.nonlinearity

    def log_prior_h(h):
        q = cho_solve(Gf, h) if Gf is not None else h
        return -0.5 * float(h @ q) / s2

    accepted = changes = 0
    for _ in range(int(swaps)):  # sequential Metropolis moves; each is vectorised over N and P
        i = int(rng.integers(N))
        h_old, a_old, phi_old = H[i].copy(), a[:, i].copy(), Phi[i].copy()
        y_old, z_old, xi_old = proposal.complete(rng, h_old, a_old)
        y_new, z_new, h_new, a_new = proposal.draw(rng)
        xi_new = np.zeros(m) if proposal.C is None else proposal.C @ y_new[m:]
        phi_new = np.asarray(phi(h_new), dtype=np.float64)
        f_new = f + (np.outer(phi_new, a_new) - np.outer(phi_old, a_old)) / N
        aux_old = proposal.log_r(xi_old, h_old) if proposal.C is not None else 0.0
        aux_new = proposal.log_r(xi_new, h_new) if proposal.C is not None else 0.0
        lw_old = (log_prior_h(h_old) - 0.5 * float(a_old @ a_old) / sa2 - 0.5 * beta * float(np.sum((f - Y) ** 2))
                  + aux_old - proposal.log_proposal(y_old, z_old))
        lw_new = (log_prior_h(h_new) - 0.5 * float(a_new @ a_new) / sa2
                  - 0.5 * beta * float(np.sum((f_new - Y) ** 2)) + aux_new - proposal.log_proposal(y_new, z_new))
        if not np.isfinite(lw_new) or math.log(rng.random()) >= lw_new - lw_old:
            continue
        if Gf is not None:
            z0 = proposal.sigma * rng.standard_normal(N)
            Ws[-1][i] = z0 + A @ cho_solve(Gf, h_new - A.T @ z0)  # Matheron: W_i | h
        else:
            Ws[-1][i] = h_new
        code_before = _codes(phi_old, proposal.labels, m)
        H[i], Phi[i], a[:, i], f = h_new, phi_new, a_new, f_new
        accepted += 1
        changes += int(_codes(phi_new, proposal.labels, m) != code_before)
    return net.pack(Ws, a), {"accepted": accepted, "code_changes": changes, "skipped": 0}


def run_deep_chain_with_swaps(spec: ModelSpec, width: int, layers: int, sweeps: int, burn: int, theory, *,
                              swaps: int = 0, seed: int = 0, step_size: float = 0.1, n_mala: int = 5,
                              theta0=None, codes_every: int = 10, after_sweep=None, sigmas=None) -> dict:
    """:func:`validation.deep.run_deep_chain` (MALA on W, then a | W exactly; step adapted during ``burn``)
    with ``swaps`` :func:`last_layer_swaps` from ``theory`` after every sweep (0: the plain sampler),
    then the further move ``after_sweep`` if given (the hook of :func:`run_deep_chain`).
    Adds "swap_acceptance" and "code_change_rate" (per proposed swap after burn-in) to its result."""
    prop = LastLayerProposal(theory) if swaps > 0 else None
    counts = {"accepted": 0, "code_changes": 0, "proposed": 0}

    def swap(rng, net, theta, burning):
        if prop is not None:
            theta, st = last_layer_swaps(rng, net, theta, prop, swaps)
            if not burning:
                counts["accepted"] += st["accepted"]
                counts["code_changes"] += st["code_changes"]
                counts["proposed"] += swaps
        return theta if after_sweep is None else after_sweep(rng, net, theta, burning)

    out = run_deep_chain(spec, width, layers, sweeps, burn, seed=seed, step_size=step_size, n_mala=n_mala, sigmas=sigmas,
                         codes_every=codes_every, theta0=theta0,
                         after_sweep=swap if (prop is not None or after_sweep is not None) else None,
                         rng=np.random.default_rng([seed, width, layers, 11]))
    n = counts["proposed"]
    out["swap_acceptance"] = counts["accepted"] / n if n else None
    out["code_change_rate"] = counts["code_changes"] / n if n else None
    return out
