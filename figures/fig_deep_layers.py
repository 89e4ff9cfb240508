"""Coding schemes per hidden layer of deep networks, L = 3 (THEORY §5; the paper's layer-by-layer figure).

One figure per nonlinearity (linear, sigmoid (normcdf), ReLU), sampled deep networks in the
mean-field scaling on orthogonal class data with σ_a² = 1/P (quick: classes 16, 8, 8, T = 0.05,
N = 100; full: classes 32, 16, 16, T = 0.02, N = 200), chains from the prior
(:func:`figures.deep_common.deep_chain`). Columns: hidden layers ℓ = 1, 2, 3. Rows:

1. the activation kernel K_ℓ = Φ_ℓᵀΦ_ℓ/N on the training inputs (sorted by class), averaged over
   the kept states of the chain; for linear networks the deep linear mean-field theory
   (:func:`solvers.deep.linear.solve_deep_linear_classes`) in the upper triangle, sampling below;
   the deep nonlinear theory is not drawn (at L = 3 it does not converge), so normcdf and ReLU show
   sampling only;
2. activations φ(h^ℓ_iμ) of 40 neurons of layer ℓ in the last kept state, sorted by code (linear,
   normcdf) or the most active first (ReLU), with the label of
   :func:`validation.coding.analyse_population` (majority over the kept states), the top-5 %
   share (of the output in the last layer, of the activity Σ_c ρ_c |φ̄_ic| below it; both given
   for the last layer), the code robustness and the leading codes (in the sidecar
   ``fig_deep_layers_<φ>.json`` and the generated caption).

A chain from the prior can stay in a metastable state in which two classes are not separated
(some mean f_cc < :data:`SEPARATED`): the figure's title and caption then say that it shows this
metastable state, not the equilibrium of the deep theory (THEORY §7).
"""
from __future__ import annotations

from pathlib import Path
import time

import numpy as np

from . import common, deep_common as dc
from .style import figsize, pyplot, save, write_sidecar

__all__ = ["main", "layer_values", "SETTINGS", "caption", "SEPARATED"]

SCRIPT = "fig_deep_layers"
#: a class counts as separated when its mean correct-class output f_cc reaches this value
SEPARATED = 0.7

LAYERS = 3
SHOW = 40
SETTINGS = {
    True: dict(class_sizes=(16, 8, 8), temperature=0.05, width=100, burn=500, states=10, every=50),
    False: dict(class_sizes=(32, 16, 16), temperature=0.02, width=200, burn=2000, states=20, every=100),
}


def _settings(quick, overrides) -> dict:
    s = dict(SETTINGS[bool(quick)])
    s.update({k: v for k, v in overrides.items() if v is not None})
    return s


def _chain(nl, s):
    spec = dc.deep_spec(nl, s["class_sizes"], s["temperature"])
    return dc.deep_chain(spec, s["width"], LAYERS, s["burn"], s["states"], s["every"])


def layer_values(quick: bool = True, nonlinearities=common.NONLINEARITIES, **overrides) -> dict:
    """{nonlinearity: [per-layer summary (:func:`figures.deep_common.layer_summary`)]}."""
    s = _settings(quick, overrides)
    return {nl: [dc.layer_summary(_chain(nl, s), ell) for ell in range(1, LAYERS + 1)] for nl in nonlinearities}


def _codes(codes: dict, n: int = 3) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in list(codes.items())[:n])


def _figure(nl, s, ch, summaries):
    from validation.coding import output_contributions

    plt = pyplot()
    fig, axes = plt.subplots(2, LAYERS, figsize=figsize(2, 5.0), gridspec_kw={"height_ratios": [1, 1.15]})
    name = common.DISPLAY[nl]
    theory = None
    if nl == "linear":
        theory, sol = dc.deep_linear_kernels(ch.spec, LAYERS)
    by = "active" if nl == "relu" else "code"
    for ell in range(1, LAYERS + 1):
        K = ch.kernel(ell)
        ax = axes[0, ell - 1]
        if theory is not None:
            dc.split_kernel(ax, theory[ell - 1], K, f"layer {ell}: kernel", "deep linear theory")
        else:
            dc.split_kernel(ax, K, K, f"layer {ell}: kernel (sampled)", "sampled", "sampled")
        x = ch.class_means(ell)
        a = ch.readouts[-1] if ell == LAYERS else np.ones((ch.spec.m, ch.width))
        idx = dc.order_rows(x, output_contributions(a, x, ch.spec.class_sizes), SHOW, by)
        sm = summaries[ell - 1]
        dc.raster(axes[1, ell - 1], ch.activations[-1][ell - 1][idx], ch.spec.class_sizes,
                  f"layer {ell}: {sm['label_text']}")
        axes[1, ell - 1].set_ylabel("neuron" + (" (most active first)" if by == "active" else " (by code)"))
        common.log(f"  deep layers {nl} layer {ell}: {sm['label']} ({sm['label_share']:.0%} of states), "
                   f"top-share {sm['top_share']:.3f}, activity share {sm['activity_share']:.3f}, "
                   f"robust {sm['robustness']:.2f}, codes {_codes(sm['codes'], 5)}")
    f = np.diag(ch.mean_outputs())
    metastable = bool(np.min(f) < SEPARATED)
    fig.suptitle(f"{name}, L = {LAYERS}" + (": metastable state (classes merged), not the equilibrium"
                                            if metastable else "") + f"; {dc.SINGLE_CHAIN}",
                 color="#D55E00" if metastable else "k")
    numbers = {"f_cc_sampled": f.tolist(), "metastable": metastable,
               "f_cc_theory": np.diag(sol.outputs).tolist() if theory is not None else None,
               "layers": [{k: v for k, v in sm.items()} for sm in summaries]}
    return fig, numbers


def main(out_dir, quick: bool = True, *, nonlinearities=common.NONLINEARITIES, **overrides) -> list:
    """One PNG per nonlinearity, fig_deep_layers_<nonlinearity>.png. ``overrides``: any key of
    :data:`SETTINGS` (e.g. a tiny ``width`` for tests)."""
    out = Path(out_dir)
    s = _settings(quick, overrides)
    paths = []
    for nl in nonlinearities:
        common.log(f"deep layers: {nl}")
        t0 = time.perf_counter()
        ch = _chain(nl, s)
        summaries = [dc.layer_summary(ch, ell) for ell in range(1, LAYERS + 1)]
        fig, numbers = _figure(nl, s, ch, summaries)
        png = save(fig, out / f"fig_deep_layers_{nl}.png")
        write_sidecar(png, SCRIPT, quick, {**s, "nonlinearity": nl, "layers": LAYERS, "sigma_a2": "1/P",
                                           "start": "random", "seed": 0, "sweeps": ch.sweeps,
                                           "kept_states": len(ch.activations), "acceptance": ch.acceptance,
                                           "step_size": ch.step_size, "shown_neurons": SHOW},
                      numbers, build_seconds=round(time.perf_counter() - t0, 1))
        paths.append(png)
    return paths


def caption(side: dict) -> str:
    """The gallery caption of one deep-layers sidecar."""
    st, nb = side["settings"], side["numbers"]
    name = common.DISPLAY[st["nonlinearity"]]
    layers = "; ".join(f"layer {lay['layer']}: {lay['label_text']}, top-{lay['top_k']} "
                       f"{'output' if lay['output'] else 'activity'} share {lay['top_share']:.2f}, code robustness "
                       f"{lay['robustness']:.2f}" for lay in nb["layers"])
    theory = ("Upper triangles: the deep linear mean-field theory (f_cc "
              f"{', '.join(f'{v:.3f}' for v in nb['f_cc_theory'])}). " if nb.get("f_cc_theory") else
              "The deep nonlinear theory is not drawn: kernels and activations are sampled only. ")
    meta = (f"Some classes are not separated (mean f_cc {', '.join(f'{v:.2f}' for v in nb['f_cc_sampled'])}, "
            f"below {SEPARATED}): the chain sits in a metastable state with merged classes, reached from the prior "
            f"start; it is not the equilibrium, and its labels are not a result about {name} networks."
            if nb["metastable"] else
            f"Every class is separated (mean f_cc {', '.join(f'{v:.2f}' for v in nb['f_cc_sampled'])}).")
    return (f"{name} networks with L = {st['layers']} hidden layers, sampled in the mean-field scaling (N = "
            f"{st['width']}, classes {'/'.join(map(str, st['class_sizes']))}, T = {st['temperature']:g}, σ_a² = 1/P, "
            f"prior start, {st['sweeps']} sweeps of which {st['burn']} burn-in, {st['kept_states']} kept states). "
            f"Top: each layer's kernel; bottom: activations of {st['shown_neurons']} neurons of the last state. "
            f"{theory}Labels (majority over the kept states): {layers}. {meta} One chain: its convergence is not "
            f"diagnosed (no R̂).")


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(main(sys.argv[1] if len(sys.argv) > 1 else "codingschemes_out/figures", "--full" not in sys.argv))
