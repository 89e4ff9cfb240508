"""Coding-scheme analysis of a population of neurons, from sampling or from the theory (THEORY §1, §4, §7).

Vocabulary (THEORY §1, the paper's Table 1; van Meegen & Sompolinsky, Nat. Commun. 16, 3354 (2025)):
a neuron's *code* is the set of classes that activate it; the *coding scheme* is the collection of
codes of a population; *analog*: all neurons respond to all classes with graded strengths;
*redundant*: the neurons fall into a few groups, each sharing one code; *sparse*: a few neurons
carry the output.

Input: N neurons given by their readouts a (m × N) and class-mean activations φ̄ (N × m), φ̄_ic the
mean of φ(h_iμ) over the P_c training inputs μ of class c. They come from a sampled network
(:func:`network_population`) or from the theory's single-neuron measure (:func:`theory_population`).

Measured quantities (:func:`analyse_population`)
-----------------------------------------------
* code of neuron i: the classes c with |φ̄_ic| > θ·max_d |φ̄_id|, θ = ``CODE_THRESHOLD`` = 0.5, as
  in :func:`validation.observables.neuron_codes`, written as a string over the classes: "1"/"0"
  when no neuron has a negative class in its code (φ ≥ 0, e.g. "110"), otherwise the sign
  pattern "+"/"-"/"0" (odd φ and linear, where a and −a are different codes, as in
  :func:`solvers.large_p.phase_diagram.coding_scheme`); a silent neuron has the code "000";
* fraction of neurons per code;
* output contribution of neuron i: c_i = Σ_c ρ_c |a_ci φ̄_ic|, ρ_c = P_c/P. Since the correct-class
  output is f_cc = N^{-1} Σ_i a_ci φ̄_ic, c_i is neuron i's (absolute) part of the correct-class
  outputs averaged over the training inputs;
* top-k share s_k = (sum of the k largest c_i) / Σ_i c_i with k = ⌈κN⌉, κ = ``TOP_FRACTION`` = 5 %;
* participation ratio PR = (Σ_i c_i)² / (N Σ_i c_i²) ∈ (0, 1] and the effective number of
  neurons N·PR;
* code robustness R: the fraction of neurons whose code is the same at thresholds 1/3 and 2/3,
  i.e. none of its normalised class-mean activations |φ̄_ic| / max_d |φ̄_id| lies in (1/3, 2/3].

Label (stated criterion, applied in this order)
-----------------------------------------------
1. **sparse** if s_k > 1/2: 5 % of the neurons carry more than half the output.
2. **redundant** if R ≥ 0.8 and at least two codes are each held by ≥ 5 % of the neurons, and
   these "major" codes together hold ≥ 90 % of the neurons: the activations are close to binary
   (codes do not depend on the threshold) and the population splits into a few large groups
   sharing a code.
3. **analog** otherwise: a dense population whose codes are graded (threshold-dependent) or all
   neurons respond to all classes alike (one code).

Why these criteria. All of them are ratios within a neuron or fractions of the population, so they
do not depend on the scale of a or φ (σ_a, σ_1, N^{-γ}) and, for a population of i.i.d. neurons,
not on N. In a dense population the top 5 % carry at most about 28 %: the heaviest-tailed dense case
is a Gaussian readout, where c_i ∝ a_c² is χ²₁-like and E[x; x > q_95]/E[x] = 0.28 for χ²₁; any
population whose codes are shared by groups carries less. In the ReLU condensate (THEORY §4) a
finite number of outliers with readouts O(√N) carry the share λ_j (t_c·â_j)₊ â_jc / f_cc of the
output, 80–90 % at small T, and they are among the top ⌈κN⌉ for every N ≥ (number of outliers)/κ,
so s_k is N-independent and far above 1/2. The participation ratio is reported but not used for the
label: it is O(1) for dense populations and O(1/N) for sparse ones, so a fixed threshold on it would
depend on N. Code robustness separates binary from graded activations without fitting
clusters: for a Gaussian (linear) population the normalised activations are spread over (0, 1]
(for two classes of equal variance the ratio is tan θ with θ uniform on (0, π/4), so
R = 1 − (atan(2/3) − atan(1/3))/(π/4) = 0.66; with three classes R ≈ 0.43), while for saturated
sigmoid groups they sit near 0 or 1 (the inactive class of a normcdf group is at ≈ 0.2 of the
active one on the binary task and < 0.15 on the 3-class task at T = 0.02) and R ≥ 0.9. Requiring two or
more major codes excludes the symmetric population in which every neuron has the same code (e.g.
the ReLU bulk, code 111), which is not a scheme that distinguishes classes by groups.

Drift (:func:`pattern_drift`): for class-mean activation vectors x_i(s) ∈ R^m of the same N
neurons at sampler times s and s + Δ,

    D(Δ) = Σ_i |x_i(s+Δ) − x_i(s)|² / Σ_i ⟨|x_j(s+Δ) − x_i(s)|²⟩_j ,

the mean squared change of a neuron's pattern divided by its value for reshuffled neurons (the
average over all pairings, in closed form: mean |y|² + mean |x|² − 2 x̄·ȳ). D = 0: every neuron
keeps its pattern; D ≈ 1: a neuron's pattern is as different from its own earlier pattern as from
a random other neuron's. Neurons enter with the weight of their activity, so for ReLU the value
measures the outliers that carry the code; the value over the bulk alone (outliers, as in
:mod:`validation.sparse`, removed) is reported as well. THEORY §7 and the paper: linear networks
drift, ReLU networks do not, sigmoidal networks do not drift in the last hidden layer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import math
import sys
import time

import numpy as np

from solvers.finite_p.problem import ClassProblem
from theory.spec import ModelSpec, SpecError

from .networks import Network
from theory.codes import CODE_THRESHOLD, participation_ratio

__all__ = ["CODE_THRESHOLD", "TOP_FRACTION", "SPARSE_SHARE", "ROBUST_BAND", "REDUNDANT_ROBUSTNESS",
           "MAJOR_CODE", "MAJOR_COVER", "CodingAnalysis", "Population", "analyse_population",
           "output_contributions", "top_k_share", "code_robustness", "participation_ratio", "label_scheme",
           "network_population", "TheoryState", "theory_state", "theory_population", "pattern_drift",
           "drift_curve", "ChainResult", "run_chain", "bulk_mask", "neuron_code_strings", "fractions_of"]

#: κ: the top ⌈κN⌉ neurons are "the few" of the sparse criterion
TOP_FRACTION = 0.05
#: sparse when the top ⌈κN⌉ neurons carry more than this share of the output
SPARSE_SHARE = 0.5
#: thresholds between which a normalised activation makes a neuron's code threshold-dependent
ROBUST_BAND = (1.0 / 3.0, 2.0 / 3.0)
#: redundant needs at least this fraction of neurons with threshold-robust codes
REDUNDANT_ROBUSTNESS = 0.8
#: a code is "major" when at least this fraction of the neurons hold it
MAJOR_CODE = 0.05
#: redundant needs the major codes to hold at least this fraction of the neurons
MAJOR_COVER = 0.9
#: a finite-P solution that stopped at the integration noise floor is used when its residual
#: max |f − e + T t| is below this (the ReLU solver at T = 0.02 stops at ~2e-7)
ACCEPT_RESIDUAL = 1e-5
#: outliers for the bulk-only drift: readout norm above this factor times the median (validation.sparse)
OUTLIER_FACTOR = 4.0


# ----------------------------------------------------------------------------- measures
def _check(readouts, class_means):
    a = np.asarray(readouts, dtype=np.float64)
    x = np.asarray(class_means, dtype=np.float64)
    if a.ndim != 2 or x.ndim != 2 or a.shape[1] != x.shape[0] or a.shape[0] != x.shape[1]:
        raise ValueError(f"readouts must be (m, N) and class_means (N, m) (got {a.shape} and {x.shape})")
    if a.shape[1] < 1:
        raise ValueError("the population needs at least one neuron")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(x))):
        raise ValueError("readouts and class_means must be finite")
    return a, x


def _weights(class_sizes, m):
    if class_sizes is None:
        return np.full(m, 1.0 / m)
    w = np.asarray(class_sizes, dtype=np.float64)
    if w.shape != (m,) or np.any(w <= 0):
        raise ValueError(f"class_sizes must be {m} positive numbers (got {class_sizes!r})")
    return w / w.sum()


def neuron_code_strings(class_means, threshold: float = CODE_THRESHOLD) -> np.ndarray:
    """Each neuron's code as a string over the classes (module docstring): the sign pattern
    "+"/"-"/"0" when some neuron has a negative class in its code, else "1"/"0"."""
    x = np.asarray(class_means, dtype=np.float64)
    top = np.abs(x).max(axis=1, keepdims=True)
    r = np.where(top > 1e-12, x / np.where(top > 1e-12, top, 1.0), 0.0)
    pos, neg = r > threshold, r < -threshold
    signed = bool(neg.any())
    chars = np.where(pos, "+" if signed else "1", np.where(neg, "-", "0"))
    return np.array(["".join(row) for row in chars])


def fractions_of(codes) -> dict:
    """Fraction of neurons per code string, largest first."""
    keys, counts = np.unique(np.asarray(codes), return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return {str(keys[i]): float(counts[i] / counts.sum()) for i in order}


def output_contributions(readouts, class_means, class_sizes=None) -> np.ndarray:
    """c_i = Σ_c ρ_c |a_ci φ̄_ic| (N,): neuron i's part of the correct-class outputs."""
    a, x = _check(readouts, class_means)
    rho = _weights(class_sizes, a.shape[0])
    return np.abs(a.T * x) @ rho


def top_k_share(contributions, k: int) -> float:
    """Share of Σ_i c_i carried by the k largest c_i."""
    c = np.abs(np.asarray(contributions, dtype=np.float64))
    total = c.sum()
    if total <= 0:
        return 0.0
    k = int(min(max(k, 1), len(c)))
    return float(np.sort(c)[::-1][:k].sum() / total)


def code_robustness(class_means, band=ROBUST_BAND) -> float:
    """Fraction of neurons whose code is the same at thresholds ``band[0]`` and ``band[1]``."""
    x = np.abs(np.asarray(class_means, dtype=np.float64))
    top = x.max(axis=1, keepdims=True)
    r = np.where(top > 1e-12, x / np.where(top > 1e-12, top, 1.0), 0.0)
    ambiguous = (r > band[0]) & (r <= band[1])
    return float(np.mean(~ambiguous.any(axis=1)))


def label_scheme(top_share: float, robustness: float, fractions: dict) -> tuple[str, str]:
    """(label, reason) by the criterion of the module docstring."""
    if top_share > SPARSE_SHARE:
        return "sparse", (f"top {TOP_FRACTION:.0%} of neurons carry {top_share:.2f} > {SPARSE_SHARE} of the "
                          "output")
    major = {k: v for k, v in fractions.items() if v >= MAJOR_CODE and k.strip("0")}  # silent: not a code
    cover = sum(major.values())
    if robustness >= REDUNDANT_ROBUSTNESS and len(major) >= 2 and cover >= MAJOR_COVER:
        return "redundant", (f"codes robust for {robustness:.2f} ≥ {REDUNDANT_ROBUSTNESS} of neurons, "
                             f"{len(major)} major codes hold {cover:.2f} ≥ {MAJOR_COVER}")
    why = []
    if robustness < REDUNDANT_ROBUSTNESS:
        why.append(f"graded codes (robust for {robustness:.2f} < {REDUNDANT_ROBUSTNESS})")
    if len(major) < 2:
        why.append(f"{len(major)} major code(s)")
    elif cover < MAJOR_COVER:
        why.append(f"major codes hold {cover:.2f} < {MAJOR_COVER}")
    return "analog", f"dense (top-share {top_share:.2f} ≤ {SPARSE_SHARE}); " + ", ".join(why)


@dataclass(frozen=True)
class CodingAnalysis:
    """The measured coding scheme of one population (module docstring)."""

    n_neurons: int
    threshold: float
    codes: np.ndarray  # (N,) code strings ("110", or sign patterns "+-0")
    code_fractions: dict  # code -> fraction of neurons, largest first
    contributions: np.ndarray  # (N,) c_i
    top_k: int
    top_k_share: float
    participation_ratio: float
    code_robustness: float
    label: str
    reason: str

    @property
    def effective_number(self) -> float:
        """N · PR: the number of neurons that effectively carry the output."""
        return self.n_neurons * self.participation_ratio

    def to_json(self) -> dict:
        return {"n_neurons": self.n_neurons, "threshold": self.threshold, "code_fractions": self.code_fractions,
                "top_k": self.top_k, "top_k_share": self.top_k_share,
                "participation_ratio": self.participation_ratio, "effective_number": self.effective_number,
                "code_robustness": self.code_robustness, "label": self.label, "reason": self.reason}

    def summary(self) -> str:
        codes = ", ".join(f"{k}: {v:.2f}" for k, v in list(self.code_fractions.items())[:5])
        return (f"{self.label} (top-{self.top_k} share {self.top_k_share:.2f}, PR {self.participation_ratio:.3f}, "
                f"N_eff {self.effective_number:.1f}, robust {self.code_robustness:.2f}; codes {codes})")


def analyse_population(readouts, class_means, class_sizes=None, threshold: float = CODE_THRESHOLD,
                       top_fraction: float = TOP_FRACTION) -> CodingAnalysis:
    """Codes, code fractions, top-k share, participation ratio, code robustness and label.

    ``readouts`` a (m × N), ``class_means`` φ̄ (N × m), ``class_sizes`` P_c (weights ρ_c of the output
    contributions; equal weights when None). The criterion is in the module docstring.
    """
    a, x = _check(readouts, class_means)
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1) (got {threshold!r})")
    if not 0.0 < top_fraction < 1.0:
        raise ValueError(f"top_fraction must be in (0, 1) (got {top_fraction!r})")
    N = a.shape[1]
    codes = neuron_code_strings(x, threshold)
    fr = fractions_of(codes)
    c = output_contributions(a, x, class_sizes)
    k = max(1, math.ceil(top_fraction * N))
    share = top_k_share(c, k)
    rob = code_robustness(x)
    label, reason = label_scheme(share, rob, fr)
    return CodingAnalysis(n_neurons=N, threshold=threshold, codes=codes, code_fractions=fr, contributions=c,
                          top_k=k, top_k_share=share, participation_ratio=participation_ratio(c),
                          code_robustness=rob, label=label, reason=reason)


# ----------------------------------------------------------------------------- populations
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
            cond = None
            if "condensate" in res.extra:
                c = res.extra["condensate"]
                cond = (np.atleast_2d(np.asarray(c["directions"], dtype=np.float64)),
                        np.asarray(c["mass"], dtype=np.float64))
            state = TheoryState(spec=spec, t=res.t, kind="sir", observables=res.observables, result=res,
                                condensate=cond, source=f"finite-P theory (P = {spec.P})"
                                + ("" if res.success else f", residual {res.residual_norm:.1e}: {res.message}"))
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


# ----------------------------------------------------------------------------- drift
def pattern_drift(before, after) -> float:
    """D = Σ_i |x_i' − x_i|² / Σ_i ⟨|x_j' − x_i|²⟩_j for the same neurons' patterns x (N × m) before
    and x' after (module docstring): 0 frozen, ≈ 1 as different as reshuffled neurons."""
    x = np.asarray(before, dtype=np.float64)
    y = np.asarray(after, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"before and after must be equal-shaped (N, m) arrays (got {x.shape}, {y.shape})")
    own = np.mean(np.sum((y - x) ** 2, axis=1))
    shuffled = np.mean(np.sum(y * y, axis=1)) + np.mean(np.sum(x * x, axis=1)) - 2.0 * x.mean(0) @ y.mean(0)
    return float(own / shuffled) if shuffled > 0 else 0.0


def bulk_mask(readouts, factor: float = OUTLIER_FACTOR) -> np.ndarray:
    """Neurons whose readout norm is at most ``factor`` × the median (not outliers, validation.sparse)."""
    norms = np.linalg.norm(np.asarray(readouts, dtype=np.float64), axis=0)
    return norms <= factor * np.median(norms)


def drift_curve(snapshots, lags, readouts=None) -> dict:
    """D(Δ) averaged over all start times, for ``snapshots`` (S × N × m, equally spaced in sampler
    time) and ``lags`` in snapshot units. With ``readouts`` (m × N, e.g. of the first snapshot),
    also the bulk-only value (outliers removed, :func:`bulk_mask`). Returns {"lags", "drift",
    "drift_bulk"} (lists; NaN where a lag exceeds the run)."""
    X = np.asarray(snapshots, dtype=np.float64)
    if X.ndim != 3:
        raise ValueError(f"snapshots must be (S, N, m) (got shape {X.shape})")
    mask = bulk_mask(readouts) if readouts is not None else None
    d, db = [], []
    for lag in lags:
        lag = int(lag)
        if lag < 1 or lag >= len(X):
            d.append(float("nan"))
            db.append(float("nan"))
            continue
        d.append(float(np.mean([pattern_drift(X[s], X[s + lag]) for s in range(len(X) - lag)])))
        if mask is not None:
            db.append(float(np.mean([pattern_drift(X[s][mask], X[s + lag][mask]) for s in range(len(X) - lag)])))
    out = {"lags": [int(v) for v in lags], "drift": d}
    if mask is not None:
        out["drift_bulk"] = db
    return out


# ----------------------------------------------------------------------------- sampling
@dataclass
class ChainResult:
    """One collapsed-MALA chain: its final state, snapshots and settings."""

    spec: ModelSpec
    net: Network
    theta: np.ndarray  # final state
    snapshot_sweeps: list  # sweep index of each snapshot
    class_means: list  # per snapshot, N × m
    readouts: list  # per snapshot, m × N
    outputs: list  # per snapshot, P × m
    acceptance: float
    step_size: float
    seconds: float
    start: str

    def population(self) -> Population:
        return network_population(self.net, self.theta)

    def mean_output(self) -> np.ndarray:
        """Posterior mean of f (P × m) over the snapshots."""
        return np.mean(self.outputs, axis=0)


def run_chain(spec: ModelSpec, width: int, sweeps: int, burn: int, *, seed: int = 0, scaling: str = "mean-field",
              start: str = "random", theory: TheoryState | None = None, snapshot_every: int = 5,
              step_size: float = 0.05, n_mala: int = 5, label: str = "", progress: bool = False) -> ChainResult:
    """A chain of collapsed sweeps (:func:`validation.collapsed.collapsed_sweep`).

    The W step size is adapted by dual averaging to MALA's acceptance 0.574 during ``burn`` sweeps,
    then frozen (as :func:`validation.report.chain_job`). ``start``: "random" (prior draw) or
    "theory" (neurons from :func:`theory_population` of ``theory``, outliers included). Snapshots of
    the class-mean activations, readouts and outputs every ``snapshot_every`` sweeps after burn-in.
    """
    if not 0 <= burn < sweeps:
        raise ValueError(f"burn must be in [0, sweeps={sweeps}) (got {burn})")
    net = Network(spec, width=width, scaling=scaling)
    rng = np.random.default_rng([seed, width, 0 if start == "random" else 1])
    if start == "random":
        theta = net.prior_sample(rng)
    elif start == "theory":
        if theory is None:
            raise ValueError("start='theory' needs a TheoryState")
        pop = theory_population(theory, width, rng)
        theta = net.pack(pop.preactivations, pop.readouts)  # orthogonal inputs with N0 = P: W = h
    else:
        raise ValueError(f"start must be 'random' or 'theory' (got {start!r})")
    with _one_blas_thread():
        return _run(spec, net, theta, rng, sweeps, burn, snapshot_every, step_size, n_mala, label, progress, start)


def _one_blas_thread():
    """BLAS limited to one thread: the matrices are small (P × P, N × P) and threads only
    oversubscribe the cores (28× slower sweeps measured on a loaded 2-core machine)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


def _run(spec, net, theta, rng, sweeps, burn, snapshot_every, step_size, n_mala, label, progress, start):
    from .collapsed import collapsed_sweep
    from .samplers import StepSizeAdaptation

    width = net.width
    t0 = time.perf_counter()
    adapt = StepSizeAdaptation(step_size) if burn > 0 else None
    step = step_size
    acc = []
    snaps_s, cms, ros, fs = [], [], [], []
    labels = np.repeat(np.arange(spec.m), spec.class_sizes)
    for s in range(sweeps):
        theta, a = collapsed_sweep(rng, net, theta, step_size=step, n_mala=n_mala)
        if adapt is not None and s < burn:
            adapt.update(a)
            step = adapt.step_size if s < burn - 1 else adapt.final_step_size
        else:
            acc.append(a)
        if s >= burn and (s - burn) % snapshot_every == 0:
            W, ro = net.unpack(theta)
            phi, _ = net.nonlinearity.eval(net.preactivations(W))
            snaps_s.append(s)
            cms.append(np.stack([phi[:, labels == c].mean(axis=1) for c in range(spec.m)], axis=1))
            ros.append(np.array(ro))
            fs.append((ro @ phi).T / width**net.gamma)
        if progress and (s + 1) % max(1, sweeps // 10) == 0:
            print(f"\r[chain {label}] sweep {s + 1}/{sweeps}", end="", file=sys.stderr, flush=True)
    if progress:
        print(f"\r[chain {label}] {sweeps} sweeps, {time.perf_counter() - t0:.1f} s, acceptance "
              f"{np.mean(acc) if acc else float('nan'):.2f}", file=sys.stderr)
    return ChainResult(spec=spec, net=net, theta=theta, snapshot_sweeps=snaps_s, class_means=cms, readouts=ros,
                       outputs=fs, acceptance=float(np.mean(acc)) if acc else float("nan"), step_size=step,
                       seconds=time.perf_counter() - t0, start=start)
