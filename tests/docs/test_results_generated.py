"""The generated sections of docs/results.md and of README.md (its headline table) are the rendering
of the records in docs/measurements/ (``docs/gen_results.py``): the pages hold no typed measured
table that their records do not give."""
import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _gen():
    spec = importlib.util.spec_from_file_location("gen_results", ROOT / "docs" / "gen_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _record(name="x"):
    return {"name": name, "command": f"python benchmarks/{name}.py", "date": "2026-12-06 11:00 UTC",
            "machine": {"cpu_count": 2, "load_average_start": [1.0, 1.0, 1.0], "load_average_end": [2.0, 2.0, 2.0],
                        "platform": "p", "python": "3", "numpy": "2", "commit": "abc"},
            "wall_seconds": 1.0, "cpu_seconds": 0.5,
            "items": [{"kind": "table", "title": "T", "columns": ["a", "b"], "rows": [["1", "2"]], "note": None}]}


def test_results_page_and_readme_equal_their_rendered_records():
    gen = _gen()
    assert set(gen.PAGES) == {"docs/results.md", "README.md"}
    texts = {page: (ROOT / page).read_text(encoding="utf-8") for page in gen.PAGES}
    recs = gen.records()
    assert recs, "no records in docs/measurements/"
    assert gen.render_pages(texts, recs) == texts, "run python docs/gen_results.py"


def test_readme_headline_table_is_generated():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Headline results", 1)[1].split("\n## ", 1)[0]
    names = re.findall(r"^<!-- generated:(headline[A-Za-z0-9_.-]*) -->$", section, flags=re.M)
    assert names, "the README's headline table is not generated"
    outside = section
    for name in names:
        assert (ROOT / "docs" / "measurements" / f"{name}.json").is_file()
        start, end = f"<!-- generated:{name} -->", f"<!-- /generated:{name} -->"
        outside = outside.split(start)[0] + outside.split(end)[1]
    assert "|---" not in outside, "a typed table next to the generated headline table"


def test_every_record_states_command_date_machine_and_tables():
    for path in sorted((ROOT / "docs" / "measurements").glob("*.json")):
        rec = json.loads(path.read_text(encoding="utf-8"))
        assert rec["name"] == path.stem and rec["command"].startswith("python benchmarks/")
        assert rec["date"] and rec["machine"]["cpu_count"] >= 1 and len(rec["machine"]["load_average_start"]) == 3
        assert any(it["kind"] == "table" and it["rows"] for it in rec["items"]), path.name


def test_render_page_replaces_only_between_markers_and_rejects_unmatched_markers():
    gen = _gen()
    rec = _record()
    page = "head\n<!-- generated:x -->\nold typed table\n<!-- /generated:x -->\ntail\n"
    out = gen.render_page(page, {"x": rec})
    assert out.startswith("head\n<!-- generated:x -->\n") and out.endswith("<!-- /generated:x -->\ntail\n")
    assert "old typed table" not in out and "| 1 | 2 |" in out and "cores" in out
    assert gen.render_page(out, {"x": rec}) == out
    with pytest.raises(ValueError, match="without a record"):
        gen.render_page(page, {})
    with pytest.raises(ValueError, match="without a marker"):
        gen.render_page("no markers\n", {"x": rec})


def test_render_pages_fills_a_readme_marker_from_its_own_record():
    """A README-like text and a results-like text, each with its own marker: each gets its record,
    the text around the markers (headings, prose, the next section) stays; a record whose marker is
    on neither page is an error."""
    gen = _gen()
    readme = ("# pkg\n\n## Headline results\n\nShort prose.\n\n<!-- generated:headline -->\ntyped | 1 |\n"
              "<!-- /generated:headline -->\n\n## Honest list\n")
    results = "# Results\n<!-- generated:bench -->\n<!-- /generated:bench -->\n"
    recs = {"headline": _record("headline"), "bench": _record("bench")}
    out = gen.render_pages({"README.md": readme, "docs/results.md": results}, recs)
    head = out["README.md"]
    assert head.startswith("# pkg\n\n## Headline results\n\nShort prose.\n\n<!-- generated:headline -->\n")
    assert head.endswith("<!-- /generated:headline -->\n\n## Honest list\n")
    assert "typed | 1 |" not in head and "`python benchmarks/headline.py`" in head and "| 1 | 2 |" in head
    assert "headline.json" in head and "headline.json" not in out["docs/results.md"]
    assert "`python benchmarks/bench.py`" in out["docs/results.md"]
    assert gen.render_pages(out, recs) == out
    with pytest.raises(ValueError, match="without a marker"):
        gen.render_pages({"README.md": readme}, recs)
    with pytest.raises(ValueError, match="README.md markers without a record"):
        gen.render_pages({"README.md": readme, "docs/results.md": results}, {"bench": recs["bench"]})


def test_headline_rows_are_read_from_the_commands_json_and_the_solver_record():
    spec = importlib.util.spec_from_file_location("headline", ROOT / "benchmarks" / "headline.py")
    headline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(headline)
    side = {"outputs": [[0.98361, 0.0]], "readout_moment": [[3.5651, 0.0]], "kernel_diagonal": [0.8712, 1.0],
            "kernel_blocks": [[0.4291, 0.0]]}
    data = {"theory": side, "sampling": dict(side, outputs=[[0.98372, 0.0]]), "z_max": 1.8,
            "diagnostics": {"rhat_max": 1.024, "ess_min": 355.0}, "passed": True}
    f_row, u_row = headline.validate_rows(data, 40.2, 75.9)
    assert f_row[1:4] == ["0.9836", "0.9837", "40 / 76"] and "`codingschemes validate" in f_row[4]
    assert u_row[1] == "3.565 / 0.871 / 0.429" and "max \\|z\\| 1.80" in u_row[2] and "passed" in u_row[2]
    row = headline.solve_row()
    rec = json.loads((ROOT / "docs" / "measurements" / "bench_solve_smooth.json").read_text(encoding="utf-8"))
    assert rec["date"] in row[0] and "not re-run here" in row[0] and rec["command"] in row[4]
    assert all(len(r) == len(headline.COLUMNS) for r in (f_row, u_row, row, headline.SAMPLER_TYPED))
    assert "typed" in headline.SAMPLER_TYPED[0]
