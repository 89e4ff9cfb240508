"""Adaptive Genz–Malik cubature for the readout moments (the slow reference, m <= 6).

Each Gaussian component of the placement is integrated on the unit cube through
a = μ_j + L_j z, z_i = u_i/(1 − u_i²), to a relative error estimate ``rtol`` (THEORY §3).
"""
from __future__ import annotations

import math

import numpy as np

from solvers.cubature import adaptive_cubature, genz_malik_rule, _initial_partition, _region_points
from solvers.finite_p.readout_kernels import (Layout, assemble, combine, kernel_args, log_prior_norm, log_weights,
                                              weighted_rows)

__all__ = ["cubature_moments"]


def cubature_moments(prob, t, placement, rtol, hessian, max_evaluations):
    placement = placement.as_gaussian_mixture()
    m = prob.m
    lay = Layout(m, hessian)
    args = kernel_args(prob, t)
    J = len(placement.components)
    nodes = genz_malik_rule(m)[0]
    c0, h0 = _initial_partition(m, 4)
    u0 = _region_points(c0, h0, nodes)
    parts, errs, n_eval, regions, ok = [], [], 0, 0, True
    for comp in placement.components:
        logdet = float(np.sum(np.log(np.diag(comp.L))))

        def to_a(u, comp=comp, logdet=logdet):
            d = 1.0 - u * u
            z = u / d
            logjac = np.sum(np.log1p(u * u) - 2.0 * np.log(d), axis=1)
            A = np.ascontiguousarray(comp.mu[None, :] + z @ comp.L.T)
            logv = logjac + logdet + comp.log_density(A) - math.log(J) - placement.log_mixture(A)
            return A, logv

        ref = float(np.max(log_weights(*to_a(u0), *args)))

        def integrand(u, to_a=to_a, ref=ref):
            return weighted_rows(*to_a(u), ref, *args, hessian, lay.size)

        res = adaptive_cubature(integrand, m, rtol=rtol / J, max_evaluations=max_evaluations // J,
                                components=lay.controlled)
        parts.append((res.integral, ref))
        errs.append((res.error, ref))
        n_eval += res.n_evaluations
        regions += res.n_regions
        ok = ok and res.converged
    total, top = combine(parts)
    err_total = sum(e * math.exp(r - top) for e, r in errs)
    Z = total[0]
    vals = total / Z
    err = (err_total + np.abs(vals) * err_total[0]) / Z
    err[0] = err_total[0] / Z  # relative error of Z = absolute error of Φ
    log_z = top + math.log(Z) + log_prior_norm(prob)
    return assemble(prob, lay, t, vals, err, log_z, f"adaptive cubature ({regions} regions) × {placement.describe()}",
                     n_eval, ok, prob.table().error_estimate)
