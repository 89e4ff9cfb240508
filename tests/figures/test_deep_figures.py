"""The deep-network figure scripts (figures/fig_deep_layers.py, fig_deep_lazy_rich.py, fig_deep_drift.py)."""
import inspect

import numpy as np
import pytest

from figures import deep_common as dc
from figures import fig_deep_drift, fig_deep_lazy_rich, fig_deep_layers

MAX_BYTES = 150_000
SCRIPTS = (fig_deep_layers, fig_deep_lazy_rich, fig_deep_drift)


def test_scripts_have_main():
    for module in SCRIPTS:
        assert list(inspect.signature(module.main).parameters)[:2] == ["out_dir", "quick"], module.__name__


def test_tiny_runs_write_pngs(tmp_path):
    """Each script end to end at toy sizes, one nonlinearity each (a few seconds): names and sizes."""
    paths = fig_deep_layers.main(tmp_path, True, nonlinearities=("relu",), width=10, burn=6, states=2, every=3,
                                 class_sizes=(2, 1, 1))
    paths += fig_deep_lazy_rich.main(tmp_path, True, nonlinearities=("normcdf",), width=10, burn=6, states=2,
                                     every=3, class_sizes=(2, 2))
    paths += fig_deep_drift.main(tmp_path, True, nonlinearities=("linear",), width=10, sweeps=40, burn=6,
                                 lags=(1, 2, 100), class_sizes=(2, 1, 1))
    assert [p.name for p in paths] == ["fig_deep_layers_relu.png", "fig_deep_lazy_vs_rich.png", "fig_deep_drift.png"]
    for p in paths:
        assert 5_000 < p.stat().st_size < MAX_BYTES, p


def test_lazy_kernels_and_deep_linear_helper():
    # lazy linear network on orthogonal inputs: K_ℓ = I in every layer; ReLU: diagonal s/2 layer by layer
    for K in dc.deep_nngp_kernels("linear", 4, 3):
        np.testing.assert_allclose(K, np.eye(4), atol=1e-12)
    K1, K2 = dc.deep_nngp_kernels("relu", 3, 2)
    np.testing.assert_allclose(np.diag(K1), 0.5)
    np.testing.assert_allclose(np.diag(K2), 0.25)
    spec = dc.deep_spec("linear", (4, 2, 2), 0.05)
    assert spec.sigma_a == pytest.approx(1 / np.sqrt(8))
    Ks, sol = dc.deep_linear_kernels(spec, 3)
    for ell, K in enumerate(Ks, start=1):
        o = sol.layer_observables(ell)
        assert K[0, 1] == pytest.approx(o.kernel_blocks[0, 0]) and K[0, 0] == pytest.approx(o.kernel_diagonal[0])
        assert K[0, 5] == pytest.approx(0.0)


@pytest.mark.slow
def test_deep_layers_quick(tmp_path):
    """Quick mode (L = 3, classes 16,8,8, T = 0.05, N = 100): three PNGs. Measured: the sigmoid's
    codes sharpen with depth (code robustness 0.38, 0.70, 0.99: graded in layer 1, binary groups,
    label redundant, in layer 3); the sampled linear kernels match the deep linear theory's class
    blocks within 25 % in every layer."""
    paths = fig_deep_layers.main(tmp_path, True)
    assert [p.name for p in paths] == [f"fig_deep_layers_{nl}.png" for nl in ("linear", "normcdf", "relu")]
    assert all(5_000 < p.stat().st_size < MAX_BYTES for p in paths)
    v = fig_deep_layers.layer_values(True)
    rob = [lay["robustness"] for lay in v["normcdf"]]
    assert rob[0] < rob[1] < rob[2] and rob[2] > 0.9, rob
    assert v["normcdf"][2]["label"] == "redundant"
    s = fig_deep_layers.SETTINGS[True]
    ch = fig_deep_layers._chain("linear", s)
    theory, _ = dc.deep_linear_kernels(ch.spec, 3)
    for ell, K in enumerate(theory, start=1):
        sampled = ch.kernel(ell)
        for c0, c1 in ((0, 1), (20, 21), (0, 20)):  # within class 0, within class 1, between classes
            assert abs(sampled[c0, c1] - K[c0, c1]) < 0.25 * max(1.0, abs(K[c0, c1])), (ell, c0, c1)


@pytest.mark.slow
def test_deep_lazy_rich_quick(tmp_path):
    """Quick mode (L = 2, classes 16,16): the rich networks learn a class-block last-layer kernel
    (block contrast > 0.4), the lazy ones keep the NNGP kernel (contrast < 0.1, theory 0)."""
    paths = fig_deep_lazy_rich.main(tmp_path, True)
    assert [p.name for p in paths] == ["fig_deep_lazy_vs_rich.png"]
    assert paths[0].stat().st_size < MAX_BYTES
    v = fig_deep_lazy_rich.lazy_rich_values(True)
    for nl, d in v.items():
        assert d["rich"]["contrast"] > 0.4 and d["lazy"]["contrast"] < 0.1, (nl, d)
        assert abs(d["lazy_theory_contrast"]) < 1e-9


@pytest.mark.slow
def test_deep_drift_quick(tmp_path):
    """Quick mode (L = 2, classes 32,16,16, T = 0.02, N = 100, lag up to 600 sweeps). Measured:
    linear drifts more than ReLU in both layers; ReLU's most active last-layer neurons (top 5 %)
    drift less than half as much as linear neurons; normcdf drifts several times more in layer 1
    than in the last hidden layer (the paper's observation)."""
    paths = fig_deep_drift.main(tmp_path, True)
    assert [p.name for p in paths] == ["fig_deep_drift.png"] and paths[0].stat().st_size < MAX_BYTES
    v = fig_deep_drift.drift_values(True)
    lin, relu, ncdf = ([lay["all"][-1] for lay in v[nl]["layers"]] for nl in ("linear", "relu", "normcdf"))
    assert lin[0] > relu[0] and lin[1] > relu[1], (lin, relu)
    assert v["relu"]["layers"][1]["top"][-1] < 0.5 * lin[1]
    assert ncdf[0] > 3.0 * ncdf[1], ncdf
