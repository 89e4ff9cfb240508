"""Deep nonlinear networks on orthogonal class-structured data: the class-block reduced action
(THEORY §3, §5), its one-dimensional and Hubbard–Stratonovich integrals, and its observables.

Setting
-------
K_0 = I (P × P), classes c = 1..m of sizes P_c, L hidden layers with priors σ_1..σ_L, readout
σ_a, temperature T, φ one of linear, relu (closed-form 1-D integrals) or a smooth φ
(normcdf, erf, tanh, or a kink-free expression; 1-D Gauss–Hermite).

Per hidden layer ℓ the activation kernel K_ℓ = (1/N) Σ_i φ(h_i^ℓ) φ(h_i^ℓ)ᵀ and its conjugate
K̃_ℓ are class-block matrices (exact at the symmetric saddle point)

    K = E k Eᵀ + D_δ,   K̃ = E k̃ Eᵀ + D_δ̃,       E = class indicator (P × m),

k, k̃ symmetric m × m, D_δ = diag(δ_c(μ)); δ_c >= 0 is the within-class diagonal excess, so
K_μν = k_cd (μ ∈ c, ν ∈ d, μ ≠ ν) and K_μμ = k_cc + δ_c: ``kernel_blocks`` = k and
``kernel_diagonal`` = diag(k) + δ in the schema of :mod:`theory.observables`. With Π = diag(P_c)

    tr K̃ K = Σ_cd P_c P_d k̃_cd k_cd + Σ_c P_c (k̃_cc δ_c + δ̃_c k_cc + δ̃_c δ_c).

Action per neuron (THEORY §5)
-----------------------------
    S = Σ_{ℓ<L} [−½ tr K̃_ℓ K_ℓ + log Z_ℓ] + log Z_L − Σ_c P_c t_cc + (T/2) Σ_c P_c ||t_c||²,

    Z_ℓ = E_{h ~ N(0, σ_ℓ² K_{ℓ-1})} exp(½ φ(h)ᵀ K̃_ℓ φ(h))                       (ℓ < L),
    Z_L = E_{a ~ N(0, σ_a² I)} E_h exp(Σ_μ (t_{c(μ)}·a) φ(h_μ)) = (same form, k̃ = σ_a² t tᵀ, δ̃ = 0):

integrating the readout out, a | h ~ N(σ_a² Σ_μ t_μ φ_μ, σ_a²), leaves the block tilt
½ σ_a² Sᵀ t tᵀ S with S_c = Σ_{μ ∈ c} φ(h_μ).

Reduction of one layer (input kernel (k, δ), prior σ, tilt (k̃, δ̃)):

* Hubbard–Stratonovich: e^{½ Sᵀ k̃ S} = E_{u ~ N(0, k̃)} e^{u·S} (k̃ ⪰ 0: it is a Gram matrix, below);
  u = B v with v ~ N(0, I_m), B = chol(k̃) for a hidden tilt and B = σ_a t (u_c = t_c·a,
  a = σ_a v) for the readout;
* the block-covariance Gaussian h ~ N(0, σ² K) splits into a class-shared ξ = σ R w
  (w ~ N(0, I_m), k = R Rᵀ) and independent within-class noise h_μ = ξ_c + s_c z_μ,
  s_c = σ √δ_c, z_μ ~ N(0, 1); for ℓ = 1 (K_0 = I): ξ = 0, s = σ_1;
* given (v, w) the inputs factorise, so with the 1-D cumulant

      ζ_c(ξ_c, u_c) = log E_{z ~ N(0,1)} exp(u_c φ(ξ_c + s_c z) + ½ δ̃_c φ(ξ_c + s_c z)²)

  the layer costs one integral over y = (v, w) ∈ R^m (ℓ = 1) or R^{2m} (ℓ >= 2):

      log Z = log E_{y ~ N(0, I)} exp(Σ_c P_c ζ_c).

The tilted measure of the layer is the y-measure ∝ N(y; 0, I) e^{Σ_c P_c ζ_c} times, for each
μ ∈ c, the 1-D tilted law p(z | y) ∝ N(z) e^{u_c φ + ½ δ̃_c φ²}. Writing E_1 for 1-D tilted means
and E for the y-average:

* kernel of this layer (the K̃-stationarity, K_ℓ = E[φ φᵀ]):
      k_cd = E[E_1[φ]_c E_1[φ]_d],   δ_c = E[E_1[φ²]_c] − E[E_1[φ]_c²];
* readout layer: f_cr = E[a_r E_1[φ]_c], U = E[a aᵀ];
* conjugate of the input kernel (K-stationarity, K̃_{ℓ-1} = 2 ∂ log Z_ℓ / ∂K_{ℓ-1}): the Gaussian
  identity ∂/∂K_μν E_{N(0,σ²K)}[F] = (σ²/2) E[∂_μ ∂_ν F] (entries taken as independent) with
  F = E_u Π_μ e^{l_μ(h_μ)}, l = u_c φ + ½ δ̃_c φ², gives K̃_μν = σ² E[l'_μ l'_ν] (μ ≠ ν) and
  K̃_μμ = σ² E[l''_μ + l'_μ²]. Stein's identity in z removes φ' and φ'' (so ReLU's kink costs
  nothing): E_1[l'] = E_1[z] / s and E_1[l'' + l'²] = (E_1[z²] − 1) / s². Hence

      k̃_cd = σ² E[W_c W_d],  W_c = E_1[z]_c / s_c        (a Gram matrix: k̃ ⪰ 0, HS applies),
      δ̃_c = σ² E[Var_1(z)_c − 1] / s_c² = E[Var_1(z)_c − 1] / δ_c.

  Linear check: the readout layer has Var_1(z) = 1, so δ̃ = 0, and W_c = u_c, so
  k̃ = σ_L² t U tᵀ: THEORY §5's K̃_{L-1}.

1-D integrals: linear φ is Gaussian in z: with A = 1 − δ̃ s², b = s (u + δ̃ ξ),
c0 = u ξ + ½ δ̃ ξ², ζ = c0 + b²/(2A) − ½ log A and z | y ~ N(b/A, 1/A) (domain A > 0). ReLU splits
at z0 = −ξ/s into the untilted lower tail (mass Φ_N(z0)) and the same Gaussian on z > z0
(truncated-normal moments with log_ndtr, no cancellation). Smooth φ: probabilists' Gauss–Hermite
with ``nz`` nodes (compiled; the solver estimates its error against 3/4 of the nodes,
:func:`solvers.deep.saddle.integration_errors`).

Outer integrals over y: a :class:`Rule` of standard-normal nodes (tensor Gauss–Hermite or
scrambled Sobol replicates), mapped through a Gaussian proposal y = μ + C x (:class:`Proposal`,
moment-matched to the tilted y-measure by the solver), with importance log-weights
log N(y; 0, I) − log N(x; 0, I) + log|det C| + Σ_c P_c ζ_c. For linear φ the y-integrand is
exactly Gaussian; once the proposal matches it, Gauss–Hermite is exact (machine precision).

Modules (this one states the equations and re-exports them)
-------------------------------------------------------------
* :mod:`theory.deep_tilted` — the 1-D tilted integrals (closed forms, Gauss–Hermite) and the domain growth rate;
* :mod:`theory.deep_rules` — outer rules (Gauss–Hermite, Smolyak, Sobol') and Gaussian proposals;
* :mod:`theory.deep_fields` — class-block packing, block trace, Hubbard–Stratonovich fields of a layer;
* :mod:`theory.deep_layer` — one layer's y-integral and everything it gives (:class:`LayerResult`);
* :mod:`theory.deep_neurons` — neurons drawn from a layer's tilted single-neuron measure;
* :mod:`theory.domain_errors` — :class:`OutsideDomain`.
The mode search of the coverage check is a solver: :mod:`solvers.deep.modes`.

References: A. van Meegen and H. Sompolinsky, Nat. Commun. 16, 3354 (2025), arXiv:2406.16689;
../shared/THEORY.md §5 (derivation route; the formulas above are derived here and checked
against the deep linear closed form, the one-layer solver and sampled deep networks in
tests/solvers/deep/test_nonlinear.py).
"""
from __future__ import annotations

from theory.deep_fields import block_trace, layer_fields, tilt_factor, tril_pack, tril_unpack
from theory.deep_layer import LayerResult, layer_integral, log_integrand, untilted_kernels
from theory.deep_neurons import _inverse_cdf  # noqa: F401  (imported from here by validation.deep_swaps)
from theory.deep_neurons import sample_layer_neurons, tilted_z_grid, tilted_z_logpdf
from theory.deep_rules import Proposal, Rule, gauss_hermite_rule, smolyak_rule, sobol_rule
from theory.deep_tilted import OneD, growth_rate, tilted_moments
from theory.domain_errors import OutsideDomain

__all__ = ["OutsideDomain", "OneD", "Rule", "Proposal", "gauss_hermite_rule", "sobol_rule", "smolyak_rule",
           "tilted_moments", "LayerResult", "layer_integral", "block_trace", "tril_pack", "tril_unpack",
           "untilted_kernels", "growth_rate", "log_integrand", "tilt_factor", "layer_fields", "tilted_z_grid",
           "tilted_z_logpdf", "sample_layer_neurons"]
