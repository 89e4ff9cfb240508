"""The condensate of any hidden layer ℓ < L as a KKT unknown (solvers.deep.hidden_condensate, issue 17): at ℓ = 1 the
generalised domain and terms are exactly the first layer's; a middle layer's domain function is the growth rate of
its y-integrand, its derivatives are those of the tracked maximum (Danskin, central differences), and the
multiplier's residual terms in the deep equations at L = 3 are those derivatives."""
import numpy as np
import pytest

from solvers.deep.complementarity import KKTModel
from solvers.deep.hidden_condensate import hidden_fields, hidden_terms
from solvers.deep.kkt import _first_layer_sums, tilted_first_layer
from solvers.deep.model import DeepModel
from solvers.deep.options import DeepOptions
from theory.deep_blocks import Proposal, tril_pack
from theory.deep_condensate import hidden_gradients
from theory.deep_layer import layer_growth
from theory.deep_tilted import OneD
from theory.spec import ModelSpec

P = np.array([4.0, 2.0, 2.0])


def _tilt(scale=1.0):
    G = np.random.default_rng(1).standard_normal((3, 3)) * 0.3 + np.diag([0.5, 0.3, 0.3])
    return scale * G @ G.T, np.array([0.1, -0.05, 0.2])


def _middle(scale):
    """A middle layer's (k̃, δ̃, R_in, δ_in): a random tilt and a class-block input kernel."""
    kt, dt = _tilt(scale)
    R = np.linalg.cholesky(np.array([[0.6, 0.2, 0.2], [0.2, 0.7, 0.15], [0.2, 0.15, 0.7]]))
    return kt, dt, R, np.array([0.4, 0.3, 0.35])


def test_first_layer_is_the_hidden_layer_without_input_kernel():
    """ℓ = 1 (K_0 = I: C = 0, s = σ): the generalised domain's maximisers and q are the first layer's
    (solvers.deep.kkt.tilted_first_layer) with w = 0, and its kernel terms are _first_layer_sums' to rounding."""
    kt, dt = _tilt()
    B, A, dirs, q = tilted_first_layer(kt, dt, 1.0, P)
    fields = hidden_fields(kt, dt, 1.0)
    dom = fields.domain(P)
    assert len(q) == 2 and np.allclose(dom.q, q, rtol=1e-12)
    assert np.allclose(dom.directions[:, :3], dirs, atol=1e-10) and np.all(dom.directions[:, 3:] == 0.0)
    mu = np.array([0.7, 1.4])
    dk, dd = _first_layer_sums(B, A, 1.0, P, dirs, q, mu)
    dk2, dd2, kt_in, dt_in = hidden_terms(fields, P, dom.directions, mu)
    assert kt_in is None and dt_in is None
    assert np.max(np.abs(dk2 - dk)) < 1e-14 and np.max(np.abs(dd2 - dd)) < 1e-14


def test_middle_layer_domain_and_its_derivatives():
    """A middle layer (input kernel and diagonal tilt δ̃ ≠ 0): q of the polished maximiser equals 2 × the growth rate
    of its y-integrand (theory.deep_layer.layer_growth, an independent hill climb: a lower bound within 1e-5), and
    ∂q/∂k̃, ∂q/∂δ̃, ∂q/∂k_in, ∂q/∂δ_in equal central differences of the tracked maximum (off-diagonal entries
    counted once each way)."""
    kt, dt, R, delta_in = _middle(0.35)
    fields = hidden_fields(kt, dt, 1.0, R, delta_in)
    dom = fields.domain(P)
    q_climb = layer_growth(OneD.for_nonlinearity("relu"), P, 1.0, R_in=R, delta_in=delta_in, kt=kt, dt=dt)
    assert q_climb - 1e-5 < dom.q[0] and dom.q[0] >= q_climb
    y = dom.directions[0]
    St, gt, S, g = hidden_gradients(y, *fields.args(), P, 1.0, delta_in)
    h = 1e-6

    def q_at(kt_, dt_, k_, d_):
        f = hidden_fields(kt_, dt_, 1.0, np.linalg.cholesky(k_), d_)
        return f.domain(P, previous=y[None, :]).q[0]

    k = R @ R.T
    for c in range(3):
        for d in range(c + 1):
            E = np.zeros((3, 3))
            E[c, d] = E[d, c] = h
            w = 2.0 if c != d else 1.0
            fd_t = (q_at(kt + E, dt, k, delta_in) - q_at(kt - E, dt, k, delta_in)) / (2 * h)
            fd_k = (q_at(kt, dt, k + E, delta_in) - q_at(kt, dt, k - E, delta_in)) / (2 * h)
            assert fd_t == pytest.approx(w * St[c, d], abs=1e-7) and fd_k == pytest.approx(w * S[c, d], abs=1e-7)
        e = h * np.eye(3)[c]
        fd_dt = (q_at(kt, dt + e, k, delta_in) - q_at(kt, dt - e, k, delta_in)) / (2 * h)
        fd_d = (q_at(kt, dt, k, delta_in + e) - q_at(kt, dt, k, delta_in - e)) / (2 * h)
        assert fd_dt == pytest.approx(gt[c], abs=1e-7) and fd_d == pytest.approx(g[c], abs=1e-7)


def test_middle_layer_multiplier_terms_in_the_deep_equations():
    """L = 3, classes 4,2,2 (Sobol' rules; r is affine in μ whatever the rule): the residual's derivative in the
    middle layer's multiplier μ_2 is (dq_2/dh)/(P_c P_d) in the off-diagonal k_2 block, h moving k̃_cd and k̃_dc
    together (Danskin, central differences of the tracked maximum; the bulk's own convention, d log Z_2/dh =
    P_c P_d k_cd), and the tracked q_2 is the growth of layer 2's y-integrand."""
    spec = ModelSpec(nonlinearity="relu", class_sizes=(4, 2, 2), sigma_a=0.5, temperature=0.5)
    opt = DeepOptions(integrator="qmc", qmc_log2n=7)
    model = DeepModel(spec, (1.0, 1.0, 1.0), opt)
    x = model.pack(0.2 * (2.0 * np.eye(3) - 0.3), [(0.6 * np.eye(3) + 0.2, np.full(3, 0.3)),
                                                  (0.8 * np.eye(3) + 0.3, np.full(3, 0.4))])
    props = [Proposal.standard(d) for d in model.dims]
    ev = model.evaluate(x, props)
    up, (R, delta) = ev["layers"][2], model.unpack(x)[1][0]
    fields = hidden_fields(up.kt_in, up.dt_in, 1.0, R, delta)
    dom = fields.domain(model.sizes)
    assert 0.5 < dom.q[0] < 1.0
    q2 = layer_growth(model.oned, model.sizes, 1.0, R_in=R, delta_in=delta, kt=up.kt_in, dt=up.dt_in)
    assert dom.q[0] == pytest.approx(q2, abs=1e-5)
    kkt = KKTModel(spec, (1.0, 1.0, 1.0), opt, np.zeros((0, 6)), np.zeros((0, 3)), 0.01, truncated=False, hidden={2: dom.directions[:1]})
    x0 = kkt.with_multipliers(x, [0.0])
    e0, e1 = kkt.evaluate(x0, props), kkt.evaluate(kkt.with_multipliers(x, [0.01]), props)
    assert e0["q"][0] == pytest.approx(dom.q[0], abs=1e-12)
    k2 = slice(kkt.nt + kkt.ntri + 3, kkt.nt + 2 * kkt.ntri + 3)
    dr = (e1["residual"][k2] - e0["residual"][k2]) / 0.01
    y, h, dk = dom.directions[0], 1e-6, np.zeros((3, 3))
    for c, d in [(0, 1), (0, 2), (1, 2)]:
        E = np.zeros((3, 3))
        E[c, d] = E[d, c] = h
        qp, qm = (hidden_fields(up.kt_in + s * E, up.dt_in, 1.0, R, delta).domain(model.sizes, y[None]).q[0]
                  for s in (1, -1))
        dk[c, d] = dk[d, c] = (qp - qm) / (2 * h) / (model.sizes[c] * model.sizes[d])
    off = tril_pack(dk) != 0.0
    assert off.sum() == 3  # a maximiser on every class: every off-diagonal entry is checked
    assert np.allclose(dr[off], tril_pack(dk)[off], rtol=1e-5, atol=1e-9)
