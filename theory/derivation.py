"""Symbolic derivation of the single-neuron cumulant function ψ(g).

For one hidden neuron with preactivation h ~ N(0, σ_1²) on an input of class
c, the tilt by the conjugate field gives (THEORY §3)

    Z(g) = E_{h ~ N(0, σ_1²)} e^{g φ(h)},   ψ(g) = log Z(g),

with ψ' = E_g[φ], ψ'' = Var_g[φ], ψ''' = third central moment of φ under the
tilted law. sympy integrates Z in closed form where it can:

* affine φ = αh + β:  ψ = βg + σ_1² α² g² / 2;
* ReLU φ = max(0, h): Z = ½ + e^{x²/2} Φ_N(x), x = σ_1 g. For stable
  numerics this is rewritten as ψ = −log 2 − L(x) with L = log w,
  w = ½/Z (:class:`ReluLogTailWeight`), whose derivative
  L'(x) = −x(1 − w) − 2w/√(2π) keeps every ψ^{(k)} a polynomial in (x, w).

Every other φ returns ``None`` and ψ is computed by Gauss–Hermite quadrature
(:mod:`theory.psi`).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from theory.nonlinearities import H, Nonlinearity, get_nonlinearity

__all__ = ["G", "SIGMA", "ReluLogTailWeight", "ReluTailWeight", "PsiDerivation", "derive_psi",
           "partition_function"]

G = sp.Symbol("g", real=True)
SIGMA = sp.Symbol("sigma", positive=True)
_C = 1 / sp.sqrt(2 * sp.pi)


class ReluTailWeight(sp.Function):
    """w(x) = ½ / (½ + e^{x²/2} Φ_N(x)); w' = −x w (1 − w) − 2 w²/√(2π)."""

    def fdiff(self, argindex=1):
        x = self.args[0]
        w = ReluTailWeight(x)
        return -x * w * (1 - w) - 2 * _C * w**2


class ReluLogTailWeight(sp.Function):
    """L(x) = log w(x); L' = −x (1 − w) − 2 w/√(2π)."""

    def fdiff(self, argindex=1):
        x = self.args[0]
        w = ReluTailWeight(x)
        return -x * (1 - w) - 2 * _C * w


@dataclass(frozen=True)
class PsiDerivation:
    """Closed-form ψ and its first three derivatives in g (σ = σ_1)."""

    nonlinearity: str
    partition_function: sp.Expr  # Z(g) as sympy integrated it
    derivatives: tuple  # (ψ, ψ', ψ'', ψ''') in the numerically stable form
    relu_tail: bool = False  # evaluate σg <= −10 by theory.special.relu_psi_tail


def _gaussian_density():
    return sp.exp(-H**2 / (2 * SIGMA**2)) / sp.sqrt(2 * sp.pi * SIGMA**2)


def partition_function(expr: sp.Expr, lower=-sp.oo, upper=sp.oo) -> sp.Expr:
    """∫ N(h; 0, σ²) e^{g φ(h)} dh over [lower, upper], integrated by sympy."""
    return sp.simplify(sp.integrate(_gaussian_density() * sp.exp(G * expr), (H, lower, upper), conds="none"))


def derive_psi(nl: Nonlinearity) -> PsiDerivation | None:
    """Closed-form ψ(g) and derivatives, or ``None`` if φ is not affine or ReLU (cached)."""
    return _derive_psi(nl.name)


@lru_cache(maxsize=64)
def _derive_psi(name: str) -> PsiDerivation | None:
    nl = get_nonlinearity(name)
    expr = nl.expr
    poly = sp.Poly(expr, H) if expr.is_polynomial(H) else None
    if poly is not None and poly.degree() <= 1:
        Z = partition_function(expr)
        psi = sp.expand(sp.simplify(sp.expand_log(sp.log(Z), force=True)))
    elif sp.simplify(expr - sp.Max(0, H)) == 0:
        # Z = P(h < 0) + ∫_0^∞ N(h) e^{gh} dh, integrated by sympy ...
        Z = sp.Rational(1, 2) + partition_function(H, 0, sp.oo)
        # ... and rewritten with the stable L = log w, w = ½ / Z (checked in tests).
        psi = -sp.log(2) - ReluLogTailWeight(SIGMA * G)
    else:
        return None
    derivs = [psi]
    for _ in range(3):
        derivs.append(sp.simplify(sp.diff(derivs[-1], G)))
    return PsiDerivation(nonlinearity=nl.name, partition_function=Z, derivatives=tuple(derivs),
                         relu_tail=expr.has(sp.Max))
