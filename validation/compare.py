"""Theory against sampling: the one comparison rule of every report (THEORY §7).

Network estimates differ from the N → ∞ theory by O(N^{-1/2}) noise and an O(1/N) bias.

* One width N (:func:`compare`): observable x passes when

      |x_sampled − x_theory| <= k·MCSE + k·ε + c·max(1, |x_theory|)·s/N,

  with k = 4 (:data:`K_MCSE`), ε the theory's own integration-error estimate (0 for closed forms),
  c the bias constant of the report and s a size factor (1, or P for the deep reports).
* Two or more widths: each observable is fitted by weighted least squares to a + b/N
  (:func:`extrapolate`); it passes when the intercept's z-score |a − x_theory| / √(se(a)² + ε²)
  is below k.

A report passes when every observable does (and its chains meet the R̂ rule, stated by the report).
"""
from __future__ import annotations

import numpy as np

from .results import Comparison

__all__ = ["extrapolate", "compare", "as_vector", "K_MCSE"]

#: k of the rule: allowed deviation in units of the MCSE (single width) or intercept error (extrapolation)
K_MCSE = 4.0


def extrapolate(widths, values, errors):
    """Weighted fit value(N) = a + b/N; returns (a, se(a), b, se(b)), elementwise over trailing dims."""
    widths = np.asarray(widths, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    errors = np.maximum(np.asarray(errors, dtype=np.float64), 1e-300)
    if len(widths) < 2 or values.shape[0] != len(widths) or errors.shape != values.shape:
        raise ValueError("extrapolate needs >= 2 widths and values/errors of shape (len(widths), ...)")
    X = np.stack([np.ones_like(widths), 1.0 / widths], axis=1)  # (k, 2)
    w = 1.0 / errors**2  # (k, ...)
    flat_v = values.reshape(len(widths), -1)
    flat_w = w.reshape(len(widths), -1)
    a, sa, b, sb = (np.empty(flat_v.shape[1]) for _ in range(4))
    for j in range(flat_v.shape[1]):
        A = X.T @ (flat_w[:, j:j + 1] * X)
        cov = np.linalg.inv(A)
        coef = cov @ (X.T @ (flat_w[:, j] * flat_v[:, j]))
        a[j], b[j] = coef
        sa[j], sb[j] = np.sqrt(np.diag(cov))
    shape = values.shape[1:]
    return a.reshape(shape), sa.reshape(shape), b.reshape(shape), sb.reshape(shape)


def as_vector(x) -> np.ndarray:
    """Flat float array of ``x``: an :class:`theory.observables.Observables` as [f, U, kernel
    diagonal, kernel blocks] (the layout of :func:`validation.observables.observables_vector`), or
    any array (e.g. the per-layer vector of :func:`validation.deep_observables.observables_vector`)."""
    if hasattr(x, "kernel_blocks"):
        return np.concatenate([np.asarray(x.outputs).ravel(), np.asarray(x.readout_moment).ravel(),
                               np.asarray(x.kernel_diagonal).ravel(), np.asarray(x.kernel_blocks).ravel()])
    return np.asarray(x, dtype=np.float64)


def compare(theory, sampled, mcse, N, *, c: float = 4.0, size: float = 1.0, theory_error=None,
            k: float = K_MCSE) -> Comparison:
    """Compare sampled observables with the theory by the rule of the module docstring.

    ``theory``, ``sampled``: :class:`~theory.observables.Observables` or flat vectors (:func:`as_vector`);
    ``mcse``: the sampled MCSE, same layout. ``N``: one width, or a list of two or more widths, in
    which case ``sampled`` and ``mcse`` are per-width lists and the rule is the 1/N extrapolation.
    ``c``, ``size``: the bias allowance c·max(1, |theory|)·size/N; ``theory_error``: ε (default 0).

    Returns a :class:`validation.results.Comparison` (``converged`` = passed, ``message`` = the rule)
    with entries {"passed", "z" (|Δ|/error per observable), "z_max", "estimate", "error", "slope" (b of
    a + b/N, or None), "ratio" and "worst" (single width: |Δ| / allowed), "criterion" (the inequality in
    words) and "rule" (the widths and the criterion)}.
    """
    tv = as_vector(theory)
    terr = np.zeros_like(tv) if theory_error is None else np.asarray(theory_error, dtype=np.float64)
    if np.ndim(N) == 0:
        widths = [int(N)]
    else:
        widths = [int(w) for w in N]
    if len(widths) >= 2:
        a, sa, b, _ = extrapolate(widths, [as_vector(s) for s in sampled], [as_vector(e) for e in mcse])
        z = np.abs(a - tv) / np.maximum(np.hypot(sa, terr), 1e-12)
        return _comparison({"passed": bool(np.all(z < k)), "z": z, "z_max": float(np.max(z)), "estimate": a,
                            "error": sa, "slope": b, "ratio": None, "worst": None,
                            "criterion": f"intercept z-scores < {k:g}",
                            "rule": f"1/N extrapolation over N = {widths}: intercept z-scores < {k:g}"})
    if np.ndim(N) != 0:
        sampled, mcse = sampled[0], mcse[0]
    mean, err = as_vector(sampled), as_vector(mcse)
    allowed = k * err + k * terr + c * np.maximum(1.0, np.abs(tv)) * size / widths[0]
    gap = np.abs(mean - tv)
    z = gap / np.maximum(err, 1e-12)
    ratio = gap / allowed
    size_text = "" if size == 1.0 else "·P"
    eps_text = "" if theory_error is None else f" + {k:g} ε"
    criterion = f"|sampled − theory| <= {k:g} MCSE{eps_text} + {c:g}·max(1, |theory|){size_text}/N"
    return _comparison({"passed": bool(np.all(gap <= allowed)), "z": z, "z_max": float(np.max(z)), "estimate": mean,
                        "error": err, "slope": None, "ratio": ratio, "worst": float(np.max(ratio)),
                        "criterion": criterion, "rule": f"single width N = {widths[0]}: {criterion}"})


def _comparison(data: dict) -> Comparison:
    return Comparison.from_dict(data, passed=data["passed"], message=data["rule"])
