"""The one JSON conversion of the package: results, sweep rows and CLI output go through it.

``jsonable(obj)`` turns numpy scalars and arrays, tuples, mappings and dataclass-like objects
with ``to_json()`` into plain JSON types. Non-finite floats become the strings "NaN",
"Infinity", "-Infinity" (JSON has no such numbers; ``decode_nonfinite`` turns them back).
``dumps`` is ``json.dumps`` of ``jsonable``, with ``allow_nan=False`` so nothing non-standard
is ever written.
"""
from __future__ import annotations

from collections.abc import Mapping
import json
import math

import numpy as np

__all__ = ["jsonable", "dumps", "decode_nonfinite", "NONFINITE"]

#: the strings that stand for non-finite floats in our JSON
NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def jsonable(obj, where: str = "value"):
    """Plain JSON types from ``obj``; ``where`` names the position in error messages."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        if math.isnan(x):
            return "NaN"
        if math.isinf(x):
            return "Infinity" if x > 0 else "-Infinity"
        return x
    if isinstance(obj, np.ndarray):
        return [jsonable(v, where) for v in obj.tolist()] if obj.ndim else jsonable(obj.item(), where)
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: key {k!r} is not a string (JSON object keys must be strings)")
            out[k] = jsonable(v, f"{where}[{k!r}]")
        return out
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if hasattr(obj, "to_json"):
        return jsonable(obj.to_json(), where)
    raise TypeError(f"{where} of type {type(obj).__name__} is not JSON-serialisable")


def dumps(obj, **kwargs) -> str:
    """``json.dumps(jsonable(obj))`` with ``allow_nan=False``; keyword arguments as for json.dumps."""
    kwargs.setdefault("allow_nan", False)
    return json.dumps(jsonable(obj), **kwargs)


def decode_nonfinite(obj):
    """Inverse of the non-finite encoding of :func:`jsonable`, recursively."""
    if isinstance(obj, str):
        return NONFINITE.get(obj, obj)
    if isinstance(obj, dict):
        return {k: decode_nonfinite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode_nonfinite(v) for v in obj]
    return obj
