"""Package attributes imported on first use (PEP 562 module ``__getattr__``).

A package ``__init__`` that lists its public names as ``{name: "module.path"}`` gets its
``__getattr__`` and ``__dir__`` from :func:`deferred_attributes`; ``import package`` then costs
nothing, and ``package.name`` imports ``module.path`` and returns its attribute ``name`` (or the
attribute named after a colon, ``"module.path:other"``, for aliases). So ``codingschemes solve``
loads neither the Monte Carlo solvers (arviz, scipy.signal) nor matplotlib.
"""
from __future__ import annotations

import importlib
import sys

__all__ = ["deferred_attributes"]


def deferred_attributes(package: str, exports: dict):
    """(``__getattr__``, ``__dir__``) for the module ``package`` serving ``exports``."""
    def __getattr__(name: str):
        target = exports.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module_name, _, attribute = target.partition(":")
        # looked up every time, not stored here: the defining module stays the one place a name
        # lives (a test that monkeypatches it there patches every way of reaching it)
        return getattr(importlib.import_module(module_name), attribute or name)

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
