"""Coding scheme of a population of neurons: codes, output contributions, label (THEORY §1, §4, §7).

Vocabulary (THEORY §1, the paper's Table 1; van Meegen & Sompolinsky, Nat. Commun. 16, 3354 (2025)):
a neuron's *code* is the set of classes that activate it; the *coding scheme* is the collection of
codes of a population; *analog*: all neurons respond to all classes with graded strengths;
*redundant*: the neurons fall into a few groups, each sharing one code; *sparse*: a few neurons
carry the output.

Input: N neurons given by their readouts a (m × N) and class-mean activations φ̄ (N × m), φ̄_ic the
mean of φ(h_iμ) over the P_c training inputs μ of class c. They come from a sampled network
(:func:`validation.populations.network_population`) or from the theory's single-neuron measure
(:func:`validation.populations.theory_population`).

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
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np

from theory.codes import CODE_THRESHOLD, participation_ratio

__all__ = ["CODE_THRESHOLD", "TOP_FRACTION", "SPARSE_SHARE", "ROBUST_BAND", "REDUNDANT_ROBUSTNESS",
           "MAJOR_CODE", "MAJOR_COVER", "CodingAnalysis", "analyse_population", "output_contributions",
           "top_k_share", "code_robustness", "participation_ratio", "label_scheme", "neuron_code_strings",
           "fractions_of"]

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
