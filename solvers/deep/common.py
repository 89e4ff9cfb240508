"""What every deep solver shares: the per-layer priors, the verdict of a deep linear root and the JSON of a
deep result (:mod:`solvers.deep.linear`, :mod:`solvers.deep.linear_classes`, :mod:`solvers.deep.nonlinear`)."""
from __future__ import annotations

import math

import numpy as np

from solvers.results import Result
from theory.spec import ModelSpec, SpecError

__all__ = ["RESIDUAL_TOL", "DeepLinearError", "layer_sigmas", "check_linear_spec", "linear_verdict",
           "with_result_keys"]


#: max relative residual of the deep linear equations (:func:`solvers.deep.linear.deep_linear_residuals`;
#: the class equations h_c = 0) up to which a root counts as converged
RESIDUAL_TOL = 1e-8


class DeepLinearError(RuntimeError):
    """No solution of the deep linear equations inside the domain was found."""


def layer_sigmas(spec: ModelSpec, layers, sigmas=None) -> tuple:
    """(σ_1, ..., σ_L) validated: ``sigmas`` (length L, each > 0) or L copies of spec.sigma_w."""
    if isinstance(layers, bool) or not isinstance(layers, (int, np.integer)) or layers < 1:
        raise SpecError(f"layers must be an integer >= 1 (got {layers!r})")
    if sigmas is None:
        return (float(spec.sigma_w),) * int(layers)
    try:
        sig = tuple(float(s) for s in sigmas)
    except (TypeError, ValueError):
        raise SpecError(f"sigmas must be a sequence of {layers} numbers > 0 (got {sigmas!r})") from None
    if len(sig) != layers or not all(math.isfinite(s) and s > 0 for s in sig):
        raise SpecError(f"sigmas must list {layers} finite numbers > 0, σ_1..σ_L (got {sigmas!r})")
    return sig


def check_linear_spec(spec, what):
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec must be a ModelSpec (got {type(spec).__name__})")
    if spec.nonlinearity != "linear":
        raise SpecError(f"{what} needs nonlinearity 'linear' (got {spec.nonlinearity!r}); "
                        "deep nonlinear networks are not solved yet")


def linear_verdict(stable: bool, residual: float, where: str = "") -> dict:
    """The :class:`solvers.results.Result` fields of a deep linear root: converged only if the selected
    root is stable and its residual is below :data:`RESIDUAL_TOL`; an unstable root is never called
    converged (it is returned, flagged, when no stable root exists)."""
    if not stable:
        return {"converged": False, "status": "no-solution",
                "message": f"no stable root found{where}: the selected root is UNSTABLE (a saddle of the kernel "
                           f"potential Ψ, not a local maximum); residual {residual:.1e}"}
    if not residual <= RESIDUAL_TOL:
        return {"converged": False, "status": "not-converged",
                "message": f"stable root with residual {residual:.1e} above {RESIDUAL_TOL:g}{where}"}
    return {"converged": True, "status": "converged",
            "message": f"converged: stable root with the largest free energy, residual {residual:.1e}"}


def with_result_keys(result: Result, out: dict) -> dict:
    """``out`` (a deep solution's own JSON keys, kept as they are) plus the shared result keys it lacks."""
    for k, v in result.result_json().items():
        out.setdefault(k, v)
    return out
