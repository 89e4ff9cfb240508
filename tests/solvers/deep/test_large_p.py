"""Deep large-P theory (theory.deep_large_p, solvers.deep.large_p), issue 7: L = 1 against hand-solved
linear φ and the erf critical temperatures, the odd-φ closed form, convexity/KKT of the saturated G∞, the linear
rich-root asymptotics against the deep linear closed form, the paper regime, bad input, and (slow)
the finite-P deep solver and sampled networks approaching the P → ∞ picture."""
import json
import math

import numpy as np
import pytest

from solvers.deep.large_p import solve_deep_large_p, solve_saturated
from theory.deep_large_p import linear_asymptotics, pattern_values, prior_kernels, saturation_levels
from theory.spec import ModelSpec, SpecError


def _spec(name, sizes, T, sbar=1.0, sigma_w=1.0):
    return ModelSpec(nonlinearity=name, class_sizes=sizes, temperature=T, sigma_w=sigma_w,
                     sigma_a=sbar / math.sqrt(sum(sizes)))


# ----------------------------------------------------------------------------- L = 1
def test_one_layer_linear_by_hand():
    """L = 1, linear φ (ψ(g) = σ_1² g²/2, σ_1 = σ̄_a = 1): S(a) is bounded only while σ̄_a² Σ_c ρ_c (t_c·a)² <= ||a||²,
    so below T_c,c = σ̄_a √ρ_c (THEORY §4 with E[φ²] = σ_1² = 1) the field sits on that boundary,
    t_cc = 1/(σ̄_a √ρ_c), and f_cc = 1 − T t_cc; above it a = 0, t_cc = 1/T, f_cc = 0. ρ = (½, ¼, ¼):
    T_c = (0.7071, 0.5, 0.5); T = 0.3 is below all three, T = 0.6 between them."""
    rho = np.array([0.5, 0.25, 0.25])
    for T in (0.3, 0.6):
        sol = solve_deep_large_p(_spec("linear", (8, 4, 4), T), 1)
        assert sol.converged
        below = T < np.sqrt(rho)
        t_hand = np.where(below, 1.0 / np.sqrt(rho), 1.0 / T)
        np.testing.assert_allclose(np.diag(sol.t), t_hand, atol=1e-8)
        np.testing.assert_allclose(np.diag(sol.outputs), np.where(below, 1.0 - T * t_hand, 0.0), atol=1e-8)
        np.testing.assert_allclose(sol.outputs - np.diag(np.diag(sol.outputs)), 0.0, atol=1e-8)


def test_one_layer_erf_critical_temperatures():
    """L = 1, erf (φ(h) = erf(√π h/2)): a = 0, t = Y/T, f = 0, U = 0 above T_c,r = σ̄_a (ρ_r E[φ(h)²])^{1/2},
    h ~ N(0, 1), E[erf(s h)²] = (2/π) arcsin(2s²/(1 + 2s²)) with s² = π/4 (THEORY §4): T_c = (0.4574, 0.3235, 0.3235). At T = 0.5 every class is
    trivial; at T = 0.4 only class 0 (the largest) has broken the symmetry; at T = 0.1 all have, and the
    reported branches reproduce f = Σ_γ P_γ a_γ ψ'(t_c·a_γ) and f = Y − T t."""
    rho = np.array([0.5, 0.25, 0.25])
    Tc = np.sqrt(rho * 2 / np.pi * np.arcsin((np.pi / 2) / (1 + np.pi / 2)))
    np.testing.assert_allclose(Tc, [0.45743, 0.32345, 0.32345], atol=1e-5)
    for T in (0.5, 0.4, 0.1):
        sol = solve_deep_large_p(_spec("erf", (8, 4, 4), T), 1)
        assert sol.converged
        o = sol.observables()
        trivial = T > Tc
        np.testing.assert_allclose(np.diag(o.outputs)[trivial], 0.0, atol=1e-8)
        np.testing.assert_allclose(np.diag(sol.t)[trivial], 1.0 / T, atol=1e-8)
        np.testing.assert_allclose(np.diag(o.readout_moment)[trivial], 0.0, atol=1e-8)
        assert np.all(np.diag(o.outputs)[~trivial] > 1e-2)
        assert np.max(np.abs(o.outputs + T * sol.t - np.eye(3))) < 1e-8
    br = sol.branches[0]
    assert len(br) >= 2  # symmetry broken
    f = sum(b["occupation"] * np.outer(b["class_means"], b["a"]) for b in br)
    assert np.max(np.abs(f - o.outputs)) < 1e-8
    assert sum(sol.code_fractions[0].values()) == pytest.approx(1.0)


# ----------------------------------------------------------------------------- saturated layer, L >= 2
@pytest.mark.parametrize("name", ["erf", "tanh"])
@pytest.mark.parametrize("layers", [2, 3])
def test_odd_phi_closed_form(name, layers):
    """Odd bounded φ, L >= 2: f = diag(σ̄²ρ_c/(T + σ̄²ρ_c)), t = diag(1/(T + σ̄²ρ_c)) (every mirror orbit of
    ±1 patterns with uncorrelated signs), U_cc = σ̄⁴ρ_c²t_cc², last-layer blocks = I, to 1e-9; independent
    of the hidden σ_ℓ and of L."""
    rho, sbar, T = np.array([0.5, 0.25, 0.25]), 1.3, 0.07
    sol = solve_deep_large_p(_spec(name, (8, 4, 4), T, sbar), layers, sigmas=(0.8, 1.4, 1.1)[:layers])
    assert sol.converged and sol.residual < 1e-10
    np.testing.assert_allclose(sol.outputs, np.diag(sbar**2 * rho / (T + sbar**2 * rho)), atol=1e-9)
    np.testing.assert_allclose(sol.t, np.diag(1.0 / (T + sbar**2 * rho)), atol=1e-9)
    np.testing.assert_allclose(sol.readout_moment, np.diag((sbar**2 * rho / (T + sbar**2 * rho)) ** 2), atol=1e-9)
    np.testing.assert_allclose(sol.kernel_blocks[-1], np.eye(3), atol=1e-9)
    assert all(abs(abs(v) - 1.0) < 1e-12 for b in sol.branches[-1] for v in b["pattern"])


def test_saturated_solution_minimises_g_inf_and_satisfies_kkt():
    """normcdf, classes 32,16,16, T = 0.05 (paper regime): the branches are global maxima of S over all
    2^m patterns with equal heights, P_γ >= 0, Σ P_γ = 1, f = y − T t to 1e-10, and G∞ (convex) does
    not decrease under 400 random perturbations of t (|δt| up to 1e-2)."""
    rho, sbar, T = np.array([0.5, 0.25, 0.25]), 1.0, 0.05
    r = solve_saturated(rho, sbar, T, (0.0, 1.0), False)
    assert r["converged"] and r["global"]
    assert np.all(r["P"] >= -1e-12) and r["P"].sum() == pytest.approx(1.0, abs=1e-12)
    Q, _ = pattern_values(r["t"], r["B"], rho, sbar)
    assert np.ptp(Q) < 1e-10 and Q.max() == pytest.approx(r["Q_max"], abs=1e-12)
    f = np.einsum("g,gc,gr->cr", r["P"], r["B"], r["A"])
    assert np.max(np.abs(f + T * r["t"] - np.eye(3))) < 1e-10
    from theory.deep_large_p import vertices

    allB = vertices((0.0, 1.0), 3, False)

    def G(t):
        return pattern_values(t, allB, rho, sbar)[0].max() - rho @ np.diag(t) + 0.5 * T * rho @ np.sum(t * t, 1)

    g0 = G(r["t"])
    assert g0 == pytest.approx(r["free_energy"], abs=1e-12)
    rng = np.random.default_rng(0)
    for scale in (1e-2, 1e-4):
        d = rng.standard_normal((200, 3, 3)) * scale
        assert min(G(r["t"] + x) for x in d) >= g0 - 1e-13


@pytest.mark.parametrize("layers", [2, 3])
def test_paper_regime_converges_with_sharp_codes_in_the_last_layer(layers):
    """normcdf, classes 32,16,16, T = 0.05, σ̄_a = 1: converges (residual < 1e-10); last layer: exactly
    binary (0/1) class activations, kernel diagonal = blocks diagonal (δ_L = 0), the two-class codes
    110, 101, 011 carry > 90 % of the neurons; lower layers: prior kernels and code 111 only
    (class-uninformative at leading order). Same readout solution for L = 2 and 3."""
    sol = solve_deep_large_p(_spec("normcdf", (32, 16, 16), 0.05), layers, code_neurons=2000)
    assert sol.converged and sol.residual < 1e-10 and sol.stable
    top = sol.code_fractions[-1]
    assert sum(top.values()) == pytest.approx(1.0)
    assert top.get("110", 0) + top.get("101", 0) + top.get("011", 0) > 0.9
    assert all(set(b["pattern"]) <= {0.0, 1.0} for b in sol.branches[-1])
    np.testing.assert_allclose(sol.kernel_diagonals[-1], np.diag(sol.kernel_blocks[-1]), atol=1e-14)
    priors, _ = prior_kernels("normcdf", sol.sigmas[:-1])
    for ell in range(layers - 1):
        assert sol.code_fractions[ell] == {"111": 1.0}
        np.testing.assert_allclose(sol.kernel_blocks[ell], priors[ell][1], atol=1e-14)
    assert priors[0][1] == pytest.approx(0.25, abs=1e-14)  # (Eφ)² for layer 1 with K_0 = I
    other = solve_deep_large_p(_spec("normcdf", (32, 16, 16), 0.05), 5 - layers, code_neurons=0)
    np.testing.assert_allclose(other.outputs, sol.outputs, atol=1e-10)
    out = json.loads(json.dumps(sol.to_json()))
    assert len(out["layers"]) == layers and "kernel_blocks" in out["layers"][0] and out["converged"]


def test_prior_span_solution_is_the_common_mode_branch():
    """patterns='prior-span' (only 000 and 111 reachable, normcdf): one occupied branch, so f has
    identical rows f_c = a_111 (rank one), f = y − T t to 1e-10, and its G∞ lies below the full
    solution's (a constrained minimum: fewer patterns, smaller max_b Q_b at every t)."""
    spec = _spec("normcdf", (16, 8, 8), 0.3)
    con = solve_deep_large_p(spec, 2, patterns="prior-span", code_neurons=0)
    full = solve_deep_large_p(spec, 2, code_neurons=0)
    assert con.converged and full.converged
    assert np.linalg.matrix_rank(con.outputs, tol=1e-9) == 1
    np.testing.assert_allclose(con.outputs + 0.3 * con.t, np.eye(3), atol=1e-10)
    assert con.free_energy < full.free_energy - 0.05


def test_saturation_levels_and_bad_input():
    assert saturation_levels("normcdf") == (0.0, 1.0, False)
    assert saturation_levels("erf")[:2] == (-1.0, 1.0) and saturation_levels("erf")[2]
    with pytest.raises(SpecError, match="ReLU"):
        solve_deep_large_p(_spec("relu", (4, 2, 2), 0.1), 2)
    with pytest.raises(SpecError, match="temperature"):
        solve_deep_large_p(_spec("normcdf", (4, 2, 2), 0.0), 2)
    with pytest.raises(SpecError, match="patterns"):
        solve_deep_large_p(_spec("normcdf", (4, 2, 2), 0.1), 2, patterns="some")
    with pytest.raises(SpecError, match="sigma_a_bar"):
        solve_deep_large_p(_spec("normcdf", (4, 2, 2), 0.1), 2, sigma_a_bar=-1.0)


# ----------------------------------------------------------------------------- linear φ
@pytest.mark.parametrize("layers, T", [(2, 0.05), (2, 0.5), (3, 0.5)])
def test_linear_rich_root_asymptotics_match_deep_linear_closed_form(layers, T):
    """Linear φ, L >= 2, σ_a² = σ̄²/P: the deep linear closed form (solvers.deep.linear) at P = 2^12..2^20
    against the leading-order rich root: ε_c = 1 − x_c, f_cc, P U_cc and the last-layer class block agree
    to a relative error below 3 × the predicted correction order ε^{(L−1)/2} + ε, and that error falls
    with P (f → 1: no finite P → ∞ limit of U, kernels)."""
    from solvers.deep.linear import solve_deep_linear_classes

    errs = []
    for mult in (1024, 16384, 262144):
        sizes = (2 * mult, mult, mult)
        spec = _spec("linear", sizes, T)
        ref = solve_deep_linear_classes(spec, layers)
        sol = solve_deep_large_p(spec, layers)
        la = linear_asymptotics(np.array([0.5, 0.25, 0.25]), 1.0, sol.sigmas, T, sum(sizes))
        rel = max(np.max(np.abs(la["eps"] / (1 - ref.x) - 1)),
                  np.max(np.abs(np.diag(sol.outputs) - np.diag(ref.outputs))),
                  np.max(np.abs(np.diag(sol.readout_moment) / np.diag(ref.readout_moment) - 1)),
                  np.max(np.abs(np.diag(sol.kernel_blocks[-1]) / np.diag(ref.blocks[-1]) - 1)))
        assert rel < 3 * la["correction_order"], (mult, rel, la["correction_order"])
        errs.append(rel)
    assert errs[0] > errs[1] > errs[2]


# ----------------------------------------------------------------------------- finite P (slow)
@pytest.mark.slow
def test_finite_p_deep_solver_approaches_the_prior_span_branch():
    """normcdf, L = 2, T = 0.3, σ̄_a = 1, classes (2k, k, k), P = 8, 16, 32: the finite-P class-block
    solver (solvers.deep.nonlinear) sits on the common-mode branch (f with equal rows, last-layer code
    111) and approaches the saturated prior-span solution (f rows 0.3846, 0.1923, 0.1923; last-layer
    kernel → 1): max |Δf| falls at every doubling of P, with local exponent >= 0.3 (derivation:
    pre-asymptotic at these P; measured 8: 0.101, 16: 0.078, 32: 0.054, 64: 0.034), and the last-layer within-class
    variance δ_2 falls. The full P → ∞ solution (class-contrast codes) is NOT reached at these P."""
    from solvers.deep.nonlinear import solve_deep_nonlinear

    lim = solve_deep_large_p(_spec("normcdf", (16, 8, 8), 0.3), 2, patterns="prior-span", code_neurons=0)
    df, dl = [], []
    for k in (2, 4, 8):
        s = solve_deep_nonlinear(_spec("normcdf", (2 * k, k, k), 0.3), 2)
        assert s.converged
        df.append(np.max(np.abs(s.outputs - lim.outputs)))
        dl.append(np.max(s.kernel_diagonals[-1] - np.diag(s.kernel_blocks[-1])))
    assert df[0] > df[1] > df[2] and all(math.log2(a / b) >= 0.3 for a, b in zip(df, df[1:])), df
    assert dl[0] > dl[2], dl


@pytest.mark.parametrize("name", ["normcdf", "erf", "tanh"])
def test_last_layer_cumulant_is_monotone_in_xi_and_saturates_to_psi_inf(name):
    """The finite-P 1-D cumulant of the readout layer, ζ(ξ, g) = log E_z e^{g φ(ξ + s z)}
    (theory.deep_blocks.tilted_moments), is strictly monotone in ξ with the sign of g (no interior
    maximiser: the reason the last layer saturates) and tends to ψ_∞(g) = max(φ_- g, φ_+ g) as
    |ξ| → ∞ (to 1e-6 at |ξ| = 12, s = 0.8)."""
    from theory.deep_blocks import OneD, tilted_moments

    lo, hi, _ = saturation_levels(name)
    oned = OneD.for_nonlinearity(name, 60)
    xi = np.linspace(-12.0, 12.0, 241)[:, None]
    for g in (-0.9, 0.4, 1.7):
        zeta = tilted_moments(oned, xi, np.full_like(xi, g), np.array([0.8]), np.zeros(1))[0][:, 0]
        dz = np.sign(g) * np.diff(zeta)
        mid = np.abs(xi[1:, 0]) <= 4.0
        assert np.all(dz >= -1e-14) and np.all(dz[mid] > 0)  # flat only where saturated to rounding
        assert abs(max(zeta[0], zeta[-1]) - max(lo * g, hi * g)) < 1e-6


@pytest.mark.slow
def test_sampled_deep_networks_approach_the_saturated_common_mode_branch():
    """Sampled deep networks (validation.deep.run_deep_chain: collapsed MALA, readout integrated out,
    2 chains × 400 sweeps, N = 400), normcdf, L = 2, T = 0.3, σ̄_a = 1, classes (2k, k, k), P = 64, 128:
    against the saturated prior-span solution (f rows 0.3846, 0.1923, 0.1923; last-layer kernel 1;
    layer-1 kernel at its prior ¼):
    * f: |Δf| <= 4/P + 4 MCSE + 4/N (measured 2.2/P, 2.5/P, 2.7/P, 3.0/P at P = 64, 128, 256, 512), and it falls;
    * last layer: kernel blocks and diagonal rise towards 1 and δ_2 = diag − block falls (measured
      1 − k_L: 0.28, 0.18, 0.11, 0.06 at P = 64, 128, 256, 512: no clean 1/P bound yet);
    * layer 1: |k_1 − ¼| <= 0.03 (measured 0.022, 0.020, 0.016, 0.012 at P = 64, 128, 256, 512: a slowly
      vanishing O(log P / P)-type learned common mode, pre-asymptotic);
    * every code of the sampled last layer is 111 (> 99 %); f's split-R̂ < 1.1 (lower-layer kernels
      drift, R̂ up to 1.3, as THEORY §7 expects for sigmoidal networks below the last layer).
    The full P → ∞ solution (class-contrast codes 110/101/011, f_00 = 0.52) is NOT reached by P = 512
    at this T (estimated crossover P ~ 10³: contrast cost ~ √(P log P) against the gain 0.19 P)."""
    from validation.deep import combine_chains, run_deep_chain

    N = 400
    lim = solve_deep_large_p(_spec("normcdf", (16, 8, 8), 0.3), 2, patterns="prior-span", code_neurons=0)
    gaps, top = [], []
    for k in (16, 32):
        spec = _spec("normcdf", (2 * k, k, k), 0.3)
        P = 4 * k
        runs = [run_deep_chain(spec, N, 2, 400, 100, seed=s) for s in range(2)]
        c = combine_chains(runs, 3, 2)
        f, fse = c["mean"]["outputs"], c["mcse"]["outputs"]
        assert np.max(c["rhat"]["outputs"]) < 1.1
        gap = np.abs(f - lim.outputs)
        assert np.all(gap <= 4.0 / P + 4 * fse + 4.0 / N), (P, gap.max())
        gaps.append(gap.max())
        l1, l2 = c["mean"]["layers"]
        assert np.max(np.abs(l1["kernel_blocks"] - 0.25)) <= 0.03
        top.append((l2["kernel_blocks"].min(), np.max(l2["kernel_diagonal"] - np.diag(l2["kernel_blocks"]))))
        assert all(r["code_fractions"][1].get("111", 0.0) > 0.99 for r in runs)
    assert gaps[1] < gaps[0]
    assert top[1][0] > top[0][0] and top[1][1] < top[0][1]
