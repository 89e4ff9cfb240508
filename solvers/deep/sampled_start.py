"""A start of the deep class-block theory from sampled networks (THEORY §5, §7): the per-layer class-block
kernels of sampled chains, class-averaged, as the initial point of Newton.

The theory's unknowns (:mod:`solvers.deep.model`) are the field t and, for each hidden layer ℓ = 1..L−1,
the class-block kernel k_ℓ and its within-class excess δ_ℓ. A sampled network (any width N) gives the same
quantities as class averages of K_ℓ = Φ_ℓᵀΦ_ℓ/N:

    k_ℓ,cd = mean of K_ℓ,μν over μ in class c, ν in class d, μ ≠ ν;   δ_ℓ,c = mean_μ∈c K_ℓ,μμ − k_ℓ,cc;

and the field from the stationarity of t at the sampled outputs f (T > 0):

    t = (Y − f) / T,

then refined by Newton in t alone with the kernels held (the last layer's problem is convex in t). The
proposals are the moment-matched Gaussians at that point; each layer whose Gaussian misses modes of its
tilted y-measure gets a mixture with one component per mode (:func:`solvers.deep.modes.mixture_from_modes`),
as for the other starts of :mod:`solvers.deep.nonlinear`.

A sampled state is not a solution (finite N, and chains that freeze in a code composition), and Newton
from it can stall far away. :func:`newton_homotopy` then follows the solution of the Newton homotopy

    r(x) = (1 − s) r(x₀),   s: 0 → 1,

from x₀ (a solution at s = 0) to a root of r at s = 1, with the proposals held: the branch connected to
the sampled state, in steps of s (a failed step halved up to three times; Allgower & Georg, Introduction
to Numerical Continuation Methods, §11.1). The chains' per-layer code fractions are kept
with the start, for comparison with the theory's at the saddle reached (:func:`code_distance`).

The solver does not sample: the caller (validation, a figure, a script) runs the chains and passes the
arrays in (:meth:`SampledKernels.from_layer_vector` reads the flat observables layout of
:func:`theory.codes.split_layer_vector`, the layout of ``validation.deep_chain`` draws).
"""
from __future__ import annotations

from dataclasses import dataclass
import itertools

import numpy as np

from solvers.deep.newton import solve_at
from theory.codes import code_fraction_difference, split_layer_vector
from theory.spec import SpecError

__all__ = ["SampledKernels", "sampled_point", "newton_homotopy", "code_distance"]


@dataclass(frozen=True)
class SampledKernels:
    """Class-averaged observables of sampled deep networks: ``outputs`` f (m × m), per hidden layer
    ℓ = 1..L ``kernel_diagonals`` (m) and ``kernel_blocks`` (m × m), optional ``code_fractions`` (per layer
    {code: fraction}); ``label`` names the start in the solver's log."""

    outputs: np.ndarray
    kernel_diagonals: tuple
    kernel_blocks: tuple
    code_fractions: tuple = ()
    label: str = "sampled networks"

    def __post_init__(self):
        f = np.asarray(self.outputs, dtype=np.float64)
        m = f.shape[0] if f.ndim == 2 else 0
        if f.shape != (m, m) or m < 1:
            raise SpecError(f"outputs must be an m × m array (got shape {f.shape})")
        if len(self.kernel_diagonals) != len(self.kernel_blocks) or not self.kernel_blocks:
            raise SpecError("kernel_diagonals and kernel_blocks must list the same number (>= 1) of layers")
        for d, k in zip(self.kernel_diagonals, self.kernel_blocks):
            if np.shape(d) != (m,) or np.shape(k) != (m, m):
                raise SpecError(f"each layer needs an m-vector diagonal and an m × m block matrix (m = {m})")
            if not (np.all(np.isfinite(d)) and np.all(np.isfinite(k))):
                raise SpecError("sampled kernels must be finite")
        if self.code_fractions and len(self.code_fractions) != len(self.kernel_blocks):
            raise SpecError("code_fractions must give one {code: fraction} per layer (or none)")
        if not np.all(np.isfinite(f)):
            raise SpecError("sampled outputs must be finite")

    @property
    def layers(self) -> int:
        return len(self.kernel_blocks)

    @property
    def m(self) -> int:
        return int(np.shape(self.outputs)[0])

    @classmethod
    def from_layer_vector(cls, vector, m: int, layers: int, code_fractions=(), label: str = "sampled networks"):
        """From the flat observables vector [f, U, per layer kernel diagonal and blocks] (e.g. the mean of a
        chain's draws, or of several chains' draws)."""
        parts = split_layer_vector(np.asarray(vector, dtype=np.float64), m, layers)
        return cls(outputs=parts["outputs"].copy(),
                   kernel_diagonals=tuple(np.array(e["kernel_diagonal"]) for e in parts["layers"]),
                   kernel_blocks=tuple(np.array(e["kernel_blocks"]) for e in parts["layers"]),
                   code_fractions=tuple(dict(c) for c in code_fractions), label=label)

    def symmetrized(self, class_sizes) -> "SampledKernels":
        """The average over the permutations of classes of equal size (the equations' symmetry; a chain breaks
        it by O(N^-1/2) and by the code composition it freezes in): f, kernels and code fractions (a code's
        letters permuted with the classes)."""
        sizes = list(class_sizes)
        perms = [p for p in itertools.permutations(range(self.m)) if all(sizes[i] == sizes[j] for i, j in enumerate(p))]

        def avg(a, matrix):
            a = np.asarray(a, dtype=np.float64)
            return np.mean([a[np.ix_(p, p)] if matrix else a[list(p)] for p in perms], axis=0)

        codes = tuple({k: float(np.mean([c.get("".join(k[i] for i in np.argsort(p)), 0.0) for p in perms]))
                       for k in set().union(*({"".join(k[i] for i in q) for q in perms} for k in c))}
                      for c in self.code_fractions)
        return SampledKernels(outputs=avg(self.outputs, True), kernel_diagonals=tuple(avg(d, False) for d in
                                                                                      self.kernel_diagonals),
                              kernel_blocks=tuple(avg(k, True) for k in self.kernel_blocks), code_fractions=codes,
                              label=f"{self.label}, symmetrized")

    def hidden_kernels(self, L: int) -> list:
        """[(k_ℓ, δ_ℓ)] for ℓ = 1..L−1 (δ floored at 1e-3 of the diagonal: a start, not a solution)."""
        out = []
        for ell in range(L - 1):
            k = 0.5 * (np.asarray(self.kernel_blocks[ell]) + np.asarray(self.kernel_blocks[ell]).T)
            diag = np.asarray(self.kernel_diagonals[ell], dtype=np.float64)
            out.append((k, np.maximum(diag - np.diag(k), 1e-3 * np.abs(diag) + 1e-12)))
        return out


def sampled_point(model, start: SampledKernels):
    """The packed unknowns x of ``model`` (:class:`solvers.deep.model.DeepModel`) at the sampled kernels:
    t = (Y − f)/T (at T = 0: t from the prior scale 1), kernels of the hidden layers 1..L−1."""
    if start.layers != model.L or start.m != model.m:
        raise SpecError(f"the sampled start has {start.layers} layers and {start.m} classes; the problem has "
                        f"{model.L} and {model.m}")
    T = model.T
    f = np.asarray(start.outputs, dtype=np.float64)
    t = (model.Y - f) / T if T > 0 else np.eye(model.m)
    return model.pack(t, start.hidden_kernels(model.L))


class _Shifted:
    """``model`` with the residual r(x) − shift (the Newton homotopy's equations at one s)."""

    def __init__(self, model, shift):
        self.model, self.shift = model, shift

    def __getattr__(self, name):
        return getattr(self.model, name)

    def safe_eval(self, x, proposals, **kw):
        ev = self.model.safe_eval(x, proposals, **kw)
        return None if ev is None else dict(ev, residual=ev["residual"] - self.shift)


def newton_homotopy(model, x0, props, log, label, steps: int = 4):
    """Follow r(x) = (1 − s) r(x₀) from s = 0 (x₀) to s = 1 (module docstring); steps of 1/``steps`` in s,
    each one Newton solve (tolerance 1e-8) and one moment-matching round of the proposals
    (:func:`solvers.deep.newton.solve_at`), a failed step halved up to three times. Returns (x, proposals)
    at s = 1, or None if r(x₀) cannot be evaluated or a step fails; ``log`` gets the steps."""
    ev = model.safe_eval(x0, props)
    if ev is None:
        return None
    r0, x, s, ds, halvings = ev["residual"], x0, 0.0, 1.0 / steps, 0
    while s < 1.0 - 1e-12:
        sk = min(1.0, s + ds)
        out = solve_at(_Shifted(model, (1.0 - sk) * r0), x, props, log, f"{label}: Newton homotopy s = {sk:.4g}",
                       rounds=1, tol=1e-8, maxiter=25, jacobians=False)
        if out is None:
            if halvings == 3:
                return None
            ds, halvings = ds / 2.0, halvings + 1
            continue
        x, props, s = out[0], out[4], sk
    return x, props


def code_distance(theory_codes, sampled_codes) -> list:
    """Per layer, the largest |fraction difference| over the codes of either (missing codes count as 0);
    None for a layer without fractions on either side."""
    return [code_fraction_difference(a, b) if (a or b) else None for a, b in zip(theory_codes, sampled_codes)]
