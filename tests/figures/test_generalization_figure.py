"""figures/fig_generalization.py without sampling: per-nonlinearity chain lengths, the caption's
account of them, and resuming a full run from the reports stored in ``out_dir/data``."""
import json

import pytest

from figures import fig_generalization as fg


def test_sweeps_per_nonlinearity_and_caption_text():
    assert fg.sweeps_of({"sweeps": 80}, "relu") == 80
    cfg = {"sweeps": {"linear": 10, "relu": 30}}
    assert fg.sweeps_of(cfg, "linear") == 10 and fg.sweeps_of(cfg, "relu") == 30
    assert fg._sweeps_text(80) == "80"
    assert fg._sweeps_text(cfg["sweeps"]) == "10 (linear), 30 (ReLU)"
    # the full settings name a chain length for every nonlinearity the figure draws
    assert all(fg.sweeps_of(fg.SETTINGS[False], nl) >= 20 for nl in ("linear", "normcdf", "relu"))


def test_reports_resume_from_matching_stored_reports(tmp_path, monkeypatch):
    """A stored report is read back only if it was made with the same settings; otherwise the report
    is computed and stored with its settings."""
    calls = []

    def fake_report(ds, nl, cfg, quick, seed):
        calls.append((nl, seed))
        return {"made": nl, "seed": seed}

    monkeypatch.setattr(fg, "_report", fake_report)
    data = tmp_path / "data"
    first = fg._reports(True, nonlinearities=("linear",), seed=0, data=data)
    assert first == {"linear": {"made": "linear", "seed": 0}} and calls == [("linear", 0)]
    stored = json.loads((data / "generalization-linear.json").read_text())
    assert stored["settings"]["sweeps"] == fg.sweeps_of(fg.SETTINGS[True], "linear")
    assert stored["settings"]["mode"] == "quick" and stored["report"] == first["linear"]
    assert fg._reports(True, nonlinearities=("linear",), seed=0, data=data) == first
    assert calls == [("linear", 0)]  # read back, not recomputed
    fg._reports(True, nonlinearities=("linear",), seed=1, data=data)  # other settings: recomputed
    assert calls == [("linear", 0), ("linear", 1)]
    fg._reports(True, nonlinearities=("linear",), seed=1, data=None)  # no folder: always computed
    assert len(calls) == 3


@pytest.mark.parametrize("rhat, unconverged", [(1.005, False), (1.012, True)])
def test_rhat_note_shows_three_decimals_at_the_target(rhat, unconverged):
    note = fg._rhat_note({"rhat_max": rhat})
    assert f"{rhat:.3f}" in note and ("unconv." in note) == unconverged


def test_convergence_text_names_unconverged_chains_and_solves_apart():
    def side(rhat, converged):
        nb = {"relu": {"rhat_max": rhat, "theory_converged": converged}}
        return {"settings": {"rhat_target": 1.01}, "numbers": nb,
                "relu": {"theory": {"status": "converged" if converged else "replicas-disagree"}}}

    assert fg._convergence_text(side(1.005, True)).startswith("All chains have R̂ < 1.01 and every theory")
    text = fg._convergence_text(side(1.005, False))
    assert "All chains have R̂ < 1.01." in text and "ReLU (replicas-disagree)" in text
    text = fg._convergence_text(side(1.012, True))
    assert "Sampling not converged" in text and "R̂ 1.012" in text and "Theory" not in text


def test_sidecar_report_keeps_a_subsampled_theory_kernel_and_drops_the_sampled_one():
    import numpy as np

    K = np.arange(100.0).reshape(10, 10)
    rep = {"theory": {"test_kernel": K.tolist(), "x": 1}, "sampling": {"test_kernel": K.tolist(), "y": 2}, "gp": {}}
    small = fg._sidecar_report(rep, max_inputs=4)
    idx = small["theory"]["test_kernel_inputs"]
    assert idx == [0, 3, 6, 9] and small["theory"]["test_kernel"] == K[np.ix_(idx, idx)].tolist()
    assert small["sampling"] == {"y": 2} and small["theory"]["x"] == 1
    assert rep["sampling"]["test_kernel"] == K.tolist()  # the report itself is unchanged
    assert fg._sidecar_report(rep, max_inputs=10)["theory"]["test_kernel"] == K.tolist()
