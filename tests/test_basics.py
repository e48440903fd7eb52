"""Seeding, devices, plots, results, progress and paths."""
import json
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from shared import parallel, paths, plots, progress, results, runtime
from shared.errors import MissingInputError, ParameterError, require_files, require_hf_folder


def test_seeding_makes_torch_and_numpy_repeat():
    runtime.seed_everything(3)
    a = (torch.rand(4), np.random.rand(4))
    runtime.seed_everything(3)
    b = (torch.rand(4), np.random.rand(4))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_device_choice():
    assert runtime.choose_device("cpu").type == "cpu"
    assert runtime.choose_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ParameterError, match="'device'.*allowed: auto, cpu, cuda, mps"):
        runtime.choose_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="no CUDA"):
            runtime.choose_device("cuda")


def test_threads():
    assert runtime.set_threads(1) == 1 and torch.get_num_threads() == 1


def _threads_and_square(x: int) -> tuple[int, int]:
    return torch.get_num_threads(), x * x


def test_parallel_map_equals_a_loop_and_gives_each_worker_one_thread():
    jobs = [(i,) for i in range(5)]
    serial = parallel.parallel_map(_threads_and_square, jobs)
    assert [v for _, v in serial] == [0, 1, 4, 9, 16]
    pooled = parallel.parallel_map(_threads_and_square, jobs, n_jobs=2, desc="squares")
    assert pooled == [(1, v) for _, v in serial]
    with pytest.raises(ParameterError, match="'n_jobs'"):
        parallel.parallel_map(_threads_and_square, jobs, n_jobs=0)


def test_output_dir_follows_the_runner_staging_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.OUTPUT_ENV, str(tmp_path / "stage"))
    assert paths.output_dir("x") == tmp_path / "stage"
    assert paths.figures_dir("x") == tmp_path / "stage" / "figures"
    monkeypatch.delenv(paths.OUTPUT_ENV)
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "results")
    assert paths.output_dir("x") == tmp_path / "results" / "x"


def test_save_figure_writes_a_png():
    plt.close("all")  # figures other tests left open
    plots.set_theme()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = plots.save(fig, "demo", "line")
    assert path.read_bytes()[:4] == b"\x89PNG" and not plt.get_fignums()


def test_metrics_are_plain_json_with_nan_as_null():
    path = results.write_metrics("demo", {"a": np.float32(0.5), "b": [math.nan, 1], "c": {"d": np.int64(2)}})
    assert json.loads(path.read_text()) == {"a": 0.5, "b": [None, 1], "c": {"d": 2}}


def test_tables_go_under_tables():
    import pandas as pd

    path = results.write_table("demo", "curve", pd.DataFrame({"step": [0, 1], "loss": [1.0, 0.5]}))
    assert path.parent.name == "tables" and path.read_text().startswith("step,loss")


def test_progress_is_quiet_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert progress.quiet() and list(progress.progress(range(3))) == [0, 1, 2]


def test_require_files_names_the_parameter_and_the_missing_files(tmp_path):
    (tmp_path / "a").write_text("")
    assert require_files("data_dir", tmp_path, ["a"], "a dataset") == tmp_path
    with pytest.raises(MissingInputError, match=r"'data_dir'.*missing: b"):
        require_files("data_dir", tmp_path, ["a", "b"], "a dataset")
    with pytest.raises(MissingInputError, match="'data_dir'.*not set"):
        require_files("data_dir", None, ["a"], "a dataset")


def test_require_hf_folder_wants_config_and_weights(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(MissingInputError, match="'ckpt'.*model.safetensors"):
        require_hf_folder("ckpt", tmp_path, "a checkpoint")
    (tmp_path / "model-00001-of-00002.safetensors").write_bytes(b"")
    assert require_hf_folder("ckpt", tmp_path, "a checkpoint") == tmp_path
