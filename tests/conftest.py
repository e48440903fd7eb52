"""Test-wide environment: offline, quiet, headless, outputs in a temporary folder, and the pinned
kernel path (``shared.kernels``, set when ``shared`` is imported below, before any test runs).

Set at import time so that the kernels nbval starts inherit it.
"""
import os
import shutil
import tempfile
from pathlib import Path

import pytest

import shared  # noqa: F401  pins the kernel path (shared.kernels) here and in every kernel nbval starts

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
    "OMP_WAIT_POLICY": "PASSIVE",  # as the runner sets it (shared.runtime.OMP_WAIT_POLICY)
})


def pytest_configure(config):
    """Off the pinned kernel path (not x86-64, or PAPERSUITE_NATIVE_KERNELS=1) nbval compares verdicts, not values."""
    from shared import kernels

    if kernels.mode() != "pinned" and getattr(config.option, "sanitize_with", None):
        config.option.sanitize_with = str(Path(__file__).parent / "golden" / "sanitize-verdicts.cfg")


def pytest_sessionstart(session):
    """Unit tests use the same thread count as the kernels (PAPERSUITE_THREADS above)."""
    from shared.runtime import set_threads

    set_threads()


@pytest.fixture
def scratch_repo(tmp_path):
    """A copy of the files ``shared.new``, the runner and the notebooks read and write."""
    from shared.paths import REPO_ROOT

    root = tmp_path / "repo"
    for name in ("shared", "notebooks", "tests/golden", "tests/papers"):
        shutil.copytree(REPO_ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("params.yaml", "dvc.yaml", "pyproject.toml"):
        shutil.copy(REPO_ROOT / name, root / name)
    return root


@pytest.fixture(autouse=True)
def _sabotage_sees_every_check(request, monkeypatch):
    """A sabotage or ablation test asserts FAIL: the seed rule (a claim shown as INFO at a scale) must not hide it."""
    if request.node.get_closest_marker("sabotage") or request.node.get_closest_marker("ablation"):
        from shared import claims

        monkeypatch.setattr(claims, "seed_rule", lambda paper_id, scale: {})
