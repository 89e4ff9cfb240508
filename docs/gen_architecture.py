"""Regenerate the module tree of docs/architecture.md from the modules' own docstrings.

    python docs/gen_architecture.py > /tmp/tree.md

One line per module: its path, its line count and the first sentence of its docstring.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("theory", "solvers", "validation", "figures", "codingschemes")


def first_sentence(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    line = " ".join(doc.strip().split("\n\n")[0].split())
    cut = line.find(". ")
    return (line if cut < 0 else line[:cut + 1]).replace("|", "\\|")


def tree() -> str:
    out = ["| module | lines | what it is |", "|---|---:|---|"]
    for pkg in PACKAGES:
        for f in sorted((ROOT / pkg).rglob("*.py"), key=lambda p: (len(p.relative_to(ROOT).parts), str(p))):
            if "__pycache__" in f.parts:
                continue
            rel = f.relative_to(ROOT)
            n = sum(1 for _ in f.open())
            out.append(f"| `{rel}` | {n} | {first_sentence(f)} |")
    return "\n".join(out)


if __name__ == "__main__":
    print(tree())
