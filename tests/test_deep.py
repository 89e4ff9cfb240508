"""Deep networks (L >= 2 hidden layers): deep linear theory (theory.deep_linear) and the deep
sampler (validation.deep)."""
import math

import numpy as np
import pytest

from theory.deep_linear import (DeepLinearError, class_potential, deep_linear_residuals, solve_deep_json,
                                solve_deep_linear, solve_deep_linear_classes)
from theory.linear import gp_mean_predictor, linear_class_closed_form, solve_linear
from theory.spec import ModelSpec, SpecError


def _inputs(P=12, N0=15, seed=0):
    return np.random.default_rng(seed).standard_normal((P, N0))


# ----------------------------------------------------------------------------- deep linear theory
@pytest.mark.parametrize("T", [0.0, 0.01, 0.3, 3.0])
def test_one_layer_reproduces_linear_closed_form(T):
    spec = ModelSpec(nonlinearity="linear", sigma_w=1.3, sigma_a=0.6, temperature=T, class_sizes=(5, 4, 3),
                     inputs=_inputs())
    ref = solve_linear(spec)
    sol = solve_deep_linear(spec, layers=1)
    assert np.max(np.abs(sol.readout_moment - ref.readout_moment)) < 1e-10
    assert np.max(np.abs(sol.outputs - ref.outputs)) < 1e-10
    assert np.max(np.abs(sol.kernels[0] - ref.kernel)) < 1e-10 * max(1, np.max(np.abs(ref.kernel)))
    assert np.max(np.abs(sol.t - ref.t)) < 1e-9 * max(1, np.max(np.abs(ref.t)))
    assert len(sol.saddles) == 1 and sol.stable  # L = 1: convex dual, one root


def test_one_layer_class_reduction_matches_section_3():
    spec = ModelSpec(nonlinearity="linear", sigma_w=0.9, sigma_a=1.4, temperature=0.05, class_sizes=(8, 4, 4))
    _, ref = linear_class_closed_form(spec)
    sol = solve_deep_linear_classes(spec, layers=1)
    assert max(sol.observables().difference(ref).values()) < 1e-10


@pytest.mark.parametrize("T", [0.0, 0.02, 0.5])
def test_two_layers_satisfy_section_5_equations(T):
    """THEORY §5 literally, with inverses: K̃_1 = σ_2² t U tᵀ, K_1 = (K0⁻¹/σ_1² − K̃_1)⁻¹,
    U = (σ_a⁻² I − σ_2² tᵀK_1t)⁻¹, f = σ_2² K_1 t U = y − T t, K_2 = σ_2² K_1 + σ_2⁴ K_1 t U tᵀ K_1."""
    spec = ModelSpec(nonlinearity="linear", sigma_w=1.1, sigma_a=0.8, temperature=T, class_sizes=(5, 4, 3),
                     inputs=_inputs(seed=1))
    s1, s2 = 1.1, 0.7
    sol = solve_deep_linear(spec, layers=2, sigmas=(s1, s2))
    K0, Y = spec.input_kernel(), spec.targets()
    t, U, f = sol.t, sol.readout_moment, sol.outputs
    K1, K2 = sol.kernels
    Kt1 = s2**2 * t @ U @ t.T
    scale = max(1.0, np.max(np.abs(K2)))
    assert np.max(np.abs(sol.conjugates[0] - Kt1)) < 1e-8 * scale
    assert np.max(np.abs(K1 - np.linalg.inv(np.linalg.inv(K0) / s1**2 - Kt1))) < 1e-8 * scale
    assert np.max(np.abs(U - np.linalg.inv(np.eye(3) / 0.8**2 - s2**2 * t.T @ K1 @ t))) < 1e-8 * max(1, np.max(U))
    assert np.max(np.abs(f - s2**2 * K1 @ t @ U)) < 1e-8
    assert np.max(np.abs(f - (Y - T * t))) < 1e-10
    assert np.max(np.abs(K2 - (s2**2 * K1 + s2**4 * K1 @ t @ U @ t.T @ K1))) < 1e-8 * scale
    if T == 0.0:
        assert np.max(np.abs(f - Y)) < 1e-10


@pytest.mark.parametrize("layers", [3, 4])
def test_general_depth_recursion_residuals(layers):
    spec = ModelSpec(nonlinearity="linear", sigma_w=1.0, sigma_a=1.0, temperature=0.1, class_sizes=(5, 4, 3),
                     inputs=_inputs(seed=2))
    sol = solve_deep_linear(spec, layers=layers, sigmas=[1.2, 0.9, 1.1, 0.8][:layers])
    res = deep_linear_residuals(sol)
    assert max(res.values()) < 1e-10, res
    # layers renormalise the readout directions: K_ℓ t = s_ℓ K0 t (I − X)^{−ℓ}
    w, R = np.linalg.eigh(sol.X)
    s_l = 1.0
    for ell, sig in enumerate(sol.sigmas, start=1):
        s_l *= sig**2
        rhs = s_l * spec.input_kernel() @ sol.t @ (R * (1 - w) ** -ell) @ R.T
        assert np.max(np.abs(sol.kernels[ell - 1] @ sol.t - rhs)) < 1e-9 * max(1, np.max(np.abs(rhs)))


@pytest.mark.parametrize("layers", [2, 3])
def test_class_block_reduction_equals_general_solver(layers):
    spec = ModelSpec(nonlinearity="linear", sigma_w=1.2, sigma_a=0.5, temperature=0.05, class_sizes=(6, 3, 2))
    gen = solve_deep_linear(spec, layers=layers)
    cls = solve_deep_linear_classes(spec, layers=layers)
    for ell in range(1, layers + 1):
        d = gen.layer_observables(ell).difference(cls.layer_observables(ell))
        assert max(d.values()) < 1e-9, (ell, d)
    assert gen.free_energy == pytest.approx(cls.free_energy, rel=1e-10, abs=1e-10)
    js = solve_deep_json(spec, layers)
    assert [d["layer"] for d in js["layers"]] == list(range(1, layers + 1))
    assert np.allclose(js["layers"][-1]["kernel_blocks"], cls.blocks[-1])


def test_deep_predictor_is_lazy_predictor_at_zero_temperature():
    X = _inputs(seed=3)
    spec = ModelSpec(nonlinearity="linear", sigma_w=1.0, sigma_a=0.7, temperature=0.0, class_sizes=(5, 4, 3),
                     inputs=X)
    Xs = np.random.default_rng(4).standard_normal((6, X.shape[1]))
    k0 = Xs @ X.T / X.shape[1]
    lazy = gp_mean_predictor(spec.input_kernel(), k0, spec.targets(), 0.0, 0.7, 1.0)
    for L in (1, 2, 3):
        assert np.max(np.abs(solve_deep_linear(spec, layers=L).predict(Xs) - lazy)) < 1e-8


def test_coexisting_roots_free_energy_and_stability():
    """σ_a √(s/P_c) small, moderate T: each class has a lazy, an unstable and a rich root.
    At every root S equals the variational function Ψ at λ_ℓ = (1 − x)^{−ℓ}, Ψ is stationary
    there, the roots flagged stable are local maxima of Ψ and the unstable one is not; the
    solver selects the stable root with the largest S."""
    spec = ModelSpec(nonlinearity="linear", sigma_w=1.0, sigma_a=0.02, temperature=0.1, class_sizes=(2, 2))
    L = 3
    sol = solve_deep_linear_classes(spec, layers=L)
    roots = sol.class_roots[0]
    assert len(roots) == 3 and [r["stable"] for r in roots] == [True, False, True]
    for r in roots:
        lam = np.array([(1 - r["x"]) ** -ell for ell in range(1, L)])
        z = np.log(lam)

        def psi(z):
            return class_potential(spec, L, 0, np.exp(z))

        assert psi(z) == pytest.approx(r["free_energy"], rel=1e-9, abs=1e-9)
        e = 1e-4
        grad = [(psi(z + e * np.eye(L - 1)[i]) - psi(z - e * np.eye(L - 1)[i])) / (2 * e) for i in range(L - 1)]
        assert np.max(np.abs(grad)) < 1e-5
        H = np.empty((L - 1, L - 1))
        for i in range(L - 1):
            for j in range(L - 1):
                ei, ej = e * np.eye(L - 1)[i], e * np.eye(L - 1)[j]
                H[i, j] = (psi(z + ei + ej) - psi(z + ei - ej) - psi(z - ei + ej) + psi(z - ei - ej)) / (4 * e * e)
        assert (np.linalg.eigvalsh(H).max() < 0) == r["stable"]
    best = max((r for r in roots if r["stable"]), key=lambda r: r["free_energy"])
    assert best["selected"] and sol.x[0] == pytest.approx(best["x"])
    # the general solver finds the same selected root
    gen = solve_deep_linear(spec, layers=L)
    assert np.sort(np.linalg.eigvalsh(gen.X)) == pytest.approx(np.sort(sol.x), rel=1e-8)


def test_deep_linear_errors():
    spec = ModelSpec(nonlinearity="linear", class_sizes=(2, 2), temperature=0.1)
    with pytest.raises(SpecError, match="layers must be an integer >= 1"):
        solve_deep_linear(spec, layers=0)
    with pytest.raises(SpecError, match="sigmas must list 2"):
        solve_deep_linear(spec, layers=2, sigmas=[1.0])
    with pytest.raises(SpecError, match="nonlinearity 'linear'"):
        solve_deep_linear(spec.replace(nonlinearity="relu"), layers=2)
    with pytest.raises(SpecError, match="orthogonal"):
        solve_deep_linear_classes(spec.replace(inputs=np.ones((4, 3))), layers=2)
    with pytest.raises(SpecError, match="non-singular"):
        solve_deep_linear(spec.replace(temperature=0.0, inputs=np.ones((4, 3))), layers=2)
    assert issubclass(DeepLinearError, RuntimeError)
    assert math.isfinite(solve_deep_linear(spec, layers=2).free_energy)
