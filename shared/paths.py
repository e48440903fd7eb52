"""Every path the suite uses, resolved from the repository root (never from the cwd)."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
PRESETS_DIR = Path(__file__).resolve().parent / "presets"
DATA_DIR = REPO_ROOT / "data"
RESULTS_DIR = REPO_ROOT / "results"
CACHE_DIR = Path(os.environ.get("PAPERSUITE_CACHE", REPO_ROOT / ".cache"))
PARAMS_FILE = REPO_ROOT / "params.yaml"
OUTPUT_ENV = "PAPERSUITE_OUTPUT_DIR"


def notebook_path(paper_id: str) -> Path:
    return NOTEBOOKS_DIR / f"{paper_id}.ipynb"


def output_dir(paper_id: str) -> Path:
    """Where a paper's results go: the runner's staging folder, else ``results/<id>``."""
    staged = os.environ.get(OUTPUT_ENV)
    path = Path(staged) if staged else RESULTS_DIR / paper_id
    path.mkdir(parents=True, exist_ok=True)
    return path


def figures_dir(paper_id: str) -> Path:
    path = output_dir(paper_id) / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path
