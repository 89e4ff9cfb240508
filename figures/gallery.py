"""All figure scripts in one run: ``run_all(out_dir, quick)`` (the ``codingschemes figures`` command).

Each script in :data:`SCRIPTS` is a module of figures/ with ``main(out_dir, quick) -> list of written
paths``. They share the theory solutions and sampled chains through :mod:`figures.common`, so a task
is solved and sampled once per run. Quick mode (about a minute on two cores) uses the large-P theory
for the nonlinear networks and short chains of N = 100 started at the theory's population; full
mode uses the exact finite-P solver where it converges and long chains from random starts
(:mod:`figures.common`). Progress and timings go to stderr.

Every figure is written as ``<name>.png`` (300 dpi), ``<name>.pdf`` and the JSON sidecar
``<name>.json`` (:func:`figures.style.write_sidecar`); ``run_all`` adds the seconds its script took
to each sidecar and merges one entry per figure into ``manifest.json`` of the folder (figure,
script, mode, seconds, settings), so that figures made by separate ``--only`` runs share one
manifest.
"""
from __future__ import annotations

import importlib
import json
import time
from pathlib import Path

from . import common

__all__ = ["SCRIPTS", "run_all", "update_manifest", "MANIFEST", "sidecars", "caption", "render_gallery",
           "note_quick"]

MANIFEST = "manifest.json"

#: figure scripts, in the order they run (later ones reuse the chains of earlier ones)
SCRIPTS = ("fig_lazy_rich", "fig_coding_schemes", "fig_readouts", "fig_drift", "fig_phase_diagram",
           "fig_generalization", "fig_deep_layers", "fig_deep_lazy_rich", "fig_deep_drift", "fig_deep_relaxation")


def run_all(out_dir, quick: bool = True, only=None) -> list:
    """Run every script (or those named in ``only``); returns the written paths.

    A script that raises is reported on stderr and the others still run; the exception of the first
    failure is re-raised at the end so that callers see it.
    """
    names = list(SCRIPTS) if not only else [n if n.startswith("fig_") else f"fig_{n}" for n in only]
    unknown = [n for n in names if n not in SCRIPTS]
    if unknown:
        raise ValueError(f"unknown figure script(s) {unknown}; choose from {list(SCRIPTS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths, failures, timings = [], [], {}
    start = time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        common.log(f"--- {name} ({'quick' if quick else 'full'} mode)")
        try:
            module = importlib.import_module(f"figures.{name}")
            written = [Path(p) for p in module.main(out, quick)]
        except Exception as exc:  # noqa: BLE001 - reported, the other figures still run
            common.log(f"{name} FAILED: {type(exc).__name__}: {exc}")
            failures.append(exc)
            continue
        timings[name] = time.perf_counter() - t0
        update_manifest(out, name, written, timings[name])
        paths += written
        common.log(f"{name}: {', '.join(p.name for p in written)} in {timings[name]:.1f} s")
    common.log(f"{len(paths)} figures in {time.perf_counter() - start:.1f} s: "
               + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    if failures:
        raise failures[0]
    return paths


def update_manifest(out_dir, script: str, written, seconds: float) -> Path:
    """Stamp ``seconds`` into the sidecars of the figures ``written`` by ``script`` and merge their
    entries into ``out_dir/manifest.json`` ({"figures": {name: {...}}}, sorted by name)."""
    from theory.jsonio import dumps

    from .style import sidecar_path

    out = Path(out_dir)
    path = out / MANIFEST
    manifest = json.loads(path.read_text()) if path.exists() else {"figures": {}}
    for png in written:
        side = sidecar_path(png)
        if png.suffix != ".png" or not side.exists():
            continue
        doc = json.loads(side.read_text())
        doc["seconds"] = round(float(seconds), 1)
        side.write_text(dumps(doc, indent=1) + "\n")
        manifest["figures"][png.name] = {"figure": png.name, "script": script, "mode": doc.get("mode"),
                                         "seconds": doc["seconds"], "settings": doc.get("settings", {}),
                                         "files": [png.name, png.with_suffix(".pdf").name, side.name]}
    manifest["figures"] = dict(sorted(manifest["figures"].items()))
    path.write_text(dumps(manifest, indent=1) + "\n")
    return path


def sidecars(folder) -> list:
    """The figure sidecars of ``folder`` (every ``*.json`` with a "script" key), in :data:`SCRIPTS`
    order and then by figure name."""
    docs = []
    for path in sorted(Path(folder).glob("*.json")):
        doc = json.loads(path.read_text())
        if isinstance(doc, dict) and doc.get("script") in SCRIPTS:
            docs.append(doc)
    return sorted(docs, key=lambda d: (SCRIPTS.index(d["script"]), d["figure"]))


def caption(side: dict) -> str:
    """The caption of one figure, made by its script's ``caption(sidecar)`` from the sidecar alone."""
    return importlib.import_module(f"figures.{side['script']}").caption(side)


def render_gallery(folder, link: str = "../gallery/") -> str:
    """Markdown of the gallery in ``folder``: per figure a heading, the image (``link`` + name), the
    caption from its sidecar, and a line with the mode, the seconds and the PDF."""
    blocks = []
    for side in sidecars(folder):
        name = side["figure"]
        mode = side.get("mode", "?")
        seconds = side.get("seconds")
        made = f"{mode} mode" + (f", {seconds:g} s" if isinstance(seconds, (int, float)) else "")
        blocks.append(f"### {Path(name).stem}\n\n![{Path(name).stem}]({link}{name})\n\n{caption(side)}\n\n"
                      f"*Made in {made} ([PDF]({link}{Path(name).with_suffix('.pdf').name}), "
                      f"[numbers]({link}{Path(name).with_suffix('.json').name})).*")
    return "\n\n".join(blocks)


def note_quick(out_dir, reasons: dict) -> Path:
    """Record in ``out_dir/manifest.json`` why figures of the gallery were made in quick mode
    ({figure name: reason}, merged into the manifest's "quick_reasons")."""
    from theory.jsonio import dumps

    path = Path(out_dir) / MANIFEST
    manifest = json.loads(path.read_text())
    manifest.setdefault("quick_reasons", {}).update(reasons)
    path.write_text(dumps(manifest, indent=1) + "\n")
    return path
