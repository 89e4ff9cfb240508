"""Coverage of the finite-P error estimate over φ × class sizes × T (validation.error_coverage)."""
import pytest

from validation.error_coverage import MATRIX, coverage_case, markdown_table


def _param(case):
    nl, sizes, T = case
    marks = () if nl == "linear" else (pytest.mark.slow,)
    return pytest.param(nl, sizes, T, marks=marks, id=f"{nl}-{','.join(map(str, sizes))}-T{T:g}")


@pytest.mark.parametrize("nl, sizes, T", [_param(c) for c in MATRIX])
def test_error_estimate_covers_the_true_error(nl, sizes, T):
    """The default solve converges and its error_estimate (+ the reference's) bounds the distance to
    the closed form (linear) or to a reference solved to residual <= 1e-11 on the finest rule, or,
    where the rule's integration noise stops Newton above that (ReLU 32,16,16), to a reference whose
    own estimate is below the one it checks."""
    case = coverage_case(nl, sizes, T)
    assert case.converged
    assert case.reference_usable, case
    assert case.ratio <= 1.0, case
    assert case.covered


def test_the_matrix_and_its_table():
    assert len(MATRIX) == 16 and {c[0] for c in MATRIX} == {"linear", "erf", "normcdf", "relu"}
    case = coverage_case("linear", (8, 4, 4), 0.5)
    table = markdown_table([case])
    assert "| linear | 8,4,4 | 0.5 | True |" in table and "closed form" in table and table.count("\n") == 2
    assert 0.0 <= case.ratio <= 1.0 and case.covered
