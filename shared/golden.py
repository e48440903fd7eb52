"""Refresh the golden smoke notebooks that nbval compares: ``python -m shared.golden [ids]``.

Each paper runs at ``smoke`` with its notebook defaults (params.yaml is ignored). Only the
verdict cells (first line ``# NBVAL_CHECK_OUTPUT``) keep their outputs: nbval compares nothing
else, and figures stay out of git.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import nbformat

from shared.paths import REPO_ROOT
from shared.run import build_parameters, execute, load_params

GOLDEN_DIR = REPO_ROOT / "tests" / "golden"
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"


def strip_unchecked(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop outputs of every cell nbval does not compare."""
    for cell in nb.cells:
        if cell.cell_type == "code" and not cell.source.lstrip().startswith(CHECK_MARK):
            cell.outputs = []
    return nb


def refresh(paper_id: str) -> Path:
    os.environ["PAPERSUITE_THREADS"] = "1"  # as in tests/conftest.py: identical float reductions
    parameters = build_parameters(paper_id, "smoke", [], use_params_file=False)
    with tempfile.TemporaryDirectory() as tmp:
        out = execute(paper_id, parameters, Path(tmp) / paper_id)
        nb = nbformat.read(out / "notebook.ipynb", as_version=4)
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    target = GOLDEN_DIR / f"{paper_id}.ipynb"
    nbformat.write(strip_unchecked(nb), target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("papers", nargs="*", help="paper ids (default: every paper in params.yaml)")
    args = parser.parse_args(argv)
    for paper_id in args.papers or list(load_params()["papers"]):
        print(f"refreshed {refresh(paper_id).relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
