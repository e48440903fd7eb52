"""params.yaml, the notebooks, their presets, dvc.yaml and the golden copies stay consistent."""
import json

import pytest
import yaml

from shared import catalog, config, pipeline
from shared.golden import CHECK_MARK, GOLDEN_DIR
from shared.paths import REPO_ROOT, notebook_path
from shared.run import load_params, notebook_parameters

PAPERS = list(load_params()["papers"])
COMMON = set(config.COMMON)


def test_imports_are_found_in_every_form():
    source = "import shared.data\nfrom shared import claims, plots\nfrom shared.toolkit.models import mlp\nimport numpy"
    assert pipeline.imported_shared_modules(source) == {
        "shared.data", "shared.claims", "shared.plots", "shared.toolkit.models", "shared.toolkit.models.mlp"}


def test_module_closure_follows_imports_transitively():
    files = {p.name for p in pipeline.module_closure({"shared.run"})}
    assert {"run.py", "config.py", "errors.py", "paths.py", "results.py"} <= files
    assert "data.py" not in files


def test_dvc_yaml_is_generated_from_params_yaml():
    assert (REPO_ROOT / "dvc.yaml").read_text() == pipeline.render(), "run `python -m shared.pipeline`"


@pytest.mark.parametrize("paper_id", PAPERS)
def test_notebook_is_stored_clean_with_a_parameters_cell(paper_id):
    nb = json.loads(notebook_path(paper_id).read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert not any(c.get("outputs") or c.get("execution_count") for c in code)
    assert sum("parameters" in c["metadata"].get("tags", []) for c in code) == 1
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert any("".join(c["source"]).startswith(CHECK_MARK) for c in code), "no verdict cell for nbval"
    assert any("".join(c["source"]).startswith("## Deviations from the paper")
               for c in nb["cells"] if c["cell_type"] == "markdown")


@pytest.mark.parametrize("paper_id", PAPERS)
def test_presets_params_yaml_and_notebook_agree(paper_id):
    declared = notebook_parameters(paper_id)
    presets = config.load_presets(paper_id)
    knobs = set(presets["cpu"])
    assert all(set(p) == knobs for p in presets.values()), "every scale sets the same knobs"
    assert COMMON <= set(declared), "scale, seed and device are parameters"
    assert knobs <= set(declared), f"preset knobs missing from the parameters cell: {knobs - set(declared)}"
    block = load_params()["papers"][paper_id] or {}
    assert set(block) <= set(declared)
    assert declared["scale"]["default"].strip("\"'") == "cpu"


@pytest.mark.parametrize("paper_id", PAPERS)
def test_every_paper_has_a_catalog_entry_and_a_golden_notebook(paper_id):
    assert paper_id in catalog.PAPERS
    golden = GOLDEN_DIR / f"{paper_id}.ipynb"
    assert golden.exists(), f"run `python -m shared.golden {paper_id}`"
    injected = [c for c in json.loads(golden.read_text())["cells"]
                if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "scale = \"smoke\"" in "".join(injected[0]["source"])


def cells_without_injection(path) -> list[tuple[str, str]]:
    """(type, source) of every cell but papermill's injected-parameters one."""
    cells = json.loads(path.read_text())["cells"]
    return [(c["cell_type"], "".join(c["source"])) for c in cells
            if "injected-parameters" not in c["metadata"].get("tags", [])]


@pytest.mark.parametrize("paper_id", PAPERS)
def test_every_golden_copy_has_its_notebooks_cells(paper_id):
    """A golden copy tests the notebook as it is: a code or text change not refreshed into it fails here."""
    golden, notebook = GOLDEN_DIR / f"{paper_id}.ipynb", REPO_ROOT / "notebooks" / f"{paper_id}.ipynb"
    assert cells_without_injection(golden) == cells_without_injection(notebook), \
        f"tests/golden/{paper_id}.ipynb is stale: run `python -m shared.golden {paper_id}`"


def test_readme_results_table_was_made_from_the_committed_dvc_lock():
    """The README's table records the claims.json hashes it was made from; dvc.lock pins them."""
    from shared.report import lock_digests, readme_digests

    readme = readme_digests((REPO_ROOT / "README.md").read_text())
    assert readme == lock_digests(REPO_ROOT / "dvc.lock"), "run `make repro` (it refreshes the table)"


def stage_deps() -> dict[str, list[str]]:
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    return {name: stage["deps"] for name, stage in stages.items() if name != "report"}


def test_a_package_counts_as_its_init_plus_the_modules_imported():
    files = {p.relative_to(REPO_ROOT).as_posix() for p in pipeline.module_closure({"shared.toolkit.models"})}
    assert {"shared/__init__.py", "shared/toolkit/__init__.py", "shared/toolkit/models/__init__.py",
            "shared/toolkit/models/mlp.py"} <= files
    assert not any(f.endswith("/toolkit") or f == "shared/toolkit/llm.py" for f in files)


def test_touching_one_toolkit_module_marks_only_the_stages_that_import_it():
    deps = stage_deps()
    users = {name for name, d in deps.items() if "shared/toolkit/llm.py" in d}
    assert "icl_compression" in users and "nc_losses" not in users and "residual_convergence" not in users
    for name, d in deps.items():
        assert all(not (REPO_ROOT / dep).is_dir() or dep == "data" for dep in d), f"{name}: a folder dependency"
        imported = pipeline.module_closure(pipeline.imported_shared_modules(pipeline.notebook_source(name)) | {"shared.run"})
        assert ("shared/toolkit/llm.py" in d) == (REPO_ROOT / "shared/toolkit/llm.py" in imported)
