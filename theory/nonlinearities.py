"""Nonlinearities φ(h): symbolic form, compiled form and asymptotics.

Built-ins (THEORY §1):

==========  ==========================  ===========================
name        φ(h)                        remark
==========  ==========================  ===========================
linear      h                           ψ closed form (sympy)
relu        max(0, h)                   ψ closed form (sympy)
erf         erf(√π h / 2)               odd sigmoid, slope 1 at 0
normcdf     Φ_N(h) = (1 + erf(h/√2))/2  non-negative sigmoid, 0/1 codes
tanh        tanh(h)                     odd sigmoid
==========  ==========================  ===========================

Any other string is parsed by sympy as an expression in ``h`` (for example
``"h + 0.5*sin(h)"`` or ``"log(1 + exp(h))"``). The string is evaluated by
``sympy.sympify``: pass only expressions you trust.

Asymptotics decide the domain of Φ(t) (see :mod:`theory.domain`): with
φ(h) ≈ α₊ h as h → +∞ and α₋ h as h → −∞, ψ(g) = log E e^{gφ(h)} grows like
σ_1² κ(g)/2 with κ(g) = max((α₊g)₊², (−α₋g)₊²). A φ that grows faster than
linearly makes E e^{gφ} infinite for every g ≠ 0 of one sign, so the
single-neuron measure cannot be normalised and the spec is rejected.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from theory.disk_cache import GeneratedFunction, cache_key, load_generated, read_json, source_digest, write_json
from theory.spec import SpecError

__all__ = ["H", "BUILTIN_EXPRESSIONS", "BUILTIN_NAMES", "Nonlinearity", "get_nonlinearity"]

#: The names of the built-in φ (their expressions: ``BUILTIN_EXPRESSIONS``).
BUILTIN_NAMES = ("linear", "relu", "erf", "normcdf", "tanh")


@lru_cache(maxsize=1)
def _symbols() -> dict:
    """The sympy objects of this module, built on first use (sympy takes ~1 s to import):
    ``H``, the preactivation symbol of every φ expression; ``BUILTIN_EXPRESSIONS``; the names a
    user expression may use."""
    import sympy as sp
    H = sp.Symbol("h", real=True)
    normcdf = (lambda x: (1 + sp.erf(x / sp.sqrt(2))) / 2)
    builtins = {"linear": H, "relu": sp.Max(0, H), "erf": sp.erf(sp.sqrt(sp.pi) * H / 2),
                "normcdf": normcdf(H), "tanh": sp.tanh(H)}
    parse_locals = {"h": H, "relu": lambda x: sp.Max(0, x), "normcdf": normcdf, "Phi": normcdf}
    return {"H": H, "BUILTIN_EXPRESSIONS": builtins, "_PARSE_LOCALS": parse_locals}


def __getattr__(name: str):
    """``H`` and ``BUILTIN_EXPRESSIONS`` (PEP 562: built when first asked for)."""
    if name in ("H", "BUILTIN_EXPRESSIONS"):
        return _symbols()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True, eq=False)
class Nonlinearity:
    """φ with its sympy expression, compiled kernels and asymptotic slopes."""

    name: str
    kernel: GeneratedFunction  # (φ, φ') as functions of h
    slope_pos: float  # α₊ = lim φ(h)/h, h → +∞ (0 if sublinear)
    slope_neg: float  # α₋ = lim φ(h)/h, h → −∞ (0 if sublinear)
    odd: bool
    kinks: tuple = ()  # points where φ or a derivative jumps (Max, Abs, Piecewise, ...)

    @property
    def expr(self):
        """φ as a sympy expression in ``H`` (parsed on first use)."""
        return _parse(self.name)

    def __call__(self, h) -> np.ndarray:
        """φ(h), elementwise, float64."""
        return self.eval(h)[0]

    def eval(self, h):
        """(φ(h), φ'(h)) elementwise."""
        hv = np.asarray(h, dtype=np.float64)
        flat = np.ascontiguousarray(hv.ravel())
        out = np.empty((flat.size, 2))
        self.kernel.vector(flat, out)
        return out[:, 0].reshape(hv.shape), out[:, 1].reshape(hv.shape)

    @property
    def linear_growth(self) -> bool:
        """True if φ grows linearly on at least one side (Φ has a finite domain)."""
        return self.slope_pos != 0.0 or self.slope_neg != 0.0

    def kappa(self, g):
        """Asymptotic quadratic coefficient κ(g) = max((α₊g)₊², (−α₋g)₊²)."""
        g = np.asarray(g, dtype=np.float64)
        return np.maximum(np.maximum(self.slope_pos * g, 0.0) ** 2, np.maximum(-self.slope_neg * g, 0.0) ** 2)


@lru_cache(maxsize=64)
def _parse(name: str):
    import sympy as sp
    symbols = _symbols()
    H, builtins = symbols["H"], symbols["BUILTIN_EXPRESSIONS"]
    if name in builtins:
        return builtins[name]
    try:
        expr = sp.sympify(name, locals=symbols["_PARSE_LOCALS"])
    except (sp.SympifyError, SyntaxError, TypeError, AttributeError, ValueError) as exc:
        raise SpecError(
            f"nonlinearity must be one of {sorted(BUILTIN_NAMES)} or an expression in h "
            f"(could not parse {name!r}: {exc})") from None
    if not isinstance(expr, sp.Expr):
        raise SpecError(f"nonlinearity {name!r} is not a scalar expression in h")
    free = expr.free_symbols
    if free != {H}:
        other = sorted(str(s) for s in free - {H})
        if other:
            raise SpecError(f"nonlinearity {name!r} must be a function of h only (also uses {', '.join(other)})")
        raise SpecError(f"nonlinearity {name!r} must depend on h (it is constant)")
    return expr


def _kinks(expr, name: str) -> tuple:
    """Real h where a Max/Min/Abs/sign/Heaviside/Piecewise in φ switches branch."""
    import sympy as sp
    H = _symbols()["H"]
    eqs = []
    for node in sp.preorder_traversal(expr):
        if isinstance(node, (sp.Max, sp.Min)):
            eqs += [a - b for i, a in enumerate(node.args) for b in node.args[i + 1:]]
        elif isinstance(node, (sp.Abs, sp.sign, sp.Heaviside)):
            eqs.append(node.args[0])
        elif isinstance(node, sp.Piecewise):
            for _, cond in node.args:
                if isinstance(cond, sp.core.relational.Relational):
                    eqs.append(cond.lhs - cond.rhs)
    points = set()
    for eq in eqs:
        if not eq.has(H):
            continue
        sol = sp.solveset(sp.Eq(eq, 0), H, domain=sp.S.Reals)
        if not isinstance(sol, sp.FiniteSet):
            raise SpecError(f"nonlinearity {name!r}: cannot locate where {eq} = 0 switches branch; "
                            "write φ with finitely many kinks")
        points.update(float(v) for v in sol)
    return tuple(sorted(points))


def _asymptotic_slope(values_at, side: float, name: str) -> float:
    """α = lim φ(h)/h along one side; 0 if sublinear; error if superlinear."""
    hs = side * np.array([50.0, 250.0, 700.0])
    with np.errstate(all="ignore"):
        ratios = values_at(hs) / hs
    if not np.all(np.isfinite(ratios)) or abs(ratios[2]) > 1.5 * abs(ratios[0]) + 1e-9:
        raise SpecError(
            f"nonlinearity {name!r} grows faster than linearly as h → {'+' if side > 0 else '-'}∞: "
            "E exp(g φ(h)) is infinite and the posterior cannot be normalised "
            "(valid: |φ(h)| <= C(1 + |h|))")
    if abs(ratios[2]) < 0.5 * abs(ratios[0]) or abs(ratios[2]) < 1e-9:
        return 0.0
    return float(ratios[2])


#: the modules whose source decides a nonlinearity's compiled form and facts (cache key)
_DERIVED_FROM = ("nonlinearities", "codegen", "special")


@lru_cache(maxsize=64)
def get_nonlinearity(name: str) -> Nonlinearity:
    """Parse, check and compile a nonlinearity (cached by name, in memory and on disk: a warm
    start loads the compiled kernel and the checked facts without sympy)."""
    if not isinstance(name, str) or not name.strip():
        raise SpecError(f"nonlinearity must be a non-empty string (got {name!r})")
    name = name.strip()
    key = cache_key("nonlinearity", name, source_digest(*_DERIVED_FROM))
    facts = read_json("nonlinearities", key)
    if facts is None or not Path(facts["path"]).exists():
        facts = _derive(name)
        write_json("nonlinearities", key, facts)
    kernel = load_generated(facts["kernel"], Path(facts["path"]))
    return Nonlinearity(name=name, kernel=kernel, slope_pos=facts["slope_pos"], slope_neg=facts["slope_neg"],
                        odd=facts["odd"], kinks=tuple(facts["kinks"]))


def _derive(name: str) -> dict:
    """Parse φ with sympy, compile (φ, φ'), check it and find its asymptotics: the facts
    :func:`get_nonlinearity` caches (SpecError if φ is not admissible)."""
    import sympy as sp
    from theory.codegen import compile_to_numba
    H = _symbols()["H"]
    expr = _parse(name)
    dexpr = sp.diff(expr, H)
    ident = name if name.isidentifier() else "user"
    kernel = compile_to_numba(f"phi_{ident}", [expr, dexpr], [H])

    def values_at(hs):
        out = np.empty((hs.size, 2))
        kernel.vector(np.ascontiguousarray(hs, dtype=np.float64), out)
        return out[:, 0]

    grid = np.linspace(-50.0, 50.0, 2001)
    with np.errstate(all="ignore"):
        vals = values_at(grid)
    bad = ~np.isfinite(vals)
    if bad.any():
        raise SpecError(f"nonlinearity {name!r} gives NaN or inf at h = {grid[bad][0]:g} "
                        "(it must be finite for all real h)")
    return {"kernel": kernel.name, "path": str(kernel.path),
            "slope_pos": _asymptotic_slope(values_at, +1.0, name),
            "slope_neg": _asymptotic_slope(values_at, -1.0, name),
            "odd": bool(sp.simplify(expr.subs(H, -H) + expr) == 0), "kinks": list(_kinks(expr, name))}
