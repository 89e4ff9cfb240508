"""Every options class, built from random field values, gives an object or SpecError: never another
exception (issue 15). Tested through the public constructors only."""
from dataclasses import MISSING, fields
import math

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from theory.spec import SpecError
from solvers.continuation import ContinuationOptions
from solvers.data import GeneralBranchOptions, GeneralOptions
from solvers.deep import DeepOptions
from solvers.options import Options, SolverOptions

OPTION_CLASSES = [SolverOptions, ContinuationOptions, GeneralOptions, GeneralBranchOptions, DeepOptions]

#: any value a user may pass: wrong types, non-finite, negative, zero, huge, empty, garbage
ANY = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.sampled_from([0, 1, -1, 2**63, 10**400 // 10**390]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e308]),
    st.text(max_size=12), st.sampled_from(["", "auto", "newton", "mcmc", "smc", "qmc", "1e-3", "nan"]),
    st.lists(st.integers(), max_size=3), st.just(object()),
)


def _like(default):
    """Values near a field's default type (so validation is reached, not only type checks)."""
    if isinstance(default, bool):
        return st.one_of(st.booleans(), ANY)
    if isinstance(default, int):
        return st.one_of(st.integers(-5, 10**6), ANY)
    if isinstance(default, float):
        return st.one_of(st.floats(-1e3, 1e3), ANY)
    return ANY


def _other_subclasses():
    seen, todo = [], list(Options.__subclasses__())
    while todo:
        cls = todo.pop()
        if cls not in seen:
            seen.append(cls)
            todo += cls.__subclasses__()
    return seen


def test_every_options_subclass_is_covered():
    import solvers.solve  # noqa: F401 - load the solver modules that declare options
    import solvers.large_p.continuation  # noqa: F401
    missing = [c.__qualname__ for c in _other_subclasses() if c not in OPTION_CLASSES and "test" not in c.__module__]
    assert not missing, f"add {missing} to OPTION_CLASSES"


@pytest.mark.parametrize("cls", OPTION_CLASSES, ids=lambda c: c.__name__)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_fields_give_an_object_or_a_spec_error(cls, data):
    names = [f for f in fields(cls) if f.init]
    chosen = data.draw(st.lists(st.sampled_from(names), unique_by=lambda f: f.name, max_size=4), label="fields")
    kwargs = {f.name: data.draw(_like(f.default if f.default is not MISSING else None), label=f.name)
              for f in chosen}
    try:
        obj = cls(**kwargs)
    except SpecError as exc:
        assert str(exc)
        return
    assert isinstance(obj, cls)
