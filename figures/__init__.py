"""Figures: one module per figure, each writing PNGs from solver and sampler results."""
