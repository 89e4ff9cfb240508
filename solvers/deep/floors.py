"""The integration floor of the deep class-block equations at a point: how well the integration rules resolve the
residual itself, block by block, and which layer's integral sets that resolution (THEORY §5; the equations:
:mod:`solvers.deep.model`).

At a point x with proposals held, the residual r(x) = (f + T t − Y, k_ℓ^new − k_ℓ, δ_ℓ^new − δ_ℓ) is an estimate.
Its resolution per block b (the t block, then each hidden layer's kernel block) is measured two ways, as the
solver's error estimates do (:func:`solvers.deep.saddle.integration_errors`):

    Sobol' replicates:   e_b = max_{i ∈ b} std_v(r_v,i) / √R   over the R replicates v of the nested rules,
    Gauss–Hermite order: d_b = max_{i ∈ b} |r_i − r_alt,i|     with every tensor layer one order lower.

A root of r whose floor max_b (e_b + d_b) exceeds the solver's ``error_tol`` is not resolved: the root moves by more
than Newton's basin when the proposals are re-made (deep10's integration floor). A replicate whose own estimate of
a conjugate kernel K̃_ℓ tilts a lower ReLU layer past its domain has no residual at all (e_b = inf); the floor
records which layer's integral raised. For φ that grows linearly (linear, ReLU, shaped φ) it also records each
layer's q_ℓ = 2 × its growth rate (:func:`theory.deep_layer.layer_growth`; the integral converges iff q_ℓ < 1): near
q_1 = 1 the first layer amplifies the last layer's integration error in K̃_1 (docs/devlog.md, deep9, deeprelu11).
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np

from solvers.deep.model import DeepModel
from theory.deep_layer import layer_growth
from theory.domain_errors import OutsideDomain

__all__ = ["IntegrationFloor", "integration_floor"]


@dataclass(frozen=True)
class IntegrationFloor:
    """The floor of the residual at one point (module docstring): per block (``blocks``: "t", "layer 1 kernel", …)
    the Sobol' ``replicate_error`` e_b and the Gauss–Hermite ``order_difference`` d_b; the number of ``replicates``
    R (0 without Sobol' layers); for each replicate whose evaluation leaves a domain, the layer whose integral raised
    (``outside_layers``, 1-based); and for φ with a domain each layer's ``q`` (None for bounded φ)."""

    blocks: tuple
    replicate_error: np.ndarray
    order_difference: np.ndarray
    replicates: int
    outside_layers: tuple
    q: tuple | None

    @property
    def worst(self) -> float:
        """max_b (e_b + d_b): the resolution of the equations at this point."""
        return float(np.max(self.replicate_error + self.order_difference))

    @property
    def limiting(self) -> str:
        """The block and rule that set :attr:`worst`, e.g. "layer 1 kernel (Sobol' replicates)", or the layers whose
        domains replicates leave (then no block has a replicate error)."""
        if self.outside_layers:
            return f"replicates leaving the domain of layer(s) {sorted(set(self.outside_layers))}"
        total = self.replicate_error + self.order_difference
        b = int(np.argmax(total))
        rule = "Sobol' replicates" if self.replicate_error[b] >= self.order_difference[b] else "Gauss–Hermite order"
        return f"{self.blocks[b]} ({rule})"

    def summary(self) -> str:
        parts = [f"{name}: replicates {e:.2e}, order {d:.2e}"
                 for name, e, d in zip(self.blocks, self.replicate_error, self.order_difference)]
        if self.outside_layers:
            parts.append(f"{len(self.outside_layers)} of {self.replicates} replicates leave the domain of layer(s) "
                         f"{sorted(set(self.outside_layers))}")
        if self.q is not None:
            parts.append("q " + ", ".join(f"{q:.5f}" for q in self.q))
        return f"floor {self.worst:.2e} set by {self.limiting}; " + "; ".join(parts)


def _blocks(model: DeepModel) -> list:
    """(name, slice) of the residual's blocks: t, then each hidden layer's (tril k_ℓ, δ_ℓ)."""
    out, start, nk = [("t", slice(0, model.nt))], model.nt, model.m * (model.m + 1) // 2 + model.m
    for ell in range(1, model.L):
        out.append((f"layer {ell} kernel", slice(start, start + nk)))
        start += nk
    return out


def _raising_layer(exc: BaseException) -> int:
    """The layer ℓ (1-based) whose integral raised ``exc`` inside :meth:`DeepModel.evaluate` (0 if not found)."""
    tb, layer = exc.__traceback__, 0
    while tb is not None:
        if tb.tb_frame.f_code is DeepModel.evaluate.__code__:
            layer = int(tb.tb_frame.f_locals.get("ell", 0))
        tb = tb.tb_next
    return layer


def _replicates(model: DeepModel, x, props):
    """(residuals of the replicates that evaluate, raising layer of each that does not, number of replicates)."""
    groups = max(r.groups for r in model.rules)
    rs, outside = [], []
    for g in range(groups if groups > 1 else 0):
        rules = [r.group(g) if r.groups > 1 else r for r in model.rules]
        try:
            with np.errstate(all="ignore"):
                rs.append(model.evaluate(x, props, rules=rules)["residual"])
        except (OutsideDomain, np.linalg.LinAlgError, FloatingPointError) as exc:
            outside.append(_raising_layer(exc))
    return rs, outside, groups if groups > 1 else 0


def _growths(model: DeepModel, x, ev):
    """(q_1, …, q_L) of the layers at x (:func:`theory.deep_layer.layer_growth`), None for bounded φ."""
    if not model.oned.grows:
        return None
    t, ker = model.unpack(x)
    return tuple(layer_growth(model.oned, model.sizes, model.sigmas[ell - 1], **model.layer_kwargs(ell, t, ker, ev))
                 for ell in range(1, model.L + 1))


def integration_floor(model: DeepModel, x, props) -> IntegrationFloor | None:
    """The integration floor of ``model``'s residual at ``x`` with ``props`` held (module docstring); None if the
    full rule itself does not evaluate there."""
    ev = model.safe_eval(x, props)
    if ev is None:
        return None
    r, blocks = ev["residual"], _blocks(model)
    rs, outside, groups = _replicates(model, x, props)
    if groups and len(rs) == groups:
        spread = np.std(rs, axis=0, ddof=1) / math.sqrt(groups)
    else:
        spread = np.full_like(r, np.inf if groups else 0.0)
    order = np.zeros_like(r)
    if any(rule.groups == 1 for rule in model.rules):
        alt = model.safe_eval(x, props, rules=[a if rule.groups == 1 else rule
                                               for rule, a in zip(model.rules, model.alt_rules)])
        order = np.abs(alt["residual"] - r) if alt is not None else np.full_like(r, np.inf)
    return IntegrationFloor(tuple(name for name, _ in blocks), np.array([np.max(spread[s]) for _, s in blocks]),
                            np.array([np.max(order[s]) for _, s in blocks]), groups, tuple(outside),
                            _growths(model, x, ev))
