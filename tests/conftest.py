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
