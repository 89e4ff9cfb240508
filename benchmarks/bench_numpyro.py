"""NumPyro NUTS on the posterior of :class:`validation.networks.Network` (optional extra).

The same posterior as the package's sampler, written in JAX: same flat
parameterisation (W: N × N0, a: m × N), priors W_ij ~ N(0, σ_1²),
a_ri ~ N(0, σ_a²), likelihood −(β/2) Σ_μ ||f(x_μ) − y_μ||² with β = N/T
(mean field) or 1/T (standard) and f = N^{-γ} a φ(h), h = W Xᵀ/√N0. For
orthogonal inputs X = s·I the first layer is elementwise, h = (s·W)/√N0, as
in the package's kernels, so both sides skip the same products.

Used by ``bench_sampler.py``, which prints the comparison table
(``python benchmarks/bench_sampler.py --samplers numpyro`` runs this side only).

Needs ``jax`` and ``numpyro`` (``pip install jax numpyro``); :func:`unavailable`
says why the comparison is skipped when they cannot be imported.
"""
from __future__ import annotations

import importlib
import math
import time

import numpy as np

__all__ = ["unavailable", "versions", "jax_log_posterior", "jax_gradient", "NutsChains", "JAX_NONLINEARITIES"]

#: nonlinearities with a JAX form here (user expressions are not translated)
JAX_NONLINEARITIES = ("relu", "linear", "erf", "normcdf", "tanh")


def unavailable() -> str | None:
    """None if jax and numpyro import, else the reason (for a clear skip message)."""
    try:
        for name in ("jax", "numpyro"):
            importlib.import_module(name)
    except Exception as exc:  # ImportError, or a broken jaxlib
        return f"NumPyro comparison skipped: {type(exc).__name__}: {exc} (pip install jax numpyro)"
    return None


def versions() -> str:
    import jax
    import jaxlib
    import numpyro
    return f"jax {jax.__version__}, jaxlib {jaxlib.__version__}, numpyro {numpyro.__version__}"


def _jax():
    import jax
    jax.config.update("jax_enable_x64", True)  # float64, as the package
    return jax


def _phi(name: str):
    import jax.numpy as jnp
    from jax.scipy.special import erf, ndtr
    table = {"relu": lambda h: jnp.maximum(h, 0.0), "linear": lambda h: h,
             "erf": lambda h: erf(math.sqrt(math.pi) / 2 * h), "normcdf": ndtr, "tanh": jnp.tanh}
    if name not in table:
        raise ValueError(f"no JAX form for nonlinearity {name!r} (have {', '.join(JAX_NONLINEARITIES)})")
    return table[name]


def jax_log_posterior(net):
    """(log_likelihood(W, a), log_posterior(W, a)) of ``net`` as JAX functions (up to a constant)."""
    _jax()
    import jax.numpy as jnp
    X = np.asarray(net.inputs, dtype=np.float64)
    P, N0 = X.shape
    s = float(X[0, 0])
    diagonal = P == N0 and np.array_equal(X, s * np.eye(N0))
    XsT = jnp.asarray(X.T / math.sqrt(N0))
    YT = jnp.asarray(net.spec.targets().T, dtype=jnp.float64)
    phi = _phi(net.spec.nonlinearity)
    beta, scale = net.beta, 1.0 / net.width**net.gamma
    sw2, sa2 = net.spec.sigma_w**2, net.spec.sigma_a**2
    sqrt_n0 = math.sqrt(N0)

    def log_likelihood(W, a):
        h = (W * s) / sqrt_n0 if diagonal else W @ XsT
        err = scale * (a @ phi(h)) - YT
        return -0.5 * beta * jnp.sum(err * err)

    def log_posterior(W, a):
        return log_likelihood(W, a) - 0.5 * jnp.sum(W * W) / sw2 - 0.5 * jnp.sum(a * a) / sa2

    return log_likelihood, log_posterior


def jax_gradient(net, theta: np.ndarray):
    """A no-argument callable evaluating the jit-compiled value_and_grad of the log posterior at θ
    (blocking until done), for timing. Checked against the package's gradient."""
    jax = _jax()
    _, log_posterior = jax_log_posterior(net)
    vg = jax.jit(jax.value_and_grad(log_posterior, argnums=(0, 1)))
    W, a = (jax.numpy.asarray(x) for x in net.unpack(np.asarray(theta, dtype=np.float64)))
    value, (gW, ga) = vg(W, a)
    ref_value, ref_grad = net.logdensity_and_grad(theta)
    grad = np.concatenate([np.ravel(gW), np.ravel(ga)])
    if not (np.isclose(float(value), ref_value, rtol=1e-10)
            and np.allclose(grad, ref_grad, rtol=1e-8, atol=1e-10 * np.abs(ref_grad).max())):
        raise AssertionError("the JAX log posterior does not match validation.networks")

    def run():
        jax.block_until_ready(vg(W, a))
    return run


class NutsChains:
    """NumPyro NUTS on ``net`` (diagonal mass matrix and step size adapted during ``num_warmup``
    iterations, NumPyro's defaults otherwise), compiled once and run chain by chain (:meth:`chain`).

    A chain runs its warm-up, then draws until its sampler time reaches ``seconds``
    (at least ``min_draws`` draws). Sampler time is the time of the compiled NUTS transitions;
    compilation (once, :attr:`compile_seconds`) and ``observable`` (evaluated on every
    post-warm-up draw) are not counted.
    """

    def __init__(self, net, num_warmup: int = 100, max_tree_depth: int = 10, target_accept: float = 0.8,
                 seed: int = 0, observable=None, min_draws: int = 20, progress: bool = True):
        jax = _jax()
        import numpyro
        import numpyro.distributions as dist
        from numpyro.infer import NUTS

        log_likelihood, _ = jax_log_posterior(net)
        (n1, n0), (m, n) = net.shapes
        sw, sa = net.spec.sigma_w, net.spec.sigma_a

        def model():
            W = numpyro.sample("W", dist.Normal(0.0, sw).expand([n1, n0]).to_event(2))
            a = numpyro.sample("a", dist.Normal(0.0, sa).expand([m, n]).to_event(2))
            numpyro.factor("likelihood", log_likelihood(W, a))

        self.net, self.num_warmup, self.min_draws, self.progress = net, num_warmup, min_draws, progress
        self.kernel = NUTS(model, target_accept_prob=target_accept, max_tree_depth=max_tree_depth)
        self.observable = observable or (lambda th: th)
        self.key = jax.random.PRNGKey(seed)
        self.compiled, self.compile_seconds, self.n_chains = None, 0.0, 0

    def chain(self, theta0: np.ndarray, seconds: float) -> dict:
        """One chain from θ0: dict with draws (n, …) of ``observable``, seconds, warmup_seconds,
        gradients (leapfrog steps = gradient evaluations, warm-up included), tree_sizes after warm-up,
        step_size, acceptance, divergences."""
        import sys

        jax = _jax()
        import jax.numpy as jnp

        self.key, sub = jax.random.split(self.key)
        self.n_chains += 1
        W0, a0 = self.net.unpack(np.asarray(theta0, dtype=np.float64))
        state = self.kernel.init(sub, self.num_warmup, init_params={"W": jnp.asarray(W0), "a": jnp.asarray(a0)},
                                 model_args=(), model_kwargs={})
        if self.compiled is None:
            t = time.perf_counter()
            self.compiled = jax.jit(lambda s: self.kernel.sample(s, (), {})).lower(state).compile()
            self.compile_seconds = time.perf_counter() - t
        draws, chain_s, warm_s, i, grads, sizes, accept, divergent = [], 0.0, 0.0, 0, 0, [], [], 0
        while i < self.num_warmup or chain_s < seconds or len(draws) < self.min_draws:
            t = time.perf_counter()
            state = self.compiled(state)
            jax.block_until_ready(state.z)
            chain_s += time.perf_counter() - t
            i += 1
            k = int(state.num_steps)
            grads += k
            if i == self.num_warmup:
                warm_s = chain_s
            if i > self.num_warmup:
                sizes.append(k)
                accept.append(float(state.accept_prob))
                divergent += bool(state.diverging)
                theta = np.concatenate([np.ravel(np.asarray(state.z["W"])), np.ravel(np.asarray(state.z["a"]))])
                draws.append(self.observable(theta))
            if self.progress and i % 10 == 0:
                phase = "warm-up" if i <= self.num_warmup else "draws"
                print(f"\r[nuts] chain {self.n_chains}: iteration {i} ({phase}), {chain_s:.0f} s, {k} leapfrog steps",
                      end="", file=sys.stderr, flush=True)
        if self.progress:
            print("", file=sys.stderr)
        return {"draws": np.array(draws), "seconds": chain_s, "warmup_seconds": warm_s, "gradients": grads,
                "tree_sizes": sizes, "step_size": float(state.adapt_state.step_size), "acceptance": accept,
                "divergences": divergent}
