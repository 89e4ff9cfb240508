"""Sampling finite networks to validate the theory (THEORY §1, §7): networks, samplers (MALA, HMC,
ULA, collapsed and Gibbs sweeps), diagnostics, observables from samples, theory-based starts and
moves, and the theory-against-sampling report (``validation.report.validate``)."""
