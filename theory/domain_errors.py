"""The one error for a point outside the domain of the theory's integrals.

Raised when an integral of the action diverges or is not finite at the current point (e.g. the
1-D Gaussian integral of a linear/ReLU layer with 1 − δ̃ s² <= 0, THEORY §5, or the one-layer dual
outside its convex domain, THEORY §2). Solvers catch it to shorten a step; it is an
``ArithmeticError`` (a numerical condition of the point, not bad input: bad input raises
:class:`theory.spec.SpecError`).
"""
from __future__ import annotations

__all__ = ["OutsideDomain"]


class OutsideDomain(ArithmeticError):
    """An integral of the theory diverges or is not finite at this point (outside the domain)."""
