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

__all__ = ["erfcx", "norm_cdf", "relu_w", "relu_logw", "relu_psi_tail", "relu_psi_tail_vec"]

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


_C = 1.0 / math.sqrt(2.0 * math.pi)


@numba.njit(cache=True)
def relu_psi_tail(x, sigma):
    """ψ and its first three g-derivatives for ReLU at x = σg <= −10.

    With y = −x and the Mills ratio M(y) = Σ_n a_n y^{−(2n+1)},
    a_n = (−1)^n (2n − 1)!!, R = e^{x²/2}Φ_N(x) = M/√(2π) and its
    x-derivatives are the cancellation-free series

        R'   ∝ −Σ_{n>=1} a_n y^{−2n},
        R''  ∝  Σ_{n>=0} (a_n + a_{n+1}) y^{−(2n+1)},
        R''' ∝ −Σ_{n>=1} (3a_n + a_{n+1}) y^{−2n}

    (22 terms: truncation error < 1e-16 for y >= 10), and Z = ½ + R gives
    ψ = log Z, ψ' = σR'/Z, ψ'' = σ²(R''/Z − (R'/Z)²),
    ψ''' = σ³(R'''/Z − 3R''R'/Z² + 2(R'/Z)³).
    """
    y = -x
    iy = 1.0 / y
    iy2 = iy * iy
    M = 0.0
    A1 = 0.0
    A2 = 0.0
    A3 = 0.0
    a = 1.0  # a_n
    p = iy  # y^{−(2n+1)}
    q = 1.0  # y^{−2n}
    for n in range(22):
        a_next = -(2 * n + 1) * a
        M += a * p
        A2 += (a + a_next) * p
        if n >= 1:
            A1 -= a * q
            A3 -= (3.0 * a + a_next) * q
        a = a_next
        p *= iy2
        q *= iy2
    R, R1, R2, R3 = _C * M, _C * A1, _C * A2, _C * A3
    Z = 0.5 + R
    r1 = R1 / Z
    psi = -math.log(2.0) + math.log1p(2.0 * R)
    return (psi, sigma * r1, sigma**2 * (R2 / Z - r1 * r1),
            sigma**3 * (R3 / Z - 3.0 * (R2 / Z) * r1 + 2.0 * r1 * r1 * r1))


@numba.njit(cache=True)
def relu_psi_tail_vec(gs, sigma, out):
    """Apply :func:`relu_psi_tail` where σg <= −10 (other rows untouched)."""
    for i in range(gs.shape[0]):
        x = sigma * gs[i]
        if x <= -10.0:
            r = relu_psi_tail(x, sigma)
            out[i, 0] = r[0]
            out[i, 1] = r[1]
            out[i, 2] = r[2]
            out[i, 3] = r[3]
