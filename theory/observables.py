"""The observables that theory and sampling both produce (THEORY §2).

Network quantity                          → theory
mean training output on class c, output r → f_cr = E_t[a_r φ(h_μ)], μ ∈ c
readout moment (1/N) Σ_i a_i a_iᵀ          → U = E_t[a aᵀ]
kernel (1/N) Σ_i φ(h_iμ) φ(h_iν)          → K_μν = E_t[φ(h_μ) φ(h_ν)]

For class-structured data the kernel has one diagonal value per class,
K_μμ (μ ∈ c), and one block value per class pair, K_μν (μ ∈ c, ν ∈ d, μ ≠ ν).
Both the solver and the samplers return :class:`Observables`, so comparing
them is one call (:meth:`Observables.difference`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from theory.spec import SpecError

__all__ = ["Observables", "OBSERVABLE_KEYS", "full_kernel", "layer_summaries"]

OBSERVABLE_KEYS = ("outputs", "readout_moment", "kernel_diagonal", "kernel_blocks")


@dataclass(frozen=True)
class Observables:
    """Class-resolved observables with optional absolute errors (same shapes)."""

    outputs: np.ndarray  # (m, m), [c, r]
    readout_moment: np.ndarray  # (m, m)
    kernel_diagonal: np.ndarray  # (m,)
    kernel_blocks: np.ndarray  # (m, m), [c, d]
    errors: dict = field(default_factory=dict)  # key -> array of the same shape

    def __call__(self) -> "Observables":
        """The observables themselves, so that a result storing them as a field also satisfies
        the result protocol's ``result.observables()``."""
        return self

    def to_json(self) -> dict:
        out = {k: np.asarray(getattr(self, k)).tolist() for k in OBSERVABLE_KEYS}
        if self.errors:
            out["errors"] = {k: np.asarray(v).tolist() for k, v in self.errors.items()}
        return out

    def difference(self, other: "Observables") -> dict:
        """Largest absolute difference per observable."""
        return {k: float(np.max(np.abs(np.asarray(getattr(self, k)) - np.asarray(getattr(other, k)))))
                for k in OBSERVABLE_KEYS}


def full_kernel(class_sizes, diagonal, blocks) -> np.ndarray:
    """P × P kernel from its class summary: ``blocks[c, d]`` between inputs of classes c and d,
    ``diagonal[c]`` on the diagonal of class c (inputs ordered in class blocks)."""
    labels = np.repeat(np.arange(len(class_sizes)), class_sizes)
    K = np.asarray(blocks, dtype=np.float64)[np.ix_(labels, labels)].copy()
    K[np.diag_indices_from(K)] = np.asarray(diagonal, dtype=np.float64)[labels]
    return K


def check_layer(ell, layers: int) -> int:
    """``ell`` as a hidden-layer index 1..``layers``, or :class:`~theory.spec.SpecError` naming the range."""
    if not (isinstance(ell, (int, np.integer)) and 1 <= ell <= layers):
        raise SpecError(f"layer must be an integer in 1..{layers} (got {ell!r})")
    return int(ell)


def layer_summaries(solution, layers: int) -> list:
    """[{"layer": ℓ, "kernel_diagonal": (m,), "kernel_blocks": (m, m)}] for ℓ = 1..L (JSON-ready), from
    any deep solution with ``layer_observables(ℓ)`` (the ``"layers"`` block of ``solve --layers``)."""
    out = []
    for ell in range(1, layers + 1):
        o = solution.layer_observables(ell)
        out.append({"layer": ell, "kernel_diagonal": np.asarray(o.kernel_diagonal).tolist(),
                    "kernel_blocks": np.asarray(o.kernel_blocks).tolist()})
    return out
