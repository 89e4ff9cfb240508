"""Deep nonlinear networks (L >= 1 hidden layers) on orthogonal class-structured data: solver of the
class-block mean-field equations of :mod:`theory.deep_blocks` (THEORY §5), with continuation,
coexisting saddle points, stability and integration-error estimates.

Unknowns and equations
----------------------
x = (t (m × m), and for each hidden layer ℓ = 1..L−1: the Cholesky factor R_ℓ of the class-block
kernel k_ℓ = R_ℓ R_ℓᵀ (lower triangle) and log δ_ℓ). One evaluation runs the layers top-down:
layer L (input K_{L-1}, readout tilt σ_a² t tᵀ) gives f, U, K_L and the conjugate K̃_{L-1};
layer ℓ < L (input K_{ℓ-1}, tilt K̃_ℓ) gives K_ℓ^new and K̃_{ℓ-1}. The residual is

    f + T t − Y   (m²),    tril(k_ℓ^new − k_ℓ),  δ_ℓ^new − δ_ℓ   (ℓ = 1..L−1),

square in x (m² + (L−1)(m(m+1)/2 + m) equations). With the integration nodes and the Gaussian
proposals held fixed (common random numbers) the residual is a deterministic smooth function of x,
so Newton with a forward-difference Jacobian and backtracking on ||residual|| converges
quadratically-ish; between Newton solves each layer's proposal is moment-matched to its tilted
y-measure (:class:`theory.deep_blocks.Proposal`), until the proposals stop moving.

Integrators (``integrator="auto"``): y-integrals of dimension d = m (layer 1) or 2m (layers >= 2)
use tensor Gauss–Hermite when φ is linear (exact once the proposal matches the Gaussian tilted
measure; order 5, 4 or 3 for d <= 4, 6, more) or when order^d stays small (d <= 3: order 16;
d = 4: order 10), and scrambled Sobol' replicates otherwise (8 × 2^11 points by default; the
selected solution is re-solved with 2^12, 2^13 points while its error estimate exceeds
``error_tol``). ``integrator="sparse-grid"`` uses Smolyak Gauss–Hermite grids for d >= 5 instead
(:func:`theory.deep_blocks.smolyak_rule`): for ReLU at classes 4,2,2, T = 0.5 its level-5 grid
(9113 nodes) was less accurate than the Sobol' default (error estimate 4e-2 against 7e-3), because
the ratio of the tilted measure to the Gaussian proposal is far from a low-degree polynomial.
1-D integrals: closed forms (linear, ReLU) or 24-node Gauss–Hermite (smooth bounded φ).

Error estimates (delta method at the solution x*, Jacobian J of the residual, J_o of the
observables): for each alternative rule set v (each Sobol' replicate alone; Gauss–Hermite one order
lower; 1-D Gauss–Hermite with 3/4 of the nodes), the residual r_v and observables o_v at x* give the
solution that rule would have found, o_v + J_o δx_v with δx_v = −J⁺ r_v. The error of an observable
is the replicate standard error (std/√R) plus the absolute differences of the Gauss–Hermite and
1-D variants. The free energy is stationary at x*, so its error is the spread of S_v(x*).

Coexisting solutions, stability, free energy
-------------------------------------------
The action is not convex in depth >= 2. Integrating the conjugates and t out leaves
log Z/N = max over kernels of Ψ(K_1..K_{L-1}) (deep_linear's variational function); a saddle point
of S is a stationary point of Ψ, and Ψ = S there. The kernel residual G(K) − K (with t solved,
i.e. the Schur complement of J on the t block, in kernel coordinates) equals 2·Cov·∇Ψ to first
order with a positive definite Cov (the covariance of the layer's sufficient statistics), so
by Sylvester's law of inertia a saddle is a local maximum of Ψ ("stable") iff all eigenvalues of
that reduced Jacobian have negative real part — the criterion of :mod:`solvers.deep.linear`, here
within the class-symmetric subspace. Starts: prior (NNGP) kernels with t from the convex last-layer
problem at the target T; continuation in T from high T (where the solution is near the prior);
and ``start`` (a previous solution: warm start/continuation). Converged distinct solutions are
reported in ``saddles`` with free energy and stability; the stable one with the largest free
energy is selected. If none converges, ``converged`` is False and the outputs are NaN
(never a wrong solution).

Checks (tests/test_deep_nonlinear.py; measured 2026-11-30 on a loaded 2-core machine)
-----------------------------------------------------------------------------------------
* linear φ: every layer's kernel, f, U and the free energy equal :mod:`solvers.deep.linear` to
  < 1e-11 (L = 1, 2, 3; m = 2, 3); the coexisting lazy/middle/rich roots (σ_a = 0.02, L = 3) are
  found from their starts with the closed form's free energies and stability flags;
* L = 1 against the one-layer solver (classes 4,2,2, T = 0.5): max |Δ| 6e-7 (normcdf), 1e-5
  (relu), 1e-4 (erf), each below its error estimate (8e-6, 3e-4, 5e-3); Sobol' 6e-4 against 4e-4;
* L = 2 against sampled networks (validation.deep.validate_deep, classes 4,2,2, T = 0.5, 4 chains
  × 1000 sweeps): normcdf N = 200 max |Δ|/MCSE 2.6 (f to 4 digits); relu 8.6 (N = 200), 7.0
  (N = 400), 3.1 after the 1/N extrapolation (a ~1 % O(1/N) bias on f and U); code fractions
  per layer agree within 0.006 (normcdf) and 0.009 (relu); L = 3, N = 200: normcdf max |Δ|/MCSE
  3.1, relu 9.3 (sampled f, U and kernels ~1–1.5 % below theory, the same O(1/N) pattern as at
  L = 2), code fractions within 0.008 in every layer;
* the hard regime (classes 32,16,16, T = 0.05) is rejected by the coverage check or carries an
  error estimate covering its deviation (slow test).

References: THEORY §5; A. van Meegen and H. Sompolinsky, Nat. Commun. 16, 3354 (2025).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
import math
import time

import numpy as np

from theory.deep_blocks import (OneD, OutsideDomain, Proposal, Rule, block_trace, gauss_hermite_rule,
                                layer_integral, smolyak_rule, sobol_rule, tril_pack, tril_unpack, untilted_kernels)
from solvers.deep.linear import layer_sigmas
from theory.observables import Observables, check_layer, layer_summaries
from theory.spec import ModelSpec, SpecError

__all__ = ["DeepOptions", "DeepNonlinearSolution", "DeepNonlinearError", "solve_deep_nonlinear",
           "deep_nonlinear_json"]


class DeepNonlinearError(RuntimeError):
    """Raised by :func:`solve_deep_nonlinear` with ``raise_on_failure=True`` when no solution is found."""


@dataclass(frozen=True)
class DeepOptions:
    """Solver options (module docstring). ``integrator``: "auto", "gauss-hermite" or "qmc"."""

    integrator: str = "auto"
    sparse_level: int = 5  # Smolyak level of the "sparse-grid" integrator (error: against level − 1)
    qmc_log2n: int = 11
    qmc_log2n_max: int = 13  # refine the selected solution up to 8 × 2^13 points while errors > error_tol
    error_tol: float = 1e-2
    qmc_replicates: int = 8
    nz: int = 24  # 1-D Gauss–Hermite nodes for smooth φ (error ~1e-6, estimated against 18)
    tol: float = 1e-10
    maxiter: int = 30
    max_rounds: int = 8
    proposal_tol: float | None = None  # default: 1e-9 (exact Gauss–Hermite) or 0.05
    inflate: float | None = None  # proposal covariance inflation (default 1 GH, 1.5 QMC)
    continuation_steps: int = 5
    search: bool = True  # also run the continuations from high and low T when the direct start converged
    seed: int = 0
    code_neurons: int = 8000  # neurons drawn from each layer's measure for the code fractions (0: none)

    def __post_init__(self):
        if self.integrator not in ("auto", "gauss-hermite", "qmc", "sparse-grid"):
            raise SpecError("integrator must be 'auto', 'gauss-hermite', 'qmc' or 'sparse-grid' "
                            f"(got {self.integrator!r})")


# ----------------------------------------------------------------------------- model
class _Model:
    def __init__(self, spec: ModelSpec, sigmas, options: DeepOptions):
        self.spec, self.sigmas, self.opt = spec, tuple(sigmas), options
        self.L, self.m = len(sigmas), spec.m
        self.sizes = np.asarray(spec.class_sizes, dtype=np.float64)
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
            r = layer_integral(oned, self.sizes, self.sigmas[ell - 1], rules[ell - 1], proposals[ell - 1], **kw)
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
                                      proposals[ell - 1], neurons=neurons, rng=rng, **kw))
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
    def adapt(self, ev, inflate):
        return [Proposal.from_moments(r.y_mean, r.y_cov, inflate) for r in ev["layers"]]

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


# ----------------------------------------------------------------------------- Newton
def _fd_jacobian(model, x, ev, props, idx):
    """Forward-difference Jacobians of the residual (rows/columns ``idx``) and of the observables."""
    r = ev["residual"][idx]
    J = np.empty((len(idx), len(idx)))
    Jo = np.empty((len(ev["obs"]), len(idx)))
    for j, i in enumerate(idx):
        h = 1e-7 * max(1.0, abs(x[i]))
        xp = x.copy()
        xp[i] += h
        evp = model.safe_eval(xp, props)
        if evp is None:
            xp[i] -= 2 * h
            evp = model.safe_eval(xp, props)
            h = -h
            if evp is None:
                return None, None
        J[:, j] = (evp["residual"][idx] - r) / h
        Jo[:, j] = (evp["obs"] - ev["obs"]) / h
    return J, Jo


def _newton(model: _Model, x, props, active=None, tol=1e-10, maxiter=30):
    """Newton–Broyden: forward-difference Jacobian, rank-one (good Broyden) updates after steps that
    reduce ||r|| by half or more, a fresh Jacobian otherwise and at the solution; backtracking on
    ||r||₂. ``active``: indices of the unknowns (and equations) solved for. Returns
    (x, ev, J, Jo, ok, nit) with J, Jo fresh finite-difference Jacobians at the returned x."""
    n = len(x)
    idx = np.arange(n) if active is None else np.asarray(active)
    ev = model.safe_eval(x, props)
    if ev is None:
        return x, None, None, None, False, 0
    J, Jo = _fd_jacobian(model, x, ev, props, idx)
    fresh = True
    for it in range(1, maxiter + 1):
        if J is None:
            return x, ev, None, None, False, it
        r = ev["residual"][idx]
        if np.max(np.abs(r)) < tol:
            if not fresh:
                J, Jo = _fd_jacobian(model, x, ev, props, idx)
            return x, ev, J, Jo, J is not None, it
        step = np.linalg.lstsq(J, -r, rcond=None)[0]
        nr = np.linalg.norm(r)
        alpha, accepted = 1.0, False
        while alpha > 1e-4:
            xn = x.copy()
            xn[idx] += alpha * step
            evn = model.safe_eval(xn, props)
            if evn is not None and np.linalg.norm(evn["residual"][idx]) < (1 - 1e-4 * alpha) * nr:
                accepted = True
                break
            alpha *= 0.5
        if not accepted:
            if fresh:
                ok = bool(np.max(np.abs(r)) < 1e3 * tol)
                return x, ev, J, Jo, ok, it
            J, Jo = _fd_jacobian(model, x, ev, props, idx)
            fresh = True
            continue
        rn = evn["residual"][idx]
        if alpha == 1.0 and np.linalg.norm(rn) < 0.5 * nr:
            dx = xn[idx] - x[idx]
            J = J + np.outer(rn - r - J @ dx, dx) / float(dx @ dx)
            fresh = False
            x, ev = xn, evn
        else:
            x, ev = xn, evn
            J, Jo = _fd_jacobian(model, x, ev, props, idx)
            fresh = True
    ok = bool(np.max(np.abs(ev["residual"][idx])) < tol)
    if ok and not fresh:
        J, Jo = _fd_jacobian(model, x, ev, props, idx)
    return x, ev, J, Jo, ok and J is not None, maxiter


def _mix(a: Proposal, b: Proposal, w: float) -> Proposal:
    return Proposal((1 - w) * a.mean + w * b.mean, (1 - w) * a.chol + w * b.chol)


def _solve_at(model: _Model, x, props, log, label, rounds=None, tol=None, maxiter=None):
    """Newton with fixed proposals, then moment-match the proposals, until they settle. When Newton
    fails after a proposal update, the update is retried halfway (up to three times), then the
    previous round's solution is returned. Returns (x, ev, J, Jo, proposals) or None."""
    o = model.opt
    inflate = o.inflate if o.inflate is not None else (1.0 if model.exact else 1.5)
    ptol = o.proposal_tol if o.proposal_tol is not None else (1e-9 if model.exact else 0.05)
    tol = tol if tol is not None else (o.tol if model.exact else max(o.tol, 1e-9))
    maxiter = o.maxiter if maxiter is None else maxiter
    out = None
    for rnd in range(rounds or o.max_rounds):
        trial = props
        for shrink in range(4 if out is not None else 1):
            x1, ev, J, Jo, ok, nit = _newton(model, x, trial, tol=tol, maxiter=maxiter)
            log.append(f"{label}: round {rnd}, Newton {'converged' if ok else 'FAILED'} in {nit} iterations"
                       + (f", max|residual| {np.max(np.abs(ev['residual'])):.1e}" if ev is not None else ""))
            if ok:
                break
            if out is not None:
                trial = [_mix(a, b, 0.5) for a, b in zip(out[4], trial)]
        if not ok:  # the previous round's solution (a fixed point for its own proposals) or None
            return out
        x, props = x1, trial
        out = (x, ev, J, Jo, props)
        new = model.adapt(ev, inflate)
        dist = max(a.distance(b) for a, b in zip(new, props))
        if dist < ptol or rounds is not None:
            return (x, ev, J, Jo, new if rounds is not None else props)
        props = new
    return out  # proposals still moving: the error estimate (alternative rules) covers the mismatch


def _t_only(model: _Model, x, props):
    x, ev, J, Jo, ok, _ = _newton(model, x, props, active=np.arange(model.nt), tol=1e-8, maxiter=30)
    return x if ev is not None else None


# ----------------------------------------------------------------------------- solution
@dataclass(frozen=True)
class DeepNonlinearSolution:
    """Deep class-block mean-field solution (module docstring); same interface as
    :class:`solvers.deep.linear.DeepLinearClassSolution` (``outputs``, ``readout_moment``,
    ``layer_observables(ell)``, ``layer_summaries()``, ``to_json()``).

    ``errors``: absolute integration-error estimates in the flat observables layout of
    :func:`validation.deep.observables_vector` (split by :meth:`layer_observables`);
    ``x``/``proposals``: the unknowns and integration proposals, for warm starts (``start=``);
    ``code_fractions``: per layer, the fraction of neurons per code (the code rule of
    :func:`validation.observables.neuron_codes` applied to class-mean activations of
    ``options.code_neurons`` neurons drawn from the layer's single-neuron measure; statistical
    error about √(f(1−f)/n)).
    """

    spec: ModelSpec
    sigmas: tuple
    converged: bool
    t: np.ndarray
    outputs: np.ndarray
    readout_moment: np.ndarray
    kernel_diagonals: tuple
    kernel_blocks: tuple
    conjugates: tuple  # (k̃_ℓ, δ̃_ℓ) for ℓ = 1..L−1
    free_energy: float
    free_energy_error: float
    stable: bool
    stability_eigenvalues: list
    errors: np.ndarray
    residual: float
    saddles: list
    integrator: str
    error_sources: dict
    ess_min: float | None  # smallest Kish ESS fraction of the Sobol' (importance-sampled) layers
    message: str
    code_fractions: list = field(default_factory=list)  # per layer {code: fraction} (theory neurons)
    coverage: list = field(default_factory=list)  # per layer proposal-coverage check (_coverage)
    x: np.ndarray | None = None
    proposals: list | None = None
    log: list = field(default_factory=list)
    time_seconds: float = 0.0

    @property
    def layers(self) -> int:
        return len(self.sigmas)

    @property
    def error_estimate(self) -> float:
        return float(np.max(self.errors)) if self.errors.size else 0.0

    def _errors(self):
        from theory.codes import split_layer_vector as split_vector

        return split_vector(self.errors, self.spec.m, self.layers)

    def layer_observables(self, ell: int) -> Observables:
        """Observables with the activation kernel of hidden layer ``ell`` (1..L), with errors."""
        check_layer(ell, self.layers)
        e = self._errors()
        errs = {"outputs": e["outputs"], "readout_moment": e["readout_moment"],
                "kernel_diagonal": e["layers"][ell - 1]["kernel_diagonal"],
                "kernel_blocks": e["layers"][ell - 1]["kernel_blocks"]}
        return Observables(outputs=self.outputs, readout_moment=self.readout_moment,
                           kernel_diagonal=np.asarray(self.kernel_diagonals[ell - 1]),
                           kernel_blocks=np.asarray(self.kernel_blocks[ell - 1]), errors=errs)

    def observables(self) -> Observables:
        return self.layer_observables(self.layers)

    def layer_summaries(self) -> list:
        """:func:`theory.observables.layer_summaries` plus per-layer errors and code fractions."""
        e = self._errors()
        out = layer_summaries(self, self.layers)
        for ell, entry in enumerate(out):
            entry["errors"] = {k: e["layers"][ell][k].tolist() for k in ("kernel_diagonal", "kernel_blocks")}
            if self.code_fractions:
                entry["code_fractions"] = self.code_fractions[ell]
        return out

    def to_json(self) -> dict:
        e = self._errors()
        return {"layers": self.layer_summaries(), "sigmas": list(self.sigmas), "converged": self.converged,
                "outputs": self.outputs.tolist(), "readout_moment": self.readout_moment.tolist(),
                "t": self.t.tolist(),
                "errors": {"outputs": e["outputs"].tolist(), "readout_moment": e["readout_moment"].tolist()},
                "error_estimate": self.error_estimate, "free_energy": self.free_energy,
                "free_energy_error": self.free_energy_error, "stable": self.stable,
                "stability_eigenvalues": self.stability_eigenvalues, "residual": self.residual,
                "saddles": self.saddles, "integrator": self.integrator, "error_sources": self.error_sources,
                "coverage": self.coverage,
                "ess_min": self.ess_min,
                "message": self.message, "time_seconds": self.time_seconds}


def _full_point(model: _Model, x, ev):
    """The saddle point in the coordinates of the action S: z = (t, then per hidden layer
    triu k̃_ℓ, δ̃_ℓ) and kz = (per hidden layer triu k_ℓ, δ_ℓ)."""
    t, ker = model.unpack(x)
    iu = np.triu_indices(model.m)
    conj = [np.concatenate([ev["layers"][ell].kt_in[iu], ev["layers"][ell].dt_in]) for ell in range(1, model.L)]
    kz = [np.concatenate([(R @ R.T)[iu], d]) for R, d in ker]
    return np.concatenate([t.ravel()] + conj), np.concatenate(kz)


def _action_gradient(model: _Model, cz, kz, props):
    """∇S in (cz, kz) (module docstring of theory.deep_blocks; symmetric matrices by their upper
    triangle, so off-diagonal derivatives count twice): every layer takes its tilt from cz and its
    input kernel from kz, so S is evaluated away from the stationarity relations.

        ∂S/∂t_cr = P_c (f + T t − Y)_cr,
        ∂S/∂k̃_cd = ½ [P_c P_d (k^new − k)_cd + δ_cd P_c (δ^new − δ)_c],  ∂S/∂δ̃_c = ½ P_c (k^new − k + δ^new − δ)_cc,
        ∂S/∂k_cd = ½ [P_c P_d (k̃^in − k̃)_cd + δ_cd P_c (δ̃^in − δ̃)_c],   ∂S/∂δ_c = ½ P_c (k̃^in − k̃ + δ̃^in − δ̃)_cc,

    with (k^new, δ^new) layer ℓ's kernel and (k̃^in, δ̃^in) the conjugate layer ℓ + 1 returns for its
    input."""
    m, L, P = model.m, model.L, model.sizes
    iu = np.triu_indices(m)
    nu = len(iu[0])
    twice = np.where(iu[0] == iu[1], 1.0, 2.0)

    def sym(v):
        A = np.zeros((m, m))
        A[iu] = v
        return A + np.triu(A, 1).T

    t = cz[:model.nt].reshape(m, m)
    conj, kers = [], []
    for ell in range(L - 1):
        c = cz[model.nt + ell * (nu + m):model.nt + (ell + 1) * (nu + m)]
        conj.append((sym(c[:nu]), c[nu:]))
        k = kz[ell * (nu + m):(ell + 1) * (nu + m)]
        kers.append((sym(k[:nu]), k[nu:]))
    res = []
    for ell in range(1, L + 1):
        kw = {}
        if ell >= 2:
            k, d = kers[ell - 2]
            kw.update(R_in=np.linalg.cholesky(k), delta_in=d)
        if ell == L:
            kw.update(t=t, sigma_a=model.spec.sigma_a)
        else:
            kw.update(kt=conj[ell - 1][0], dt=conj[ell - 1][1])
        res.append(layer_integral(model.oned, P, model.sigmas[ell - 1], model.rules[ell - 1], props[ell - 1], **kw))
    PP = np.outer(P, P)
    gc = [(P[:, None] * (res[-1].outputs + model.T * t - model.Y)).ravel()]
    gk = []
    for ell in range(L - 1):
        k, d = kers[ell]
        kt, dt = conj[ell]
        lay, up = res[ell], res[ell + 1]
        dk, dd = lay.k - k, lay.delta - d
        gc += [0.5 * (PP * dk + np.diag(P * dd))[iu] * twice, 0.5 * P * (np.diag(dk) + dd)]
        ek, ed = up.kt_in - kt, up.dt_in - dt
        gk += [0.5 * (PP * ek + np.diag(P * ed))[iu] * twice, 0.5 * P * (np.diag(ek) + ed)]
    return np.concatenate(gc), np.concatenate(gk)


def _coverage(model: _Model, x, ev, props, seed=0):
    """Check that each layer's Gaussian proposal covers its tilted y-measure: local maxima of λ(y)
    (:func:`theory.deep_blocks.find_modes`, 48 prior and 16 proposal starts) with a Laplace mass
    within a factor 10³ of the largest are "significant"; the layer fails if a significant mode lies
    more than 3 proposal standard deviations (Mahalanobis) from the proposal mean, or, for Gauss–Hermite
    rules, if a significant mode is more than 10× narrower than the proposal in some direction (its
    mass would fall between the nodes). Returns (ok, [{"layer", "modes", "max_mahalanobis",
    "min_width_ratio"}])."""
    from solvers.deep.modes import find_modes
    from theory.deep_blocks import log_integrand

    t, ker = model.unpack(x)
    rng = np.random.default_rng([seed, 7])
    ok, report = True, []
    for ell in range(1, model.L + 1):
        kw = model.layer_kwargs(ell, t, ker, ev)
        d, pr = model.dims[ell - 1], props[ell - 1]

        def fun(Y, kw=kw, ell=ell):
            with np.errstate(all="ignore"):
                try:
                    return log_integrand(model.oned, model.sizes, model.sigmas[ell - 1], Y, **kw)
                except OutsideDomain:
                    return np.full(len(Y), -np.inf)

        starts = np.concatenate([rng.standard_normal((48, d)), pr.mean + rng.standard_normal((16, d)) @ pr.chol.T,
                                 pr.mean[None, :]])
        modes, _, masses, hess = find_modes(fun, starts)
        if len(modes) == 0:
            report.append({"layer": ell, "modes": 0, "max_mahalanobis": float("inf"), "min_width_ratio": 0.0})
            ok = False
            continue
        sig = masses >= np.max(masses) + math.log(1e-3)
        r = np.linalg.norm(np.linalg.solve(pr.chol, (modes[sig] - pr.mean).T), axis=0)
        cov_p = pr.chol @ pr.chol.T
        ratios = []
        for H in (h for h, s_ in zip(hess, sig) if s_):
            w = np.linalg.eigvalsh(H)
            if w.max() >= 0:
                ratios.append(0.0)
                continue
            # generalised eigenvalues of (mode covariance, proposal covariance): squared width ratios
            ratios.append(float(np.sqrt(np.min(np.linalg.eigvals(np.linalg.solve(cov_p, np.linalg.inv(-H))).real))))
        rmin = min(ratios) if ratios else 0.0
        gh = model.rules[ell - 1].groups == 1
        bad = bool(np.max(r) > 3.0 or (gh and rmin < 0.1) or rmin <= 0.0)
        ok = ok and not bad
        report.append({"layer": ell, "modes": int(sig.sum()), "max_mahalanobis": float(np.max(r)),
                       "min_width_ratio": rmin})
    return ok, report


def _stability(model: _Model, x, ev, props):
    """Eigenvalues of ∇²Ψ = S_KK − S_KC S_CC⁻¹ S_CK (Hessian of the action S in the kernels K and the
    conjugates/field C = (t, K̃), by forward differences of :func:`_action_gradient`). Ψ(K) =
    min_C S is log Z/N's variational function (module docstring); the saddle is stable iff all are
    negative. Empty for L = 1 (convex dual)."""
    if model.L == 1:
        return np.zeros(0)
    cz, kz = _full_point(model, x, ev)
    z0 = np.concatenate([cz, kz])
    nc = len(cz)

    def grad(z):
        return np.concatenate(_action_gradient(model, z[:nc], z[nc:], props))

    try:
        with np.errstate(all="ignore"):
            g0 = grad(z0)
            H = np.empty((len(z0), len(z0)))
            for j in range(len(z0)):
                h = 1e-6 * max(1.0, abs(z0[j]))
                zp = z0.copy()
                zp[j] += h
                H[:, j] = (grad(zp) - g0) / h
    except (OutsideDomain, np.linalg.LinAlgError):
        return np.array([np.nan])
    H = 0.5 * (H + H.T)
    Hcc, Hck, Hkk = H[:nc, :nc], H[:nc, nc:], H[nc:, nc:]
    schur = Hkk - Hck.T @ np.linalg.lstsq(Hcc, Hck, rcond=None)[0]
    ev = np.linalg.eigvalsh(0.5 * (schur + schur.T))
    if np.any(model.sizes == 1):
        # a class with P_c = 1 has no within-class pair: k_cc and δ_c (and k̃_cc, δ̃_c) only enter through
        # their sum, a flat (gauge) direction of S; drop its (numerically zero) eigenvalue
        ev = ev[np.abs(ev) > 1e-6 * np.max(np.abs(ev))]
    return ev


def _errors(model: _Model, x, ev, J, Jo, props):
    """Delta-method integration errors of the observables and of the free energy (module docstring),
    and the largest observable error per source."""
    Jp = np.linalg.pinv(J)
    base, S0 = ev["obs"], ev["action"]
    err = np.zeros_like(base)
    serr = 0.0
    sources = {}

    def variant(rules=None, oned=None):
        e = model.safe_eval(x, props, rules=rules, oned=oned)
        if e is None:
            return None, None
        dx = -Jp @ e["residual"]
        return e["obs"] + Jo @ dx, e["action"]

    groups = max(r.groups for r in model.rules)
    if groups > 1:
        ests, acts = [], []
        for g in range(groups):
            rules = [r.group(g) if r.groups > 1 else r for r in model.rules]
            o, a = variant(rules=rules)
            if o is not None:
                ests.append(o)
                acts.append(a)
        if len(ests) >= 2:
            e = np.std(ests, axis=0, ddof=1) / math.sqrt(len(ests))
            serr += float(np.std(acts, ddof=1) / math.sqrt(len(acts)))
        else:
            e = np.full_like(base, np.inf)
        err += e
        sources["qmc replicates"] = float(np.max(e))
    if any(r.groups == 1 for r in model.rules):
        rules = [a if r.groups == 1 else r for r, a in zip(model.rules, model.alt_rules)]
        o, a = variant(rules=rules)
        e = np.abs(o - base) if o is not None else np.full_like(base, np.inf)
        err += e
        serr += abs(a - S0) if a is not None else np.inf
        sources["gauss-hermite order"] = float(np.max(e))
    if model.oned.kind == "smooth":
        o, a = variant(oned=model.oned.with_nz(max(8, 3 * model.oned.nz // 4)))
        e = np.abs(o - base) if o is not None else np.full_like(base, np.inf)
        err += e
        serr += abs(a - S0) if a is not None else np.inf
        sources["1-d gauss-hermite"] = float(np.max(e))
    return err, serr, sources


def _finish(model, x, ev, J, Jo, props, label):
    covered, cov_report = _coverage(model, x, ev, props, model.opt.seed)
    if not covered:
        return {"x": x, "ev": ev, "label": label, "covered": False, "coverage": cov_report}
    eig = _stability(model, x, ev, props)
    stable = bool(np.all(eig < 0)) if eig.size else True
    err, serr, sources = _errors(model, x, ev, J, Jo, props)
    return {"x": x, "ev": ev, "J": J, "Jo": Jo, "props": props, "label": label, "eig": eig, "stable": stable,
            "errors": err, "free_energy_error": serr, "error_sources": sources, "covered": True,
            "coverage": cov_report}


def _solution(model, cand, saddles, log, t0, message):
    spec, m, L = model.spec, model.m, model.L
    if cand is None:
        nan = np.full((m, m), np.nan)
        nvec = 2 * m * m + L * (m + m * m)
        return DeepNonlinearSolution(
            spec=spec, sigmas=model.sigmas, converged=False, t=nan, outputs=nan, readout_moment=nan,
            kernel_diagonals=tuple(np.full(m, np.nan) for _ in range(L)), kernel_blocks=tuple(nan for _ in range(L)),
            conjugates=(), free_energy=float("nan"), free_energy_error=float("nan"), stable=False,
            stability_eigenvalues=[], errors=np.full(nvec, np.nan), residual=float("nan"), saddles=saddles,
            integrator=model.describe(), error_sources={}, ess_min=None, message=message, log=log,
            time_seconds=time.perf_counter() - t0)
    ev, x = cand["ev"], cand["x"]
    t, _ = model.unpack(x)
    codes = []
    if model.opt.code_neurons > 0:
        from theory.codes import code_fractions, neuron_codes

        try:
            with np.errstate(all="ignore"):
                pats = model.patterns(x, ev, cand["props"], model.opt.code_neurons, seed=model.opt.seed)
            codes = [code_fractions(neuron_codes(pt), m) for pt in pats]
        except (OutsideDomain, ValueError, np.linalg.LinAlgError):
            codes = []
    layers = ev["layers"]
    conj = tuple((layers[ell].kt_in, layers[ell].dt_in) for ell in range(1, L))
    return DeepNonlinearSolution(
        spec=spec, sigmas=model.sigmas, converged=True, t=t.copy(), outputs=layers[-1].outputs,
        readout_moment=layers[-1].readout_moment,
        kernel_diagonals=tuple(np.diag(r.k) + r.delta for r in layers), kernel_blocks=tuple(r.k for r in layers),
        conjugates=conj, free_energy=float(ev["action"]), free_energy_error=float(cand["free_energy_error"]),
        stable=cand["stable"], stability_eigenvalues=[float(e) for e in cand["eig"]],
        errors=cand["errors"], residual=float(np.max(np.abs(ev["residual"]))), saddles=saddles, code_fractions=codes,
        coverage=cand["coverage"],
        integrator=model.describe(), error_sources=cand["error_sources"],
        ess_min=min((r.ess for r, rule in zip(layers, model.rules) if rule.groups > 1), default=None),
        message=message, x=x,
        proposals=cand["props"], log=log, time_seconds=time.perf_counter() - t0)


def _into_domain(model: _Model, x, shrink=0.7, tries=25):
    """Scale t down until every layer's integral converges (linear/ReLU domains); x unchanged if it
    already does or if no scale helps."""
    std = [Proposal.standard(d) for d in model.dims]
    y = x.copy()
    for _ in range(tries):
        if model.safe_eval(y, std) is not None:
            return y
        y[:model.nt] *= shrink
    return x


def _prior_start(model: _Model, T):
    """Prior (NNGP) kernels, t from the convex last-layer problem at these kernels."""
    m = model.m
    kers = untilted_kernels(model.oned, model.sizes, model.sigmas, model._rule)
    ridge = [(k + 0.05 * float(np.mean(d)) * np.eye(m), d) for k, d in kers]
    scale = 1.0
    for _ in range(30):  # t inside the domain (linear and ReLU readouts have one)
        x = model.pack(scale * np.eye(m) / (T + 1.0), ridge)
        if model.safe_eval(x, [Proposal.standard(d) for d in model.dims]) is not None:
            break
        scale *= 0.5
    return x


def solve_deep_nonlinear(spec: ModelSpec, layers: int = 2, sigmas=None, start=None,
                         options: DeepOptions | None = None, raise_on_failure: bool = False) -> DeepNonlinearSolution:
    """Solve the deep class-block mean-field equations (module docstring) for orthogonal class data.

    ``start``: a previous :class:`DeepNonlinearSolution` (same m and L; any T or σ) used as the
    initial point, for warm starts and continuation; one with L − 1 layers (continuation in depth:
    its kernels K_1..K_{L-1} and t); or a :class:`solvers.deep.linear.DeepLinearClassSolution` (its t
    and kernels). Returns the selected saddle point (stable,
    largest free energy), all converged ones in ``saddles``; ``converged=False`` (NaN outputs) if
    none was found, or :class:`DeepNonlinearError` with ``raise_on_failure``.
    """
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec must be a ModelSpec (got {type(spec).__name__})")
    if spec.inputs is not None:
        raise SpecError("solve_deep_nonlinear needs orthogonal class-structured data (inputs=None)")
    sig = layer_sigmas(spec, layers, sigmas)
    opt = options or DeepOptions()
    t0 = time.perf_counter()
    model = _Model(spec, sig, opt)
    inflate = opt.inflate if opt.inflate is not None else (1.0 if model.exact else 1.5)
    log: list = []
    cands, rejected = [], []

    def attempt(x, props, label):
        if props is None:
            x = _into_domain(model, x)
            props = model.initial_proposals(x, inflate)
        out = _solve_at(model, x, props, log, label)
        if out is not None:
            c = _finish(model, *out, label)
            if c["covered"]:
                cands.append(c)
            else:
                rejected.append(c["coverage"])
                log.append(f"{label}: solution REJECTED, the Gaussian proposals do not cover the tilted measure "
                           f"({c['coverage']})")
                return None
        return out

    direct_ok = False
    if start is not None:
        from solvers.deep.linear import DeepLinearClassSolution

        if isinstance(start, DeepLinearClassSolution) and len(start.sigmas) == model.L and start.spec.m == model.m:
            x_start = model.pack(np.diag(start.tau), [(start.blocks[ell], np.full(model.m, start.alphas[ell]))
                                                      for ell in range(model.L - 1)])
            direct_ok = attempt(x_start, None, "start from the deep linear solution") is not None
        elif isinstance(start, DeepNonlinearSolution) and start.x is not None and start.layers == model.L \
                and start.spec.m == model.m:
            direct_ok = attempt(start.x.copy(), start.proposals, "warm start") is not None
        elif isinstance(start, DeepNonlinearSolution) and start.converged and start.layers == model.L - 1 \
                and start.spec.m == model.m:
            # from L − 1: its hidden kernels K_1..K_{L-1} (the last one an observable) and its t
            kers = [(np.asarray(start.kernel_blocks[ell]),
                     np.asarray(start.kernel_diagonals[ell]) - np.diag(start.kernel_blocks[ell]))
                    for ell in range(model.L - 1)]
            direct_ok = attempt(model.pack(start.t, kers), None, "start from the L − 1 solution") is not None
        else:
            raise SpecError("start must be a converged DeepNonlinearSolution (same number of classes, L or L − 1 "
                            "layers) or a DeepLinearClassSolution (same m and L)")
    if not direct_ok:
        x0 = _prior_start(model, spec.temperature)
        props = model.initial_proposals(x0, inflate)
        x1 = _t_only(model, x0, props)
        if x1 is not None:
            direct_ok = attempt(x1, None, "prior kernels") is not None
    def continuation(Ts, label):
        """Follow the solution along temperatures ``Ts`` (ending at the target T), from prior kernels."""
        sub = _Model(spec.replace(temperature=float(Ts[0])), sig, opt)
        x = _prior_start(sub, float(Ts[0]))
        props = sub.initial_proposals(x, inflate)
        x = _t_only(sub, x, props)
        if x is None:
            return
        for Tk in Ts[:-1]:  # intermediate steps: one proposal round, loose tolerance
            out = _solve_at(_Model(spec.replace(temperature=float(Tk)), sig, opt), x, props, log,
                            f"{label} T={Tk:.4g}", rounds=1, tol=1e-6, maxiter=15)
            if out is None:
                return
            x, props = out[0], out[4]
        attempt(x, props, label)

    T = spec.temperature
    if not direct_ok or (opt.search and model.L >= 2):
        Ts = np.geomspace(max(2.0, 8.0 * T), max(T, 1e-3), opt.continuation_steps)
        continuation(np.append(Ts, T) if T < 1e-3 else Ts, "continuation from high T")
    if opt.search and model.L >= 2 and T > 0:
        continuation(np.geomspace(T / 16.0, T, max(3, opt.continuation_steps // 2)), "continuation from low T")
    # deduplicate
    uniq = []
    for c in cands:
        if all(np.max(np.abs(c["ev"]["obs"] - u["ev"]["obs"])) > 1e-3 + 10 * np.max(c["errors"]) for u in uniq):
            uniq.append(c)
    saddles = [{"free_energy": float(c["ev"]["action"]), "free_energy_error": float(c["free_energy_error"]),
                "stable": c["stable"], "found_by": c["label"],
                "max_stability_eigenvalue": float(np.max(c["eig"])) if c["eig"].size else None,
                "outputs": c["ev"]["layers"][-1].outputs.tolist(), "selected": False} for c in uniq]
    if not uniq:
        msg = "no solution found (direct start and continuation in T failed); see log"
        if rejected:
            msg = ("no reliable solution: Newton converged but the single-Gaussian importance proposals do not cover "
                   f"the tilted measure (multimodal or too narrow; coverage {rejected[-1]}); this regime (large P, "
                   "small T) needs mixture proposals or the large-P branches, not implemented")
        if raise_on_failure:
            raise DeepNonlinearError(msg + "\n" + "\n".join(log))
        return _solution(model, None, saddles, log, t0, msg)
    best = max(range(len(uniq)), key=lambda i: (uniq[i]["stable"], uniq[i]["ev"]["action"]))
    saddles[best]["selected"] = True
    msg = (f"converged; {len(uniq)} distinct saddle point(s) found, selected: "
           f"{'stable' if uniq[best]['stable'] else 'UNSTABLE (no stable one found)'}, largest free energy")
    chosen = uniq[best]
    # refine the selected solution with more Sobol' points while its error estimate exceeds error_tol
    o = opt
    while (np.max(chosen["errors"]) > o.error_tol and any(r.groups > 1 for r in model.rules)
           and o.qmc_log2n < o.qmc_log2n_max):
        o = replace(o, qmc_log2n=o.qmc_log2n + 1)
        fine = _Model(spec, sig, o)
        out = _solve_at(fine, chosen["x"], chosen["props"], log, f"refine with 2^{o.qmc_log2n} Sobol' points")
        if out is None:
            break
        c = _finish(fine, *out, chosen["label"])
        if not c["covered"]:
            break
        chosen, model = c, fine
        saddles[best].update(free_energy=float(c["ev"]["action"]), free_energy_error=float(c["free_energy_error"]),
                             stable=c["stable"], outputs=c["ev"]["layers"][-1].outputs.tolist())
    if np.max(chosen["errors"]) > o.error_tol:
        msg += f"; integration error estimate {np.max(chosen['errors']):.1e} exceeds error_tol {o.error_tol:g}"
    return _solution(model, chosen, saddles, log, t0, msg)


def deep_nonlinear_json(spec: ModelSpec, layers: int, sigmas=None, options: DeepOptions | None = None) -> dict:
    """JSON block for ``codingschemes solve --layers L`` with a nonlinear φ (orthogonal data)."""
    sol = solve_deep_nonlinear(spec, layers, sigmas, options=options)
    out = sol.to_json()
    out["method"] = "deep class-block mean-field solver (solvers.deep.nonlinear)"
    return out

