"""Points of a sweep and their arrangement on a grid: :func:`grid_points` (x varying fastest),
the point checks of :func:`run_sweep`, and :func:`to_grid` / :func:`record_value` to read records
back into ``Z[j, i]`` arrays."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from solvers.sweep.fileformat import compact
from theory.jsonio import jsonable

__all__ = ["GridPoints", "grid_points", "check_points", "record_value", "to_grid"]

_MISSING = object()


class GridPoints(list):
    """A list of point dicts that also carries its grid definition (``.grid``), as made by :func:`grid_points`."""

    def __init__(self, points, grid: dict):
        super().__init__(points)
        self.grid = grid

    def __reduce__(self):
        return (GridPoints, (list(self), self.grid))


def _axis_values(label: str, name: str, values) -> list:
    vals = jsonable(list(np.asarray(values).ravel()) if isinstance(values, np.ndarray) else list(values), label)
    if not vals:
        raise ValueError(f"{label} ({name}) is empty")
    seen = set()
    for v in vals:
        key = compact(v)
        if key in seen:
            raise ValueError(f"{label} ({name}) contains {v!r} twice")
        seen.add(key)
    return vals


def grid_points(x_name: str, x_values, y_name: str, y_values, *, fixed: Mapping | None = None) -> GridPoints:
    """All points of the ``x_values × y_values`` grid, x varying fastest.

    Each point is ``{x_name: x, y_name: y, **fixed}``. Values are converted to
    plain Python numbers (numpy float64 → float). The returned list carries the
    grid definition, which :func:`run_sweep` writes to the file's header.
    """
    for label, name in (("x_name", x_name), ("y_name", y_name)):
        if not isinstance(name, str) or not name:
            raise ValueError(f"{label} must be a non-empty string, got {name!r}")
    if x_name == y_name:
        raise ValueError(f"x_name and y_name must differ, both are {x_name!r}")
    fixed = jsonable(dict(fixed or {}), "fixed")
    for name in (x_name, y_name):
        if name in fixed:
            raise ValueError(f"fixed parameter {name!r} is also a grid axis")
    xs = _axis_values("x_values", x_name, x_values)
    ys = _axis_values("y_values", y_name, y_values)
    points = [{x_name: x, y_name: y, **fixed} for y in ys for x in xs]
    grid = {"x": {"name": x_name, "values": xs}, "y": {"name": y_name, "values": ys}, "fixed": fixed}
    return GridPoints(points, grid)


def check_points(points) -> tuple[list[dict], list[str]]:
    """The points as plain JSON dicts and their parameter names; ``ValueError``/``TypeError`` if unusable."""
    if isinstance(points, Mapping) or isinstance(points, (str, bytes)):
        raise TypeError("points must be a list of dicts (one dict of parameter values per point)")
    points = list(points)
    if not points:
        raise ValueError("points is empty: nothing to sweep")
    out, seen = [], {}
    names = None
    for i, p in enumerate(points):
        if not isinstance(p, Mapping):
            raise TypeError(f"points[{i}] is a {type(p).__name__}, expected a dict of parameter values")
        p = jsonable(dict(p), f"points[{i}]")
        if names is None:
            names = list(p)
        elif set(p) != set(names):
            raise ValueError(f"points[{i}] has parameters {sorted(p)}, but points[0] has {sorted(names)}; "
                             "all points must name the same parameters")
        key = compact(dict(sorted(p.items())))
        if key in seen:
            raise ValueError(f"points[{i}] = {p} duplicates points[{seen[key]}]")
        seen[key] = i
        out.append(p)
    return out, names


# ---------------------------------------------------------------------------------------------------------
# records → arrays


def record_value(record: Mapping, key: str):
    """``record["result"][key]``, else ``record["point"][key]``; ``"a.b"`` reads nested dicts. ``KeyError`` if absent."""
    for source in (record.get("result") or {}, record.get("point") or {}):
        node, found = source, True
        for part in str(key).split("."):
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            else:
                found = False
                break
        if found:
            return node
    raise KeyError(f"key {key!r} is in neither the result nor the point of record {record.get('index')} "
                   f"(result keys: {sorted((record.get('result') or {}).keys())}, "
                   f"parameters: {sorted((record.get('point') or {}).keys())})")


def _records_axis(records, name, given) -> list:
    if given is not None:
        return list(given)
    vals = []
    for rec in records:
        if name not in rec.get("point", {}):
            raise KeyError(f"parameter {name!r} is not in record {rec.get('index')} "
                           f"(parameters: {sorted(rec.get('point', {}))})")
        vals.append(rec["point"][name])
    try:
        return sorted(set(vals))
    except TypeError:
        return list(dict.fromkeys(vals))


def _cells(records, x_name, y_name, xs, ys, value_of) -> dict[tuple[int, int], Any]:
    """{(j, i): value} of the records on the grid; ``_MISSING`` for error records."""
    xi = {compact(v): i for i, v in enumerate(xs)}
    yi = {compact(v): j for j, v in enumerate(ys)}
    cells: dict[tuple[int, int], Any] = {}
    for rec in records:
        point = rec.get("point", {})
        kx, ky = compact(point.get(x_name)), compact(point.get(y_name))
        if kx not in xi or ky not in yi:
            continue
        cell = (yi[ky], xi[kx])
        if cell in cells:
            raise ValueError(f"two records at {x_name}={point.get(x_name)!r}, {y_name}={point.get(y_name)!r} "
                             "(another parameter varies); filter the records to one value of it first")
        cells[cell] = value_of(rec) if rec.get("status") == "ok" else _MISSING
    return cells


def _axis_array(values) -> np.ndarray:
    numeric = all(isinstance(v, (int, float)) for v in values)
    return np.asarray(values, dtype=np.float64 if numeric else object)


def to_grid(records, x_name: str, y_name: str, key, *, x_values=None, y_values=None, fill=None):
    """Arrange one quantity of the records on the (x, y) grid: ``(x, y, Z)`` with ``Z[j, i]`` at ``(x[i], y[j])``.

    ``key`` names an entry of ``record["result"]`` (``"a.b"`` for nested
    dicts), or of ``record["point"]``, or is a callable ``key(record)``.
    ``x``/``y`` are the sorted distinct values in the records unless
    ``x_values``/``y_values`` are given (e.g. ``header["grid"]["x"]["values"]``,
    so that missing rows stay visible). Records with status ``"error"`` and
    points without a record are missing. If every value is a number (or bool),
    ``Z`` is a float64 array with missing entries ``fill`` (default NaN);
    otherwise it is an object array with missing entries ``fill`` (default
    None). Two records on the same (x, y) (a third parameter varies) raise
    ``ValueError``: filter the records first.
    """
    records = list(records)

    def value_of(rec):
        return key(rec) if callable(key) else record_value(rec, key)

    xs, ys = _records_axis(records, x_name, x_values), _records_axis(records, y_name, y_values)
    cells = _cells(records, x_name, y_name, xs, ys, value_of)
    values = [v for v in cells.values() if v is not _MISSING]
    numeric = all(isinstance(v, (int, float, np.integer, np.floating, bool, np.bool_)) for v in values)
    if numeric:
        Z = np.full((len(ys), len(xs)), np.nan if fill is None else fill, dtype=np.float64)
    else:
        Z = np.empty((len(ys), len(xs)), dtype=object)
        Z[...] = fill
    for (j, i), v in cells.items():
        if v is not _MISSING:
            Z[j, i] = v
    return _axis_array(xs), _axis_array(ys), Z
