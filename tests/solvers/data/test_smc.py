"""Tempered SMC for the single-neuron measure (solvers.data.smc): closed forms and separated modes."""
import numpy as np
import pytest

from solvers.data.chains import EllipticalSliceChains
from solvers.data.estimators import by_group, group_mcse
from solvers.data.options import GeneralOptions
from solvers.data.smc import next_increment, smc_sample, systematic_resample
from theory.spec import SpecError

G = 16


def _kernelby_group(res, L, phi, keep):
    Phi = by_group(phi(res.Z.reshape(-1, L.shape[1]) @ L.T), keep, G)
    return np.einsum("gsp,gsq->gpq", Phi, Phi) / Phi.shape[1]


@pytest.mark.parametrize("radial", [False, True])
def test_linear_log_partition_and_kernel_match_closed_form(radial):
    """Linear φ: Φ(t) = −½ log det(I − σ_a² tᵀ L Lᵀ t) and K = E_t[hhᵀ] = L (I − σ_a² Lᵀ t tᵀ L)⁻¹ Lᵀ
    (THEORY §2). Both the plain and the radial (χ² radius, Rao–Blackwellised weights) form, the
    latter at q(t) = 0.9 where the prior variance along the top direction grows tenfold."""
    rng = np.random.default_rng(0)
    P, m = 6, 2
    L = np.linalg.cholesky(np.cov(rng.standard_normal((P, 3 * P))) + 0.1 * np.eye(P))
    t = rng.standard_normal((P, m))
    # plain form: weights e^{Δβ ℓ} have finite variance under the prior only for q(t) < 1/2; the radial
    # form integrates the radius out and holds up to the boundary
    q = 0.9 if radial else 0.4
    t *= np.sqrt(q / np.linalg.eigvalsh(t.T @ L @ L.T @ t).max())
    A = np.eye(P) - L.T @ t @ t.T @ L
    logphi = -0.5 * np.linalg.slogdet(np.eye(m) - t.T @ L @ L.T @ t)[1]
    K = L @ np.linalg.inv(A) @ L.T
    ch = EllipticalSliceChains(L, "linear", 1.0, G * 256, np.random.default_rng(1))
    res = smc_sample(ch, t, G, cess=0.5, moves=3, keep=4, radial=radial)
    assert res.betas[-1] == 1.0
    assert abs(res.log_evidence.mean() - logphi) <= 4 * res.log_evidence_mcse + 0.01, (res.log_evidence, logphi)
    Kg = _kernelby_group(res, L, lambda h: h, 4)
    err = group_mcse(Kg)
    assert np.all(np.abs(Kg.mean(0) - K) <= 4 * err + 0.02 * np.abs(K).max())
    assert err.max() < 0.1 * np.abs(K).max()  # the error bars are not vacuous


def test_separated_modes_get_their_exact_weights():
    """erf, P = 2, K0 = I, ℓ = ½ φᵀ M φ with M = [[24, 0.5], [0.5, 24]]: four modes at the corners
    φ ≈ ±(1, ±1), barriers of ≈ 10 nats, the same-sign pair e^{≈1} heavier. The mode balance
    K_12 = E_t[φ_1φ_2] and Φ(t) from SMC agree with 2-D Gauss–Hermite quadrature."""
    from scipy.special import erf
    M = np.array([[24.0, 0.5], [0.5, 24.0]])
    lam, Q = np.linalg.eigh(M)
    t = Q @ np.diag(np.sqrt(lam)) @ Q.T  # t tᵀ = M (σ_a = 1)
    phi = lambda h: erf(np.sqrt(np.pi) * h / 2)  # noqa: E731
    x, w = np.polynomial.hermite_e.hermegauss(160)
    w = w / w.sum()
    H1, H2 = np.meshgrid(x, x, indexing="ij")
    F1, F2 = phi(H1), phi(H2)
    ell = 0.5 * (M[0, 0] * F1**2 + 2 * M[0, 1] * F1 * F2 + M[1, 1] * F2**2)
    W = np.outer(w, w) * np.exp(ell - ell.max())
    logphi = ell.max() + np.log(W.sum())
    k12 = np.sum(W * F1 * F2) / W.sum()
    L = np.eye(2)
    ch = EllipticalSliceChains(L, "erf", 1.0, G * 256, np.random.default_rng(2))
    res = smc_sample(ch, t, G, cess=0.5, moves=3, keep=4)
    Kg = _kernelby_group(res, L, phi, 4)
    assert abs(Kg[:, 0, 1].mean() - k12) <= 4 * group_mcse(Kg[:, 0, 1]) + 0.01, (Kg[:, 0, 1].mean(), k12)
    assert abs(res.log_evidence.mean() - logphi) <= 4 * res.log_evidence_mcse + 0.01
    assert 0.2 < k12 < 0.8  # both pairs of modes carry weight: the test has teeth


def test_increment_and_resampling():
    """Δβ hits the target ESS fraction; systematic resampling reproduces the weights to 1/n."""
    rng = np.random.default_rng(4)
    ell = rng.standard_normal((3, 500)) * np.array([[1.0], [10.0], [0.01]])
    db = next_increment(ell, np.zeros(3), 0.5)
    assert db[2] == 1.0  # tiny spread: the whole remaining path in one step
    for g in (0, 1):
        w = np.exp(db[g] * ell[g])
        assert w.sum() ** 2 / (500 * np.sum(w * w)) == pytest.approx(0.5, abs=1e-6)
    lw = np.log(np.array([[0.1, 0.2, 0.3, 0.4]] * 2))
    idx = systematic_resample(np.repeat(lw, 250, axis=1) - np.log(250), rng)
    counts = np.bincount(idx[0] // 250, minlength=4)
    assert np.all(np.abs(counts - 1000 * np.array([0.1, 0.2, 0.3, 0.4])) <= 1)


def test_option_errors():
    with pytest.raises(SpecError, match="sampler"):
        GeneralOptions(sampler="gibbs")
    with pytest.raises(SpecError, match="particles"):
        GeneralOptions(sampler="smc", particles=100, groups=16)
    with pytest.raises(SpecError, match="cess"):
        GeneralOptions(cess=1.0)
    ch = EllipticalSliceChains(np.eye(2), "erf", 1.0, 30, np.random.default_rng(0))
    with pytest.raises(SpecError, match="multiple of groups"):
        smc_sample(ch, np.ones((2, 1)), 16)


@pytest.mark.slow
def test_smc_solution_on_digits_is_reproducible():
    """erf on digits (P = 90, T = 0.5): the tilted measure has six codes of comparable weight.
    Tempered SMC converges, and two independent solves (different seeds, hence different particle
    clouds and Newton paths) agree on f within the stated errors (≈ 0.005 per output; U carries
    MCSE ≈ 0.5 here and is not compared)."""
    from theory.datasets import load_digits_dataset
    from solvers.data.solve import solve_general
    ds = load_digits_dataset((0, 1, 2), train_per_class=30, test_per_class=5, seed=0)
    spec = ds.spec("erf", 1.0, 1.0, 0.5)
    sols = [solve_general(spec, GeneralOptions(sampler="smc", seed=s, max_rounds=20)) for s in (0, 1)]
    for s in sols:
        assert s.converged, s.message
        assert s.outputs_error.max() < 0.05
    a, b = sols
    assert np.all(np.abs(a.outputs - b.outputs) <= 4 * np.hypot(a.outputs_error, b.outputs_error) + 0.01)


def test_api_default_sampler_is_auto_with_the_cli_rule(monkeypatch):
    """GeneralOptions() defaults to "auto", the CLI's rule (one function, resolve_sampler): SMC for
    every nonlinear φ (MCMC meets its own criteria at a wrong erf fixed point on digits), MCMC for
    linear φ; "mcmc" and "smc" stay selectable, anything else is a SpecError naming sampler."""
    import solvers.data.solve as data_solve
    from solvers.data.options import resolve_sampler
    from theory.spec import ModelSpec

    assert GeneralOptions().sampler == "auto"
    assert [resolve_sampler("auto", nl) for nl in ("erf", "normcdf", "relu", "tanh", "Max(h, 0.1*h)")] == ["smc"] * 5
    assert resolve_sampler("auto", "linear") == "mcmc"
    assert resolve_sampler("mcmc", "erf") == "mcmc" and resolve_sampler("smc", "linear") == "smc"
    with pytest.raises(SpecError, match="sampler"):
        resolve_sampler("nuts", "erf")
    seen = []
    monkeypatch.setattr(data_solve, "_solve_replica", lambda spec, opt, *a: seen.append(opt.sampler))
    monkeypatch.setattr(data_solve, "check_bias", lambda spec, first, n, more: first)
    X = np.eye(4) * 2.0
    for nl, options in (("erf", None), ("linear", None), ("erf", GeneralOptions(sampler="mcmc"))):
        data_solve.solve_general(ModelSpec(nl, class_sizes=(2, 2), inputs=X), options)
    assert seen == ["smc", "mcmc", "mcmc"]


def test_generalize_auto_uses_the_same_rule(monkeypatch):
    """The generalization report resolves "auto" for nonlinear φ through resolve_sampler (SMC)."""
    import solvers.data.solve as data_solve
    from theory.datasets import load_digits_dataset
    from validation.generalization import generalization_report

    class Stop(Exception):
        pass

    def capture(spec, opts, progress=None):
        raise Stop(opts.sampler)

    monkeypatch.setattr(data_solve, "solve_general", capture)
    ds = load_digits_dataset((0, 1), train_per_class=4, test_per_class=2, seed=0)
    for asked, used in (("auto", "smc"), ("mcmc", "mcmc")):
        with pytest.raises(Stop, match=used):
            generalization_report(ds, ds.spec("erf", 1.0, 1.0, 0.5), sampling=False, theory_sampler=asked)
