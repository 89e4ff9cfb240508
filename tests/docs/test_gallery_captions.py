"""The gallery of docs/gallery/ and its captions in docs/guide/figures.md (``docs/gen_gallery.py``):
every figure has its PNG, PDF and JSON sidecar, the manifest lists each with its mode and seconds,
and the captions on the page are those made from the sidecars, so the numbers they quote are the
numbers the figures were drawn with."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GALLERY = ROOT / "docs" / "gallery"


def _gen():
    spec = importlib.util.spec_from_file_location("gen_gallery", ROOT / "docs" / "gen_gallery.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sidecars():
    from figures.gallery import sidecars

    return sidecars(GALLERY)


def test_every_gallery_figure_has_png_pdf_and_sidecar():
    pngs = sorted(p.name for p in GALLERY.glob("*.png"))
    assert pngs
    for name in pngs:
        assert (GALLERY / name).with_suffix(".pdf").is_file(), name
        side = json.loads((GALLERY / name).with_suffix(".json").read_text())
        assert side["figure"] == name and side["mode"] in ("quick", "full"), name
        assert side["settings"] and side["numbers"], name
    assert sorted(s["figure"] for s in _sidecars()) == pngs


def test_manifest_lists_every_figure_with_mode_and_seconds():
    manifest = json.loads((GALLERY / "manifest.json").read_text())
    figures = manifest["figures"]
    assert sorted(figures) == sorted(p.name for p in GALLERY.glob("*.png"))
    for side in _sidecars():
        entry = figures[side["figure"]]
        assert entry["mode"] == side["mode"] and entry["script"] == side["script"], side["figure"]
        assert entry["seconds"] == side["seconds"] and entry["seconds"] > 0, side["figure"]
        assert entry["settings"] == side["settings"], side["figure"]
        if entry["mode"] == "quick":  # a quick figure in the gallery must say why
            assert manifest.get("quick_reasons", {}).get(side["figure"]), side["figure"]


def test_captions_on_the_page_are_generated_from_the_sidecars():
    gen = _gen()
    text = (ROOT / "docs" / "guide" / "figures.md").read_text(encoding="utf-8")
    assert gen.render_page(text) == text, "run python docs/gen_gallery.py"


def test_captions_quote_the_sidecar_numbers():
    """Spot checks that a caption is its sidecar's: the drift values, the phase-diagram grid and the
    generalization R̂ appear as the sidecar holds them."""
    from figures.gallery import caption

    by_name = {s["figure"]: s for s in _sidecars()}
    drift = by_name["fig_drift.png"]
    text = caption(drift)
    for nl in ("linear", "normcdf", "relu"):
        assert f"{drift['numbers'][nl]['drift_last']:.3g}" in text, nl
    phase = by_name["fig_phase_normcdf.png"]
    assert f"{phase['settings']['grid'][0]} × {phase['settings']['grid'][1]}" in caption(phase)
    gen = by_name["fig_generalization.png"]
    for nl, v in gen["numbers"].items():
        assert f"R̂ {v['rhat_max']:.3f}" in caption(gen), nl


def test_render_page_rejects_a_page_without_markers(tmp_path):
    gen = _gen()
    with pytest.raises(ValueError, match="generated:gallery"):
        gen.render_page("# Figures\n")
