"""Issue 17's done-when command for deep normcdf, ``validate --init both`` in the paper's regime (classes 32,16,16,
σ_a = 0.125, T = 0.05, L = 2, the command's defaults N = 400, 4 chains × 1500 sweeps, burn-in 300), with the last
layer's reflections and the first layer's moves at fixed second-layer preactivations (:mod:`validation.layer_moves`).
Both halves pass the default rule. About 22 min CPU (two theory solves, 8 chains); docs/devlog.md (dval8)."""
import json

import numpy as np
import pytest


@pytest.mark.slow
def test_deep_normcdf_validate_both_passes_with_layer_moves(tmp_path, capsys):
    from codingschemes.cli.main import main

    code = main(["validate", "--layers", "2", "--nonlinearity", "normcdf", "--class-sizes", "32,16,16",
                 "--sigma-a", "0.125", "--temperature", "0.05", "--init", "both", "--reflections", "400",
                 "--contrast-reflections", "400", "--layer-moves", "1", "--format", "json", "--quiet", "--no-plot",
                 "--out", str(tmp_path)])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["passed"]
    prior, theory = report["random"], report["theory"]
    # measured: R̂ max 1.006 (prior starts) and 1.005 (theory starts); 1.34 and 1.21 without the layer moves
    assert prior["rhat_rule"]["met"] and prior["rhat_max"] < 1.05 and theory["rhat_max"] < 1.05
    # measured: f within 0.0009 of the theory, both kernels within 0.0035
    f_s, f_t = np.array(prior["sampling"]["outputs"]), np.array(prior["theory"]["outputs"])
    assert np.max(np.abs(f_s - f_t)) < 0.005
    # measured: first-layer moves accepted at 0.029 (pCN), 0.487 (flips), 0.094 (class-contrast)
    moves = {row["kind"]: row["acceptance"] for row in prior["per_width"][0]["layer_moves"]["moves"]}
    assert moves["flip"] > 0.2 and moves["contrast"] > 0.03 and moves["pcn"] > 0.005
    assert prior["per_width"][0]["layer_moves"]["update_error"] < 1e-8
