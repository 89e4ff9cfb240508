"""The on-disk cache: generated numba modules, nonlinearity facts and ψ tables, keyed by content.

Everything here is derived from a nonlinearity's name and the source of the modules that derive
it, so a key is ``sha1(inputs, digest of those sources)``: editing the code invalidates the
entries, and two processes writing one key write the same bytes (each write is a rename of a
finished temporary file). The folder is ``$CODINGSCHEMES_CACHE`` or ``~/.cache/codingschemes``.
This module imports neither sympy nor numba, so a warm start needs neither the symbolic
derivation nor its imports.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
import hashlib
import importlib.util
import json
import os
from pathlib import Path
import sys

import numpy as np

__all__ = ["GeneratedFunction", "cache_dir", "source_digest", "cache_key", "read_json", "write_json",
           "read_arrays", "write_arrays", "load_generated"]


@dataclass(frozen=True)
class GeneratedFunction:
    """A compiled kernel and the source it was compiled from."""

    name: str
    source: str
    path: Path
    scalar: object  # numba dispatcher: scalar args -> tuple
    vector: object  # numba dispatcher: (xs, params..., out) -> None


def cache_dir(kind: str = "generated") -> Path:
    """Folder ``kind`` of the cache: $CODINGSCHEMES_CACHE or ~/.cache/codingschemes."""
    root = os.environ.get("CODINGSCHEMES_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "codingschemes")
    path = Path(root) / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


@lru_cache(maxsize=None)
def source_digest(*modules: str) -> str:
    """sha1 of the source files of the ``theory`` modules named (e.g. "psi", "special"), read once per
    process."""
    here = Path(__file__).parent
    h = hashlib.sha1()
    for name in modules:
        h.update((here / f"{name}.py").read_bytes())
    return h.hexdigest()[:16]


def cache_key(*parts) -> str:
    """A file-name-safe key for the ``parts`` (their ``repr``s)."""
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:24]


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError:  # a read-only or full disk costs speed, never correctness
        tmp.unlink(missing_ok=True)


def read_json(kind: str, key: str) -> dict | None:
    """The JSON entry ``key`` of ``kind``, or None."""
    try:
        return json.loads((cache_dir(kind) / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None


def write_json(kind: str, key: str, value: dict) -> None:
    _atomic_write(cache_dir(kind) / f"{key}.json", lambda p: p.write_text(json.dumps(value)))


def read_arrays(kind: str, key: str) -> dict | None:
    """The arrays stored under ``key`` of ``kind`` (an ``.npz``), or None."""
    try:
        with np.load(cache_dir(kind) / f"{key}.npz", allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError):
        return None


def write_arrays(kind: str, key: str, **arrays) -> None:
    def write(tmp):
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    _atomic_write(cache_dir(kind) / f"{key}.npz", write)


_LOADED: dict[Path, GeneratedFunction] = {}


def load_generated(name: str, path: Path) -> GeneratedFunction:
    """Import the generated module at ``path`` and return its kernels ``name`` and ``name_vec``."""
    path = Path(path)
    if path in _LOADED:
        return _LOADED[path]
    modname = f"_codingschemes_generated_{path.stem}"
    spec = importlib.util.spec_from_file_location(modname, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    spec.loader.exec_module(module)
    gen = GeneratedFunction(name=name, source=path.read_text(), path=path,
                            scalar=getattr(module, name), vector=getattr(module, f"{name}_vec"))
    _LOADED[path] = gen
    return gen
