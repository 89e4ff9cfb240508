"""Branch search of the large-P branch form: the local maxima of S(a; t) on explicit inputs (THEORY §4).

    S(a; t) = −||a||²/(2σ̄_a²) + Λ(t a)/P.

The minorise–maximise fixed point a ← (σ̄_a²/P) tᵀ m(t a) (S ≥ its linearisation in the convex Λ,
so S never decreases) runs from sign-pattern starts in {−1, 0, 1}^m (m ≤ 4) plus random starts,
all sampled in one batch; end points are merged by the shared :func:`solvers.mode_search.group`
(modulo a → −a for odd φ); a local maximum needs
∇²S = −I/σ̄_a² + tᵀC t/P ≺ 0; heights by thermodynamic integration (:mod:`.thermodynamic`).

This is not the shared Newton search (:func:`solvers.mode_search.ascend`) because here Λ, and so
S with its gradient and Hessian, is itself a Monte Carlo estimate: a deterministic Newton step
with a trust test on noisy S values cannot converge, while the fixed point averages the noise.
"""
from __future__ import annotations

from dataclasses import dataclass
import itertools

import numpy as np

from solvers.data.chains import prior_factor
from solvers.data.options import GeneralBranchOptions
from solvers.data.thermodynamic import sample_tilts, thermodynamic_lambda
from solvers.mode_search import group
from theory.nonlinearities import get_nonlinearity
from theory.spec import ModelSpec

__all__ = ["Maximum", "find_maxima"]


@dataclass
class Maximum:
    """A local maximum of S(·; t): a, S(a) with error, Hessian eigenvalues of S."""

    a: np.ndarray
    value: float
    value_error: float
    hessian_eigenvalues: np.ndarray
    gradient: float


def _sign_starts(m: int, odd: bool, scale: float, n_random: int, rng) -> np.ndarray:
    """Starts for the search: {−1, 0, 1}^m \\ {0} (m ≤ 4; modulo ± for odd φ) times ``scale``,
    plus ``n_random`` Gaussian starts."""
    starts = []
    if m <= 4:
        for p in itertools.product((-1, 0, 1), repeat=m):
            v = np.array(p, dtype=np.float64)
            if not v.any():
                continue
            if odd and v[np.flatnonzero(v)[0]] < 0:
                continue
            starts.append(scale * v)
    else:
        eye = np.eye(m)
        starts += [scale * e for e in eye] + [-scale * e for e in eye] + [scale * np.ones(m)]
    starts += [scale * rng.standard_normal(m) for _ in range(n_random)]
    return np.array(starts)


def find_maxima(spec: ModelSpec, t: np.ndarray, opt: GeneralBranchOptions | None = None, starts=None,
                rng=None, L=None, K0=None) -> list:
    """Local maxima of S(a; t) (:mod:`solvers.data.maxima`), best first, with TI heights and errors.

    Fixed point a ← (σ̄_a²/P) tᵀ m(t a) from all starts at once (``opt.chains`` chains each,
    warm-started between iterations), stopped when every start moves less than 1e-3·(1 + |a|);
    end points within 0.05·(1 + |a|) (modulo sign for odd φ) are merged; a point with a
    Hessian eigenvalue ≥ 0 (within 3 MCSE) is not a maximum and is dropped."""
    opt = opt or GeneralBranchOptions()
    rng = rng or np.random.default_rng(opt.seed)
    nl = get_nonlinearity(spec.nonlinearity)
    K0 = spec.input_kernel() if K0 is None else K0
    L = prior_factor(K0, spec.sigma_w) if L is None else L
    P = spec.P
    sb2 = spec.sigma_a**2 * P
    t = np.asarray(t, dtype=np.float64)
    A = _sign_starts(spec.m, nl.odd, np.sqrt(sb2), opt.search_starts, rng) if starts is None else \
        np.atleast_2d(np.asarray(starts, dtype=np.float64))
    sopt = GeneralBranchOptions(chains=max(opt.chains // 2, 16), groups=4, sweeps=10, keep=5,
                                nodes=opt.nodes, seed=opt.seed)
    state = None
    for it in range(opt.search_iters):  # fixed-point iterations (each one batched sampling)
        smp, state = sample_tilts(L, spec.nonlinearity, A @ t.T, sopt, rng, 10 if it else 20, state=state)
        Anew = np.array([sb2 / P * (t.T @ s.mean()) for s in smp])
        done = np.max(np.linalg.norm(Anew - A, axis=1) / (1.0 + np.linalg.norm(A, axis=1))) < 1e-3
        A = Anew
        if done:
            break
    found, _ = group(A, rel=0.05, odd=nl.odd)  # merge (modulo sign for odd φ)
    reps = A[found].copy()
    if nl.odd:  # representatives with the first non-zero entry positive
        for i, a in enumerate(reps):
            nz = np.flatnonzero(np.abs(a) > 1e-9)
            if nz.size and a[nz[0]] < 0:
                reps[i] = -a
    lam, lerr, smp, _ = thermodynamic_lambda(L, spec.nonlinearity, K0, spec.sigma_w, reps @ t.T, opt, rng,
                                             opt.sweeps)
    out = []
    for a, la, le, s in zip(reps, lam, lerr, smp):  # loop over the few maxima
        C = s.cov()
        Hs = -np.eye(spec.m) / sb2 + t.T @ C @ t / P
        ev = np.linalg.eigvalsh(Hs)
        grad = float(np.linalg.norm(-a / sb2 + t.T @ s.mean() / P))
        out.append(Maximum(a=a, value=float(-a @ a / (2 * sb2) + la / P), value_error=float(le / P),
                           hessian_eigenvalues=ev, gradient=grad))
    out = [mx for mx in out if mx.hessian_eigenvalues[-1] < 0.0]
    out.sort(key=lambda mx: -mx.value)
    return out
