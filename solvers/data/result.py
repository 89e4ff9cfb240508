"""Result types of the explicit-input theory: the solution of :func:`solvers.data.solve.solve_general`
and theory predictions on test inputs (THEORY §2).

Test predictions: h* | h ~ N(k*ᵀK0⁺h, σ_1²(k** − k*ᵀK0⁺k*)), so

    f(x*) = E_t[a φ(h*)] = E_t[b(h) g*(h)],   g*(h) = E[φ(h*) | h]

in closed form (:func:`theory.general.gaussian_phi_mean`); the posterior-averaged kernel on test
inputs E_t[φ(h*)φ(h*')] draws h* given each sampled h. Condensate neurons (ReLU-type φ) have
|h| → ∞ along L u_j, so h* → A h and K(x*, x_μ) gains λ_j φ(A L u_j) φ(L u_j)_μ.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from solvers.data.estimators import class_averages, group_mcse
from solvers.results import Result
from theory.linear import class_summary
from theory.observables import Observables
from theory.general import gaussian_phi_mean, input_kernels, test_conditional
from theory.nonlinearities import get_nonlinearity
from theory.spec import ModelSpec

__all__ = ["TestPrediction", "GeneralSolution", "class_errors"]


@dataclass
class TestPrediction:
    """Theory predictions on test inputs with Monte Carlo standard errors."""

    mean: np.ndarray  # f(x*) (n*, m)
    mean_error: np.ndarray  # MCSE (n*, m)
    cross_kernel: np.ndarray  # E_t[φ(h*) φ(h_μ)] (n*, P)
    test_kernel: np.ndarray | None = None  # E_t[φ(h*) φ(h*')] (n*, n*)
    test_kernel_error: np.ndarray | None = None
    activations: np.ndarray | None = None  # φ(h*) of sampled neurons (n_neurons, n*)
    readouts: np.ndarray | None = None  # their readout draws a (n_neurons, m)
    quadrature_error: float = 0.0
    bias_checks: tuple = ()  # agreement of ``mean`` with the replicas' and the closed form's (JSON dicts)

    @property
    def agrees(self) -> bool:
        """True when every bias check of :mod:`solvers.data.replicas` passed (or none ran)."""
        return all(c["agree"] for c in self.bias_checks)


@dataclass(frozen=True, kw_only=True)
class GeneralSolution(Result):
    """Solution of the general-input saddle point (:mod:`solvers.data.solve`); errors are MCSE.

    Result protocol (:class:`solvers.results.Result`): ``residual`` is max |r̂| at the final sampled t
    (before the one-step correction), ``error_estimate`` the largest MCSE of the reported outputs f,
    ``iterations`` the rounds. Read-only alias: ``rounds`` (``iterations``).
    """

    spec: ModelSpec
    t: np.ndarray  # (P, m), one-step corrected
    outputs: np.ndarray  # f (P, m)
    outputs_error: np.ndarray
    readout_moment: np.ndarray  # U (m, m)
    readout_moment_error: np.ndarray
    kernel: np.ndarray  # K = E_t[φφᵀ] (P, P)
    kernel_error: np.ndarray
    residual_error: float  # MCSE of the residual's largest entry
    z_rms: float  # rms of r̂/MCSE(r̂)
    rhat: float  # R̂ of the per-chain log tilt in the final round (stationarity)
    samples_per_round: int
    log: list = field(default_factory=list)
    # state for predictions
    _H: np.ndarray | None = field(default=None, repr=False)  # (keep, C, P) final samples
    _t_sampled: np.ndarray | None = field(default=None, repr=False)
    _deltas: np.ndarray | None = field(default=None, repr=False)  # (groups, P, m)
    _groups: int = 16
    # condensate (homogeneous φ with the domain constraint active): unit directions u_j in the
    # sampler's z coordinates (k × r), masses λ_j = 2μ_j with K gaining Σ_j λ_j φ(Lu_j)φ(Lu_j)ᵀ
    condensate_directions: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    condensate_masses: np.ndarray = field(default_factory=lambda: np.zeros(0))
    condensate_masses_error: np.ndarray = field(default_factory=lambda: np.zeros(0))
    bias_checks: tuple = ()  # agreement with replicas / the closed form (:mod:`solvers.data.replicas`)
    _replicas: tuple = field(default=(), repr=False)  # the other replicas' solutions
    _cond_h: np.ndarray | None = field(default=None, repr=False)  # L u_j (k × P)
    _cond_mu: np.ndarray | None = field(default=None, repr=False)  # μ per group (G × k)

    @property
    def rounds(self) -> int:
        return self.iterations

    def observables(self) -> Observables:
        """Class-resolved f, U and kernel (:func:`theory.linear.class_summary`) with the MCSE of f and U."""
        obs = class_summary(self.spec.class_sizes, self.outputs, self.readout_moment, self.kernel)
        return replace(obs, errors={"outputs": class_errors(self.spec, self.outputs_error),
                                    "readout_moment": np.asarray(self.readout_moment_error)})

    @property
    def P(self) -> int:
        return self.spec.P

    def class_outputs(self) -> np.ndarray:
        """Class averages f_cr (m × m), comparable with the orthogonal solver's outputs."""
        return class_averages(self.spec, self.outputs)

    def predict(self, test_inputs: np.ndarray, test_kernel: bool = False, neurons: int = 0,
                max_kernel_inputs: int = 400, seed: int = 0, check: bool = True) -> TestPrediction:
        """f(x*) = E_t[b(h) E[φ(h*)|h]] with MCSE; optionally the posterior-averaged test kernel
        (at most ``max_kernel_inputs`` test inputs) and φ(h*) of ``neurons`` sampled neurons.
        ``check``: compare f(x*) with the other replicas' and, for linear φ, the closed form's
        (``bias_checks``, :func:`solvers.data.replicas.check_predictions`)."""
        spec = self.spec
        K0, ks, kss = input_kernels(spec.inputs, test_inputs)
        A, v = test_conditional(K0, ks, kss, spec.sigma_w)
        sa2 = spec.sigma_a**2
        G = self._groups
        H = self._H  # keep × C × P
        keep, C, P = H.shape
        Hg = H.reshape(keep, G, C // G, P).transpose(1, 0, 2, 3).reshape(G, -1, P)
        phi = get_nonlinearity(spec.nonlinearity)
        means, kerns, qerr = [], [], 0.0
        for g in range(G):  # loop over the few chain groups; each is vectorised over its samples
            Hs = Hg[g]
            Phi = phi(Hs)
            gs, e = gaussian_phi_mean(spec.nonlinearity, Hs @ A.T, v[None, :])
            qerr = max(qerr, e)
            Kx = gs.T @ Phi / Hs.shape[0]  # E_t[φ(h*) φ(h)ᵀ] from this group
            if self._cond_h is not None and len(self._cond_h):
                # condensate neurons: |h| → ∞ along L u_j, so h* → A h (φ positively homogeneous)
                Kx = Kx + (phi(self._cond_h @ A.T).T * (2.0 * self._cond_mu[g])) @ phi(self._cond_h)
            means.append(sa2 * Kx @ (self._t_sampled + self._deltas[g]))
            kerns.append(Kx)
        means = np.array(means)
        out = TestPrediction(mean=means.mean(axis=0), mean_error=group_mcse(means),
                             cross_kernel=np.mean(kerns, axis=0), quadrature_error=qerr)
        if check:
            from solvers.data.replicas import check_predictions
            out.bias_checks = check_predictions(self, test_inputs, out.mean, out.mean_error)
        rng = np.random.default_rng(seed)
        if test_kernel:
            n = ks.shape[0]
            idx = np.arange(n) if n <= max_kernel_inputs else np.linspace(0, n - 1, max_kernel_inputs).astype(int)
            Kstar = spec.sigma_w**2 * (test_inputs[idx] @ test_inputs[idx].T / spec.inputs.shape[1]) \
                - spec.sigma_w**2 * (A[idx] @ K0 @ A[idx].T)
            lam, Q = np.linalg.eigh(0.5 * (Kstar + Kstar.T))
            Lc = Q * np.sqrt(np.maximum(lam, 0.0))
            ks_g = []
            for g in range(G):
                Hs = Hg[g]
                hstar = Hs @ A[idx].T + rng.standard_normal((Hs.shape[0], len(idx))) @ Lc.T
                Ps = phi(hstar)
                ks_g.append(Ps.T @ Ps / Hs.shape[0])
            ks_g = np.array(ks_g)
            out.test_kernel, out.test_kernel_error = ks_g.mean(axis=0), group_mcse(ks_g)
        if neurons:
            flat = H.reshape(-1, P)
            pick = rng.choice(flat.shape[0], size=min(neurons, flat.shape[0]), replace=False)
            Hs = flat[pick]
            hstar = Hs @ A.T + np.sqrt(v)[None, :] * rng.standard_normal((len(pick), A.shape[0]))
            out.activations = phi(hstar)
            b = sa2 * (phi(Hs) @ self._t_sampled)
            out.readouts = b + np.sqrt(sa2) * rng.standard_normal(b.shape)
        return out

    def to_json(self) -> dict:
        return {**self.result_json(), "residual_error": self.residual_error,
                "z_rms": self.z_rms, "rhat": self.rhat, "rounds": self.rounds,
                "samples_per_round": self.samples_per_round,
                "readout_moment": self.readout_moment.tolist(),
                "readout_moment_error": self.readout_moment_error.tolist(),
                "class_outputs": self.class_outputs().tolist(),
                "outputs_error_max": float(self.outputs_error.max()), "bias_checks": list(self.bias_checks)}


def class_errors(spec: ModelSpec, errors: np.ndarray) -> np.ndarray:
    """Error of the class averages of per-input values with independent per-entry errors ``errors``
    (P × ...): sqrt(mean_c e²/n_c)."""
    sizes = np.asarray(spec.class_sizes).reshape(-1, *([1] * (errors.ndim - 1)))
    return np.sqrt(class_averages(spec, np.asarray(errors) ** 2) / sizes)
