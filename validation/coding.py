"""Coding-scheme analysis of a population of neurons, from sampling or from the theory (THEORY §1, §4, §7).

The analysis is split by concern and re-exported here: :mod:`validation.coding_scheme` (codes,
output contributions, top-k share, participation ratio, code robustness and the label),
:mod:`validation.populations` (populations from a network state or the theory's single-neuron
measure), :mod:`validation.pattern_drift` (drift of the neurons' patterns over sampler time) and
:mod:`validation.coding_chain` (the chains with snapshots).
"""
from __future__ import annotations

from .coding_chain import ChainResult, run_chain
from .coding_scheme import (CODE_THRESHOLD, MAJOR_CODE, MAJOR_COVER, REDUNDANT_ROBUSTNESS, ROBUST_BAND,
                            SPARSE_SHARE, TOP_FRACTION, CodingAnalysis, analyse_population, code_robustness,
                            fractions_of, label_scheme, neuron_code_strings, output_contributions,
                            participation_ratio, top_k_share)
from .pattern_drift import OUTLIER_FACTOR, bulk_mask, drift_curve, pattern_drift
from .populations import (ACCEPT_RESIDUAL, Population, TheoryState, network_population, theory_population,
                          theory_state)

__all__ = ["CODE_THRESHOLD", "TOP_FRACTION", "SPARSE_SHARE", "ROBUST_BAND", "REDUNDANT_ROBUSTNESS",
           "MAJOR_CODE", "MAJOR_COVER", "CodingAnalysis", "Population", "analyse_population",
           "output_contributions", "top_k_share", "code_robustness", "participation_ratio", "label_scheme",
           "network_population", "TheoryState", "theory_state", "theory_population", "pattern_drift",
           "drift_curve", "ChainResult", "run_chain", "bulk_mask", "neuron_code_strings", "fractions_of",
           "ACCEPT_RESIDUAL", "OUTLIER_FACTOR"]
