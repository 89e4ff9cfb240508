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
``error_tol``; if Gauss–Hermite layers still carry an estimate above it, every layer is re-solved with
Sobol' rules, kept if its estimate is smaller). ``integrator="sparse-grid"`` uses Smolyak
Gauss–Hermite grids for d >= 5 instead (:func:`theory.deep_blocks.smolyak_rule`; its accuracy
against the Sobol' default: docs/devlog.md).
1-D integrals: closed forms (linear, ReLU) or 24-node Gauss–Hermite (smooth bounded φ).

Mixture proposals: a solution whose Gaussian proposals miss a mode of some layer's tilted measure
(coverage check, :func:`solvers.deep.saddle.coverage`), or whose error estimate exceeds
``error_tol`` while a layer's measure has several significant modes, is re-solved with that layer's
proposal replaced by a mixture: a defensive Gaussian plus one Laplace component per mode found by the
shared mode search (:func:`solvers.deep.modes.mixture_from_modes`; estimator and adaptation:
:mod:`theory.deep_mixture`). The error estimates below apply unchanged (each replicate or rule
variant integrates through the whole mixture).

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
problem at the target T; if that fails, for ReLU at L = 2 with ``kkt_route`` both condensates as KKT unknowns
(:mod:`solvers.deep.kkt_route`; no other start if it converges); then, at L >= 2, the deep large-P solution (bounded smooth φ;
:mod:`solvers.deep.large_p`: its t, the prior kernels plus a class contrast of order √(log P/P)),
then a homotopy in P (class sizes scaled up from a few points at fixed σ_a² P: at small T the
T-continuation follows a common-mode branch to its fold, while the class-contrast branch of the
paper's regime is connected to small P); continuation in T from the solution at T_w = 2.5 T found by
these starts (:mod:`solvers.deep.temperature_path`; at T = 0.02 the homotopy in P fails at its first step,
while the class-contrast branch continues smoothly from T = 0.05); the homotopy in φ's shape,
φ_σ = (1 − σ) h + σ φ from the deep linear network's closed-form saddle at σ = 0, its proposals checked and
re-made as mixtures at every step (:mod:`solvers.deep.shape_homotopy`; the last of these starts at L = 2; at
L >= 3, where it is the only one that has reached an erf saddle, the first, also in the warm solve, and below
T = 0.05 the second, after the continuation from T_w); at L >= 3 for a φ that is an affine image of another
sigmoid (normcdf = ½ + ½ erf(√(2/π) h)), before it: that sigmoid's saddle by a nested search, followed along
α_s + β_s φ_0(κ_s h) to φ (:mod:`solvers.deep.sigmoid_homotopy`); continuation in T from high T;
and ``start`` (a previous solution: warm start/continuation; the L − 1 solution; or sampled networks'
class-block kernels, :mod:`solvers.deep.sampled_start`, where a failed Newton is followed by the Newton
homotopy from the start). Converged distinct solutions are reported in ``saddles`` with free energy and stability; the
stable one with the largest free energy is selected. If none converges, ``converged`` is False and the outputs are NaN
(never a wrong solution).

Budget: the search may spend ``options.search_budget`` Newton iterations and ``options.search_seconds`` CPU
seconds (every Newton solve of every start and continuation counts, the nested solve at T_w included; 0: no
limit). No Newton solve or proposal round starts once either is spent: the remaining starts are skipped, the
candidates found so far are kept (and refined as usual), and the message says so. A search that finds nothing
therefore ends in bounded time with status "no-solution". The iteration budget is reproducible; the CPU one
depends on the machine's speed, but only where it is reached, and then the message says so.

Modules: :mod:`solvers.deep.options` (:class:`DeepOptions`), :mod:`solvers.deep.model` (the packed
equations), :mod:`solvers.deep.newton` (Newton–Broyden and the proposal rounds), :mod:`solvers.deep.saddle`
(coverage, stability, integration errors), :mod:`solvers.deep.nonlinear_result` (the result and its JSON),
:mod:`solvers.deep.modes` (the mode search); this module holds the search over starts and the entry points.
Measured checks against the closed forms and sampled networks: docs/devlog.md.

References: THEORY §5; A. van Meegen and H. Sompolinsky, Nat. Commun. 16, 3354 (2025).
"""
from __future__ import annotations

from dataclasses import replace
import math
import time

import numpy as np
from threadpoolctl import threadpool_limits

from solvers.deep.common import layer_sigmas
from solvers.deep.condensate import domain_note, needle_rounds
from solvers.deep.kkt import solve_with_condensate
from solvers.deep.model import DeepModel, prior_start
from solvers.deep.modes import mixture_from_modes
from solvers.deep.newton import BudgetSpent, SolveLog, solve_at, t_only
from solvers.deep.nonlinear_result import DeepNonlinearSolution, build_solution
from solvers.deep.options import DeepOptions
from solvers.deep.sampled_start import SampledKernels, newton_homotopy, sampled_point
from solvers.deep.shape_homotopy import follow_shape, linear_point, shaped_model
from solvers.deep.sigmoid_homotopy import SOURCES, follow_sigmoid
from solvers.deep.temperature_path import follow_temperature
from solvers.deep.refine import refine
from solvers.deep.saddle import coverage, finish, residual_spread
from solvers.progress import restaged
from theory.deep_blocks import Proposal
from theory.spec import ModelSpec, SpecError

__all__ = ["DeepOptions", "DeepNonlinearSolution", "DeepNonlinearError", "solve_deep_nonlinear",
           "deep_nonlinear_json"]

_Model = DeepModel  # earlier private name (tests and notebooks)

#: at L >= 3 the shape homotopy at the target T reaches the saddle at T = 0.05 (erf) but not below (docs/devlog.md,
#: deep10, deep11); below this temperature the search tries the warm start (whose solve runs it at T_w) first
_SHAPE_TEMPERATURE = 0.05


class DeepNonlinearError(RuntimeError):
    """Raised by :func:`solve_deep_nonlinear` with ``raise_on_failure=True`` when no solution is found."""


def _into_domain(model: DeepModel, x, shrink=0.7, tries=25):
    """Scale t down until every layer's integral converges (linear/ReLU domains); x unchanged if it
    already does or if no scale helps."""
    std = [Proposal.standard(d) for d in model.dims]
    y = x.copy()
    for _ in range(tries):
        if model.safe_eval(y, std) is not None:
            return y
        y[:model.nt] *= shrink
    return x


_prior_start = prior_start  # earlier private name (tests, benchmarks)


def _secant(path, log_s):
    """Linear extrapolation in log s of the last two solutions of ``path`` [(log s, x)] to ``log_s``."""
    (a, xa), (b, xb) = path[-2], path[-1]
    return xb + (xb - xa) * ((log_s - b) / (b - a))


class _Search:
    """The candidate saddle points of one solve: direct starts and continuations in T, each solution checked
    for proposal coverage (:func:`solvers.deep.saddle.finish`) before it becomes a candidate."""

    def __init__(self, spec: ModelSpec, sig, opt: DeepOptions, depth: int = 0, progress=None):
        self.spec, self.sig, self.opt, self.depth = spec, sig, opt, depth
        self.model = DeepModel(spec, sig, opt)
        self.inflate = opt.inflate if opt.inflate is not None else (1.0 if self.model.exact else 1.5)
        self.log = SolveLog()
        self.log.progress = progress
        self.cands: list = []
        self.rejected: list = []
        self.tried: list = []  # the starts tried, with how far each got (for the failure message)
        self.last_solved = None  # (model, x) of the last homotopy step solved (for the failure message)
        self.spent = ""  # why the search ended early (its Newton-iteration budget), or ""

    def attempt(self, x, props, label):
        """Solve from (x, proposals) and check the solution (:func:`solvers.deep.saddle.finish`). A solution
        whose proposals miss modes of a layer's tilted measure, or whose error estimate exceeds
        ``error_tol`` while a layer's measure has several modes, is re-solved with mixture proposals built
        from those modes (up to ``options.mixture_rounds`` times); the covered solution with the smallest
        error estimate becomes a candidate. Returns it (a dict) or None."""
        model, opt = self.model, self.opt
        if props is None:
            x = _into_domain(model, x)
            props = model.initial_proposals(x, self.inflate)
        out = solve_at(model, x, props, self.log, label)
        best = None
        for rnd in range(opt.mixture_rounds + 1):
            if out is None:
                break
            c = finish(model, *out, label)
            if c["covered"]:
                if best is None or np.max(c["errors"]) < np.max(best["errors"]):
                    best = c
                redo = [r["modes"] > 1 for r in c["coverage"]] if np.max(c["errors"]) > opt.error_tol else []
            else:
                self.rejected.append(c["coverage"])
                self.log.append(f"{label}: solution REJECTED, the proposals do not cover the tilted measure "
                                f"({c['coverage']})")
                redo = [not r["covered"] for r in c["coverage"]]
            if rnd == opt.mixture_rounds or not any(redo):
                break
            mixed = [mixture_from_modes(p, *found, inflate=self.inflate) if r else p
                     for p, found, r in zip(c["props"], c["modes"], redo)]
            label = label if label.endswith("+ mixture proposals") else f"{label} + mixture proposals"
            out = solve_at(model, c["x"], mixed, self.log, label)
            if out is None:  # the mass moved: re-solve the field t first, then everything
                x1 = t_only(model, c["x"], mixed)
                out = solve_at(model, x1, mixed, self.log, label) if x1 is not None else None
        if best is not None:
            self.cands.append(best)
        return best

    def from_start(self, start) -> bool:
        """Solve from a user's ``start`` (see :func:`solve_deep_nonlinear`); True if it gave a candidate."""
        from solvers.deep.linear_classes import DeepLinearClassSolution

        model = self.model
        if isinstance(start, DeepLinearClassSolution) and len(start.sigmas) == model.L and start.spec.m == model.m:
            x_start = model.pack(np.diag(start.tau), [(start.blocks[ell], np.full(model.m, start.alphas[ell]))
                                                      for ell in range(model.L - 1)])
            return self.attempt(x_start, None, "start from the deep linear solution") is not None \
                or self.from_shape(x_start)
        if isinstance(start, DeepNonlinearSolution) and start.x is not None and start.layers == model.L \
                and start.spec.m == model.m:
            return self.attempt(start.x.copy(), start.proposals, "warm start") is not None
        if isinstance(start, DeepNonlinearSolution) and start.found and start.layers == model.L - 1 \
                and start.spec.m == model.m:
            # from L − 1: its hidden kernels K_1..K_{L-1} (the last one an observable) and its t
            kers = [(np.asarray(start.kernel_blocks[ell]),
                     np.asarray(start.kernel_diagonals[ell]) - np.diag(start.kernel_blocks[ell]))
                    for ell in range(model.L - 1)]
            x0, label = model.pack(start.t, kers), "start from the L − 1 solution"
            return self.attempt(x0, None, label) is not None or self.by_homotopy(_into_domain(model, x0), label)
        if isinstance(start, SampledKernels):
            return self.from_sampled(start)
        raise SpecError("start must be a converged DeepNonlinearSolution (same number of classes, L or L − 1 "
                        "layers), a DeepLinearClassSolution (same m and L) or SampledKernels (same m and L)")

    def from_sampled(self, start: SampledKernels) -> bool:
        """Start from sampled networks' class-block kernels (:mod:`solvers.deep.sampled_start`): t solved with
        the kernels held, mixture proposals at the modes of that point; if Newton fails from there, the
        Newton homotopy from that point (:func:`solvers.deep.sampled_start.newton_homotopy`)."""
        return self.by_homotopy(_into_domain(self.model, sampled_point(self.model, start)), f"start from {start.label}")

    def by_homotopy(self, x0, label) -> bool:
        """From the point x0 (not a solution): t solved with the kernels held, mixture proposals at the modes
        there, Newton; if that fails, the Newton homotopy from that point
        (:func:`solvers.deep.sampled_start.newton_homotopy`). True if it gave a candidate."""
        model = self.model
        x1 = t_only(model, x0, model.initial_proposals(x0, self.inflate))
        x1 = x0 if x1 is None else x1
        props = self.premixed(x1, model.initial_proposals(x1, self.inflate))
        if self.attempt(x1, props, label) is not None:
            return True
        end = newton_homotopy(model, x1, props, self.log, label)
        found = end is not None and self.attempt(*end, f"{label}, Newton homotopy")
        return self._tried(found, label)

    def premixed(self, x, props, model=None, floor=None):
        """Proposals for the start x: each layer whose proposal misses modes of its tilted measure (coverage
        check at x) gets the mixture of those modes (of ``model``'s equations, default the search's); with
        ``floor``, also every layer with several modes when the residual's replicate error at x exceeds it."""
        model = model or self.model
        ev = model.safe_eval(x, props)
        if ev is None:
            return props
        _, report, found = coverage(model, x, ev, props, self.opt.seed)
        noisy = floor is not None and float(np.max(residual_spread(model, x, props))) > floor
        keep = [rep["covered"] and not (noisy and rep["modes"] > 1) for rep in report]
        return [p if k else mixture_from_modes(p, *f, inflate=self.inflate) for p, f, k in zip(props, found, keep)]

    def from_large_p(self) -> bool:
        """Start from the deep large-P solution (:mod:`solvers.deep.large_p`): its field t, the prior kernels
        below the last hidden layer plus a class-contrast part ε I (ε = Var φ √(log P / P), the order of
        the contrast the saturated last layer needs, :mod:`theory.deep_large_p`), mixture proposals at the
        modes of that start. False when φ has no saturated large-P limit (ReLU, linear) or L = 1."""
        from solvers.deep.large_p import solve_deep_large_p

        model, spec = self.model, self.spec
        if model.L < 2 or model.oned.kind != "smooth":
            return False
        try:
            lp = solve_deep_large_p(spec, model.L, self.sig, code_neurons=0)
        except SpecError:
            return False
        if not lp.converged:
            return False
        P = float(np.sum(model.sizes))
        kers = []
        for ell in range(model.L - 1):
            diag, k = np.asarray(lp.kernel_diagonals[ell]), np.asarray(lp.kernel_blocks[ell])
            var = float(np.mean(diag - np.diag(k)))
            eps = var * math.sqrt(math.log(P) / P)
            kers.append((k + eps * np.eye(model.m), np.maximum(diag - np.diag(k), 1e-3)))
        x0 = _into_domain(model, model.pack(lp.t, kers))
        props = self.premixed(x0, model.initial_proposals(x0, self.inflate))
        return self._tried(self.attempt(x0, props, "start from the deep large-P solution"), "deep large-P start")

    def from_small_p(self) -> bool:
        """Homotopy in the number of training points: the class sizes scaled by s·P_c/min P_c with
        σ_a² P held fixed (the paper's scaling), from s = 1 (a few points, where the single-neuron measures
        are broad and the prior start converges) geometrically to the target sizes, each step started
        from the secant predictor x_k + (x_k − x_{k−1}) Δlog s_{k+1}/Δlog s_k (the last solution where the
        predictor leaves the domain). A step that converges in at most 5 Newton iterations lets the next
        step grow (ratio^1.5, at most ``size_ratio``²); a failed step is halved, in log s, up to three
        times. The class sizes enter the equations as real numbers. False if a step fails."""
        spec, opt = self.spec, self.opt
        sizes = np.asarray(spec.class_sizes, dtype=np.float64)
        lo = float(np.min(sizes))
        if lo <= 1.0:
            return False
        ratio, halvings = opt.size_ratio, 0
        s, x, props = 1.0, None, None
        path: list = []  # (log s, x) of the solved steps
        while s < lo:
            sub = self._scaled_model(sizes * s / lo)
            if x is None:
                x = _prior_start(sub, spec.temperature)
                props = sub.initial_proposals(x, self.inflate)
                x = t_only(sub, x, props)
                if x is None:
                    return False
            x0 = self._predict(sub, path, math.log(s), x, props)
            if x0 is x and path and sub.safe_eval(x, props) is None:  # outside the larger problem's domain
                x0 = _into_domain(sub, x)  # (ReLU): shrink t
                props = sub.initial_proposals(x0, self.inflate)
            nit = self.log.iterations
            out = needle_rounds(sub, x0, props, lambda xs, ps: solve_at(  # needles: solvers.deep.condensate
                sub, xs, ps, self.log, f"homotopy in P, P = {np.sum(sizes) * s / lo:.4g}", rounds=2, tol=1e-8,
                maxiter=25, jacobians=False))
            if out is None:
                if not path or halvings == 3:
                    self.tried.append(f"homotopy in P: Newton failed at P = {np.sum(sizes) * s / lo:.4g}, last solved "
                                      + (f"P = {np.sum(sizes) * math.exp(path[-1][0]) / lo:.4g}" if path else "none"))
                    return False
                ratio, halvings = math.sqrt(ratio), halvings + 1
                s = math.exp(path[-1][0]) * ratio
                continue
            x, props = out[0], out[4]
            self.last_solved = (sub, x)  # for the failure message (solvers.deep.condensate.domain_note)
            path.append((math.log(s), x))
            if self.log.iterations - nit <= 5:
                ratio = min(ratio ** 1.5, opt.size_ratio ** 2)
            s *= ratio
        x = self._predict(self.model, path, math.log(lo), x, props)
        if self.attempt(x, props, "homotopy in P from small P") is not None:
            return True
        self.tried.append(f"homotopy in P: solved up to P = {np.sum(sizes) * math.exp(path[-1][0]) / lo:.4g}, "
                          "Newton failed at the target")
        return False

    @staticmethod
    def _predict(model: DeepModel, path, log_s, x, props):
        """The secant predictor of ``path`` at ``log_s`` if ``model`` evaluates there, else ``x``."""
        if len(path) < 2:
            return x
        pred = _secant(path, log_s)
        return pred if model.safe_eval(pred, props) is not None else x

    def _scaled_model(self, sizes):
        """The equations at real class sizes ``sizes`` with σ_a² P as in the spec."""
        spec = self.spec
        P, Ps = float(np.sum(spec.class_sizes)), float(np.sum(sizes))
        return DeepModel(spec.replace(sigma_a=spec.sigma_a * math.sqrt(P / Ps)), self.sig, self.opt, sizes=sizes)

    def from_warmer(self) -> bool:
        """Continuation in T from a warmer solution: the same problem solved at T_w = ``warm_ratio``·T by the
        starts above (one level: that solve does not recurse; at L >= 3 it runs the shape homotopy, which reaches
        the saddle at T = 0.05 but not at 0.02), then followed down to T in geometric steps of at most a factor
        ``warm_ratio``^(1/4), the proposals (mixtures and all) carried along, a failed step halved in log T up to
        three times (:mod:`solvers.deep.temperature_path`). False if T_w has no solution or a step fails."""
        spec, opt, T = self.spec, self.opt, self.spec.temperature
        if self.model.L < 2 or T <= 0 or self.depth > 0 or opt.warm_ratio <= 1.0:
            return False
        Tw = opt.warm_ratio * T
        warm = self.nested(spec.replace(temperature=Tw), f"T_w = {Tw:.3g}", f"T = {Tw:.4g}")
        if not warm.found:
            self.tried.append(f"continuation from T = {Tw:.4g}: no solution there")
            return False
        path = follow_temperature(lambda Tk: DeepModel(spec.replace(temperature=Tk), self.sig, opt), warm.x,
                                  warm.proposals, self.log, Tw, T, math.log(opt.warm_ratio) / 4.0)
        if not path.done:
            self.tried.append(path.message)
            return False
        return self._tried(self.attempt(path.x, path.proposals, f"continuation in T from T = {Tw:.4g}"),
                           f"continuation from T = {Tw:.4g}")

    def nested(self, spec: ModelSpec, stage: str, tag: str) -> DeepNonlinearSolution:
        """A nested solve of ``spec`` (no continuations, one level deeper) on what is left of this search's budget;
        its log lines (prefixed ``[tag]``) and Newton iterations are added to this one's, its progress reported
        under "deep solve at ``stage``"."""
        sub = _solve(spec, self.sig, None, replace(self.opt, search=False, code_neurons=0, **self.budget_left()),
                     depth=self.depth + 1, progress=restaged(self.log.progress, f"deep solve at {stage}"))
        self.log.extend(f"[{tag}] {line}" for line in sub.log)
        self.log.iterations += sub.iterations
        return sub

    def budget_left(self) -> dict:
        """The search budget not yet spent, as options (a nested solve's share; at least 1 iteration, 1 s)."""
        log = self.log
        return {**({"search_budget": max(1, log.budget - log.iterations)} if log.budget is not None else {}),
                **({"search_seconds": max(1.0, log.deadline - time.process_time())} if log.deadline else {})}

    def from_shape(self, x0=None) -> bool:
        """The homotopy in φ's shape, φ_σ = (1 − σ) h + σ φ, from the deep linear network's saddle (or ``x0``)
        at σ = 0 to σ = 1 (:mod:`solvers.deep.shape_homotopy`; at L = 2 top level only). After every solved step the
        proposals are checked (coverage, and the residual's replicate error against ``error_tol``: a single
        Gaussian over several modes drifts the path away from the true one) and re-made as mixtures."""
        model = self.model
        if model.oned.kind == "linear" or (self.depth > 0 and model.L < 3):
            return False
        x0 = linear_point(model) if x0 is None else x0
        path = follow_shape(model, x0, shaped_model(model, 0.0).initial_proposals(x0, self.inflate), self.log,
                            maxiter=25, every_step=True,
                            remix=lambda mdl, x, props: self.premixed(x, props, mdl, floor=self.opt.error_tol))
        self.log.append(path.message)
        if not path.done:
            self.tried.append(path.message)
            return False
        return self._tried(self.attempt(path.x, path.proposals, "shape homotopy from the deep linear network"),
                           "shape homotopy")

    def from_sigmoid(self) -> bool:
        """The homotopy between sigmoids (:mod:`solvers.deep.sigmoid_homotopy`): the saddle of the sigmoid φ_0 of
        which φ is an affine image (normcdf: erf), found by a nested search at the same T, then followed along
        α_s + β_s φ_0(κ_s h) to φ with the proposals checked after every step (as :meth:`from_shape`). False at
        L < 3 or when φ has no such φ_0."""
        source = SOURCES.get(self.model.oned.name)
        if source is None or self.model.L < 3:
            return False
        base = self.nested(self.spec.replace(nonlinearity=source), source, source)
        if not base.found:
            return self._tried(False, f"homotopy from {source}: no {source} saddle")
        path = follow_sigmoid(self.model, source, base.x, base.proposals, self.log,
                              lambda mdl, x, props: self.premixed(x, props, mdl, floor=self.opt.error_tol))
        self.log.append(path.message)
        if not path.done:
            self.tried.append(path.message)
            return False
        return self._tried(self.attempt(path.x, path.proposals, path.message.split(":")[0]), "homotopy from " + source)

    def from_kkt(self) -> bool:
        """ReLU at L = 2: both condensates as KKT unknowns, a converged KKT point (:mod:`solvers.deep.kkt_route`)."""
        from solvers.deep.kkt_route import kkt_candidate
        cand = kkt_candidate(self)
        self.cands += [] if cand is None else [cand]
        return self._tried(cand is not None, "KKT route")

    def from_prior(self) -> bool:
        model = self.model
        x0 = _prior_start(model, self.spec.temperature)
        props = model.initial_proposals(x0, self.inflate)
        x1 = t_only(model, x0, props)
        return self._tried(x1 is not None and self.attempt(x1, None, "prior kernels"), "prior kernels")

    def continuation(self, Ts, label):
        """Follow the solution along temperatures ``Ts`` (ending at the target T), from prior kernels."""
        spec, sig, opt = self.spec, self.sig, self.opt
        sub = DeepModel(spec.replace(temperature=float(Ts[0])), sig, opt)
        x = _prior_start(sub, float(Ts[0]))
        props = sub.initial_proposals(x, self.inflate)
        x = t_only(sub, x, props)
        if x is None:
            return
        for Tk in Ts[:-1]:  # intermediate steps: one proposal round, loose tolerance
            out = solve_at(DeepModel(spec.replace(temperature=float(Tk)), sig, opt), x, props, self.log,
                           f"{label} T={Tk:.4g}", rounds=1, tol=1e-6, maxiter=15, jacobians=False)
            if out is None:
                self.tried.append(f"{label}: Newton failed at T = {Tk:.4g}")
                return
            x, props = out[0], out[4]
        self._tried(self.attempt(x, props, label), label)

    def _tried(self, found, label) -> bool:
        """Note a start that gave no candidate (for the failure message); True if it gave one."""
        if not found:
            self.tried.append(f"{label}: no converged, covered solution")
        return bool(found)

    def distinct(self) -> list:
        uniq = []
        for c in self.cands:
            if all(np.max(np.abs(c["ev"]["obs"] - u["ev"]["obs"])) > 1e-3 + 10 * np.max(c["errors"]) for u in uniq):
                uniq.append(c)
        return uniq

    def failure_message(self) -> str:
        if not self.rejected:
            tried = "; ".join(self.tried) or "direct start and continuation in T failed"
            return f"no solution found ({tried}{domain_note(self.last_solved)}); see log"
        return ("no reliable solution: Newton converged but the importance proposals do not cover the tilted "
                f"measure (multimodal or too narrow; coverage {self.rejected[-1]}), and Newton with mixture proposals "
                "at its modes did not converge" + (f"; {self.spent}" if self.spent else ""))


def _saddle_record(c) -> dict:
    return {"free_energy": float(c["ev"]["action"]), "free_energy_error": float(c["free_energy_error"]),
            "stable": c["stable"], "found_by": c["label"],
            "max_stability_eigenvalue": float(np.max(c["eig"])) if c["eig"].size else None,
            "outputs": c["ev"]["layers"][-1].outputs.tolist(), "selected": False}


def solve_deep_nonlinear(spec: ModelSpec, layers: int = 2, sigmas=None, start=None,
                         options: DeepOptions | None = None, raise_on_failure: bool = False,
                         progress=None) -> DeepNonlinearSolution:
    """Solve the deep class-block mean-field equations (module docstring) for orthogonal class data.

    ``start``: a previous :class:`DeepNonlinearSolution` (same m and L; any T or σ) used as the
    initial point, for warm starts and continuation; one with L − 1 layers (continuation in depth:
    its kernels K_1..K_{L-1} and t); or a :class:`solvers.deep.linear.DeepLinearClassSolution` (its t
    and kernels); or :class:`solvers.deep.sampled_start.SampledKernels` (the class-block kernels of sampled
    networks with L layers). Returns the selected saddle point (stable,
    largest free energy), all converged ones in ``saddles``; ``converged=False`` with status "no-solution"
    (NaN outputs) if none was found, or :class:`DeepNonlinearError` with ``raise_on_failure``;
    ``converged=False`` with status "error-bound-missed" (outputs given) if the integration error
    estimate of the selected one stays above ``options.error_tol``. ``progress`` (:mod:`solvers.progress`)
    gets each line of the solve's log as it is written.
    """
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec must be a ModelSpec (got {type(spec).__name__})")
    if spec.inputs is not None:
        raise SpecError("solve_deep_nonlinear needs orthogonal class-structured data (inputs=None)")
    sig = layer_sigmas(spec, layers, sigmas)
    with threadpool_limits(limits=1, user_api="blas"):  # (n × 2m) products: BLAS threads only spin
        sol = solve_with_condensate(lambda o, s: _solve(spec, sig, start if s is None else s, o, progress=progress),
                                    spec, options or DeepOptions())
    if raise_on_failure and not sol.found:
        raise DeepNonlinearError(sol.message + "\n" + "\n".join(sol.log))
    return sol


def _solve(spec: ModelSpec, sig, start, opt: DeepOptions, depth: int = 0, progress=None) -> DeepNonlinearSolution:
    t0 = time.perf_counter()
    search = _Search(spec, sig, opt, depth, progress)
    search.log.set_budget(opt.search_budget, opt.search_seconds)
    try:
        _run_starts(search, start)
    except BudgetSpent as spent:  # bounded time: the starts not yet tried are skipped, the candidates kept
        search.spent = f"{spent} (after {search.log.iterations} Newton iterations); later starts not tried"
        search.log.append(search.spent)
        search.tried.append(search.spent)
    search.log.set_budget()  # the refinement of the selected saddle below is not part of the search
    uniq = search.distinct()
    saddles = [_saddle_record(c) for c in uniq]
    if not uniq:
        return build_solution(search.model, None, saddles, search.log, t0, search.failure_message())
    best = max(range(len(uniq)), key=lambda i: (uniq[i]["stable"], uniq[i]["ev"]["action"]))
    saddles[best]["selected"] = True
    msg = (f"{len(uniq)} distinct saddle point(s) found, selected: "
           f"{'stable' if uniq[best]['stable'] else 'UNSTABLE (no stable one found)'}, largest free energy")
    chosen, model, o = refine(search, uniq[best], saddles[best])
    if np.max(chosen["errors"]) > o.error_tol:
        msg = (f"NOT CONVERGED (error bound missed): {msg}; integration error estimate "
               f"{np.max(chosen['errors']):.1e} exceeds error_tol {o.error_tol:g}")
    else:
        msg = "converged; " + msg
    if search.spent:
        msg += f"; {search.spent}"
    if chosen.get("linearised_replicates"):
        msg += (f"; {chosen['linearised_replicates']} of {max(r.groups for r in model.rules)} Sobol' replicates "
                "propagated linearly (their own tilt leaves a lower layer's domain)")
    return build_solution(model, chosen, saddles, search.log, t0, msg)


def _run_starts(search: _Search, start) -> None:
    """The search of :func:`_solve`: the user's ``start``, the prior start, the small-T starts and the
    continuations in T (module docstring); candidates collect in ``search.cands``."""
    spec, opt = search.spec, search.opt
    L, T = search.model.L, spec.temperature
    direct_ok = search.from_start(start) if start is not None else False
    if not direct_ok:
        direct_ok = search.from_prior()
    if L == 2 and not direct_ok and search.model.oned.kind == "relu" and opt.kkt_route and search.from_kkt():
        return  # the KKT point has its own continuation in T and error estimate
    if L == 2 and not direct_ok:  # the small-T starts (only when the prior start fails: earlier results unchanged)
        direct_ok = search.from_large_p() or search.from_small_p() or search.from_warmer() or search.from_shape()
    elif L >= 3 and not direct_ok and T < _SHAPE_TEMPERATURE:  # the shape homotopy from a warmer T, then down in T
        direct_ok = search.from_warmer() or search.from_shape() or search.from_large_p() or search.from_small_p()
    elif L >= 3 and not direct_ok:  # L >= 3: from another sigmoid's saddle (normcdf from erf), the shape homotopy
        direct_ok = (search.from_sigmoid() or search.from_shape() or search.from_large_p() or search.from_small_p()
                     or search.from_warmer())
    if not direct_ok or (opt.search and L >= 2):
        Ts = np.geomspace(max(2.0, 8.0 * T), max(T, 1e-3), opt.continuation_steps)
        search.continuation(np.append(Ts, T) if T < 1e-3 else Ts, "continuation from high T")
    if opt.search and L >= 2 and T > 0:
        search.continuation(np.geomspace(T / 16.0, T, max(3, opt.continuation_steps // 2)), "continuation from low T")


def deep_nonlinear_json(spec: ModelSpec, layers: int, sigmas=None, options: DeepOptions | None = None,
                        progress=None) -> dict:
    """JSON block for ``codingschemes solve --layers L`` with a nonlinear φ (orthogonal data)."""
    sol = solve_deep_nonlinear(spec, layers, sigmas, options=options, progress=progress)
    out = sol.to_json()
    out["method"] = "deep class-block mean-field solver (solvers.deep.nonlinear)"
    return out
