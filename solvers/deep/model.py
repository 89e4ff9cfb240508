"""The deep class-block equations as a function of packed unknowns (THEORY §5; :mod:`solvers.deep.nonlinear`).

x = (t (m × m), and for each hidden layer ℓ = 1..L−1: tril of the Cholesky factor R_ℓ of k_ℓ = R_ℓ R_ℓᵀ and
log δ_ℓ). :meth:`DeepModel.evaluate` runs the layers top-down (:func:`theory.deep_blocks.layer_integral`)
and returns the residual

    f + T t − Y   (m²),    tril(k_ℓ^new − k_ℓ),  δ_ℓ^new − δ_ℓ   (ℓ = 1..L−1),

the flat observables (f, U, then per layer diag k + δ and k) and the action S of THEORY §5.
"""
from __future__ import annotations

import numpy as np

from solvers.deep.kkt import Barrier
from solvers.deep.options import DeepOptions
from theory.deep_blocks import (OneD, OutsideDomain, Proposal, Rule, block_trace, gauss_hermite_rule,
                                layer_integral, smolyak_rule, sobol_rule, tril_pack, tril_unpack, untilted_kernels)
from theory.deep_mixture import MixtureProposal
from theory.deep_layer import LayerCache
from theory.deep_symmetric_rule import equal_size_permutations
from theory.spec import ModelSpec

__all__ = ["DeepModel", "prior_start"]


class DeepModel:
    """The packed equations of ``spec`` with per-layer priors ``sigmas``; ``sizes`` (optional) replaces the
    class sizes by real numbers (the homotopy in P of :mod:`solvers.deep.nonlinear`)."""

    def __init__(self, spec: ModelSpec, sigmas, options: DeepOptions, sizes=None):
        self.spec, self.sigmas, self.opt = spec, tuple(sigmas), options
        self.L, self.m = len(sigmas), spec.m
        self.sizes = np.asarray(spec.class_sizes if sizes is None else sizes, dtype=np.float64)
        self.Y = np.eye(self.m)
        self.T = spec.temperature
        self.oned = OneD.for_nonlinearity(spec.nonlinearity, options.nz)
        self.ntri = self.m * (self.m + 1) // 2
        self.nt = self.m * self.m
        self.n = self.nt + (self.L - 1) * (self.ntri + self.m)
        self.dims = [self.m if ell == 1 else 2 * self.m for ell in range(1, self.L + 1)]
        self.rules = [self._rule(d) for d in self.dims]
        self.alt_rules = [self._rule(d, alt=True) for d in self.dims]
        self.exact = self.oned.kind == "linear" and all(r.groups == 1 for r in self.rules)
        self._caches: dict = {}  # (layer, rule, 1-D nodes) → LayerCache
        self.truncated = False  # True: the layer integrals without their domain check (solvers.deep.complementarity)
        # the class-symmetric rule (theory.deep_symmetric_rule): every node with its images under these permutations
        self.class_perms = equal_size_permutations(self.sizes) if options.symmetric_rule else None
        self.condensate = (Barrier(options.condensate_epsilon, options.condensate_onset)  # outliers (None: none)
                           if self.oned.kind == "relu" and (options.condensate_epsilon or 0.0) > 0 else None)

    def layer_cache(self, ell: int, rule: Rule, oned: OneD | None = None) -> LayerCache:
        """The :class:`theory.deep_layer.LayerCache` of layer ℓ with ``rule`` and ``oned``: the mapped nodes and
        φ values of the last evaluation, reused while proposals, ξ and s are unchanged (same results)."""
        oned = oned or self.oned
        key = (ell, rule.name, rule.n, oned.nz)
        if key not in self._caches:
            if len(self._caches) >= 4 * self.L:  # alternative rules come and go: keep the main ones only
                self._caches = {k: v for k, v in self._caches.items()
                                if k[1] == self.rules[k[0] - 1].name and k[3] == self.oned.nz}
            self._caches[key] = LayerCache()
        return self._caches[key]

    def _rule(self, d, alt=False) -> Rule:
        o = self.opt
        if self.oned.kind == "linear" and o.integrator != "qmc":
            order = 5 if d <= 4 else 4 if d <= 6 else 3
            return gauss_hermite_rule(d, order - alt)
        if o.integrator == "gauss-hermite" or (o.integrator in ("auto", "sparse-grid") and d <= 4):
            order = 16 if d <= 3 else 10 if d == 4 else 6
            return gauss_hermite_rule(d, order - (4 if alt and d <= 3 else 2 if alt else 0))
        if o.integrator == "sparse-grid":
            return smolyak_rule(d, o.sparse_level - alt)
        return sobol_rule(d, o.qmc_log2n, o.qmc_replicates, o.seed)

    def describe(self) -> str:
        one = {"linear": "closed form", "relu": "closed form (truncated normals)"}.get(
            self.oned.kind, f"Gauss–Hermite {self.oned.nz}")
        return (f"1-D: {one}; y-integrals per layer: "
                + ", ".join(f"ℓ={ell} {r.name}" for ell, r in enumerate(self.rules, start=1))
                + "; moment-matched Gaussian proposals")

    # --- parametrisation
    def unpack(self, x):
        t = x[:self.nt].reshape(self.m, self.m)
        out, k = [], self.nt
        for _ in range(self.L - 1):
            R = tril_unpack(x[k:k + self.ntri], self.m)
            delta = np.exp(x[k + self.ntri:k + self.ntri + self.m])
            out.append((R, delta))
            k += self.ntri + self.m
        return t, out

    def pack(self, t, kernels):
        parts = [np.asarray(t, dtype=np.float64).ravel()]
        for k, delta in kernels:
            w, V = np.linalg.eigh(0.5 * (k + k.T))
            R = np.linalg.cholesky((V * np.maximum(w, 0.0)) @ V.T + 1e-10 * np.eye(self.m))
            parts += [tril_pack(R), np.log(np.maximum(delta, 1e-300))]
        return np.concatenate(parts)

    def kernel_coords(self, x):
        """(tril k_ℓ, δ_ℓ) for all hidden layers: the coordinates the residual is written in."""
        _, ker = self.unpack(x)
        return np.concatenate([np.concatenate([tril_pack(R @ R.T), d]) for R, d in ker]) if ker else np.zeros(0)

    # --- one evaluation
    def evaluate(self, x, proposals, rules=None, oned=None):
        rules = rules or self.rules
        oned = oned or self.oned
        t, ker = self.unpack(x)
        L = self.L
        res = [None] * L
        kt = dt = None
        for ell in range(L, 0, -1):
            inp = ker[ell - 2] if ell >= 2 else (None, None)
            kw = dict(R_in=inp[0], delta_in=inp[1])
            if ell == L:
                kw.update(t=t, sigma_a=self.spec.sigma_a)
            else:
                kw.update(kt=kt, dt=dt)
            r = layer_integral(oned, self.sizes, self.sigmas[ell - 1], rules[ell - 1], proposals[ell - 1],
                               cache=self.layer_cache(ell, rules[ell - 1], oned), truncated=self.truncated,
                               class_perms=self.class_perms,
                               needles=self.readout_needles(t, ker) if ell == L else self.hidden_needles(ell, kw), **kw)
            if self.condensate is not None:  # outlier (KKT) terms of the last and first layers (solvers.deep.kkt)
                r = self.condensate(self, ell, t, ker, r, kw)
            res[ell - 1] = r
            kt, dt = r.kt_in, r.dt_in
        top = res[-1]
        resid = [(top.outputs + self.T * t - self.Y).ravel()]
        action = top.log_z - float(self.sizes @ np.diag(t)) + 0.5 * self.T * float(self.sizes @ np.sum(t * t, axis=1))
        for ell in range(1, L):
            R, delta = ker[ell - 1]
            k = R @ R.T
            r = res[ell - 1]
            resid += [tril_pack(r.k - k), r.delta - delta]
            up = res[ell]  # conjugate K̃_ℓ comes from layer ℓ + 1
            action += -0.5 * block_trace(up.kt_in, up.dt_in, k, delta, self.sizes) + r.log_z
        obs = [top.outputs.ravel(), top.readout_moment.ravel()]
        for r in res:
            obs += [np.diag(r.k) + r.delta, r.k.ravel()]
        return {"residual": np.concatenate(resid), "obs": np.concatenate(obs), "action": action, "layers": res}

    def readout_needles(self, t, ker):
        """The readout layer's needle split (:class:`theory.deep_needle_tail.Needles`), None here: the rule alone
        (:class:`solvers.deep.complementarity.KKTModel` passes its tracked readout maximisers)."""
        return None

    def hidden_needles(self, ell: int, kw: dict):
        """Hidden layer ℓ's needle split (arguments ``kw`` of its :func:`layer_integral`), None here: the rule alone
        (:class:`solvers.deep.complementarity.KKTModel` passes the layer's tracked maximisers)."""
        return None

    def layer_kwargs(self, ell: int, t, ker, ev) -> dict:
        """Keyword arguments of :func:`layer_integral` for layer ℓ at the unpacked point (t, kernels) with
        the evaluation ``ev``: the input kernel (ℓ >= 2), then the readout tilt (ℓ = L) or the conjugate
        kernel of the next layer (ℓ < L)."""
        kw = {}
        if ell >= 2:
            kw.update(R_in=ker[ell - 2][0], delta_in=ker[ell - 2][1])
        if ell == self.L:
            kw.update(t=t, sigma_a=self.spec.sigma_a)
        else:
            kw.update(kt=ev["layers"][ell].kt_in, dt=ev["layers"][ell].dt_in)
        return kw

    def patterns(self, x, ev, proposals, neurons, seed=0):
        """[(neurons × m) class-mean activations of layer ℓ] for ℓ = 1..L, neurons drawn from each layer's
        single-neuron measure at the solution (tilts and input kernels as in :meth:`evaluate`)."""
        t, ker = self.unpack(x)
        rng = np.random.default_rng(seed)
        out = []
        for ell in range(1, self.L + 1):
            kw = self.layer_kwargs(ell, t, ker, ev)
            out.append(layer_integral(self.oned, self.sizes, self.sigmas[ell - 1], self.rules[ell - 1],
                                      proposals[ell - 1], neurons=neurons, rng=rng, truncated=self.truncated,
                                      class_perms=self.class_perms, **kw))
        return out

    def safe_eval(self, x, proposals, **kw):
        try:
            with np.errstate(all="ignore"):
                ev = self.evaluate(x, proposals, **kw)
        except (OutsideDomain, np.linalg.LinAlgError, FloatingPointError):
            return None
        if not (np.all(np.isfinite(ev["residual"])) and np.all(np.isfinite(ev["obs"]))):
            return None
        return ev

    # --- proposals
    def adapt(self, ev, inflate, props=None):
        """Moment-matched proposals for the evaluation ``ev``: a Gaussian per layer, or for a layer whose
        current proposal (``props``) is a mixture, its population-Monte-Carlo update."""
        out = []
        for ell, r in enumerate(ev["layers"]):
            old = props[ell] if props is not None else None
            if isinstance(old, MixtureProposal) and r.nodes is not None:
                out.append(old.adapt(r.nodes[0], r.nodes[1], r.y_mean, r.y_cov, inflate))
            else:
                out.append(Proposal.from_moments(r.y_mean, r.y_cov, inflate))
        return out

    def initial_proposals(self, x, inflate, rounds=8):
        props = [Proposal.standard(d) for d in self.dims]
        for _ in range(rounds):
            ev = self.safe_eval(x, props)
            if ev is None:
                return props
            new = self.adapt(ev, inflate)
            dist = max(a.distance(b) for a, b in zip(new, props))
            props = new
            if dist < 0.02:
                break
        return props


def prior_start(model: DeepModel, T):
    """The search's first start: prior (NNGP) kernels, t = I/(T + 1) halved until the readout's integral converges
    (linear and ReLU readouts have a domain)."""
    m = model.m
    kers = untilted_kernels(model.oned, model.sizes, model.sigmas, model._rule)
    ridge = [(k + 0.05 * float(np.mean(d)) * np.eye(m), d) for k, d in kers]
    scale = 1.0
    for _ in range(30):
        x = model.pack(scale * np.eye(m) / (T + 1.0), ridge)
        if model.safe_eval(x, [Proposal.standard(d) for d in model.dims]) is not None:
            break
        scale *= 0.5
    return x
