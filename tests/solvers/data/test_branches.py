"""Large-P branch form on general inputs (solvers.data.branches): K0 = I against the orthogonal
large-P solver, linear closed form, input validation, digits against sampled networks (slow)."""
import numpy as np
import pytest

from solvers.data.branches import (GeneralBranchOptions, clenshaw_curtis, linear_branch_form,
                                      solve_general_branches, thermodynamic_lambda)
from solvers.data.chains import prior_factor
from solvers.large_p.solve import linear_large_p, solve_large_p
from solvers.large_p.problem import LargePProblem
from theory.spec import ModelSpec, SpecError

RHO = (1 / 3, 1 / 3, 1 / 3)


def _identity_spec(nl, T, per, sigma_a_bar=1.0):
    P = 3 * per
    return ModelSpec(nonlinearity=nl, sigma_a=sigma_a_bar / np.sqrt(P), temperature=T, class_sizes=(per,) * 3,
                     inputs=np.sqrt(P) * np.eye(P))


def _class_avg(X, per):
    return X.reshape(3, per, -1).mean(axis=1)


def test_clenshaw_curtis_is_exact_for_polynomials():
    s, w = clenshaw_curtis(8)
    for k in range(9):
        assert np.sum(w * s**k) == pytest.approx(1.0 / (k + 1), rel=1e-12)


def test_thermodynamic_integration_matches_closed_form_psi():
    """K0 = I: Λ(g) = Σ_μ ψ(g_μ) exactly (ψ of THEORY §3); the TI estimate agrees within 4 stated errors."""
    P = 12
    K0 = np.eye(P)
    prob = LargePProblem(nonlinearity="normcdf", class_fractions=RHO)
    rng = np.random.default_rng(0)
    g = 2.0 * rng.standard_normal((3, P))
    lam, err, _, _ = thermodynamic_lambda(prior_factor(K0, 1.0), "normcdf", K0, 1.0, g, GeneralBranchOptions(),
                                          rng, 40)
    exact = prob.psi(g)[0].sum(axis=1)
    assert np.all(np.abs(lam - exact) <= 4 * err), (lam, exact, err)
    assert np.all(err < 0.1 * np.abs(exact).max())  # the error bar is not vacuous


@pytest.mark.parametrize("nl", ["erf", pytest.param("normcdf", marks=pytest.mark.slow)])
def test_identity_kernel_reproduces_orthogonal_large_p(nl):
    """K0 = I, T = 0.05 (symmetry broken: erf 4 mirror orbits ±a with P_γ = 1/4, normcdf 3 two-class codes
    1-1-0 with P_γ = 1/3). Start from a field 20% off the solution; f, U, a_γ, P_γ agree with
    solvers.large_p.solve within 4 MCSE (f) and the stated absolute tolerances (U, a_γ: 0.03; P_γ: 0.03)."""
    per, T = 4, 0.05
    spec = _identity_spec(nl, T, per)
    ref = solve_large_p(LargePProblem(nonlinearity=nl, sigma_a_bar=1.0, temperature=T, class_fractions=RHO))
    assert ref.converged and ref.symmetry_broken
    Y = spec.targets()
    rng = np.random.default_rng(5)
    t0 = Y @ ref.t * (1.0 + 0.2 * rng.uniform(-1, 1, size=(spec.P, 1)))
    sol = solve_general_branches(spec, GeneralBranchOptions(seed=2, nodes=8), initial_field=t0)
    assert sol.converged, sol.message
    f, fe = sol.class_outputs(), sol.class_outputs_error()
    assert np.all(np.abs(f - ref.outputs) <= 4 * fe + 1e-3), (f, ref.outputs, fe)
    assert fe.max() < 0.01
    assert np.allclose(sol.readout_moment, ref.readout_moment, atol=0.03)
    assert np.allclose(_class_avg(sol.t, per), ref.t, atol=0.15)
    exp = ref.branches  # mirror orbits (erf) or plain branches (normcdf)
    assert len(sol.branches) == len(exp)
    for b in exp:
        d = [min(np.linalg.norm(s.a - b.a), np.linalg.norm(s.a + b.a) if b.mirror else np.inf) for s in sol.branches]
        j = int(np.argmin(d))
        assert d[j] < 0.03 * np.sqrt(3), (b.a, sol.readouts)
        assert abs(sol.branches[j].occupation - b.occupation) < 0.03
    assert sol.height_spread <= 3 * sol.height_error + 1e-6


def test_linear_branch_form_matches_closed_form_large_p():
    """Linear φ, K0 = I: the Gaussian branch equals solvers.large_p.solve.linear_large_p (T below and above T_c)."""
    for T in (0.05, 0.8):
        per = 4
        spec = _identity_spec("linear", T, per)
        ref = linear_large_p(LargePProblem(nonlinearity="linear", sigma_a_bar=1.0, temperature=T,
                                           class_fractions=RHO))
        sol = solve_general_branches(spec)
        assert sol.converged, sol.message
        assert np.allclose(sol.class_outputs(), ref.outputs, atol=1e-6)
        assert np.allclose(sol.readout_moment, ref.readout_moment, atol=1e-6)


def test_linear_branch_form_is_the_large_p_limit_of_the_exact_solution():
    """Linear φ on Gaussian-cluster inputs: the exact finite-P solution (solvers.data.linear.solve_linear at
    σ_a² = σ̄²/P) approaches the branch form as the inputs are replicated k times (P → kP, same K0
    structure): |f_exact − f_branch| shrinks like 1/k."""
    from solvers.data.linear import solve_linear

    rng = np.random.default_rng(1)
    X0 = rng.standard_normal((6, 10)) + 2.0 * np.repeat(np.eye(3, 10), 2, axis=0)
    gaps = []
    for k in (1, 4, 16):
        X = np.repeat(X0, k, axis=0) + 0.3 * rng.standard_normal((6 * k, 10))
        spec = ModelSpec(nonlinearity="linear", sigma_a=1.0 / np.sqrt(6 * k), temperature=0.05,
                         class_sizes=(2 * k,) * 3, inputs=X)
        br = linear_branch_form(spec)
        assert br.converged, br.message
        ex = solve_linear(spec)
        gaps.append(np.max(np.abs(ex.outputs - br.outputs)))
    assert gaps[2] < gaps[0] / 4, gaps


@pytest.mark.parametrize("kwargs, word", [
    (dict(nonlinearity="relu"), "ReLU on general data not implemented"),
    (dict(temperature=0.0), "temperature"),
])
def test_invalid_specs(kwargs, word):
    spec = _identity_spec("erf", 0.1, 2).replace(**kwargs)
    with pytest.raises(SpecError, match=word):
        solve_general_branches(spec)


def test_invalid_options_and_inputs():
    with pytest.raises(SpecError, match="groups"):
        GeneralBranchOptions(groups=3)
    with pytest.raises(SpecError, match="nodes"):
        GeneralBranchOptions(nodes=5)
    with pytest.raises(SpecError, match="inputs"):
        solve_general_branches(ModelSpec(nonlinearity="erf", class_sizes=(2, 2, 2)))
    with pytest.raises(SpecError, match="initial_field"):
        solve_general_branches(_identity_spec("erf", 0.1, 2), initial_field=np.zeros((3, 3)))


@pytest.mark.slow
def test_digits_branch_predictor_against_sampled_networks():
    """Digits 0/1/2, 33 per class (P = 99), normcdf, T = 0.05, σ̄_a = 1: the branch form converges with three
    two-class codes and its test predictor f(x*) agrees with sampled mean-field networks of width 200
    (σ_a² = σ̄²/P) within TOL (finite width O(1/N) and finite-P O(1/P) corrections, plus the
    sampler's frozen code fractions, THEORY §7), averaged over the 60 test inputs. Measured: mean gap
    0.010, max 0.050 (sampling MCSE 0.002); TOL = 0.03."""
    from theory.datasets import load_digits_dataset
    from validation.generalization import sample_generalization

    TOL = 0.03
    per = 33
    ds = load_digits_dataset((0, 1, 2), train_per_class=per, test_per_class=20, seed=0)
    spec = ds.spec("normcdf", 1.0, 1.0 / np.sqrt(3 * per), 0.05)
    sol = solve_general_branches(spec)
    assert sol.converged, sol.message
    assert len(sol.branches) >= 2 and sorted(sol.codes) == ["0-1-1", "1-0-1", "1-1-0"]
    pred = sol.predict(ds.test_inputs)
    sm = sample_generalization(spec, ds.test_inputs, ds.test_labels, width=200, chains=2, sweeps=300)
    gap = np.mean(np.abs(pred.mean - np.asarray(sm["mean_predictor"])))
    assert gap < TOL, gap


def test_result_protocol_of_the_branch_form():
    """GeneralBranchSolution on the shared Result base (linear φ: closed form, no sampling)."""
    from theory.jsonio import dumps
    sol = linear_branch_form(_identity_spec("linear", 0.1, 2))
    assert sol.converged and sol.status == "converged" and sol.error_estimate == 0.0
    assert sol.rounds == sol.iterations > 0
    obs = sol.observables()
    assert np.allclose(obs.outputs, sol.class_outputs()) and np.all(obs.errors["outputs"] == 0)
    js = sol.to_json()
    for k in ("theory", "converged", "status", "iterations", "residual", "error_estimate", "rounds", "branches",
              "class_outputs", "stationarity", "height_spread"):
        assert k in js
    dumps(js)
