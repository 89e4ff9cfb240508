"""The coding scheme of the finite-P single-neuron measure p_t(a) at a solution (THEORY §3–4).

At the solution t* of the convex dual, every neuron's readout vector a follows

    p_t(a) ∝ e^{S(a)},   S(a) = −|a|²/(2σ_a²) + Σ_c P_c ψ(t_c·a)          (THEORY §3)

which is multimodal for sigmoids: one mode per code (THEORY §4). The coding scheme of p_t is

* its modes a_k, the local maxima of S within 25 nats of the highest
  (:func:`solvers.finite_p.placement.search_modes`, seeded with the bulk mean and axes);
* the mass of each mode, by the Laplace approximation
  w_k ∝ e^{S(a_k)} det(2π (−∇²S(a_k))⁻¹)^{1/2}, normalised over the modes (modes below
  ``MIN_MASS`` are empty and dropped). With
  σ_a² = σ̄_a²/P, S = P·S_∞ and the modes sharpen like P^{-1/2}, so these masses tend to the
  large-P occupations P_γ (THEORY §4) with O(1/P) corrections; where modes overlap (near a
  crossover) they are an approximation, while f, U and the kernel stay exact;
* each mode's code, from its class-mean activations m_c = ψ'(t_c·a_k) by the rule of
  :func:`theory.codes.code_string` (signed "+"/"-"/"0" for odd φ), masses summed per code;
* for linearly growing φ (ReLU) the condensate along the marginal directions â_j: its masses
  λ_j and codes {c : t_c·â_j > 0} (THEORY §4, from :class:`solvers.finite_p.dual.Condensate`);
* the spread tr Cov_p(a) = tr U − |E a|², which tends to Σ_γ P_γ |a_γ − ā|² as P → ∞: zero in
  the symmetric phase (one branch) and positive when the symmetry is broken.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from theory.codes import CODE_THRESHOLD, code_string

from solvers.finite_p.placement import search_modes
from solvers.finite_p.problem import ClassProblem

__all__ = ["FiniteMeasure", "single_neuron_measure", "measure_summary", "SILENT", "MIN_MASS"]

#: a mode whose largest |class-mean activation| is below this is silent (code of zeros)
SILENT = 1e-6
#: modes with a smaller Laplace mass are empty (as the large-P occupations, solvers.large_p.coding)
MIN_MASS = 1e-6


@dataclass(frozen=True)
class FiniteMeasure:
    """The modes of p_t(a), their Laplace masses and codes, the condensate and the readout spread."""

    modes: np.ndarray  # (k, m) positions a_k, heaviest first
    masses: np.ndarray  # (k,) Laplace masses, summing to 1
    codes: tuple  # (k,) code strings per mode
    activations: np.ndarray  # (k, m) class-mean activations ψ'(t_c·a_k)
    code_masses: dict  # code → summed mass
    spread: float  # tr Cov_p(a) = tr U − |E a|²
    condensate_masses: tuple = ()  # λ_j (linearly growing φ at the domain boundary)
    condensate_codes: tuple = ()  # per direction: code string of {c : t_c·â_j > 0}

    @property
    def n_modes(self) -> int:
        return len(self.masses)

    @property
    def symmetric(self) -> bool:
        """One mode (every neuron equivalent) and no condensate."""
        return self.n_modes <= 1 and not self.condensate_masses

    def to_json(self) -> dict:
        return {"n_modes": self.n_modes, "symmetric": self.symmetric, "modes": self.modes.tolist(),
                "mode_masses": self.masses.tolist(), "mode_codes": list(self.codes),
                "mode_activations": self.activations.tolist(), "code_masses": dict(self.code_masses),
                "spread": self.spread, "condensate_masses": list(self.condensate_masses),
                "condensate_codes": list(self.condensate_codes)}


def _laplace_masses(S: np.ndarray, H: np.ndarray) -> np.ndarray:
    """w_k ∝ e^{S_k} det(2π(−H_k)⁻¹)^{1/2}, normalised."""
    logdet = np.array([np.linalg.slogdet(-h)[1] for h in H])
    log_w = S - 0.5 * logdet
    w = np.exp(log_w - log_w.max())
    return w / w.sum()


def _condensate(extra: dict, m: int) -> tuple[tuple, tuple]:
    cond = (extra or {}).get("condensate")
    if not cond:
        return (), ()
    masses = tuple(float(x) for x in cond["mass"])
    codes = tuple("".join("1" if c in set(code) else "0" for c in range(m)) for code in cond["codes"])
    return masses, codes


def single_neuron_measure(result) -> FiniteMeasure:
    """The coding scheme of p_t(a) at the solution of a class-data solve (a :class:`SolveResult`).

    Reads ``result.spec``, ``result.t``, ``result.readout_mean``, U and the condensate of
    ``result.extra``; the mode search is the solver's own (:func:`search_modes`), seeded with the
    bulk mean and the principal axes of Cov_p(a).
    """
    spec = result.spec
    prob = ClassProblem.from_spec(spec)
    m = prob.m
    t = np.asarray(result.t, dtype=np.float64)
    U = np.asarray(result.observables.readout_moment, dtype=np.float64)
    mean = np.zeros(m) if result.readout_mean is None else np.asarray(result.readout_mean, dtype=np.float64)
    cov = U - np.outer(mean, mean)
    modes, S, H = search_modes(prob, t, mean, 0.5 * (cov + cov.T))
    if len(S) == 0:  # no strict maximum found (flat S): the bulk is the one mode
        modes, S, H = mean[None], np.zeros(1), -np.linalg.inv(cov + 1e-300 * np.eye(m))[None]
    masses = _laplace_masses(S, H)
    order = [i for i in np.argsort(-masses, kind="stable") if masses[i] >= MIN_MASS]
    modes, masses = modes[order], masses[order] / masses[order].sum()
    _, d1, _ = prob.table()(modes @ t.T)
    activations = np.asarray(d1, dtype=np.float64).reshape(len(modes), m)
    odd = prob.nonlinearity.odd
    codes = tuple(code_string(a, signed=odd, threshold=CODE_THRESHOLD, silent=SILENT) for a in activations)
    code_masses: dict = {}
    for c, w in zip(codes, masses):
        code_masses[c] = code_masses.get(c, 0.0) + float(w)
    cond_masses, cond_codes = _condensate(result.extra, m)
    return FiniteMeasure(modes=modes, masses=masses, codes=codes, activations=activations,
                         code_masses=dict(sorted(code_masses.items())), spread=float(np.trace(cov)),
                         condensate_masses=cond_masses, condensate_codes=cond_codes)


def measure_summary(result) -> dict:
    """One JSON row: the coding scheme of p_t (:meth:`FiniteMeasure.to_json`), f, U, the kernel
    summary (diagonal, blocks), t and the solver's verdict (converged, status, error estimate)."""
    obs = result.observables
    row = single_neuron_measure(result).to_json()
    label = "symmetric" if row["symmetric"] else (f"{row['n_modes']} modes: " + " ".join(row["code_masses"]))
    if row["condensate_codes"]:
        label += " + condensate " + " ".join(sorted(row["condensate_codes"]))
    row.update(label=label, outputs=np.asarray(obs.outputs).tolist(),
               readout_moment=np.asarray(obs.readout_moment).tolist(),
               kernel_diagonal=np.asarray(obs.kernel_diagonal).tolist(),
               kernel_blocks=np.asarray(obs.kernel_blocks).tolist(),
               f_diag=np.diag(obs.outputs).tolist(), U_diag=np.diag(obs.readout_moment).tolist(),
               t=np.asarray(result.t).tolist(), converged=bool(result.converged), status=result.status,
               error_estimate=float(result.error_estimate), residual=float(result.residual),
               iterations=int(result.iterations), time_seconds=float(result.time_seconds))
    return row
