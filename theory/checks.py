"""Input checks shared by every spec and options class: one error type, one message shape.

Every check raises :class:`theory.spec.SpecError` (a ``ValueError``) with a message that names
the parameter and its valid range, before any work starts.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from theory.spec import SpecError

__all__ = ["SpecError", "check_int", "check_float", "check_choice", "check_bool"]


def check_int(name: str, value, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` as an int in [lo, hi] (either bound may be None)."""
    rng = f"an integer{'' if lo is None else f' >= {lo}'}{'' if hi is None else f' <= {hi}'}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise SpecError(f"{name} must be {rng} (got {value!r})")
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise SpecError(f"{name} must be {rng} (got {value!r})")
    return v


def check_float(name: str, value, lo: float | None = None, hi: float | None = None, *,
                lo_open: bool = False, hi_open: bool = False) -> float:
    """``value`` as a finite float in the interval given by lo/hi (closed unless ``*_open``)."""
    left = "(-inf" if lo is None else ("(" if lo_open else "[") + f"{lo:g}"
    right = "inf)" if hi is None else f"{hi:g}" + (")" if hi_open else "]")
    rng = f"a finite number in {left}, {right}"
    if isinstance(value, bool):
        raise SpecError(f"{name} must be {rng} (got {value!r})")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SpecError(f"{name} must be {rng} (got {value!r})") from None
    bad = (not math.isfinite(v)
           or (lo is not None and (v <= lo if lo_open else v < lo))
           or (hi is not None and (v >= hi if hi_open else v > hi)))
    if bad:
        raise SpecError(f"{name} must be {rng} (got {value!r})")
    return v


def check_choice(name: str, value, choices) -> str:
    """``value`` if it is one of ``choices``."""
    if value not in tuple(choices):
        raise SpecError(f"{name} must be one of {tuple(choices)} (got {value!r})")
    return value


def check_bool(name: str, value) -> bool:
    """``value`` if it is a bool."""
    if not isinstance(value, bool):
        raise SpecError(f"{name} must be True or False (got {value!r})")
    return value
