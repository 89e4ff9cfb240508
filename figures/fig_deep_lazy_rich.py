"""Lazy against non-lazy (rich) deep networks, L = 2, on a binary task (the paper's Fig. 1; THEORY §5, §6).

Binary task on orthogonal inputs (quick: classes 16, 16, N = 100; full: classes 32, 32, N = 200),
T = 0.02, σ_ℓ = 1, two hidden layers. Lazy: standard scaling (γ = 1/2, β = 1/T, σ_a = 1; the
``scaling="standard"`` of :class:`validation.deep.DeepNetwork`, from the ``Scaling`` mixin of
:mod:`validation.networks`). Rich: mean-field scaling (γ = 1, β = N/T, σ_a² = 1/P). Both sampled
from the prior (:func:`figures.deep_common.deep_chain`). Rows: linear, sigmoid (normcdf), ReLU.
Columns, all for the last hidden layer ℓ = 2:

1. the lazy kernel K_2: the NNGP kernel of the prior composed over two layers (THEORY §6,
   :func:`figures.deep_common.deep_nngp_kernels`) in the upper triangle, the sampled network's
   kernel (mean over kept states) below;
2. activations of 30 lazy neurons (sorted by code) on all training inputs (sorted by class);
3. the rich kernel K_2: for linear the deep linear mean-field theory
   (:func:`solvers.deep.linear.solve_deep_linear_classes`) above the diagonal and sampling below,
   for normcdf and ReLU sampling only (no deep nonlinear theory here);
4. activations of 30 rich neurons, sorted by code (linear, normcdf) or most active first (ReLU),
   with the coding-scheme label and top-5 % output share of the sampled network.

Block contrast of a kernel: (mean within-class off-diagonal − mean between-class entry) / mean
diagonal entry (0 for the lazy kernel on orthogonal inputs, 1 for a perfect class-block kernel).
Activation rows are scaled to their largest |φ| so that codes are visible in both scalings.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import common, deep_common as dc
from .style import pyplot, save

__all__ = ["main", "lazy_rich_values", "SETTINGS"]

NAME = "fig_deep_lazy_vs_rich.png"
LAYERS = 2
SHOW = 30
SETTINGS = {
    True: dict(class_sizes=(16, 16), temperature=0.02, width=100, burn=300, states=6, every=50),
    False: dict(class_sizes=(32, 32), temperature=0.02, width=200, burn=1500, states=15, every=100),
}


def _settings(quick, overrides) -> dict:
    s = dict(SETTINGS[bool(quick)])
    s.update({k: v for k, v in overrides.items() if v is not None})
    return s


def _chains(nl, s):
    lazy = dc.deep_chain(dc.deep_spec(nl, s["class_sizes"], s["temperature"], lazy=True), s["width"], LAYERS,
                         s["burn"], s["states"], s["every"], scaling="standard")
    rich = dc.deep_chain(dc.deep_spec(nl, s["class_sizes"], s["temperature"]), s["width"], LAYERS, s["burn"],
                         s["states"], s["every"])
    return lazy, rich


def _block_contrast(K, class_sizes) -> float:
    """(mean within-class off-diagonal − mean between-class) / mean diagonal of a kernel."""
    labels = np.repeat(np.arange(len(class_sizes)), class_sizes)
    same = labels[:, None] == labels[None, :]
    off = ~np.eye(len(K), dtype=bool)
    return float((K[same & off].mean() - K[~same].mean()) / np.mean(np.diag(K)))


def lazy_rich_values(quick: bool = True, nonlinearities=common.NONLINEARITIES, **overrides) -> dict:
    """{nonlinearity: {"lazy"/"rich": {"contrast": block contrast of the sampled K_2, "label",
    "top_share", "robustness"}, "lazy_theory_contrast"}}."""
    s = _settings(quick, overrides)
    out = {}
    for nl in nonlinearities:
        lazy, rich = _chains(nl, s)
        P = sum(s["class_sizes"])
        out[nl] = {"lazy_theory_contrast": _block_contrast(dc.deep_nngp_kernels(nl, P, LAYERS)[-1], s["class_sizes"])}
        for key, ch in (("lazy", lazy), ("rich", rich)):
            sm = dc.layer_summary(ch, LAYERS)
            out[nl][key] = {"contrast": _block_contrast(ch.kernel(LAYERS), s["class_sizes"]), "label": sm["label"],
                            "top_share": sm["top_share"], "robustness": sm["robustness"],
                            "f": float(np.mean(np.diag(ch.mean_outputs())))}
    return out


def _rows(ch, by):
    from validation.coding import output_contributions

    x = ch.class_means(LAYERS)
    idx = dc.order_rows(x, output_contributions(ch.readouts[-1], x, ch.spec.class_sizes), SHOW, by)
    return ch.activations[-1][LAYERS - 1][idx]


def main(out_dir, quick: bool = True, *, nonlinearities=common.NONLINEARITIES, **overrides) -> list:
    """fig_deep_lazy_vs_rich.png. ``overrides``: any key of :data:`SETTINGS` (e.g. a tiny ``width``)."""
    plt = pyplot()
    out = Path(out_dir)
    s = _settings(quick, overrides)
    n = len(nonlinearities)
    fig, axes = plt.subplots(n, 4, figsize=(12.5, 2.7 * n + 0.9), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1.2, 1, 1.2]})
    P = sum(s["class_sizes"])
    vals = lazy_rich_values(quick, nonlinearities, **overrides)
    for row, nl in zip(axes, nonlinearities):
        common.log(f"deep lazy vs rich: {nl}")
        lazy, rich = _chains(nl, s)
        name = common.DISPLAY[nl]
        v = vals[nl]
        K_lazy = dc.deep_nngp_kernels(nl, P, LAYERS)[-1]
        dc.split_kernel(row[0], K_lazy, lazy.kernel(LAYERS), f"{name}: lazy K_2\ncontrast: NNGP "
                        f"{v['lazy_theory_contrast']:.2f}, sampled {v['lazy']['contrast']:.2f}", "NNGP theory")
        sm = dc.layer_summary(lazy, LAYERS)
        dc.raster(row[1], _rows(lazy, "code"), s["class_sizes"],
                  f"{name}: lazy layer-2 activations (sampled)\n{sm['label_text']}, top-{sm['top_k']} output "
                  f"{sm['top_share']:.2f}; mean f_cc {v['lazy']['f']:.2f}", normalise=True)
        if nl == "linear":
            K_th, _ = dc.deep_linear_kernels(rich.spec, LAYERS)
            dc.split_kernel(row[2], K_th[-1], rich.kernel(LAYERS), f"{name}: rich K_2\n"
                            f"contrast: theory {_block_contrast(K_th[-1], s['class_sizes']):.2f}, sampled "
                            f"{v['rich']['contrast']:.2f}", "deep linear theory")
        else:
            K = rich.kernel(LAYERS)
            dc.split_kernel(row[2], K, K, f"{name}: rich K_2\ncontrast: sampled "
                            f"{v['rich']['contrast']:.2f}", "sampled", "sampled")
        sm = dc.layer_summary(rich, LAYERS)
        by = "active" if nl == "relu" else "code"
        dc.raster(row[3], _rows(rich, by), s["class_sizes"],
                  f"{name}: rich layer-2 activations (sampled{', most active' if by == 'active' else ''})\n"
                  f"{sm['label_text']}, top-{sm['top_k']} output {sm['top_share']:.2f}; mean f_cc {v['rich']['f']:.2f}",
                  normalise=True)
        common.log(f"  {nl}: K_2 block contrast lazy theory {v['lazy_theory_contrast']:.3f}, lazy sampled "
                   f"{v['lazy']['contrast']:.3f}, rich sampled {v['rich']['contrast']:.3f}; lazy {v['lazy']['label']} "
                   f"(top {v['lazy']['top_share']:.2f}), rich {v['rich']['label']} (top {v['rich']['top_share']:.2f}, "
                   f"robust {v['rich']['robustness']:.2f})")
    lazy, rich = _chains(nonlinearities[0], s)
    fig.suptitle(f"Lazy (γ = 1/2, σ_a = 1) vs rich (γ = 1, σ_a² = 1/P) networks with L = 2 hidden layers, "
                 f"last hidden layer; classes {'/'.join(map(str, s['class_sizes']))}, T = {s['temperature']:g}\n"
                 f"sampled N = {s['width']} from the prior, {rich.sweeps} sweeps, kernels averaged over "
                 f"{len(rich.activations)} states; activation rows scaled to their max |φ|", fontsize=9)
    return [save(fig, out / NAME, dpi=70)]


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(main(sys.argv[1] if len(sys.argv) > 1 else "codingschemes_out/figures", "--full" not in sys.argv))
