"""Coverage of the finite-P error estimate over φ × class sizes × T (validation.error_coverage)."""
import pytest

from dataclasses import replace

from validation.error_coverage import MATRIX, CoverageCase, coverage_case, markdown_table


def _param(case):
    nl, sizes, T = case
    marks = () if nl == "linear" else (pytest.mark.slow,)
    return pytest.param(nl, sizes, T, marks=marks, id=f"{nl}-{','.join(map(str, sizes))}-T{T:g}")


@pytest.mark.parametrize("nl, sizes, T", [_param(c) for c in MATRIX])
def test_error_estimate_covers_the_true_error(nl, sizes, T):
    """The default solve converges and its error_estimate (+ the reference's) bounds the distance to
    the closed form (linear) or to a reference solved to residual <= 1e-11 on the finest rule, or,
    where the rule's integration noise stops Newton above that (ReLU 32,16,16), to a reference whose
    own estimate is below the one it checks (at the noise floor: with a replica on another rule that
    agrees within that estimate)."""
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


def test_a_noise_floor_reference_needs_its_replica_to_agree():
    """A reference above residual 1e-11 is usable only with an estimate below the checked one and, if
    it has a replica on another rule, with that replica within its estimate."""
    base = CoverageCase("relu", (8, 4, 4), 0.05, True, 1e-8, 5e-7, "noise-floor solve", 1e-7, 3e-9, 1.0)
    assert base.reference_usable and base.covered  # no replica: the estimate rule alone
    assert replace(base, replica_difference=9e-11).reference_usable
    assert not replace(base, replica_difference=2e-7).reference_usable  # replicas disagree beyond the estimate
    assert not replace(base, reference_estimate=6e-7).reference_usable  # reference no better than the estimate
    assert replace(base, reference_residual=1e-12, reference_estimate=1.0).reference_usable
    assert "replica within 9.0e-11" in markdown_table([replace(base, replica_difference=9e-11)])
