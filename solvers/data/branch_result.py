"""Result types of the large-P branch form on explicit inputs (THEORY §2 + §4).

Observables: U = Σ_γ P_γ a_γ a_γᵀ, K = Σ_γ P_γ E_{h|a_γ}[φφᵀ], and the test predictor

    f(x*) = Σ_γ P_γ a_γ E_{h|a_γ}[E[φ(h*) | h]]

(h* | h Gaussian, :func:`theory.general.test_conditional`, :func:`theory.general.gaussian_phi_mean`).
Odd φ: a branch stands for the mirror orbit {a_γ, −a_γ} with its occupation split equally.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from solvers.data.estimators import class_averages, group_mcse
from solvers.data.result import TestPrediction, class_errors
from solvers.results import Result
from theory.general import gaussian_phi_mean, input_kernels, test_conditional
from theory.linear import class_summary
from theory.nonlinearities import get_nonlinearity
from theory.observables import Observables
from theory.spec import ModelSpec

__all__ = ["GeneralBranch", "GeneralBranchSolution", "branch_code"]


@dataclass
class GeneralBranch:
    """One branch: readout a_γ (mirror orbit {±a_γ} for odd φ), occupation P_γ, S(a_γ) ± error."""

    a: np.ndarray
    occupation: float
    value: float
    value_error: float
    mirror: bool
    code: str  # sign pattern of a (odd φ) or 1/0 pattern of a_r > 0 (non-negative φ)

    def to_json(self) -> dict:
        return {"a": self.a.tolist(), "occupation": self.occupation, "S": self.value, "S_error": self.value_error,
                "mirror": self.mirror, "code": self.code}


@dataclass(frozen=True, kw_only=True)
class GeneralBranchSolution(Result):
    """Large-P branch solution on general inputs (:mod:`solvers.data.branches`); errors are MCSE.

    Result protocol (:class:`solvers.results.Result`): ``residual`` is max |f + T t − Y| at the last
    sampled point, ``error_estimate`` the largest error of the outputs f (MCSE ⊕ |residual| per entry),
    ``iterations`` the rounds (linear φ: the L-BFGS iterations). Read-only alias: ``rounds``.
    """

    spec: ModelSpec
    t: np.ndarray  # (P, m)
    branches: list
    outputs: np.ndarray  # f = Σ P_γ m_γ a_γᵀ (P, m)
    outputs_error: np.ndarray  # MCSE ⊕ |residual| per entry
    readout_moment: np.ndarray  # U (m, m)
    kernel: np.ndarray  # Σ P_γ E[φφᵀ] (P, P)
    residual_error: float  # MCSE of the residual's largest entry
    z_rms: float
    stationarity: float  # max_γ |∇_a S(a_γ)|·σ̄_a²
    height_spread: float  # max_γ S_γ − min_γ S_γ
    height_error: float
    log: list = field(default_factory=list)
    _samples: list | None = field(default=None, repr=False)
    _linear_U: np.ndarray | None = field(default=None, repr=False)

    @property
    def rounds(self) -> int:
        return self.iterations

    def observables(self) -> Observables:
        """Class-resolved f, U and kernel (:func:`theory.linear.class_summary`) with the errors of f."""
        obs = class_summary(self.spec.class_sizes, self.outputs, self.readout_moment, self.kernel)
        return replace(obs, errors={"outputs": self.class_outputs_error()})

    @property
    def P(self) -> int:
        return self.spec.P

    @property
    def occupations(self) -> np.ndarray:
        return np.array([b.occupation for b in self.branches])

    @property
    def readouts(self) -> np.ndarray:
        return np.array([b.a for b in self.branches])

    @property
    def codes(self) -> list:
        return [b.code for b in self.branches]

    def class_outputs(self) -> np.ndarray:
        return class_averages(self.spec, self.outputs)

    def class_outputs_error(self) -> np.ndarray:
        """Error of the class averages, independent per-entry errors: sqrt(mean of e²/n_c)."""
        return class_errors(self.spec, self.outputs_error)

    def predict(self, test_inputs: np.ndarray, test_kernel: bool = False, neurons: int = 0,
                max_kernel_inputs: int = 400, seed: int = 0) -> TestPrediction:
        """f(x*) = Σ_γ P_γ a_γ E_{h|a_γ}[E[φ(h*)|h]] with MCSE over chain groups; optionally the
        test kernel Σ_γ P_γ E[φ(h*)φ(h*')] and ``neurons`` sampled neurons (branch drawn with P_γ,
        its sign at random for odd φ, readout a_γ, h from the branch sample, h* | h drawn)."""
        spec = self.spec
        X = np.asarray(test_inputs, dtype=np.float64)
        K0, ks, kss = input_kernels(spec.inputs, X)
        A, v = test_conditional(K0, ks, kss, spec.sigma_w)
        phi = get_nonlinearity(spec.nonlinearity)
        rng = np.random.default_rng(seed)
        n_star, m = X.shape[0], spec.m
        if self._linear_U is not None:  # one Gaussian branch: f(x*) = σ_1² k*ᵀ t U, exact
            mean = spec.sigma_w**2 * ks @ self.t @ self._linear_U
            out = TestPrediction(mean=mean, mean_error=np.zeros_like(mean),
                                 cross_kernel=spec.sigma_w**2 * ks + spec.sigma_w**4 * ks @ self.t @ self._linear_U
                                 @ self.t.T @ K0)
            if test_kernel:
                Kss = spec.sigma_w**2 * X @ X.T / X.shape[1]
                ksT = spec.sigma_w**2 * ks @ self.t
                out.test_kernel = Kss + ksT @ self._linear_U @ ksT.T
                out.test_kernel_error = np.zeros_like(out.test_kernel)
            return out
        G = self._samples[0].groups
        means = np.zeros((G, n_star, m))
        cross = np.zeros((n_star, spec.P))
        qerr = 0.0
        for b, smp in zip(self.branches, self._samples):  # loop over branches
            Hg = smp.H.reshape(G, -1, spec.P)
            gs, e = gaussian_phi_mean(spec.nonlinearity, smp.H @ A.T, v[None, :])
            qerr = max(qerr, e)
            gmean = gs.reshape(G, -1, n_star).mean(axis=1)  # G × n*
            means += b.occupation * gmean[:, :, None] * b.a[None, None, :]
            cross += b.occupation * gs.T @ smp.Phi / Hg.shape[0] / G
        out = TestPrediction(mean=means.mean(axis=0), mean_error=group_mcse(means), cross_kernel=cross,
                             quadrature_error=qerr)
        if test_kernel:
            idx = np.arange(n_star) if n_star <= max_kernel_inputs else \
                np.linspace(0, n_star - 1, max_kernel_inputs).astype(int)
            Kstar = spec.sigma_w**2 * (X[idx] @ X[idx].T / X.shape[1]) - spec.sigma_w**2 * (A[idx] @ K0 @ A[idx].T)
            lam, Q = np.linalg.eigh(0.5 * (Kstar + Kstar.T))
            Lc = Q * np.sqrt(np.maximum(lam, 0.0))
            kg = np.zeros((G, len(idx), len(idx)))
            for b, smp in zip(self.branches, self._samples):  # loop over branches
                hstar = smp.H @ A[idx].T + rng.standard_normal((smp.H.shape[0], len(idx))) @ Lc.T
                Ps = phi(hstar).reshape(G, -1, len(idx))
                kg += b.occupation * np.einsum("gsi,gsj->gij", Ps, Ps) / Ps.shape[1]
            out.test_kernel, out.test_kernel_error = kg.mean(axis=0), group_mcse(kg)
        if neurons:
            occ = np.maximum(self.occupations, 0.0)
            pick = rng.choice(len(self.branches), size=neurons, p=occ / occ.sum())
            acts, reads = [], []
            for g in range(len(self.branches)):  # loop over branches
                k = int(np.sum(pick == g))
                if k == 0:
                    continue
                smp = self._samples[g]
                rows = rng.choice(smp.H.shape[0], size=k, replace=k > smp.H.shape[0])
                Hs = smp.H[rows]
                sign = rng.choice([-1.0, 1.0], size=k) if self.branches[g].mirror else np.ones(k)
                Hs = sign[:, None] * Hs  # mirror image: h → −h with a → −a (odd φ)
                hstar = Hs @ A.T + np.sqrt(v)[None, :] * rng.standard_normal((k, n_star))
                acts.append(phi(hstar))
                reads.append(sign[:, None] * self.branches[g].a[None, :])
            out.activations, out.readouts = np.concatenate(acts), np.concatenate(reads)
        return out

    def to_json(self) -> dict:
        return {"theory": "branches", **self.result_json(),
                "residual_error": self.residual_error, "z_rms": self.z_rms,
                "stationarity": self.stationarity, "height_spread": self.height_spread,
                "height_error": self.height_error, "rounds": self.rounds,
                "branches": [b.to_json() for b in self.branches],
                "readout_moment": self.readout_moment.tolist(), "class_outputs": self.class_outputs().tolist(),
                "outputs_error_max": float(np.max(self.outputs_error)) if self.outputs_error.size else 0.0}


def branch_code(a: np.ndarray, odd: bool) -> str:
    if odd:
        return "".join("+" if x > 1e-3 else ("-" if x < -1e-3 else "0") for x in a)
    return "-".join("1" if x > 1e-3 else "0" for x in a)
