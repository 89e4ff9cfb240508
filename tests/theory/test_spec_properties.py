"""Property-based checks of the bad-input contract (Hypothesis): any value given to ModelSpec or to
the nonlinearity parser yields a valid object or the project's SpecError naming the parameter,
never another exception and never a silently non-finite field."""
import math

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from theory.nonlinearities import get_nonlinearity
from theory.spec import ModelSpec, SpecError

ANY_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                       st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                       st.lists(st.integers(-3, 3), max_size=3))
CLASS_SIZES = st.one_of(ANY_SCALAR, st.lists(st.one_of(st.integers(-2, 50), st.floats(-2, 50), st.just(float("nan"))),
                                             max_size=6),
                        st.text(alphabet="0123456789,. -x", max_size=12))
FIELDS = {"sigma_w": "sigma_w", "sigma_a": "sigma_a", "temperature": "temperature", "class_sizes": "class_sizes",
          "nonlinearity": "nonlinearity"}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sigma_w=ANY_SCALAR, sigma_a=ANY_SCALAR, temperature=ANY_SCALAR, class_sizes=CLASS_SIZES,
       which=st.sampled_from(sorted(FIELDS)))
def test_model_spec_accepts_or_names_the_bad_parameter(sigma_w, sigma_a, temperature, class_sizes, which):
    kwargs = {"sigma_w": 1.0, "sigma_a": 1.0, "temperature": 0.1, "class_sizes": (4, 2, 2), "nonlinearity": "relu"}
    kwargs[which] = {"sigma_w": sigma_w, "sigma_a": sigma_a, "temperature": temperature,
                     "class_sizes": class_sizes, "nonlinearity": sigma_w}[which]
    try:
        spec = ModelSpec(**kwargs)
    except SpecError as exc:
        assert FIELDS[which] in str(exc)
        return
    assert spec.sigma_w > 0 and math.isfinite(spec.sigma_w)
    assert spec.sigma_a > 0 and math.isfinite(spec.sigma_a)
    assert spec.temperature >= 0 and math.isfinite(spec.temperature)
    assert spec.m >= 2 and all(isinstance(s, int) and s >= 1 for s in spec.class_sizes)


EXPRESSIONS = st.one_of(
    st.sampled_from(["relu", "erf", "normcdf", "tanh", "linear", "sin(h)", "Max(h, 0)", "Abs(h)", "log(h)",
                     "1/h", "h**2", "exp(h)", "sqrt(h)", "h*nan", "oo", "x", "h + y", "tanh(h)/0"]),
    st.text(alphabet="h+-*/()0123456789. sincoexpabt", min_size=1, max_size=14))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=EXPRESSIONS)
def test_nonlinearity_parser_gives_a_finite_phi_or_a_spec_error(expr):
    try:
        nl = get_nonlinearity(expr)
    except SpecError as exc:
        assert "nonlinearity" in str(exc)
        return
    h = np.linspace(-30.0, 30.0, 601)
    assert np.all(np.isfinite(nl(h)))
