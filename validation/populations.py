"""Populations of neurons to analyse: from a sampled network state or drawn from the theory's
single-neuron measure (THEORY §2–4).

A :class:`Population` holds N neurons' readouts a (m × N) and activations on the training inputs
(N × P). :func:`theory_state` solves the theory once (finite P, or large P as fallback) and
:func:`theory_population` draws n neurons from it: readouts from the law of a (Gaussian, finite-P
p_t(a) by sampling-importance-resampling, or the large-P branch mixture with Laplace widths), then
preactivations from the tilted law ∝ N(h; 0, σ_1²) e^{(t_c·a) φ(h)}; condensate outliers of ReLU
are placed explicitly with readout a = r â_j, r² = n λ_j / σ_1².
"""
from __future__ import annotations

from dataclasses import dataclass, field
import time

import numpy as np

from solvers.finite_p.problem import ClassProblem
from theory.spec import ModelSpec, SpecError

from .coding_scheme import CodingAnalysis, analyse_population
from .networks import Network

__all__ = ["Population", "network_population", "TheoryState", "theory_state", "finite_p_state", "theory_start",
           "theory_population", "ACCEPT_RESIDUAL"]

#: a finite-P solution that stopped at the integration noise floor is used when its residual
#: max |f − e + T t| is below this
ACCEPT_RESIDUAL = 1e-5
#: theory starts place condensate outliers only when some mass λ_j is at least this (below it the
#: directions carry no share of the output: e.g. λ ~ 1e-9 for ReLU, classes 8,4,4, T = 0.05, σ_a = 1)
CONDENSATE_MIN_MASS = 1e-6


@dataclass(frozen=True)
class Population:
    """N neurons: readouts (m × N), activations on the training inputs (N × P), their class means
    (N × m), where they come from, and which were placed as condensate outliers (theory)."""

    readouts: np.ndarray
    activations: np.ndarray
    class_sizes: tuple
    source: str
    outliers: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    preactivations: np.ndarray | None = None

    @property
    def class_means(self) -> np.ndarray:
        labels = np.repeat(np.arange(len(self.class_sizes)), self.class_sizes)
        return np.stack([self.activations[:, labels == c].mean(axis=1) for c in range(len(self.class_sizes))],
                        axis=1)

    @property
    def width(self) -> int:
        return self.readouts.shape[1]

    def analyse(self, **kwargs) -> CodingAnalysis:
        return analyse_population(self.readouts, self.class_means, self.class_sizes, **kwargs)

    def outputs(self, gamma: float = 1.0) -> np.ndarray:
        """f (P × m) = N^{-γ} Σ_i a_i φ_i on the training inputs."""
        return (self.readouts @ self.activations).T / self.width**gamma


def network_population(net: Network, theta: np.ndarray) -> Population:
    """The population of a sampled network state θ."""
    W, a = net.unpack(theta)
    phi, _ = net.nonlinearity.eval(net.preactivations(W))
    return Population(readouts=np.array(a), activations=np.array(phi), class_sizes=net.spec.class_sizes,
                      source=f"sampling (N = {net.width}, {net.scaling})", preactivations=net.preactivations(W))


@dataclass(frozen=True)
class TheoryState:
    """What a theory population is drawn from: the field t and the law of the readout a.

    ``kind``:
    * ``"gaussian"``: a ~ N(0, U) (linear φ: exact at finite P, THEORY §2–3);
    * ``"sir"``: the finite-P p_t(a) ∝ N(a; 0, σ_a² I) Π_c Z(t_c·a)^{P_c}, drawn by
      sampling-importance-resampling (:func:`validation.theory_init.sample_readouts`, ``result``);
    * ``"branches"``: the large-P limit (THEORY §4), a mixture over the branches a_γ with weights P_γ,
      each widened by its finite-P Laplace width, covariance (−P ∇²_a S(a_γ; t))⁻¹.
    ``condensate``: (directions â_j (k × m), masses λ_j) of ReLU-like φ, or None.
    """

    spec: ModelSpec
    t: np.ndarray
    kind: str
    source: str
    observables: object
    covariance: np.ndarray | None = None
    branches: tuple = ()  # ((a_γ, P_γ, covariance), ...)
    result: object = None  # SolveResult for "sir"
    condensate: tuple | None = None
    large_p: object = None  # LargePSolution, when the source is large P

    def to_json(self) -> dict:
        out = {"source": self.source, "kind": self.kind, "t": np.asarray(self.t).tolist()}
        if self.condensate is not None:
            out["condensate"] = {"directions": self.condensate[0].tolist(), "mass": self.condensate[1].tolist()}
        if self.branches:
            out["branches"] = [{"a": a.tolist(), "occupation": float(p)} for a, p, _ in self.branches]
        return out


def _large_p_state(spec: ModelSpec) -> TheoryState:
    from solvers.large_p.solve import solve_large_p
    from solvers.large_p.problem import LargePProblem

    prob = LargePProblem.from_spec(spec)
    sol = solve_large_p(prob)
    if not sol.converged:
        raise RuntimeError(f"large-P solve did not converge for {spec.to_dict()}: {sol.message}")
    cond = None
    if sol.condensate is not None:
        cond = (np.atleast_2d(np.asarray(sol.condensate.directions, dtype=np.float64)),
                np.asarray(sol.condensate.mass, dtype=np.float64))
    src = f"large-P theory (σ̄_a = {prob.sigma_a_bar:.3g}) with Laplace widths at P = {spec.P}"
    if sol.kind == "linear-gaussian" or spec.nonlinearity == "linear":
        return TheoryState(spec=spec, t=sol.t, kind="gaussian", source=src, observables=sol.observables,
                           covariance=np.array(sol.readout_moment), condensate=cond, large_p=sol)
    branches = []
    for a, p in sol.expanded_branches():
        if p <= 1e-9:
            continue
        _, _, H = prob.action(a[None, :], sol.t, order=2)
        prec = -spec.P * H[0]
        w, V = np.linalg.eigh(0.5 * (prec + prec.T))
        w = np.maximum(w, 1e-12)
        branches.append((np.asarray(a, dtype=np.float64), float(p), (V / w) @ V.T))
    return TheoryState(spec=spec, t=sol.t, kind="branches", source=src, observables=sol.observables,
                       branches=tuple(branches), condensate=cond, large_p=sol)


def finite_p_state(res) -> TheoryState:
    """The :class:`TheoryState` of a finite-P solution (a :class:`solvers.results.SolveResult`): p_t(a)
    drawn by sampling-importance-resampling, and the condensate of ``res.extra`` if it has one."""
    spec = res.spec
    cond = None
    if "condensate" in res.extra:
        c = res.extra["condensate"]
        cond = (np.atleast_2d(np.asarray(c["directions"], dtype=np.float64)), np.asarray(c["mass"], dtype=np.float64))
    return TheoryState(spec=spec, t=res.t, kind="sir", observables=res.observables, result=res, condensate=cond,
                       source=f"finite-P theory (P = {spec.P})"
                       + ("" if res.success else f", residual {res.residual_norm:.1e}: {res.message}"))


def theory_start(net: Network, res, rng: np.random.Generator) -> np.ndarray:
    """θ of a width-N network (orthogonal inputs) whose neurons are drawn from the finite-P theory
    ``res``: with a ReLU condensate (some mass λ_j ≥ :data:`CONDENSATE_MIN_MASS`), one outlier per
    condensate direction and the bulk from the single-neuron measure (:func:`theory_population`);
    otherwise every neuron from that measure (:func:`validation.theory_init.theory_initial_state`)."""
    from .theory_init import theory_initial_state

    masses = res.extra.get("condensate", {}).get("mass", [])
    if not len(masses) or max(masses) < CONDENSATE_MIN_MASS:
        return theory_initial_state(net, res, rng)
    if net.spec.inputs is not None:
        raise ValueError("theory starts need orthogonal class-structured inputs (inputs=None)")
    pop = theory_population(finite_p_state(res), net.width, rng)
    return net.pack(pop.preactivations, pop.readouts)  # orthogonal inputs with N0 = P: W = h


def theory_state(spec: ModelSpec, source: str = "auto", cache: dict | None = None,
                 progress=None) -> TheoryState:
    """The theory of ``spec`` to draw populations from, cached in ``cache`` (a dict) if given.

    ``source``: ``"finite"`` (exact finite-P solver; linear by its closed form), ``"large-p"``
    (:func:`solvers.large_p.solve.solve_large_p` of σ̄_a = σ_a √P), or ``"auto"``: finite P, falling back
    to large P when the finite-P solver does not converge (the source is stated in the result); a
    finite-P solution that stopped at the integration noise floor with residual max |f − e + T t| ≤
    ``ACCEPT_RESIDUAL`` (1e-5) counts as converged.
    """
    if spec.data_kind != "orthogonal":
        raise SpecError("theory populations need orthogonal class-structured data (inputs=None)")
    if source not in ("auto", "finite", "large-p"):
        raise ValueError(f"source must be 'auto', 'finite' or 'large-p' (got {source!r})")
    key = (tuple(sorted((k, str(v)) for k, v in spec.to_dict().items())), source)
    if cache is not None and key in cache:
        return cache[key]
    start = time.perf_counter()
    state = None
    if spec.nonlinearity == "linear" and source != "large-p":
        from theory.linear import linear_class_closed_form

        t, obs = linear_class_closed_form(spec)
        state = TheoryState(spec=spec, t=t, kind="gaussian", source=f"finite-P closed form (P = {spec.P})",
                            observables=obs, covariance=np.array(obs.readout_moment))
    elif source in ("auto", "finite"):
        from solvers.solve import solve

        res = solve(spec)
        usable = res.success or res.residual_norm <= ACCEPT_RESIDUAL
        if usable or source == "finite":
            state = finite_p_state(res)
        elif progress:
            progress(f"finite-P solve of {spec.nonlinearity} did not converge ({res.message}); using large P")
    if state is None:
        state = _large_p_state(spec)
    if progress:
        progress(f"theory {spec.nonlinearity}: {state.source} ({time.perf_counter() - start:.1f} s)")
    if cache is not None:
        cache[key] = state
    return state


def _draw_readouts(state: TheoryState, n: int, rng: np.random.Generator) -> np.ndarray:
    m = state.spec.m
    if state.kind == "gaussian":
        L = np.linalg.cholesky(state.covariance + 1e-15 * np.eye(m))
        return rng.standard_normal((n, m)) @ L.T
    if state.kind == "sir":
        from .theory_init import sample_readouts

        return sample_readouts(ClassProblem.from_spec(state.spec), state.result, n, rng)
    weights = np.array([p for _, p, _ in state.branches])
    idx = rng.choice(len(weights), size=n, p=weights / weights.sum())
    A = np.empty((n, m))
    for j, (a, _, cov) in enumerate(state.branches):
        sel = idx == j
        L = np.linalg.cholesky(cov + 1e-15 * np.eye(m))
        A[sel] = a + rng.standard_normal((int(sel.sum()), m)) @ L.T
    return A


def theory_population(state: TheoryState, n: int, rng: np.random.Generator, outliers: bool = True) -> Population:
    """n neurons drawn from the theory's single-neuron measure (THEORY §2–4).

    Readouts a from the law of ``state`` (:class:`TheoryState`), then for each input μ of class c an
    independent preactivation from the tilted law ∝ N(h; 0, σ_1²) e^{(t_c·a) φ(h)}
    (:func:`validation.theory_init.sample_preactivations`). With a ReLU condensate and ``outliers``,
    one neuron per condensate direction j is added explicitly (replacing a bulk draw, so the
    population has n neurons): readout a = r â_j with r² = n λ_j / σ_1², so that it contributes
    N^{-1} a φ̄_c = λ_j (t_c·â_j)₊ â_j to f_c and λ_j â_j â_jᵀ/σ_1² to U (THEORY §4); its
    preactivations come from the same tilted law at g_c = r t_c·â_j = O(√n), which for ReLU is
    N(g σ_1², σ_1²) on the active side (h ≈ g σ_1² = O(√n)) and the untilted Gaussian cut at 0 on
    the inactive side.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1 (got {n})")
    spec = state.spec
    prob = ClassProblem.from_spec(spec)
    A = _draw_readouts(state, n, rng)
    out_idx = np.zeros(0, dtype=np.int64)
    if outliers and state.condensate is not None and len(state.condensate[1]):
        dirs, mass = state.condensate
        k = min(len(mass), n)
        r = np.sqrt(n * np.maximum(mass[:k], 0.0)) / spec.sigma_w
        out_idx = np.arange(n - k, n)
        A[out_idx] = r[:, None] * dirs[:k]
    from .theory_init import sample_preactivations

    h = np.empty((n, spec.P))
    bulk = np.setdiff1d(np.arange(n), out_idx)
    h[bulk] = sample_preactivations(prob, state.t, A[bulk], rng)
    if len(out_idx):
        h[out_idx] = sample_preactivations(prob, state.t, A[out_idx], rng, grid=20001)
    phi, _ = prob.nonlinearity.eval(h)
    return Population(readouts=A.T.copy(), activations=np.array(phi), class_sizes=spec.class_sizes,
                      source=state.source, outliers=out_idx, preactivations=h)
