"""How close a deep ReLU class-block solution is to its readout condensate (THEORY §4, §5).

The last hidden layer's y-integral converges iff q(t, K_{L-1}) < 1 (:mod:`theory.deep_condensate`:
q = 2 max_ŷ Σ_c P_c g_c). In the paper's regime (classes 32,16,16, σ_a² P = 1, T = 0.05) the deep ReLU
solution runs into q = 1 along one-class directions: there the theory needs a condensate (outlier neurons
with O(√N) readouts, as for one hidden layer, :mod:`solvers.finite_p.dual`) that a smooth class-block
measure cannot carry, and Newton fails. :func:`readout_domain` measures q and the condensate directions at
a point of the deep equations; :func:`domain_note` turns them into the sentence that the solver's failure
message adds (:mod:`solvers.deep.nonlinear`).
"""
from __future__ import annotations

import numpy as np

from solvers.deep.model import DeepModel
from theory.deep_condensate import ReadoutDomain, condensate_directions

__all__ = ["NEAR_BOUNDARY", "readout_domain", "domain_note"]

#: margin 1 − q below which the failure message names the condensate directions
NEAR_BOUNDARY = 0.05


def readout_domain(model: DeepModel, x) -> ReadoutDomain | None:
    """The readout domain of the last hidden layer at the packed point ``x`` of ``model`` (ReLU only;
    None for other φ). For L = 1 the input kernel is K_0 = I (ξ = 0, s = σ_1)."""
    if model.oned.kind != "relu":
        return None
    t, ker = model.unpack(np.asarray(x, dtype=np.float64))
    if ker:
        R, delta = ker[-1]
    else:
        R, delta = np.zeros((model.m, model.m)), np.ones(model.m)
    return condensate_directions(t, model.spec.sigma_a, R, delta, model.sigmas[-1], model.sizes)


def domain_note(last) -> str:
    """'' or the sentence on the readout domain at ``last`` = (model, x), the last point a continuation
    solved (None: ''), when its margin is below :data:`NEAR_BOUNDARY`."""
    if last is None:
        return ""
    model, x = last
    dom = readout_domain(model, x)
    if dom is None or not len(dom.q) or dom.margin >= NEAR_BOUNDARY:
        return ""
    near = [c for c, q in zip(dom.code_strings(), dom.q) if q >= 1.0 - NEAR_BOUNDARY]
    return (f"; at P = {float(np.sum(model.sizes)):.4g} the last hidden layer is at its ReLU readout domain "
            f"boundary (q = {dom.q[0]:.4f}, margin {dom.margin:.1e}) along directions with codes "
            f"{', '.join(near)}: the solution needs a condensate of outlier neurons (THEORY §4), which the "
            "class-block measure of L >= 2 does not carry")
