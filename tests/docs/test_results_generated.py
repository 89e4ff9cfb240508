"""The benchmark sections of docs/results.md are the rendering of the records in docs/measurements/
(``docs/gen_results.py``): the page holds no typed benchmark table that its records do not give."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _gen():
    spec = importlib.util.spec_from_file_location("gen_results", ROOT / "docs" / "gen_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_results_page_equals_its_rendered_records():
    gen = _gen()
    text = (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    recs = gen.records()
    assert recs, "no records in docs/measurements/"
    assert gen.render_page(text, recs) == text, "run python docs/gen_results.py"


def test_every_record_states_command_date_machine_and_tables():
    for path in sorted((ROOT / "docs" / "measurements").glob("*.json")):
        rec = json.loads(path.read_text(encoding="utf-8"))
        assert rec["name"] == path.stem and rec["command"].startswith("python benchmarks/")
        assert rec["date"] and rec["machine"]["cpu_count"] >= 1 and len(rec["machine"]["load_average_start"]) == 3
        assert any(it["kind"] == "table" and it["rows"] for it in rec["items"]), path.name


def test_render_page_replaces_only_between_markers_and_rejects_unmatched_markers():
    gen = _gen()
    rec = {"name": "x", "command": "python benchmarks/x.py", "date": "2026-12-06 11:00 UTC",
           "machine": {"cpu_count": 2, "load_average_start": [1.0, 1.0, 1.0], "load_average_end": [2.0, 2.0, 2.0],
                       "platform": "p", "python": "3", "numpy": "2", "commit": "abc"},
           "wall_seconds": 1.0, "cpu_seconds": 0.5,
           "items": [{"kind": "table", "title": "T", "columns": ["a", "b"], "rows": [["1", "2"]], "note": None}]}
    page = "head\n<!-- generated:x -->\nold typed table\n<!-- /generated:x -->\ntail\n"
    out = gen.render_page(page, {"x": rec})
    assert out.startswith("head\n<!-- generated:x -->\n") and out.endswith("<!-- /generated:x -->\ntail\n")
    assert "old typed table" not in out and "| 1 | 2 |" in out and "cores" in out
    assert gen.render_page(out, {"x": rec}) == out
    with pytest.raises(ValueError, match="without a record"):
        gen.render_page(page, {})
    with pytest.raises(ValueError, match="without a marker"):
        gen.render_page("no markers\n", {"x": rec})
