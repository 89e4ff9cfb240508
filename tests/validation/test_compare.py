"""Theory against sampling (validation.compare): the 1/N extrapolation and the one comparison rule,
on synthetic data with known answers."""
import numpy as np
import pytest

from theory.observables import Observables
from validation.compare import as_vector, compare, extrapolate


def test_extrapolation_recovers_intercept_within_its_error():
    """a + b/N with Gaussian noise of known σ_k: the intercept lands within 4 of its standard errors,
    and over many noise draws the z-scores of a have unit spread (the stated error is right)."""
    rng = np.random.default_rng(6)
    widths = np.array([50.0, 100.0, 200.0, 400.0])
    a_true = np.array([0.3, -1.2, 2.0])
    b_true = np.array([5.0, 1.0, -8.0])
    sigma = np.array([0.01, 0.008, 0.005, 0.004])[:, None] * np.ones(3)
    z = []
    for _ in range(500):
        values = a_true + b_true / widths[:, None] + sigma * rng.standard_normal(sigma.shape)
        a, sa, b, sb = extrapolate(widths, values, sigma)
        z.append((a - a_true) / sa)
    z = np.array(z)
    assert np.all(np.abs(z) < 5.0)
    assert np.all(np.abs(z.std(axis=0) - 1.0) < 0.1)
    assert np.all(np.abs(z.mean(axis=0)) < 0.15)
    # one noise-free fit: exact
    a, sa, b, sb = extrapolate(widths, a_true + b_true / widths[:, None], sigma)
    np.testing.assert_allclose(a, a_true, atol=1e-12)
    np.testing.assert_allclose(b, b_true, atol=1e-9)


def test_extrapolation_rejects_one_width():
    with pytest.raises(ValueError):
        extrapolate([100], [[1.0]], [[0.1]])


def _obs(x):
    return Observables(outputs=np.full((2, 2), x), readout_moment=np.eye(2) * x, kernel_diagonal=np.full(2, x),
                       kernel_blocks=np.full((2, 2), x))


def test_single_width_rule_allows_k_mcse_plus_bias():
    """|Δ| <= 4 MCSE + c·max(1, |theory|)/N: at N = 100, c = 4, MCSE 0.01 the allowance is 0.08."""
    theory, err = _obs(1.0), np.full(14, 0.01)
    ok = compare(theory, _obs(1.0 + 0.079), err, 100)
    bad = compare(theory, _obs(1.0 + 0.081), err, 100)
    assert ok["passed"] and not bad["passed"]
    assert ok["worst"] == pytest.approx(0.079 / 0.08) and bad["z_max"] == pytest.approx(8.1)
    assert "4 MCSE" in ok["rule"] and "N = 100" in ok["rule"]
    # the size factor (P for the deep reports) and the theory's own error ε widen the allowance
    assert compare(theory, _obs(1.0 + 0.2), err, 100, c=1.0, size=16)["passed"]  # 0.04 + 0.16
    assert compare(theory, _obs(1.0 + 0.115), err, 100, theory_error=np.full(14, 0.01))["passed"]  # 0.12


def test_widths_use_the_extrapolation():
    widths = [50, 100, 200]
    a, b = as_vector(_obs(0.5)), 2.0
    sampled = [a + b / N for N in widths]
    err = [np.full(14, 1e-3)] * 3
    res = compare(_obs(0.5), sampled, err, widths)
    assert res["passed"] and res["z_max"] < 1e-6 and res["ratio"] is None
    np.testing.assert_allclose(res["slope"], b, rtol=1e-9)
    assert not compare(_obs(0.6), sampled, err, widths)["passed"]


def test_reports_follow_the_result_protocol_with_read_only_dict_access():
    """compare (like every validation report) returns a frozen Result: ``converged`` is the pass rule,
    ``status`` "converged" / "error-bound-missed" (chains mixed) / "not-converged" (R̂ rule missed); the
    entries read as the dict they used to be, read-only; to_json is that dict plus the shared keys."""
    import dataclasses
    import json

    from solvers.results import STATUSES, Result
    from theory.jsonio import dumps
    from validation.results import ValidationReport, pass_status

    theory, err = _obs(1.0), np.full(14, 0.01)
    ok, bad = compare(theory, _obs(1.0 + 0.079), err, 100), compare(theory, _obs(1.0 + 0.081), err, 100)
    assert isinstance(ok, Result) and ok.converged and ok.status == "converged" and ok.message == ok["rule"]
    assert not bad.converged and bad.status == "error-bound-missed" and bad.status in STATUSES
    assert pass_status(False, chains_mixed=False) == "not-converged"
    keys = ["passed", "z", "z_max", "estimate", "error", "slope", "ratio", "worst", "criterion", "rule"]
    assert list(ok.keys()) == keys and list(ok) == keys and len(ok) == len(keys) and "z" in ok and "x" not in ok
    assert ok.get("slope") is None and ok.get("x", 3) == 3 and dict(ok.items())["worst"] == ok["worst"]
    assert {**ok}.keys() == dict(ok).keys()
    with pytest.raises(TypeError):
        ok["passed"] = False  # noqa: the compatibility layer is read-only
    with pytest.raises(dataclasses.FrozenInstanceError):
        ok.converged = False
    out = json.loads(dumps(ok))
    assert list(out)[:len(keys)] == keys and out["passed"] is True and out["status"] == "converged"
    assert set(out) - set(keys) == {"converged", "status", "message", "iterations", "residual", "error_estimate",
                                    "time_seconds"}
    rep = ValidationReport.from_dict({"passed": False, "converged": "kept"}, passed=False, chains_mixed=False)
    assert rep.status == "not-converged" and rep.to_json()["converged"] == "kept"  # today's keys win
