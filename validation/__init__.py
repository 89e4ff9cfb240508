"""Sampling finite networks to validate the theory (THEORY §1, §7).

Not implemented yet: this package is the home of the samplers, observables
from samples and theory-vs-sampling comparisons of the validation issue.
"""
