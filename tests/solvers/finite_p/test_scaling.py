"""Finite-size scaling of the symmetry breaking (solvers.finite_p.scaling)."""
import math

import numpy as np
import pytest

from solvers.finite_p.scaling import crossover, fit_power_law, large_p_rate, transition_temperature, window
from solvers.large_p.problem import LargePProblem
from theory.nonlinearities import get_nonlinearity


def test_power_law_fit_recovers_exponent_and_reports_its_error():
    P = np.array([16, 32, 64, 128, 256])
    fit = fit_power_law(P, 3.0 * P ** -0.7)
    assert fit["exponent"] == pytest.approx(0.7, abs=1e-10) and fit["amplitude"] == pytest.approx(3.0)
    noisy = fit_power_law(P, 3.0 * P ** -0.7 * (1 + 0.05 * np.array([1, -1, 1, -1, 1])))
    assert 0.0 < noisy["exponent_error"] < 0.1 and abs(noisy["exponent"] - 0.7) < 3 * noisy["exponent_error"]
    assert math.isnan(fit_power_law([16, 32], [1.0, 0.5])["exponent"])


def test_crossover_of_a_mean_field_kink_scales_like_one_over_root_p():
    """s(T; P) = g((T_c − T)√P)/√P with a smooth kink g: width, shift and s(T_c) ∝ P^{-1/2}."""
    tc = 0.45

    def g(x):
        return np.logaddexp(0.0, x - 1.0) + 0.1 * x  # kink at x = 1: shifted below T_c

    out = []
    for P in (16, 64, 256, 1024):
        T = np.array(window(tc, P, -3.5, 3.0, 81))
        out.append((P, crossover(T, g((tc - T) * math.sqrt(P)) / math.sqrt(P), tc)))
    P = [p for p, _ in out]
    for key in ("width", "shift", "spread_at_tc"):
        fit = fit_power_law(P, [c[key] for _, c in out])
        assert fit["exponent"] == pytest.approx(0.5, abs=0.02), key
    assert all(c["location"] < tc and not c["edge"] for _, c in out)


def test_erf_transition_is_the_closed_form_pitchfork():
    problem = LargePProblem(nonlinearity="erf", class_fractions=(0.5, 0.25, 0.25), sigma_a_bar=1.0, temperature=0.3)
    tc, source = transition_temperature(problem)
    phi2 = get_nonlinearity("erf")
    assert tc == pytest.approx(0.457426158911, rel=1e-9) and "closed form" in source
    assert phi2.odd


def test_finite_p_approaches_large_p_at_rate_one_over_p_away_from_tc():
    """Above T_c (symmetric phase, erf) the gaps of f, U and the kernel shrink like 1/P."""
    problem = LargePProblem(nonlinearity="erf", class_fractions=(0.5, 0.5), sigma_a_bar=1.0, temperature=0.9)
    rate = large_p_rate(problem, [8, 16, 32])
    assert all(rate["success"])
    for key in ("readout_moment", "kernel_diagonal"):
        assert rate["fits"][key]["exponent"] == pytest.approx(1.0, abs=0.25), (key, rate["gaps"][key])
