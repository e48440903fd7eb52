"""``python -m shared.new``: a new paper in one command, refused for a bad or taken id."""
import json
import subprocess
import sys

import pytest
import yaml

from shared import new


@pytest.mark.parametrize("bad", ["9lives", "Demo", "demo-paper", "class", "", "a b"])
def test_an_invalid_id_is_refused(bad):
    with pytest.raises(new.NewPaperError, match="lower-case Python identifier"):
        new.check_id(bad)


def test_an_existing_id_is_refused_naming_where_it_exists():
    with pytest.raises(new.NewPaperError, match=r"exists already \(params.yaml.*notebooks/nc_losses.ipynb"):
        new.check_id("nc_losses")


def test_the_skeleton_has_the_short_paper_form():
    nb = new.skeleton_notebook("demo", "Demo", "A. Author", "Venue", "0000.00000")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert any(c.source.startswith("# NBVAL_CHECK_OUTPUT") for c in code)
    assert any(c.source.startswith("## Deviations from the paper") for c in nb.cells if c.cell_type == "markdown")


@pytest.mark.slow
def test_a_new_paper_runs_at_smoke_and_keeps_the_pipeline_current(tmp_path, scratch_repo):
    root = scratch_repo
    env_python = [sys.executable, "-m"]
    made = subprocess.run([*env_python, "shared.new", "demo_paper", "Demo", "--no-golden"], cwd=root,
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    assert "demo_paper" in yaml.safe_load((root / "params.yaml").read_text())["papers"]
    assert "demo_paper" in yaml.safe_load((root / "shared" / "catalog.yaml").read_text())
    assert "demo_paper:" in (root / "dvc.yaml").read_text()
    assert subprocess.run([*env_python, "shared.pipeline", "--check"], cwd=root).returncode == 0
    ran = subprocess.run([*env_python, "shared.run", "demo_paper", "--scale", "smoke", "--no-params-file",
                          "--output", str(tmp_path / "out")], cwd=root, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr[-2000:]
    verdicts = json.loads((tmp_path / "out" / "claims.json").read_text())
    assert [c["verdict"] for c in verdicts["claims"]] == ["PASS"]
    tests = subprocess.run([*env_python, "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                            "tests/papers/demo_paper"], cwd=root, capture_output=True, text=True)
    assert tests.returncode == 0, tests.stdout[-2000:]
    again = subprocess.run([*env_python, "shared.new", "demo_paper", "Demo"], cwd=root, capture_output=True, text=True)
    assert again.returncode == 2 and "exists already" in again.stderr


@pytest.mark.parametrize("reserved", sorted(new.RESERVED))
def test_a_name_the_suite_uses_is_refused(reserved):
    """`shared.new report T` clashed with the scorecard stage, `failed` with results/failed/."""
    with pytest.raises(new.NewPaperError, match=f"paper id '{reserved}' is reserved"):
        new.check_id(reserved)
