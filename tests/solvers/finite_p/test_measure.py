"""The coding scheme of the finite-P single-neuron measure p_t(a) (solvers.finite_p.measure)."""
import numpy as np
import pytest

from solvers.finite_p.measure import _condensate, _laplace_masses, measure_summary, single_neuron_measure
from solvers.solve import solve
from theory.spec import ModelSpec


@pytest.fixture(scope="module")
def erf_broken():
    """erf, two classes of 4, small T: p(a) has one mode per signed code (THEORY §4)."""
    return solve(ModelSpec(nonlinearity="erf", class_sizes=(4, 4), sigma_a=0.35, temperature=0.2))


def test_erf_small_temperature_has_one_mode_per_signed_code(erf_broken):
    meas = single_neuron_measure(erf_broken)
    assert meas.n_modes == 4 and not meas.symmetric
    assert set(meas.codes) == {"++", "+-", "-+", "--"}
    # equal classes: the four modes are images of each other under a ↦ −a and the class swap
    np.testing.assert_allclose(meas.masses, 0.25, atol=1e-6)
    assert sum(meas.code_masses.values()) == pytest.approx(1.0)
    for a in meas.modes:  # mirror images are modes too
        assert np.min(np.linalg.norm(meas.modes + a, axis=1)) < 1e-5 * (1 + np.linalg.norm(a))
    U, mean = erf_broken.observables.readout_moment, erf_broken.readout_mean
    assert meas.spread == pytest.approx(float(np.trace(U) - mean @ mean), rel=1e-12)
    assert meas.spread > 0.5


def test_erf_high_temperature_is_symmetric_and_silent():
    res = solve(ModelSpec(nonlinearity="erf", class_sizes=(4, 4), sigma_a=0.35, temperature=1.5))
    row = measure_summary(res)
    assert row["symmetric"] and row["n_modes"] == 1 and row["label"] == "symmetric"
    assert row["mode_codes"] == ["00"] and np.allclose(row["modes"], 0.0, atol=1e-8)
    assert row["converged"] and row["status"] == "converged"
    for key in ("outputs", "readout_moment", "kernel_diagonal", "kernel_blocks", "f_diag", "U_diag", "t",
                "error_estimate", "condensate_masses", "condensate_codes", "mode_masses", "code_masses"):
        assert key in row


def test_laplace_masses_of_equal_gaussians_and_of_a_wider_one():
    H = np.array([-np.eye(2), -np.eye(2)])
    np.testing.assert_allclose(_laplace_masses(np.array([0.0, 0.0]), H), [0.5, 0.5])
    # same height, covariance 4× wider in both directions: 4× the mass
    H = np.array([-np.eye(2), -0.25 * np.eye(2)])
    np.testing.assert_allclose(_laplace_masses(np.array([0.0, 0.0]), H), [0.2, 0.8])


def test_condensate_codes_from_the_solver_extra():
    extra = {"condensate": {"mass": [0.3, 0.1], "codes": [[0], [1, 2]], "directions": [], "margins": []}}
    assert _condensate(extra, 3) == ((0.3, 0.1), ("100", "011"))
    assert _condensate({}, 3) == ((), ())
