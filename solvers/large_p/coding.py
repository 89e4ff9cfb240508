"""The coding scheme of a large-P solution: readout groups, their codes, the phase label (THEORY §4).

Every point of a two-parameter grid is labelled by the coding scheme of the
large-P solution there (:func:`coding_scheme`):

* the readout groups: the occupied branches a_γ, a mirror orbit {a, −a} of
  an odd φ counting as two groups;
* each group's code, from its class-mean activations m_c = ψ'(t_c·a_γ)
  (the mean of φ(h_μ) over the inputs of class c under the tilted law):
  for φ ≥ 0 a class is in the code ("1") when m_c exceeds half the group's
  largest m_c, as for sampled neurons (:func:`validation.observables.neuron_codes`);
  for odd φ the code is the sign pattern ("+", "−" written "-", "0" below half
  the largest |m_c|), and every branch a ≠ 0 also stands for its mirror −a;
  a group with all |m_c| < 1e-6 is silent ("000");
* symmetric (one group: every neuron equivalent) or broken (several groups);
* for linearly growing φ with a condensate, the outliers' codes.

The label is ``"symmetric"`` or ``"broken, <n> groups: <codes>"``. A change of the number
of groups is a phase transition (symmetry breaking); a change of codes at the
same number of groups is a crossover of the threshold rule (a class's
activation of a group passing half the largest), and is marked as such.
"""
from __future__ import annotations

import numpy as np

from solvers.large_p.solve import LargePSolution
from theory.codes import CODE_THRESHOLD, code_string

__all__ = ["coding_scheme", "MIN_OCCUPATION", "SILENT"]


#: occupations below this are empty branches
MIN_OCCUPATION = 1e-6


#: a group whose largest |class-mean activation| is below this is silent (code of zeros)
SILENT = 1e-6


def _code(m: np.ndarray, odd: bool) -> str:
    return code_string(m, signed=odd, threshold=CODE_THRESHOLD, silent=SILENT)


def coding_scheme(sol: LargePSolution) -> dict:
    """Groups, their codes and occupations, and the label of a large-P solution (module docstring).

    Every occupied branch is a group (for odd φ a branch a ≠ 0 stands for the two groups ±a, codes ±);
    silent branches (all |m_c| < 1e-6: a ≈ 0) form one group together. The solution is symmetric
    when there is one group. Occupations are summed per code.
    """
    prob = sol.problem
    odd = prob.phi.odd
    merged: dict = {}
    n_groups, silent_seen = 0, False
    for b in sol.branches:
        if b.occupation <= MIN_OCCUPATION:
            continue
        _, dpsi, _ = prob.psi(sol.t @ b.a)
        code = _code(np.asarray(dpsi), odd)
        silent = code == "0" * prob.m
        if silent and silent_seen:
            merged[code] += b.occupation  # all silent branches (a ≈ 0) are one group
            continue
        silent_seen = silent_seen or silent
        mirrored = odd and not silent
        images = [code, code.translate(str.maketrans("+-", "-+"))] if mirrored else [code]
        n_groups += 2 if mirrored else 1
        for c in images:
            merged[c] = merged.get(c, 0.0) + b.occupation / len(images)
    codes = sorted(merged)
    symmetric = n_groups <= 1
    out = {"symmetric": symmetric, "n_groups": n_groups, "codes": codes,
           "occupations": [merged[c] for c in codes]}
    cond = getattr(sol, "condensate", None)
    if cond is not None and hasattr(cond, "codes"):
        out["condensate_codes"] = sorted("".join("1" if c in set(code) else "0" for c in range(prob.m))
                                         for code in cond.codes)
    label = "symmetric" if symmetric else f"broken, {n_groups} groups: " + " ".join(codes)
    if out.get("condensate_codes"):
        label += " + outliers " + " ".join(out["condensate_codes"])
    out["label"] = label
    return out
