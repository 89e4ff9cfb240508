"""Drift per hidden layer during sampling, L = 2 (THEORY §7: the paper's claim that linear networks drift
in every layer, ReLU networks do not, and sigmoidal networks do not in the last hidden layer but do
below it).

Task: classes 32, 16, 16, T = 0.02, σ_a² = 1/64 (the paper's regime), two hidden layers, mean-field
scaling; one chain per nonlinearity from the prior (:func:`validation.deep.run_deep_chain`, step
adapted during burn-in, then frozen; quick: N = 100, 300 + 900 sweeps; full: N = 200,
1000 + 2500 sweeps), snapshots of every layer's class-mean activations v_i(s) ∈ R³ every 10
sweeps after burn-in. Rows: linear, sigmoid (normcdf), ReLU. Columns:

1.–2. the patterns v_i of 30 neurons of hidden layer 1 and 2 (columns) at the first snapshot s₀
   (top three rows) and at s₀ + Δ_max (bottom three rows), the same neurons in the same order
   (sorted by code at s₀; ReLU: the most active at s₀ first);
3. the drift D_ℓ(Δ) = mean_i ||v_i(s+Δ) − v_i(s)||² / mean_{i≠j} ||v_i(s) − v_j(s)||², averaged over
   s (:func:`validation.deep.drift_curve`): 0 = every neuron keeps its pattern, ≈ 1 = patterns
   as different as those of reshuffled neurons; per layer, and for ReLU's last layer also over
   its most active neurons, the top 5 % by pattern norm ||v_i(s₀)|| (the "few neurons" of the
   sparse label), and over the rest (bulk). The layer curves are those of
   :func:`validation.deep.measure_drift`, computed here from the chain's snapshots so that the
   patterns can be drawn; measure_drift's "active" set (norm > 4 × median,
   :func:`validation.deep.active_mask`) is also computed ("active", NaN with fewer than 3 such
   neurons), but the figure uses the top 5 %, which is never empty.
"""
from __future__ import annotations

from pathlib import Path
import time

import numpy as np

from . import common, deep_common as dc
from .style import figsize, heatmap, pyplot, save, write_sidecar

__all__ = ["main", "drift_values", "SETTINGS", "caption"]

SCRIPT = "fig_deep_drift"

NAME = "fig_deep_drift.png"
LAYERS = 2
SHOW = 30
SETTINGS = {
    True: dict(class_sizes=(32, 16, 16), temperature=0.02, width=100, sweeps=1200, burn=300, every=10,
               lags=(1, 2, 4, 8, 15, 30, 60)),
    False: dict(class_sizes=(32, 16, 16), temperature=0.02, width=200, sweeps=3500, burn=1000, every=10,
                lags=(1, 3, 10, 20, 50, 100)),
}
_CACHE: dict = {}


def _settings(quick, overrides) -> dict:
    s = dict(SETTINGS[bool(quick)])
    s.update({k: v for k, v in overrides.items() if v is not None})
    return s


def drift_values(quick: bool = True, nonlinearities=common.NONLINEARITIES, **overrides) -> dict:
    """{nonlinearity: {"lags_sweeps", "step_size", "acceptance", "seconds", "snapshots" (per layer
    S × N × m), "outputs" (mean f_cc), "layers": [{"layer", "all", "top", "top_bulk", "n_top", "active",
    "bulk", "n_active"}]}} (cached; "top": the top 5 % by pattern norm at s₀, "active": norm > 4 × median)."""
    import time

    from validation.deep import active_mask, drift_curve, run_deep_chain

    s = _settings(quick, overrides)
    out = {}
    for nl in nonlinearities:
        key = (nl, tuple(sorted((k, str(v)) for k, v in s.items())))
        if key not in _CACHE:
            spec = dc.deep_spec(nl, s["class_sizes"], s["temperature"])
            t0 = time.perf_counter()
            r = run_deep_chain(spec, s["width"], LAYERS, s["sweeps"], s["burn"], seed=1, snapshot_every=s["every"],
                               codes_every=0)
            lags = [lag for lag in s["lags"] if lag < len(r["snapshots"][0])]
            layers = []
            for ell, X in enumerate(r["snapshots"], start=1):
                act = active_mask(X[0])
                top = _top_mask(X[0])
                layers.append({"layer": ell, "all": drift_curve(X, lags), "top": drift_curve(X, lags, top),
                               "top_bulk": drift_curve(X, lags, ~top), "n_top": int(top.sum()),
                               "active": drift_curve(X, lags, act) if act.sum() >= 3 else [float("nan")] * len(lags),
                               "bulk": drift_curve(X, lags, ~act), "n_active": int(act.sum())})
            _CACHE[key] = {"lags_sweeps": [lag * s["every"] for lag in lags], "step_size": r["step_size"],
                           "acceptance": r["acceptance"], "seconds": time.perf_counter() - t0,
                           "snapshots": r["snapshots"], "layers": layers, "outputs": np.diag(
                               r["draws"][:, :spec.m**2].mean(axis=0).reshape(spec.m, spec.m))}
            d = _CACHE[key]
            common.log(f"deep drift chain {nl} L = {LAYERS} N = {s['width']}: {s['sweeps']} sweeps in "
                       f"{d['seconds']:.1f} s (acceptance {d['acceptance']:.2f}, step {d['step_size']:.3g}); D at "
                       f"{d['lags_sweeps'][-1]} sweeps: "
                       + ", ".join(f"layer {lay['layer']} {lay['all'][-1]:.3f}" for lay in layers)
                       + f"; last-layer top-{layers[-1]['n_top']} {layers[-1]['top'][-1]:.3f}, rest "
                       f"{layers[-1]['top_bulk'][-1]:.3f}; active ({layers[-1]['n_active']}) "
                       f"{layers[-1]['active'][-1]:.3f}, bulk {layers[-1]['bulk'][-1]:.3f}")
        out[nl] = _CACHE[key]
    return out


def _top_mask(patterns, fraction: float = 0.05) -> np.ndarray:
    """The ⌈fraction·N⌉ neurons with the largest pattern norm (at least 2)."""
    nn = np.linalg.norm(np.asarray(patterns, dtype=np.float64), axis=1)
    k = max(2, int(np.ceil(fraction * len(nn))))
    mask = np.zeros(len(nn), dtype=bool)
    mask[np.argsort(-nn)[:k]] = True
    return mask


def _patterns(ax, x0, x1, idx, title, xlabel, labels):
    heatmap(ax, np.vstack([x0[idx].T, np.full((1, len(idx)), np.nan), x1[idx].T]))
    m = x0.shape[1]
    ax.axhline(m, color="k", lw=1.5)
    ax.set_yticks([(m - 1) / 2, m + 1 + (m - 1) / 2], labels)
    ax.set_xlabel(xlabel)
    ax.set_title(title)


def _curves(ax, d, nl):
    for ell in range(1, LAYERS + 1):
        ax.plot(d["lags_sweeps"], d["layers"][ell - 1]["all"], "o-", ms=2.5, color=f"C{ell - 1}",
                label=f"layer {ell}")
    last = d["layers"][-1]
    if nl == "relu":
        ax.plot(d["lags_sweeps"], last["top"], "s--", ms=2.5, color="C3", label=f"layer {LAYERS}, top {last['n_top']}")
        ax.plot(d["lags_sweeps"], last["top_bulk"], "^:", ms=2.5, color="0.4", label=f"layer {LAYERS}, rest")
    ax.axhline(1.0, color="k", ls="-", lw=0.5)
    ax.text(0.03, 1.0, "reshuffled", transform=ax.get_yaxis_transform(), va="bottom")
    ax.set_xscale("log")
    ax.set_yscale("log")
    curves = np.array([lay["all"] for lay in d["layers"]] + ([last["top"]] if nl == "relu" else []))
    lo = np.nanmin(curves[curves > 0]) if np.any(curves > 0) else 1e-3
    ax.set_ylim(max(lo / 2, 1e-5), 2.0)
    ax.set_xlabel("lag Δ (sweeps)")
    ax.set_ylabel("drift D(Δ)")
    ax.set_title("drift per layer")
    ax.legend(loc="lower right", labelspacing=0.2)


def main(out_dir, quick: bool = True, *, nonlinearities=common.NONLINEARITIES, **overrides) -> list:
    """fig_deep_drift.png. ``overrides``: any key of :data:`SETTINGS` (e.g. a tiny ``width``)."""
    plt = pyplot()
    out = Path(out_dir)
    t0 = time.perf_counter()
    s = _settings(quick, overrides)
    n = len(nonlinearities)
    fig, axes = plt.subplots(n, 3, figsize=figsize(2, 2.0 * n + 0.2), squeeze=False,
                             gridspec_kw={"width_ratios": [1.3, 1.3, 1.0]})
    values = drift_values(quick, nonlinearities, **overrides)
    fig.suptitle(f"L = {LAYERS}; {dc.SINGLE_CHAIN}")
    numbers = {}
    for row, nl in zip(axes, nonlinearities):
        common.log(f"deep drift: {nl}")
        d = values[nl]
        lag, dsw = len(d["lags_sweeps"]) and s["lags"][len(d["lags_sweeps"]) - 1], d["lags_sweeps"][-1]
        for ell in range(1, LAYERS + 1):
            X = d["snapshots"][ell - 1]
            x0, x1 = X[0], X[lag]
            idx = dc.order_rows(x0, np.linalg.norm(x0, axis=1), SHOW, "active" if nl == "relu" else "code")
            _patterns(row[ell - 1], x0, x1, idx, f"layer {ell}{' (last)' if ell == LAYERS else ''}: patterns",
                      "neuron" + (" (most active first)" if nl == "relu" else " (by code)"), ["s₀", f"s₀+{dsw}"])
        row[0].set_ylabel(common.DISPLAY[nl], fontsize=8)
        _curves(row[2], d, nl)
        numbers[nl] = {"lags_sweeps": d["lags_sweeps"], "acceptance": d["acceptance"], "step_size": d["step_size"],
                       "f_cc": list(d["outputs"]), "layers": d["layers"],
                       "drift_last": [lay["all"][-1] for lay in d["layers"]]}
    png = save(fig, out / NAME)
    write_sidecar(png, SCRIPT, quick, {**s, "layers": LAYERS, "start": "random", "seed": 1, "shown_neurons": SHOW},
                  numbers, build_seconds=round(time.perf_counter() - t0, 1))
    return [png]


def caption(side: dict) -> str:
    """The gallery caption of the sidecar of this figure."""
    st, nb = side["settings"], side["numbers"]
    rows = []
    for nl, v in nb.items():
        lay = v["layers"]
        text = (f"{common.DISPLAY[nl]}: D = {', '.join(f'{x:.3g}' for x in v['drift_last'])} (layers 1, 2), mean f_cc "
                f"{', '.join(f'{x:.2f}' for x in v['f_cc'])}")
        if nl == "relu":
            text += f", last layer's top {lay[-1]['n_top']} {lay[-1]['top'][-1]:.3g} and the rest {lay[-1]['top_bulk'][-1]:.3g}"
        rows.append(text)
    lag = next(iter(nb.values()))["lags_sweeps"][-1]
    return (f"Drift per hidden layer during sampling, L = {st['layers']} (classes "
            f"{'/'.join(map(str, st['class_sizes']))}, T = {st['temperature']:g}, σ_a² = 1/P; N = {st['width']}, "
            f"prior start, {st['burn']} burn-in + {st['sweeps'] - st['burn']} sweeps, snapshots every {st['every']}). "
            f"Left and middle: the class-mean activations of {st['shown_neurons']} neurons of each layer at the first "
            f"snapshot s₀ and {lag} sweeps later; right: the drift D(Δ) per layer (0: every neuron keeps its pattern, "
            f"1: as different as reshuffled neurons). At Δ = {lag} sweeps: " + "; ".join(rows) + ". One chain per "
            f"network: its convergence is not diagnosed (no R̂).")


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(main(sys.argv[1] if len(sys.argv) > 1 else "codingschemes_out/figures", "--full" not in sys.argv))
