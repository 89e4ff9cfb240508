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
