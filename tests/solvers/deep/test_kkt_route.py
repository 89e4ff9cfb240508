"""The deep ReLU saddle as a converged KKT point (solvers.deep.kkt_route, class_symmetry, kkt_stability; issue 17):
the symmetric subspace of equal-size classes solves the full equations where the integration is exact (deep linear,
against the closed form), the stability on the active constraints' tangent space (a quadratic program with a
closed-form answer; with no active constraint it is the unconstrained criterion), and (slow) the paper's regime
through the CLI at T = 0.05 and 0.02 against sampled networks."""
import json
import subprocess
import sys

import numpy as np
import pytest

from solvers.deep.class_symmetry import SymmetricModel, class_permutations
from solvers.deep.complementarity import KKTModel
from solvers.deep.kkt import tilted_first_layer
from solvers.deep.kkt_route import symmetrised_observables
from solvers.deep.kkt_stability import constrained_stability, tangent_space_hessian
from solvers.deep.linear import solve_deep_linear_classes
from solvers.deep.model import DeepModel, prior_start
from solvers.deep.newton import SolveLog, solve_at
from solvers.deep.options import DeepOptions
from solvers.deep.saddle import stability
from theory.deep_blocks import Proposal
from theory.spec import ModelSpec


def test_symmetric_subspace_solves_the_deep_linear_closed_form():
    """Linear φ, L = 2, classes 4,2,2 (Gauss–Hermite exact once the proposals match): Newton on the 2↔3-symmetric
    unknowns (11 of 18 coordinates) converges to a point whose FULL residual vanishes (the equations are equivariant)
    and whose f, U and kernels are the deep linear closed form's."""
    spec = ModelSpec(nonlinearity="linear", class_sizes=(4, 2, 2), temperature=0.3, sigma_w=1.1, sigma_a=0.9)
    model = DeepModel(spec, (1.1, 1.1), DeepOptions(code_neurons=0))
    assert [list(p) for p in class_permutations(model.sizes)] == [[0, 1, 2], [0, 2, 1]]
    sym = SymmetricModel(model)
    assert (sym.n, sym.nw) == (11, 18) and np.allclose(sym.projector @ sym.projector, sym.projector)
    x0 = prior_start(model, spec.temperature)
    out = solve_at(sym, sym.reduce(x0), model.initial_proposals(x0, 1.0), SolveLog(), "symmetric")
    assert out is not None
    x = sym.full(out[0])
    ev = model.evaluate(x, out[4])
    assert np.max(np.abs(ev["residual"])) < 1e-8 and out[1]["asymmetry"] < 1e-8
    ref = solve_deep_linear_classes(spec, 2, (1.1, 1.1))
    assert np.allclose(ev["layers"][-1].outputs, ref.outputs, atol=1e-8)
    assert np.allclose(ev["layers"][-1].readout_moment, ref.readout_moment, atol=1e-8)
    assert np.allclose(np.diag(ev["layers"][0].k) + ev["layers"][0].delta, ref.layer_observables(1).kernel_diagonal, atol=1e-8)
    # the group average of the observables is a projection and leaves the symmetric solution unchanged
    obs = ev["obs"]
    avg = symmetrised_observables(obs, 3, 2, class_permutations(model.sizes))
    assert np.allclose(avg, obs, atol=1e-8)
    assert np.allclose(symmetrised_observables(avg, 3, 2, class_permutations(model.sizes)), avg, atol=1e-14)


def test_tangent_space_hessian_of_a_quadratic_program():
    """S(C, K) = ½CᵀAC + CᵀBK + ½KᵀDK with the active linear constraint aᵀC + bᵀK = 1: Ψ(K) = min_C S on the
    constraint has the Hessian D − Nᵀ M⁻¹ N, M = [[A, a], [aᵀ, 0]], N = [[B], [bᵀ]] (the bordered KKT matrix), which
    the tangent-space reduction reproduces; without the constraint it is D − Bᵀ A⁻¹ B (the unconstrained criterion)."""
    rng = np.random.default_rng(3)
    nc, nk = 5, 3
    X = rng.standard_normal((nc, nc))
    A, B = X @ X.T + 0.5 * np.eye(nc), rng.standard_normal((nc, nk))
    Y = rng.standard_normal((nk, nk))
    D = -(Y @ Y.T) - 2.0 * np.eye(nk)
    a, b = rng.standard_normal(nc), rng.standard_normal(nk)
    H = np.block([[A, B], [B.T, D]])
    M = np.block([[A, a[:, None]], [a[None, :], np.zeros((1, 1))]])
    N = np.vstack([B, b[None, :]])
    assert np.allclose(tangent_space_hessian(H, np.concatenate([a, b])[None, :], nc), D - N.T @ np.linalg.solve(M, N),
                       atol=1e-10)
    assert np.allclose(tangent_space_hessian(H, np.zeros((0, nc + nk)), nc), D - B.T @ np.linalg.solve(A, B),
                       atol=1e-10)
    assert tangent_space_hessian(H, np.vstack([np.concatenate([a, b])] * 2), nc) is None  # dependent constraints


def test_constrained_stability_without_active_constraints_is_the_unconstrained_criterion():
    """ReLU, L = 2, classes 4,2,2, a point where the first layer's maximiser has q ≈ 0.72: with μ = 0 (δ = 0:
    inactive) the Lagrangian is S, and the tangent-space Hessian's eigenvalues are those of
    solvers.deep.saddle.stability; the record reports the margins of the inactive constraints."""
    spec = ModelSpec(nonlinearity="relu", class_sizes=(4, 2, 2), sigma_a=0.5, temperature=0.5)
    model = DeepModel(spec, (1.0, 1.0), DeepOptions(integrator="qmc", qmc_log2n=5))
    x = model.pack(0.3 * (2.0 * np.eye(3) - 0.3), [(0.6 * np.eye(3) + 0.2, np.full(3, 0.3))])
    props = [Proposal.standard(d) for d in model.dims]
    up = model.evaluate(x, props)["layers"][1]
    first = tilted_first_layer(up.kt_in, up.dt_in, 1.0, model.sizes)[2][:1]  # (the readout's tracking is slower)
    kkt = KKTModel(spec, (1.0, 1.0), model.opt, np.zeros((0, 6)), first, 0.0)
    xk = kkt.with_multipliers(x, [0.0])
    ev = kkt.evaluate(xk, props)
    rec = constrained_stability(kkt, xk, ev, props)
    ref = stability(model, x, model.evaluate(x, props), props)
    assert rec["active"] == [] and rec["strictly_complementary"]
    assert rec["min_inactive_margin"] == pytest.approx(float(np.min(1.0 - ev["q"])), abs=1e-12)
    assert np.allclose(rec["eigenvalues"], ref, rtol=1e-8, atol=1e-8)


# ----------------------------------------------------------------------------- the paper's regime (slow)
def _solve_cli(T):
    cmd = [sys.executable, "-m", "codingschemes", "solve", "--layers", "2", "--nonlinearity", "relu",
           "--class-sizes", "32,16,16", "--sigma-a", "0.125", "--temperature", str(T), "--format", "json",
           "--quiet", "--no-plot"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    return out.returncode, json.loads(out.stdout)


def _assert_paper_saddle(res, f_sampled):
    """Converged, stable and strictly complementary; f_22 = f_33 and the layers' 2↔3 blocks equal; f_cc within the
    error bound (plus 1e-3, the sampled networks' finite-N spread) of ``f_sampled``; the first layer's three
    one-class outliers carry ≈ 0.22 / 0.45 / 0.45 of its kernel diagonal; per-layer code fractions present."""
    assert res["converged"] is True and res["stable"] is True and res["error_estimate"] <= 0.01
    f, err = np.array(res["outputs"]), np.array(res["errors"]["outputs"])
    assert f[1, 1] == pytest.approx(f[2, 2], abs=1e-12)
    for layer in res["layers"]:
        d, k = np.array(layer["kernel_diagonal"]), np.array(layer["kernel_blocks"])
        assert d[1] == pytest.approx(d[2], abs=1e-12) and k[1, 1] == pytest.approx(k[2, 2], abs=1e-12)
        assert layer["code_fractions"]
    for c, (lo, hi) in enumerate(f_sampled):
        assert lo - err[c, c] - 1e-3 <= f[c, c] <= hi + err[c, c] + 1e-3
    cond = res["condensate"]
    assert cond["kind"] == "kkt" and cond["stability"]["strictly_complementary"]
    assert cond["stability"]["min_active_multiplier"] > 0.0
    shares = {o["code"]: max(o["kernel_diagonal_share"]) for o in cond["first_layer"]}
    assert set(shares) == {"100", "010", "001"}
    assert shares["100"] == pytest.approx(0.22, abs=0.02)
    assert shares["010"] == pytest.approx(0.45, abs=0.02) and shares["001"] == pytest.approx(0.45, abs=0.02)
    assert len(cond["mass_range"][0]) == len(cond["codes"])


@pytest.mark.slow
def test_paper_regime_relu_two_layers_converges_at_the_kkt_point():
    """`codingschemes solve --layers 2 --nonlinearity relu --class-sizes 32,16,16 --sigma-a 0.125 --temperature
    0.05`: exit 0 at the KKT point with both condensates (solvers.deep.kkt_route); f_cc against sampled networks
    (N = 100–400, docs/devlog.md deeprelu11 / dval6): 0.980–0.981 / 0.969–0.970 / 0.969–0.970."""
    code, res = _solve_cli(0.05)
    assert code == 0
    _assert_paper_saddle(res, [(0.980, 0.981), (0.969, 0.970), (0.969, 0.970)])


@pytest.mark.slow
def test_paper_regime_relu_two_layers_at_t_002_by_continuation_in_t():
    """The same at T = 0.02, by continuation in T from the KKT point at T_w = 2.5 T = 0.05. No sampled reference
    at T = 0.02: f_cc within the bounds the T = 0.05 point and T → 0 set (f_cc = 1 − T t_cc grows as T falls),
    0.985–0.999 / 0.975–0.999, and the first layer's outliers as at T = 0.05."""
    code, res = _solve_cli(0.02)
    assert code == 0
    _assert_paper_saddle(res, [(0.985, 0.999), (0.975, 0.999), (0.975, 0.999)])
