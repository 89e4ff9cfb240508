"""Coverage of the finite-P solve's error estimate (THEORY §3, orthogonal class data).

For a case (φ, class sizes P_c, temperature T) the default solve reports observables
o = (f, U, K_μμ per class, K_μν class blocks) and an ``error_estimate`` ε (integrator error plus
the observables' response to the last Newton step). The true error is

    e = max_k |o_k − o_k^ref|

against a reference: the closed form for linear φ (THEORY §3, "Linear check"), otherwise a solve
at residual tolerance 1e-11 on the most accurate rule (:data:`TIGHT`), which carries its own
estimate ε_ref. The estimate covers the case when e ≤ ε + ε_ref; the coverage ratio is
e / (ε + ε_ref). A reference is usable (:attr:`CoverageCase.reference_usable`) when its residual is
≤ :data:`REFERENCE_RESIDUAL`, or, where its rule's integration noise stops Newton above that, when
its own estimate ε_ref (which includes the observables' response to the last Newton step) is
below the estimate ε it checks. Where the tight solve is usable by neither rule, the reference is
solved again on a finer rule (:data:`FINER`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from solvers.options import SolverOptions
from solvers.solve import solve
from theory.linear import linear_class_closed_form
from theory.spec import ModelSpec

__all__ = ["KEYS", "TIGHT", "FINER", "REFERENCE_RESIDUAL", "MATRIX", "CoverageCase", "max_difference", "reference",
           "coverage_case", "markdown_table"]

KEYS = ("outputs", "readout_moment", "kernel_diagonal", "kernel_blocks")
#: the reference: residual 1e-11 and the most accurate rule the ψ table's own error allows
TIGHT = SolverOptions(tol=1e-11, integral_tol=1e-10, max_order=96)
#: the second try where TIGHT stops at its rule's noise floor above REFERENCE_RESIDUAL
FINER = SolverOptions(tol=1e-11, integral_tol=1e-11, max_order=144)
REFERENCE_RESIDUAL = 1e-11
#: the matrix of issue 15 item 6: φ × class sizes × T
MATRIX = tuple((nl, sizes, T) for nl in ("linear", "erf", "normcdf", "relu")
               for sizes in ((32, 16, 16), (8, 4, 4)) for T in (0.5, 0.05))


def max_difference(obs, ref_obs) -> float:
    """max over the observables of :data:`KEYS` of |obs − ref_obs|."""
    return max(float(np.max(np.abs(np.asarray(getattr(obs, k)) - np.asarray(getattr(ref_obs, k)))))
               for k in KEYS)


@dataclass(frozen=True)
class CoverageCase:
    """One row of the coverage table (errors are absolute, max over :data:`KEYS`)."""

    nonlinearity: str
    class_sizes: tuple
    temperature: float
    converged: bool
    true_error: float
    error_estimate: float
    reference: str  # "closed form", "tight solve", "finer solve" or "none (...)"
    reference_estimate: float
    reference_residual: float
    seconds: float

    @property
    def ratio(self) -> float:
        """true error / (estimate + the reference's estimate); ≤ 1 means covered."""
        return self.true_error / (self.error_estimate + self.reference_estimate)

    @property
    def reference_usable(self) -> bool:
        """residual ≤ REFERENCE_RESIDUAL, or the reference's estimate below the one it checks."""
        return bool(self.reference_residual <= REFERENCE_RESIDUAL or self.reference_estimate < self.error_estimate)

    @property
    def covered(self) -> bool:
        return bool(self.converged and self.reference_usable and self.ratio <= 1.0)


def reference(spec: ModelSpec, checked_estimate: float = 0.0):
    """(observables, estimate, residual, label) of the reference for the estimate
    ``checked_estimate`` of a solve of ``spec``."""
    if spec.nonlinearity == "linear":
        _, exact = linear_class_closed_form(spec)
        return exact, 0.0, 0.0, "closed form"
    ref = solve(spec, TIGHT)
    label = "tight solve"
    if ref.residual > REFERENCE_RESIDUAL and not ref.error_estimate < checked_estimate:
        finer = solve(spec, FINER)
        if finer.residual < ref.residual:
            ref, label = finer, "finer solve"
    return ref.observables, float(ref.error_estimate), float(ref.residual), label


def coverage_case(nonlinearity: str, class_sizes, temperature: float) -> CoverageCase:
    """Solve one case with the default options and measure its true error against the reference."""
    spec = ModelSpec(nonlinearity, class_sizes=tuple(class_sizes), temperature=temperature)
    start = time.perf_counter()
    res = solve(spec)
    ref_obs, ref_est, ref_res, label = reference(spec, float(res.error_estimate))
    return CoverageCase(nonlinearity, tuple(class_sizes), float(temperature), bool(res.converged),
                        max_difference(res.observables, ref_obs), float(res.error_estimate), label, ref_est,
                        ref_res, time.perf_counter() - start)


def markdown_table(cases) -> str:
    """The cases as a Markdown table."""
    lines = ["| φ | classes | T | converged | true error | estimate | reference (its estimate, residual) "
             "| ratio | covered |", "|---|---|---|---|---|---|---|---|---|"]
    for c in cases:
        sizes = ",".join(str(p) for p in c.class_sizes)
        lines.append(f"| {c.nonlinearity} | {sizes} | {c.temperature:g} | {c.converged} | {c.true_error:.1e} "
                     f"| {c.error_estimate:.1e} | {c.reference} ({c.reference_estimate:.1e}, "
                     f"{c.reference_residual:.1e}) | {c.ratio:.3g} | {'yes' if c.covered else 'NO'} |")
    return "\n".join(lines)
