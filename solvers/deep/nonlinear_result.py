"""The result of the deep class-block solver (:mod:`solvers.deep.nonlinear`) and its JSON."""
from __future__ import annotations

from dataclasses import dataclass, field
import time

import numpy as np

from solvers.deep.common import with_result_keys
from solvers.results import Result
from theory.deep_blocks import OutsideDomain
from theory.observables import Observables, check_layer, layer_summaries
from theory.spec import ModelSpec

__all__ = ["DeepNonlinearSolution", "build_solution"]


@dataclass(frozen=True, kw_only=True)
class DeepNonlinearSolution(Result):
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

    Result protocol: ``converged`` only when a saddle point was found (``found``), Newton's residual met
    its tolerance and the integration error estimate ``error_estimate`` (max of ``errors``) is at most
    ``options.error_tol``; ``status`` "converged", "error-bound-missed" (outputs given) or "no-solution"
    (NaN outputs); ``iterations``: Newton iterations of the whole search; ``residual``: max|residual|.
    """

    spec: ModelSpec
    sigmas: tuple
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
    saddles: list
    integrator: str
    error_sources: dict
    ess_min: float | None  # smallest Kish ESS fraction of the Sobol' (importance-sampled) layers
    code_fractions: list = field(default_factory=list)  # per layer {code: fraction} (theory neurons)
    coverage: list = field(default_factory=list)  # per layer proposal-coverage check (_coverage)
    x: np.ndarray | None = None
    proposals: list | None = None
    condensate: dict | None = None  # ReLU: the last layer's outliers (barrier: solvers.deep.kkt; KKT: kkt_route)
    kkt: object | None = None  # ReLU KKT route: solvers.deep.kkt_route.KKTPoint (model, x with multipliers, proposals)
    log: list = field(default_factory=list)

    @property
    def layers(self) -> int:
        return len(self.sigmas)

    @property
    def found(self) -> bool:
        """A saddle point was found (its outputs are given), whether or not its error bound holds."""
        return self.x is not None

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
        return with_result_keys(self, {
            "layers": self.layer_summaries(), "sigmas": list(self.sigmas), "converged": self.converged,
            "outputs": self.outputs.tolist(), "readout_moment": self.readout_moment.tolist(),
            "t": self.t.tolist(),
            "errors": {"outputs": e["outputs"].tolist(), "readout_moment": e["readout_moment"].tolist()},
            "error_estimate": self.error_estimate, "free_energy": self.free_energy,
            "free_energy_error": self.free_energy_error, "stable": self.stable,
            "stability_eigenvalues": self.stability_eigenvalues, "residual": self.residual,
            "saddles": self.saddles, "integrator": self.integrator, "error_sources": self.error_sources,
            "coverage": self.coverage,
            "ess_min": self.ess_min,
            "message": self.message, "time_seconds": self.time_seconds,
            **({"condensate": self.condensate} if self.condensate is not None else {})})


def _error_estimate(errors) -> float:
    return float(np.max(errors)) if errors.size else 0.0


def build_solution(model, cand, saddles, log, t0, message):
    """The :class:`DeepNonlinearSolution` of the selected candidate ``cand`` (None: no solution)."""
    spec, m, L = model.spec, model.m, model.L
    iterations = getattr(log, "iterations", 0)
    if cand is None:
        nan = np.full((m, m), np.nan)
        nvec = 2 * m * m + L * (m + m * m)
        return DeepNonlinearSolution(
            spec=spec, sigmas=model.sigmas, converged=False, status="no-solution", iterations=iterations, t=nan,
            outputs=nan, readout_moment=nan,
            kernel_diagonals=tuple(np.full(m, np.nan) for _ in range(L)), kernel_blocks=tuple(nan for _ in range(L)),
            conjugates=(), free_energy=float("nan"), free_energy_error=float("nan"), stable=False,
            stability_eigenvalues=[], errors=np.full(nvec, np.nan), residual=float("nan"),
            error_estimate=float("nan"), saddles=saddles,
            integrator=model.describe(), error_sources={}, ess_min=None, message=message, log=log,
            time_seconds=time.perf_counter() - t0)
    ev, x = cand["ev"], cand["x"]
    t, kernels = model.unpack(x)
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
    cond = cand.get("condensate_json")
    if cond is None and model.condensate is not None:
        terms = model.condensate.terms(model, t, kernels)
        cond = {"epsilon": model.condensate.epsilon, "directions": []} if terms is None else \
            {"epsilon": model.condensate.epsilon, **terms.to_json(layers[-1].outputs)}
    conj = tuple((layers[ell].kt_in, layers[ell].dt_in) for ell in range(1, L))
    err = _error_estimate(cand["errors"])
    ok = bool(err <= model.opt.error_tol)
    sol = DeepNonlinearSolution(
        spec=spec, sigmas=model.sigmas, converged=ok, status="converged" if ok else "error-bound-missed",
        iterations=iterations, error_estimate=err, t=t.copy(), outputs=layers[-1].outputs,
        readout_moment=layers[-1].readout_moment,
        kernel_diagonals=tuple(np.diag(r.k) + r.delta for r in layers), kernel_blocks=tuple(r.k for r in layers),
        conjugates=conj, free_energy=float(ev["action"]), free_energy_error=float(cand["free_energy_error"]),
        stable=cand["stable"], stability_eigenvalues=[float(e) for e in cand["eig"]],
        errors=cand["errors"], residual=float(np.max(np.abs(ev["residual"]))), saddles=saddles, code_fractions=codes,
        coverage=cand["coverage"],
        integrator=model.describe(), error_sources=cand["error_sources"],
        ess_min=min((r.ess for r, rule in zip(layers, model.rules) if rule.groups > 1), default=None),
        message=message, x=x, condensate=cond,
        proposals=cand["props"], log=log, time_seconds=time.perf_counter() - t0)
    return _kkt_values(sol, cand, m, L) if "kkt" in cand else sol


def _kkt_values(sol, cand, m, L):
    """A KKT candidate's solution (:mod:`solvers.deep.kkt_route`): the replicas' mean symmetrised observables, their
    mean free energy, the residual of the symmetric-subspace solve, and the :class:`KKTPoint` as ``kkt``."""
    from dataclasses import replace

    o, off = cand["mean_observables"], 2 * m * m
    diags, blocks = [], []
    for _ in range(L):
        diags.append(o[off:off + m].copy())
        blocks.append(o[off + m:off + m + m * m].reshape(m, m).copy())
        off += m + m * m
    return replace(sol, outputs=o[:m * m].reshape(m, m).copy(), readout_moment=o[m * m:2 * m * m].reshape(m, m).copy(),
                   kernel_diagonals=tuple(diags), kernel_blocks=tuple(blocks), free_energy=float(cand["action"]),
                   residual=float(cand["ev"]["symmetric_residual"]), kkt=cand["kkt"])
