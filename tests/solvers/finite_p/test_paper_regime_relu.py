"""One-layer ReLU in the paper's regime at small P converges, with an error estimate that holds.

``codingschemes solve --nonlinearity relu --class-sizes 8,4,4 --temperature 0.05 --sigma-a 0.25``
(σ_a² = σ̄_a²/P with σ̄_a = 1 at P = 16) stopped at a 4e-5 noise floor: the needle rule across
the near-boundary tail converged like a power of the order (:mod:`solvers.finite_p.placement`).
The solution is interior (margins 1 − q ~ 2e-3): the barrier multipliers must carry no share of f.
"""
import json

import numpy as np
import pytest

from codingschemes.cli.main import main
from solvers.options import SolverOptions
from solvers.solve import solve
from theory.spec import ModelSpec

KEYS = ("outputs", "readout_moment", "kernel_diagonal", "kernel_blocks")
ARGS = ["--nonlinearity", "relu", "--class-sizes", "8,4,4", "--temperature", "0.05", "--sigma-a", "0.25"]


@pytest.mark.slow
def test_relu_p16_paper_regime_converges_and_its_error_bound_holds(capsys):
    code = main(["solve", *ARGS, "--format", "json", "--no-plot", "--quiet"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out["message"]
    assert out["converged"] is True and out["status"] == "converged"
    assert out["residual"] <= 1e-7 and out["error_estimate"] <= 1e-6
    # interior solution: the needles hold the near-boundary mass, the barrier's multipliers none of f
    assert max(out["condensate"]["margins"]) > 1e-3
    assert max(out["condensate"]["mass"]) < 1e-9
    # independent check: a solve to residual 1e-11 on Gauss-Hermite bulk rules (not the trapezoid)
    spec = ModelSpec("relu", class_sizes=(8, 4, 4), temperature=0.05, sigma_a=0.25)
    ref = solve(spec, SolverOptions(tol=1e-11, integral_tol=1e-10, integrator="gauss-hermite", max_order=96))
    assert ref.residual <= 1e-11, ref.message
    err = max(float(np.max(np.abs(np.asarray(out[k]) - np.asarray(getattr(ref.observables, k))))) for k in KEYS)
    assert err <= out["error_estimate"] + ref.error_estimate, (err, out["error_estimate"], ref.error_estimate)


@pytest.mark.slow
def test_relu_paper_regime_approaches_large_p_at_rate_one_over_p():
    """Independent of the integrator: with σ_a = σ̄_a/√P the finite-P observables tend to the
    large-P solution (THEORY §4) like 1/P, so the gap in U halves from P = 16 to P = 32
    (measured 0.0574 and 0.0295 for U_00), and f is closer still."""
    from solvers.large_p.problem import LargePProblem
    from solvers.large_p.solve import solve_large_p

    gaps = {}
    for sizes in ((8, 4, 4), (16, 8, 8)):
        spec = ModelSpec("relu", class_sizes=sizes, temperature=0.05, sigma_a=1.0 / np.sqrt(sum(sizes)))
        res = solve(spec)
        assert res.converged, res.message
        lp = solve_large_p(LargePProblem.from_spec(spec)).observables()
        gaps[sum(sizes)] = {k: float(np.max(np.abs(np.asarray(getattr(res.observables, k))
                                                    - np.asarray(getattr(lp, k))))) for k in KEYS}
    ratio = gaps[16]["readout_moment"] / gaps[32]["readout_moment"]
    assert 1.8 < ratio < 2.2, gaps
    assert gaps[16]["outputs"] < 0.01 and gaps[32]["outputs"] < gaps[16]["outputs"], gaps
