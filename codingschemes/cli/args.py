"""The shared argument layer of the ``codingschemes`` subcommands."""
from __future__ import annotations

from theory.spec import SpecError

__all__ = ["check_layers"]


def check_layers(layers: int, specs) -> None:
    """L >= 2: linear φ (closed form) or a φ the deep class-block solver handles (relu, kink-free bounded)."""
    from theory.deep_blocks import OneD

    if layers < 1:
        raise SpecError(f"layers must be an integer >= 1 (got {layers})")
    if layers > 1:
        for s in specs:
            if s.nonlinearity != "linear":
                OneD.for_nonlinearity(s.nonlinearity)  # raises SpecError for unsupported φ
