"""Test-wide environment: offline, quiet, headless, and outputs in a temporary folder.

Set at import time so that the kernels nbval starts inherit it.
"""
import os
import tempfile

_OUTPUT = tempfile.mkdtemp(prefix="papersuite-test-")
os.environ.update({
    "PAPERSUITE_OUTPUT_DIR": _OUTPUT,
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "MPLBACKEND": "Agg",
    "PAPERSUITE_QUIET": "1",
    "PYTHONHASHSEED": "0",
    # one torch thread, as when the golden notebooks were made: same float reductions, and no
    # oversubscription when the machine is busy
    "PAPERSUITE_THREADS": "1",
})


def pytest_sessionstart(session):
    """Unit tests use the same thread count as the kernels (PAPERSUITE_THREADS above)."""
    from shared.runtime import set_threads

    set_threads()
