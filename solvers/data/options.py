"""Options of the explicit-input solvers: :func:`solvers.data.solve.solve_general` and
:func:`solvers.data.branches.solve_general_branches` (frozen, validated on construction)."""
from __future__ import annotations

from dataclasses import dataclass

from solvers.options import Options
from theory.checks import check_choice, check_float, check_int
from theory.spec import SpecError

__all__ = ["GeneralOptions", "GeneralBranchOptions", "SAMPLERS", "resolve_sampler"]

#: samplers of :func:`solvers.data.solve.solve_general`; "auto" is :func:`resolve_sampler`'s rule
SAMPLERS = ("auto", "mcmc", "smc")


def resolve_sampler(sampler: str, nonlinearity) -> str:
    """The sampler that ``sampler`` names for φ = ``nonlinearity``: "mcmc" or "smc" as given; "auto"
    is tempered SMC for every φ except linear, MCMC for linear.

    The one rule for the API and the CLI. MCMC chains do not balance separated code modes: on
    digits they meet their own convergence criteria at a wrong erf fixed point, and ReLU does not
    converge; SMC starts from the prior in every round and weights every mode. Linear φ has one
    Gaussian tilted law, where chains mix and are cheaper; ``generalize`` uses the exact closed form
    for it (THEORY §2) and runs a sampler only when one is named.
    """
    check_choice("sampler", sampler, SAMPLERS)
    if sampler != "auto":
        return sampler
    from theory.nonlinearities import get_nonlinearity

    return "mcmc" if get_nonlinearity(nonlinearity).name == "linear" else "smc"


@dataclass(frozen=True)
class GeneralOptions(Options):
    """Settings of :func:`solve_general` (validated on construction).

    chains: parallel chains (≥ 2·groups); sweeps: ESS steps per chain in the first round;
    final_sweeps: ESS steps per chain in the final rounds (the sample size grows ×2 per round
    from ``sweeps`` once the residual is within ``4·z_tol`` of its noise); keep: stored states
    per chain per round (thinning); burn: fraction of each round discarded; max_rounds: outer
    iterations; z_tol: convergence threshold on rms(r̂/MCSE); groups: chain groups for the MCSE;
    min_ess_fraction: trust region of the surrogate; seed: random seed.

    sampler: "auto" (default: :func:`resolve_sampler`, SMC except for linear φ), "mcmc" (parallel
    elliptical slice chains warm-started between rounds) or "smc" (tempered SMC from the prior in
    every round, :mod:`solvers.data.smc`); for "smc":
    particles (first round, all groups together), max_particles (the sample doubles up to this while
    the MCSE is above f_tol), cess (incremental ESS fraction per β step), smc_moves (slice moves per
    β step), smc_keep (states stored per particle after β = 1; replaces keep).

    replicas: independent solutions (seeds seed, seed + 1000003, ...) that must agree within their
    errors for ``converged`` (:mod:`solvers.data.replicas`; 1 skips the check, except the comparison
    with the closed form for linear φ).
    """

    chains: int = 256
    sweeps: int = 40
    final_sweeps: int = 320
    keep: int = 40
    burn: float = 0.25
    max_rounds: int = 25
    z_tol: float = 2.0
    groups: int = 16
    min_ess_fraction: float = 0.5
    max_newton: int = 4
    tempering: int = 1
    beta_min: float = 0.05
    f_tol: float = 0.05
    max_sweeps: int = 1280
    rhat_tol: float = 1.1
    seed: int = 0
    sampler: str = "auto"
    particles: int = 16384
    max_particles: int = 65536
    cess: float = 0.5
    smc_moves: int = 3
    smc_keep: int = 2
    replicas: int = 2

    def validate(self) -> None:
        for name in ("chains", "sweeps", "final_sweeps", "keep", "max_rounds", "groups", "max_newton", "tempering",
                     "max_sweeps", "particles", "max_particles", "smc_moves", "smc_keep", "replicas"):
            check_int(name, getattr(self, name), 1)
        check_int("groups", self.groups, 4)  # a Monte Carlo error estimate needs a few groups
        if self.chains < 2 * self.groups or self.chains % self.groups:
            raise SpecError(f"chains must be a multiple of groups = {self.groups} and >= {2 * self.groups} "
                            f"(got {self.chains})")
        check_int("final_sweeps", self.final_sweeps, self.sweeps)
        check_int("max_sweeps", self.max_sweeps, self.final_sweeps)
        check_float("burn", self.burn, 0.0, 0.9, hi_open=True)
        check_float("z_tol", self.z_tol, 0.0, lo_open=True)
        check_float("f_tol", self.f_tol, 0.0, lo_open=True)
        check_float("rhat_tol", self.rhat_tol, 1.0, lo_open=True)
        check_float("beta_min", self.beta_min, 0.0, 1.0, lo_open=True, hi_open=True)
        check_choice("sampler", self.sampler, SAMPLERS)
        if self.particles % self.groups or self.particles < 8 * self.groups:
            raise SpecError(f"particles must be a multiple of groups = {self.groups} and >= {8 * self.groups} "
                            f"(got {self.particles})")
        check_int("max_particles", self.max_particles, self.particles)
        check_float("cess", self.cess, 0.0, 1.0, lo_open=True, hi_open=True)
        check_float("min_ess_fraction", self.min_ess_fraction, 0.0, 1.0, lo_open=True, hi_open=True)


@dataclass(frozen=True)
class GeneralBranchOptions(Options):
    """Settings of :func:`solve_general_branches` (validated on construction).

    chains: chains per tilt vector (branch or integration node), a multiple of ``groups``;
    groups: independent chain groups per tilt for the MCSE (≥ 4); sweeps: ESS sweeps per round
    (doubled up to ``max_sweeps`` once the residual is within 4·z_tol of its noise); keep: stored
    states per chain; nodes: Clenshaw–Curtis intervals of the Λ integration (even, ≥ 4);
    search_starts: random starts of the branch search on top of the sign patterns;
    search_iters: fixed-point iterations of the search; max_rounds: outer samplings.
    """

    chains: int = 64
    groups: int = 8
    sweeps: int = 40
    max_sweeps: int = 320
    keep: int = 10
    nodes: int = 16
    search_starts: int = 6
    search_iters: int = 40
    max_rounds: int = 40
    max_newton: int = 6
    z_tol: float = 2.0
    f_tol: float = 0.02
    min_ess_fraction: float = 0.1
    seed: int = 0

    def validate(self) -> None:
        for name in ("chains", "groups", "sweeps", "max_sweeps", "keep", "nodes", "search_iters", "max_rounds",
                     "max_newton"):
            check_int(name, getattr(self, name), 1)
        check_int("search_starts", self.search_starts, 0)
        if self.groups < 4 or self.chains % self.groups:
            raise SpecError(f"groups must be >= 4 and divide chains = {self.chains} (got {self.groups})")
        if self.nodes < 4 or self.nodes % 2:
            raise SpecError(f"nodes must be an even integer >= 4 (got {self.nodes})")
        check_int("max_sweeps", self.max_sweeps, self.sweeps)
        check_int("keep", self.keep, 1, self.sweeps)
        check_float("z_tol", self.z_tol, 0.0, lo_open=True)
        check_float("f_tol", self.f_tol, 0.0, lo_open=True)
        check_float("min_ess_fraction", self.min_ess_fraction, 0.0, 1.0, lo_open=True, hi_open=True)
