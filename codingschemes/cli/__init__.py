"""The ``codingschemes`` command: one module per subcommand, one shared model-argument parser."""
from codingschemes.cli.main import build_parser, main

__all__ = ["main", "build_parser"]
