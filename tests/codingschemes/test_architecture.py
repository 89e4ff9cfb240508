"""The import layers of docs/architecture.md hold: import-linter's contracts in pyproject.toml
(left-to-right package layers, solver families, machinery without problem knowledge, one module
per CLI subcommand, no cycles between siblings)."""
from pathlib import Path
import subprocess
import sys

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_import_linter_contracts_are_kept():
    pytest.importorskip("importlinter")
    lint = Path(sys.executable).parent / "lint-imports"
    cmd = [str(lint)] if lint.exists() else [sys.executable, "-m", "importlinter.cli"]
    proc = subprocess.run(cmd + ["--config", str(REPO / "pyproject.toml")], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_nothing_below_the_facade_imports_it():
    offenders = []
    for pkg in ("theory", "solvers", "validation", "figures"):
        for f in (REPO / pkg).rglob("*.py"):
            text = f.read_text()
            if "import codingschemes" in text or "from codingschemes" in text:
                offenders.append(str(f.relative_to(REPO)))
    assert offenders == []
