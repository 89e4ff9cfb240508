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
   for normcdf in full mode the deep class-block theory (:func:`solvers.deep.nonlinear.solve_deep_nonlinear`)
   where it converges, for ReLU sampling only (its deep theory needs a condensate);
4. activations of 30 rich neurons, sorted by code (linear, normcdf) or most active first (ReLU),
   with the coding-scheme label and top-5 % output share of the sampled network.

Block contrast of a kernel: (mean within-class off-diagonal − mean between-class entry) / mean
diagonal entry (0 for the lazy kernel on orthogonal inputs, 1 for a perfect class-block kernel).
Activation rows are scaled to their largest |φ| so that codes are visible in both scalings.
"""
from __future__ import annotations

from pathlib import Path
import time

import numpy as np

from . import common, deep_common as dc
from .style import figsize, pyplot, save, write_sidecar

__all__ = ["main", "lazy_rich_values", "SETTINGS", "caption"]

SCRIPT = "fig_deep_lazy_rich"

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


_block_contrast = common.block_contrast


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


#: nonlinearities whose deep class-block theory is drawn in full mode (ReLU's needs a condensate, issue 17)
DEEP_THEORY = ("normcdf", "erf")


def _deep_theory(spec, v: dict):
    """Solve the deep nonlinear theory; store its contrast, f_cc and status in ``v`` (the sidecar) and its
    last-layer kernel under ``v["_K_theory"]``; ``None`` when it did not converge."""
    ks, sol = dc.deep_nonlinear_kernels(spec, LAYERS)
    v["deep_theory"] = {"converged": bool(sol.converged), "status": sol.status,
                        "error_estimate": float(sol.error_estimate)}
    if ks is None:
        return None
    v["rich_theory_contrast"] = _block_contrast(ks[-1], spec.class_sizes)
    v["deep_theory"]["f_cc"] = np.diag(sol.outputs).tolist()
    v["_K_theory"] = ks[-1]
    return ks[-1]


def _rows(ch, by):
    from validation.coding import output_contributions

    x = ch.class_means(LAYERS)
    idx = dc.order_rows(x, output_contributions(ch.readouts[-1], x, ch.spec.class_sizes), SHOW, by)
    return ch.activations[-1][LAYERS - 1][idx]


def main(out_dir, quick: bool = True, *, nonlinearities=common.NONLINEARITIES, **overrides) -> list:
    """fig_deep_lazy_vs_rich.png. ``overrides``: any key of :data:`SETTINGS` (e.g. a tiny ``width``)."""
    plt = pyplot()
    out = Path(out_dir)
    t0 = time.perf_counter()
    s = _settings(quick, overrides)
    n = len(nonlinearities)
    fig, axes = plt.subplots(n, 4, figsize=figsize(2, 2.1 * n + 0.2), squeeze=False,
                             gridspec_kw={"width_ratios": [1.1, 1, 1.1, 1]})
    P = sum(s["class_sizes"])
    vals = lazy_rich_values(quick, nonlinearities, **overrides)
    fig.suptitle(f"L = {LAYERS}, last hidden layer; {dc.SINGLE_CHAIN}")
    for row, nl in zip(axes, nonlinearities):
        common.log(f"deep lazy vs rich: {nl}")
        lazy, rich = _chains(nl, s)
        v = vals[nl]
        dc.split_kernel(row[0], dc.deep_nngp_kernels(nl, P, LAYERS)[-1], lazy.kernel(LAYERS), "lazy kernel K_2",
                        "NNGP theory")
        row[0].set_ylabel(common.DISPLAY[nl], fontsize=8)
        dc.raster(row[1], _rows(lazy, "code"), s["class_sizes"], f"lazy: {v['lazy']['label']}", normalise=True)
        if nl == "linear":
            K_th, _ = dc.deep_linear_kernels(rich.spec, LAYERS)
            v["rich_theory_contrast"] = _block_contrast(K_th[-1], s["class_sizes"])
            dc.split_kernel(row[2], K_th[-1], rich.kernel(LAYERS), "rich kernel K_2", "deep linear theory")
        elif not quick and nl in DEEP_THEORY and _deep_theory(rich.spec, v) is not None:
            dc.split_kernel(row[2], v.pop("_K_theory"), rich.kernel(LAYERS), "rich kernel K_2",
                            "deep theory")
        else:
            K = rich.kernel(LAYERS)
            dc.split_kernel(row[2], K, K, "rich kernel K_2 (sampled)", "sampled", "sampled")
        by = "active" if nl == "relu" else "code"
        dc.raster(row[3], _rows(rich, by), s["class_sizes"], f"rich: {v['rich']['label']}"
                  + (" (most active)" if by == "active" else ""), normalise=True)
        for ax in (row[1], row[3]):
            ax.set_yticks([])
        common.log(f"  {nl}: K_2 block contrast lazy theory {v['lazy_theory_contrast']:.3f}, lazy sampled "
                   f"{v['lazy']['contrast']:.3f}, rich sampled {v['rich']['contrast']:.3f}; lazy {v['lazy']['label']} "
                   f"(top {v['lazy']['top_share']:.2f}), rich {v['rich']['label']} (top {v['rich']['top_share']:.2f}, "
                   f"robust {v['rich']['robustness']:.2f})")
    png = save(fig, out / NAME)
    lazy, rich = _chains(nonlinearities[0], s)
    write_sidecar(png, SCRIPT, quick, {**s, "layers": LAYERS, "start": "random", "seed": 0, "sweeps": rich.sweeps,
                                       "kept_states": len(rich.activations), "shown_neurons": SHOW},
                  vals, build_seconds=round(time.perf_counter() - t0, 1))
    return [png]


def caption(side: dict) -> str:
    """The gallery caption of the sidecar of this figure."""
    st, nb = side["settings"], side["numbers"]
    rows = "; ".join(f"{common.DISPLAY[nl]}: lazy {v['lazy_theory_contrast']:.2f} (NNGP) / {v['lazy']['contrast']:.2f} "
                     f"(sampled), rich {v['rich']['contrast']:.2f} (sampled)"
                     + (f" / {v['rich_theory_contrast']:.2f} (deep {'linear ' if nl == 'linear' else ''}theory)"
                        if "rich_theory_contrast" in v else "") + f", mean f_cc lazy {v['lazy']['f']:.2f}, rich {v['rich']['f']:.2f}"
                     for nl, v in nb.items())
    return (f"Lazy (standard scaling, σ_a = 1) against rich (mean-field, σ_a² = 1/P) networks with L = {st['layers']} "
            f"hidden layers, last hidden layer, binary task (classes {'/'.join(map(str, st['class_sizes']))}, T = "
            f"{st['temperature']:g}). Sampled N = {st['width']} from the prior, {st['sweeps']} sweeps, kernels "
            f"averaged over {st['kept_states']} kept states; activation rows ({st['shown_neurons']} neurons) scaled to "
            f"their largest |φ|. Theory: the NNGP kernel for lazy networks, the deep linear theory for rich linear "
            f"ones{_deep_theory_text(nb)}; the other rich kernels are sampled only. Block contrast of K_2 (0: none, "
            f"1: class blocks): {rows}. One chain per panel: its convergence is not diagnosed (no R̂).")


def _deep_theory_text(nb: dict) -> str:
    """The caption's words on the deep nonlinear theory of the rich panels (full mode)."""
    parts = []
    for nl, v in nb.items():
        th = v.get("deep_theory")
        if th is None:
            continue
        parts.append(f"{common.DISPLAY[nl]}: " + (
            f"drawn (error estimate {th['error_estimate']:.1e}, f_cc {', '.join(f'{x:.3f}' for x in th['f_cc'])})"
            if th["converged"] else f"not drawn, the solve did not converge ({th['status']})"))
    return ", and the deep class-block theory (THEORY §5) for rich " + "; ".join(parts) if parts else ""


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(main(sys.argv[1] if len(sys.argv) > 1 else "codingschemes_out/figures", "--full" not in sys.argv))
