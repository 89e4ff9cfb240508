"""Exact mean-field solution of a one-hidden-layer linear network on explicit inputs (THEORY §2).

Linear φ, any data: Φ = −½ log det(I − σ_a² σ_1² tᵀK0 t) on the domain
λ_max(σ_a² σ_1² tᵀK0 t) < 1, f = σ_1² K0 t U with U = (σ_a^{-2} I − σ_1² tᵀK0 t)^{-1}.

Singular K0 (linearly dependent inputs, e.g. digits with constant pixels): with K0 = V_r Λ_r V_rᵀ
on its range (numerical rank as numpy.linalg.matrix_rank) and P_r = V_r V_rᵀ, P_n = I − P_r,
t = t_r + t_n splits into t_r = P_r t, solved from the closed form on the range (Λ_r > 0), and
t_n = P_n Y / T, which no kernel sees (K0 t_n = 0). So f = σ_1² K0 t_r U ∈ range(K0) and the
training outputs obey f + T t = Y at every T > 0. At T = 0 the limit is taken: t_n is dropped
(T t_n → P_n Y), f = P_r Y when the network interpolates the range, and the mean test predictor
is the lazy (GP) predictor k0(x*)ᵀ K0⁺ Y (k0(x*) ∈ range(K0)), with K0⁺ the pseudo-inverse.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solvers.deep.linear import kernel_eigen, solve_deep_linear
from solvers.results import Result
from theory.linear import class_summary
from theory.observables import Observables
from theory.spec import ModelSpec, SpecError

__all__ = ["LinearSolution", "solve_linear"]


@dataclass(frozen=True, kw_only=True)
class LinearSolution(Result):
    """``residual``: max |f + T t − Y| (at T = 0: max |f − P_r Y|, the limit of the module docstring);
    ``converged``/``status``/``message``: the verdict of the closed form (:func:`solve_deep_linear`, L = 1)."""

    spec: ModelSpec
    t: np.ndarray  # (P, m)
    readout_moment: np.ndarray  # U (m, m)
    outputs: np.ndarray  # f (P, m)
    kernel: np.ndarray  # E[h hᵀ] (P, P)
    range_t: np.ndarray  # P_r t, t's component in the range of K0 (= t for non-singular K0)

    def predict(self, test_inputs: np.ndarray) -> np.ndarray:
        """Mean test predictor f(x*) = σ_1² k0(x*)ᵀ t U = σ_1² k0(x*)ᵀ t_r U, shape (n_test, m)."""
        X = self.spec.inputs
        Xs = np.atleast_2d(np.asarray(test_inputs, dtype=np.float64))
        if Xs.shape[1] != X.shape[1]:
            raise SpecError(f"test_inputs must have {X.shape[1]} columns like the training inputs (got {Xs.shape[1]})")
        k0 = Xs @ X.T / X.shape[1]
        return self.spec.sigma_w**2 * k0 @ self.range_t @ self.readout_moment

    def observables(self) -> Observables:
        return class_summary(self.spec.class_sizes, self.outputs, self.readout_moment, self.kernel)


def solve_linear(spec: ModelSpec) -> LinearSolution:
    """Exact mean-field solution of a linear network on arbitrary inputs, any T >= 0, any rank of K0.

    The one-layer case of :func:`solvers.deep.linear.solve_deep_linear`: the unknown is the m×m
    matrix X = σ_a² σ_1² tᵀK0t (0 ⪯ X ≺ I, the domain), parametrised as X = I − e^{−Z} so every
    iterate is inside the domain, t(X) diagonal in the eigenbases of K0 and X (null space of K0:
    module docstring), roots searched from several starts (the root is unique for L = 1: the dual
    is convex). Then U = σ_a²(I − X)⁻¹ and the kernel E[h hᵀ] = σ_1² K0 + σ_1⁴ K0 t U tᵀ K0.
    """
    if spec.nonlinearity != "linear":
        raise SpecError(f"solve_linear needs nonlinearity 'linear' (got {spec.nonlinearity!r})")
    sol = solve_deep_linear(spec, 1)
    T, Y = spec.temperature, spec.targets()
    if T > 0.0:
        res = float(np.max(np.abs(sol.outputs + T * sol.t - Y)))
    else:
        _, V, null = kernel_eigen(spec.input_kernel())
        res = float(np.max(np.abs(sol.outputs - Y + V[:, null] @ (V[:, null].T @ Y))))
    return LinearSolution(spec=spec, t=sol.t, readout_moment=sol.readout_moment, outputs=sol.outputs,
                          kernel=sol.kernels[0], range_t=sol.range_t, residual=res, converged=sol.converged,
                          status=sol.status, message=sol.message, iterations=sol.iterations,
                          error_estimate=0.0, time_seconds=sol.time_seconds)
