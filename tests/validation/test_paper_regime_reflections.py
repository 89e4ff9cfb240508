"""Issue 17, deep normcdf prior starts with the exact reflection moves (:mod:`validation.reflections`): at the
done-when command's defaults (classes 32,16,16, σ_a = 0.125, T = 0.05, L = 2, N = 400, 4 chains × 1500 sweeps,
burn-in 300) 400 sign flips and 400 class-contrast reflections per sweep bring every prior-start chain's last
layer to the theory's separated composition. About 8 min CPU (theory solve 3 min, chains 5 min); docs/devlog.md
(dval7). The default rule's R̂ still fails there, on the first layer's kernel, so this asserts what the run
gave, not a pass."""
import numpy as np
import pytest


@pytest.mark.slow
def test_reflections_bring_prior_start_last_layers_to_the_theory():
    from theory.spec import ModelSpec
    from validation.deep import validate_deep

    spec = ModelSpec("normcdf", sigma_a=0.125, temperature=0.05, class_sizes=(32, 16, 16))
    rep = validate_deep(spec, 2, widths=(400,), chains=4, sweeps=1500, burn=300, per_chain=True, reflections=400,
                        contrast_reflections=400)
    width = rep["per_width"][0]
    # measured: every chain's last-layer code fractions within 0.001 of each other and 0.007 of the theory's
    # (100 0.033, 011 0.322, 101 0.323, 110 0.323); 0.02 leaves room for another seed's O(N^-1/2) code noise
    assert rep["code_fractions_max_difference"][0][-1] < 0.02
    for chain in width["chains"]:
        last = chain["code_fractions"][-1]
        assert abs(last.get("100", 0.0) - 0.033) < 0.02 and last.get("111", 0.0) < 0.02
    # measured 0.055 and 0.035 (per chain 0.055-0.056, 0.035-0.035)
    block = width["reflections"]
    assert 0.03 < block["layers"][0]["acceptance"] < 0.1 and 0.02 < block["contrast"]["acceptance"] < 0.06
    assert block["update_error"] < 1e-8
    # measured: f within 0.001 of the theory (the allowance is 4 MCSE + 4 ε + 0.16·max(1, |θ|)); R̂ 1.34 on the
    # first layer's kernel (the rule's 1.1 fails; 1.94 without the moves)
    f_s, f_t = np.array(rep["sampling"]["outputs"]), np.array(rep["theory"]["outputs"])
    assert np.max(np.abs(f_s - f_t)) < 0.01
    assert rep["rhat_max"] < 1.7
