"""Diagnostics of a converged deep class-block saddle point (:mod:`solvers.deep.nonlinear`): proposal
coverage (mode search), stability (Hessian of Ψ = min over conjugates of S) and delta-method
integration errors.
"""
from __future__ import annotations

import math

import numpy as np

from solvers.deep.model import DeepModel
from solvers.deep.replicates import linearised_replicates
from solvers.deep.modes import layer_modes, significant
from theory.deep_blocks import OutsideDomain, layer_integral
from theory.deep_mixture import MixtureProposal

__all__ = ["full_point", "action_gradient", "coverage", "residual_spread", "reduced_hessian", "stability",
           "integration_errors", "finish"]


def full_point(model: DeepModel, x, ev):
    """The saddle point in the coordinates of the action S: z = (t, then per hidden layer
    triu k̃_ℓ, δ̃_ℓ) and kz = (per hidden layer triu k_ℓ, δ_ℓ)."""
    t, ker = model.unpack(x)
    iu = np.triu_indices(model.m)
    conj = [np.concatenate([ev["layers"][ell].kt_in[iu], ev["layers"][ell].dt_in]) for ell in range(1, model.L)]
    kz = [np.concatenate([(R @ R.T)[iu], d]) for R, d in ker]
    return np.concatenate([t.ravel()] + conj), np.concatenate(kz)


def action_gradient(model: DeepModel, cz, kz, props, hook=None):
    """∇S in (cz, kz) (module docstring of theory.deep_blocks; symmetric matrices by their upper
    triangle, so off-diagonal derivatives count twice): every layer takes its tilt from cz and its
    input kernel from kz, so S is evaluated away from the stationarity relations.

        ∂S/∂t_cr = P_c (f + T t − Y)_cr,
        ∂S/∂k̃_cd = ½ [P_c P_d (k^new − k)_cd + δ_cd P_c (δ^new − δ)_c],  ∂S/∂δ̃_c = ½ P_c (k^new − k + δ^new − δ)_cc,
        ∂S/∂k_cd = ½ [P_c P_d (k̃^in − k̃)_cd + δ_cd P_c (δ̃^in − δ̃)_c],   ∂S/∂δ_c = ½ P_c (k̃^in − k̃ + δ̃^in − δ̃)_cc,

    with (k^new, δ^new) layer ℓ's kernel and (k̃^in, δ̃^in) the conjugate layer ℓ + 1 returns for its
    input. ``hook``: a ``condensate`` hook (:class:`solvers.deep.complementarity.Multipliers`) applied to each
    layer's result as in :meth:`solvers.deep.model.DeepModel.evaluate`; with fixed multipliers μ this is the
    gradient of the Lagrangian S + Σ_j μ_j (q_j − 1) (the layer integrals then follow ``model.truncated``)."""
    m, L, P = model.m, model.L, model.sizes
    iu = np.triu_indices(m)
    nu = len(iu[0])
    twice = np.where(iu[0] == iu[1], 1.0, 2.0)

    def sym(v):
        A = np.zeros((m, m))
        A[iu] = v
        return A + np.triu(A, 1).T

    t = cz[:model.nt].reshape(m, m)
    conj, kers = [], []
    for ell in range(L - 1):
        c = cz[model.nt + ell * (nu + m):model.nt + (ell + 1) * (nu + m)]
        conj.append((sym(c[:nu]), c[nu:]))
        k = kz[ell * (nu + m):(ell + 1) * (nu + m)]
        kers.append((sym(k[:nu]), k[nu:]))
    res = []
    chol = [(np.linalg.cholesky(k), d) for k, d in kers] if hook is not None else None
    for ell in range(1, L + 1):
        kw = {}
        if ell >= 2:
            k, d = kers[ell - 2]
            kw.update(R_in=np.linalg.cholesky(k), delta_in=d)
        if ell == L:
            kw.update(t=t, sigma_a=model.spec.sigma_a)
        else:
            kw.update(kt=conj[ell - 1][0], dt=conj[ell - 1][1])
        r = layer_integral(model.oned, P, model.sigmas[ell - 1], model.rules[ell - 1], props[ell - 1],
                           cache=model.layer_cache(ell, model.rules[ell - 1]), truncated=model.truncated, **kw)
        res.append(r if hook is None else hook(model, ell, t, chol, r, kw))
    PP = np.outer(P, P)
    gc = [(P[:, None] * (res[-1].outputs + model.T * t - model.Y)).ravel()]
    gk = []
    for ell in range(L - 1):
        k, d = kers[ell]
        kt, dt = conj[ell]
        lay, up = res[ell], res[ell + 1]
        dk, dd = lay.k - k, lay.delta - d
        gc += [0.5 * (PP * dk + np.diag(P * dd))[iu] * twice, 0.5 * P * (np.diag(dk) + dd)]
        ek, ed = up.kt_in - kt, up.dt_in - dt
        gk += [0.5 * (PP * ek + np.diag(P * ed))[iu] * twice, 0.5 * P * (np.diag(ek) + ed)]
    return np.concatenate(gc), np.concatenate(gk)


def _components(pr):
    """[(mean, chol)] of a proposal: the Gaussian itself, or the components of a mixture."""
    if isinstance(pr, MixtureProposal):
        return list(zip(pr.means, pr.chols))
    return [(pr.mean, pr.chol)]


def _judge(pr, modes, hess):
    """(max Mahalanobis distance of the modes to their nearest component, min width ratio)."""
    comps = _components(pr)
    dist = np.array([np.linalg.norm(np.linalg.solve(C, (modes - mu).T), axis=0) for mu, C in comps])
    nearest = np.argmin(dist, axis=0)
    ratios = []
    for H, k in zip(hess, nearest):
        w = np.linalg.eigvalsh(H)
        if w.max() >= 0:
            ratios.append(0.0)
            continue
        C = comps[k][1]
        # generalised eigenvalues of (mode covariance, proposal covariance): squared width ratios
        ratios.append(float(np.sqrt(np.min(np.linalg.eigvals(np.linalg.solve(C @ C.T, np.linalg.inv(-H))).real))))
    return float(np.max(np.min(dist, axis=0))), (min(ratios) if ratios else 0.0)


def coverage(model: DeepModel, x, ev, props, seed=0):
    """Check that each layer's proposal covers its tilted y-measure: local maxima of λ(y)
    (:func:`solvers.deep.modes.layer_modes`) with a Laplace mass within a factor 10³ of the largest are
    "significant"; the layer fails if a significant mode lies more than 3 standard deviations
    (Mahalanobis) from the nearest proposal component's mean, or, for Gauss–Hermite rules, if a
    significant mode is more than 10× narrower than that component in some direction (its mass would
    fall between the nodes). Returns (ok, [{"layer", "modes", "max_mahalanobis", "min_width_ratio",
    "components", "covered"}], [(modes, masses, Hessians) per layer])."""
    t, ker = model.unpack(x)
    rng = np.random.default_rng([seed, 7])
    ok, report, found = True, [], []
    for ell in range(1, model.L + 1):
        pr = props[ell - 1]
        modes, masses, hess = layer_modes(model, ell, t, ker, ev, pr, rng)
        found.append((modes, masses, hess))
        ncomp = pr.size if isinstance(pr, MixtureProposal) else 1
        if len(modes) == 0:
            report.append({"layer": ell, "modes": 0, "max_mahalanobis": float("inf"), "min_width_ratio": 0.0,
                           "components": ncomp, "covered": False})
            ok = False
            continue
        sig = significant(masses)
        r, rmin = _judge(pr, modes[sig], [h for h, s_ in zip(hess, sig) if s_])
        gh = model.rules[ell - 1].groups == 1
        bad = bool(r > 3.0 or (gh and rmin < 0.1) or rmin <= 0.0)
        ok = ok and not bad
        report.append({"layer": ell, "modes": int(sig.sum()), "max_mahalanobis": r, "min_width_ratio": rmin,
                       "components": ncomp, "covered": not bad})
    return ok, report, found


def residual_spread(model: DeepModel, x, props) -> np.ndarray:
    """The replicate standard error of each residual entry at x, std_v(r_v)/√R over the R Sobol' replicates v
    (:meth:`theory.deep_rules.Rule.group`): the resolution of the equations themselves with these proposals, below
    which a root means nothing (zeros without Sobol' layers; inf where a replicate leaves the domain)."""
    groups = max(r.groups for r in model.rules)
    if groups < 2:
        return np.zeros(model.n)
    rs = [model.safe_eval(x, props, rules=[r.group(g) if r.groups > 1 else r for r in model.rules])
          for g in range(groups)]
    if any(e is None for e in rs):
        return np.full(model.n, np.inf)
    return np.std([e["residual"] for e in rs], axis=0, ddof=1) / math.sqrt(groups)


def reduced_hessian(H, nc: int):
    """∇²Ψ = S_KK − S_KC S_CC⁻¹ S_CK from the Hessian ``H`` of S in (C, K), C the first ``nc`` coordinates,
    symmetrised. S is convex in C (log-partition functions of K̃ and t, plus (T/2)||t||²), so S_CC ⪰ 0
    exactly; its computed near-null eigenvalues are below the integration resolution (the computed H is
    not exactly symmetric: the rule differentiates through the proposal map) and can come out negative, and
    their inverse then dominates the Schur complement with the wrong sign. So S_CC enters by the magnitudes
    of its eigenvalues, and its null space (|λ| <= 1e-12 max: flat directions) by the pseudo-inverse."""
    H = 0.5 * (H + H.T)
    Hcc, Hck, Hkk = H[:nc, :nc], H[:nc, nc:], H[nc:, nc:]
    w, V = np.linalg.eigh(Hcc)
    keep = np.abs(w) > 1e-12 * np.max(np.abs(w))
    schur = Hkk - (Hck.T @ V[:, keep]) @ ((V[:, keep].T @ Hck) / np.abs(w[keep])[:, None])
    return 0.5 * (schur + schur.T)


def stability(model: DeepModel, x, ev, props):
    """Eigenvalues of ∇²Ψ = S_KK − S_KC S_CC⁻¹ S_CK (Hessian of the action S in the kernels K and the
    conjugates/field C = (t, K̃), by forward differences of :func:`action_gradient`). Ψ(K) =
    min_C S is log Z/N's variational function (module docstring); the saddle is stable iff all are
    negative. S_CC is positive semidefinite exactly and enters by the magnitudes of its eigenvalues
    (:func:`reduced_hessian`; the normcdf 32,16,16 saddle at T = 0.05 in docs/devlog.md). Empty for L = 1."""
    if model.L == 1:
        return np.zeros(0)
    cz, kz = full_point(model, x, ev)
    z0 = np.concatenate([cz, kz])
    nc = len(cz)

    def grad(z):
        return np.concatenate(action_gradient(model, z[:nc], z[nc:], props))

    try:
        with np.errstate(all="ignore"):
            g0 = grad(z0)
            H = np.empty((len(z0), len(z0)))
            for j in range(len(z0)):
                h = 1e-6 * max(1.0, abs(z0[j]))
                zp = z0.copy()
                zp[j] += h
                H[:, j] = (grad(zp) - g0) / h
    except (OutsideDomain, np.linalg.LinAlgError):
        return np.array([np.nan])
    ev = np.linalg.eigvalsh(reduced_hessian(H, nc))
    if np.any(model.sizes == 1):
        # a class with P_c = 1 has no within-class pair: k_cc and δ_c (and k̃_cc, δ̃_c) only enter through
        # their sum, a flat (gauge) direction of S; drop its (numerically zero) eigenvalue
        ev = ev[np.abs(ev) > 1e-6 * np.max(np.abs(ev))]
    return ev


def integration_errors(model: DeepModel, x, ev, J, Jo, props):
    """Delta-method integration errors of the observables and of the free energy (module docstring),
    the largest observable error per source, and how many Sobol' replicates were propagated linearly
    (:mod:`solvers.deep.replicates`: their own tilt leaves a lower layer's domain)."""
    Jp = np.linalg.pinv(J)
    base, S0 = ev["obs"], ev["action"]
    err = np.zeros_like(base)
    serr = 0.0
    sources, linearised = {}, 0

    def variant(rules=None, oned=None):
        e = model.safe_eval(x, props, rules=rules, oned=oned)
        if e is None:
            return None, None
        dx = -Jp @ e["residual"]
        return e["obs"] + Jo @ dx, e["action"]

    groups = max(r.groups for r in model.rules)
    if groups > 1:
        ests, acts = [], []
        for g in range(groups):
            rules = [r.group(g) if r.groups > 1 else r for r in model.rules]
            o, a = variant(rules=rules)
            if o is not None:
                ests.append(o)
                acts.append(a)
        if len(ests) < groups:  # a replicate's tilt leaves a lower layer's domain: propagate it linearly
            lin = linearised_replicates(model, x, ev, props)
            if lin is not None:
                linearised = groups - len(ests)
                ests = [o + Jo @ (-Jp @ r) for r, o, _ in lin]
                acts = [S0 + da for _, _, da in lin]
        if len(ests) >= 2:
            e = np.std(ests, axis=0, ddof=1) / math.sqrt(len(ests))
            serr += float(np.std(acts, ddof=1) / math.sqrt(len(acts)))
        else:
            e = np.full_like(base, np.inf)
        err += e
        sources["qmc replicates"] = float(np.max(e))
    if any(r.groups == 1 for r in model.rules):
        rules = [a if r.groups == 1 else r for r, a in zip(model.rules, model.alt_rules)]
        o, a = variant(rules=rules)
        e = np.abs(o - base) if o is not None else np.full_like(base, np.inf)
        err += e
        serr += abs(a - S0) if a is not None else np.inf
        sources["gauss-hermite order"] = float(np.max(e))
    if model.oned.kind == "smooth":
        o, a = variant(oned=model.oned.with_nz(max(8, 3 * model.oned.nz // 4)))
        e = np.abs(o - base) if o is not None else np.full_like(base, np.inf)
        err += e
        serr += abs(a - S0) if a is not None else np.inf
        sources["1-d gauss-hermite"] = float(np.max(e))
    return err, serr, sources, linearised


def finish(model, x, ev, J, Jo, props, label):
    covered, cov_report, modes = coverage(model, x, ev, props, model.opt.seed)
    if not covered:
        return {"x": x, "ev": ev, "label": label, "covered": False, "coverage": cov_report, "modes": modes,
                "props": props}
    eig = stability(model, x, ev, props)
    stable = bool(np.all(eig < 0)) if eig.size else True
    err, serr, sources, linearised = integration_errors(model, x, ev, J, Jo, props)
    return {"x": x, "ev": ev, "J": J, "Jo": Jo, "props": props, "label": label, "eig": eig, "stable": stable,
            "errors": err, "free_energy_error": serr, "error_sources": sources, "linearised_replicates": linearised, "covered": True,
            "coverage": cov_report, "modes": modes}
