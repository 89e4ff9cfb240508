"""The shape of the documentation that issue 16 asks for: a README of at most 250 lines, and a
docs/paper.md that lists every figure of the paper (Figs. 1-7, Table 1, the supplementary ones) and
gives every figure and claim one of the four statuses, next to our command or figure."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATUSES = ("reproduced qualitatively", "reproduced", "differs", "not done")


def paper_tables():
    """{heading: [row cells]} of the tables of docs/paper.md (header and rule rows left out)."""
    tables, heading = {}, None
    for line in (ROOT / "docs" / "paper.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
            tables[heading] = []
        elif heading and line.startswith("| ") and not re.match(r"^\| (paper|#|what) \|", line):
            tables[heading].append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return tables


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines (at most 250; move detail into docs/)"


def test_paper_lists_every_figure():
    rows = paper_tables()["Figures"]
    names = [r[0] for r in rows]
    for name in [f"Fig. {k}" for k in range(1, 8)] + ["Table 1", "supplementary figures"]:
        assert name in names, f"docs/paper.md lists no row for {name}"


def test_every_figure_and_claim_has_a_status():
    tables = paper_tables()
    for heading in ("Figures", "Claims"):
        assert tables[heading], heading
        for row in tables[heading]:
            status = row[-2]
            parts = [p.strip() for p in re.sub(r"\([^)]*\)", "", status).split(";")]
            assert parts and all(p in STATUSES for p in parts), f"{heading}: status {status!r} of {row[0]}"
            assert row[-1], f"{heading}: {row[0]} has no evidence"


def test_every_claim_names_our_command_or_figure():
    for row in paper_tables()["Claims"]:
        ours = row[3]
        assert re.search(r"codingschemes |\.png|cs\.", ours), f"claim {row[0]}: no command or figure: {ours!r}"
