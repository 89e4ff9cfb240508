"""The merged saddle of the deep class-block theory (issue 17, docs/devlog.md): normcdf, L = 2, classes
32,16,16, σ_a = 0.125. At T = 0.095 the default solve finds a saddle in which classes 2 and 3 share their
last-layer codes (the sampled chains' merged state); the separated saddle, followed up in T from T = 0.05,
coexists there with the larger free energy (log Z/N), so it is the equilibrium of the theory."""
import numpy as np
import pytest

from solvers.deep.nonlinear import DeepOptions, solve_deep_nonlinear
from theory.spec import ModelSpec


def _spec(T):
    return ModelSpec(nonlinearity="normcdf", sigma_a=0.125, temperature=T, class_sizes=(32, 16, 16))


@pytest.mark.slow
def test_merged_saddle_coexists_with_the_separated_one_at_t_0095():
    merged = solve_deep_nonlinear(_spec(0.095), 2)
    assert merged.converged and merged.stable
    f, codes = np.asarray(merged.outputs), merged.code_fractions[-1]
    assert abs(f[1, 2] - f[1, 1]) <= 0.02  # classes 2 and 3 merged: f_23 = f_22
    assert codes.get("101", 0.0) < 0.05 and codes.get("110", 0.0) < 0.05
    assert codes.get("100", 0.0) > 0.4 and codes.get("011", 0.0) > 0.2 and codes.get("111", 0.0) > 0.2

    sep = solve_deep_nonlinear(_spec(0.05), 2)
    for T in (0.06, 0.07, 0.08, 0.09, 0.095):  # follow the separated saddle up in T (warm starts)
        sep = solve_deep_nonlinear(_spec(T), 2, start=sep, options=DeepOptions(search=False))
        assert sep.converged and sep.saddles[0]["found_by"].startswith("warm start")
    f, codes = np.asarray(sep.outputs), sep.code_fractions[-1]
    assert sep.stable and f[1, 1] - f[1, 2] > 0.2  # separated: f_22 well above f_23
    assert min(codes.get(c, 0.0) for c in ("011", "101", "110")) > 0.25
    assert sep.free_energy - merged.free_energy > 2.0 * (sep.free_energy_error + merged.free_energy_error)
