"""The class-structured saddle-point problem (THEORY §3) as numbers.

For orthogonal inputs (K0 = I) and a field t_c ∈ R^m per class c,

    Φ(t) = log E_{a ~ N(0, σ_a² I_m)} exp(Σ_c P_c ψ(t_c·a)),
    G(t) = Φ(t) − Σ_c P_c t_cc + (T/2) Σ_c P_c ||t_c||²,

and the saddle point f_c = e_c − T t_c is the minimiser of the convex G.
:class:`ClassProblem` holds what the integrators need: P_c, σ_a, σ_1, T, the
nonlinearity and its ψ table.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from theory.domain import marginal_directions
from theory.nonlinearities import Nonlinearity, get_nonlinearity
from theory.psi import PsiTable, psi_table
from theory.spec import ModelSpec, SpecError

__all__ = ["ClassProblem"]


@dataclass(frozen=True, eq=False)
class ClassProblem:
    spec: ModelSpec
    nonlinearity: Nonlinearity
    class_sizes: np.ndarray  # P_c, float64
    _warm: dict = field(default_factory=dict, repr=False)  # last marginal directions (a search warm start)

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> "ClassProblem":
        if spec.data_kind != "orthogonal":
            raise SpecError("ClassProblem needs orthogonal class-structured data (inputs=None)")
        return cls(spec=spec, nonlinearity=get_nonlinearity(spec.nonlinearity),
                   class_sizes=np.asarray(spec.class_sizes, dtype=np.float64))

    @property
    def m(self) -> int:
        return self.spec.m

    @property
    def temperature(self) -> float:
        return self.spec.temperature

    def table(self) -> PsiTable:
        """ψ table for this φ and σ_1 (cached)."""
        return psi_table(self.spec.nonlinearity, self.spec.sigma_w)

    def marginal(self, t: np.ndarray):
        """(directions, q-values) of the local maximisers of q(t) (THEORY §3), warm-started
        from the previous call and cached for the last t (the domain check and the condensate
        both need them at every evaluation)."""
        t = np.asarray(t, dtype=np.float64)
        cached = self._warm.get("last")
        if cached is not None and cached[0].shape == t.shape and np.array_equal(cached[0], t):
            return cached[1], cached[2]
        dirs, q = marginal_directions(t, self.class_sizes, self.spec.sigma_a, self.spec.sigma_w,
                                      self.nonlinearity, warm=self._warm.get("directions"))
        if len(q):
            prev = self._warm.get("directions")
            self._warm["directions"] = dirs[:1] if prev is None else np.vstack([dirs[:1], prev])[:8]
        self._warm["last"] = (t.copy(), dirs, q)
        return dirs, q

    def margin(self, t: np.ndarray) -> float:
        """1 − q(t) > 0 inside the domain of Φ (always 1 for sublinear φ)."""
        _, q = self.marginal(t)
        return float(1.0 - q[0]) if len(q) else 1.0

    def explicit_dual_term(self, t: np.ndarray) -> float:
        """−Σ_c P_c t_cc + (T/2) Σ_c P_c ||t_c||²: the part of G outside Φ."""
        P = self.class_sizes[:, None]
        return -float(np.sum(self.class_sizes * np.diag(t))) + 0.5 * self.temperature * float(np.sum(P * t * t))
