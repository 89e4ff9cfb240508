"""Figures: one module per figure, each writing PNGs from solver (and, later, sampler) results."""
