"""What a careless or hostile user throws at the suite, each refused with a clear error.

Validation cases run before any kernel starts (fast); the few that need a kernel are marked slow.
"""
import json
import os
import pickle
import signal
import shutil
import subprocess
import sys
import tempfile
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
    ("batch_size=0, no limits block", "projector_alignment", ["batch_size=0"], ParameterError,
     "'batch_size': 0 is out of range (allowed: >= 1)"),
    ("map_epochs=[1.5]", "nc_losses", ["map_epochs=[1.5]"], ParameterError,
     "'map_epochs[0]': expected an int, got float 1.5"),
    ("betas=[nan] (a string)", "residual_convergence", ["betas=[nan]"], ParameterError,
     "'betas[0]': expected a float, got str 'nan'"),
    ("betas=[.nan]", "residual_convergence", ["betas=[.nan]"], ParameterError, "'betas': [nan] is not a finite number"),
    ("seed=10^23", "nc_losses", ["seed=99999999999999999999999"], ParameterError,
     "'seed': 99999999999999999999999 is not"),
    ("seed=2^32", "nc_losses", ["seed=4294967296"], ParameterError, "'seed'"),
    ("ufm_classes=0", "generalized_nc", ["ufm_classes=0"], ParameterError, "'ufm_classes': 0 is out of range"),
    ("Ms=[a, 3]", "adacontour", ["Ms=[a, 3]"], ParameterError, "'Ms[0]': expected an int, got str 'a'"),
    ("code_pairs=[[10, .inf]]", "generalized_nc", ["code_pairs=[[10, .inf]]"], ParameterError, "'code_pairs[0][1]'"),
    ("code_pairs=[[10, 0]]", "generalized_nc", ["code_pairs=[[10, 0]]"], ParameterError, "'code_pairs': [[10, 0]] is out"),
    ("code_pairs=[10, 3]", "generalized_nc", ["code_pairs=[10, 3]"], ParameterError, "'code_pairs[0]': expected a list"),
    ("lambdas=[0, x]", "projector_alignment", ["lambdas=[0, x]"], ParameterError, "'lambdas[1]': expected a float"),
    ("n_jobs=0 (joblib)", "adacontour", ["n_jobs=0"], ParameterError, "'n_jobs': 0 has no meaning"),
    ("tv_layers=[-1]", "icl_compression", ["tv_layers=[-1]"], ParameterError, "'tv_layers'"),
    ("eval_iters=[0]", "dream_sr", ["eval_iters=[0]"], ParameterError, "'eval_iters'"),
    ("momentum=1", "generalized_nc", ["momentum=1"], ParameterError, "'momentum'"),
    ("a list with a null item", "nc_losses", ["losses=[ce, null]"], ParameterError, "'losses': item 1 is empty"),
    ("a path that is a number", "icl_compression", ["model_paths.tiny=5"], ParameterError, "'model_paths': 5 is not a path"),
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


PATHY = ("_dir", "_path", "_paths", "_file", "checkpoint", "imagefolder")


@pytest.mark.parametrize("paper", list(run.load_params()["papers"]))
def test_every_knob_has_a_type_and_a_range_and_every_path_knob_says_what_it_names(paper):
    """A knob without limits took any value (batch_size=0 ran to rc 0 and replaced the previous result)."""
    limits, types = config.load_limits(paper), config.knob_types(paper)
    for knob, kind in types.items():
        spec = limits.get(knob, {})
        assert kind != "any" or "type" in spec, f"{paper}.{knob}: the presets disagree on its type"
        if "int" in kind or "float" in kind:
            assert set(spec) & {"min", "max", "above", "below", "choices"}, f"{paper}.{knob} ({kind}) has no range"
        if knob.endswith(PATHY):
            assert spec.get("path") in config.PATH_KINDS, f"{paper}.{knob} is a path knob without `path:`"


def test_a_float_list_knob_takes_floats_and_an_int_list_knob_ints():
    got = run.build_parameters("projector_alignment", "smoke", ["lambdas=[0, 0.5, 1]"], use_params_file=False)
    assert got["lambdas"] == [0, 0.5, 1]
    assert run.build_parameters("nc_losses", "smoke", ["map_epochs=[3]"], use_params_file=False)["map_epochs"] == [3]


@pytest.mark.parametrize("value", ["0", "-1", "abc", "100000", "1.5"])
def test_papersuite_threads_is_refused_before_the_kernel_naming_the_variable(monkeypatch, value):
    """0 silently meant every core; -1 and abc failed late; 100000 stalled a 9 s run past 120 s."""
    monkeypatch.setenv("PAPERSUITE_THREADS", value)
    with pytest.raises(ParameterError, match=r"parameter 'PAPERSUITE_THREADS': .* \(allowed: 1-256, or unset\)"):
        run.build_parameters("nc_losses", "smoke", [], use_params_file=False)


# (paper, scale, --set values, the knob the refusal must name)
PATH_CASES = [
    ("generalized_nc", "paper", ["cifar100_dir=/nonexistent"], "cifar100_dir"),
    ("generalized_nc", "paper", [], "cifar100_dir"),
    ("generalized_nc", "cpu", ["dataset=tiny_imagenet"], "tiny_imagenet_dir"),
    ("nc_losses", "paper", ["cifar_dir=/nonexistent/cifar"], "cifar_dir"),
    ("nc_losses", "smoke", ["cifar100_dir=~/no/such/cifar-100"], "cifar100_dir"),
    ("residual_convergence", "smoke", ["features=embeddings"], "embedding_checkpoint"),
    ("residual_convergence", "smoke", ["features=embeddings", "embedding_checkpoint=.", "text_file=."], "text_file"),
    ("icl_compression", "smoke", ["model_paths.tiny=/nonexistent/tiny"], "model_paths"),
    ("layerwise_similarity", "smoke", ["gpt2_path=/nonexistent/gpt2"], "gpt2_path"),
    ("nc_transfer", "smoke", ["ft_encoder=checkpoint"], "pretrained_checkpoint"),
    ("projector_alignment", "smoke", ["backbone=llava15"], "llava_dir"),
    ("dream_sr", "smoke", ["dataset=faces"], "ffhq_dir"),
    ("adacontour", "smoke", ["instances=coco"], "coco_dir"),
    ("efficiency_spectrum", "paper", [], "model_path"),
    ("efficiency_spectrum", "smoke", ["text_file=/nonexistent.txt"], "text_file"),
]


@pytest.mark.parametrize("paper, scale, sets, knob", PATH_CASES, ids=[f"{c[0]}:{c[3]}:{c[1]}" for c in PATH_CASES])
def test_a_missing_input_folder_is_refused_before_the_kernel(paper, scale, sets, knob):
    """generalized_nc --scale paper --set cifar100_dir=/nonexistent computed for minutes before cell 15 looked."""
    from shared.errors import MissingInputError

    with pytest.raises(MissingInputError, match=f"parameter '{knob}'"):
        run.build_parameters(paper, scale, sets, use_params_file=False)


def test_a_relative_input_path_means_the_users_folder_not_the_kernels(tmp_path, monkeypatch):
    (tmp_path / "cifar").mkdir()
    monkeypatch.chdir(tmp_path)
    got = run.build_parameters("nc_losses", "smoke", ["cifar100_dir=cifar"], use_params_file=False)
    assert got["cifar100_dir"] == str(tmp_path / "cifar")


def test_a_preset_knob_the_notebook_does_not_declare_is_refused(tmp_path, monkeypatch):
    """An extra knob in a preset was silently accepted (and never read)."""
    fixtures = Path(__file__).parent / "fixtures"
    for name in ("notebooks", "presets"):
        (tmp_path / name).mkdir()
    (tmp_path / "notebooks" / "demo.ipynb").write_text((fixtures / "demo.ipynb").read_text())
    (tmp_path / "presets" / "demo.yaml").write_text("\n".join(
        f"{scale}: {{steps: 1, rate: 0.1, stpes: 3}}" for scale in config.SCALES) + "\n")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"scale": "smoke", "seed": 0, "papers": {"demo": {}}}))
    for attr, folder in (("NOTEBOOKS_DIR", "notebooks"), ("PRESETS_DIR", "presets"), ("PARAMS_FILE", "params.yaml")):
        monkeypatch.setattr(paths, attr, tmp_path / folder)
    with pytest.raises(config.PresetError, match=r"\['stpes'\] that notebooks/demo.ipynb does not declare"):
        run.build_parameters("demo", None, [])


@pytest.fixture
def params_file(tmp_path, monkeypatch):
    target = tmp_path / "params.yaml"
    monkeypatch.setattr(paths, "PARAMS_FILE", target)
    return target


@pytest.mark.parametrize("text, expected", [
    ("scale: cpu\npapers:\n  nc_losses: {epochs: [1,\n", "line"),
    ("- scale\n- seed\n", "the top level is a list, not a mapping"),
    ("scale: cpu\nseed: 0\n", "no `papers:` mapping"),
    ("scale: cpu\nseed: 0\npapers:\n  nc_losses: 5\n", "papers.nc_losses is a int (5), not a mapping"),
    ("scale: cpu\nseed: 0\npapers:\n  nc_losses: [epochs]\n", "papers.nc_losses is a list"),
    ("", "is empty"),
    ("# only a comment\n", "is empty"),
], ids=["malformed", "top-level list", "no papers block", "a block that is a number", "a block that is a list",
        "empty", "only a comment"])
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
import tempfile
from pathlib import Path
from shared import paths, run
root = Path(sys.argv[1])
paths.NOTEBOOKS_DIR, paths.PRESETS_DIR = root / "notebooks", root / "presets"
paths.PARAMS_FILE, paths.RESULTS_DIR = root / "params.yaml", root / "results"
sys.exit(run.main(sys.argv[2:]))
"""


@pytest.fixture
def slow_demo(tmp_path):
    """A one-paper project whose notebook waits (optionally deaf to SIGINT, or first in C code that keeps the GIL)
    in one cell until a file 'go' appears in notebooks/."""
    fixtures = Path(__file__).parent / "fixtures"
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "presets").mkdir()
    nb = json.loads((fixtures / "demo.ipynb").read_text())
    nb["cells"][1]["source"] = "".join(nb["cells"][1]["source"]) + "\ndeaf: bool = False\nhold_gil: bool = False\n"
    nb["cells"].insert(2, {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": (
        "import os, signal, time\nif deaf:\n    signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "open('sleeping', 'w').close()\nif hold_gil:  # a C loop that keeps the GIL: no thread of the kernel runs\n"
        "    import re\n    re.match(r'(a+)+$', 'a' * 64 + 'b')\nend = time.time() + 120\n"
        "while not os.path.exists('go') and time.time() < end:\n    time.sleep(0.1)")})
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
    assert proc.returncode == 128 + sig, err  # 130 for Ctrl-C, 143 for SIGTERM
    assert "stopped by signal" in err and "Kernel is running over TCP" not in err
    assert (slow_demo / "results" / "failed" / "demo.ipynb").exists()
    assert not (slow_demo / "results" / "demo").exists() and not list(staging.iterdir())


def start_demo(slow_demo: Path, *args: str) -> subprocess.Popen:
    """The runner on ``slow_demo``, returned once its kernel sleeps in the cell that waits for a 'go' file."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "CI": "1"}
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(slow_demo), "demo", *args],
                            env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 90
    while time.time() < deadline and not (slow_demo / "notebooks" / "sleeping").exists():  # the kernel's cwd
        time.sleep(0.2)
    return proc


@pytest.mark.slow
def test_a_kernel_dies_with_its_runner(slow_demo):
    """A SIGKILLed runner left its kernel computing with no owner (ipykernel's own watch is a Python thread:
    it never runs while a cell keeps the GIL)."""
    import psutil

    proc = start_demo(slow_demo, "--set", "hold_gil=true")
    kernels = psutil.Process(proc.pid).children(recursive=True)
    assert kernels
    proc.kill()
    proc.communicate(timeout=30)
    gone, alive = psutil.wait_procs(kernels, timeout=15)
    for orphan in alive:
        orphan.kill()
    assert not alive, f"kernel(s) {[p.pid for p in alive]} outlived the runner"


@pytest.mark.slow
def test_a_folder_made_during_a_real_run_is_left_untouched(slow_demo, tmp_path):
    """`--output X &`, then the user makes X/ with a file in it: the run ended rc 0 and the file was gone."""
    target = tmp_path / "X"
    proc = start_demo(slow_demo, "--output", str(target))
    target.mkdir()
    (target / "my_notes.txt").write_text("precious")
    (slow_demo / "notebooks" / "go").touch()
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 1, err
    assert sorted(p.name for p in target.iterdir()) == ["my_notes.txt"] and "left untouched" in err
    assert (next(tmp_path.glob("X.demo-*")) / "claims.json").exists()


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
    assert {"config.json", "claims.json", "metrics.json", "run.json", "figures/fit.png", "tables/points.csv"} <= written
    recorded = json.loads((results / "run.json").read_text())
    assert recorded["paper"] == "demo_paper" and recorded["parameters"]["scale"] == "smoke" and recorded["md5"]
    rerun = subprocess.run([*py, "shared.run", "demo_paper", "--scale", "smoke"], cwd=scratch_repo, env=env,
                           capture_output=True, text=True)  # the runner refused its own folder after such a run
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    before = {p: p.stat().st_mtime_ns for p in results.rglob("*") if p.is_file()}
    crashed = papermill("-p", "scale", "smoke", "-p", "n_points", "0")  # the fit of no points fails mid-run
    assert crashed.returncode != 0
    assert {p: p.stat().st_mtime_ns for p in results.rglob("*") if p.is_file()} == before, "a failed run wrote files"


# ---------------------------------------------------------------- result folders: what a run may replace
# The notebook's execution is replaced by a function that writes what a run writes (fast, no kernel);
# tests marked slow run real kernels.

@pytest.fixture
def demo(tmp_path, monkeypatch):
    """A one-paper project (`demo`) with results in tmp_path/results and a copy of data.dvc."""
    from shared import data

    fixtures = Path(__file__).parent / "fixtures"
    for name in ("notebooks", "presets"):
        (tmp_path / name).mkdir()
    (tmp_path / "notebooks" / "demo.ipynb").write_text((fixtures / "demo.ipynb").read_text())
    (tmp_path / "presets" / "demo.yaml").write_text((fixtures / "demo.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"scale": "smoke", "seed": 0, "papers": {"demo": {}}}))
    (tmp_path / "data.dvc").write_text(data.DVC_FILE.read_text())
    monkeypatch.setattr(paths, "NOTEBOOKS_DIR", tmp_path / "notebooks")
    monkeypatch.setattr(paths, "PRESETS_DIR", tmp_path / "presets")
    monkeypatch.setattr(paths, "PARAMS_FILE", tmp_path / "params.yaml")
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(data, "DVC_FILE", tmp_path / "data.dvc")
    monkeypatch.delenv("DVC_STAGE", raising=False)
    return tmp_path


def fake_notebook(monkeypatch, during=None, error: BaseException | None = None) -> list[dict]:
    """Make papermill 'run' the notebook by writing a result into the staging folder; ``during()`` runs
    mid-run, ``error`` is raised at the end. Returns the list of the runs' parameters."""
    import papermill

    calls: list[dict] = []

    def execute_notebook(source, output, parameters, **_):
        out = Path(os.environ[paths.OUTPUT_ENV])
        calls.append(parameters)
        config_ = {"paper": "demo", "scale": parameters["scale"], "seed": parameters.get("seed", 0),
                   "run_id": os.environ[config.RUN_ID_ENV]}
        (out / "config.json").write_text(json.dumps(config_))
        (out / "figures").mkdir()
        (out / "figures" / "fit.png").write_bytes(b"png %d" % len(calls))
        (out / "claims.json").write_text(json.dumps({"paper": "demo", "scale": parameters["scale"], "passed": 1,
                                                     "total": 1, "claims": []}))
        Path(output).write_text("{}")
        if during:
            during()
        if error is not None:
            raise error

    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)
    return calls


def failing_cell():
    import papermill

    return papermill.PapermillExecutionError(3, 3, "x", "RuntimeError", "asked to fail", [])


def result_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def emptied_by_dvc(folder: Path) -> None:
    """What `dvc repro` does to results/<id>/ before it runs the stage: every output removed."""
    for name in run.RESULT_ENTRIES:
        target = folder / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


@pytest.mark.parametrize("failure", ["refused: PAPERSUITE_THREADS=abc", "a cell fails", "Ctrl-C"])
def test_a_failed_run_after_dvc_emptied_the_folder_restores_the_last_good_result(demo, monkeypatch, capsys, failure):
    """`dvc repro` removes a stage's outputs before the runner starts: a result that is not in DVC's
    cache (a direct run's) was lost when the run then failed, while the runner said it was kept."""
    fake_notebook(monkeypatch)
    assert run.main(["demo"]) == 0
    dest = demo / "results" / "demo"
    (dest / "my_notes.txt").write_text("mine")
    good = result_files(dest)
    emptied_by_dvc(dest)
    monkeypatch.setenv("DVC_STAGE", "demo")
    if failure.startswith("refused"):
        monkeypatch.setenv("PAPERSUITE_THREADS", "abc")
        with pytest.raises(SystemExit) as exit_:
            run.main(["demo"])
        assert exit_.value.code == 2
    else:
        fake_notebook(monkeypatch, error=failing_cell() if failure == "a cell fails" else run.Interrupted(2))
        assert run.main(["demo"]) == (1 if failure == "a cell fails" else 130)
    assert result_files(dest) == good
    err = capsys.readouterr().err
    assert "is restored from" in err and "is kept" not in err


@pytest.mark.parametrize("locked", [True, False], ids=["in dvc.lock", "never run"])
def test_without_a_kept_copy_the_runner_says_how_to_get_the_result_back(demo, monkeypatch, capsys, locked):
    fake_notebook(monkeypatch, error=failing_cell())
    monkeypatch.setenv("DVC_STAGE", "demo")
    monkeypatch.setattr(run, "locked_stages", lambda: {"demo"} if locked else set())
    (demo / "results" / "demo").mkdir(parents=True)
    assert run.main(["demo"]) == 1
    err = capsys.readouterr().err
    assert "is kept" not in err
    if locked:
        assert "the runner kept no copy: `dvc checkout demo` restores the result dvc.lock pins" in err
    else:
        assert "there was no previous result in" in err and "dvc checkout" not in err


def test_the_kept_copy_follows_the_last_good_result_and_leaves_user_files_out(demo, monkeypatch):
    fake_notebook(monkeypatch)
    assert run.main(["demo"]) == 0
    dest, kept = demo / "results" / "demo", demo / "results" / ".kept" / "demo"
    (dest / "my_notes.txt").write_text("mine")
    assert run.main(["demo", "--set", "seed=3"]) == 0
    assert (kept / "run.json").read_bytes() == (dest / "run.json").read_bytes()
    assert not (kept / "my_notes.txt").exists() and (dest / "my_notes.txt").read_text() == "mine"
    fake_notebook(monkeypatch, error=failing_cell())
    assert run.main(["demo"]) == 1
    assert json.loads((dest / "run.json").read_text())["parameters"]["seed"] == 3


@pytest.mark.parametrize("where", ["--output", "results/<paper>"])
def test_a_folder_that_appears_or_gets_user_files_during_a_run_is_never_deleted(demo, monkeypatch, capsys, where):
    """A folder made by the user during the run was replaced at the swap, its files deleted; a user's file in
    results/<paper>/ was deleted by the next run without a word."""
    dest = demo / "elsewhere" if where == "--output" else demo / "results" / "demo"
    args = ["demo", "--output", str(dest)] if where == "--output" else ["demo"]
    if where != "--output":
        fake_notebook(monkeypatch)
        assert run.main(args) == 0

    def user_writes():
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "my_notes.txt").write_text("precious")

    fake_notebook(monkeypatch, during=user_writes)
    code = run.main(args)
    assert (dest / "my_notes.txt").read_text() == "precious"
    err = capsys.readouterr().err
    if where == "--output":
        assert code == 1 and sorted(p.name for p in dest.iterdir()) == ["my_notes.txt"]
        aside = next(demo.glob("elsewhere.demo-*"))
        assert (aside / "claims.json").exists() and f"this run's result is in '{aside}'" in err
    else:
        assert code == 0 and (dest / "claims.json").exists() and "kept 1 file(s)" in err and "my_notes.txt" in err
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(f".{dest.name}.")]


def test_result_folders_keep_the_users_umask(demo, monkeypatch):
    """Result folders were created 0700 (mkdtemp): a user's 0755 folder became 0700."""
    fake_notebook(monkeypatch)
    previous = os.umask(0o022)
    try:
        assert run.main(["demo"]) == 0
        assert run.main(["demo", "--output", str(demo / "mine")]) == 0
    finally:
        os.umask(previous)
    for folder in (demo / "results" / "demo", demo / "mine", demo / "results" / ".kept" / "demo"):
        assert folder.stat().st_mode & 0o777 == 0o755, folder


def other_file_system(near: Path) -> Path | None:
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shm.stat().st_dev != near.stat().st_dev:
        return shm
    return None


def test_an_output_on_another_file_system_is_replaced_by_copy_then_rename(demo, monkeypatch):
    """A second run into /dev/shm/x ended, after the whole notebook, with 'Invalid cross-device link'."""
    shm = other_file_system(demo)
    if shm is None:
        pytest.skip("no writable /dev/shm on another file system")
    fake_notebook(monkeypatch)
    target = Path(tempfile.mkdtemp(dir=shm)) / "x"
    try:
        for seed in (0, 1):
            assert run.main(["demo", "--output", str(target), "--set", f"seed={seed}"]) == 0
        assert json.loads((target / "run.json").read_text())["parameters"]["seed"] == 1
        assert sorted(p.name for p in target.parent.iterdir()) == ["x"]
        assert not list((demo / "results" / ".staging").iterdir())
    finally:
        shutil.rmtree(target.parent)


def lock(folder: Path, how: str) -> bool:
    """Make ``folder`` unwritable: ``chmod`` (root ignores it) or ``chattr +i`` (needs root); False if it cannot."""
    if how == "chmod":
        folder.chmod(0o555)
        return os.geteuid() != 0
    return shutil.which("chattr") is not None and subprocess.run(["chattr", "+i", str(folder)],
                                                                 capture_output=True).returncode == 0


def unlock(folder: Path) -> None:
    if shutil.which("chattr"):
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
    folder.chmod(0o755)


@pytest.mark.parametrize("case", ["under /proc", "a file", "read-only folder", "read-only parent",
                                  "immutable empty folder", "immutable parent"])
def test_an_unwritable_output_is_refused_before_the_kernel(demo, monkeypatch, capsys, case):
    """An empty read-only (chattr +i) --output, or one under a read-only folder: a full run, then a PermissionError."""
    calls = fake_notebook(monkeypatch)
    locked = demo / "locked"
    locked.mkdir()
    target = {"under /proc": Path("/proc/self/papersuite"), "a file": demo / "params.yaml"}.get(case)
    if target is None:
        target = locked if case.endswith("folder") else locked / "x"
        if not lock(locked, "chattr" if case.startswith("immutable") else "chmod"):
            unlock(locked)
            pytest.skip(f"cannot make a folder {case.split()[0]} here (root ignores chmod; chattr needs root)")
    try:
        with pytest.raises(SystemExit) as exit_:
            run.main(["demo", "--output", str(target)])
    finally:
        unlock(locked)
    assert exit_.value.code == 2 and "--output" in capsys.readouterr().err and not calls


# ---------------------------------------------------------------- under DVC (a throwaway git + DVC project)

def sleeping_cell(notebook: Path) -> None:
    """Put a cell that waits (for a 'go' file, 120 s at most) after the parameters of a scratch notebook."""
    nb = json.loads(notebook.read_text())
    at = next(i for i, c in enumerate(nb["cells"]) if "parameters" in c["metadata"].get("tags", []))
    nb["cells"].insert(at + 1, {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                                "source": "import os, time\nopen('sleeping', 'w').close()\nend = time.time() + 120\n"
                                          "while not os.path.exists('go') and time.time() < end:\n    time.sleep(0.1)"})
    notebook.write_text(json.dumps(nb))


@pytest.mark.slow
@pytest.mark.parametrize("failure", ["PAPERSUITE_THREADS=abc", "Ctrl-C"])
def test_a_failed_or_interrupted_dvc_repro_keeps_a_result_dvc_never_cached(tmp_path, failure):
    """A direct run's result, then a `dvc repro` of its stage that fails or is stopped: the folder was left empty."""
    from test_cluster import PY, make_project, sh

    root, env = make_project(tmp_path / "p", {"demo_a": {}}, new=("demo_a",))
    sh([*PY, "shared.run", "demo_a"], root, env)
    dest = root / "results" / "demo_a"
    good = result_files(dest)
    if failure == "Ctrl-C":
        sleeping_cell(root / "notebooks" / "demo_a.ipynb")
        proc = subprocess.Popen([*PY, "dvc", "repro", "demo_a"], cwd=root, env=env, start_new_session=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 120
        while time.time() < deadline and not (root / "notebooks" / "sleeping").exists():
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        output, code = proc.communicate(timeout=60)[0], proc.returncode
    else:
        done = sh([*PY, "dvc", "repro", "demo_a"], root, {**env, "PAPERSUITE_THREADS": "abc"}, check=False)
        output, code = done.stdout + done.stderr, done.returncode
    assert code != 0, output
    assert result_files(dest) == good, output
    assert "is restored from" in output and "is kept" not in output


@pytest.mark.slow
@pytest.mark.parametrize("command", [["repro", "dream_sr"], ["exp", "run", "dream_sr", "-S", "scale=smoke"]],
                         ids=["dvc repro", "dvc exp run"])
def test_corrupted_data_never_re_pins_data_dvc(tmp_path, command):
    """After a flipped byte in data/, `dvc repro` stopped but left data.dvc pinned to the corrupted hash."""
    from test_cluster import PY, make_project, sh

    root, env = make_project(tmp_path / "p", {"dream_sr": {}}, new=())
    shutil.copytree(paths.DATA_DIR, root / "data")
    shutil.copy(REPO_ROOT / "data.dvc", root / "data.dvc")
    sh(["git", "add", "data.dvc"], root)
    sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "data"], root)
    target = root / "data" / "mnist5k" / "X.npy"
    raw = bytearray(target.read_bytes())
    raw[-1] ^= 0xFF
    target.write_bytes(bytes(raw))
    done = sh([*PY, "dvc", *command], root, env, check=False)
    assert done.returncode != 0
    assert "mnist5k/X.npy differs" in done.stdout + done.stderr
    assert (root / "data.dvc").read_text() == (REPO_ROOT / "data.dvc").read_text()
    assert not (root / "results" / "dream_sr" / "run.json").exists()


def test_a_result_published_outside_the_runner_is_complete_and_the_runner_recognises_it(demo):
    """A papermill or Jupyter run published without run.json: the runner then refused its own default folder."""
    staging = demo / "results" / ".staging" / "demo-pid1-x"
    staging.mkdir(parents=True)
    (staging / "config.json").write_text(json.dumps({"paper": "demo", "scale": "smoke", "seed": 0, "run_id": "r1"}))
    (staging / "claims.json").write_text(json.dumps({"paper": "demo", "scale": "smoke", "passed": 1, "total": 1}))
    started = {"parameters": {"scale": "smoke"}, "time": time.time(), "code": {"git_commit": "a" * 40}}
    dest = config.publish(staging, "demo", started)
    recorded = json.loads((dest / "run.json").read_text())
    assert recorded["paper"] == "demo" and recorded["run_id"] == "r1"
    assert set(recorded["md5"]) == {"config.json", "claims.json"}
    assert run.check_output("demo", dest) == dest.resolve()
    assert (demo / "results" / ".kept" / "demo" / "run.json").read_bytes() == (dest / "run.json").read_bytes()
    assert dest.stat().st_mode & 0o777 == 0o777 & ~current_umask()


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def from_pretrained_calls_without_local_files_only() -> list[str]:
    import ast

    found = []
    for path in sorted((REPO_ROOT / "shared").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            call = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            if call and node.func.attr == "from_pretrained":
                local = [k for k in node.keywords if k.arg == "local_files_only"]
                if not (local and isinstance(local[0].value, ast.Constant) and local[0].value.value is True):
                    found.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    return found


def test_every_hugging_face_load_is_offline_by_construction():
    """A from_pretrained without local_files_only was offline only while HF_HUB_OFFLINE was set."""
    assert from_pretrained_calls_without_local_files_only() == []


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_make_setup_works_in_a_folder_whose_path_has_a_space(tmp_path):
    """`git clone <repo> '/tmp/a b' && make setup` failed: 'test: unexpected operator', 'Permission denied'."""
    root = tmp_path / "a b"
    (root / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "Makefile", root / "Makefile")
    for name in ("requirements.lock", "requirements-nodeps.lock", "pyproject.toml"):
        (root / name).write_text("")
    log = tmp_path / "calls.log"
    for tool in ("python", "dvc"):  # stand-ins that record their arguments: make's quoting is what is tested
        fake = root / ".venv" / "bin" / tool
        fake.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{log}"\n')
        fake.chmod(0o755)
    done = subprocess.run(["make", "setup", "PYTHON=true"], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    calls = log.read_text()
    assert "python -m pip install" in calls and "python -m shared.data --check" in calls and "dvc commit" in calls


@pytest.mark.slow
@pytest.mark.parametrize("setting", ["scale=huge", "papers.demo_a.n_points=-3"])
def test_a_refused_dvc_experiment_leaves_params_yaml_as_it_was(tmp_path, setting):
    """`dvc exp run adacontour -S scale=huge` was refused but left params.yaml rewritten (nulls made blanks)."""
    from test_cluster import PY, make_project, sh

    root, env = make_project(tmp_path / "p", {"demo_a": {}}, new=("demo_a",))
    before = (root / "params.yaml").read_text()
    done = sh([*PY, "dvc", "exp", "run", "demo_a", "-S", setting], root, env, check=False)
    assert done.returncode != 0
    assert "is back to the one of" in done.stdout + done.stderr
    assert (root / "params.yaml").read_text() == before


def test_corrupted_data_is_refused_before_the_kernel_and_its_pin_put_back(tmp_path, monkeypatch, capsys):
    """A flipped byte in data/: dvc repro re-pinned data.dvc to it before the stage; the stage then failed late."""
    from shared import data
    from shared.results import dir_md5

    corrupted = tmp_path / "data"
    shutil.copytree(paths.DATA_DIR, corrupted)
    target = corrupted / "mnist5k" / "X.npy"
    raw = bytearray(target.read_bytes())
    raw[-1] ^= 0xFF
    target.write_bytes(bytes(raw))
    dvc_file = tmp_path / "data.dvc"
    spec = yaml.safe_load(data.DVC_FILE.read_text())
    spec["outs"][0]["md5"] = dir_md5(corrupted)  # what `dvc repro` writes there first
    dvc_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    monkeypatch.setattr(data, "DATA_DIR", corrupted)
    monkeypatch.setattr(data, "DVC_FILE", dvc_file)
    calls = fake_notebook(monkeypatch)
    with pytest.raises(SystemExit) as exit_:
        run.main(["dream_sr", "--scale", "smoke", "--no-params-file", "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "mnist5k/X.npy differs" in err and "make data" in err and not calls
    assert dvc_file.read_text() == data.DVC_FILE.read_text()


@pytest.mark.parametrize("damage", ["truncated", "header cut", "empty", "intact"])
def test_a_broken_checkpoint_is_refused_before_the_kernel_naming_the_parameter_and_file(tmp_path, damage):
    """A truncated model.safetensors as embedding_checkpoint: a raw SafetensorError, no parameter or file named."""
    from safetensors.numpy import save_file

    from shared.errors import CorruptInputError

    folder = tmp_path / "checkpoint"
    folder.mkdir()
    weights = folder / "model.safetensors"
    save_file({"embed.weight": np.zeros((16, 8), np.float32)}, str(weights))
    raw = weights.read_bytes()
    weights.write_bytes({"truncated": raw[:-100], "header cut": raw[:20], "empty": b"", "intact": raw}[damage])
    (tmp_path / "t.txt").write_text("text\n")
    sets = ["features=embeddings", f"embedding_checkpoint={folder}", f"text_file={tmp_path / 't.txt'}"]
    if damage == "intact":
        assert run.build_parameters("residual_convergence", "smoke", sets, use_params_file=False)
        return
    with pytest.raises(CorruptInputError, match=f"parameter 'embedding_checkpoint': the file '{weights}'"):
        run.build_parameters("residual_convergence", "smoke", sets, use_params_file=False)
