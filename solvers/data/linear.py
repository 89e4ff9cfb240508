"""Exact mean-field solution of a one-hidden-layer linear network on explicit inputs (THEORY §2).

Linear φ, any data: Φ = −½ log det(I − σ_a² σ_1² tᵀK0 t) on the domain
λ_max(σ_a² σ_1² tᵀK0 t) < 1, f = σ_1² K0 t U with U = (σ_a^{-2} I − σ_1² tᵀK0 t)^{-1}; at T = 0
the mean test predictor equals the lazy (GP) predictor k0(x*)ᵀ K0^{-1} Y.
"""
from __future__ import annotations

from dataclasses import dataclass
import time

import numpy as np

from solvers.deep.linear import solve_deep_linear
from solvers.results import Result
from theory.linear import class_summary
from theory.observables import Observables
from theory.spec import ModelSpec, SpecError

__all__ = ["LinearSolution", "solve_linear", "RESIDUAL_TOL"]

#: the closed form counts as converged when max |f + T t − Y| is at most this
RESIDUAL_TOL = 1e-8


@dataclass(frozen=True, kw_only=True)
class LinearSolution(Result):
    """Closed-form solution on the shared result base (:class:`solvers.results.Result`): ``residual``
    is max |σ_1² K0 t U + T t − Y|, ``converged`` means it is at most ``RESIDUAL_TOL``."""

    spec: ModelSpec
    t: np.ndarray  # (P, m)
    readout_moment: np.ndarray  # U (m, m)
    outputs: np.ndarray  # f (P, m)
    kernel: np.ndarray  # E[h hᵀ] (P, P)

    def predict(self, test_inputs: np.ndarray) -> np.ndarray:
        """Mean test predictor f(x*) = σ_1² k0(x*)ᵀ t U, shape (n_test, m)."""
        X = self.spec.inputs
        Xs = np.atleast_2d(np.asarray(test_inputs, dtype=np.float64))
        if Xs.shape[1] != X.shape[1]:
            raise SpecError(f"test_inputs must have {X.shape[1]} columns like the training inputs (got {Xs.shape[1]})")
        k0 = Xs @ X.T / X.shape[1]
        return self.spec.sigma_w**2 * k0 @ self.t @ self.readout_moment

    def observables(self) -> Observables:
        return class_summary(self.spec.class_sizes, self.outputs, self.readout_moment, self.kernel)


def solve_linear(spec: ModelSpec) -> LinearSolution:
    """Exact mean-field solution of a linear network on arbitrary inputs.

    The one-layer case of :func:`solvers.deep.linear.solve_deep_linear`: the unknown is the m×m
    matrix X = σ_a² σ_1² tᵀK0t (0 ⪯ X ≺ I, the domain), parametrised as X = I − e^{−Z} so every
    iterate is inside the domain, t(X) diagonal in the eigenbases of K0 and X, roots searched from
    several starts (the root is unique for L = 1: the dual is convex). Then U = σ_a²(I − X)⁻¹ and
    the kernel E[h hᵀ] = σ_1² K0 + σ_1⁴ K0 t U tᵀ K0 (history: ``docs/notes/data.md``).
    """
    start = time.perf_counter()
    if spec.nonlinearity != "linear":
        raise SpecError(f"solve_linear needs nonlinearity 'linear' (got {spec.nonlinearity!r})")
    sol = solve_deep_linear(spec, 1)
    K0, T, sw = spec.input_kernel(), spec.temperature, spec.sigma_w
    t, U = sol.t, sol.readout_moment
    f = sw**2 * K0 @ t @ U
    kernel = sw**2 * K0 + sw**4 * K0 @ t @ U @ t.T @ K0
    res = float(np.max(np.abs(f + T * t - spec.targets())))
    ok = res <= RESIDUAL_TOL
    return LinearSolution(spec=spec, t=t, readout_moment=U, outputs=f, kernel=kernel, residual=res, converged=ok,
                          status="converged" if ok else "not-converged", iterations=0, error_estimate=0.0,
                          message=f"closed form (linear network, THEORY §2): max|f + Tt − Y| = {res:.1e}",
                          time_seconds=time.perf_counter() - start)
