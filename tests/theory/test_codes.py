"""Coding-scheme observables on populations with known codes."""
import numpy as np

from validation.observables import code_fractions, neuron_codes, participation_ratio


def test_codes_and_fractions():
    means = np.array([[1.0, 0.9, 0.0],   # codes classes 0, 1 -> "110"
                      [0.0, 0.0, 2.0],   # class 2 -> "001"
                      [1.0, 0.9, 0.1],   # "110"
                      [0.0, 0.0, 0.0]])  # silent -> "000"
    codes = neuron_codes(means)
    assert list(codes) == [3, 4, 3, 0]
    assert code_fractions(codes, 3) == {"000": 0.25, "110": 0.5, "001": 0.25}


def test_participation_ratio_limits():
    assert participation_ratio(np.ones(100)) == 1.0  # analog / redundant: everyone contributes
    sparse = np.zeros(100)
    sparse[:3] = 1.0
    assert abs(participation_ratio(sparse) - 0.03) < 1e-12  # three neurons carry the output
