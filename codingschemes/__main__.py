"""``python -m codingschemes``: the same command line as the ``codingschemes`` console script."""
import sys

from codingschemes.cli.main import main

sys.exit(main(sys.argv[1:]))
