"""Generalised elliptical slice sampling of many tilted Gaussians at once (the large-P branch form's sampler).

Chain c targets

    π_c(z) ∝ N(z; 0, I) exp(g_c·φ(L z)),   h = L z,   σ_1²K0 = LLᵀ,

many tilt vectors g_c at once (chains grouped by tilt), each tilt group with its own Gaussian
reference N(μ_k, S_k) fitted between runs (Murray, Adams & MacKay 2010; Nishihara, Murray & Adams
2014; exact for any reference), plus independence Metropolis–Hastings moves from the reference.
"""
from __future__ import annotations

import numpy as np

from solvers.data.elliptical_slice import elliptical_slice_update, fit_gaussian_references
from theory.nonlinearities import get_nonlinearity

__all__ = ["TiltedChains"]


class TiltedChains:
    """Generalised elliptical slice sampling of many tilted Gaussians at once.

    Chain c targets π_c(z) ∝ N(z; 0, I) exp(g_c·φ(L z)) (z ∈ R^r, h = L z, σ_1²K0 = LLᵀ). Chains
    come in consecutive blocks of ``per`` chains sharing a tilt (a "tilt group"); each tilt group k
    has a Gaussian reference N(μ_k, S_k) (prior at first, :meth:`adapt` fits it to samples between
    runs): the ellipse is drawn around μ_k with ν ~ N(0, S_k) and the slice uses π_c/N(·; μ_k, S_k),
    which is exact for any S_k ≻ 0. Every operation is vectorised over chains; the only Python loop
    is over the tilt groups in the reference products (a few dozen at most).
    """

    def __init__(self, L: np.ndarray, nonlinearity: str, tilts: np.ndarray, per: int, rng: np.random.Generator):
        self.L = np.ascontiguousarray(L, dtype=np.float64)
        self.phi = get_nonlinearity(nonlinearity)
        self.rng = rng
        self.per = int(per)
        r = self.L.shape[1]
        self.r = r
        self.set_tilts(tilts, reset=True)
        self.evaluations = 0
        self.shrinks = 0
        self.tried = self.accepted = 0

    @property
    def k(self) -> int:
        return self.G.shape[0]

    def set_tilts(self, tilts: np.ndarray, reset: bool = False, Z: np.ndarray | None = None, refs=None):
        """Tilt vectors (k × P), one per tilt group; ``reset`` draws fresh prior states and prior
        references, ``Z``/``refs`` warm-start them (refs = (μ (k×r), Ls (k×r×r), Dprec (k×r×r)))."""
        G = np.atleast_2d(np.asarray(tilts, dtype=np.float64))
        k, r = G.shape[0], self.r
        self.G = G
        self.Gc = np.repeat(G, self.per, axis=0)
        if reset or Z is None:
            self.Z = self.rng.standard_normal((k * self.per, r))
        else:
            self.Z = np.array(Z, dtype=np.float64)
        if refs is None:
            self.mu = np.zeros((k, r))
            self.Ls = np.repeat(np.eye(r)[None], k, axis=0)
            self.Dprec = np.zeros((k, r, r))
        else:
            self.mu, self.Ls, self.Dprec = (np.array(x, dtype=np.float64) for x in refs)
        self.ll = self._loglik(self.Z)

    def refs(self):
        return self.mu.copy(), self.Ls.copy(), self.Dprec.copy()

    def _blockwise(self, X: np.ndarray, M: np.ndarray, transpose: bool) -> np.ndarray:
        """Row block k of X times M_k (or M_kᵀ): one matrix product per tilt group."""
        Xb = X.reshape(self.k, self.per, self.r)
        return np.einsum("kcj,kij->kci" if transpose else "kcj,kji->kci", Xb, M).reshape(-1, self.r)

    def _loglik(self, Z: np.ndarray) -> np.ndarray:
        """g_c·φ(L z) − |z|²/2 − log N(z; μ_k, S_k) + const, per chain."""
        self.evaluations = getattr(self, "evaluations", 0) + Z.shape[0]
        D = Z - np.repeat(self.mu, self.per, axis=0)
        tilt = np.einsum("ij,ij->i", self.Gc, self.phi(Z @ self.L.T))
        return (tilt - 0.5 * np.einsum("ij,ij->i", Z, Z) + 0.5 * np.einsum("ij,ij->i", D, D)
                + 0.5 * np.einsum("ij,ij->i", self._blockwise(D, self.Dprec, False), D))

    def step(self):
        """One elliptical slice update of every chain (leaves each π_c invariant)."""
        rng = self.rng
        C = self.Z.shape[0]
        mu = np.repeat(self.mu, self.per, axis=0)
        nu = self._blockwise(rng.standard_normal((C, self.r)), self.Ls, True)
        self.Z, self.ll, rejections = elliptical_slice_update(rng, self.Z, self.ll, mu, nu, self._loglik_rows,
                                                              max_rounds=100)
        self.shrinks += rejections

    def independence_step(self):
        """Independence Metropolis–Hastings with each group's reference N(μ_k, S_k) as proposal:
        accept z' with min(1, e^{ℓ(z') − ℓ(z)}), ℓ = log π_c − log N(·; μ_k, S_k) (the slice
        likelihood). Exact for any reference; it moves chains between separated modes of a
        multimodal p(h | g) (odd φ on correlated inputs) once the fitted reference covers them."""
        rng = self.rng
        C = self.Z.shape[0]
        prop = np.repeat(self.mu, self.per, axis=0) + self._blockwise(rng.standard_normal((C, self.r)), self.Ls, True)
        lp = self._loglik(prop)
        acc = np.log(rng.random(C)) < lp - self.ll
        self.tried += C
        self.accepted += int(acc.sum())
        self.Z[acc], self.ll[acc] = prop[acc], lp[acc]

    def _loglik_rows(self, Zr: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """_loglik for a subset of chains ``rows``."""
        self.evaluations += Zr.shape[0]
        grp = rows // self.per
        D = Zr - self.mu[grp]
        tilt = np.einsum("ij,ij->i", self.Gc[rows], self.phi(Zr @ self.L.T))
        Dq = np.einsum("ij,ijk->ik", D, self.Dprec[grp]) if rows.size < 4 * self.per else \
            self._blockwise_rows(D, grp)
        return tilt - 0.5 * np.einsum("ij,ij->i", Zr, Zr) + 0.5 * np.einsum("ij,ij->i", D, D) \
            + 0.5 * np.einsum("ij,ij->i", Dq, D)

    def _blockwise_rows(self, D, grp):
        out = np.empty_like(D)
        for k in np.unique(grp):  # loop over tilt groups only
            sel = grp == k
            out[sel] = D[sel] @ self.Dprec[k]
        return out

    def run(self, n_steps: int, keep: int) -> np.ndarray:
        """``n_steps`` updates; returns the last ``keep`` states thinned evenly over the second
        half of the run, shape (keep, chains, r)."""
        burn = n_steps // 2
        thin = max(1, (n_steps - burn) // keep)
        out = []
        for s in range(n_steps):
            self.step()
            self.independence_step()
            if s >= burn and (s - burn) % thin == thin - 1 and len(out) < keep:
                out.append(self.Z.copy())
        while len(out) < keep:
            self.step()
            self.independence_step()
            out.append(self.Z.copy())
        return np.array(out)

    def adapt(self, Zs: np.ndarray, shrink: float = 0.05):
        """Reference N(μ_k, S_k) per tilt group from samples (keep × chains × r), shrunk toward I."""
        keep = Zs.shape[0]
        Zg = Zs.reshape(keep, self.k, self.per, self.r).transpose(1, 0, 2, 3).reshape(self.k, -1, self.r)
        self.mu, self.Ls, self.Dprec, _ = fit_gaussian_references(Zg, shrink)
        self.ll = self._loglik(self.Z)

    def features(self, Zs: np.ndarray) -> np.ndarray:
        """φ(h) of samples (keep × chains × r) as (k, groups-ready samples, P): tilt group first,
        rows ordered (chain within the group, draw) so that contiguous row blocks are chain groups."""
        keep = Zs.shape[0]
        H = Zs @ self.L.T  # keep × C × P
        H = H.reshape(keep, self.k, self.per, -1).transpose(1, 2, 0, 3).reshape(self.k, self.per * keep, -1)
        return H
