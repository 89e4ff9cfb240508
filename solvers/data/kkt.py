"""KKT system of the large-P branch equations on explicit inputs, on fixed per-branch samples (THEORY §4).

    E1 = Σ_γ P_γ m_γ a_γᵀ + T t − Y,   E2_γ = tᵀm_γ/P − a_γ/σ̄_a² (= ∇_a S),
    E3_γ = S_γ − λ,                    E4 = Σ_γ P_γ − 1,

with m_γ, C_γ, Λ_γ at g_γ = t a_γ from the importance-weighted sample of branch γ (common random
numbers between samplings) and the sampled Jacobian.
"""
from __future__ import annotations

import numpy as np

__all__ = ["BranchSystem"]


class BranchSystem:
    """KKT residual and Jacobian of the branch equations on fixed per-branch samples.

    Unknowns x = (vec t (P·m, index μ·m + r), a_γ (n·m), P_γ (n), λ). Residual blocks:
    E1 = Σ P_γ m_γ a_γᵀ + T t − Y; E2_γ = tᵀm_γ/P − a_γ/σ̄_a² (= ∇_a S); E3_γ = S_γ − λ;
    E4 = Σ P_γ − 1. m_γ, C_γ, Λ_γ at g_γ = t a_γ come from the importance-weighted sample of
    branch γ (base tilt g⁰_γ, Λ_γ(g⁰_γ) by thermodynamic integration)."""

    def __init__(self, spec, samples, lam0):
        self.spec = spec
        self.P, self.m = spec.P, spec.m
        self.n = len(samples)
        self.sb2 = spec.sigma_a**2 * spec.P
        self.T = spec.temperature
        self.Y = spec.targets()
        self.samples = samples
        self.lam0 = np.asarray(lam0, dtype=np.float64)

    def pack(self, t, A, pi, lam):
        return np.concatenate([t.ravel(), A.ravel(), pi, [lam]])

    def unpack(self, x):
        P, m, n = self.P, self.m, self.n
        t = x[:P * m].reshape(P, m)
        A = x[P * m:P * m + n * m].reshape(n, m)
        pi = x[P * m + n * m:P * m + n * m + n]
        return t, A, pi, x[-1]

    def branch_stats(self, t, A, need_cov=True):
        """(m_γ (n × P), C_γ list, Λ_γ (n,), min ESS fraction)."""
        ms, Cs, lams, essf = [], [], [], 1.0
        for smp, a, l0 in zip(self.samples, A, self.lam0):  # loop over branches
            dl, w, ef = smp.reweight(t @ a)
            ms.append(smp.mean(w))
            Cs.append(smp.cov(w) if need_cov else None)
            lams.append(l0 + dl)
            essf = min(essf, ef)
        return np.array(ms), Cs, np.array(lams), essf

    def residual(self, x, stats=None):
        t, A, pi, lam = self.unpack(x)
        M, _, Lam, essf = stats if stats is not None else self.branch_stats(t, A, need_cov=False)
        E1 = np.einsum("g,gp,gr->pr", pi, M, A) + self.T * t - self.Y
        E2 = (M @ t) / self.P - A / self.sb2
        E3 = Lam / self.P - np.sum(A * A, axis=1) / (2 * self.sb2) - lam
        E4 = np.sum(pi) - 1.0
        return np.concatenate([E1.ravel(), E2.ravel(), E3, [E4]]), essf

    def jacobian(self, x, stats):
        P, m, n, sb2 = self.P, self.m, self.n, self.sb2
        t, A, pi, _ = self.unpack(x)
        M, Cs, _, _ = stats
        N1, N2 = P * m, n * m
        N = N1 + N2 + n + 1
        J = np.zeros((N, N))
        Im = np.eye(m)
        J1 = self.T * np.eye(N1)
        for g in range(n):  # loop over branches; each block is a dense product
            a, Mg, C = A[g], M[g], Cs[g]
            J1 += pi[g] * np.kron(C, np.outer(a, a))
            Ct = C @ t  # P × m
            # ∂E1_{μr}/∂a_s = π (m_μ δ_rs + a_r (C t)_{μs})
            blk = pi[g] * (np.einsum("p,rs->prs", Mg, Im) + np.einsum("r,ps->prs", a, Ct))
            J[:N1, N1 + g * m:N1 + (g + 1) * m] = blk.reshape(N1, m)
            J[:N1, N1 + N2 + g] = np.outer(Mg, a).ravel()
            # E2_γ = tᵀm/P − a/σ̄²: ∂/∂t_{νs} = (δ_rs m_ν + (tᵀC)_{rν} a_s)/P
            d2t = (np.einsum("rs,v->rvs", Im, Mg) + np.einsum("rv,s->rvs", Ct.T, a)) / P
            J[N1 + g * m:N1 + (g + 1) * m, :N1] = d2t.reshape(m, N1)
            J[N1 + g * m:N1 + (g + 1) * m, N1 + g * m:N1 + (g + 1) * m] = t.T @ Ct / P - Im / sb2
            # E3_γ = Λ/P − |a|²/2σ̄² − λ
            J[N1 + N2 + g, :N1] = np.outer(Mg, a).ravel() / P
            J[N1 + N2 + g, N1 + g * m:N1 + (g + 1) * m] = t.T @ Mg / P - a / sb2
            J[N1 + N2 + g, -1] = -1.0
        J[:N1, :N1] = J1
        J[-1, N1 + N2:N1 + N2 + n] = 1.0
        return J

    def merit(self, R):
        P, m, n = self.P, self.m, self.n
        N1, N2 = P * m, n * m
        return float(np.mean(R[:N1] ** 2) + np.mean((self.sb2 * R[N1:N1 + N2]) ** 2)
                     + np.mean(R[N1 + N2:] ** 2))
