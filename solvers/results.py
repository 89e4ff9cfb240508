"""One result protocol for every solver (in the spirit of scipy.optimize's ``OptimizeResult``).

Every solver of the package returns a frozen dataclass derived from :class:`Result`, with the
same fields: ``converged`` (the stated error bound holds), ``status`` (one of ``STATUSES``),
``message``, ``iterations``, ``residual``, ``error_estimate``, ``time_seconds``; plus
``observables()`` (the shared :class:`theory.observables.Observables`) and ``to_json()``.
Non-convergence is reported, never raised; only invalid input raises
(:class:`theory.spec.SpecError`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
import math

import numpy as np

from theory.jsonio import jsonable
from theory.observables import Observables
from theory.spec import ModelSpec

__all__ = ["Result", "SolveResult", "ObservableAliases", "STATUSES", "STATUS"]

#: the one status vocabulary of every result
STATUSES = ("converged", "not-converged", "max-iterations", "line-search-failed", "integration-failed",
            "error-bound-missed", "replicas-disagree", "outside-domain", "no-solution",
            # continuation (a branch's end)
            "reached-boundary", "max-steps", "min-step", "stopped", "probe", "left-global", "boundary-failed")

#: legacy integer status codes of :class:`SolveResult` (``status_code``) and their strings
STATUS = {0: "converged", 1: "max-iterations", 2: "line-search-failed", 3: "integration-failed",
          4: "error-bound-missed"}

_STATUS_CODE = {v: k for k, v in STATUS.items()}


@dataclass(frozen=True, kw_only=True)
class Result:
    """Fields shared by every solver result (keyword-only, after each subclass's own fields).

    converged
        True only when the stated error bound holds (residual and integrator or Monte Carlo
        error within their tolerances).
    status
        One of :data:`STATUSES`.
    message
        Human-readable account of what happened, including why it did not converge.
    iterations
        Outer iterations of the method (Newton steps, rounds, continuation steps).
    residual
        Max-norm residual of the equations solved, at the returned point.
    error_estimate
        The method's own estimate of the absolute error of its observables (0 for closed forms).
    time_seconds
        Wall time of the solve.
    """

    converged: bool
    status: str
    message: str = ""
    iterations: int = 0
    residual: float = math.nan
    error_estimate: float = math.nan
    time_seconds: float = 0.0

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES} (got {self.status!r})")

    def observables(self) -> Observables:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def result_json(self) -> dict:
        """The shared keys of every result's JSON object."""
        return {"converged": bool(self.converged), "status": self.status, "message": self.message,
                "iterations": int(self.iterations), "residual": jsonable(self.residual),
                "error_estimate": jsonable(self.error_estimate), "time_seconds": float(self.time_seconds)}

    def to_json(self) -> dict:
        return self.result_json()


class ObservableAliases:
    """Read-only ``outputs``, ``readout_moment``, ``kernel_diagonal``, ``kernel_blocks`` of a result
    that stores its :class:`~theory.observables.Observables` in the field ``observables``."""

    outputs = property(lambda self: self.observables.outputs, doc="f[c, r]")
    readout_moment = property(lambda self: self.observables.readout_moment, doc="U = E[a aᵀ]")
    kernel_diagonal = property(lambda self: self.observables.kernel_diagonal, doc="K_c")
    kernel_blocks = property(lambda self: self.observables.kernel_blocks, doc="K_cd")


@dataclass(frozen=True, kw_only=True)
class SolveResult(ObservableAliases, Result):
    """Solution of the one-hidden-layer saddle-point equations (THEORY §2–3, §6), any method.

    ``residual`` is max_{c,r} |f_cr − δ_cr + T t_cr|; ``error_estimate`` the integrator's absolute
    error estimate on f, U and the kernel. Read-only aliases of earlier names: ``success``
    (``converged``), ``nit`` (``iterations``), ``residual_norm`` (``residual``), ``status_code``
    (the integer of :data:`STATUS`).
    """

    spec: ModelSpec
    method: str
    t: np.ndarray  # (m, m), t[c, r]
    observables: Observables  # also callable: result.observables() is the protocol's method
    nfev: int = 0
    integrator: str = ""
    readout_mean: np.ndarray | None = None
    free_energy: float | None = None  # G(t*), the dual value: log-evidence per neuron log Z/N up to constants (high T: −P/(2T))
    log: tuple = ()
    extra: dict = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return self.converged

    @property
    def nit(self) -> int:
        return self.iterations

    @property
    def residual_norm(self) -> float:
        return self.residual

    @property
    def status_code(self) -> int:
        return _STATUS_CODE.get(self.status, 1)

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
            **self.result_json(),
            "integrator": self.integrator,
            "evaluations": int(self.nfev),
        }
        if self.free_energy is not None:
            out["free_energy"] = float(self.free_energy)
        if "errors" in obs:
            out["errors"] = obs["errors"]
        out.update(self.extra)
        return out
