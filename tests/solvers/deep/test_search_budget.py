"""The deep search's Newton-iteration budget (DeepOptions.search_budget): once spent, no further start runs and the
solve reports what it found, so a failing search ends in bounded time; a budget that is not reached changes
nothing."""
import numpy as np
import pytest

from solvers.deep.newton import BudgetSpent, SolveLog
from solvers.deep.nonlinear import DeepOptions, solve_deep_nonlinear
from theory.spec import ModelSpec, SpecError


def test_a_spent_budget_ends_the_search_and_keeps_what_it_found():
    spec = ModelSpec(nonlinearity="normcdf", class_sizes=(3, 2), temperature=0.5)
    direct = solve_deep_nonlinear(spec, 2, options=DeepOptions(search=False, code_neurons=0))
    # the same first start (prior kernels), then the continuations in T would run: the budget stops them
    cut = solve_deep_nonlinear(spec, 2, options=DeepOptions(search=True, code_neurons=0, search_budget=1))
    assert direct.converged and cut.converged and "budget" not in direct.message
    assert "search budget of 1 Newton iterations spent" in cut.message
    assert np.array_equal(cut.outputs, direct.outputs) and cut.iterations == direct.iterations
    assert "continuation from high T" not in " ".join(cut.log)


def test_the_budget_is_checked_before_each_newton_solve():
    log = SolveLog()
    log.iterations = 5
    log.set_budget(iterations=5)
    log.iterations = 9
    log.check_budget()
    log.iterations = 10
    with pytest.raises(BudgetSpent, match="10 Newton iterations"):
        log.check_budget()
    log.set_budget(seconds=1e-12)
    with pytest.raises(BudgetSpent, match="CPU seconds"):
        log.check_budget()
    log.set_budget()  # no limit
    log.check_budget()
    for name in ("search_budget", "search_seconds"):
        with pytest.raises(SpecError, match=name):
            DeepOptions(**{name: -1})
    assert DeepOptions(search_budget=0, search_seconds=0).search_budget == 0  # no limit


def test_residual_spread_is_the_replicate_error_of_the_equations():
    """The residual's replicate standard error (solvers.deep.saddle.residual_spread): zero with tensor Gauss–Hermite
    rules (no replicates), positive with Sobol' replicates and shrinking as their points grow (randomised QMC: at
    least like 1/√n), at the same point and proposals."""
    from solvers.deep.common import layer_sigmas
    from solvers.deep.model import DeepModel
    from solvers.deep.nonlinear import _prior_start
    from solvers.deep.saddle import residual_spread

    spec = ModelSpec(nonlinearity="normcdf", class_sizes=(3, 2), temperature=0.5)
    sig = layer_sigmas(spec, 2)
    gh = DeepModel(spec, sig, DeepOptions())
    x = _prior_start(gh, 0.5)
    props = gh.initial_proposals(x, 1.5)
    assert np.all(residual_spread(gh, x, props) == 0.0)
    coarse, fine = (residual_spread(DeepModel(spec, sig, DeepOptions(integrator="qmc", qmc_log2n=n)), x, props)
                    for n in (8, 12))
    assert np.all(np.isfinite(coarse)) and np.max(coarse) > 0
    assert np.max(fine) < np.max(coarse) / 4  # 16× the points: at least 4× smaller
