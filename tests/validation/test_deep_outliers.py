"""Pair rotations of the last hidden layer in deep chains (:mod:`validation.deep_outliers`) and
``validate --layers 2 --outlier-moves K``. Exactness of the move itself: tests/validation/test_outlier_moves.py."""
import json

import numpy as np
import pytest

from theory.spec import ModelSpec, SpecError
from validation.deep_chain import run_deep_chain
from validation.deep_outliers import LastLayerOutliers, combine_outliers


def test_without_moves_the_hook_only_records():
    """LastLayerOutliers(0) leaves the chain draw for draw as without it, and records the last layer
    every 10th kept sweep (count, top-5 % share in (0, 1], per-class share)."""
    spec = ModelSpec("relu", class_sizes=(4, 2, 2), sigma_a=0.5, temperature=0.2)
    hook = LastLayerOutliers(0)
    a = run_deep_chain(spec, 20, 2, 25, 5, seed=3, after_sweep=hook)
    b = run_deep_chain(spec, 20, 2, 25, 5, seed=3)
    assert np.array_equal(a["draws"], b["draws"]) and np.array_equal(a["theta"], b["theta"])
    s = hook.summary()
    assert len(s["rows"]) == 2 and s["acceptance"] is None
    out = combine_outliers([s, s])
    assert 0 < out["top_share"] <= 1 and len(out["share"]) == 3 and "outlier_move_acceptance" not in out
    with pytest.raises(ValueError, match="outlier_moves"):
        LastLayerOutliers(-1)


def test_moves_change_only_the_last_layer_and_are_counted():
    """With moves, W¹ is what the MALA sweeps make of it (the moves leave it) and the acceptance is
    counted after burn-in only."""
    spec = ModelSpec("relu", class_sizes=(4, 2, 2), sigma_a=0.5, temperature=0.2)
    hook = LastLayerOutliers(4)
    run_deep_chain(spec, 20, 2, 15, 5, seed=3, after_sweep=hook)
    assert hook.proposed == 40 and 0 < hook.accepted <= 40


def test_validate_layers_applies_outlier_moves(capsys):
    """``validate --layers 2 --outlier-moves 3`` is no longer refused: the moves run in the prior-start
    and the theory-start chains; for linear φ every pair rotation keeps φᵀφ, so only the selection
    probabilities s(i, j | W) enter the ratio and nearly every move is accepted; the report carries the last layer's outliers and top-5 % share per width."""
    from codingschemes.cli.main import main

    rc = main(["validate", "--nonlinearity", "linear", "--layers", "2", "--class-sizes", "4,2,2", "--init", "both",
               "--widths", "40", "--chains", "2", "--sweeps", "30", "--burn", "10", "--outlier-moves", "3",
               "--format", "json", "--quiet", "--no-plot"])
    captured = capsys.readouterr()
    assert "--outlier-moves does not apply" not in captured.err
    out = json.loads(captured.out)
    assert rc == (0 if out["passed"] else 1)
    rand = out["random"]["per_width"][0]["outliers"]
    assert rand["outlier_move_acceptance"] > 0.9 and {"count", "top_share", "share", "code_fractions"} <= set(rand)
    assert out["theory"]["outliers"]["outlier_move_acceptance"] > 0.9
    assert "pair rotations" in out["random"]["comparison"] and "pair rotations" in out["theory"]["comparison"]


def test_bad_deep_outlier_moves_is_refused():
    from validation.deep import validate_deep
    from validation.deep_theory_init import deep_stationarity

    spec = ModelSpec(nonlinearity="linear", class_sizes=(2, 1, 1), temperature=0.2)
    with pytest.raises(ValueError, match="outlier_moves"):
        validate_deep(spec, layers=2, widths=(8,), sweeps=4, burn=1, outlier_moves=-2)
    with pytest.raises(SpecError, match="outlier_moves"):
        deep_stationarity(spec, layers=2, width=8, sweeps=4, burn=1, outlier_moves=-2)


@pytest.mark.slow
def test_deep_relu_paper_regime_last_layer_has_one_class_outliers():
    """ReLU, L = 2, classes 32,16,16, σ_a = 1/8, T = 0.05, N = 100, 2 chains × 1500 sweeps from the prior
    with 20 last-layer pair moves per sweep: the last layer holds outliers (readout > 4 × median) in the
    recorded states, every one with a one-class code (100, 010, 001, as the deep theory's heavy-tailed
    directions, docs/devlog.md), and its top 5 % carry more than any dense population can (0.28,
    :mod:`validation.coding_scheme`). Measured: 2–4 outliers, top-5 % share 0.35–0.40 (below the sparse
    label's 1/2)."""
    spec = ModelSpec("relu", class_sizes=(32, 16, 16), sigma_a=0.125, temperature=0.05)
    hooks = [LastLayerOutliers(20) for _ in range(2)]
    for c, hook in enumerate(hooks):
        run_deep_chain(spec, 100, 2, 1500, 300, seed=1000 * c, after_sweep=hook)
    out = combine_outliers([h.summary() for h in hooks])
    assert out["count"] >= 1.0, out
    assert set(out["code_fractions"]) <= {"100", "010", "001"}, out["code_fractions"]
    assert out["top_share"] > 0.3, out


def test_validate_deep_with_swaps_from_prior_starts(monkeypatch, deep_class_theory):
    """``validate_deep(swaps=k)`` (``validate --layers 2 --init random --swaps k``): prior-start chains
    with last-layer independence moves from the theory (relu, classes 3,2, T = 0.5; solved without the
    mode search: the session's solution, as in test_deep_stationarity.py); the report gives the swap acceptance per width and
    says so in "comparison"; linear φ is refused."""
    import validation.deep as vdeep
    from validation.deep import validate_deep

    theory = deep_class_theory("relu")  # tests/conftest.py
    spec = theory.spec
    monkeypatch.setattr(vdeep, "deep_theory", lambda *a, **k: theory)
    rep = validate_deep(spec, layers=2, widths=(20,), chains=2, sweeps=12, burn=4, swaps=3)
    assert 0 < rep["per_width"][0]["swap_acceptance"] <= 1 and "3 last-layer swaps" in rep["comparison"]
    with pytest.raises(SpecError, match="swaps"):
        validate_deep(spec.replace(nonlinearity="linear"), layers=2, widths=(8,), sweeps=4, burn=1, swaps=1)
