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
solved at the noise floor (:data:`FLOOR`, residual tolerance 1e-10) and on a second rule
(:data:`FLOOR_REPLICA`), usable when its estimate is below ε and the two solves agree within it
(:attr:`CoverageCase.replica_difference`). Below a rule's noise floor a ReLU condensate asked
for residual 1e-11 can stop with a larger error (which its own estimate reports) than at 1e-10.
Last, a finer rule (:data:`FINER`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
import math

import numpy as np

from solvers.options import SolverOptions
from solvers.solve import solve
from theory.linear import linear_class_closed_form
from theory.spec import ModelSpec

__all__ = ["KEYS", "TIGHT", "FLOOR", "FLOOR_REPLICA", "FINER", "REFERENCE_RESIDUAL", "MATRIX", "usable", "Reference",
           "CoverageCase", "max_difference", "reference_solution", "reference", "coverage_case", "markdown_table"]

KEYS = ("outputs", "readout_moment", "kernel_diagonal", "kernel_blocks")
#: the reference: residual 1e-11 and the most accurate rule the ψ table's own error allows
TIGHT = SolverOptions(tol=1e-11, integral_tol=1e-10, max_order=96)
#: the second try where TIGHT is unusable: the residual tolerance of a rule's noise floor, on a finer rule ...
FLOOR = SolverOptions(tol=1e-10, integral_tol=1e-9, max_order=96)
#: ... checked against the same tolerance on the default rule
FLOOR_REPLICA = SolverOptions(tol=1e-10)
#: the last try, where TIGHT stops at its rule's noise floor above REFERENCE_RESIDUAL
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
    replica_difference: float = math.nan  # noise-floor references: distance between FLOOR and FLOOR_REPLICA

    @property
    def ratio(self) -> float:
        """true error / (estimate + the reference's estimate); ≤ 1 means covered."""
        return self.true_error / (self.error_estimate + self.reference_estimate)

    @property
    def reference_usable(self) -> bool:
        """:func:`usable` for this case's reference and estimate."""
        return usable(self.reference_residual, self.reference_estimate, self.error_estimate, self.replica_difference)

    @property
    def covered(self) -> bool:
        return bool(self.converged and self.reference_usable and self.ratio <= 1.0)


def usable(residual: float, estimate: float, checked_estimate: float, replica_difference: float = math.nan) -> bool:
    """Whether a reference can check ``checked_estimate``: residual ≤ REFERENCE_RESIDUAL, or its own
    estimate below the checked one and (for a noise-floor reference) its replica within that estimate."""
    if residual <= REFERENCE_RESIDUAL:
        return True
    replica_ok = math.isnan(replica_difference) or replica_difference <= estimate
    return bool(estimate < checked_estimate and replica_ok)


@dataclass(frozen=True)
class Reference:
    """A reference solution: its observables, own estimate and residual, how it was found, and (for
    noise-floor references) its distance to the replica on another rule."""

    observables: object
    estimate: float
    residual: float
    label: str
    replica_difference: float = math.nan

    @classmethod
    def of(cls, res, label: str, replica_difference: float = math.nan) -> "Reference":
        return cls(res.observables, float(res.error_estimate), float(res.residual), label, float(replica_difference))

    def usable_for(self, checked_estimate: float) -> bool:
        return usable(self.residual, self.estimate, checked_estimate, self.replica_difference)


def reference_solution(spec: ModelSpec, checked_estimate: float = 0.0) -> Reference:
    """The reference for the estimate ``checked_estimate`` of a solve of ``spec`` (module docstring):
    the closed form, else the first usable of TIGHT, the FLOOR pair (only for ``checked_estimate`` > 0)
    and FINER; if none is usable, whichever of TIGHT and FINER has the smaller residual."""
    if spec.nonlinearity == "linear":
        _, exact = linear_class_closed_form(spec)
        return Reference(exact, 0.0, 0.0, "closed form")
    tight = Reference.of(solve(spec, TIGHT), "tight solve")
    if tight.usable_for(checked_estimate):
        return tight
    if checked_estimate > 0.0:
        floor = solve(spec, FLOOR)
        if floor.error_estimate < checked_estimate:  # else its replica cannot make it usable
            replica = solve(spec, FLOOR_REPLICA)
            ref = Reference.of(floor, "noise-floor solve", max_difference(floor.observables, replica.observables))
            if ref.usable_for(checked_estimate):
                return ref
    finer = Reference.of(solve(spec, FINER), "finer solve")
    return finer if finer.residual < tight.residual else tight


def reference(spec: ModelSpec, checked_estimate: float = 0.0):
    """(observables, estimate, residual, label) of :func:`reference_solution`."""
    ref = reference_solution(spec, checked_estimate)
    return ref.observables, ref.estimate, ref.residual, ref.label


def coverage_case(nonlinearity: str, class_sizes, temperature: float) -> CoverageCase:
    """Solve one case with the default options and measure its true error against the reference."""
    spec = ModelSpec(nonlinearity, class_sizes=tuple(class_sizes), temperature=temperature)
    start = time.perf_counter()
    res = solve(spec)
    ref = reference_solution(spec, float(res.error_estimate))
    return CoverageCase(nonlinearity, tuple(class_sizes), float(temperature), bool(res.converged),
                        max_difference(res.observables, ref.observables), float(res.error_estimate), ref.label,
                        ref.estimate, ref.residual, time.perf_counter() - start, ref.replica_difference)


def _label(case: CoverageCase) -> str:
    if math.isnan(case.replica_difference):
        return case.reference
    return f"{case.reference}, replica within {case.replica_difference:.1e}"


def markdown_table(cases) -> str:
    """The cases as a Markdown table."""
    lines = ["| φ | classes | T | converged | true error | estimate | reference (its estimate, residual) "
             "| ratio | covered |", "|---|---|---|---|---|---|---|---|---|"]
    for c in cases:
        sizes = ",".join(str(p) for p in c.class_sizes)
        lines.append(f"| {c.nonlinearity} | {sizes} | {c.temperature:g} | {c.converged} | {c.true_error:.1e} "
                     f"| {c.error_estimate:.1e} | {_label(c)} ({c.reference_estimate:.1e}, "
                     f"{c.reference_residual:.1e}) | {c.ratio:.3g} | {'yes' if c.covered else 'NO'} |")
    return "\n".join(lines)
