"""The symmetry group of the n-branch system as signed permutations of the packed x (THEORY §4).

Symmetries act on the packed x = (t, a_γ, P_γ) of :mod:`solvers.large_p.branches` consistently:
for odd φ the sign of each a_γ (a branch stands for its mirror orbit); permutations of the
branches γ (a_γ and P_γ together); permutations π of classes with equal ρ (not the class r varied
by ``rho_r``): t → Π t Πᵀ (rows and columns), a_γ → Π a_γ.
"""
from __future__ import annotations

import math

import numpy as np

from solvers.symmetry import SymmetryGroup
from solvers.large_p.problem import LargePProblem, parameter_name

__all__ = ["symmetry_group"]

def symmetry_group(problem: LargePProblem, n: int, parameter: str = "temperature",
                   max_order: int = 4096) -> SymmetryGroup:
    """The symmetry group of the n-branch system as signed permutations of the packed x.

    Generators (see the module docstring): for odd φ the sign flip of each
    a_γ; transpositions of neighbouring branches (a_γ, P_γ); transpositions of
    classes with equal ρ (excluding the class varied by ``rho_r``), acting as
    t → Π t Πᵀ, a_γ → Π a_γ. The group is closed by composition; if its order
    would exceed ``max_order`` the branch permutations are left out (then
    branch-permuted copies are not identified, which only costs duplicate
    work). ``group.order_note`` says what was included.
    """
    m = problem.m
    d = m * m + n * m + n
    kind, rvar = parameter_name(parameter, m)
    ident = np.arange(d)
    flips, bperms, cperms = [], [], []
    if problem.phi.odd:
        for g in range(n):
            s = np.ones(d)
            s[m * m + g * m:m * m + (g + 1) * m] = -1.0
            flips.append((ident.copy(), s))
    for g in range(n - 1):
        p = ident.copy()
        for r in range(m):
            i, j = m * m + g * m + r, m * m + (g + 1) * m + r
            p[i], p[j] = j, i
        i, j = m * m + n * m + g, m * m + n * m + g + 1
        p[i], p[j] = j, i
        bperms.append((p, np.ones(d)))
    rho = problem.rho
    classes = [c for c in range(m) if not (kind == "rho" and c == rvar)]
    for i, c in enumerate(classes):
        for c2 in classes[i + 1:]:
            if abs(rho[c] - rho[c2]) <= 1e-12 * max(rho[c], rho[c2]):
                pi = np.arange(m)
                pi[c], pi[c2] = c2, c
                p = ident.copy()
                for a in range(m):
                    for b in range(m):
                        p[a * m + b] = pi[a] * m + pi[b]
                for g in range(n):
                    for r in range(m):
                        p[m * m + g * m + r] = m * m + g * m + pi[r]
                cperms.append((p, np.ones(d)))
    n_class = math.factorial(len(classes))  # upper bound of the class part
    est = (2 ** n if flips else 1) * math.factorial(n) * n_class
    note = "mirror flips per branch, branch permutations, equal-fraction class permutations"
    gens = flips + bperms + cperms
    if est > max_order:
        gens = flips + cperms
        note = "mirror flips per branch and equal-fraction class permutations (branch permutations left out: order)"
    elements = [(ident.copy(), np.ones(d))]
    seen = {(ident.tobytes(), np.ones(d).tobytes())}
    k = 0
    while k < len(elements):
        p1, s1 = elements[k]
        for p2, s2 in gens:
            p, s = p1[p2], s2 * s1[p2]  # x → s2·(s1·x[p1])[p2]
            key = (p.tobytes(), s.tobytes())
            if key not in seen:
                if len(elements) >= max_order:
                    raise ValueError(f"symmetry group order exceeds max_order={max_order}")
                seen.add(key)
                elements.append((p, s))
        k += 1
    group = SymmetryGroup([(lambda x, p=p, s=s: s * np.asarray(x, dtype=np.float64)[p]) for p, s in elements],
                          include_identity=False)
    group.signed_permutations = elements
    group.order_note = note
    return group
