"""Every code block in README.md and docs/ runs: examples that cannot rot.

The collector reads the fenced blocks of each Markdown page:

- ``python`` blocks of one page run in order in one shared namespace (a page is one session);
- ``bash`` blocks: every line (backslash continuations joined) that starts with ``codingschemes``
  runs as a subprocess of this interpreter and must exit 0, or the code given by a
  ``<!-- exit N -->`` comment on the line before the block;
- a ``<!-- slow -->`` comment before a block (more than about 20 s) runs it only with ``-m slow``;
- a ``<!-- ci -->`` comment marks the set-up block that CI itself runs (``.ci/run``); the test
  checks that ``.ci/run`` runs those very commands instead of running them again;
- other languages (``text``, ``json``) are not code and are not run.

``docs/architecture.md`` (written with the import-layer tooling) is not part of the tested guide.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXCLUDED = ("docs/architecture.md",)
FENCE = re.compile(r"^```(\w*)\s*$")
MARKER = re.compile(r"<!--\s*(slow|ci|exit\s+\d+)\s*-->")
CLI = ("-c", "import sys; from codingschemes.cli.main import main; sys.exit(main(sys.argv[1:]))")


def markdown_pages():
    pages = [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))
    return [p for p in pages if not str(p.relative_to(ROOT)).startswith(EXCLUDED)]


def code_blocks(path):
    """(language, code, markers, first line number) of every fenced block of a page."""
    blocks, lines = [], path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        markers = {m.group(1) for k in (i - 2, i - 1) if k >= 0 for m in MARKER.finditer(lines[k])}
        end = i + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        blocks.append((match.group(1), "\n".join(lines[i + 1:end]), markers, i + 1))
        i = end + 1
    return blocks


def commands(code):
    """The ``codingschemes ...`` command lines of a bash block, continuations joined."""
    joined = re.sub(r"\\\n\s*", " ", code)
    return [" ".join(line.split()) for line in joined.splitlines() if line.strip().startswith("codingschemes ")]


def expected_exit(markers):
    codes = [int(m.split()[1]) for m in markers if m.startswith("exit")]
    return codes[0] if codes else 0


def _cases(slow):
    """One case per distinct command (the README repeats commands of the guide: they run once)."""
    cases, seen = [], set()
    for page in markdown_pages():
        rel = str(page.relative_to(ROOT))
        for lang, code, markers, line in code_blocks(page):
            if lang == "bash" and "ci" not in markers:
                for k, cmd in enumerate(commands(code)):
                    if ("slow" in markers) == slow and cmd not in seen:
                        seen.add(cmd)
                        cases.append(pytest.param(cmd, expected_exit(markers), id=f"{rel}:{line}:{k}"))
    return cases


def _run_command(cmd, code, tmp_path):
    import shlex
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               MPLBACKEND="Agg")
    argv = [sys.executable, *CLI, *shlex.split(cmd)[1:]]
    proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=3600)
    assert proc.returncode == code, f"{cmd}\nexit {proc.returncode}\n{proc.stderr[-3000:]}"
    if "--format json" in cmd and code == 0:
        missing = sorted(json_keys(json.loads(proc.stdout)) - documented_keys())
        assert not missing, f"{cmd}: JSON keys missing from docs/theory-map.md: {missing}"


def json_keys(obj):
    """Every key of a JSON document, except data keys: code strings such as '110' or '+-0', and
    labels that are not identifiers (the names of integration rules, such as '1-d gauss-hermite')."""
    keys = set()
    if isinstance(obj, dict):
        for key, value in obj.items():
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                keys.add(key)
            keys |= json_keys(value)
    elif isinstance(obj, list):
        for value in obj:
            keys |= json_keys(value)
    return keys


def documented_keys():
    """The names written as `code` on the theory map."""
    return set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", (ROOT / "docs" / "theory-map.md").read_text(encoding="utf-8")))


@pytest.mark.parametrize("cmd, code", _cases(slow=False))
def test_bash_block(cmd, code, tmp_path):
    _run_command(cmd, code, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("cmd, code", _cases(slow=True))
def test_bash_block_slow(cmd, code, tmp_path):
    _run_command(cmd, code, tmp_path)


def _python_pages(slow):
    pages = []
    for page in markdown_pages():
        blocks = [b for b in code_blocks(page) if b[0] == "python"]
        has_slow = any("slow" in b[2] for b in blocks)
        if blocks and (has_slow if slow else True):
            pages.append(pytest.param(page, id=str(page.relative_to(ROOT))))
    return pages


def _run_python(page, tmp_path, monkeypatch, include_slow):
    import matplotlib
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__doc_example__"}
    for lang, code, markers, line in code_blocks(page):
        if lang != "python" or ("slow" in markers and not include_slow):
            continue
        try:
            exec(compile(code, f"{page.name}:{line}", "exec"), namespace)
        except Exception as exc:  # name the page and line of the failing block
            raise AssertionError(f"{page.relative_to(ROOT)} block at line {line} failed: {exc!r}") from exc


@pytest.mark.parametrize("page", _python_pages(slow=False))
def test_python_blocks(page, tmp_path, monkeypatch):
    """A page's fast python blocks, in order (slow blocks are left out)."""
    _run_python(page, tmp_path, monkeypatch, include_slow=False)


@pytest.mark.slow
@pytest.mark.parametrize("page", _python_pages(slow=True))
def test_python_blocks_slow(page, tmp_path, monkeypatch):
    """Pages with slow python blocks: every block, in order."""
    _run_python(page, tmp_path, monkeypatch, include_slow=True)


def test_ci_blocks_are_what_ci_runs():
    """The set-up block marked ``<!-- ci -->`` is what ``.ci/run`` runs: its install and test commands."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    found = 0
    for page in markdown_pages():
        for lang, code, markers, _ in code_blocks(page):
            if "ci" in markers:
                found += 1
                assert 'pip install ".[test]"' in code and '.venv/bin/pip install ".[test]"' in ci
                assert ".venv/bin/python -m pytest -q" in code and ".venv/bin/python -m pytest -q" in ci
    assert found >= 1


def test_every_page_has_its_blocks_collected():
    """No fence is left open and no block has an unknown language (a typo would skip a block)."""
    for page in markdown_pages():
        text = page.read_text(encoding="utf-8")
        assert sum(1 for line in text.splitlines() if line.startswith("```")) % 2 == 0, page
        for lang, _, _, line in code_blocks(page):
            assert lang in ("python", "bash", "text", "json", ""), f"{page}:{line}: language {lang!r}"
