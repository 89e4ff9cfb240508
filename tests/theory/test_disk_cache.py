"""The on-disk cache returns exactly what the derivation computes, and a warm start needs no sympy.

Cache misses and hits are compared in a fresh cache folder (``CODINGSCHEMES_CACHE``); the import
checks run in subprocesses so that this process's modules do not count."""
import os
import subprocess
import sys

import numpy as np
import pytest

from theory import nonlinearities, psi


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CODINGSCHEMES_CACHE", str(tmp_path))
    nonlinearities.get_nonlinearity.cache_clear()
    psi.psi_table.cache_clear()
    yield tmp_path
    nonlinearities.get_nonlinearity.cache_clear()
    psi.psi_table.cache_clear()


@pytest.mark.parametrize("name", ["relu", "tanh", "h + 0.5*sin(h)"])
def test_nonlinearity_facts_from_the_cache_equal_the_derivation(fresh_cache, name):
    derived = nonlinearities.get_nonlinearity(name)
    nonlinearities.get_nonlinearity.cache_clear()
    cached = nonlinearities.get_nonlinearity(name)
    assert (cached.slope_pos, cached.slope_neg, cached.odd, cached.kinks) == \
        (derived.slope_pos, derived.slope_neg, derived.odd, derived.kinks)
    h = np.linspace(-7.0, 7.0, 101)
    np.testing.assert_array_equal(np.stack(cached.eval(h)), np.stack(derived.eval(h)))
    assert str(cached.expr) == str(derived.expr)  # parsed again on demand


def test_psi_table_from_the_cache_equals_the_built_table(fresh_cache):
    built = psi.psi_table("tanh", 0.7)
    psi.psi_table.cache_clear()
    loaded = psi.psi_table("tanh", 0.7)
    assert loaded is not built
    np.testing.assert_array_equal(loaded.values, built.values)
    assert (loaded.scale, loaded.dx, loaded.method, loaded.quadrature_error, loaded.interpolation_error) == \
        (built.scale, built.dx, built.method, built.quadrature_error, built.interpolation_error)
    assert list(fresh_cache.glob("psi/*.npz"))


def test_a_different_sigma_is_a_different_entry(fresh_cache):
    a = psi.psi_table("tanh", 1.0)
    b = psi.psi_table("tanh", 0.5)
    assert len(list(fresh_cache.glob("psi/*.npz"))) == 2
    assert not np.array_equal(a.values[:, 1], b.values[:, 1])


def _modules_after(code: str, cache) -> set:
    env = dict(os.environ, CODINGSCHEMES_CACHE=str(cache))
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, env=env, check=True)
    return set(out.stdout.split())


def test_importing_the_package_and_the_cli_loads_no_heavy_dependency(tmp_path):
    mods = _modules_after("import codingschemes, codingschemes.cli.main", tmp_path)
    assert not {"sympy", "matplotlib", "arviz_stats", "dask"} & mods


def test_a_warm_psi_table_needs_no_sympy(tmp_path):
    code = "from theory.psi import psi_table; psi_table('normcdf', 1.0)"
    assert "sympy" in _modules_after(code, tmp_path)  # cold: derived
    assert "sympy" not in _modules_after(code, tmp_path)  # warm: read back
