import os
import tempfile

# Generated numba modules go to a per-session cache so tests never depend on a user's cache.
os.environ.setdefault("CODINGSCHEMES_CACHE", os.path.join(tempfile.gettempdir(), "codingschemes-test-cache"))

import pytest


@pytest.fixture(scope="session")
def deep_class_theory():
    """The L = 2 class-block theory of classes 3,2 at T = 0.5 (solvers.deep.nonlinear, search off, code fractions
    from 3000 solver neurons), solved once per φ and worker process and shared by the test files that need it
    (tests/solvers/deep/test_nonlinear.py, tests/validation/test_deep_stationarity.py, test_deep_outliers.py):
    the ReLU solve alone costs about 11 s CPU. The solution is frozen; tests must not change it."""
    cache = {}

    def get(name):
        if name not in cache:
            from solvers.deep.nonlinear import DeepOptions, solve_deep_nonlinear
            from theory.spec import ModelSpec

            spec = ModelSpec(nonlinearity=name, class_sizes=(3, 2), temperature=0.5)
            cache[name] = solve_deep_nonlinear(spec, 2, options=DeepOptions(search=False, code_neurons=3000))
        return cache[name]

    return get


@pytest.fixture(scope="session")
def brute_tilted_moments():
    """(ζ, E φ, E φ², E z, E z²) of the 1-D tilted law ∝ N(z; 0, 1) e^{u φ(ξ + s z) + ½ d φ(ξ + s z)²}
    (theory.deep_tilted.tilted_moments) by the trapezoid rule on the grid ``z``, for one (ξ, u, s, d) and a
    vectorised ``phi`` (tests/solvers/deep/test_shape_homotopy.py, test_sigmoid_homotopy.py)."""
    import numpy as np

    def moments(phi, xi, u, s, d, z):
        ph = phi(xi + s * z)
        lw = -0.5 * z * z + u * ph + 0.5 * d * ph * ph
        w = np.exp(lw - lw.max())
        return [np.log(np.trapezoid(w, z) / np.sqrt(2 * np.pi)) + lw.max()] + [
            np.trapezoid(w * g, z) / np.trapezoid(w, z) for g in (ph, ph * ph, z, z * z)]

    return moments
