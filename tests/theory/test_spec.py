"""Bad input raises SpecError naming the parameter (issue: Core, item 5)."""
import numpy as np
import pytest

from solvers.options import SolverOptions
from theory.nonlinearities import get_nonlinearity
from theory.spec import ModelSpec, SpecError


@pytest.mark.parametrize("kwargs, word", [
    ({"temperature": -0.1}, "temperature"),
    ({"temperature": float("nan")}, "temperature"),
    ({"class_sizes": ()}, "class_sizes"),
    ({"class_sizes": "8,4.5,4"}, "class_sizes"),
    ({"class_sizes": "8"}, "class_sizes"),
    ({"class_sizes": (8, 0, 4)}, "class_sizes"),
    ({"sigma_w": 0.0}, "sigma_w"),
    ({"sigma_a": -1.0}, "sigma_a"),
    ({"inputs": np.ones((5, 3)), "class_sizes": (2, 2)}, "add up"),
])
def test_invalid_spec(kwargs, word):
    with pytest.raises(SpecError, match=word):
        ModelSpec(**kwargs)


@pytest.mark.parametrize("expr, word", [
    ("softsign_unknown(", "could not parse"),
    ("h*y", "function of h only"),
    ("3", "depend on h"),
    ("1/h", "NaN or inf"),
    ("h**2", "cannot be normalised"),
    ("exp(h)", "cannot be normalised"),
])
def test_invalid_nonlinearity(expr, word):
    with pytest.raises(SpecError, match=word):
        get_nonlinearity(expr)


def test_invalid_options():
    with pytest.raises(SpecError, match="method"):
        SolverOptions(method="bisection")
    with pytest.raises(SpecError, match="tol"):
        SolverOptions(tol=-1.0)


def test_spec_is_frozen_and_derived_quantities():
    spec = ModelSpec("relu", class_sizes="32,16,16")
    assert spec.P == 64 and spec.m == 3
    np.testing.assert_allclose(spec.class_fractions, [0.5, 0.25, 0.25])
    with pytest.raises(Exception):
        spec.temperature = 1.0
