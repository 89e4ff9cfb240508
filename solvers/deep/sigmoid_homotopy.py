"""Homotopy between two sigmoids for the deep class-block equations: from the saddle of one bounded φ_0 to that of
φ_1 = α + β φ_0(κ h) (THEORY §5; the equations: :mod:`solvers.deep.model`).

The non-negative sigmoid is an affine image of the odd one: normcdf(h) = ½ + ½ erf(h/√2) and the package's
erf(√π h/2) differ by (α, β, κ) = (½, ½, √(2/π)). Along s ∈ [0, 1] the nonlinearity is

    φ_s(h) = α_s + β_s φ_0(κ_s h),   α_s = s_o α,  β_s = 1 + s_o (β − 1),  κ_s = 1 + s_k (κ − 1),

with (s_k, s_o) = (s, s) on the "joint" path, and on the two-stage path first the scale (s_k = s, s_o = 0:
"scale") and then offset and gain (s_k = 1, s_o = s: "offset"); every φ_s is a bounded monotone sigmoid and its
1-D tilted integrals are φ_0's, exactly (``OneD.affine``, :mod:`theory.deep_tilted`). The offset is what sets
normcdf's common mode (E φ ≠ 0 under the prior) apart from erf's.

The path is followed by the shape homotopy's machinery (:func:`solvers.deep.shape_homotopy.follow_shape` with
``deform`` = :func:`sigmoid_model`: natural-parameter steps with a secant predictor, proposals checked and
re-made as mixtures after every step). The point reached at s = 1 solves φ_1's equations with the rules of
``model``; the caller hands it to the search as a start.
"""
from __future__ import annotations

import copy
import math

from solvers.deep.shape_homotopy import ShapePath, follow_shape
from theory.deep_tilted import OneD
from theory.spec import SpecError

__all__ = ["AFFINE_IMAGES", "SOURCES", "STAGES", "affine_parameters", "sigmoid_model", "follow_sigmoid"]

#: (φ_0, φ_1) → (α, β, κ) with φ_1(h) = α + β φ_0(κ h) exactly
AFFINE_IMAGES = {("erf", "normcdf"): (0.5, 0.5, math.sqrt(2.0 / math.pi))}
#: φ_1 → the φ_0 its deep saddle is continued from
SOURCES = {target: source for source, target in AFFINE_IMAGES}

#: the paths in s: "joint" moves scale, offset and gain together; "scale" the scale κ only (offset 0, gain 1);
#: "offset" offset and gain at the target scale
STAGES = ("joint", "scale", "offset")


def affine_parameters(source: str, target: str, s: float, stage: str = "joint") -> tuple:
    """(α_s, β_s, κ_s) of φ_s on the path from ``source`` (s = 0) to ``target`` (module docstring)."""
    if (source, target) not in AFFINE_IMAGES:
        raise SpecError(f"no affine image from {source!r} to {target!r} (known: {sorted(AFFINE_IMAGES)})")
    if stage not in STAGES:
        raise SpecError(f"stage must be one of {STAGES} (got {stage!r})")
    if not 0.0 <= s <= 1.0:
        raise SpecError(f"s must lie in [0, 1] (got {s})")
    al, be, ka = AFFINE_IMAGES[(source, target)]
    sk, so = {"joint": (s, s), "scale": (s, 0.0), "offset": (1.0, s)}[stage]
    return so * al, 1.0 + so * (be - 1.0), 1.0 + sk * (ka - 1.0)


def sigmoid_model(model, s: float, source: str = "erf", stage: str = "joint"):
    """``model`` (a :class:`solvers.deep.model.DeepModel` of the target φ) with φ replaced by φ_s of the path from
    ``source``: the same rules, sizes, priors and T (its layer caches are shared; they are keyed by φ's inputs)."""
    target = model.oned.name
    out = copy.copy(model)
    out.oned = OneD.for_nonlinearity(source, model.oned.nz).affined(*affine_parameters(source, target, s, stage))
    out.exact = False
    return out


def follow_sigmoid(model, source: str, x0, props, log, remix, stage: str = "joint", start: float = 0.0,
                   first_step: float = 1.0 / 16.0) -> ShapePath:
    """Follow the equations of ``model`` (the target φ) along φ_s from ``source``'s saddle (x0, ``props``) at
    s = ``start`` to s = 1 (:func:`solvers.deep.shape_homotopy.follow_shape`: steps from ``first_step`` up, Newton
    ``maxiter`` 25 per step, ``remix(model, x, proposals)`` after every solved step). ``log``: the solve's
    :class:`solvers.deep.newton.SolveLog` (its budget bounds the path)."""
    return follow_shape(model, x0, props, log, label=f"homotopy from the {source} saddle", first_step=first_step,
                        maxiter=25, every_step=True, start=start, remix=remix,
                        deform=lambda mdl, s: sigmoid_model(mdl, s, source, stage))
