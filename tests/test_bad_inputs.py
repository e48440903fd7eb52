"""What a careless or hostile user throws at the suite, each refused with a clear error.

Validation cases run before any kernel starts (fast); the few that need a kernel are marked slow.
"""
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from shared import config, paths, run
from shared.errors import CorruptInputError, ParameterError
from shared.paths import REPO_ROOT
from shared.toolkit.cifar import LAYOUTS, load_cifar

ERRORS = (ParameterError, config.PresetError, run.ParamsFileError, run.OutputError)

# (name, paper, --set values, the error's class, text the message must contain)
KNOB_CASES = [
    ("epochs=0", "nc_losses", ["epochs=0"], ParameterError, "'epochs': 0 is out of range (allowed: >= 1)"),
    ("epochs=-3", "nc_losses", ["epochs=-3"], ParameterError, "'epochs': -3 is out of range"),
    ("batch_size=0", "nc_losses", ["batch_size=0"], ParameterError, "'batch_size'"),
    ("train_per_class=0", "nc_losses", ["train_per_class=0"], ParameterError, "'train_per_class'"),
    ("ufm_steps=-1", "nc_losses", ["ufm_steps=-1"], ParameterError, "'ufm_steps'"),
    ("losses=[]", "nc_losses", ["losses=[]"], ParameterError, "'losses': needs at least 1 item"),
    ("losses=[ce, hinge]", "nc_losses", ["losses=[ce, hinge]"], ParameterError, "unknown item(s) ['hinge']"),
    ("lr=nan", "nc_losses", ["lr=nan"], ParameterError, "'lr': nan is not a finite number"),
    ("lr=inf", "nc_losses", ["lr=inf"], ParameterError, "'lr': inf is not a finite number"),
    ("dataset=bogus", "nc_losses", ["dataset=bogus"], ParameterError, "'dataset': unknown value 'bogus'"),
    ("betas=[]", "residual_convergence", ["betas=[]"], ParameterError, "'betas': needs at least 1 item"),
    ("betas=[0]", "residual_convergence", ["betas=[0]"], ParameterError, "'betas'"),
    ("steps=1", "residual_convergence", ["steps=1"], ParameterError, "'steps'"),
    ("modes=[]", "layerwise_similarity", ["modes=[]"], ParameterError, "'modes'"),
    ("K_list=[5]", "icl_compression", ["K_list=[5]"], ParameterError, "'K_list'"),
    ("device=gpu", "nc_losses", ["device=gpu"], ParameterError, "'device': unknown value 'gpu' (allowed: auto, cpu, cuda, mps)"),
    ("seed=-1", "nc_losses", ["seed=-1"], ParameterError, "'seed'"),
    ("garbage YAML list", "nc_losses", ["losses=[ce, ls"], ParameterError, "'losses': '[ce, ls' is not valid YAML"),
    ("garbage YAML dict entry", "icl_compression", ["model_paths.a=[x"], ParameterError, "'model_paths.a'"),
    ("unknown knob", "nc_losses", ["no_such_knob=1"], ParameterError, "'no_such_knob': is not a parameter"),
    ("wrong type", "nc_losses", ["epochs=ten"], ParameterError, "'epochs': 'ten' is not a valid int"),
]


@pytest.mark.parametrize("name, paper, sets, error, text", KNOB_CASES, ids=[c[0] for c in KNOB_CASES])
def test_bad_knob_values_are_refused_before_any_kernel(name, paper, sets, error, text):
    with pytest.raises(error) as raised:
        run.build_parameters(paper, "cpu", sets, use_params_file=False)
    assert text in str(raised.value)


def test_every_preset_is_within_its_limits():
    for paper in run.load_params()["papers"]:
        for scale in config.SCALES:
            config.resolve(paper, scale, {})


@pytest.fixture
def params_file(tmp_path, monkeypatch):
    target = tmp_path / "params.yaml"
    monkeypatch.setattr(paths, "PARAMS_FILE", target)
    return target


@pytest.mark.parametrize("text, expected", [
    ("scale: cpu\npapers:\n  nc_losses: {epochs: [1,\n", "line"),
    ("- scale\n- seed\n", "the top level is a list, not a mapping"),
    ("scale: cpu\nseed: 0\n", "no `papers:` mapping"),
], ids=["malformed", "top-level list", "no papers block"])
def test_a_broken_params_file_is_named_with_the_fix(params_file, capsys, text, expected):
    params_file.write_text(text)
    with pytest.raises(SystemExit) as exit_:
        run.main(["nc_losses"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and str(params_file) in err and expected in err and "papers:" in err


def test_a_preset_lacking_a_knob_is_refused_when_loaded(tmp_path, monkeypatch):
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "demo.yaml").write_text("smoke: {a: 1, b: 2}\ncpu: {a: 1}\npaper: {a: 1, b: 2}\n")
    monkeypatch.setattr(paths, "PRESETS_DIR", presets)
    with pytest.raises(config.PresetError, match=r"scale 'cpu' lacks the knob\(s\) \['b'\]"):
        config.load_presets("demo")


def test_a_notebook_knob_missing_from_the_preset_is_refused(monkeypatch):
    with pytest.raises(config.PresetError, match=r"lacks the knob\(s\) \['new_knob'\]"):
        config.check_declared_knobs("nc_losses", ["epochs", "new_knob"])


@pytest.mark.parametrize("output", ["results", ".", "..", "~", "results/failed", "results/.staging/x"])
def test_output_never_replaces_the_repository_or_results(capsys, output):
    target = (REPO_ROOT / output) if not output.startswith("~") else Path(output)
    with pytest.raises(SystemExit) as exit_:
        run.main(["nc_losses", "--scale", "smoke", "--output", str(target)])
    assert exit_.value.code == 2 and "--output" in capsys.readouterr().err


def test_output_refuses_a_folder_it_did_not_create(tmp_path, capsys):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("precious")
    with pytest.raises(SystemExit):
        run.main(["nc_losses", "--scale", "smoke", "--output", str(mine)])
    assert "not a previous result of nc_losses" in capsys.readouterr().err
    assert (mine / "chapter1.tex").read_text() == "precious"
    other = tmp_path / "other"
    other.mkdir()
    (other / "run.json").write_text(json.dumps({"paper": "icl_compression"}))
    with pytest.raises(run.OutputError):
        run.check_output("nc_losses", other)
    (other / "run.json").write_text(json.dumps({"paper": "nc_losses"}))
    assert run.check_output("nc_losses", other) == other.resolve()
    assert run.check_output("nc_losses", tmp_path / "new") == (tmp_path / "new").resolve()


class Boom:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def write_cifar10(folder: Path, batch_for=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    layout = LAYOUTS["cifar10"]
    for name in layout["train"] + layout["test"]:
        batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}
        (folder / name).write_bytes(pickle.dumps(batch_for(name) if batch_for else batch))
    (folder / layout["meta"]).write_bytes(pickle.dumps({b"label_names": [b"a", b"b"]}))
    return folder


def test_a_crafted_cifar_pickle_runs_no_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = write_cifar10(tmp_path / "cifar", lambda name: {b"data": Boom(), b"labels": [0]})
    with pytest.raises(CorruptInputError, match=r"'cifar_dir'.*data_batch_1.*refused to load posix.system"):
        load_cifar(folder, "cifar10", param="cifar_dir")
    assert not (tmp_path / "pwned").exists()


def test_intact_cifar_pickles_still_load(tmp_path):
    data = load_cifar(write_cifar10(tmp_path / "cifar"), "cifar10")
    assert data.x_train.shape == (10, 3, 32, 32) and data.classes == ["a", "b"]


@pytest.mark.parametrize("batch, expected", [
    (b"not a pickle at all", "data_batch_1"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": ["x", "y"]}, "data_batch_1"),
    ({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}, "data_batch_1"),
    (["a", "list"], "expected a dict"),
], ids=["garbage bytes", "string labels", "wrong image size", "not a dict"])
def test_a_corrupted_cifar_batch_names_the_file_and_parameter(tmp_path, batch, expected):
    folder = write_cifar10(tmp_path / "cifar")
    (folder / "data_batch_1").write_bytes(batch if isinstance(batch, bytes) else pickle.dumps(batch))
    with pytest.raises(CorruptInputError, match="parameter 'cifar100_dir'") as error:
        load_cifar(folder, "cifar10", param="cifar100_dir")
    assert expected in str(error.value)


def test_a_broken_safetensors_file_names_the_parameter(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    from shared.toolkit.llm import load_causal_lm, toy_tokenizer

    folder = tmp_path / "tiny"
    LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=2)).save_pretrained(folder)
    toy_tokenizer().save_pretrained(folder)
    (folder / "model.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(CorruptInputError, match=r"parameter 'model_paths.tiny': the file '.*tiny'"):
        load_causal_lm(folder, param="model_paths.tiny")


DRIVER = """
import sys
from pathlib import Path
from shared import paths, run
root = Path(sys.argv[1])
paths.NOTEBOOKS_DIR, paths.PRESETS_DIR = root / "notebooks", root / "presets"
paths.PARAMS_FILE, paths.RESULTS_DIR = root / "params.yaml", root / "results"
sys.exit(run.main(sys.argv[2:]))
"""


@pytest.fixture
def slow_demo(tmp_path):
    """A one-paper project whose notebook sleeps (optionally deaf to SIGINT) in one cell."""
    fixtures = Path(__file__).parent / "fixtures"
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "presets").mkdir()
    nb = json.loads((fixtures / "demo.ipynb").read_text())
    nb["cells"][1]["source"] = "".join(nb["cells"][1]["source"]) + "\ndeaf: bool = False\n"
    nb["cells"].insert(2, {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": (
        "import signal, time\nif deaf:\n    signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "open('sleeping', 'w').close()\ntime.sleep(120)")})
    (tmp_path / "notebooks" / "demo.ipynb").write_text(json.dumps(nb))
    (tmp_path / "presets" / "demo.yaml").write_text((fixtures / "demo.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"scale": "smoke", "seed": 0, "papers": {"demo": {}}}))
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize("sig, deaf", [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)],
                         ids=["ctrl-c", "sigterm", "ctrl-c, kernel ignores SIGINT"])
def test_a_signal_stops_a_long_run_within_seconds_and_keeps_the_notebook(slow_demo, sig, deaf):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "CI": "1"}
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(slow_demo), "demo", "--set", f"deaf={deaf}"],
                            env=env, stderr=subprocess.PIPE, text=True)
    staging = slow_demo / "results" / ".staging"
    deadline = time.time() + 90
    while time.time() < deadline and not (slow_demo / "notebooks" / "sleeping").exists():  # the kernel's cwd
        time.sleep(0.2)
    time.sleep(0.5)
    sent = time.time()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert time.time() - sent < 15, err
    assert proc.returncode == 130, err
    assert "stopped by signal" in err and "Kernel is running over TCP" not in err
    assert (slow_demo / "results" / "failed" / "demo.ipynb").exists()
    assert not (slow_demo / "results" / "demo").exists() and not list(staging.iterdir())


def test_staging_left_by_a_killed_run_is_pruned(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / f"demo-pid{dead.pid}-abc").mkdir()
    (tmp_path / f"demo-pid{os.getpid()}-abc").mkdir()
    assert [p.name for p in run.prune_staging(tmp_path)] == [f"demo-pid{dead.pid}-abc"]
    assert (tmp_path / f"demo-pid{os.getpid()}-abc").exists()


@pytest.mark.slow
def test_a_direct_papermill_run_refuses_unknown_parameters_and_writes_all_or_nothing(scratch_repo):
    env = {**{k: v for k, v in os.environ.items() if k != paths.OUTPUT_ENV}, "PYTHONPATH": str(scratch_repo)}
    py = [sys.executable, "-m"]
    assert subprocess.run([*py, "shared.new", "demo_paper", "Demo", "--no-golden"], cwd=scratch_repo, env=env,
                          capture_output=True).returncode == 0
    notebook, out = "notebooks/demo_paper.ipynb", str(scratch_repo / "executed.ipynb")

    def papermill(*params):
        return subprocess.run([*py, "papermill", notebook, out, "-k", "python3", "--cwd", "notebooks", *params],
                              cwd=scratch_repo, env=env, capture_output=True, text=True)

    unknown = papermill("-p", "n_pointz", "100")
    assert unknown.returncode != 0 and "parameter 'n_pointz': is not a parameter" in unknown.stderr
    results = scratch_repo / "results" / "demo_paper"
    assert not results.exists()
    good = papermill("-p", "scale", "smoke")
    assert good.returncode == 0, good.stderr[-2000:]
    written = {p.relative_to(results).as_posix() for p in results.rglob("*") if p.is_file()}
    assert {"config.json", "claims.json", "metrics.json", "figures/fit.png", "tables/points.csv"} <= written
    before = {p: p.stat().st_mtime_ns for p in results.rglob("*") if p.is_file()}
    crashed = papermill("-p", "scale", "smoke", "-p", "n_points", "0")  # the fit of no points fails mid-run
    assert crashed.returncode != 0
    assert {p: p.stat().st_mtime_ns for p in results.rglob("*") if p.is_file()} == before, "a failed run wrote files"
