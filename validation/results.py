"""Validation reports on the one result protocol (:class:`solvers.results.Result`, THEORY §7).

A validation report states a pass rule (sampled observables within the stated allowance of the
theory, chains mixed: R̂ below its bound) and whether it holds. Here ``converged`` is that rule,
``status`` is "converged" when it holds, "not-converged" when the chains did not mix (R̂ rule
missed) and "error-bound-missed" when they did but the observables fall outside the allowance
(for :class:`GeneralizationReport`: the theory solver's own ``converged``).

The report's entries (the JSON object of ``codingschemes validate`` / ``generalize``) are kept in
``data`` (a copy of the dict given) and read as before, read-only: ``report["passed"]``, ``report.get(key)``,
``key in report``, ``report.keys()``, ``dict(report)``. ``to_json()`` is that object (JSON types)
plus the shared keys of :meth:`solvers.results.Result.result_json` that it does not already hold.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from solvers.results import Result
from theory.jsonio import jsonable

__all__ = ["ValidationReport", "Comparison", "SamplingReport", "StationarityReport", "DeepValidationReport",
           "DeepStationarityReport", "GeneralizationReport", "pass_status"]


def pass_status(passed: bool, chains_mixed: bool = True) -> str:
    """The status of a pass rule (module docstring)."""
    if passed:
        return "converged"
    return "error-bound-missed" if chains_mixed else "not-converged"


@dataclass(frozen=True, kw_only=True, eq=False)
class ValidationReport(Result):
    """A validation report: the shared result fields and its entries ``data`` (module docstring)."""

    data: Mapping = field(default_factory=dict)

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "data", dict(self.data))

    __eq__ = object.__eq__  # a report is equal only to itself (its entries hold arrays)
    __hash__ = object.__hash__

    @classmethod
    def from_dict(cls, data: Mapping, *, passed: bool, chains_mixed: bool = True, message: str = "",
                  time_seconds: float = 0.0, **fields):
        """The report of ``data`` whose pass rule gives ``passed`` (status by :func:`pass_status`)."""
        return cls(data=data, converged=bool(passed), status=pass_status(bool(passed), chains_mixed),
                   message=message or ("passed" if passed else "failed"), time_seconds=time_seconds, **fields)

    # read-only dict-style access: the reports were plain dicts
    def __getitem__(self, key):
        return self.data[key]

    def get(self, key, default=None):
        return self.data.get(key, default)

    def __contains__(self, key) -> bool:
        return key in self.data

    def __iter__(self):
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def keys(self):
        return self.data.keys()

    def values(self):
        return self.data.values()

    def items(self):
        return self.data.items()

    def observables(self):
        raise NotImplementedError(f"{type(self).__name__} compares observables; read them from its entries")

    def to_json(self) -> dict:
        out = jsonable(self.data)
        for key, value in self.result_json().items():
            out.setdefault(key, value)
        return out


class Comparison(ValidationReport):
    """:func:`validation.compare.compare`: theory against sampled observables by one rule."""


class SamplingReport(ValidationReport):
    """:func:`validation.report.validate`: sampled one-hidden-layer networks against the theory."""


class StationarityReport(ValidationReport):
    """:func:`validation.report.stationarity`: chains started from the theory stay at it."""


class DeepValidationReport(ValidationReport):
    """:func:`validation.deep.validate_deep`: sampled deep networks against the deep theory."""


class DeepStationarityReport(ValidationReport):
    """:func:`validation.deep_theory_init.deep_stationarity`: deep chains started from the theory stay at it."""


class GeneralizationReport(ValidationReport):
    """:func:`validation.generalization.generalization_report`: theory, GP and sampled networks on data;
    ``converged`` is the theory solver's."""
