"""Class symmetry of a KKT model with condensates in every hidden layer (solvers.deep.class_symmetry,
layer_symmetry; issue 17): the multipliers are permuted within each domain (the same code occurs in several layers),
the KKT residual is equivariant under that action, and a code whose image is missing drops the permutation."""
import json
from pathlib import Path

import numpy as np
import pytest

from solvers.deep.class_symmetry import SymmetricModel, maximiser_codes, multiplier_images
from solvers.deep.complementarity import KKTModel
from solvers.deep.options import DeepOptions
from theory.deep_rules import Proposal
from theory.spec import ModelSpec

ONE_CLASS = [(0,), (1,), (2,)]
SWAP = np.array([0, 2, 1])


def _kkt(L, hidden=0):
    """A ReLU KKT model (classes 4,2,2) with three one-class maximisers per domain (positions irrelevant here)."""
    spec = ModelSpec(nonlinearity="relu", class_sizes=(4, 2, 2), temperature=0.05, sigma_a=0.5)
    eye = np.eye(3)
    return KKTModel(spec, (1.0,) * L, DeepOptions(code_neurons=0), np.hstack([eye, eye]), eye, 0.003,
                    hidden={2: np.hstack([eye, eye])} if hidden else None)


def test_images_are_looked_up_within_each_domain():
    """Codes 100, 001, 010 in the first layer and 100, 010, 001 in a middle layer: the 2↔3 exchange maps each
    multiplier to its own domain's image; pooled into one domain the code 010 has two hits and the permutation
    would be dropped."""
    blocks = [ONE_CLASS, [(0,), (2,), (1,)], ONE_CLASS]
    assert multiplier_images(blocks, SWAP).tolist() == [0, 2, 1, 3, 5, 4, 6, 8, 7]
    assert multiplier_images([sum(blocks, [])], SWAP) is None
    assert multiplier_images([ONE_CLASS, ONE_CLASS, [(0,), (0, 1)]], SWAP) is None  # 110 without 101


def test_residual_is_equivariant_with_the_images_of_each_domain():
    """ReLU, L = 2, classes 4,2,2, the exactly class-symmetric rule, a 2↔3-invariant point (t and k_1 with
    off-diagonal blocks, the multipliers of image maximisers equal) and skewed proposals; the first layer's
    maximisers are listed as 100, 001, 010 and the readout's as 100, 010, 001: the full KKT residual (f, kernels,
    complementarity) lies in the symmetric subspace to rounding with the images looked up per domain, and not with
    the first layer's codes mis-assigned to its maximisers (read in reverse order)."""
    spec = ModelSpec(nonlinearity="relu", class_sizes=(4, 2, 2), sigma_a=0.5, temperature=0.5)
    t = 0.7 * np.eye(3) - 0.2
    t[1, 2] = t[2, 1] = -0.25
    k = 0.6 * np.eye(3) + 0.2
    k[1, 2] = k[2, 1] = 0.15
    eye = np.eye(3)
    model = KKTModel(spec, (1.0, 1.0), DeepOptions(integrator="qmc", qmc_log2n=6, symmetric_rule=True,
                                                   code_neurons=0), np.hstack([eye, eye]), eye[[0, 2, 1]], 0.003)
    rng = np.random.default_rng(1)
    props = [Proposal(0.2 * rng.standard_normal(d), 1.1 * np.eye(d) + 0.05 * np.tril(rng.standard_normal((d, d))))
             for d in model.dims]
    x = model.with_multipliers(model.pack(t, [(k, np.array([0.3, 0.35, 0.35]))]), 0.1 * np.arange(1, 7))
    codes = maximiser_codes(model, x, props)
    assert codes == [ONE_CLASS, [(0,), (2,), (1,)]]
    asym = {}
    for name, c in (("per domain", codes), ("mis-assigned", [codes[0], codes[1][::-1]])):
        sym = SymmetricModel(model, c)
        asym[name] = sym.evaluate(sym.reduce(x), props)["asymmetry"]
    assert asym["per domain"] < 1e-12 and asym["mis-assigned"] > 1e-3


def test_three_layers_average_each_multiplier_with_its_image_in_its_own_layer():
    """L = 3: the group average of a unit multiplier of the middle layer's 010 maximiser is ½ on it and ½ on the
    middle layer's 001, nothing on the first layer's 010; the projector is symmetric and idempotent."""
    model = _kkt(3, hidden=1)
    sym = SymmetricModel(model, [ONE_CLASS, ONE_CLASS, ONE_CLASS])
    assert len(sym.imposed) == 2
    Pj = sym.projector
    assert np.allclose(Pj, Pj.T) and np.allclose(Pj @ Pj, Pj, atol=1e-12)
    w = np.zeros(sym.nw)
    n0 = sym.nw - 9  # the multipliers: readout, first layer, middle layer, three each
    w[n0 + 7] = 1.0
    avg = Pj @ w
    assert np.allclose(avg[n0:], [0, 0, 0, 0, 0, 0, 0, 0.5, 0.5], atol=1e-12)
    assert np.allclose(avg[:n0], 0.0)


@pytest.mark.slow
def test_three_layer_relu_kkt_point_in_the_papers_regime():
    """ReLU, L = 3, classes 32,16,16, σ_a = 0.125, T = 0.05, δ = 0: the point the route of
    solvers.deep.three_layer_route reached (benchmarks/deep_relu_routes.py kkt --layers 3; stored with its proposals
    as a start) is re-solved by the current equations (Newton from it, proposals held) and is a stable, strictly
    complementary KKT point: the first hidden layer condenses along its three one-class directions (μ_1 > 0.5 each),
    whose outliers carry a share of each class's K_1 diagonal, the readout does not (μ = 0, margins > 1e-3), and
    the kernels grow with depth. The 2↔3 symmetry is NOT asserted beyond f: the middle layer's condensate sits on
    class 3 alone (docs/devlog.md, relu3l2)."""
    from solvers.deep.kkt_stability import constrained_stability
    from solvers.deep.newton import SolveLog
    from solvers.deep.three_layer_route import held_solve, layer_condensates

    with open(Path(__file__).parent / "data" / "relu3_kkt_p64_t005.json") as fh:
        st = json.load(fh)
    spec = ModelSpec(nonlinearity="relu", sigma_a=0.125, temperature=st["T"], class_sizes=(32, 16, 16))
    opt = DeepOptions(search=False, code_neurons=0, qmc_log2n=13, qmc_log2n_max=13)
    model = KKTModel(spec, (1.0, 1.0, 1.0), opt, np.array(st["last"]), np.array(st["first"]), st["delta"],
                     truncated=True, hidden={int(k): np.array(v) for k, v in st["hidden"].items()})
    props = [Proposal(np.array(p["mean"]), np.array(p["chol"])) for p in st["proposals"]]
    out = held_solve(model, np.array(st["x"]), props, SolveLog(), "stored point", tol=1e-9, maxiter=25)
    assert out is not None
    x = out[0]
    ev = model.safe_eval(x, props)
    assert np.max(np.abs(ev["residual"])) < 1e-8
    c = layer_condensates(model, x, props)
    f = np.array(c["f_cc"])
    assert np.all(f > 0.98) and abs(f[1] - f[2]) < 1e-3
    diag = [np.array(k) for k in c["kernel_diagonals"]]
    assert np.all(diag[1] > 2 * diag[0]) and np.all(diag[2] > 3 * diag[1])
    first = c["layer 1"]
    assert sorted(first["codes"]) == ["001", "010", "100"] and min(first["multipliers"]) > 0.5
    shares = np.max(np.array(first["kernel_diagonal_shares"]), axis=0)
    assert np.all(shares > 0.05) and np.all(shares < 0.5)
    assert np.max(c["readout"]["multipliers"]) < 1e-6 and np.min(c["readout"]["margins"]) > 1e-3
    stab = constrained_stability(model, x, ev, props)
    assert stab["stable"] and stab["strictly_complementary"], stab["message"]
