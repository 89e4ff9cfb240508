"""The homotopy between sigmoids (solvers.deep.sigmoid_homotopy) and the 1-D integrals of an affine φ
(theory.deep_tilted, ``OneD.affine``): normcdf is exactly ½ + ½ erf(√(2/π) h) in the package's erf, so the path's end
is the normcdf problem itself, its start the erf problem, and every φ_s is integrated exactly through erf's rule."""
import math

import numpy as np
import pytest

from solvers.deep.common import layer_sigmas
from solvers.deep.model import DeepModel
from solvers.deep.nonlinear import DeepOptions
from solvers.deep.sigmoid_homotopy import SOURCES, affine_parameters, sigmoid_model
from theory.deep_rules import Proposal
from theory.deep_tilted import OneD, tilted_moments
from theory.spec import ModelSpec, SpecError


def _tilts(n=40):
    """Inputs ξ, u (n × 3), widths s and quadratic tilts d of both signs for :func:`tilted_moments`."""
    rng = np.random.default_rng(1)
    xi, u = rng.normal(size=(n, 3)), 2.0 * rng.normal(size=(n, 3))
    return xi, u, np.array([0.5, 0.8, 1.1]), np.array([0.3, -0.5, 1.2])


def test_affine_erf_is_normcdf_to_rounding():
    """½ + ½ erf_pkg(√(2/π) h) = Φ_N(h): all five tilted moments agree to rounding (both through Gauss–Hermite, at
    tilts with a quadratic part d of either sign)."""
    xi, u, s, d = _tilts()
    erf = OneD.for_nonlinearity("erf", 24)
    got = np.stack(tilted_moments(erf.affined(0.5, 0.5, math.sqrt(2.0 / math.pi)), xi, u, s, d))
    np.testing.assert_allclose(got, np.stack(tilted_moments(OneD.for_nonlinearity("normcdf", 24), xi, u, s, d)),
                               rtol=0, atol=1e-12)


def test_affine_phi_matches_brute_force_quadrature(brute_tilted_moments):
    """An intermediate φ_s = α + β erf(κ h) (120 Gauss–Hermite nodes) against a fine trapezoid rule in z (ζ and the
    four moments)."""
    xi, u, s, d = _tilts(6)
    al, be, ka = affine_parameters("erf", "normcdf", 0.4)
    got = tilted_moments(OneD.for_nonlinearity("erf", 120).affined(al, be, ka), xi, u, s, d)
    z = np.linspace(-12.0, 12.0, 48001)
    phi = np.vectorize(lambda h: al + be * math.erf(math.sqrt(math.pi) / 2.0 * ka * h))
    for i in range(len(xi)):
        for c in range(3):
            want = brute_tilted_moments(phi, xi[i, c], u[i, c], s[c], d[c], z)
            np.testing.assert_allclose([g[i, c] for g in got], want, rtol=1e-9, atol=1e-10)


def test_path_parameters_end_points_and_stages():
    """s = 0 is φ_0 (0, 1, 1) on every stage; s = 1 of "joint" and "offset" is the target's (α, β, κ); "scale" moves
    κ alone; bad arguments name themselves."""
    target = (0.5, 0.5, math.sqrt(2.0 / math.pi))
    assert affine_parameters("erf", "normcdf", 0.0, "joint") == (0.0, 1.0, 1.0)
    assert affine_parameters("erf", "normcdf", 0.0, "scale") == (0.0, 1.0, 1.0)
    assert affine_parameters("erf", "normcdf", 1.0, "joint") == pytest.approx(target)
    assert affine_parameters("erf", "normcdf", 1.0, "scale") == pytest.approx((0.0, 1.0, target[2]))
    assert affine_parameters("erf", "normcdf", 0.0, "offset") == pytest.approx((0.0, 1.0, target[2]))
    assert SOURCES == {"normcdf": "erf"}
    for args, word in ((("erf", "tanh", 0.5), "affine image"), (("erf", "normcdf", 1.5), "s must"),
                       (("erf", "normcdf", 0.5, "sideways"), "stage")):
        with pytest.raises(SpecError, match=word):
            affine_parameters(*args)
    with pytest.raises(SpecError, match="smooth"):
        OneD.for_nonlinearity("relu").affined(0.5, 0.5, 1.0)


def test_path_ends_are_the_erf_and_normcdf_equations():
    """The deep (L = 3) residual of sigmoid_model at s = 0 equals the erf problem's and at s = 1 the normcdf problem's,
    at the same point and proposals (classes 2,1,1: the same rules throughout)."""
    spec = ModelSpec("normcdf", sigma_a=0.5, temperature=0.3, class_sizes=(2, 1, 1))
    sig, opt = layer_sigmas(spec, 3), DeepOptions(code_neurons=0)
    model = DeepModel(spec, sig, opt)
    erf = DeepModel(spec.replace(nonlinearity="erf"), sig, opt)
    rng = np.random.default_rng(0)
    x = model.pack(0.5 * np.eye(3) + 0.05 * rng.normal(size=(3, 3)),
                   [(0.1 * np.eye(3) + 0.05, np.full(3, 0.2))] * 2)
    props = [Proposal.standard(d) for d in model.dims]
    r_n, r_e = model.evaluate(x, props)["residual"], erf.evaluate(x, props)["residual"]
    assert np.max(np.abs(sigmoid_model(model, 1.0).evaluate(x, props)["residual"] - r_n)) < 1e-11
    assert np.max(np.abs(sigmoid_model(model, 0.0).evaluate(x, props)["residual"] - r_e)) < 1e-11
    assert np.max(np.abs(r_n - r_e)) > 0.1


def test_three_layer_normcdf_tries_the_homotopy_from_erf_first(monkeypatch):
    """At L >= 3 and T >= 0.05, once the prior start fails, the search tries the homotopy from the erf saddle
    before the shape homotopy (every start stubbed; the search's own logic only). φ without an affine source (erf)
    and L = 2 do not run it (False without a nested solve)."""
    from solvers.deep.nonlinear import _run_starts, _Search

    erf = ModelSpec("erf", class_sizes=(3, 2, 2), temperature=0.05)
    assert _Search(erf, layer_sigmas(erf, 3), DeepOptions()).from_sigmoid() is False
    spec = erf.replace(nonlinearity="normcdf")
    assert _Search(spec, layer_sigmas(spec, 2), DeepOptions()).from_sigmoid() is False
    calls = []
    for name in ("from_prior", "from_sigmoid", "from_large_p", "from_small_p", "from_warmer", "from_shape"):
        monkeypatch.setattr(_Search, name, lambda self, name=name: bool(calls.append(name)))
    monkeypatch.setattr(_Search, "continuation", lambda self, Ts, label: None)
    _run_starts(_Search(spec, layer_sigmas(spec, 3), DeepOptions(search=False)), None)
    assert calls == ["from_prior", "from_sigmoid", "from_shape", "from_large_p", "from_small_p", "from_warmer"]
