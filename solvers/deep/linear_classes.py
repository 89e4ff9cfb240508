"""Deep linear networks on orthogonal class-structured data (K_0 = I, THEORY §3, §5): one scalar equation per
class (the general-input equations and their derivation: :mod:`solvers.deep.linear`).

Class-structured orthogonal data (K_0 = I, THEORY §3): X = diag(x_c), t = E diag(τ_c) with the
class indicator E, and K_ℓ = s_ℓ I + E k_ℓ Eᵀ with
k_ℓ = diag(σ_a² s s_ℓ τ_c² Σ_{k=1}^{ℓ} (1 − x_c)^{−(L+k−1)}): kernel class diagonal s_ℓ + k_ℓ[c, c],
class blocks k_ℓ (one-layer schema, :mod:`theory.observables`); f = diag(σ_a² s τ_c (1−x_c)^{−L}),
U = diag(σ_a² / (1 − x_c)). :func:`solve_deep_linear_classes` finds every root of each h_c by
bracketing on a grid in u = −log(1 − x) and bisection.

Per class c, with u = −log(1 − x_c), s = Π_ℓ σ_ℓ² and τ(u) = √(x (1 − x)^{L−1} / (P_c σ_a² s)), the roots of

    h_c(u) = σ_a² s τ(u) e^{L u} + T τ(u) − 1

are the class's saddle points; a root is stable (a local maximum of the kernel potential Ψ_c,
:func:`class_potential`) iff h_c'(u) > 0, and the stable root with the largest per-class action is selected.
"""
from __future__ import annotations

from dataclasses import dataclass
import math
import time

import numpy as np
from scipy import optimize

from solvers.deep.common import DeepLinearError, check_linear_spec, layer_sigmas, linear_verdict, with_result_keys
from solvers.results import Result
from theory.observables import Observables, check_layer, layer_summaries
from theory.spec import ModelSpec, SpecError

__all__ = ["DeepLinearClassSolution", "solve_deep_linear_classes", "class_potential"]


@dataclass(frozen=True, kw_only=True)
class DeepLinearClassSolution(Result):
    """Class-block solution for orthogonal class-structured data (K_0 = I).

    Per class c: ``x[c]`` (X = diag x), ``tau[c]`` (t_μ = τ_c e_c for μ in c); hidden layer ℓ has
    K_ℓ = ``alphas[ℓ-1]`` I + E ``blocks[ℓ-1]`` Eᵀ. ``class_roots[c]``: every root of h_c as
    {"x", "free_energy", "stable", "selected"}; ``free_energy`` = Σ_c of the selected roots.
    ``residual``: max_c |f_cc + T τ_c − 1| (the class equation h_c at the selected roots);
    ``converged`` needs a stable selected root in every class; ``error_estimate`` 0 (closed form).
    """

    spec: ModelSpec
    sigmas: tuple
    x: np.ndarray
    tau: np.ndarray
    readout_moment: np.ndarray
    outputs: np.ndarray  # f per class (m, m), [c, r]
    alphas: tuple
    blocks: tuple
    free_energy: float
    class_roots: list

    @property
    def layers(self) -> int:
        return len(self.sigmas)

    def layer_observables(self, ell: int) -> Observables:
        """Observables with the kernel of hidden layer ``ell`` (1..L)."""
        check_layer(ell, self.layers)
        k = self.blocks[ell - 1]
        return Observables(outputs=self.outputs, readout_moment=self.readout_moment,
                           kernel_diagonal=self.alphas[ell - 1] + np.diag(k), kernel_blocks=k.copy())

    def observables(self) -> Observables:
        return self.layer_observables(self.layers)

    def layer_summaries(self) -> list:
        """[{"layer": ℓ, "kernel_diagonal", "kernel_blocks"}] for ℓ = 1..L (:func:`theory.observables.layer_summaries`)."""
        return layer_summaries(self, self.layers)

    def to_json(self) -> dict:
        return with_result_keys(self, {
            "layers": self.layer_summaries(), "sigmas": list(self.sigmas), "outputs": self.outputs.tolist(),
            "readout_moment": self.readout_moment.tolist(), "free_energy": self.free_energy,
            "X_diagonal": self.x.tolist(), "class_roots": self.class_roots, "time_seconds": self.time_seconds})


def _class_roots(p, sa2, s, T, L, n_grid=4000):
    """Every root x ∈ (0, 1) of h(x) = σ_a² s τ (1−x)^{−L} + T τ − 1, τ = √(x(1−x)^{L−1}/(p σ_a² s)).

    Bracketed on a grid in u = −log(1 − x) ∈ [1e-12, min(60, 600/L)], refined by brentq. Returns a list of
    (x, τ, S, stable) with the per-class action S and stability h'(x) > 0.
    """
    def tau(u):
        x = -math.expm1(-u)
        return math.sqrt(x * math.exp(-(L - 1) * u) / (p * sa2 * s))

    def h(u):
        tu = tau(u)
        return sa2 * s * tu * math.exp(L * u) + T * tu - 1.0

    us = np.geomspace(1e-12, min(60.0, 600.0 / L), n_grid)
    tv = np.sqrt(-np.expm1(-us) * np.exp(-(L - 1) * us) / (p * sa2 * s))
    hv = sa2 * s * tv * np.exp(L * us) + T * tv - 1.0
    out = []
    for i in np.nonzero(np.sign(hv[:-1]) != np.sign(hv[1:]))[0]:
        u = optimize.brentq(h, us[i], us[i + 1], xtol=1e-15, rtol=1e-15)
        x, tu = -math.expm1(-u), tau(u)
        S = -0.5 * (L - 1) * math.expm1(u) - 0.5 * L * (-u) - p * tu + 0.5 * T * p * tu * tu
        out.append((x, tu, S, bool(hv[i + 1] > hv[i])))
    return out


def solve_deep_linear_classes(spec: ModelSpec, layers: int = 2, sigmas=None) -> DeepLinearClassSolution:
    """Class-block solution for orthogonal class-structured data (spec.inputs is None): O(L m) scalars.

    Each class picks its stable root with the largest action (the classes decouple, S is additive).
    """
    check_linear_spec(spec, "solve_deep_linear_classes")
    if spec.inputs is not None:
        raise SpecError("solve_deep_linear_classes needs orthogonal class-structured data (inputs=None); "
                        "use solve_deep_linear for explicit inputs")
    sig = layer_sigmas(spec, layers, sigmas)
    start = time.perf_counter()
    sig2 = [v * v for v in sig]
    L, m, sa2, T = len(sig), spec.m, spec.sigma_a**2, spec.temperature
    s = float(np.prod(sig2))
    xs, taus, S_total, class_roots = [], [], 0.0, []
    for c, p in enumerate(spec.class_sizes):
        roots = _class_roots(p, sa2, s, T, L)
        if not roots:
            raise DeepLinearError(f"deep linear class equation: no root in 0 < x < 1 for class {c} "
                                  f"(P_c = {p}, layers = {L}, T = {T}); please report")
        best = max(range(len(roots)), key=lambda i: (roots[i][3], roots[i][2]))
        x, tu, S, _ = roots[best]
        xs.append(x), taus.append(tu)
        S_total += S
        class_roots.append([{"x": r[0], "free_energy": r[2], "stable": r[3], "selected": i == best}
                            for i, r in enumerate(roots)])
    x, tau = np.array(xs), np.array(taus)
    alphas, blocks = [], []
    acc = np.zeros(m)
    for ell in range(1, L + 1):
        sl = float(np.prod(sig2[:ell]))
        acc = acc + (1.0 - x) ** (-(L + ell - 1))
        alphas.append(sl)
        blocks.append(np.diag(sa2 * s * sl * tau**2 * acc))
    U = np.diag(sa2 / (1.0 - x))
    f = np.diag(sa2 * s * tau * (1.0 - x) ** (-L))
    residual = float(np.max(np.abs(np.diag(f) + T * tau - 1.0)))
    unstable = [c for c, roots in enumerate(class_roots) if not any(r["stable"] and r["selected"] for r in roots)]
    verdict = linear_verdict(not unstable, residual, f" in class(es) {unstable}" if unstable else "")
    return DeepLinearClassSolution(spec=spec, sigmas=sig, x=x, tau=tau, readout_moment=U, outputs=f,
                                   alphas=tuple(alphas), blocks=tuple(blocks), free_energy=S_total,
                                   class_roots=class_roots, **verdict, iterations=0, residual=residual,
                                   error_estimate=0.0, time_seconds=time.perf_counter() - start)


def class_potential(spec: ModelSpec, layers: int, c: int, lambdas, sigmas=None) -> float:
    """Ψ_c(λ_1..λ_{L-1}) for class c of orthogonal data: the variational function whose maximum is
    the class's share of log Z / N (:mod:`solvers.deep.linear`, "Which root").

    λ_ℓ is the eigenvalue of K_ℓ along the class-mean direction (the within-class bulk stays at
    s_ℓ); Ψ_c = F(σ_L² λ_{L-1}) − ½ Σ_ℓ [r_ℓ − 1 − log r_ℓ], r_ℓ = λ_ℓ / (σ_ℓ² λ_{ℓ-1}), λ_0 = 1,
    F(κ) = min_θ [−½ log(1 − σ_a² κ θ²) − √P_c θ + (T/2) θ²] (the one-layer dual along that direction).
    """
    sig = layer_sigmas(spec, layers, sigmas)
    sig2 = [v * v for v in sig]
    lam = [1.0, *[float(v) for v in lambdas]]
    if len(lam) != len(sig):
        raise SpecError(f"lambdas must list layers − 1 = {len(sig) - 1} values (got {len(lam) - 1})")
    p, sa2, T = spec.class_sizes[c], spec.sigma_a**2, spec.temperature
    kappa = sig2[-1] * lam[-1]
    ub = 1.0 / math.sqrt(sa2 * kappa)

    def dg(th):  # derivative of the one-layer dual in θ
        return sa2 * kappa * th / (1 - sa2 * kappa * th * th) - math.sqrt(p) + T * th

    th = optimize.brentq(dg, 0.0, ub * (1 - 1e-15), xtol=1e-16, rtol=1e-15)
    F = -0.5 * math.log1p(-sa2 * kappa * th * th) - math.sqrt(p) * th + 0.5 * T * th * th
    out = F
    for ell in range(1, len(lam)):
        r = lam[ell] / (sig2[ell - 1] * lam[ell - 1])
        out -= 0.5 * (r - 1 - math.log(r))
    return out
