"""Refinement of the selected deep class-block saddle point (:mod:`solvers.deep.nonlinear`): more Sobol' points while
its integration error estimate exceeds the error bound, then Sobol' rules in every layer where Gauss–Hermite layers
carry the estimate (the error estimates: :mod:`solvers.deep.saddle`)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from solvers.deep.model import DeepModel
from solvers.deep.newton import solve_at
from solvers.deep.options import DeepOptions
from solvers.deep.saddle import finish

__all__ = ["refine"]


def refine(search, chosen, saddle: dict):
    """Re-solve the selected candidate with more Sobol' points while its error estimate exceeds
    ``error_tol``; if the estimate is still above it and Gauss–Hermite layers carry it (its order difference,
    order 16 against 12 at d = 3, is a coarse bound), re-solve with Sobol' rules in every layer
    (``integrator="qmc"``), refined the same way, and keep that solution if its estimate is smaller. Returns
    (candidate, model, options) of the last refinement that succeeded. ``search``: the solve's search
    (:class:`solvers.deep.nonlinear._Search`: its spec, priors, options and log). A KKT point
    (:mod:`solvers.deep.kkt_route`) is returned as it is: its error is its replicas'."""
    if "kkt" in chosen:
        return chosen, chosen["model"], search.opt
    chosen, model, o = _more_points(search, chosen, saddle, search.model, search.opt)
    if (np.max(chosen["errors"]) <= o.error_tol or o.integrator != "auto"
            or all(r.groups > 1 for r in model.rules) or model.oned.kind == "linear"):
        return chosen, model, o
    oq = replace(search.opt, integrator="qmc")
    qmodel = DeepModel(search.spec, search.sig, oq)
    out = solve_at(qmodel, chosen["x"], chosen["props"], search.log, "re-solve with Sobol' rules in every layer")
    c = finish(qmodel, *out, chosen["label"]) if out is not None else None
    if c is None or not c["covered"]:
        return chosen, model, o
    trial = dict(saddle)
    c, qmodel, oq = _more_points(search, c, trial, qmodel, oq)
    if np.max(c["errors"]) >= np.max(chosen["errors"]):
        return chosen, model, o
    saddle.update(trial, free_energy=float(c["ev"]["action"]), free_energy_error=float(c["free_energy_error"]),
                  stable=c["stable"], outputs=c["ev"]["layers"][-1].outputs.tolist())
    return c, qmodel, oq


def _more_points(search, chosen, saddle: dict, model: DeepModel, o: DeepOptions):
    """The Sobol' refinement of :func:`refine` (2^(qmc_log2n + 1), … points up to ``qmc_log2n_max``)."""
    while (np.max(chosen["errors"]) > o.error_tol and any(r.groups > 1 for r in model.rules)
           and o.qmc_log2n < o.qmc_log2n_max):
        o = replace(o, qmc_log2n=o.qmc_log2n + 1)
        fine = DeepModel(search.spec, search.sig, o)
        out = solve_at(fine, chosen["x"], chosen["props"], search.log, f"refine with 2^{o.qmc_log2n} Sobol' points")
        if out is None:
            break
        c = finish(fine, *out, chosen["label"])
        if not c["covered"]:
            break
        chosen, model = c, fine
        saddle.update(free_energy=float(c["ev"]["action"]), free_energy_error=float(c["free_energy_error"]),
                      stable=c["stable"], outputs=c["ev"]["layers"][-1].outputs.tolist())
    return chosen, model, o
