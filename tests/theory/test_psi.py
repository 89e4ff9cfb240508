"""ψ(g) = log E e^{gφ(h)}: sympy closed forms against quadrature and mpmath."""
import numpy as np
import pytest

from theory.codegen import compile_to_numba
from theory.derivation import G, SIGMA, derive_psi
from theory.nonlinearities import get_nonlinearity
from theory.psi import _mpmath_psi, closed_form_psi, composite_legendre_psi, gauss_hermite_psi, psi_table

GS = np.array([-30.0, -5.0, -1.0, -0.2, 0.0, 0.3, 1.0, 3.0, 10.0, 30.0])


@pytest.mark.parametrize("sigma", [0.7, 1.0, 1.6])
def test_relu_closed_form_matches_quadrature(sigma):
    """The sympy-derived ψ, ψ', ψ'' of ReLU equal quadrature of max(0, h) split at its kink."""
    closed = closed_form_psi(get_nonlinearity("relu"), sigma, GS)
    quad = composite_legendre_psi(get_nonlinearity("Max(0, h)"), sigma, GS, refine=2)
    np.testing.assert_allclose(closed[:, :3], quad[:, :3], rtol=1e-10, atol=1e-11)


def test_linear_closed_form_matches_quadrature():
    closed = closed_form_psi(get_nonlinearity("linear"), 1.3, GS)
    np.testing.assert_allclose(closed[:, 0], 0.5 * 1.3**2 * GS**2)
    quad = gauss_hermite_psi(get_nonlinearity("1.0*h + 0.0*sin(h)"), 1.3, GS, 96)
    np.testing.assert_allclose(closed[:, :3], quad[:, :3], rtol=1e-10, atol=1e-10)


def test_relu_partition_function_is_what_sympy_integrated():
    d = derive_psi(get_nonlinearity("relu"))
    Z = d.partition_function.subs(SIGMA, 1.2)
    for g in (-2.0, 0.5, 3.0):
        assert float(np.log(float(Z.subs(G, g)))) == pytest.approx(closed_form_psi(get_nonlinearity("relu"), 1.2,
                                                                                     np.array([g]))[0, 0], rel=1e-12)


def test_relu_tail_series_matches_mpmath():
    nl = get_nonlinearity("relu")
    gs = np.array([-1e5, -300.0, -12.0, -10.5])
    np.testing.assert_allclose(closed_form_psi(nl, 1.0, gs), _mpmath_psi(nl, 1.0, gs), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ["erf", "normcdf", "tanh"])
def test_quadrature_cumulants_are_derivatives(name):
    """ψ' and ψ'' from the tilted moments equal finite differences of ψ (derivative check)."""
    nl = get_nonlinearity(name)
    g = np.array([-4.0, -0.5, 0.7, 6.0])
    h = 1e-4
    vals = gauss_hermite_psi(nl, 1.0, np.concatenate([g - h, g, g + h]), 96)
    lo, mid, hi = vals[:4], vals[4:8], vals[8:]
    np.testing.assert_allclose((hi[:, 0] - lo[:, 0]) / (2 * h), mid[:, 1], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose((hi[:, 1] - lo[:, 1]) / (2 * h), mid[:, 2], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", ["relu", "erf", "normcdf"])
def test_tables_report_their_error(name):
    tab = psi_table(name, 1.0)
    assert tab.error_estimate < 1e-8
    g = np.linspace(-20, 20, 101)
    exact = closed_form_psi(get_nonlinearity(name), 1.0, g)
    if exact is None:
        exact = gauss_hermite_psi(get_nonlinearity(name), 1.0, g, 96)
    np.testing.assert_allclose(np.column_stack(tab(g)), exact[:, :3], atol=10 * tab.error_estimate * (1 + np.abs(exact[:, :3]).max()))


def test_generated_source_is_inspectable():
    gen = compile_to_numba("psi_linear", derive_psi(get_nonlinearity("linear")).derivatives, [G, SIGMA])
    assert "numba.njit(cache=True" in gen.source and gen.path.read_text() == gen.source
    assert gen.scalar(2.0, 1.0)[0] == pytest.approx(2.0)
