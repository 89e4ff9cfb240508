"""Homotopy in the nonlinearity's shape for the deep class-block equations (THEORY §5; the equations:
:mod:`solvers.deep.model`).

The single-neuron nonlinearity is deformed from the identity to φ,

    φ_σ(h) = (1 − σ) h + σ φ(h),   σ: 0 → 1,

so that σ = 0 is the deep LINEAR network, whose class-block saddle is known in closed form
(:func:`solvers.deep.linear_classes.solve_deep_linear_classes`: t = diag τ, k_ℓ, δ_ℓ = α_ℓ), and σ = 1 is
the problem asked for. For φ = relu, φ_σ is the leaky ReLU with slope 1 − σ below 0. The 1-D tilted
integrals of φ_σ are those of :mod:`theory.deep_tilted` with ``OneD.shape = σ`` (one compiled kernel
with σ as an argument; φ_σ grows like (1 − σ) h, so every σ < 1 carries the linear network's domain).

Along σ: natural-parameter continuation (Allgower & Georg, Introduction to Numerical Continuation
Methods, §2.1). Each step solves the residual r_σ(x) = 0 of the σ-shaped equations by the deep solver's
Newton (:func:`solvers.deep.newton.solve_at`, one moment-matching round of the proposals per step),
started from the secant predictor

    x_pred = x_k + (x_k − x_{k−1}) Δσ_{k+1} / Δσ_k.

Step control: a step that converges in at most ``easy`` Newton iterations lets the next one grow by 3/2
(at most ``max_step``); a failed step is first retried once from the last solved point with proposals
re-made there (``remix``: the search passes mixtures at the modes its Gaussians miss), then halved, down to
``min_step``, where the path stops and the last σ reached is reported. With ``every_step`` the proposals are
re-made after every solved step too (the search re-makes multi-mode layers as mixtures while the residual's
replicate error exceeds its error bound): a single Gaussian over several modes can pass the coverage check yet
resolve the equations only to 0.1–0.4 (deep three-layer sigmoids), so the path it follows drifts from the true
one. At σ = 1 the point and its proposals are handed to the caller (the search of :mod:`solvers.deep.nonlinear`
checks coverage, mixtures and errors as for every start).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from solvers.deep.linear_classes import solve_deep_linear_classes
from solvers.deep.newton import solve_at

__all__ = ["ShapePath", "shaped_model", "linear_point", "follow_shape"]


@dataclass
class ShapePath:
    """Where the shape homotopy got: ``reached`` (the largest σ solved, −1 if not even σ = 0), ``x`` there and
    the ``proposals`` it solves the equations with, the solved ``shapes`` in order, and ``message``. ``done`` when σ = 1 was reached."""

    reached: float
    x: np.ndarray | None
    proposals: list | None
    shapes: list
    message: str

    @property
    def done(self) -> bool:
        return self.reached >= 1.0


def shaped_model(model, shape: float):
    """``model`` (a :class:`solvers.deep.model.DeepModel`) with φ replaced by φ_σ, σ = ``shape``: the same
    rules, sizes and priors (its layer caches are shared; they hold the base φ's values only)."""
    out = copy.copy(model)
    out.oned = model.oned.shaped(shape)
    out.exact = False
    return out


def linear_point(model):
    """The packed unknowns of ``model`` at the deep linear network's class-block saddle (same spec, priors
    and T, φ = identity)."""
    lin = solve_deep_linear_classes(model.spec.replace(nonlinearity="linear"), model.L, model.sigmas)
    return model.pack(np.diag(lin.tau), [(lin.blocks[ell], np.full(model.m, lin.alphas[ell]))
                                         for ell in range(model.L - 1)])


def follow_shape(model, x0, props, log, label="shape homotopy", first_step=0.125, max_step=0.25,
                 min_step=1.0 / 512, easy=5, tol=1e-8, maxiter=40, target=1.0, remix=None,
                 every_step=False, start=0.0, on_step=None, deform=None) -> ShapePath:
    """Follow the σ-shaped equations of ``model`` from x0 (a point near the σ = ``start`` root, e.g.
    :func:`linear_point` at σ = 0) with proposals ``props`` to σ = ``target`` (1: φ itself; module docstring).
    ``log``: the solve's :class:`solvers.deep.newton.SolveLog`. ``remix(shaped model, x, proposals)``
    (optional): proposals for the last solved point when a step fails (e.g. mixtures at the modes that its
    proposals miss), tried once per point before the step is halved; with ``every_step`` also after every
    solved step, whose point is then re-solved with the new proposals (kept if Newton converges).
    ``deform(model, σ)``: the equations along the path (default :func:`shaped_model`; any one-parameter family of
    equations whose σ = ``target`` member is the problem asked for, e.g. :mod:`solvers.deep.sigmoid_homotopy`)."""
    at = deform or shaped_model

    def step(shape, x, props, rounds):
        return solve_at(at(model, shape), x, props, log, f"{label}, σ = {shape:.4g}", rounds=rounds,
                        tol=tol, maxiter=maxiter, jacobians=False)

    def covered(shape, out, used):
        """(``out``, the proposals its point solves with) re-solved with ``remix``'s proposals where they differ
        (the coverage check at every step); unchanged if they do not or Newton fails with them."""
        if not every_step or remix is None:
            return out, used
        new = remix(at(model, shape), out[0], used)
        if all(a is b for a, b in zip(new, used)):
            return out, used
        log.append(f"{label}: mixture proposals at σ = {shape:.4g} (coverage check of the solved step)")
        again = step(shape, out[0], new, 1)
        return (again, new) if again is not None else (out, used)

    out = step(start, x0, props, None)
    if out is None:
        return ShapePath(-1.0, None, None, [], f"{label}: Newton failed at σ = {start:.4g} (the start)")
    x, props, shapes, path = out[0], out[4], [start], [(start, out[0])]
    used = props  # the proposals x solves with (each step returns them moment-matched to its solution)
    if on_step is not None:
        on_step(at(model, start), x, props)
    ds, remixed = first_step, False
    while shapes[-1] < target:
        sk = min(target, shapes[-1] + ds)
        pred = x
        if len(path) >= 2:
            (a, xa), (b, xb) = path[-2], path[-1]
            pred = xb + (xb - xa) * ((sk - b) / (b - a))
        nit = log.iterations
        out = step(sk, pred, props, 1)
        if out is None and pred is not x:
            out = step(sk, x, props, 1)
        if out is None and remix is not None and not remixed:
            remixed, new = True, remix(at(model, shapes[-1]), x, props)
            if any(a is not b for a, b in zip(new, props)):
                log.append(f"{label}: mixture proposals at σ = {shapes[-1]:.4g}")
                props = new
                continue
        if out is None:
            ds /= 2.0
            if ds < min_step:
                return ShapePath(shapes[-1], x, used, shapes,
                                 f"{label}: stopped at σ = {shapes[-1]:.4g} (Newton failed at σ = {sk:.4g})")
            continue
        out, used = covered(sk, out, props)
        if on_step is not None:
            on_step(at(model, sk), out[0], used)
        x, props, remixed = out[0], out[4], False
        shapes.append(sk)
        path.append((sk, x))
        if log.iterations - nit <= easy:
            ds = min(1.5 * ds, max_step)
    return ShapePath(shapes[-1], x, used, shapes, f"{label}: reached σ = {shapes[-1]:.4g} in {len(shapes) - 1} steps")
