"""Fig. 6 analogue: generalization on digits for linear, sigmoidal and ReLU networks.

One row per nonlinearity (linear, normcdf, ReLU), scikit-learn digits 0/1/2 (offline), T = 0.5,
σ_1 = σ_a = 1, one hidden layer. Columns:

1. activations φ(h*) on the test inputs of 30 neurons drawn from the theory's single-neuron
   measure p_t(a, h) (h* | h Gaussian, THEORY §2), test inputs sorted by class, most active first;
2. the same for the 30 most active neurons (largest mean φ on the test inputs) of one sampled
   network of width N (mean-field scaling), chosen among all N: for ReLU these are the few outliers
   that carry the output;
3. the theory's posterior-averaged kernel E_t[φ(h*) φ(h*')] on the test inputs;
4. the mean predictor of output 0 on the test inputs: theory, GP (NNGP, THEORY §6) and sampling;
5. the per-class error of the mean predictor (bars) and the Bayes error, which adds the
   posterior variance Σ_r Var f_r(x*) (markers): zero for the N = ∞ theory, finite for the GP
   and for the sampled networks at width N.

Everything comes from :func:`validation.generalization.generalization_report`, the engine of
``codingschemes generalize``; its sampled networks are run here by the same
:func:`validation.generalization.sample_generalization` call with the same seeds, asking for the
activations of all N neurons so that the most active can be shown. Sampling whose split-R̂ exceeds
:data:`validation.diagnostics.RHAT_TARGET` is marked "not converged" in the panel title, the legend
and the caption. Quick mode: 15 training and 15 test inputs per class, N = 60, short chains;
full mode: 30 training inputs per class, all remaining test inputs, N = 200, four chains whose
length is set per nonlinearity (ReLU, with its few outlier neurons, mixes slowest). The reports are
also written as ``fig_generalization.json`` (keys linear, normcdf, relu), which is at the same time
the figure's sidecar (keys figure, mode, settings, numbers); there the sampled test kernel (not
drawn) is left out and the theory's test kernel kept on at most 150 test inputs. In full mode each nonlinearity's report
is also stored in ``out_dir/data/generalization-<nl>.json`` with the settings that made it, and a
rerun reads back the stored reports whose settings match (it resumes, like the phase diagrams).
"""
from __future__ import annotations

import json
from pathlib import Path
import time

import numpy as np

from theory.jsonio import jsonable

from . import common
from .style import figsize, heatmap, pyplot, save, write_sidecar

__all__ = ["main", "SETTINGS", "plot", "caption"]

SETTINGS = {
    True: dict(train_per_class=15, test_per_class=15, theory_chains=64, theory_rounds=12, width=60, chains=2,
               sweeps=80),
    False: dict(train_per_class=30, test_per_class=None, theory_chains=256, theory_rounds=25, width=200, chains=4,
                sweeps={"linear": 3000, "normcdf": 6000, "relu": 15000}),
}
CLASSES = (0, 1, 2)
TEMPERATURE = 0.5
SHOW = 30
#: test inputs of the theory kernel kept in the sidecar (:func:`_sidecar_report`)
SIDECAR_KERNEL_INPUTS = 150
SCRIPT = "fig_generalization"
NAME = "fig_generalization.png"
COLORS = {"theory": "C0", "gp": "C1", "sampling": "C2"}


def _most_active(activations, n: int = SHOW):
    """(rows, indices): the ``n`` rows of largest mean activation, most active first."""
    A = np.asarray(activations, dtype=np.float64)
    idx = np.argsort(-A.mean(axis=1), kind="stable")[:n]
    return A[idx], idx


def sweeps_of(cfg: dict, nl: str) -> int:
    """The sweeps per chain of the sampled networks for φ = ``nl``: ``cfg["sweeps"]`` is one number or
    {nonlinearity: sweeps} (slower-mixing φ get longer chains)."""
    sw = cfg["sweeps"]
    return int(sw[nl] if isinstance(sw, dict) else sw)


def _run_settings(cfg: dict, nl: str, quick: bool, seed: int) -> dict:
    """What one nonlinearity's report depends on (a stored report is reused only if these match)."""
    return {**{k: v for k, v in cfg.items() if k != "sweeps"}, "sweeps": sweeps_of(cfg, nl), "nonlinearity": nl,
            "mode": "quick" if quick else "full", "seed": seed, "classes": list(CLASSES), "temperature": TEMPERATURE}


def _stored(path: Path, settings: dict):
    """The report stored at ``path`` if it was made with ``settings``, else None."""
    if not path.exists():
        return None
    doc = json.loads(path.read_text())
    return doc["report"] if doc.get("settings") == jsonable(settings) else None


def _report(ds, nl: str, cfg: dict, quick: bool, seed: int) -> dict:
    """The JSON report of :func:`validation.generalization.generalization_report` for φ = ``nl``, the
    sampled networks' "activations" those of the :data:`SHOW` most active of all N neurons."""
    from validation.generalization import generalization_report, sample_generalization

    common.log(f"generalization: {nl} on {ds.description} (P = {ds.P}, {ds.n_test} test inputs)")
    spec = ds.spec(nl, 1.0, 1.0, TEMPERATURE)
    rep = generalization_report(
        ds, spec, theory_chains=cfg["theory_chains"], theory_rounds=cfg["theory_rounds"], width=cfg["width"],
        chains=cfg["chains"], sweeps=sweeps_of(cfg, nl), seed=seed, say=common.log, sampling=False).to_json()
    sampled = sample_generalization(spec, ds.test_inputs, ds.test_labels, width=cfg["width"],
                                    chains=max(cfg["chains"], 2), sweeps=max(sweeps_of(cfg, nl), 20), seed=seed,
                                    neurons=cfg["width"])
    rows, idx = _most_active(sampled["activations"])
    sampled.update(activations=rows.tolist(), activations_neurons=idx.tolist(),
                   activations_order=f"the {len(idx)} most active of {cfg['width']} neurons (mean φ on the test "
                                     "inputs), most active first")
    common.log(f"[sampling] N = {cfg['width']}: mean-predictor error "
               f"{np.round(sampled['mean_predictor_error'], 4).tolist()} (R-hat {sampled['rhat_max']:.3f})")
    rep["sampling"] = sampled
    return rep


def _reports(quick: bool, nonlinearities=common.NONLINEARITIES, seed: int = 0, data=None) -> dict:
    """{nonlinearity: report of :func:`_report`}. With a folder ``data`` (full mode: ``out_dir/data``)
    each report is stored there as ``generalization-<nl>.json`` with its settings, and a rerun reuses
    the stored reports whose settings match (it resumes)."""
    from theory.datasets import load_digits_dataset
    from theory.jsonio import dumps

    cfg = SETTINGS[bool(quick)]
    ds = load_digits_dataset(CLASSES, train_per_class=cfg["train_per_class"], test_per_class=cfg["test_per_class"],
                             seed=seed)
    out = {}
    for nl in nonlinearities:
        settings = _run_settings(cfg, nl, quick, seed)
        path = None if data is None else Path(data) / f"generalization-{nl}.json"
        rep = None if path is None else _stored(path, settings)
        if rep is not None:
            common.log(f"generalization: {nl} read back from {path}")
        else:
            rep = _report(ds, nl, cfg, quick, seed)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(dumps({"settings": settings, "report": rep}) + "\n")
        out[nl] = rep
    return out


def _rhat_note(sa) -> str:
    from validation.diagnostics import RHAT_TARGET

    return f"R̂ {sa['rhat_max']:.3f}" + (" (unconv.)" if sa["rhat_max"] >= RHAT_TARGET else "")


def _row(row, nl, report, labels, classes, boundaries, first):
    th, gp, sa = report["theory"], report["gp"], report["sampling"]
    name = common.DISPLAY.get(nl, nl)
    A_th, _ = _most_active(th["activations"])
    heatmap(row[0], A_th)
    row[0].set_title("theory" + ("" if th.get("converged") else " (unconv.)"))
    row[0].set_ylabel(f"{name}\nneurons, most active first")
    heatmap(row[1], sa["activations"])
    row[1].set_title(f"sampled, {_rhat_note(sa)}")
    heatmap(row[2], th["test_kernel"])
    row[2].set_title("theory test kernel")
    row[2].set_xticks([])
    row[2].set_yticks([])
    for ax in row[:2]:
        ax.set_yticks([])
        ax.set_xlabel("test input (by class)")
        for b in boundaries:
            ax.axvline(b, color="w", lw=0.6)
    for k, e in (("theory", th), ("gp", gp), ("sampling", sa)):
        row[3].plot(np.asarray(e["mean_predictor"])[:, 0], ".", ms=2, color=COLORS[k],
                    label={"sampling": "sampled", "gp": "GP"}.get(k, k))
    row[3].plot((labels == 0).astype(float), "k-", lw=0.6, label="target")
    row[3].set_title(f"mean predictor f_{classes[0]}")
    row[3].set_xlabel("test input (by class)")
    if first:
        row[3].legend(loc="upper right", handletextpad=0.1, borderaxespad=0.1, markerscale=2, labelspacing=0.2)
    row[3].set_ylim(-0.6, 1.9)
    width = 0.26
    for j, (k, e) in enumerate((("theory", th), ("gp", gp), ("sampling", sa))):
        x = np.arange(len(classes)) + (j - 1) * width
        row[4].bar(x, e["mean_predictor_error"], width, color=COLORS[k], label={"gp": "GP"}.get(k, k),
                   yerr=e.get("mean_predictor_error_mcse"), error_kw=dict(lw=0.6))
        row[4].plot(x, e["bayes_error"], "k_", ms=8, mew=1.5)
    row[4].plot([], [], "k_", ms=8, mew=1.5, label="Bayes error")
    row[4].set_xticks(range(len(classes)), [str(c) for c in classes])
    row[4].set_xlabel("class")
    row[4].set_title("error per class")
    if first:  # head room above the largest bar or marker, so that the legend covers none of them
        top = max(max(np.max(e["mean_predictor_error"]), np.max(e["bayes_error"])) for e in (th, gp, sa))
        row[4].set_ylim(0.0, 2.0 * top)
        row[4].legend(loc="upper left", handletextpad=0.3, labelspacing=0.2)


def plot(reports: dict, out, quick: bool = True):
    """Draw the figure from ``{nonlinearity: report}`` (JSON reports of ``generalization_report``)."""
    plt = pyplot()
    names = list(reports)
    first = reports[names[0]]
    labels = np.asarray(first["dataset"]["test_labels"])
    classes = first["dataset"]["classes"]
    boundaries = np.cumsum(np.bincount(labels, minlength=len(classes)))[:-1] - 0.5
    fig, axes = plt.subplots(len(names), 5, figsize=figsize(2, 2.2 * len(names) + 0.3), squeeze=False,
                             gridspec_kw={"width_ratios": [1.1, 1.1, 1.0, 1.2, 0.9]}, layout="constrained")
    for k, (row, nl) in enumerate(zip(axes, names)):
        _row(row, nl, reports[nl], labels, classes, boundaries, k == 0)
    return save(fig, out, layout=False)


def numbers(reports: dict) -> dict:
    """The numbers the figure shows, per nonlinearity (class-averaged errors and the diagnostics)."""
    out = {}
    for nl, rep in reports.items():
        th, gp, sa = rep["theory"], rep["gp"], rep["sampling"]
        out[nl] = {k: {"mean_predictor_error": float(np.mean(e["mean_predictor_error"])),
                       "bayes_error": float(np.mean(e["bayes_error"]))} for k, e in
                   (("theory", th), ("gp", gp), ("sampling", sa))}
        out[nl]["theory_converged"] = bool(th.get("converged", False))
        out[nl]["rhat_max"] = float(sa["rhat_max"])
        out[nl]["ess_min"] = float(sa["ess_min"])
    return out


def _sidecar_report(report: dict, max_inputs: int = SIDECAR_KERNEL_INPUTS) -> dict:
    """``report`` for the sidecar: the sampled networks' test kernel (not drawn) is left out and the
    theory's drawn test kernel is kept on at most ``max_inputs`` evenly spaced test inputs (their
    indices in "test_kernel_inputs"), so that a full-mode sidecar stays a few MB; the complete reports
    are in ``out_dir/data`` in full mode."""
    th = dict(report["theory"])
    K = np.asarray(th["test_kernel"])
    idx = np.arange(len(K)) if len(K) <= max_inputs else np.linspace(0, len(K) - 1, max_inputs).astype(int)
    th.update(test_kernel=K[np.ix_(idx, idx)].tolist(), test_kernel_inputs=idx.tolist())
    sa = {k: v for k, v in report["sampling"].items() if k != "test_kernel"}
    return {**report, "theory": th, "sampling": sa}


def main(out_dir, quick: bool = True) -> list:
    """Write ``fig_generalization.png`` and the reports ``fig_generalization.json`` to ``out_dir``."""
    from validation.diagnostics import RHAT_TARGET

    t0 = time.perf_counter()
    reports = _reports(quick, data=None if quick else Path(out_dir) / "data")
    out = Path(out_dir)
    png = plot(reports, out / NAME, quick)
    first = reports[next(iter(reports))]
    cfg = SETTINGS[bool(quick)]
    js = write_sidecar(png, SCRIPT, quick, {
        **cfg, "classes": list(CLASSES), "temperature": TEMPERATURE, "sigma_w": 1.0, "sigma_a": 1.0,
        "dataset": first["dataset"]["description"], "P": sum(first["spec"]["class_sizes"]),
        "n_test": len(first["dataset"]["test_labels"]), "rhat_target": RHAT_TARGET, "seed": 0, "start": "random",
        "shown_neurons": SHOW}, numbers(reports), build_seconds=round(time.perf_counter() - t0, 1),
        **{nl: _sidecar_report(rep) for nl, rep in reports.items()})
    return [png, js]


def _sweeps_text(sweeps) -> str:
    """"3000" or "3000 (linear), 6000 (sigmoid (normcdf)), ..." for per-nonlinearity sweeps."""
    if not isinstance(sweeps, dict):
        return str(sweeps)
    return ", ".join(f"{v} ({common.DISPLAY.get(k, k)})" for k, v in sweeps.items())


def _convergence_text(side: dict) -> str:
    """Which sampled panels miss the R̂ target and which theory solves the solver did not pass (with
    the status it gave), or that everything converged."""
    st, nb = side["settings"], side["numbers"]
    chains = [f"{common.DISPLAY[nl]} (R̂ {v['rhat_max']:.3f})" for nl, v in nb.items()
              if v["rhat_max"] >= st["rhat_target"]]
    solves = [f"{common.DISPLAY[nl]} ({side.get(nl, {}).get('theory', {}).get('status', 'solver verdict')})"
              for nl, v in nb.items() if not v["theory_converged"]]
    if not chains and not solves:
        return f"All chains have R̂ < {st['rhat_target']:g} and every theory solve converged."
    parts = []
    if chains:
        parts.append(f"Sampling not converged (R̂ ≥ {st['rhat_target']:g}): {', '.join(chains)}; those sampled "
                     f"numbers are estimates from unconverged chains.")
    else:
        parts.append(f"All chains have R̂ < {st['rhat_target']:g}.")
    if solves:
        parts.append(f"Theory not converged (solver verdict): {', '.join(solves)}; that panel row shows the "
                     f"unconverged solver's numbers, marked in its title.")
    return " ".join(parts)


def caption(side: dict) -> str:
    """The gallery caption of the sidecar of this figure."""
    st, nb = side["settings"], side["numbers"]
    rows = [f"{common.DISPLAY[nl]}: theory {v['theory']['mean_predictor_error']:.3f}, GP "
            f"{v['gp']['mean_predictor_error']:.3f} (Bayes {v['gp']['bayes_error']:.3f}), sampled "
            f"{v['sampling']['mean_predictor_error']:.3f} (R̂ {v['rhat_max']:.3f})" for nl, v in nb.items()]
    return (f"Generalization on {st['dataset']} (P = {st['P']}, {st['n_test']} test inputs, T = "
            f"{st['temperature']:g}, σ_1 = σ_a = 1, one hidden layer): the paper's Fig. 6 analogue. Per row: "
            f"activations on the test inputs of {st['shown_neurons']} theory neurons and of the "
            f"{st['shown_neurons']} most active of N = {st['width']} neurons of a sampled network, the theory's "
            f"test kernel, the mean predictor of output 0, and the per-class error (bars: mean predictor, "
            f"markers: Bayes error). Sampled: {st['chains']} chains of {_sweeps_text(st['sweeps'])} sweeps from "
            f"random starts (a third of each chain is burn-in). Class-averaged mean-predictor errors: "
            + "; ".join(rows) + f". {_convergence_text(side)}")


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(main(sys.argv[1] if len(sys.argv) > 1 else "codingschemes_out/figures", "--full" not in sys.argv))
