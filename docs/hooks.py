"""MkDocs hook: the site's home page is README.md.

docs/index.md holds one line, ``{{ README }}``; this hook replaces it with the README next to
mkdocs.yml and rewrites the README's repository-relative links (``docs/guide/solve.md``) to
site-relative ones (``guide/solve.md``).
"""
import logging
from pathlib import Path


def on_page_markdown(markdown, page, config, files):
    if "{{ README }}" not in markdown:
        return markdown
    readme = Path(config["config_file_path"]).parent / "README.md"
    text = readme.read_text(encoding="utf-8").replace("](docs/", "](")
    return markdown.replace("{{ README }}", text)


class _DocstringStyleNotes:
    """Docstrings of the packages mix numpydoc sections with prose paragraphs ("Returns a ...").
    griffe's numpydoc parser reports such prose as a malformed section; the text still renders.
    These reports are shown as INFO so that ``mkdocs build --strict`` fails on real problems only
    (broken links, missing pages, unresolved objects)."""

    PATTERNS = ("No type or annotation for", "No types or annotations for", "does not appear in the function signature",
                "Could not parse line", "Empty parameters section", "Confusing indentation")

    def filter(self, record):
        if record.levelno == logging.WARNING and any(p in record.getMessage() for p in self.PATTERNS):
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def on_startup(command, dirty):
    for name in ("mkdocs.plugins.griffe", "griffe"):
        logging.getLogger(name).addFilter(_DocstringStyleNotes())
