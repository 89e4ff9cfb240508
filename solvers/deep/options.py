"""Options of the deep class-block solver (:func:`solvers.deep.nonlinear.solve_deep_nonlinear`)."""
from __future__ import annotations

from dataclasses import dataclass

from solvers.options import Options
from theory.checks import check_bool, check_choice, check_float, check_int

__all__ = ["DeepOptions", "INTEGRATORS", "SEARCH_BUDGET", "SEARCH_SECONDS"]

#: outer integrators (:mod:`solvers.deep.nonlinear`, "Integrators")
INTEGRATORS = ("auto", "gauss-hermite", "qmc", "sparse-grid")

#: default Newton-iteration and CPU-second budgets of one deep solve's search (:attr:`DeepOptions.search_budget`,
#: :attr:`DeepOptions.search_seconds`)
SEARCH_BUDGET = 3000  # L = 3 normcdf from the erf saddle: ~1500 Newton iterations (docs/devlog.md, deep12)
SEARCH_SECONDS = 3600.0


@dataclass(frozen=True)
class DeepOptions(Options):
    """Solver options (:mod:`solvers.deep.nonlinear`). ``integrator``: one of :data:`INTEGRATORS`."""

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
    size_ratio: float = 1.25  # step factor of the homotopy in P (class sizes), when the direct starts fail
    warm_ratio: float = 2.5  # small-T start: solve at warm_ratio·T, continue down in T (1: off)
    mixture_rounds: int = 2  # re-solves with mixture proposals (one component per mode) after a coverage failure
    seed: int = 0
    # ReLU: barrier weight ε of the last layer's condensate (solvers.deep.kkt); None: the equations without it
    # first, then with ε = solvers.deep.kkt.EPSILON if they give no solution within error_tol; 0 (default): never,
    # because the barrier has not yet solved a case at L >= 2 that the plain equations miss (docs/devlog.md)
    condensate_epsilon: float | None = 0.0
    # the barrier's onset q_0 (solvers.deep.kkt.barrier_weights): None = the log barrier over q >= Q_MIN
    condensate_onset: float | None = None
    code_neurons: int = 8000  # neurons drawn from each layer's measure for the code fractions (0: none)
    # ReLU at L = 2 where the plain equations stop at the readout's domain boundary: both condensates as KKT unknowns
    # (solvers.deep.kkt_route; False: the search without it)
    kkt_route: bool = True
    # ReLU at L = 2 (solvers.deep.kkt_route): independent Sobol' replicas of the KKT solve, and the largest log2 of
    # their points per group (from qmc_log2n_max up while the replicas' error bound exceeds error_tol)
    kkt_replicas: int = 6
    kkt_log2n_max: int = 15
    # every layer's rule joined by its nodes' images under the permutations of equal-size classes: exactly symmetric
    # estimates at a class-symmetric point, unbiased everywhere (theory.deep_symmetric_rule); the KKT route turns it on
    symmetric_rule: bool = False
    # ReLU KKT model: the readout's integral split at r_c = needle_split along each tracked readout maximiser (the
    # rule inside, 1-D slice integrals along the needles: theory.deep_needle_tail); 0: off (the rule alone)
    needle_split: float = 0.0
    # ReLU KKT model: each hidden layer's integral split at r_c = hidden_needle_split along its tracked maximisers
    # (the first layer's v, the middle layers' (v, w)); 0: off (the rule alone)
    hidden_needle_split: float = 0.0
    # Newton iterations and CPU seconds the search over starts and continuations may spend (0: no limit); once one
    # is spent no further Newton solve starts and the solve reports what it has (status "no-solution" if nothing)
    search_budget: int = SEARCH_BUDGET
    search_seconds: float = SEARCH_SECONDS

    def validate(self) -> None:
        check_choice("integrator", self.integrator, INTEGRATORS)
        check_int("sparse_level", self.sparse_level, 1)
        check_int("qmc_log2n", self.qmc_log2n, 1)
        check_int("qmc_log2n_max", self.qmc_log2n_max, 1)
        check_float("error_tol", self.error_tol, 0.0, lo_open=True)
        if self.condensate_epsilon is not None:
            check_float("condensate_epsilon", self.condensate_epsilon, 0.0)
        if self.condensate_onset is not None:
            check_float("condensate_onset", self.condensate_onset, 0.0, 1.0, hi_open=True)
        check_int("qmc_replicates", self.qmc_replicates, 2)
        check_int("nz", self.nz, 2)
        check_float("tol", self.tol, 0.0, 1.0, lo_open=True, hi_open=True)
        check_int("maxiter", self.maxiter, 0)
        check_int("max_rounds", self.max_rounds, 1)
        if self.proposal_tol is not None:
            check_float("proposal_tol", self.proposal_tol, 0.0, lo_open=True)
        if self.inflate is not None:
            check_float("inflate", self.inflate, 0.0, lo_open=True)
        check_int("continuation_steps", self.continuation_steps, 1)
        check_bool("search", self.search)
        check_float("size_ratio", self.size_ratio, 1.0, lo_open=True)
        check_float("warm_ratio", self.warm_ratio, 1.0)
        check_int("mixture_rounds", self.mixture_rounds, 0)
        check_int("seed", self.seed, 0)
        check_int("code_neurons", self.code_neurons, 0)
        check_bool("kkt_route", self.kkt_route)
        check_int("kkt_replicas", self.kkt_replicas, 3)
        check_bool("symmetric_rule", self.symmetric_rule)
        check_int("kkt_log2n_max", self.kkt_log2n_max, 1)
        check_float("needle_split", self.needle_split, 0.0)
        check_float("hidden_needle_split", self.hidden_needle_split, 0.0)
        check_int("search_budget", self.search_budget, 0)
        check_float("search_seconds", self.search_seconds, 0.0)
