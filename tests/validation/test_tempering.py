"""Replica exchange in T for deep chains (:mod:`validation.tempering`): the exchange ratio against direct
evaluation of the collapsed log density, detailed balance of one exchange, the tempered chain's
stationary answer against the untempered one, and the ``validate --tempering K`` interface."""
import json
import math

import numpy as np
import pytest

from theory.spec import ModelSpec, SpecError
from validation.deep_chain import combine_chains, run_deep_chain
from validation.deep_network import DeepNetwork
from validation.tempering import (ReplicaExchange, check_tempering, exchange_log_ratio, geometric_ladder,
                                  last_layer_gram, run_tempered_chain, tempered_loglik)

SPEC = ModelSpec("normcdf", class_sizes=(2, 1, 1), sigma_a=0.7, temperature=0.3)


def _nets(temps, width=5, layers=2):
    return [DeepNetwork(SPEC.replace(temperature=T), width=width, layers=layers, sigmas=(1.0, 0.8)[:layers])
            for T in temps]


def _log_prior(net, w):
    return -0.5 * sum(float(np.vdot(W, W)) / s**2 for W, s in zip(net.unpack_hidden(w), net.sigmas))


def test_tempered_loglik_is_the_collapsed_density_without_its_prior():
    """ℓ_T(W) = log p_T(W | D) − log p₀(W) for the collapsed density of validation.deep_network, at two T."""
    rng = np.random.default_rng(0)
    for net in _nets((0.3, 1.1)):
        w = net.prior_sample(rng)[:net.dim_hidden]
        lp, _ = net.marginal_logdensity_and_grad(w)
        assert tempered_loglik(net, last_layer_gram(net, w)) == pytest.approx(lp - _log_prior(net, w), rel=1e-12)


def test_exchange_ratio_matches_the_direct_log_densities_and_balances():
    """log r = log p_i(W_j) + log p_j(W_i) − log p_i(W_i) − log p_j(W_j) with the full collapsed densities (prior
    included: it cancels), and the exchange obeys detailed balance: π_i(x)π_j(y) min(1, r) is symmetric
    under x ↔ y."""
    rng = np.random.default_rng(1)
    ni, nj = _nets((0.3, 0.7))
    x, y = (ni.prior_sample(rng)[:ni.dim_hidden] for _ in range(2))
    lp = {(k, s): net.marginal_logdensity_and_grad(v)[0] for k, net in enumerate((ni, nj)) for s, v in (("x", x), ("y", y))}
    direct = lp[0, "y"] + lp[1, "x"] - lp[0, "x"] - lp[1, "y"]
    gx, gy = last_layer_gram(ni, x), last_layer_gram(ni, y)
    lr = exchange_log_ratio(ni, nj, gx, gy)
    assert lr == pytest.approx(direct, rel=1e-10, abs=1e-10) and abs(lr) > 1e-3
    assert exchange_log_ratio(ni, nj, gy, gx) == pytest.approx(-lr, rel=1e-12)
    forward = lp[0, "x"] + lp[1, "y"] + min(0.0, lr)  # log π(x, y) P(x, y → y, x)
    backward = lp[0, "y"] + lp[1, "x"] + min(0.0, -lr)
    assert forward == pytest.approx(backward, rel=1e-12)


def test_ladder_and_checks():
    T = geometric_ladder(0.05, 4, 0.4)
    assert T[0] == pytest.approx(0.05) and T[-1] == pytest.approx(0.4) and np.allclose(T[1:] / T[:-1], 2.0)
    assert check_tempering(0, 0.05) == 0 and check_tempering(3, 0.05) == 3
    for bad in (1, -2, 2.5):
        with pytest.raises(SpecError, match="tempering"):
            check_tempering(bad, 0.05)
    with pytest.raises(SpecError, match="t_max"):
        check_tempering(3, 0.6, t_max=0.5)
    with pytest.raises(SpecError, match="ladder"):
        ReplicaExchange(SPEC, 5, 2, [0.5, 0.9])  # must start at the chain's T


def test_the_ladder_adapts_during_burn_in_only_and_keeps_its_ends():
    hook = ReplicaExchange(SPEC, 6, 2, geometric_ladder(0.3, 4, 3.0), adapt_every=5)
    out = run_deep_chain(SPEC, 6, 2, 60, 30, seed=2, after_sweep=hook)
    s = hook.summary()
    assert s["temperatures"][0] == pytest.approx(0.3) and s["temperatures"][-1] == pytest.approx(3.0)
    assert not np.allclose(s["temperatures"], geometric_ladder(0.3, 4, 3.0))  # adapted in burn-in
    frozen = list(s["temperatures"])
    hook(np.random.default_rng(0), DeepNetwork(SPEC, width=6, layers=2), out["theta"], False)
    assert hook.summary()["temperatures"] == frozen
    assert all(0.0 <= a <= 1.0 for a in s["exchange_acceptance"]) and s["round_trips"] >= 0
    assert len(s["step_sizes"]) == 3 and len(s["mala_acceptance"]) == 3 and len(s["code_fractions"]) == 3


@pytest.mark.parametrize("sweeps, burn", [(400, 100), pytest.param(1000, 200, marks=pytest.mark.slow)])
def test_tempered_chain_reproduces_the_untempered_stationary_answer(sweeps, burn):
    """At T = 0.1 the plain chains mix on this small case (N = 4, P = 4); the tempered chains (3 rungs up
    to T = 1) must give the same posterior means of f, U and every layer's kernel within 4.5 combined
    MCSE. Power (1000 sweeps, same seeds, docs/devlog.md): accepting every exchange gives max z = 32, the
    right rule 2.5. The fast case runs 400 sweeps (z in units of its own, larger, MCSE); 1000 is slow."""
    spec = ModelSpec("normcdf", class_sizes=(2, 1, 1), sigma_a=1.0, temperature=0.1)
    plain = [run_deep_chain(spec, 4, 2, sweeps, burn, seed=s) for s in (1, 2)]
    temp = [run_tempered_chain(spec, 4, 2, sweeps, burn, rungs=3, t_max=1.0, seed=s + 10) for s in (1, 2)]
    a, b = combine_chains(plain, spec.m, 2)["flat"], combine_chains(temp, spec.m, 2)["flat"]
    z = np.abs(a["mean"] - b["mean"]) / np.sqrt(a["mcse"] ** 2 + b["mcse"] ** 2 + 1e-300)
    assert np.max(z) < 4.5, (np.max(z), int(np.argmax(z)))
    acc = temp[0]["tempering"]["exchange_acceptance"]
    assert min(acc) > 0.05 and temp[0]["tempering"]["round_trips"] > 0


def test_validate_deep_tempering_report_keys():
    """validate_deep(tempering=K) adds per width a block "tempering" (ladder, exchange acceptance per pair,
    round trips); tempering=0 adds nothing."""
    from validation.deep import validate_deep

    spec = ModelSpec("linear", class_sizes=(2, 1, 1), sigma_a=0.5, temperature=0.5)
    rep = validate_deep(spec, 2, widths=(6,), chains=2, sweeps=30, burn=10, tempering=3, tempering_t_max=2.0)
    block = rep["per_width"][0]["tempering"]
    assert block["rungs"] == 3 and len(block["exchange_acceptance"]) == 2 and len(block["round_trips"]) == 2
    assert "replica exchange" in rep["comparison"]
    with pytest.raises(SpecError, match="tempering"):
        validate_deep(spec, 2, widths=(6,), chains=2, sweeps=30, burn=10, tempering=1)


def test_cli_tempering_flag(capsys):
    from codingschemes.cli.main import main

    rc = main(["validate", "--nonlinearity", "linear", "--layers", "2", "--class-sizes", "2,1,1", "--init", "both",
               "--temperature", "0.2", "--widths", "6", "--chains", "2", "--sweeps", "30", "--burn", "10", "--tempering", "2",
               "--format", "json", "--quiet", "--no-plot"])
    out = json.loads(capsys.readouterr().out)
    assert rc == (0 if out["passed"] else 1)
    assert out["random"]["per_width"][0]["tempering"]["rungs"] == 2 and out["theory"]["tempering"]["rungs"] == 2
    assert main(["validate", "--layers", "2", "--tempering", "1", "--quiet"]) == 2
    assert main(["validate", "--layers", "2", "--tempering", "3", "--quiet"]) == 2  # T = 0.5 is the default t_max
    assert main(["validate", "--tempering", "3", "--quiet"]) == 2  # one layer: not applicable
    assert "--tempering" in capsys.readouterr().err
    assert math.isfinite(out["random"]["z_max"])
