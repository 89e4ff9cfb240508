"""Validated, frozen model specification.

A :class:`ModelSpec` fixes everything the mean-field theory of THEORY.md §1–3
needs: the nonlinearity φ, the prior standard deviations σ_1 (first-layer
weights, ``sigma_w``) and σ_a (readout, ``sigma_a``), the temperature T ≥ 0,
the class sizes P_c and the kind of data:

* ``"orthogonal"``: class-structured orthogonal inputs, K0 = I (THEORY §3);
* ``"matrix"``: an explicit input matrix X (P × N0) with K0 = X Xᵀ / N0
  (THEORY §2); solved in closed form for linear networks only, for now.

Invalid input raises :class:`SpecError`, a ``ValueError`` whose message names
the parameter and its valid range.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import math
import numbers

import numpy as np

__all__ = ["SpecError", "ModelSpec", "DEFAULT_CLASS_SIZES", "parse_class_sizes", "class_labels", "positive_float"]

#: The default task of the CLI: classes 1/2, 1/4, 1/4 of P = 64.
DEFAULT_CLASS_SIZES = (32, 16, 16)


class SpecError(ValueError):
    """Invalid model or solver input; the message names the parameter."""


def positive_float(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SpecError(f"{name} must be a finite number > 0 (got {value!r})") from None
    if not math.isfinite(v) or v <= 0.0:
        raise SpecError(f"{name} must be a finite number > 0 (got {value!r})")
    return v


def parse_class_sizes(value) -> tuple[int, ...]:
    """Class sizes as a tuple of positive ints, from a sequence or '8,4,4'."""
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not parts:
            raise SpecError("class_sizes must list at least 2 positive integers, e.g. '8,4,4' (got empty)")
        try:
            value = [float(p) for p in parts]
        except ValueError:
            raise SpecError(f"class_sizes must be comma-separated positive integers (got {value!r})") from None
    try:
        sizes = list(value)
    except TypeError:
        raise SpecError(f"class_sizes must be a sequence of positive integers (got {value!r})") from None
    if len(sizes) < 2:
        raise SpecError(f"class_sizes must list at least 2 classes, each of size >= 1 (got {sizes!r})")
    out = []
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, numbers.Real) or not float(s).is_integer() or s < 1:
            raise SpecError(f"class_sizes entries must be integers >= 1 (got {s!r} in {sizes!r})")
        out.append(int(s))
    return tuple(out)


def class_labels(class_sizes) -> np.ndarray:
    """Labels c(μ) for consecutive class blocks of the given sizes."""
    return np.repeat(np.arange(len(class_sizes)), class_sizes)


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """One-hidden-layer Bayesian network and its task (THEORY §1).

    Parameters
    ----------
    nonlinearity : str
        ``linear``, ``relu``, ``erf`` (erf(√π h/2)), ``normcdf`` (Φ(h)),
        ``tanh``, or a sympy expression in ``h``.
    sigma_w : float
        σ_1 > 0, prior standard deviation of first-layer weights.
    sigma_a : float
        σ_a > 0, prior standard deviation of readout weights.
    temperature : float
        T ≥ 0; T = 0 is the interpolation limit.
    class_sizes : sequence of int
        P_c ≥ 1 for each of the m ≥ 2 classes; P = Σ P_c.
    inputs : array (P, N0), optional
        Explicit inputs (data kind ``"matrix"``); rows ordered by class in
        blocks of ``class_sizes``. ``None`` means orthogonal inputs, K0 = I.
    """

    nonlinearity: str = "relu"
    sigma_w: float = 1.0
    sigma_a: float = 1.0
    temperature: float = 0.05
    class_sizes: tuple = DEFAULT_CLASS_SIZES
    inputs: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self):
        if not isinstance(self.nonlinearity, str) or not self.nonlinearity.strip():
            raise SpecError(f"nonlinearity must be a non-empty string (got {self.nonlinearity!r})")
        object.__setattr__(self, "nonlinearity", self.nonlinearity.strip())
        object.__setattr__(self, "sigma_w", positive_float("sigma_w (σ_1)", self.sigma_w))
        object.__setattr__(self, "sigma_a", positive_float("sigma_a (σ_a)", self.sigma_a))
        try:
            T = float(self.temperature)
        except (TypeError, ValueError):
            raise SpecError(f"temperature must be a number >= 0 (got {self.temperature!r})") from None
        if not math.isfinite(T) or T < 0.0:
            raise SpecError(f"temperature must be finite and >= 0 (got {self.temperature!r})")
        object.__setattr__(self, "temperature", T)
        object.__setattr__(self, "class_sizes", parse_class_sizes(self.class_sizes))
        if self.inputs is not None:
            X = np.asarray(self.inputs, dtype=np.float64)
            if X.ndim != 2:
                raise SpecError(f"inputs must be a 2-D array (P, N0) (got shape {X.shape})")
            if X.shape[0] != self.P:
                raise SpecError(
                    f"inputs has {X.shape[0]} rows but class_sizes {self.class_sizes} add up to P = {self.P}; "
                    "they must be equal")
            if not np.all(np.isfinite(X)):
                raise SpecError("inputs must be finite (found NaN or inf)")
            X.setflags(write=False)
            object.__setattr__(self, "inputs", X)

    # ------------------------------------------------------------------ derived
    @property
    def m(self) -> int:
        """Number of classes (= outputs)."""
        return len(self.class_sizes)

    @property
    def P(self) -> int:
        """Number of training inputs."""
        return int(sum(self.class_sizes))

    @property
    def data_kind(self) -> str:
        return "orthogonal" if self.inputs is None else "matrix"

    @property
    def class_fractions(self) -> np.ndarray:
        sizes = np.asarray(self.class_sizes, dtype=np.float64)
        return sizes / sizes.sum()

    def input_kernel(self) -> np.ndarray:
        """K0 = X Xᵀ / N0 (identity for orthogonal data)."""
        if self.inputs is None:
            return np.eye(self.P)
        X = self.inputs
        return X @ X.T / X.shape[1]

    def targets(self) -> np.ndarray:
        """One-hot targets Y (P × m)."""
        return np.eye(self.m)[class_labels(self.class_sizes)]

    def replace(self, **changes) -> "ModelSpec":
        kw = dict(nonlinearity=self.nonlinearity, sigma_w=self.sigma_w, sigma_a=self.sigma_a,
                  temperature=self.temperature, class_sizes=self.class_sizes, inputs=self.inputs)
        kw.update(changes)
        return ModelSpec(**kw)

    def to_dict(self) -> dict:
        return {"nonlinearity": self.nonlinearity, "sigma_w": self.sigma_w, "sigma_a": self.sigma_a,
                "temperature": self.temperature, "class_sizes": list(self.class_sizes),
                "data": self.data_kind}
