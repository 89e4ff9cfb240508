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


def test_architecture_page_lists_every_module():
    """docs/architecture.md's tree (made by docs/gen_architecture.py) names exactly the modules on disk."""
    import re

    page = (REPO / "docs" / "architecture.md").read_text()
    listed = set(re.findall(r"^\| `([\w/]+\.py)` \|", page, flags=re.M))
    on_disk = {str(f.relative_to(REPO)) for pkg in ("theory", "solvers", "validation", "figures", "codingschemes")
               for f in (REPO / pkg).rglob("*.py") if "__pycache__" not in f.parts}
    assert listed == on_disk, ("regenerate with python docs/gen_architecture.py", on_disk ^ listed)
