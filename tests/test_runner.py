"""The runner: validation of ids, scales, names and types; staging, success and failure."""
import json
import shutil
from pathlib import Path

import pytest
import yaml

from shared import paths, run
from shared.errors import ParameterError

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def demo(tmp_path, monkeypatch):
    """A one-paper project (`demo`) in a temporary folder."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "presets").mkdir()
    shutil.copy(FIXTURES / "demo.ipynb", tmp_path / "notebooks" / "demo.ipynb")
    shutil.copy(FIXTURES / "demo.yaml", tmp_path / "presets" / "demo.yaml")
    params = {"scale": "smoke", "seed": 0, "papers": {"demo": {"steps": None, "rate": 0.5}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.setattr(paths, "NOTEBOOKS_DIR", tmp_path / "notebooks")
    monkeypatch.setattr(paths, "PRESETS_DIR", tmp_path / "presets")
    monkeypatch.setattr(paths, "PARAMS_FILE", tmp_path / "params.yaml")
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "results")
    return tmp_path


def test_parameters_merge_params_file_and_sets(demo):
    got = run.build_parameters("demo", None, ["steps=7"])
    assert got == {"seed": 0, "scale": "smoke", "rate": 0.5, "steps": 7}


def test_scale_flag_wins_and_params_file_can_be_ignored(demo):
    got = run.build_parameters("demo", "paper", [], use_params_file=False)
    assert got == {"scale": "paper"}


@pytest.mark.parametrize("paper, scale, sets, named", [
    ("nope", None, [], "paper"),
    ("demo", "huge", [], "scale"),
    ("demo", None, ["no_such_param=1"], "no_such_param"),
    ("demo", None, ["steps=many"], "steps"),
    ("demo", None, ["rate=fast"], "rate"),
    ("demo", None, ["fail=perhaps"], "fail"),
    ("demo", None, ["steps"], "steps"),
])
def test_bad_input_is_refused_with_its_name(demo, paper, scale, sets, named):
    with pytest.raises(ParameterError, match=f"'{named}'") as error:
        run.build_parameters(paper, scale, sets)
    assert named in str(error.value)


def test_wrong_type_in_params_file_is_refused(demo):
    params = yaml.safe_load((demo / "params.yaml").read_text())
    params["papers"]["demo"]["steps"] = "ten"
    (demo / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParameterError, match="'steps': expected int"):
        run.build_parameters("demo", None, [])


def test_cli_exits_non_zero_naming_the_problem(demo, capsys):
    with pytest.raises(SystemExit) as exit_:
        run.main(["demo", "--scale", "huge"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "'scale'" in err and "smoke, cpu, paper" in err
    with pytest.raises(SystemExit):
        run.main(["demo", "--set", "no_such_param=1"])
    assert "no_such_param" in capsys.readouterr().err


@pytest.mark.slow
def test_successful_run_is_moved_into_place(demo):
    dest = demo / "results" / "demo"
    run.execute("demo", run.build_parameters("demo", None, []), dest)
    assert json.loads((dest / "metrics.json").read_text()) == {"rate": 0.5, "steps": None}
    assert json.loads((dest / "claims.json").read_text())["passed"] == 1
    provenance = json.loads((dest / "run.json").read_text())
    assert provenance["parameters"]["rate"] == 0.5 and provenance["wall_time_s"] > 0
    assert provenance["threads"]["OMP_WAIT_POLICY"] == "PASSIVE" and "cpu_features" in provenance["hardware"]
    assert (dest / "notebook.ipynb").exists()
    assert not any((demo / "results" / ".staging").iterdir())


@pytest.mark.parametrize("given, kernel_gets", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_the_kernel_gets_passive_openmp_threads_unless_the_user_chose(tmp_path, monkeypatch, given, kernel_gets):
    import os

    if given is None:
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    else:
        monkeypatch.setenv("OMP_WAIT_POLICY", given)
    with run.kernel_environment(tmp_path):
        assert os.environ["OMP_WAIT_POLICY"] == kernel_gets
    assert os.environ.get("OMP_WAIT_POLICY") == given


@pytest.mark.slow
def test_failed_run_keeps_the_previous_good_result(demo):
    dest = demo / "results" / "demo"
    run.execute("demo", run.build_parameters("demo", None, []), dest)
    good = (dest / "run.json").read_text()
    import papermill

    with pytest.raises(papermill.PapermillExecutionError):
        run.execute("demo", run.build_parameters("demo", None, ["fail=true"]), dest)
    assert (dest / "run.json").read_text() == good and (dest / "claims.json").exists()
    failed = demo / "results" / "failed" / "demo.ipynb"
    assert "asked to fail" in failed.read_text()
    assert not any((demo / "results" / ".staging").iterdir())


def test_one_entry_of_a_dict_parameter_can_be_set(demo):
    nb = (demo / "notebooks" / "demo.ipynb")
    nb.write_text(nb.read_text().replace("fail: bool = False", "fail: bool = False\\npaths: dict = {}"))
    got = run.build_parameters("demo", None, ["paths.a=/x", "paths.b=/y"], use_params_file=False)
    assert got["paths"] == {"a": "/x", "b": "/y"}
    with pytest.raises(ParameterError, match="'steps': has type int"):
        run.build_parameters("demo", None, ["steps.a=1"])


def test_paper_scale_without_local_data_is_refused_before_the_kernel(tmp_path, monkeypatch, capsys):
    """The real nc_losses notebook at `paper` scale with no CIFAR folder: refused naming the parameter, no kernel."""
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "results")
    with pytest.raises(SystemExit) as exit_:
        run.main(["nc_losses", "--scale", "paper", "--no-params-file", "--set", "cifar_dir=/nonexistent/cifar"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "parameter 'cifar_dir' points to '/nonexistent/cifar'" in err
    assert not (tmp_path / "results").exists()


def test_run_json_names_the_commit_the_run_started_from(monkeypatch):
    """A commit made while a long run goes on must not be recorded as the code it ran."""
    from datetime import datetime, timezone

    states = iter([{"git_commit": "a" * 40, "git_dirty": False}, {"git_commit": "b" * 40, "git_dirty": True}])
    monkeypatch.setattr(run, "git_state", lambda: next(states))
    code = run.git_state()  # read at the start, as main() does
    run.git_state()         # a later commit
    record = run.provenance("demo", {"scale": "smoke"}, Path("/nonexistent"), datetime.now(timezone.utc), 1.0, code)
    assert (record["git_commit"], record["git_dirty"]) == ("a" * 40, False)
