"""Sampled finite networks against the mean-field theory (THEORY §2, §3, §7).

Gibbs-within-MALA sweeps (exact readout | W, MALA on W | a) and collapsed
sweeps (MALA on the marginal of W, then a | W) at widths N; the observables f, U and the kernel are compared with the solver, allowing for the
O(1/N) finite-width bias, and extrapolated in 1/N.
"""
import numpy as np
import pytest

from solvers.solve import solve
from theory.spec import ModelSpec
from validation.compare import extrapolate
from validation.diagnostics import mcse
from validation.networks import Network, gibbs_sweep
from validation.observables import observables_vector


def _spec(nl):
    return ModelSpec(nl, class_sizes=(4, 2, 2), temperature=0.5)


def _sample(spec, width, seed, chains=4, sweeps=1200, burn=200):
    net = Network(spec, width=width)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(chains):
        theta = net.prior_sample(rng)
        draws = []
        for s in range(sweeps):
            theta, _ = gibbs_sweep(rng, net, theta, step_size=0.3, n_mala=5)
            if s >= burn:
                draws.append(observables_vector(net, theta))
        out.append(draws)
    out = np.array(out)
    return out.mean(axis=(0, 1)), mcse(out)


def _theory_vector(spec):
    o = solve(spec).observables
    return np.concatenate([o.outputs.ravel(), o.readout_moment.ravel(), o.kernel_diagonal, o.kernel_blocks.ravel()])


def test_linear_network_agrees_within_mcse_plus_c_over_n():
    """N = 200: |sampled − theory| <= 4 MCSE + c/N with c = 2 (f, kernel) and 8 (U, scale ~2)."""
    N = 200
    spec = _spec("linear")
    mean, err = _sample(spec, N, seed=3)
    theory = _theory_vector(spec)
    c = np.concatenate([np.full(9, 2.0), np.full(9, 8.0), np.full(3 + 9, 2.0)])
    assert np.all(np.abs(mean - theory) <= 4 * err + c / N), np.max(np.abs(mean - theory) - 4 * err - c / N)


@pytest.mark.slow
@pytest.mark.parametrize("nl", ["linear", "normcdf", "relu"])
def test_sampled_networks_extrapolate_to_the_theory(nl):
    """Fit a + b/N over N = 100, 200, 400: every intercept matches the theory (|z| < 4).

    Measured when written: max |z| 1.4 (linear), 2.1 (normcdf), 1.7 (relu); intercepts agree with
    the theory to 3–4 digits.
    """
    spec = _spec(nl)
    widths = [100, 200, 400]
    runs = [_sample(spec, N, seed=20 + i, sweeps=2500, burn=300) for i, N in enumerate(widths)]
    a, sa, _, _ = extrapolate(widths, [r[0] for r in runs], [r[1] for r in runs])
    z = np.abs(a - _theory_vector(spec)) / np.maximum(sa, 1e-12)
    assert np.max(z) < 4.0, z


def _stationarity_case(nl, wrong):
    from validation.report import stationarity

    spec = _spec(nl)
    init = spec.replace(temperature=0.6) if wrong else None
    return stationarity(spec, 400, init_spec=init, sweeps=300, seed=5)


def test_stationarity_linear_right_and_wrong_theory():
    """Chains started from the theory stay there; started from a 20%-wrong-T theory they leave it."""
    right, wrong = _stationarity_case("linear", wrong=False), _stationarity_case("linear", wrong=True)
    assert right["passed"] and right.converged and right.status == "converged"
    assert not wrong["passed"] and not wrong.converged and wrong.status == "error-bound-missed"


@pytest.mark.slow
@pytest.mark.parametrize("nl", ["normcdf", "relu"])
def test_stationarity_nonlinear_right_and_wrong_theory(nl):
    """Measured when written (N = 400, 300 sweeps): worst gap / allowed = 0.19 (normcdf), 0.39 (relu)
    for the right theory; 7.0 and 3.9 for the theory at T·1.2."""
    assert _stationarity_case(nl, wrong=False)["passed"]
    assert not _stationarity_case(nl, wrong=True)["passed"]


@pytest.mark.slow
def test_neuron_swaps_keep_the_posterior():
    """Gibbs sweeps plus Metropolis neuron swaps (independence proposals from the theory) still
    agree with the theory: the move is exact. Measured: acceptance ~0.4 (normcdf)."""
    from validation.report import validate

    report = validate(_spec("normcdf"), widths=[100], chains=4, sweeps=600, burn=150, swaps=10, progress=False)
    assert report["passed"], report["z_max"]
    assert report["sampling"]["per_width"][0]["swap_acceptance"] > 0.1


@pytest.mark.slow
def test_small_temperature_samplers_mix_and_agree_with_the_theory():
    """normcdf, classes 8,4,4, T = 0.05 (symmetry broken): the Gibbs sweep with and without neuron
    swaps and the collapsed sweep all mix (R̂ < 1.2) and reproduce the theory's f and U within the
    N = 200 allowance and its code fractions within TV 0.05. (An earlier version of this test
    asserted that the plain Gibbs sweep freezes, R̂ > 2; the current Gibbs sweep does not freeze
    here: R̂ 1.07 on the commit before the consolidation, see docs/results.md.)"""
    from validation.report import validate

    spec = ModelSpec("normcdf", class_sizes=(8, 4, 4), temperature=0.05)
    for sampler, swaps, sweeps in (("gibbs", 0, 800), ("gibbs", 20, 1000), ("collapsed", 0, 800)):
        mixed = validate(spec, widths=[200], chains=4, sweeps=sweeps, burn=200, swaps=swaps, progress=False,
                         sampler=sampler)
        assert mixed["diagnostics"]["rhat_max"] < 1.2, sampler
        f, f_th = np.array(mixed["sampling"]["outputs"]), np.array(mixed["theory"]["outputs"])
        U, U_th = np.array(mixed["sampling"]["readout_moment"]), np.array(mixed["theory"]["readout_moment"])
        assert np.max(np.abs(f - f_th)) < 2e-3, sampler  # 1/N bias and noise at N = 200
        assert np.max(np.abs(np.diag(U) - np.diag(U_th)) / np.diag(U_th)) < 0.03, sampler
        assert mixed["sampling"]["per_width"][0]["code_fraction_distance"] < 0.05, sampler


@pytest.mark.slow
def test_relu_small_temperature_issue_example():
    """The issue's command: relu, classes 8,4,4, T = 0.05, N = 100, 200, 400, 4 chains (collapsed
    sweep, random starts, no swaps). Measured: passed, max |z| 1.80, R̂ 1.024, f and U intercepts
    within 0.1% of the theory."""
    from validation.report import validate

    spec = ModelSpec("relu", class_sizes=(8, 4, 4), temperature=0.05)
    rep = validate(spec, widths=[100, 200, 400], chains=4, sweeps=1500, burn=300, progress=False)
    assert rep["diagnostics"]["rhat_max"] < 1.1
    assert rep["passed"], rep["z_max"]


@pytest.mark.slow
def test_code_fractions_match_the_theory():
    """Sampled code fractions against 10000 neurons from the theory's single-neuron measure.
    Measured: total-variation distance 0.013 (normcdf, 4,2,2, T = 0.5, N = 200)."""
    from validation.report import validate

    report = validate(_spec("normcdf"), widths=[200], chains=4, sweeps=600, burn=150, progress=False)
    assert report["sampling"]["per_width"][0]["code_fraction_distance"] < 0.05


@pytest.mark.slow
def test_relu_outliers_carry_one_class_codes_and_most_of_the_output():
    """Paper regime (classes 32,16,16, σ_a = 1/8, T = 0.02): neurons with readout norm > 4× the median
    carry one-class codes, like the condensate directions of the theory, and a share of each
    correct-class output close to the theory's condensate share. Measured (N = 200, 400, 4 chains ×
    1600 sweeps): theory share 0.78 / 0.88 / 0.88; sampled 0.74 / 0.82 / 0.80 (N = 200),
    0.71 / 0.80 / 0.81 (N = 400); outlier codes 100 / 010 / 001 only (fractions 0.42 / 0.27 / 0.31
    against mass fractions 0.39 / 0.31 / 0.31). f, U agree within ~1% but split-R̂ is 1.5: the
    heavy tail mixes slowly, so this is a check of structure, not an equilibrium pass."""
    from validation.report import validate

    spec = ModelSpec("relu", class_sizes=(32, 16, 16), sigma_a=0.125, temperature=0.02)
    rep = validate(spec, widths=[200], chains=4, sweeps=1200, burn=300, progress=False)
    theory_share = np.array(rep["theory"]["outlier_share"])
    out = rep["sampling"]["per_width"][0]["outliers"]
    assert set(out["code_fractions"]) <= {"100", "010", "001"}
    assert np.max(np.abs(np.array(out["share"]) - theory_share)) < 0.15
    assert sorted(rep["theory"]["condensate"]["codes"]) == [[0], [1], [2]]
