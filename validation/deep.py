"""Deep networks (L >= 1 hidden layers) for sampling: posterior, collapsed MALA, per-layer observables,
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

A sweep (:func:`deep_collapsed_sweep`) is ``n_mala`` MALA steps on all W^ℓ jointly, preconditioned
by the prior (inverse mass σ_ℓ² on layer ℓ: steps in units of the prior scale), then an
exact draw of a | W (:func:`sample_readout`, Matheron's rule). :func:`run_deep_chain` adapts the
step by dual averaging to acceptance 0.574 during burn-in only, with one BLAS thread per chain.

Observables per hidden layer ℓ (in the one-layer schema of :mod:`theory.observables`): the class
diagonal and class blocks of the activation kernel K_ℓ = Φ_ℓᵀΦ_ℓ/N; code fractions
(:func:`validation.observables.neuron_codes` on class-mean activations); plus f and
U = a aᵀ/N. Drift per layer (:func:`layer_drift`): for the class-mean activation vectors
v_i(s) ∈ R^m of neuron i at sampler time s,

    D(Δ) = mean_i ||v_i(s+Δ) − v_i(s)||² / mean_{i≠j} ||v_i(s) − v_j(s)||²,

averaged over s: 0 = frozen patterns, ≈ 1 = neurons as different from their own past as from a
random other neuron (fully reshuffled). (:func:`validation.coding.pattern_drift` uses the
reshuffle across the two times instead of within one; for stationary chains the two agree up to
O(1/N).) Neurons enter with the weight of their activity; :func:`measure_drift` also reports
the strongly active neurons (pattern norm > 4 × median: the code carriers of a sparse code) and
the bulk separately.

Theory against sampling: :func:`validate_deep` (deep linear closed form of
:mod:`solvers.deep.linear`, or the class-block solver :mod:`solvers.deep.nonlinear` for nonlinear φ,
layer by layer, single width or 1/N extrapolation).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
import math
import threading
import time

import numba
import numpy as np
from scipy.linalg import cho_factor, cho_solve
from threadpoolctl import threadpool_limits

from theory.linear import class_summary
from theory.nonlinearities import Nonlinearity, get_nonlinearity
from theory.spec import ModelSpec, SpecError, class_labels

from .diagnostics import mcse, rhat_rank
from .networks import Scaling, orthogonal_inputs
from theory.codes import code_fractions, neuron_codes, split_layer_vector
from .samplers import StepSizeAdaptation

__all__ = ["DeepNetwork", "sample_readout", "deep_collapsed_sweep", "gradient_flops", "layer_observables",
           "observables_vector", "split_vector", "class_mean_activations", "layer_drift", "drift_curve", "active_mask",
           "run_deep_chain", "combine_chains", "validate_deep", "C_P_OVER_N", "measure_drift"]


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

    def marginal_logdensity_and_grad(self, w: np.ndarray):
        """Collapsed (log p(W | D) up to a constant, ∇_W) with the readout integrated out; ``w`` is
        the flat hidden part [vec W¹, ..., vec W^L]."""
        w = np.ascontiguousarray(w, dtype=np.float64)
        Ws = self.unpack_hidden(w)
        fwd = self.forward(Ws)
        phi = fwd[-1][1]
        Y, m, beta = self._setup["Y"], self.spec.m, self.beta
        c = self.spec.sigma_a**2 * beta / self.width ** (2 * self.gamma)
        M = phi.T @ phi
        M *= c
        M[np.diag_indices_from(M)] += 1.0
        try:
            fac = cho_factor(M, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            return -np.inf, np.full(w.shape, np.nan)
        logdet = 2.0 * float(np.sum(np.log(np.diag(fac[0]))))
        MiY = cho_solve(fac, Y, check_finite=False)
        Mi = cho_solve(fac, np.eye(len(M)), check_finite=False)
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


def sample_readout(rng: np.random.Generator, net: DeepNetwork, Ws) -> np.ndarray:
    """Exact draw of a | W (m × N): Gaussian with B = √β N^{-γ} Φ_L (N × P), by Matheron's rule
    a = a₀ + σ_a² B (I + σ_a² BᵀB)⁻¹ (√β y_r − Bᵀa₀ − u), a₀ ~ N(0, σ_a² I), u ~ N(0, I_P)
    (as :func:`validation.networks.sample_readout`)."""
    phi = net.forward(Ws)[-1][1]
    sb = math.sqrt(net.beta)
    B = sb * phi / net.width**net.gamma
    sa2 = net.spec.sigma_a**2
    Y = net._setup["Y"]
    m, N, P = net.spec.m, net.width, B.shape[1]
    a0 = math.sqrt(sa2) * rng.standard_normal((N, m))
    u = rng.standard_normal((P, m))
    G = np.eye(P) + sa2 * (B.T @ B)
    corr = np.linalg.solve(G, sb * Y - B.T @ a0 - u)
    return (a0 + sa2 * B @ corr).T


@numba.njit(cache=True)
def _propose(u, g, xi, h, eps, sd, u_new, w_new):
    """u' = u + h g + ε ξ and w' = σ ⊙ u' in one pass."""
    for i in range(u.shape[0]):
        v = u[i] + h * g[i] + eps * xi[i]
        u_new[i] = v
        w_new[i] = v * sd[i]


@numba.njit(cache=True)
def _reverse(u, u_new, g_new, sd, h):
    """g' ← σ ⊙ g' (whitened gradient, in place) and Σ_i (u − u' − h g')²: the reverse proposal."""
    s = 0.0
    for i in range(u.shape[0]):
        gi = g_new[i] * sd[i]
        g_new[i] = gi
        b = u[i] - u_new[i] - h * gi
        s += b * b
    return s


def deep_collapsed_sweep(rng: np.random.Generator, net: DeepNetwork, theta: np.ndarray, step_size: float,
                         n_mala: int = 5):
    """``n_mala`` MALA steps on log p(W | D) for all W^ℓ jointly, then a | W exactly.

    The steps run in prior-whitened coordinates u = W^ℓ/σ_ℓ (MALA with inverse mass σ_ℓ², as
    :func:`validation.samplers.mala_step`: u' = u + (ε²/2)∇_u log p + ε ξ, Metropolis–Hastings
    with both proposal densities). Returns (θ, mean MH acceptance probability of the W steps).
    """
    if not (math.isfinite(step_size) and step_size > 0):
        raise ValueError(f"step_size must be a finite number > 0 (got {step_size!r})")
    n = net.dim_hidden
    sd = net.prior_scale
    w = np.array(theta[:n], dtype=np.float64)
    u = w / sd
    cache = getattr(net._local, "last", None)  # (w, log p, whitened gradient) where the last sweep ended
    if cache is not None and np.array_equal(cache[0], w):
        lp, g = cache[1], cache[2].copy()
    else:
        lp, g = net.marginal_logdensity_and_grad(w)
        if not np.isfinite(lp):
            raise ValueError("deep_collapsed_sweep: the log density is not finite at the current state")
        g *= sd
    h = 0.5 * step_size * step_size
    probs = 0.0
    u_new, w_new = np.empty(n), np.empty(n)
    for _ in range(n_mala):
        xi = rng.standard_normal(n)
        _propose(u, g, xi, h, step_size, sd, u_new, w_new)  # u' = u + h g + ε ξ, w' = σ ⊙ u'
        lp_new, g_new = net.marginal_logdensity_and_grad(w_new)
        if not (np.isfinite(lp_new) and np.all(np.isfinite(g_new))):
            continue
        back2 = _reverse(u, u_new, g_new, sd, h)  # g' ← σ ⊙ g'; Σ (u − u' − h g')²
        log_ratio = lp_new - lp - 0.5 * back2 / (step_size * step_size) + 0.5 * float(xi @ xi)
        prob = math.exp(min(0.0, log_ratio))
        probs += prob
        if rng.random() < prob:
            u, u_new = u_new, u
            w, w_new = w_new, w
            lp, g = lp_new, g_new
    net._local.last = (w.copy(), lp, g.copy())
    a = sample_readout(rng, net, net.unpack_hidden(w))
    return np.concatenate([w, a.ravel()]), probs / n_mala


# ----------------------------------------------------------------------------- observables
def layer_observables(net: DeepNetwork, theta) -> list:
    """[Observables with the kernel of layer ℓ] for ℓ = 1..L (f and U are the same in each)."""
    Ws, a = net.unpack(theta)
    phis = [phi for _, phi, _ in net.forward(Ws)]
    N = net.width
    f = (a @ phis[-1]).T / N**net.gamma
    U = a @ a.T / N
    return [class_summary(net.spec.class_sizes, f, U, phi.T @ phi / N) for phi in phis]


def observables_vector(net: DeepNetwork, theta) -> np.ndarray:
    """Flat [f (m²), U (m²), then per layer kernel diagonal (m) and kernel blocks (m²)]."""
    obs = layer_observables(net, theta)
    parts = [obs[0].outputs.ravel(), obs[0].readout_moment.ravel()]
    for o in obs:
        parts += [o.kernel_diagonal, o.kernel_blocks.ravel()]
    return np.concatenate(parts)


split_vector = split_layer_vector


def class_mean_activations(net: DeepNetwork, theta) -> list:
    """[(N × m) class-mean activations of layer ℓ] for ℓ = 1..L."""
    labels = class_labels(net.spec.class_sizes)
    return [np.stack([phi[:, labels == c].mean(axis=1) for c in range(net.spec.m)], axis=1)
            for phi in net.activations(theta)]


def layer_drift(before, after) -> float:
    """D = mean_i ||v_i' − v_i||² / mean_{i≠j} ||v_i − v_j||² for patterns v (N × m) before and v' after."""
    x = np.asarray(before, dtype=np.float64)
    y = np.asarray(after, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"before and after must be equal-shaped (N >= 2, m) arrays (got {x.shape}, {y.shape})")
    N = x.shape[0]
    own = float(np.mean(np.sum((y - x) ** 2, axis=1)))
    sx = x.sum(axis=0)
    pairs = (2.0 * N * float(np.sum(x * x)) - 2.0 * float(sx @ sx)) / (N * (N - 1))
    return own / pairs if pairs > 0 else 0.0


def drift_curve(snapshots, lags, mask=None) -> list:
    """D(Δ) averaged over start times for ``snapshots`` (S × N × m, equally spaced); ``lags`` in
    snapshot units (NaN where a lag is not shorter than the run). ``mask`` (N booleans): only
    those neurons (e.g. :func:`active_mask`)."""
    X = np.asarray(snapshots, dtype=np.float64)
    if X.ndim != 3:
        raise ValueError(f"snapshots must be (S, N, m) (got shape {X.shape})")
    if mask is not None:
        X = X[:, np.asarray(mask, dtype=bool)]
    out = []
    for lag in lags:
        lag = int(lag)
        if lag < 1 or lag >= len(X) or X.shape[1] < 2:
            out.append(float("nan"))
        else:
            out.append(float(np.mean([layer_drift(X[s], X[s + lag]) for s in range(len(X) - lag)])))
    return out


def active_mask(patterns, factor: float = 4.0) -> np.ndarray:
    """Neurons whose pattern norm ||v_i|| exceeds ``factor`` × the median norm (the few strongly
    active, code-carrying neurons of a sparse code); ``~active_mask`` is the bulk."""
    nn = np.linalg.norm(np.asarray(patterns, dtype=np.float64), axis=1)
    return nn > factor * np.median(nn)


def measure_drift(spec: ModelSpec, width: int, layers: int = 2, sweeps: int = 2500, burn: int = 500,
                  lags=(1, 3, 10, 30, 100), snapshot_every: int = 10, seed: int = 0, sigmas=None,
                  step_size: float = 0.1, active_factor: float = 4.0) -> dict:
    """Drift per hidden layer over sampler time (module docstring), one chain from the prior.

    Snapshots of every layer's class-mean activations every ``snapshot_every`` sweeps after
    ``burn`` (step adapted during burn-in, then frozen); D(Δ) at ``lags`` (in snapshots, reported
    in sweeps too) for all neurons, for the strongly active ones (:func:`active_mask` of the
    first snapshot; NaN with fewer than 3) and for the rest (bulk). Returns {"lags_sweeps",
    "step_size", "acceptance", "layers": [{"layer", "all", "active", "bulk", "n_active"}]}.
    """
    r = run_deep_chain(spec, width, layers, sweeps, burn, seed=seed, sigmas=sigmas, step_size=step_size,
                       snapshot_every=snapshot_every, codes_every=0)
    out = []
    for ell, X in enumerate(r["snapshots"], start=1):
        act = active_mask(X[0], active_factor)
        out.append({"layer": ell, "all": drift_curve(X, lags),
                    "active": drift_curve(X, lags, act) if act.sum() >= 3 else [float("nan")] * len(lags),
                    "bulk": drift_curve(X, lags, ~act), "n_active": int(act.sum())})
    return {"lags_sweeps": [int(lag) * snapshot_every for lag in lags], "step_size": r["step_size"],
            "acceptance": r["acceptance"], "layers": out}


# ----------------------------------------------------------------------------- chains
def run_deep_chain(spec: ModelSpec, width: int, layers: int, sweeps: int, burn: int, *, seed: int = 0,
                   sigmas=None, scaling: str = "mean-field", step_size: float = 0.1, n_mala: int = 5,
                   snapshot_every: int = 0, codes_every: int = 10, theta0=None, adapt: bool = True,
                   after_sweep=None, rng: np.random.Generator | None = None) -> dict:
    """One chain of :func:`deep_collapsed_sweep`, one BLAS thread (threadpoolctl).

    The step (prior units) starts at ``step_size`` and is adapted by dual averaging to acceptance
    0.574 during the ``burn`` sweeps only, then frozen (``adapt=False``: fixed ``step_size``, e.g.
    to compare drift between networks at the same step). Returns {"draws": (sweeps − burn) ×
    observables_vector, "acceptance", "step_size", "code_fractions": per layer {code: mean fraction},
    "snapshots": per layer (S × N × m) class-mean activations every ``snapshot_every`` sweeps after
    burn-in (if > 0), "theta": final state, "seconds", "gradients"}.
    ``after_sweep(rng, net, theta, burning) -> θ``: an extra exact move after every sweep (e.g. the
    mode-changing swaps of :mod:`validation.deep_swaps`). ``rng``: the generator (default
    ``default_rng([seed, width, layers])``).
    """
    if isinstance(sweeps, bool) or not isinstance(sweeps, (int, np.integer)) or sweeps < 1:
        raise ValueError(f"sweeps must be an integer >= 1 (got {sweeps!r})")
    if not (isinstance(burn, (int, np.integer)) and 0 <= burn < sweeps):
        raise ValueError(f"burn must be an integer in [0, sweeps={sweeps}) (got {burn!r})")
    if not (isinstance(n_mala, (int, np.integer)) and n_mala >= 1):
        raise ValueError(f"n_mala must be an integer >= 1 (got {n_mala!r})")
    if not (math.isfinite(step_size) and step_size > 0):
        raise ValueError(f"step_size must be a finite number > 0 (got {step_size!r})")
    net = DeepNetwork(spec, width=width, layers=layers, sigmas=sigmas, scaling=scaling)
    rng = np.random.default_rng([seed, width, layers]) if rng is None else rng
    theta = net.prior_sample(rng) if theta0 is None else np.array(theta0, dtype=np.float64)
    if theta.shape != (net.dim,):
        raise ValueError(f"theta0 must have {net.dim} entries (got shape {theta.shape})")
    t0 = time.perf_counter()
    adapter = StepSizeAdaptation(step_size) if (burn > 0 and adapt) else None
    step, acc, draws = step_size, [], []
    fractions = [dict() for _ in range(layers)]
    n_codes = 0
    snaps = [[] for _ in range(layers)]
    with threadpool_limits(limits=1):
        for s in range(sweeps):
            theta, a = deep_collapsed_sweep(rng, net, theta, step, n_mala)
            if after_sweep is not None:
                theta = after_sweep(rng, net, theta, s < burn)
            if s < burn:
                if adapter is not None:
                    adapter.update(a)
                    step = adapter.step_size if s < burn - 1 else adapter.final_step_size
                continue
            acc.append(a)
            draws.append(observables_vector(net, theta))
            k = s - burn
            need_snap = snapshot_every > 0 and k % snapshot_every == 0
            need_codes = codes_every > 0 and k % codes_every == 0
            if need_snap or need_codes:
                cms = class_mean_activations(net, theta)
                for ell, cm in enumerate(cms):
                    if need_snap:
                        snaps[ell].append(cm)
                    if need_codes:
                        for code, frac in code_fractions(neuron_codes(cm), spec.m).items():
                            fractions[ell][code] = fractions[ell].get(code, 0.0) + frac
                n_codes += need_codes
    return {"draws": np.array(draws), "acceptance": float(np.mean(acc)), "step_size": step,
            "code_fractions": [{k: v / max(n_codes, 1) for k, v in sorted(f.items())} for f in fractions],
            "snapshots": [np.array(sn) for sn in snaps] if snapshot_every > 0 else None,
            "theta": theta, "seconds": time.perf_counter() - t0, "gradients": sweeps * (n_mala + 1)}


def combine_chains(results: list, m: int, layers: int) -> dict:
    """Mean, MCSE and split-R̂ of the observables over chains (each a :func:`run_deep_chain` result),
    as {"mean", "mcse", "rhat"} dicts shaped by :func:`split_vector`, plus the flat arrays."""
    n = min(len(r["draws"]) for r in results)
    draws = np.array([r["draws"][:n] for r in results])
    mean, err, rhat = draws.mean(axis=(0, 1)), mcse(draws), rhat_rank(draws)
    return {"mean": split_vector(mean, m, layers), "mcse": split_vector(err, m, layers),
            "rhat": split_vector(rhat, m, layers), "flat": {"mean": mean, "mcse": err, "rhat": rhat},
            "rhat_max": float(np.max(rhat)), "draws_per_chain": n, "chains": len(results)}


# ----------------------------------------------------------------------------- theory against sampling
#: c of the single-width criterion |sampled − theory| <= 4 MCSE + c·max(1, |theory|)·P/N
C_P_OVER_N = 1.0


def _theory_vector(theory, layers: int) -> np.ndarray:
    parts = [np.asarray(theory.outputs).ravel(), np.asarray(theory.readout_moment).ravel()]
    for ell in range(1, layers + 1):
        o = theory.layer_observables(ell)
        parts += [o.kernel_diagonal, o.kernel_blocks.ravel()]
    return np.concatenate(parts)


def _json_block(v, m, layers, errors=None) -> dict:
    d = split_vector(v, m, layers)
    e = split_vector(errors, m, layers) if errors is not None else None
    out = {"outputs": d["outputs"].tolist(), "readout_moment": d["readout_moment"].tolist(),
           "layers": [{"layer": ell + 1, "kernel_diagonal": lay["kernel_diagonal"].tolist(),
                       "kernel_blocks": lay["kernel_blocks"].tolist()} for ell, lay in enumerate(d["layers"])]}
    if e is not None:
        out["errors"] = {"outputs": e["outputs"].tolist(), "readout_moment": e["readout_moment"].tolist(),
                         "layers": [{"kernel_diagonal": lay["kernel_diagonal"].tolist(),
                                     "kernel_blocks": lay["kernel_blocks"].tolist()} for lay in e["layers"]]}
    return out


def validate_deep(spec: ModelSpec, layers: int = 2, widths=(100,), chains: int = 2, sweeps: int = 600,
                  burn: int = 150, seed: int = 0, sigmas=None, step_size: float = 0.1) -> dict:
    """Deep theory against sampled deep networks (orthogonal class data, random prior starts,
    :func:`run_deep_chain`), layer by layer: the deep linear closed form
    (:func:`solvers.deep.linear.solve_deep_linear_classes`) for linear φ, the class-block solver
    :func:`solvers.deep.nonlinear.solve_deep_nonlinear` otherwise (its integration-error
    estimate ε is added to the allowance: 4 ε, or in quadrature to the intercept error).

    One width: passed if every observable (f, U, each layer's kernel class diagonal and blocks) is
    within 4 MCSE + c·max(1, |theory|)·P/N (c = :data:`C_P_OVER_N`). Two or more widths: each
    observable is fitted by a + b/N (:func:`validation.compare.extrapolate`) and passes if the
    intercept's z-score is below 4. Either way all split-R̂ must be below 1.1. JSON-ready dict with
    "theory" and "sampling" in the ``"layers"`` schema, per-layer code fractions per width, the
    comparison made and, per observable, the z-scores ("z", flat layout of
    :func:`observables_vector`); for nonlinear φ also, per width and layer, the largest difference
    between the theory's and the sampled code fractions ("code_fractions_max_difference";
    informational, not part of "passed").
    """
    from solvers.deep.linear import solve_deep_linear_classes

    from .compare import extrapolate

    if spec.inputs is not None:
        raise SpecError("validate_deep samples orthogonal class-structured data (inputs=None)")
    if chains < 2:
        raise ValueError(f"chains must be >= 2 for R-hat (got {chains})")
    widths = [int(w) for w in widths]
    if not widths or min(widths) < 1:
        raise ValueError(f"widths must be integers >= 1 (got {widths})")
    if spec.nonlinearity == "linear":
        theory = solve_deep_linear_classes(spec, layers, sigmas)
        tv = _theory_vector(theory, layers)
        terr = np.zeros_like(tv)
    else:
        from solvers.deep.nonlinear import solve_deep_nonlinear

        theory = solve_deep_nonlinear(spec, layers, sigmas, raise_on_failure=True)
        tv = _theory_vector(theory, layers)
        terr = np.asarray(theory.errors, dtype=np.float64)
    m = spec.m
    runs = []
    for N in widths:
        res = [run_deep_chain(spec, N, layers, sweeps, burn, seed=seed + 1000 * c, sigmas=sigmas,
                              step_size=step_size) for c in range(chains)]
        comb = combine_chains(res, m, layers)
        codes = [{k: float(np.mean([r["code_fractions"][ell].get(k, 0.0) for r in res]))
                  for k in sorted(set().union(*(r["code_fractions"][ell] for r in res)))} for ell in range(layers)]
        runs.append({"width": N, **comb["flat"], "rhat_max": comb["rhat_max"], "codes": codes,
                     "acceptance": float(np.mean([r["acceptance"] for r in res])),
                     "step_size": float(np.mean([r["step_size"] for r in res]))})
    if len(widths) >= 2:
        a, sa, _, _ = extrapolate(widths, [r["mean"] for r in runs], [r["mcse"] for r in runs])
        z = np.abs(a - tv) / np.maximum(np.hypot(sa, terr), 1e-12)
        ok = bool(np.all(z < 4.0))
        est, err = a, sa
        comparison = f"1/N extrapolation over N = {widths}: intercept z-scores < 4"
    else:
        r = runs[0]
        allowed = 4 * r["mcse"] + 4 * terr + C_P_OVER_N * np.maximum(1.0, np.abs(tv)) * spec.P / widths[0]
        ok = bool(np.all(np.abs(r["mean"] - tv) <= allowed))
        est, err = r["mean"], r["mcse"]
        z = np.abs(est - tv) / np.maximum(err, 1e-12)
        comparison = (f"single width N = {widths[0]}: |sampled − theory| <= 4 MCSE + "
                      f"{C_P_OVER_N:g}·max(1, |theory|)·P/N")
    rhat = max(r["rhat_max"] for r in runs)
    code_diff = None
    if getattr(theory, "code_fractions", None):  # theory neurons' codes (solvers.deep.nonlinear) vs sampled
        code_diff = [[max(abs(th.get(k, 0.0) - r["codes"][ell].get(k, 0.0)) for k in set(th) | set(r["codes"][ell]))
                      for ell, th in enumerate(theory.code_fractions)] for r in runs]
    return {"spec": {**spec.to_dict(), "layers": layers, "sigmas": list(theory.sigmas)},
            "code_fractions_max_difference": code_diff,
            "theory": theory.to_json(), "sampling": _json_block(est, m, layers, err),
            "per_width": [{"width": r["width"], **_json_block(r["mean"], m, layers, r["mcse"]),
                           "code_fractions": r["codes"], "acceptance": r["acceptance"], "step_size": r["step_size"],
                           "rhat_max": r["rhat_max"]} for r in runs],
            "comparison": "equilibrium, chains started from the prior: " + comparison,
            "z_max": float(np.max(z)), "z": z.tolist(), "rhat_max": rhat, "passed": ok and rhat < 1.1}
