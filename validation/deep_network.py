"""Deep networks (L >= 1 hidden layers) for sampling: the network, its joint posterior and the
collapsed target with the readout integrated out (THEORY §1, §5, §7).
drift (THEORY §1, §5, §7).

Network (THEORY §1), width N in every hidden layer, no biases:

    H¹ = W¹ Xᵀ / √N0,   H^ℓ = W^ℓ φ(H^{ℓ-1}) / √N  (ℓ = 2..L),   f = N^{-γ} a φ(H^L),

with H^ℓ, Φ_ℓ = φ(H^ℓ) of shape N × P, W¹: N × N0, W^ℓ: N × N, a: m × N; priors
W^ℓ_ij ~ N(0, σ_ℓ²), a_ri ~ N(0, σ_a²); β = N/T (mean-field, γ = 1) or 1/T (standard, γ = ½).
Parameters are one flat vector θ = [vec W¹, ..., vec W^L, vec a].

Joint log posterior (:meth:`DeepNetwork.logdensity_and_grad`):

    log p(θ | D) = −(β/2) ||fᵀ − Y||² − Σ_ℓ |W^ℓ|²/(2σ_ℓ²) − |a|²/(2σ_a²) + const.

Collapsed target (:meth:`DeepNetwork.marginal_logdensity_and_grad`), the readout integrated out
exactly as in :mod:`validation.collapsed`:

    log p(W | D) = −(m/2) log det M − (β/2) tr(Yᵀ M⁻¹ Y) − Σ_ℓ |W^ℓ|²/(2σ_ℓ²),
    M = I_P + c Φ_Lᵀ Φ_L,   c = σ_a² β N^{-2γ},
    ∂/∂Φ_L = 2c Φ_L R,   R = −(m/2) M⁻¹ + (β/2) M⁻¹ Y Yᵀ M⁻¹.

Back-propagation through the hidden layers (all matrix products, no loops over neurons):

    G_H^ℓ = G_Φ^ℓ ⊙ φ'(H^ℓ),   ∂/∂W^ℓ = G_H^ℓ Φ_{ℓ-1}ᵀ / √N − W^ℓ/σ_ℓ²,
    G_Φ^{ℓ-1} = W^ℓᵀ G_H^ℓ / √N,   ∂/∂W¹ = G_H¹ X / √N0 − W¹/σ_1².

Flops of one collapsed gradient: 6 (L−1) N² P (forward H^ℓ, ∂W^ℓ and G_Φ^{ℓ-1} for ℓ >= 2)
+ 4 N N0 P (layer 1; 0 for orthogonal inputs x_μ = √P e_μ, where H¹ = W¹ elementwise)
+ 4 N P² (Gram Φ_LᵀΦ_L and Φ_L R) + P³/3 (Cholesky) + O(N P) elementwise; :func:`gradient_flops`.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
import math
import threading

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from theory.nonlinearities import Nonlinearity, get_nonlinearity
from theory.spec import ModelSpec, SpecError

from .networks import Scaling, orthogonal_inputs

__all__ = ["DeepNetwork", "gradient_flops"]


@dataclass(frozen=True, eq=False)
class DeepNetwork(Scaling):
    """L hidden layers of width N on the data of a :class:`ModelSpec` (module docstring).

    ``sigmas``: σ_1..σ_L (default: all ``spec.sigma_w``); ``scaling``: "mean-field" or "standard".
    """

    spec: ModelSpec
    width: int
    layers: int = 2
    sigmas: tuple | None = None
    scaling: str = "mean-field"

    def __post_init__(self):
        if isinstance(self.width, bool) or not isinstance(self.width, (int, np.integer)) or self.width < 1:
            raise SpecError(f"width must be an integer >= 1 (got {self.width!r})")
        if isinstance(self.layers, bool) or not isinstance(self.layers, (int, np.integer)) or self.layers < 1:
            raise SpecError(f"layers must be an integer >= 1 (got {self.layers!r})")
        if self.scaling not in ("mean-field", "standard"):
            raise SpecError(f"scaling must be 'mean-field' or 'standard' (got {self.scaling!r})")
        if self.spec.temperature <= 0:
            raise SpecError(f"sampling needs temperature T > 0 (got {self.spec.temperature}); "
                            "the T = 0 posterior is singular")
        if self.sigmas is None:
            object.__setattr__(self, "sigmas", (float(self.spec.sigma_w),) * int(self.layers))
        else:
            sig = tuple(float(s) for s in self.sigmas)
            if len(sig) != self.layers or not all(math.isfinite(s) and s > 0 for s in sig):
                raise SpecError(f"sigmas must list layers = {self.layers} finite numbers > 0 (got {self.sigmas!r})")
            object.__setattr__(self, "sigmas", sig)

    # ------------------------------------------------------------------ sizes
    @cached_property
    def nonlinearity(self) -> Nonlinearity:
        return get_nonlinearity(self.spec.nonlinearity)

    @cached_property
    def inputs(self) -> np.ndarray:
        return self.spec.inputs if self.spec.inputs is not None else orthogonal_inputs(self.spec.P)

    @property
    def shapes(self) -> list:
        """[(N, N0), (N, N), ..., (N, N), (m, N)]: hidden weights W¹..W^L, then the readout a."""
        N = self.width
        return [(N, self.inputs.shape[1])] + [(N, N)] * (self.layers - 1) + [(self.spec.m, N)]

    @property
    def dim(self) -> int:
        return sum(r * c for r, c in self.shapes)

    @property
    def dim_hidden(self) -> int:
        return sum(r * c for r, c in self.shapes[:-1])

    @cached_property
    def _offsets(self):
        sizes = [r * c for r, c in self.shapes]
        return np.concatenate([[0], np.cumsum(sizes)])

    def unpack_hidden(self, w: np.ndarray) -> list:
        """Views [W¹, ..., W^L] of the flat hidden part ``w``."""
        off = self._offsets
        return [w[off[k]:off[k + 1]].reshape(shape) for k, shape in enumerate(self.shapes[:-1])]

    def unpack(self, theta: np.ndarray):
        """(list of W^ℓ, a) as views of θ."""
        theta = np.asarray(theta, dtype=np.float64)
        n = self.dim_hidden
        return self.unpack_hidden(theta[:n]), theta[n:].reshape(self.shapes[-1])

    def pack(self, Ws, a) -> np.ndarray:
        return np.concatenate([np.ravel(W) for W in Ws] + [np.ravel(a)])

    @cached_property
    def _local(self):
        """Per-thread cache of the collapsed sweep (the state where the last sweep ended)."""
        return threading.local()

    @cached_property
    def prior_scale(self) -> np.ndarray:
        """σ_ℓ on the entries of W^ℓ (flat hidden part): MALA steps in units of the prior scale."""
        return np.concatenate([np.full(r * c, s) for (r, c), s in zip(self.shapes[:-1], self.sigmas)])

    def prior_sample(self, rng: np.random.Generator) -> np.ndarray:
        Ws = [s * rng.standard_normal(shape) for shape, s in zip(self.shapes[:-1], self.sigmas)]
        a = self.spec.sigma_a * rng.standard_normal(self.shapes[-1])
        return self.pack(Ws, a)

    # ------------------------------------------------------------------ forward
    @cached_property
    def _setup(self) -> dict:
        X = self.inputs
        P, N0 = X.shape
        diagonal = P == N0 and np.array_equal(X, X[0, 0] * np.eye(N0))
        return {"diagonal": diagonal, "c_in": float(X[0, 0]) / math.sqrt(N0) if diagonal else None,
                "XsT": np.ascontiguousarray(X.T / math.sqrt(N0)), "Xs": np.ascontiguousarray(X / math.sqrt(N0)),
                "Y": self.spec.targets(), "linear": self.spec.nonlinearity == "linear",
                "inv_sqrt_n": 1.0 / math.sqrt(self.width)}

    def _phi(self, H):
        if self._setup["linear"]:
            return H, None
        phi, dphi = self.nonlinearity.eval(H)  # strided views of one (n, 2) array: copy, or BLAS is bypassed
        return np.ascontiguousarray(phi), np.ascontiguousarray(dphi)

    def forward(self, Ws) -> list:
        """[(H^ℓ, Φ_ℓ, φ'(H^ℓ) or None for linear)] for ℓ = 1..L on the training inputs (N × P each)."""
        st = self._setup
        out = []
        if st["diagonal"]:
            H = st["c_in"] * Ws[0] if st["c_in"] != 1.0 else Ws[0]
        else:
            H = Ws[0] @ st["XsT"]
        phi, dphi = self._phi(H)
        out.append((H, phi, dphi))
        for W in Ws[1:]:
            H = (W @ phi) * st["inv_sqrt_n"]
            phi, dphi = self._phi(H)
            out.append((H, phi, dphi))
        return out

    def activations(self, theta) -> list:
        """[Φ_1, ..., Φ_L] (N × P each)."""
        Ws, _ = self.unpack(theta)
        return [phi for _, phi, _ in self.forward(Ws)]

    def outputs(self, theta) -> np.ndarray:
        """f (P × m) on the training inputs."""
        Ws, a = self.unpack(theta)
        return (a @ self.forward(Ws)[-1][1]).T / self.width**self.gamma

    # ------------------------------------------------------------------ backward
    def _backward(self, Ws, fwd, g_phi, gWs):
        """Back-propagate ∂/∂Φ_L = ``g_phi`` into ∂/∂W^ℓ (written to ``gWs``, prior terms included);
        returns Σ_ℓ |W^ℓ|²/σ_ℓ²."""
        st = self._setup
        ss = 0.0
        for ell in range(self.layers - 1, -1, -1):
            H, phi, dphi = fwd[ell]
            gH = g_phi if dphi is None else g_phi * dphi
            W = Ws[ell]
            inv_s2 = 1.0 / self.sigmas[ell] ** 2
            if ell > 0:
                np.matmul(gH, fwd[ell - 1][1].T, out=gWs[ell])
                gWs[ell] *= st["inv_sqrt_n"]
                g_phi = (W.T @ gH) * st["inv_sqrt_n"]
            elif st["diagonal"]:
                np.multiply(gH, st["c_in"], out=gWs[0])
            else:
                np.matmul(gH, st["Xs"], out=gWs[0])
            gWs[ell] -= inv_s2 * W
            ss += float(np.vdot(W, W)) * inv_s2
        return ss

    def logdensity_and_grad(self, theta: np.ndarray):
        """Joint (log p(θ | D) up to a constant, ∇ log p), the posterior of the module docstring."""
        theta = np.ascontiguousarray(theta, dtype=np.float64)
        Ws, a = self.unpack(theta)
        fwd = self.forward(Ws)
        phi = fwd[-1][1]
        scale = 1.0 / self.width**self.gamma
        err = scale * (a @ phi) - self._setup["Y"].T  # m × P
        beta, sa2 = self.beta, self.spec.sigma_a**2
        grad = np.empty(self.dim)
        gWs, ga = self.unpack_hidden(grad[:self.dim_hidden]), grad[self.dim_hidden:].reshape(a.shape)
        np.matmul(err, phi.T, out=ga)
        ga *= -beta * scale
        ga -= a / sa2
        g_phi = (-beta * scale) * (a.T @ err)
        ss = self._backward(Ws, fwd, g_phi, gWs)
        logp = -0.5 * beta * float(np.vdot(err, err)) - 0.5 * ss - 0.5 * float(np.vdot(a, a)) / sa2
        return logp, grad

    def readout_factor(self, gram: np.ndarray):
        """(Cholesky factor of M, log det M, c) for M = I + c Φ_LᵀΦ_L, c = σ_a² β N^{-2γ}, from the last layer's
        Gram matrix ``gram`` = Φ_LᵀΦ_L (the readout integrated out, module docstring); None where M is not
        positive definite."""
        c = self.readout_scale
        M = gram * c
        M[np.diag_indices_from(M)] += 1.0
        try:
            fac = cho_factor(M, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            return None
        return fac, 2.0 * float(np.sum(np.log(np.diag(fac[0])))), c

    @property
    def readout_scale(self) -> float:
        """c = σ_a² β N^{-2γ} of M = I + c Φ_LᵀΦ_L."""
        return self.spec.sigma_a**2 * self.beta / self.width ** (2 * self.gamma)

    def readout_loglik(self, factor) -> float:
        """ℓ(G) = −(m/2) log det M − (β/2) tr(Yᵀ M⁻¹ Y) from :meth:`readout_factor`'s ``factor`` of M (−inf for
        None: M not positive definite); the collapsed log density without the weights' prior."""
        if factor is None:
            return -math.inf
        fac, logdet, _ = factor
        Y = self._setup["Y"]
        return -0.5 * self.spec.m * logdet - 0.5 * self.beta * float(np.vdot(Y, cho_solve(fac, Y, check_finite=False)))

    def marginal_logdensity_and_grad(self, w: np.ndarray):
        """Collapsed (log p(W | D) up to a constant, ∇_W) with the readout integrated out; ``w`` is
        the flat hidden part [vec W¹, ..., vec W^L]."""
        w = np.ascontiguousarray(w, dtype=np.float64)
        Ws = self.unpack_hidden(w)
        fwd = self.forward(Ws)
        phi = fwd[-1][1]
        Y, m, beta = self._setup["Y"], self.spec.m, self.beta
        factor = self.readout_factor(phi.T @ phi)
        if factor is None:
            return -np.inf, np.full(w.shape, np.nan)
        fac, logdet, c = factor
        MiY = cho_solve(fac, Y, check_finite=False)
        Mi = cho_solve(fac, np.eye(phi.shape[1]), check_finite=False)
        R = (0.5 * beta) * (MiY @ MiY.T) - (0.5 * m) * Mi
        g_phi = (2.0 * c) * (phi @ R)
        grad = np.empty_like(w)
        ss = self._backward(Ws, fwd, g_phi, self.unpack_hidden(grad))
        logp = -0.5 * m * logdet - 0.5 * beta * float(np.vdot(Y, MiY)) - 0.5 * ss
        return logp, grad


def gradient_flops(net: DeepNetwork) -> float:
    """Matrix-product flops of one collapsed gradient (module docstring)."""
    N, L, P = net.width, net.layers, net.spec.P
    N0 = net.inputs.shape[1]
    first = 0.0 if net._setup["diagonal"] else 4.0 * N * N0 * P
    return 6.0 * (L - 1) * N * N * P + first + 4.0 * N * P * P + P**3 / 3.0
