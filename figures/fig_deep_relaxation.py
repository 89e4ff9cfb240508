"""Deep ReLU coding question by relaxation from both sides, L = 2 (THEORY §4, §5, §7; docs/paper.md claim 12).

Data: chains of :func:`validation.deep_relaxation.relaxation_chain`, per seed one ``"prior"`` chain and one
``"planted"`` chain (one one-class outlier per class carrying the share 0.8 of its class's output) with the
same random numbers. Every ``every`` sweeps a chain records its last layer's outliers (readout norm
> 4 × median): their number n_out and their share of each correct-class output

    s_c = Σ_{i ∈ out} a_ci φ̄_ic / Σ_i a_ci φ̄_ic,

and the figure plots s̄ = (1/m) Σ_c s_c. Full mode reads the raw records written by the benchmark driver
(``benchmarks/deep_relu_relaxation.py --raw --out PATH``, one file per width: ``--from PATH ...``); quick
mode runs a small relaxation itself (:data:`QUICK`), full mode without files the driver's run itself
(:data:`FULL`).

Panels: per width N, s̄ against sweeps (log x; per chain averaged in log-spaced bins, then the mean over
chains and the band from the lowest to the highest chain), planted against prior, with the one-layer
condensate's shares s_c (THEORY §4; :data:`ONE_LAYER_SHARES`) for contrast; last panel, the finite-size
trend over the kept second half of the records: outliers per state as a fraction of N and their share
s̄, per side (mean over chains, bars from the lowest to the highest chain).
"""
from __future__ import annotations

import json
from pathlib import Path
import time

import numpy as np

from . import common
from .style import LINES, figsize, pyplot, save, write_sidecar

__all__ = ["main", "load_runs", "quick_runs", "curves", "FULL", "trend", "caption", "QUICK", "ONE_LAYER_SHARES"]

SCRIPT = "fig_deep_relaxation"
NAME = "fig_deep_relaxation.png"
KIND_COLOURS = {"planted": LINES[1], "prior": LINES[0]}
#: the one-layer condensate's share of each correct-class output at the same task (classes 32,16,16,
#: σ_a = 0.125, T = 0.05): the large-P solver's condensate, docs/paper.md claim 6 (sampled 0.773–0.876)
ONE_LAYER_SHARES = (0.775, 0.870, 0.870)
#: the quick mode's own relaxation (a fresh machine, no benchmark files)
QUICK = dict(widths=(80,), layers=2, class_sizes=(32, 16, 16), sigma_a=0.125, temperature=0.05, chains=2,
             sweeps=400, pre=100, moves=20, share=0.8, per_class=1)
#: full mode without files: the benchmark driver's defaults at the three widths of docs/paper.md claim 12
FULL = {**QUICK, "widths": (100, 200, 400), "chains": 4, "sweeps": 3000, "pre": 300}
BINS = 40
KEEP = 0.5


def _command(doc: dict, width: int, path) -> str:
    s = doc["settings"]
    return (f"PYTHONPATH=. python benchmarks/deep_relu_relaxation.py --widths {width} --layers {doc['layers']} "
            f"--class-sizes {','.join(map(str, doc['spec']['class_sizes']))} --sigma-a {doc['spec']['sigma_a']:g} "
            f"--temperature {doc['spec']['temperature']:g} --chains {doc['chains']} --sweeps {s['sweeps']} "
            f"--pre {s['pre']} --moves {s['moves']} --share {s['share']:g} --per-class {s['per_class']} "
            f"--raw --out {path}")


def load_runs(paths) -> list:
    """Per width (sorted): {"width", "settings", "command", "source", "chains": [{"kind", "seed", "rows"}]}
    from the raw JSON files of the benchmark driver (each written with ``--raw``)."""
    runs = []
    for path in paths:
        doc = json.loads(Path(path).read_text())
        for block in doc["per_width"]:
            if "chains" not in block:
                raise ValueError(f"{path}: no per-chain records (run the driver with --raw)")
            runs.append({"width": int(block["width"]), "source": str(path),
                         "settings": {**doc["spec"], "layers": doc["layers"], "chains": doc["chains"], **doc["settings"]},
                         "command": _command(doc, block["width"], path),
                         "cpu_seconds": float(sum(c["cpu_seconds"] for c in block["chains"])),
                         "chains": [{"kind": c["kind"], "seed": c["seed"], "rows": np.asarray(c["rows"], dtype=float)}
                                    for c in block["chains"]]})
    return sorted(runs, key=lambda r: r["width"])


def quick_runs(quick: bool = True, **overrides) -> list:
    """The same structure as :func:`load_runs`, from a relaxation run here (:data:`QUICK` or :data:`FULL`,
    ``overrides``)."""
    from theory.spec import ModelSpec
    from validation.deep_relaxation import relaxation_pair

    s = {**(QUICK if quick else FULL), **overrides}
    spec = ModelSpec(nonlinearity="relu", class_sizes=tuple(s["class_sizes"]), sigma_a=s["sigma_a"],
                     temperature=s["temperature"])
    kw = {k: s[k] for k in ("sweeps", "pre", "moves", "share", "per_class")}
    runs = []
    for width in s["widths"]:
        t0 = time.perf_counter()
        chains = [chain for c in range(s["chains"]) for chain in relaxation_pair(spec, width, s["layers"], 1000 * c, **kw)]
        common.log(f"deep relaxation N = {width}: {len(chains)} chains × {s['sweeps']} sweeps in "
                   f"{time.perf_counter() - t0:.1f} s")
        runs.append({"width": width, "source": "figures.fig_deep_relaxation.quick_runs",
                     "settings": {k: v for k, v in s.items() if k != "widths"}, "command": None,
                     "cpu_seconds": float(sum(c["cpu_seconds"] for c in chains)),
                     "chains": [{"kind": c["kind"], "seed": c["seed"], "rows": np.asarray(c["rows"], dtype=float)}
                                for c in chains]})
    return runs


def _rows(run, kind) -> np.ndarray:
    cs = [c["rows"] for c in run["chains"] if c["kind"] == kind]
    n = min(len(r) for r in cs)
    return np.array([r[:n] for r in cs])  # chains × records × (2 + m)


def curves(run, every: int, bins: int = BINS) -> dict:
    """{kind: {"sweeps", "mean", "low", "high"}}: s̄ per chain averaged in log-spaced bins of the records
    (record k after sweep every·k + 1), then mean and extremes over chains."""
    out = {}
    for kind in ("planted", "prior"):
        rows = _rows(run, kind)
        share = rows[..., 2:].mean(axis=-1)  # chains × records
        sweeps = every * np.arange(share.shape[1]) + 1.0
        edges = np.unique(np.geomspace(1, share.shape[1], bins + 1).astype(int))
        idx = [np.arange(a - 1, b - 1) if b > a else np.array([a - 1]) for a, b in zip(edges[:-1], edges[1:])]
        idx[-1] = np.arange(edges[-2] - 1, share.shape[1])
        per_chain = np.array([[s[i].mean() for i in idx] for s in share])
        out[kind] = {"sweeps": [float(np.exp(np.log(sweeps[i]).mean())) for i in idx],
                     "mean": per_chain.mean(axis=0).tolist(), "low": per_chain.min(axis=0).tolist(),
                     "high": per_chain.max(axis=0).tolist(), "chains": int(share.shape[0])}
    return out


def trend(runs, keep: float = KEEP) -> dict:
    """{kind: {"width", "count", "fraction", "share" (mean over chains of the kept records), and their
    "_low"/"_high" over chains}} over the last ``keep`` of each chain's records."""
    out = {}
    for kind in ("planted", "prior"):
        d: dict = {"width": []}
        for run in runs:
            rows = _rows(run, kind)
            kept = rows[:, rows.shape[1] - max(int(round(keep * rows.shape[1])), 1):]
            vals = {"count": kept[..., 0].mean(axis=1), "share": kept[..., 2:].mean(axis=(1, 2))}
            vals["fraction"] = vals["count"] / run["width"]
            d["width"].append(run["width"])
            for k, v in vals.items():
                for suffix, x in (("", v.mean()), ("_low", v.min()), ("_high", v.max())):
                    d.setdefault(k + suffix, []).append(float(x))
        out[kind] = d
    return out


def _reference(ax):
    lo, hi = min(ONE_LAYER_SHARES), max(ONE_LAYER_SHARES)
    ax.axhspan(lo, hi, color="0.85", lw=0)
    ax.text(0.97, (lo + hi) / 2, "one-layer condensate", transform=ax.get_yaxis_transform(), ha="right", va="center")


def _relaxation_panel(ax, run, cv, first: bool):
    _reference(ax)
    for kind in ("planted", "prior"):
        c = cv[kind]
        ax.fill_between(c["sweeps"], c["low"], c["high"], color=KIND_COLOURS[kind], alpha=0.25, lw=0)
        ax.plot(c["sweeps"], c["mean"], color=KIND_COLOURS[kind], lw=1.2)
    ax.set_xscale("log")
    ax.set_xlim(1, cv["prior"]["sweeps"][-1] * 1.3)
    ax.set_xticks([x for x in (1, 10, 100, 1000) if x <= ax.get_xlim()[1]])
    ax.xaxis.set_major_formatter("{x:g}")
    ax.set_ylim(0, 1)
    ax.set_xlabel("sweeps")
    ax.set_title(f"N = {run['width']}")
    if first:
        ax.set_ylabel("outliers' share of $f_{cc}$")


def _trend_panel(ax, tr):
    ax2 = ax.twinx()
    for kind in ("planted", "prior"):
        d, col = tr[kind], KIND_COLOURS[kind]
        w = np.array(d["width"], dtype=float) * (1.03 if kind == "planted" else 1 / 1.03)
        for axis, key, marker, ls in ((ax, "fraction", "o", "-"), (ax2, "share", "s", "--")):
            y = np.array(d[key])
            err = [y - np.array(d[key + "_low"]), np.array(d[key + "_high"]) - y]
            axis.errorbar(w, y, yerr=err, color=col, marker=marker, ms=3, ls=ls, lw=1, capsize=1.5)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=KIND_COLOURS[k], lw=4, alpha=0.6, label=f"{k} start") for k in ("planted", "prior")]
    handles += [Line2D([], [], color="k", marker="o", ms=3, ls="-", lw=1, label="outliers / N"),
                Line2D([], [], color="k", marker="s", ms=3, ls="--", lw=1, label="their share")]
    ax.legend(handles=handles, loc="upper center", labelspacing=0.2, handlelength=2.2)
    ax.set_xscale("log")
    ws = tr["prior"]["width"]
    ax.set_xlim(min(ws) / 1.3, max(ws) * 1.3)
    ax.set_xticks(ws, [str(x) for x in ws])
    ax.minorticks_off()
    ax.set_ylim(0, 0.05)
    ax2.set_ylim(0, 1)
    ax.set_xlabel("width N")
    ax.set_ylabel("outliers / N")
    ax2.set_ylabel("their share of $f_{cc}$")
    ax.set_title("finite-size trend")


def main(out_dir, quick: bool = True, *, paths=None, **overrides) -> list:
    """fig_deep_relaxation.png of the benchmark driver's raw files ``paths`` (full mode), or of
    :func:`quick_runs` (``overrides``: keys of :data:`QUICK`)."""
    plt = pyplot()
    t0 = time.perf_counter()
    if paths:
        runs, quick = load_runs(paths), False
    else:
        runs = quick_runs(quick, **overrides)
    from validation.deep_relaxation import RECORD_EVERY

    every = RECORD_EVERY  # the driver's and quick_runs' records (neither changes relaxation_pair's default)
    n = len(runs)
    fig, axes = plt.subplots(1, n + 1, figsize=figsize(2, 2.3), gridspec_kw={"width_ratios": [1] * n + [0.9]})
    numbers = {"curves": {}, "trend": trend(runs), "every": every, "keep": KEEP,
               "chain_cpu_seconds": {str(r["width"]): round(r["cpu_seconds"], 1) for r in runs},
               "one_layer_shares": list(ONE_LAYER_SHARES)}
    for k, run in enumerate(runs):
        cv = curves(run, every)
        numbers["curves"][str(run["width"])] = cv
        _relaxation_panel(axes[k], run, cv, k == 0)
        if k:
            axes[k].tick_params(labelleft=False)
    _trend_panel(axes[-1], numbers["trend"])
    png = save(fig, Path(out_dir) / NAME)
    s = {k: v for k, v in runs[0]["settings"].items() if k != "sweeps"}
    write_sidecar(png, SCRIPT, quick, {**s, "widths": [r["width"] for r in runs],
                                       "sweeps_per_width": [r["settings"]["sweeps"] for r in runs]}, numbers,
                  sources=[r["source"] for r in runs], commands=[r["command"] for r in runs],
                  build_seconds=round(time.perf_counter() - t0, 1))
    return [png]


def caption(side: dict) -> str:
    """The gallery caption of the sidecar of this figure."""
    st, nb = side["settings"], side["numbers"]
    tr = nb["trend"]
    sides = "; ".join(
        f"{kind}: " + ", ".join(f"N = {w}: {c:.1f} outliers ({100 * f:.1f} % of N), share {s:.2f}"
                                for w, c, f, s in zip(tr[kind]["width"], tr[kind]["count"], tr[kind]["fraction"],
                                                      tr[kind]["share"]))
        for kind in ("planted", "prior"))
    return (f"Deep ReLU, L = {st['layers']}: is the last hidden layer sparse? Relaxation from both sides (classes "
            f"{'/'.join(map(str, st['class_sizes']))}, σ_a = {st['sigma_a']:g}, T = {st['temperature']:g}; "
            f"{st['chains']} seeds per width, each a prior-start chain and a planted chain, one one-class outlier "
            f"per class carrying {st['share']:g} of its class's output, {st['moves']} last-layer pair rotations per "
            f"sweep; {'/'.join(map(str, st['sweeps_per_width']))} sweeps at N = {'/'.join(map(str, st['widths']))}). "
            f"Left: the outliers' (readout > 4 × median) mean share of the correct-class outputs against sweeps, "
            f"mean over chains in log-spaced bins, band from the lowest to the highest chain; grey: the one-layer "
            f"condensate's shares {min(nb['one_layer_shares']):.3f}–{max(nb['one_layer_shares']):.3f}. Right: over "
            f"the second half of the records, " + sides + ". Planted minus prior share there: "
            + ", ".join(f"{p - q:+.2f}" for p, q in zip(tr["planted"]["share"], tr["prior"]["share"]))
            + f" at N = {'/'.join(map(str, tr['prior']['width']))} (docs/paper.md claim 12). " + _made(side))


def _made(side: dict) -> str:
    """Where the records come from: the driver's runs (their commands are in the sidecar) or this script."""
    if any(side.get("commands") or []):
        return ("Drawn from the raw records of benchmarks/deep_relu_relaxation.py (one run per width; the "
                "commands are in the sidecar; the seconds below are the drawing's; the chains took "
                + ", ".join(f"{v / 60:.0f}" for v in side["numbers"]["chain_cpu_seconds"].values())
                + " CPU minutes).")
    return "Records from the script's own relaxation (figures.fig_deep_relaxation.quick_runs)."


def _cli(argv=None) -> list:  # pragma: no cover
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir", nargs="?", default="codingschemes_out/figures")
    p.add_argument("--from", dest="paths", nargs="+", default=None,
                   help="raw JSON files of benchmarks/deep_relu_relaxation.py --raw (full mode)")
    a = p.parse_args(argv)
    return main(a.out_dir, not a.paths, paths=a.paths)


if __name__ == "__main__":  # pragma: no cover
    print(_cli())
