"""Deep networks (L >= 2) at large P on orthogonal class-structured data: what Laplace's method over
every layer actually gives (THEORY §5, last sentence, worked out; solver: :mod:`solvers.deep.large_p`).

Scaling: σ_a² = σ̄_a²/P, ρ_c = P_c/P fixed, hidden priors σ_ℓ fixed (standard scaling), P → ∞.
Notation of :mod:`theory.deep_blocks`: a layer with input kernel K = E k Eᵀ + D_δ has class-shared
preactivation ξ ~ N(0, σ² k) and within-class noise s z_μ, s_c = σ √δ_c; its tilt is
u_c φ + ½ δ̃_c φ² per input, with u ~ N(0, k̃) (hidden) or u_c = t_c·a (readout).

1. The last hidden layer saturates (the naive "O(P) Laplace in (a, ξ)" picture is wrong here)
------------------------------------------------------------------------------------------
Write a = O(1) (a_phys = a/√P, as in THEORY §4). The (a, ξ) measure of layer L is

    N(ξ; 0, σ_L² k_{L-1}) · exp(P [−|a|²/(2σ̄_a²) + Σ_c ρ_c ζ_c(ξ_c, t_c·a)]),
    ζ_c(ξ, g) = log E_z exp(g φ(ξ + s_c z)).

The ξ prior is O(1), the likelihood O(P), so ξ goes to the maximiser of the likelihood. But
∂_ξ ζ = E_1[g φ'] has the sign of g for monotone φ: there is no interior maximiser. ξ_c runs to
+∞ (g > 0) or −∞ (g < 0) until the O(1) prior stops it: with r_c² = 1 + s_c² (normcdf) the balance
P ρ_c |g| n(ξ/r)/r = ξ/(σ_L² k) gives ξ_c² ≈ 2 r² log P, and the unsaturated mass per input is
E[φ_+ − φ] ≈ r²/(P ρ_c |g| σ_L² k_eff), k_eff the prior variance of ξ along the needed direction.
So every last-layer neuron is a *binary unit*: on class c its activation is φ_+ = φ(+∞) or
φ_- = φ(−∞) with vanishing within-class variance (δ_L → 0), and the effective cumulant is

    ψ_∞(g) = sup_ξ ζ(ξ, g) = max(φ_- g, φ_+ g)            (normcdf: g₊; erf, tanh: |g|).

This needs the prior of ξ to reach every sign pattern. With K_0 = I the prior layer-1 kernel is
k_1 = (Eφ)² 11ᵀ (rank one; zero for odd φ), so the class-contrast directions of ξ have prior
variance ε = the learned class-contrast part of k_{L-1}. What ε costs and what it buys, per neuron:
* layer L−1: its neurons' class means m_c have prior spread v/P_c (v = Var φ); widening the
  class-contrast covariance to ε ≫ 1/P costs the Gaussian relative entropy ≈ P ρ ε/(2v) (linear in
  ε). In HS language the u-measure N(u; 0, k̃) e^{Σ_c P_c (u_c m + ½ v u_c²)} has precision
  k̃⁻¹ − P ρ v, so ε = v² Cov(u) ≫ 1/P needs k̃ just below the marginal value 1/(P ρ v): the lower
  layer sits at a Gaussian near-instability (broad, drifting class-contrast fluctuations; no
  branches, since the u-measure stays Gaussian at this order);
* layer L: ξ_⊥ = X ~ √(2 r² log P) costs X²/(2σ_L² ε).
Minimising P ρ ε/(2v) + X²/(2σ_L² ε): ε ~ X σ_L⁻¹ √(v/(ρ P)) ~ √(log P / P), total cost
~ X √(P ρ/v)/σ_L ~ √(P log P) = o(P): it drops out of G/P. Consistency of the conjugate: at the
balance W_⊥ = ∂_ξ ζ = ξ_⊥/(P ρ σ_L² ε), so k̃ = σ_L² E[W Wᵀ] ~ X²/(P² ρ² σ_L² ε²) = 1/(P ρ v),
exactly the marginal value assumed above. (At u ~ (log P/P)^{1/4} the quartic cumulant of φ,
P κ₄ u⁴/24 with κ₄ < 0 for bounded φ, is as large as the residual quadratic — the cubic one
vanishes for normcdf, erf, tanh by symmetry — so the near-marginal u-measure is a critical,
quartic-stabilised one: this changes the constants in ε, not the o(P) conclusion.) The naive alternative k̃ = κ̃/P with u = O(1) (an O(P)
Laplace over u with branches in layer L−1 and an interior ξ) is not self-consistent for monotone
φ: it needs an interior maximiser of ζ in ξ, which the readout tilt g φ never has.

Per-layer scalings at leading order (the quantities the task lists):
* readout: a = O(1) (branches a_γ), t = O(1), f = y − T t;
* layer L: ξ_c ≈ ±√(2 r_c² log P) (r_c² = 1 + s_c²: the within-class noise s_c = σ_L √δ_{L-1}
  enters only here, in the saturation scale and the O(1/(P ε)) unsaturated mass, not in the leading
  order), δ_L → 0, k_L = Σ_γ P_γ b_γ b_γᵀ; the conjugates it sends down: δ̃_{L-1} =
  σ_L² E[Var_1(z) − 1]/s² → 0 (a saturated φ makes the tilt flat in z, Var_1(z) → 1), k̃_{L-1} →
  1/(P ρ v) (near-marginal) in the class-contrast directions and O(log P/P²) along the common
  mode (whose prior variance is O(1));
* layer L−1: HS field u Gaussian (no branches), kernel = prior NNGP + O(√(log P/P)) contrast,
  δ_{L-1} → prior; the contrast is produced by its own HS field, so layers ℓ <= L−2 need not learn:
  their conjugates vanish and they stay at the prior to all orders considered here.

Consequences (leading order; asymptotic corrections ~ the unsaturated mass r²/(P ρ |g| σ_L² ε) ~
1/√(P log P) for class-contrast patterns and ~ log-corrected 1/P for the common mode; the
asymptotic regime needs P ρ |g| σ_L² k ≫ 1, so at P <= 64 the approach is pre-asymptotic):
* the readout problem is the one-layer large-P problem of THEORY §4 with ψ → ψ_∞, independent of
  σ_1..σ_L and of L >= 2;
* max_a S = max_a [−|a|²/(2σ̄_a²) + Σ_c ρ_c max_{b_c∈[φ_-,φ_+]} b_c t_c·a]
           = max_{b ∈ [φ_-,φ_+]^m} Q_b(t),  Q_b(t) = (σ̄_a²/2) |Σ_c ρ_c b_c t_c|²,
  a convex function of b, so the maximum is at one of the 2^m vertices b ∈ {φ_-, φ_+}^m
  (exact enumeration, no search for maxima). The maximiser for vertex b is
  a_b = σ̄_a² Σ_c ρ_c b_c t_c, and at a global vertex t_c·a_b has the sign of b_c − (φ_+ + φ_-)/2
  strictly (flipping b_c lowers Q), so global branches are strictly saturated;
* G∞(t) = max_b Q_b(t) − Σ_c ρ_c t_cc + (T/2) Σ_c ρ_c ||t_c||²: convex (strictly for T > 0),
  a max of 2^m quadratics; its minimiser t* is unique. Branches: the active vertices b_γ with
  occupations P_γ >= 0, Σ P_γ = 1 and (stationarity, = f = y − T t)

      Q_{b_γ}(t) = max_b Q_b(t),   Σ_γ P_γ b_γc a_γ = e_c − T t_c;

* observables: f[c, r] = Σ_γ P_γ b_γc a_γr, U = Σ_γ P_γ a_γ a_γᵀ, last-layer kernel blocks
  k_L = Σ_γ P_γ b_γ b_γᵀ with kernel diagonal diag(k_L) (δ_L = 0), codes = the binary patterns
  b_γ (exactly 0/1 for normcdf: the last layer's codes are sharp and redundant — all neurons of a
  branch share one code); hidden layers ℓ < L: the prior NNGP class-block kernels
  (:func:`prior_kernels`), codes all-classes (class-uninformative) at leading order; their
  class-contrast kernel is O(√(log P/P)), carried by near-marginal Gaussian fluctuations;
* at finite P the contrast cost √(P log P) competes with the O(P) gain: for moderate P the
  finite-P theory follows the *prior-span* branch (only patterns b ∈ {φ_- 1, φ_+ 1} reachable
  along the prior direction of ξ: a common-mode, rank-one f), a constrained minimum of G∞
  (``patterns="prior-span"`` in the solver); measured for normcdf, L = 2, T = 0.3 at P = 8..64;
* odd φ: Q_b = Q_{−b}, a_{−b} = −a_b, so branches come in mirror pairs (one orbit, occupation
  split equally, as in :mod:`solvers.large_p.solve`).

Example (closed form, test): odd φ, equal classes ρ_c = 1/m: t = τ I with every orbit active and
uniform occupations gives Σ_γ P_γ b_γ b_γᵀ = I, so f = σ̄_a² ρ τ I = (1 − T τ) I:
f_cc = σ̄_a² ρ / (T + σ̄_a² ρ), at every T (no symmetric a = 0 phase: ψ_∞ is not smooth at 0,
T_c = ∞ for L >= 2, unlike the one-layer pitchfork of THEORY §4).

2. Linear φ (no saturation; the deep linear closed form, :mod:`solvers.deep.linear`)
-------------------------------------------------------------------------------
Per class the closed form has f_c = σ_a² s τ_c (1−x_c)^{−L}, τ_c = √(x_c (1−x_c)^{L−1}/(P_c σ_a² s)),
s = Π σ_ℓ². With σ_a² = σ̄_a²/P: f_c = (σ̄_a √s/(P √ρ_c)) √x ε^{−(L+1)/2} and
T τ_c = T √(x ε^{L−1}/(ρ_c σ̄_a² s)), ε = 1 − x. For L >= 2 the stable "rich" root has
ε → 0 with f → 1: the leading-order balance f_c = 1 gives

    ε_c = (σ̄_a √s / (P √ρ_c))^{2/(L+1)},  τ_c = √(ε_c^{L−1}/(ρ_c σ̄_a² s)) → 0,  f_cc = 1 − T τ_c,
    U_cc = σ̄_a²/(P ε_c),  k_ℓ,cc = s_ℓ ε_c^{−ℓ}/(P ρ_c),  kernel diagonal s_ℓ + k_ℓ,cc,

relative corrections O(ε^{(L−1)/2}) + O(ε) = O(P^{−(L−1)/(L+1)}). There is no finite limit:
P U and the last-layer class blocks grow like P^{(L−1)/(L+1)}; the free energy per P of the rich
root tends to 0, above the lazy root's −Σ_c ρ_c/(2T), so the rich root is selected at large P
(the lazy root of T > σ̄_a √(ρ_c s) stops being selected once the rich one appears; checked
against :func:`solvers.deep.linear.solve_deep_linear_classes` in tests/test_deep_large_p.py).

References: A. van Meegen and H. Sompolinsky, Nat. Commun. 16, 3354 (2025), arXiv:2406.16689;
../shared/THEORY.md §4–5; :mod:`theory.deep_blocks` for the finite-P class-block equations.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import sympy as sp

from theory.gp import pair_kernel
from theory.nonlinearities import H, get_nonlinearity
from theory.spec import SpecError

__all__ = ["saturation_levels", "vertices", "pattern_values", "prior_kernels", "linear_asymptotics"]


def saturation_levels(name: str) -> tuple[float, float, bool]:
    """(φ_-, φ_+, odd) = (φ(−∞), φ(+∞), φ odd) for a bounded non-decreasing φ; SpecError otherwise
    (ReLU/linear-growth φ have no saturation: their deep large-P limit is not implemented)."""
    nl = get_nonlinearity(name)
    if nl.name == "linear":
        raise SpecError("saturation_levels: linear φ does not saturate (use linear_asymptotics)")
    try:
        lo, hi = (float(sp.limit(nl.expr, H, v)) for v in (-sp.oo, sp.oo))
    except (TypeError, ValueError):
        lo = hi = math.inf
    if not (math.isfinite(lo) and math.isfinite(hi)) or nl.linear_growth or nl.kinks:
        raise SpecError(f"nonlinearity {name!r}: the deep large-P solver handles bounded non-decreasing smooth φ "
                        "(normcdf, erf, tanh) and linear φ; ReLU and other growing φ (condensates in every layer) "
                        "are not implemented")
    h = np.linspace(-30.0, 30.0, 6001)
    v = np.asarray(nl(h), dtype=np.float64)
    if np.any(np.diff(v) < -1e-12) or not hi > lo:
        raise SpecError(f"nonlinearity {name!r}: the saturation argument needs a non-decreasing φ with "
                        "φ(+∞) > φ(−∞)")
    return lo, hi, bool(nl.odd)


def vertices(levels: tuple, m: int, odd: bool) -> np.ndarray:
    """All binary activation patterns b ∈ {φ_-, φ_+}^m (n, m); for odd φ one representative per
    mirror orbit {b, −b} (the one with b_0 = φ_+)."""
    lo, hi = levels
    B = np.array(list(itertools.product((lo, hi), repeat=m)), dtype=np.float64)
    return B[B[:, 0] == hi] if odd else B


def pattern_values(t, B, rho, sigma_a_bar: float):
    """Q_b(t) = (σ̄²/2)|a_b|²/σ̄⁴ and a_b = σ̄² Σ_c ρ_c b_c t_c for every pattern (rows of B)."""
    A = sigma_a_bar**2 * (B * rho[None, :]) @ np.asarray(t, dtype=np.float64)
    return 0.5 * np.sum(A * A, axis=1) / sigma_a_bar**2, A


def prior_kernels(name: str, sigmas) -> tuple[list, float]:
    """Prior (NNGP) class-block kernels of hidden layers ℓ = 1..len(sigmas) for K_0 = I:
    [(kernel_diagonal d_ℓ, off-diagonal value c_ℓ)] (class-independent scalars: the kernel is
    d_ℓ on the diagonal and c_ℓ on every other pair), from the 2 × 2 recursion
    d_ℓ = E φ(h)², c_ℓ = E φ(h) φ(h'), (h, h') ~ N(0, σ_ℓ² [[d, c], [c, d]]), d_0 = 1, c_0 = 0
    (:func:`theory.gp.pair_kernel`: closed forms for erf, normcdf; Gauss–Hermite otherwise,
    returned error = the largest order-48/64 difference)."""
    d, c, err, out = 1.0, 0.0, 0.0, []
    for sig in sigmas:
        v, e1 = pair_kernel(name, np.array(sig**2 * d), np.array(sig**2 * d), np.array(sig**2 * d))
        w, e2 = pair_kernel(name, np.array(sig**2 * d), np.array(sig**2 * d), np.array(sig**2 * c))
        d, c, err = float(v), float(w), max(err, e1, e2)
        out.append((d, c))
    return out, err


def linear_asymptotics(rho, sigma_a_bar: float, sigmas, temperature: float, P: float) -> dict:
    """Leading-order large-P rich root of the deep linear closed form (module docstring, §2), L >= 2:
    per class ε_c, τ_c, f_cc, U_cc and per hidden layer the class-block diagonal k_ℓ,cc."""
    rho = np.asarray(rho, dtype=np.float64)
    sig2 = np.asarray(sigmas, dtype=np.float64) ** 2
    L = len(sig2)
    if L < 2:
        raise SpecError(f"linear_asymptotics is the L >= 2 limit (got {L} layer); L = 1 is solvers.large_p.solve")
    s_l = np.cumprod(sig2)
    s = s_l[-1]
    eps = (sigma_a_bar * math.sqrt(s) / (P * np.sqrt(rho))) ** (2.0 / (L + 1))
    tau = np.sqrt(eps ** (L - 1) / (rho * sigma_a_bar**2 * s))
    blocks = [s_l[ell - 1] * eps ** (-ell) / (P * rho) for ell in range(1, L + 1)]
    return {"eps": eps, "tau": tau, "f": 1.0 - temperature * tau, "U": sigma_a_bar**2 / (P * eps),
            "blocks": blocks, "alphas": list(s_l), "correction_order": float(np.max(eps ** ((L - 1) / 2.0) + eps))}
