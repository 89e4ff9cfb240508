import os
import tempfile

# Generated numba modules go to a per-session cache so tests never depend on a user's cache.
os.environ.setdefault("CODINGSCHEMES_CACHE", os.path.join(tempfile.gettempdir(), "codingschemes-test-cache"))
