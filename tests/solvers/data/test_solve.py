"""General-input mean-field theory (THEORY §2) by MCMC: against the orthogonal solver and linear closed form."""
import numpy as np
import pytest

from solvers.data.solve import GeneralOptions, domain_lower_bound, solve_general
from solvers.solve import solve
from theory.linear import class_summary
from solvers.data.linear import solve_linear
from theory.spec import ModelSpec, SpecError

SIZES = (4, 2, 2)


def _class_errors(sol):
    lab = np.repeat(np.arange(len(SIZES)), SIZES)
    return np.array([np.sqrt((sol.outputs_error[lab == c] ** 2).sum(0)) / (lab == c).sum() for c in range(3)])


@pytest.mark.parametrize("nl,T,sampler", [("relu", 1.0, "mcmc"), ("erf", 0.5, "mcmc"), ("erf", 0.5, "smc"),
                                           ("relu", 1.0, "smc")])
def test_identity_kernel_reproduces_orthogonal_solver(nl, T, sampler):
    """K0 = I (x_μ = √P e_μ): class-averaged f, U and kernel blocks agree with solvers.solve
    (MCMC chains and tempered SMC)."""
    spec0 = ModelSpec(nonlinearity=nl, temperature=T, class_sizes=SIZES)
    ref = solve(spec0)
    P = spec0.P
    sol = solve_general(spec0.replace(inputs=np.sqrt(P) * np.eye(P)), GeneralOptions(seed=1, sampler=sampler))
    assert sol.converged, sol.message
    f, fe = sol.class_outputs(), _class_errors(sol)
    assert np.all(np.abs(f - ref.outputs) <= 4 * fe + 2e-3), (f, ref.outputs, fe)
    U, Ue = sol.readout_moment, sol.readout_moment_error
    # U = σ_a² I + σ_a⁴ tᵀKt carries K's first-order change over the last Newton step (not in its MCSE)
    assert np.all(np.abs(U - ref.readout_moment) <= 6 * Ue + 0.02 * np.abs(ref.readout_moment).max())
    obs = class_summary(SIZES, sol.outputs, U, sol.kernel)
    assert np.allclose(obs.kernel_diagonal, ref.kernel_diagonal, rtol=0.05)
    assert np.allclose(obs.kernel_blocks, ref.kernel_blocks, rtol=0.05, atol=0.01)
    # the stated errors are not vacuous
    assert fe.max() < 0.01


def test_linear_general_data_matches_closed_form():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((8, 12))
    spec = ModelSpec(nonlinearity="linear", temperature=0.5, class_sizes=SIZES, inputs=X)
    ref = solve_linear(spec)
    sol = solve_general(spec, GeneralOptions(seed=2))
    assert sol.converged, sol.message
    assert np.all(np.abs(sol.outputs - ref.outputs) <= 4 * sol.outputs_error + 2e-3)
    assert np.allclose(sol.readout_moment, ref.readout_moment, atol=6 * sol.readout_moment_error.max() + 0.02)
    assert np.allclose(sol.kernel, ref.kernel, rtol=0.05, atol=0.05)
    Xs = rng.standard_normal((5, 12))
    pred = sol.predict(Xs)
    assert np.all(np.abs(pred.mean - ref.predict(Xs)) <= 4 * pred.mean_error + 5e-3)


def test_domain_bound_is_exact_for_linear():
    rng = np.random.default_rng(0)
    L = rng.standard_normal((6, 6))
    t = 0.2 * rng.standard_normal((6, 2))
    exact = np.linalg.eigvalsh(t.T @ L @ L.T @ t).max()
    assert domain_lower_bound(t, L, 1.0, 1.0, 1.0) == pytest.approx(exact, rel=1e-10)
    # ReLU: at least the quotient of any direction, at most Cauchy–Schwarz |t|² λ_max(L Lᵀ)
    t1 = t[:, :1]
    q = domain_lower_bound(t1, L, 1.0, 0.0, 1.0)
    u = rng.standard_normal((50, 6))
    vals = np.sum((np.maximum(u @ L.T, 0) @ t1) ** 2, axis=1) / np.sum(u * u, axis=1)
    assert vals.max() <= q <= np.sum(t1**2) * np.linalg.eigvalsh(L @ L.T).max() + 1e-12


def test_errors():
    with pytest.raises(SpecError, match="inputs"):
        solve_general(ModelSpec(class_sizes=SIZES))
    with pytest.raises(SpecError, match="chains"):
        GeneralOptions(chains=20, groups=16)
    with pytest.raises(SpecError, match="final_sweeps"):
        GeneralOptions(sweeps=100, final_sweeps=50)


def _digits_spec(nl, per_class, T):
    from theory.datasets import load_digits_dataset
    ds = load_digits_dataset((0, 1, 2), train_per_class=per_class, test_per_class=5, seed=0)
    return ds.spec(nl, 1.0, 1.0, T)


def test_relu_start_is_inside_the_domain_on_digits():
    """ReLU, digits P = 300: the old domain bound (alternating sign patterns) certified q(t0) <= 1/2
    for a start with q(t0) = 1.04, where the chains escape to infinity after a few hundred sweeps.
    The start is now scaled with the ascent-refined bound: chains at t0 stay inside, and the bound
    refined from their samples certifies a margin."""
    from solvers.data.chains import EllipticalSliceChains, prior_factor
    from solvers.data.domain import direction_quotients
    from solvers.data.starts import starting_field
    from theory.nonlinearities import get_nonlinearity
    spec = _digits_spec("relu", 100, 0.5)
    t0 = starting_field(spec, GeneralOptions(chains=64, seed=0))
    L = prior_factor(spec.input_kernel(), 1.0)
    nl = get_nonlinearity("relu")
    chains = EllipticalSliceChains(L, "relu", 1.0, 64, np.random.default_rng(1))
    chains.set_field(t0)
    qmax = []
    for _ in range(4):
        Z = chains.run(200, 20, 0).reshape(-1, L.shape[1])
        chains.adapt(Z)
        qmax.append(direction_quotients(Z, L, t0, nl, 1.0).max())
    assert max(qmax) < 0.9, qmax
    # ascent from the sampled directions (the old start t0 gives 1.04 here: outside the domain)
    assert domain_lower_bound(t0, L, 1.0, 0.0, 1.0, directions=Z, top=64) < 0.9


def test_no_vacuous_convergence():
    """Convergence needs the MCSE below f_tol, not only the residual within its (large) noise."""
    spec = _digits_spec("relu", 10, 0.5)
    sol = solve_general(spec, GeneralOptions(seed=0, chains=32, sweeps=20, final_sweeps=20, max_sweeps=20,
                                             keep=10, max_rounds=3, f_tol=1e-6, sampler="mcmc"))
    assert not sol.converged
    assert "MCSE" in sol.message


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=(
    "open (issue 15): with the bias check two replicas of this seeded solve disagree marginally in the "
    "field Lᵀt (max z 5.79 > critical 5.77 at family-wise level 0.01), so converged is false: the group "
    "MCSE near the ReLU domain cap is slightly too small, or the replicas end at different points"))
def test_relu_condensate_reproduces_orthogonal_solver_at_p90():
    """K0 = I, ReLU, T = 0.5, 30 inputs per class: the exact finite-P solution sits at
    1 − q(t) ≈ 1e-7 (a condensate along one direction per class). Without the domain constraint
    the solver stalled at the boundary with f_cc ≈ 0.83 and U_cc ≈ 4.4; with it, f and U agree
    with the reduced solver (U to 1%: the constraint is applied at q ≤ Q_CAP < 1)."""
    sizes = (30, 30, 30)
    spec0 = ModelSpec(nonlinearity="relu", temperature=0.5, class_sizes=sizes)
    ref = solve(spec0)
    P = spec0.P
    sol = solve_general(spec0.replace(inputs=np.sqrt(P) * np.eye(P)), GeneralOptions(seed=0, sampler="mcmc"))
    assert sol.converged, sol.message
    f = sol.class_outputs()
    assert np.all(np.abs(np.diag(f) - np.diag(ref.outputs)) <= 4 * sol.outputs_error.max() + 2e-3)
    assert np.allclose(np.diag(sol.readout_moment), np.diag(ref.readout_moment), rtol=0.02)
    assert len(sol.condensate_masses) >= 3 and np.sum(sol.condensate_masses > 0.5) == 3


@pytest.mark.slow
def test_relu_digits_converges_and_matches_sampled_networks():
    """ReLU on digits (classes 0–2, 30 per class, T = 0.5), tempered SMC. The condensate SQP step
    (Lagrangian Hessian with the condensate kernel, cuts added inside the step, projection onto
    q ≤ Q_CAP) converges; before, 20 of 25 steps were blocked at the cap (rms z 6.4 after 25
    rounds). Two seeds agree on the class outputs within 4 MCSE + 0.002 (measured 0.0006), and the
    per-class test mean-predictor error matches sampled networks (N = 200; measured gap
    0.003–0.004) within 0.01, a tolerance the GP kernel machine misses by 2–5× (gap 0.024–0.063)."""
    from theory.datasets import load_digits_dataset
    from theory.general import class_errors, gp_generalization
    from validation.generalization import sample_generalization
    ds = load_digits_dataset((0, 1, 2), train_per_class=30, seed=0)
    spec = ds.spec("relu", 1.0, 1.0, 0.5)
    sols = [solve_general(spec, GeneralOptions(seed=s, sampler="smc")) for s in (0, 1)]
    for sol in sols:
        assert sol.converged, sol.message
        assert sol.rounds <= 15 and np.all(sol.condensate_masses >= 0) and sol.condensate_masses.sum() > 0.5
    f0, f1 = (s.class_outputs() for s in sols)
    err = np.sqrt(sols[0].outputs_error.max() ** 2 + sols[1].outputs_error.max() ** 2)
    assert np.all(np.abs(f0 - f1) <= 4 * err + 0.002), (f0, f1, err)
    pred = sols[0].predict(ds.test_inputs)
    th = np.array(class_errors(pred.mean, ds.test_labels, ds.m, mean_error=pred.mean_error)["mean_predictor_error"])
    sampled = sample_generalization(spec, ds.test_inputs, ds.test_labels, width=200, chains=2, sweeps=300, seed=0)
    sa = np.array(sampled["mean_predictor_error"])
    gp = np.array(gp_generalization(ds.train_inputs, spec.targets(), ds.test_inputs, ds.test_labels, "relu", 1.0, 1.0,
                                    0.5).errors["mean_predictor_error"])
    assert np.all(np.abs(th - sa) <= 0.01), (th, sa)
    assert np.all(np.abs(gp - sa) > 0.02), (gp, sa)  # the test can tell the learned kernel from the GP


def test_result_protocol():
    """GeneralSolution on the shared Result base: status vocabulary, old names as read-only
    aliases, class-resolved Observables with errors, JSON with the shared keys and the old ones."""
    import dataclasses
    from theory.jsonio import dumps
    from solvers.progress import ProgressEvent
    spec = ModelSpec(nonlinearity="erf", temperature=0.5, class_sizes=SIZES)
    events = []
    sol = solve_general(spec.replace(inputs=np.sqrt(spec.P) * np.eye(spec.P)),
                        GeneralOptions(seed=1, chains=64, max_rounds=2, sampler="mcmc"), progress=events.append)
    assert sol.status == ("converged" if sol.converged else "not-converged")
    first = [e for e in events if e.stage == "round"]
    assert sol.rounds == sol.iterations == len(first) == 2
    assert all(isinstance(e, ProgressEvent) and e.total == 2 for e in events)
    assert [e.step for e in first] == [1, 2] and "residual" in first[-1].values
    # the second replica (the bias check, solvers.data.replicas) reports apart
    assert {e.stage for e in events} == {"round", "replica-1"} and len(events) == 4
    assert sol.error_estimate == pytest.approx(float(np.max(sol.outputs_error)))
    obs = sol.observables()
    assert np.allclose(obs.outputs, sol.class_outputs()) and obs.errors["outputs"].shape == (3, 3)
    js = sol.to_json()
    for k in ("converged", "status", "message", "iterations", "residual", "error_estimate", "time_seconds",
              "rounds", "rhat", "z_rms", "class_outputs", "readout_moment", "outputs_error_max"):
        assert k in js
    dumps(js)
    with pytest.raises(dataclasses.FrozenInstanceError):
        sol.t = None
