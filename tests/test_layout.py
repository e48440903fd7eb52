"""The three tiers of ``shared`` (suite, toolkit, one folder per paper) and who may import whom."""
from pathlib import Path

import pytest

from shared import layering
from shared.paths import REPO_ROOT
from shared.run import load_params

PAPERS = list(load_params()["papers"])


def test_the_repository_keeps_the_layering_rules():
    assert layering.violations() == []


def test_shared_holds_the_suite_plus_toolkit_and_papers():
    assert layering.top_level_folders() == {"toolkit", "papers", "presets", "templates"}
    top = {p.stem for p in (REPO_ROOT / "shared").glob("*.py")}
    assert not any(name.startswith(tuple(PAPERS)) for name in top), "paper code belongs in shared/papers/<id>/"


@pytest.mark.parametrize("paper_id", PAPERS)
def test_every_paper_has_its_folder_and_tests(paper_id):
    assert (REPO_ROOT / "shared" / "papers" / paper_id / "__init__.py").exists()
    assert any((REPO_ROOT / "tests" / "papers" / paper_id).glob("test_*.py"))


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


INITS = {"shared/__init__.py": "", "shared/toolkit/__init__.py": "", "shared/papers/__init__.py": "",
         "shared/papers/a/__init__.py": "", "shared/papers/b/__init__.py": "", "notebooks/.keep": ""}


@pytest.mark.parametrize("files, expected", [
    ({"shared/papers/a/x.py": "from shared.papers.b import y\n"}, "shared/papers/a/x.py (papers.a) imports shared.papers.b"),
    ({"shared/papers/a/x.py": "import shared.papers.b.y\n"}, "imports shared.papers.b.y (papers.b)"),
    ({"shared/toolkit/t.py": "from shared.papers.a import x\n"}, "(toolkit) imports shared.papers.a"),
    ({"shared/run.py": "from shared.toolkit import llm\n"}, "shared/run.py (suite) imports shared.toolkit (toolkit)"),
    ({"shared/papers/a/x.py": "from . import y\n"}, "relative import"),
    ({"shared/toolkit/__init__.py": "import numpy\n"}, "must import nothing"),
    ({"notebooks/a.ipynb": '{"cells": [{"cell_type": "code", "source": ["from shared.papers.b import y"]}]}'},
     "notebooks/a.ipynb (papers.a) imports shared.papers.b"),
])
def test_a_broken_rule_is_reported(tmp_path, files, expected):
    root = write(tmp_path, {**INITS, **files})
    found = layering.violations(root)
    assert any(expected in line for line in found), found


def test_allowed_imports_pass(tmp_path):
    root = write(tmp_path, {**INITS,
                            "shared/claims.py": "from shared import paths\n",
                            "shared/toolkit/t.py": "from shared import claims\nfrom shared.toolkit import u\n",
                            "shared/papers/a/x.py": "from shared.toolkit import t\nfrom shared.papers.a import z\n"})
    assert layering.violations(root) == []


def test_the_package_init_may_import_the_kernel_pin_and_nothing_else(tmp_path):
    pinned = write(tmp_path / "a", {**INITS, "shared/__init__.py": "from shared import kernels as _k\n_k.pin()\n",
                                    "shared/kernels.py": "X = 1\n"})
    assert layering.violations(pinned) == []
    more = write(tmp_path / "b", {**INITS, "shared/__init__.py": "from shared import kernels, paths\n",
                                  "shared/kernels.py": "X = 1\n", "shared/paths.py": "Y = 1\n"})
    assert layering.violations(more) == ["shared/__init__.py: a tier's __init__.py must import nothing but shared.kernels"]
