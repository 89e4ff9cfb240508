"""One result type for every method (in the spirit of scipy.optimize)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from theory.observables import Observables
from theory.spec import ModelSpec

__all__ = ["SolveResult", "STATUS"]

#: status codes: 0 converged; 1 iteration limit; 2 line search failed; 3 integration failed
STATUS = {0: "converged", 1: "maximum number of iterations reached", 2: "line search failed",
          3: "integration failed"}


@dataclass(frozen=True)
class SolveResult:
    """Solution of the saddle-point equations.

    ``success`` is False when the method did not converge; nothing is raised
    for non-convergence (only invalid input raises).
    """

    spec: ModelSpec
    method: str
    t: np.ndarray  # (m, m), t[c, r]
    observables: Observables
    success: bool
    status: int
    message: str
    nit: int
    nfev: int
    residual_norm: float  # max |f − e + T t|
    error_estimate: float  # integrator's absolute error estimate on f, U, kernel
    integrator: str
    readout_mean: np.ndarray | None = None
    free_energy: float | None = None  # G(t*), the dual value: log-evidence per neuron log Z/N up to constants (high T: −P/(2T))
    time_seconds: float = 0.0
    log: tuple = ()
    extra: dict = field(default_factory=dict)

    @property
    def outputs(self) -> np.ndarray:
        return self.observables.outputs

    @property
    def readout_moment(self) -> np.ndarray:
        return self.observables.readout_moment

    @property
    def kernel_diagonal(self) -> np.ndarray:
        return self.observables.kernel_diagonal

    @property
    def kernel_blocks(self) -> np.ndarray:
        return self.observables.kernel_blocks

    def to_json(self) -> dict:
        """The JSON object of ``codingschemes solve --format json``."""
        obs = self.observables.to_json()
        out = {
            **self.spec.to_dict(),
            "method": self.method,
            "t": np.asarray(self.t).tolist(),
            "outputs": obs["outputs"],
            "readout_moment": obs["readout_moment"],
            "kernel_diagonal": obs["kernel_diagonal"],
            "kernel_blocks": obs["kernel_blocks"],
            "converged": bool(self.success),
            "iterations": int(self.nit),
            "error_estimate": float(self.error_estimate),
            "residual": float(self.residual_norm),
            "message": self.message,
            "integrator": self.integrator,
            "evaluations": int(self.nfev),
            "time_seconds": float(self.time_seconds),
        }
        if self.free_energy is not None:
            out["free_energy"] = float(self.free_energy)
        if "errors" in obs:
            out["errors"] = obs["errors"]
        out.update(self.extra)
        return out
