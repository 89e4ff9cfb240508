"""Numerically stable special functions, compiled with numba.

These are the numeric counterparts of the sympy functions in
:mod:`theory.derivation`; generated code (:mod:`theory.codegen`) calls them.

ReLU tilt. For φ(h) = max(0, h), h ~ N(0, σ²) and x = σ g,

    Z(g) = E e^{g φ(h)} = ½ + R(x),   R(x) = e^{x²/2} Φ_N(x),

and w(x) = ½ / Z is the probability that h < 0 under the tilted law.
``relu_w`` returns w and ``relu_logw`` returns log w, both without overflow
for any real x (R overflows beyond x ≈ 37.6, w does not).
"""
from __future__ import annotations

import math

import numba

__all__ = ["erfcx", "norm_cdf", "relu_w", "relu_logw"]

_SQRT2 = math.sqrt(2.0)
_SQRT_PI = math.sqrt(math.pi)


@numba.njit(cache=True)
def erfcx(y):
    """Scaled complementary error function e^{y²} erfc(y) for y >= 0 (any y)."""
    if y < 25.0:
        return math.exp(y * y) * math.erfc(y)
    # Asymptotic series, truncation error < 4e-13 for y >= 25.
    iy2 = 1.0 / (y * y)
    s = 1.0 - 0.5 * iy2 * (1.0 - 1.5 * iy2 * (1.0 - 2.5 * iy2 * (1.0 - 3.5 * iy2 * (1.0 - 4.5 * iy2))))
    return s / (y * _SQRT_PI)


@numba.njit(cache=True)
def norm_cdf(x):
    """Standard normal CDF Φ_N(x)."""
    return 0.5 * math.erfc(-x / _SQRT2)


@numba.njit(cache=True)
def relu_logw(x):
    """log w(x), w = ½ / (½ + e^{x²/2} Φ_N(x)), stable for all real x."""
    if x < 0.0:
        # e^{x²/2} Φ_N(x) = ½ erfcx(-x/√2)
        return -math.log1p(erfcx(-x / _SQRT2))
    # log w = log ½ − x²/2 − log(½ e^{−x²/2} + Φ_N(x))
    return -math.log(2.0) - 0.5 * x * x - math.log(0.5 * math.exp(-0.5 * x * x) + norm_cdf(x))


@numba.njit(cache=True)
def relu_w(x):
    """w(x) = ½ / (½ + e^{x²/2} Φ_N(x))."""
    return math.exp(relu_logw(x))
