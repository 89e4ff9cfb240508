"""The bias check of the Monte Carlo theory: independent replicas, and the exact answer where one
exists, must agree within their stated errors (THEORY §2; Vehtari et al. 2021 on why one chain's
own error bar cannot reveal its bias).

A solution of :func:`solvers.data.solve.solve_general` reports its field as G group estimates
t_g = t̂ + Δ_g (the one-step estimator). What the theory predicts, on the training inputs and on
test inputs, depends on t only through

    w = Lᵀ t,   L Lᵀ = σ_1² K0   (:func:`solvers.data.chains.prior_factor`),

because the preactivations are h = L z and a test preactivation enters through its conditional
given h; components of t outside the range of K0 change nothing. Two estimates w_1, w_2 with group
MCSEs s_1, s_2 agree when

    max_i |w_1,i − w_2,i| / √(s_1,i² + s_2,i²) <= z_crit,

z_crit the two-sided Student-t quantile with G − 1 degrees of freedom at family-wise level
α = 0.01 over the n entries compared (Bonferroni), so that noise alone fails the test with
probability below α. Against the exact answer (linear φ: the closed form of
:mod:`solvers.data.linear`) the exact side has s = 0.

The same test compares the predictions on test inputs (:func:`check_predictions`, run by
``GeneralSolution.predict``): each replica's f(x*) with its group MCSE, and the closed form's.

The rule on the residual's noise (rms r̂/MCSE <= z_tol) cannot see a bias along directions in which
f hardly depends on t (small eigenvalues of K at small T); these checks can. The case that shows
it is in docs/devlog.md ("The Monte Carlo theory's bias check").
"""
from __future__ import annotations

from dataclasses import dataclass, replace
import math

import numpy as np
from scipy import stats

from solvers.data.chains import prior_factor
from solvers.data.estimators import group_mcse

__all__ = ["Agreement", "FAMILY_LEVEL", "REPLICA_SEED_STRIDE", "field_estimates", "agreement", "check_bias",
           "check_predictions"]

#: family-wise false-alarm probability of one agreement test
FAMILY_LEVEL = 0.01
#: seed offset between replicas (far from the seeds a user steps through)
REPLICA_SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class Agreement:
    """One agreement test: the largest standardised difference, its critical value, the number of
    entries compared, and what the solution was compared with ("replica k" or "closed form")."""

    max_z: float
    critical_z: float
    entries: int
    against: str

    @property
    def agree(self) -> bool:
        return bool(self.max_z <= self.critical_z)

    def describe(self) -> str:
        verdict = "agrees with" if self.agree else "disagrees with"
        return (f"{verdict} {self.against}: max |Δw|/error {self.max_z:.2f} "
                f"({'<=' if self.agree else '>'} {self.critical_z:.2f}, {self.entries} entries, "
                f"family-wise level {FAMILY_LEVEL})")

    def to_json(self) -> dict:
        return {"against": self.against, "max_z": self.max_z, "critical_z": self.critical_z,
                "entries": self.entries, "agree": self.agree}


def field_estimates(solution, L: np.ndarray) -> tuple:
    """(w̄, MCSE(w̄), G): the group mean and MCSE of w = Lᵀ t over the solution's G group estimates."""
    groups = solution._t_sampled[None] + solution._deltas  # (G, P, m)
    w = np.einsum("pr,gpm->grm", L, groups)
    return w.mean(axis=0), group_mcse(w), w.shape[0]


def agreement(w1, s1, w2, s2, groups: int, against: str) -> Agreement:
    """The agreement test of the module docstring for two estimates (``s2`` = 0 for an exact one)."""
    err = np.sqrt(np.asarray(s1) ** 2 + np.asarray(s2) ** 2)
    diff = np.abs(np.asarray(w1) - np.asarray(w2))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(err > 0, diff / err, np.where(diff > 0, np.inf, 0.0))
    n = int(z.size)
    crit = float(stats.t.ppf(1.0 - FAMILY_LEVEL / (2 * n), df=max(groups - 1, 1)))
    return Agreement(max_z=float(np.max(z)), critical_z=crit, entries=n, against=against)


def _exact_field(spec):
    """The closed-form field on the range of K0 for linear φ, else None."""
    if spec.nonlinearity != "linear":
        return None
    from solvers.data.linear import solve_linear
    exact = solve_linear(spec)
    return exact.range_t if exact.converged else None


def check_bias(spec, first, replicas: int, solve_replica):
    """``first`` with ``converged`` also requiring agreement with ``replicas − 1`` further solutions
    (``solve_replica(k)``, k = 1, 2, ...: seed ``first``'s + k·REPLICA_SEED_STRIDE) and, for linear φ, with the
    closed form; the tests are in ``bias_checks`` and the verdict in ``status``/``message``."""
    L = prior_factor(spec.input_kernel(), spec.sigma_w)
    w1, s1, G = field_estimates(first, L)
    checks, others = [], []
    exact = _exact_field(spec)
    if exact is not None:
        checks.append(agreement(w1, s1, L.T @ exact, 0.0, G, "the closed form"))
    for k in range(1, replicas):
        other = solve_replica(k)
        others.append(other)
        w2, s2, _ = field_estimates(other, L)
        checks.append(agreement(w1, s1, w2, s2, G, f"replica {k}" + ("" if other.converged else " (not converged)")))
    if not checks:
        return replace(first, message=first.message + "; bias not checked (one replica, no closed form)")
    agree = all(c.agree for c in checks)
    converged = bool(first.converged and all(o.converged for o in others) and agree)
    status = first.status if not first.converged else ("converged" if converged else "replicas-disagree")
    note = "; ".join(c.describe() for c in checks)
    return replace(first, converged=converged, status=status, message=f"{first.message}; {note}",
                   bias_checks=tuple(c.to_json() for c in checks), _replicas=tuple(others))


def check_predictions(solution, test_inputs, mean, mean_error) -> tuple:
    """Agreement of the test predictions ``mean`` (with MCSE ``mean_error``) with the other replicas'
    and, for linear φ, with the closed form's (JSON dicts of :class:`Agreement`)."""
    groups = solution._groups
    checks = []
    for k, other in enumerate(solution._replicas, start=1):
        pred = other.predict(test_inputs, check=False)
        checks.append(agreement(mean, mean_error, pred.mean, pred.mean_error, groups, f"replica {k}"))
    if solution.spec.nonlinearity == "linear":
        from solvers.data.linear import solve_linear
        exact = solve_linear(solution.spec)
        if exact.converged:
            checks.append(agreement(mean, mean_error, exact.predict(test_inputs), 0.0, groups, "the closed form"))
    return tuple(c.to_json() for c in checks)
