"""The theory map (docs/theory-map.md) covers THEORY.md: every section of THEORY.md has a table on
the map, and every symbol a section defines has a row in that section's table.

``THEORY_SYMBOLS`` is the list of symbols extracted from THEORY.md, section by section: each entry
is the text as THEORY.md writes it and, where the map writes it differently (spacing, a minus sign
for a hyphen, a shorter form), the text of the map's row. The map is checked against the list
always. Where THEORY.md is found (next to the repository, ``../shared/THEORY.md``, or at
``$CODINGSCHEMES_THEORY``), the list is also checked against THEORY.md: its section headings are
the list's sections, every entry occurs in its section, and every Greek letter THEORY.md uses as
a symbol appears on the map. A symbol added to THEORY.md without a row here fails the last check
when it is a new letter, and otherwise belongs in ``THEORY_SYMBOLS``.
"""
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAP = ROOT / "docs" / "theory-map.md"

# section number of THEORY.md -> symbols, as (text in THEORY.md, text in the map's row) or one string for both
THEORY_SYMBOLS = {
    1: ["P_c", "ρ_c", "x_μ", "N0", "c(μ)", "y_μ", "e_{c(μ)}", "m", "L", "N", "h¹_i(x)", "h^ℓ_i(x)", "W^ℓ",
        "σ_ℓ", "a_ri", "σ_a", "φ", "f_r(x)", "γ", "T", "T → 0", "β = N/T", "Θ", "p0", ("p(Θ|D)", "p(Θ\\|D)"),
        "linear", "ReLU", "erf", ("Φ(h)", "Φ (normcdf)"), "tanh", "user expression", "Gauss–Hermite quadrature",
        "code", "coding scheme", "analog", "redundant", "sparse"],
    2: ["K0_μν", "h ∈ R^P", "t_μ", "p_t(a, h)", "Φ(t)", "Φ < ∞", "G(t)", "∇Φ = E_t[aφ]", "∇²Φ = Cov_t[aφ]",
        "Newton with a line search", "f_μ", "U = E_t[a aᵀ]", "K_μν", "f(x*)", "h*", "k0(x*)", "O(N^{-1/2})", "O(1/N)",
        "Φ = −½ log det", ("λ_max(σ_a² σ_1² tᵀK0 t)", "λ_max(σ_a²σ_1² tᵀK0t)"), "f = σ_1² K0 t U",
        ("U = (σ_a^{-2} I − σ_1² tᵀK0 t)^{-1}", "U = (σ_a^{-2} I − σ_1² tᵀK0t)^{-1}"), "p(a) = N(0, U)",
        ("k0(x*)ᵀ K0^{-1} Y", "k0(x*)ᵀK0^{-1}Y")],
    3: ["K0 = I", "t_c", "Z(g)", "ψ = log Z", "g = t_c·a", "ψ'(g)", "q(g)", "f_c = E[a ψ'(t_c·a)]", "E[q(t_c·a)]",
        "E[ψ'(t_c·a) ψ'(t_d·a)]", "ψ = σ_1² g²/2", "Φ_N", "τ_c", "U_cc", "f_cc", "â", "Σ_{c: t_c·â>0}", "integrator"],
    4: ["σ̄_a", "S(a; t)", "Φ(t)/P → max_a S", "G∞(t)", "a_γ", "P_γ", "∇_a S(a_γ) = 0", "δ(a − a_γ)", ("n > 1", "n"),
        "symmetric solution", "symmetry breaking", "a = 0", "t = Y/T", "f = 0", "T_c,r", "a*", "ψ(g) ≈ σ_1² g²/2",
        "q(t)", ("outlier", "outliers"), "a_0", "KKT multiplier", "condensate", "λ_j", "â_j",
        ("{c : t_c·â* > 0}", "{c : t_c·â_j > 0}"), "λ_j (t_c·â_j)₊ â_j", "r_k", "S(a_0)", "−½ log(1 − q)",
        "sharpening crossover"],
    5: ["K_ℓ", "K̃_ℓ", "p(h^ℓ)", "Φ_L", "σ_L²", "φ'", "φ''", "Gaussian identity", "action per neuron", "saddle points",
        "K̃_1", "K_1", "K_2", "k̃_cd", "S_c = Σ_{μ∈c} φ_μ", "u", "ξ", "Hubbard–Stratonovich", "Laplace's method",
        "class-block"],
    6: ["K_GP", "arcsine kernel", "arc-cosine", "k_GP(x*)ᵀ"],
    7: ["λ_max(K)/T", "2T/λ_max(K)", "Langevin", "MALA", "HMC", "ESS", "R-hat", ("several chains", "chains"),
        "permutation-invariant observables", "code fractions", ("extrapolating in 1/N", "1/N extrapolation"),
        ("Ergodicity", "ergodicity"), "independence proposal", "tempering in T",
        ("conditioned on the observed", "theory conditioned on observed fractions"), "stationarity", "drift"],
}
# Greek letters THEORY.md uses that are not symbols of their own: sums, products, the π in erf(√π h/2)
NOT_SYMBOLS = set("ΣΠπ")


def theory_path():
    candidates = [os.environ.get("CODINGSCHEMES_THEORY", ""), ROOT / "THEORY.md", ROOT.parent / "shared" / "THEORY.md",
                  ROOT.parents[1] / "shared" / "THEORY.md"]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    return None


def theory_sections(text):
    """{section number: text} of THEORY.md, split at its ``## n.`` headings."""
    parts = re.split(r"^## (\d+)\.[^\n]*$", text, flags=re.M)
    return {int(parts[k]): parts[k + 1] for k in range(1, len(parts), 2)}


def map_rows():
    """{section number: [(symbol cell, meaning cell, python cell, json cell)]} of the map's ``## §n`` tables."""
    rows, section = {}, None
    for line in MAP.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^## §(\d+)\b", line)
        if heading:
            section = int(heading.group(1))
            rows[section] = []
        elif line.startswith("## "):
            section = None
        elif section is not None and line.startswith("| ") and not line.startswith("| symbol |"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            rows[section].append(tuple(cells))
    return rows


def pairs(section):
    return [(s, s) if isinstance(s, str) else s for s in THEORY_SYMBOLS[section]]


def occurs(symbol, text):
    """``symbol`` in ``text`` as a whole token (not inside a longer name)."""
    return re.search(r"(?<![\w])" + re.escape(symbol) + r"(?![\w])", text) is not None


def test_every_section_of_the_theory_has_a_table():
    assert sorted(map_rows()) == sorted(THEORY_SYMBOLS)


def test_every_theory_symbol_has_a_row_in_its_section():
    rows = map_rows()
    missing = [(n, on_map) for n in THEORY_SYMBOLS for _, on_map in pairs(n)
               if not any(occurs(on_map, row[0]) or occurs(on_map, row[1]) for row in rows[n])]
    assert not missing, f"symbols of THEORY.md without a row on docs/theory-map.md (section, text): {missing}"


def test_every_row_names_code_and_json():
    for n, table in map_rows().items():
        for row in table:
            assert len(row) == 4 and all(row), f"§{n}: a row needs symbol, meaning, Python and JSON cells: {row}"


def test_the_symbol_list_is_the_theory():
    path = theory_path()
    if path is None:
        pytest.skip("THEORY.md not found next to the repository (set CODINGSCHEMES_THEORY)")
    text = path.read_text(encoding="utf-8")
    sections = theory_sections(text)
    assert sorted(sections) == sorted(THEORY_SYMBOLS), "THEORY.md's sections changed: update THEORY_SYMBOLS and the map"
    absent = [(n, in_theory) for n in THEORY_SYMBOLS for in_theory, _ in pairs(n) if in_theory not in sections[n]]
    assert not absent, f"THEORY_SYMBOLS entries not in their THEORY.md section: {absent}"


def test_every_greek_letter_of_the_theory_is_on_the_map():
    path = theory_path()
    if path is None:
        pytest.skip("THEORY.md not found next to the repository (set CODINGSCHEMES_THEORY)")
    letters = {ch for ch in path.read_text(encoding="utf-8") if "\u0370" <= ch <= "\u03ff" or ch in "ℓ∞"} - NOT_SYMBOLS
    on_map = "".join(row[0] for table in map_rows().values() for row in table)
    assert not sorted(letters - set(on_map)), f"letters of THEORY.md with no row on the map: {sorted(letters - set(on_map))}"
