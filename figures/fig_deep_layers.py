"""Coding schemes per hidden layer of deep networks, L = 3 (THEORY §5; the paper's layer-by-layer figure).

One figure per nonlinearity (linear, sigmoid (normcdf), ReLU), sampled deep networks in the
mean-field scaling on orthogonal class data with σ_a² = 1/P (quick: classes 16, 8, 8, T = 0.05,
N = 100; full: classes 32, 16, 16, T = 0.02, N = 200), chains from the prior
(:func:`figures.deep_common.deep_chain`). Columns: hidden layers ℓ = 1, 2, 3. Rows:

1. the activation kernel K_ℓ = Φ_ℓᵀΦ_ℓ/N on the training inputs (sorted by class), averaged over
   the kept states of the chain; for linear networks the deep linear mean-field theory
   (:func:`solvers.deep.linear.solve_deep_linear_classes`) in the upper triangle, sampling below;
   there is no deep nonlinear theory here, so normcdf and ReLU show sampling only;
2. activations φ(h^ℓ_iμ) of 40 neurons of layer ℓ in the last kept state, sorted by code (linear,
   normcdf) or the most active first (ReLU), with the label of
   :func:`validation.coding.analyse_population` (majority over the kept states), the top-5 %
   share (of the output in the last layer, of the activity Σ_c ρ_c |φ̄_ic| below it; both given
   for the last layer), the code robustness and the leading codes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import common, deep_common as dc
from .style import pyplot, save

__all__ = ["main", "layer_values", "SETTINGS"]

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
    fig, axes = plt.subplots(2, LAYERS, figsize=(4.0 * LAYERS, 7.4), gridspec_kw={"height_ratios": [1, 1.15]})
    name = common.DISPLAY[nl]
    theory = None
    if nl == "linear":
        theory, sol = dc.deep_linear_kernels(ch.spec, LAYERS)
    by = "active" if nl == "relu" else "code"
    for ell in range(1, LAYERS + 1):
        K = ch.kernel(ell)
        ax = axes[0, ell - 1]
        if theory is not None:
            dc.split_kernel(ax, theory[ell - 1], K, f"layer {ell}: kernel K_{ell}\ntheory (deep linear) vs sampled")
        else:
            dc.split_kernel(ax, K, K, f"layer {ell}: kernel K_{ell} (sampled)", "sampled", "sampled")
        x = ch.class_means(ell)
        a = ch.readouts[-1] if ell == LAYERS else np.ones((ch.spec.m, ch.width))
        idx = dc.order_rows(x, output_contributions(a, x, ch.spec.class_sizes), SHOW, by)
        sm = summaries[ell - 1]
        share = (f"top-{sm['top_k']} output {sm['top_share']:.2f}, activity {sm['activity_share']:.2f}"
                 if sm["output"] else f"top-{sm['top_k']} activity {sm['activity_share']:.2f}")
        dc.raster(axes[1, ell - 1], ch.activations[-1][ell - 1][idx], ch.spec.class_sizes,
                  f"layer {ell}: {sm['label_text']} ({share}, robust {sm['robustness']:.2f})\n"
                  f"codes {_codes(sm['codes'])}; {SHOW} neurons"
                  + (", most active first" if by == "active" else ", sorted by code"))
        common.log(f"  deep layers {nl} layer {ell}: {sm['label']} ({sm['label_share']:.0%} of states), "
                   f"top-share {sm['top_share']:.3f}, activity share {sm['activity_share']:.3f}, "
                   f"robust {sm['robustness']:.2f}, codes {_codes(sm['codes'], 5)}")
    f = np.diag(ch.mean_outputs())
    extra = ""
    if theory is not None:
        extra = f"; theory f_cc {', '.join(f'{v:.3f}' for v in np.diag(sol.outputs))}"
    note = ""
    if np.min(f) < 0.7:
        note = ("\nsome f_cc < 0.7: the classes are not all separated (a metastable state reached from the prior "
                "start, THEORY §7)")
    fig.suptitle(f"{name}, L = {LAYERS} hidden layers: sampled networks N = {ch.width}, classes "
                 f"{'/'.join(map(str, ch.spec.class_sizes))}, T = {ch.spec.temperature:g}, σ_a² = 1/P; "
                 f"prior start, {ch.sweeps} sweeps, {len(ch.activations)} kept states\n"
                 f"sampled mean f_cc {', '.join(f'{v:.3f}' for v in f)}{extra}; labels: majority over the kept "
                 f"states (validation.coding){note}", fontsize=9)
    return fig


def main(out_dir, quick: bool = True, *, nonlinearities=common.NONLINEARITIES, **overrides) -> list:
    """One PNG per nonlinearity, fig_deep_layers_<nonlinearity>.png. ``overrides``: any key of
    :data:`SETTINGS` (e.g. a tiny ``width`` for tests)."""
    out = Path(out_dir)
    s = _settings(quick, overrides)
    paths = []
    for nl in nonlinearities:
        common.log(f"deep layers: {nl}")
        ch = _chain(nl, s)
        summaries = [dc.layer_summary(ch, ell) for ell in range(1, LAYERS + 1)]
        paths.append(save(_figure(nl, s, ch, summaries), out / f"fig_deep_layers_{nl}.png", dpi=75))
    return paths


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(main(sys.argv[1] if len(sys.argv) > 1 else "codingschemes_out/figures", "--full" not in sys.argv))
