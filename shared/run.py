"""Run one paper's notebook with validated parameters: ``python -m shared.run <id> [options]``.

The notebook runs (papermill, kernel ``python3``) into a staging folder; only a successful run
is moved to ``results/<id>/``. A failed run leaves its executed notebook, error cell included,
in ``results/failed/<id>.ipynb`` and nothing in ``results/<id>/``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

import yaml

from shared.config import (SCALES, PresetError, check_common, check_declared_knobs, check_scale,
                           load_presets, resolve)
from shared.errors import ParameterError
from shared import paths
from shared.paths import CACHE_DIR, OUTPUT_ENV, REPO_ROOT, notebook_path
from shared.runtime import OMP_WAIT_POLICY

TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (int, float), "str": (str,), "bool": (bool,),
    "list": (list,), "dict": (dict,),
}
CPU_FEATURES = {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16", "neon", "asimd"}
VERSIONED = ("torch", "numpy", "scipy", "pandas", "scikit-learn", "transformers", "papermill", "dvc")


def log(message: str) -> None:
    print(f"[papersuite] {message}", file=sys.stderr, flush=True)


class ParamsFileError(ValueError):
    """params.yaml cannot be read as the suite's parameters."""


class OutputError(ValueError):
    """``--output`` names a folder the runner must not replace."""


PARAMS_FIX = "it must be a mapping with `scale`, `seed` and a `papers:` block (see `git show HEAD:params.yaml`)"


def load_params() -> dict[str, Any]:
    """params.yaml as a mapping; a malformed file is named with its line and the fix."""
    where = paths.PARAMS_FILE
    try:
        params = yaml.safe_load(where.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ParamsFileError(f"{where}{line}: not valid YAML ({problem}); {PARAMS_FIX}") from None
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise ParamsFileError(f"{where}: the top level is a {type(params).__name__}, not a mapping; {PARAMS_FIX}")
    if not isinstance(params.get("papers"), dict):
        raise ParamsFileError(f"{where}: no `papers:` mapping (one block per paper id); {PARAMS_FIX}")
    return params


def check_paper(paper_id: str, params: dict[str, Any]) -> str:
    papers = sorted(params.get("papers") or {})
    if paper_id not in papers or not notebook_path(paper_id).exists():
        raise ParameterError("paper", f"unknown paper {paper_id!r}", papers)
    return paper_id


def notebook_parameters(paper_id: str) -> dict[str, dict[str, Any]]:
    """The notebook's ``parameters`` cell: name -> {inferred_type_name, default, help}."""
    import papermill

    return papermill.inspect_notebook(str(notebook_path(paper_id)))


def parse_value(name: str, raw: str, type_name: str) -> Any:
    """Turn a ``--set`` string into a value of the parameter's annotated type."""
    try:
        if type_name == "int":
            return int(raw)
        if type_name == "float":
            return float(raw)
        if type_name == "bool":
            lowered = raw.lower()
            if lowered in ("true", "1", "yes"):
                return True
            if lowered in ("false", "0", "no"):
                return False
            raise ValueError(raw)
        if type_name == "str":
            return raw
        value = yaml.safe_load(raw)
        if raw.lower() in ("null", "none", "~"):
            return None
        return value
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or "malformed"
        raise ParameterError(name, f"{raw!r} is not valid YAML for a {type_name} ({problem}); "
                                   f"write e.g. {name}='[a, b]' for a list or {name}='{{k: v}}' for a dict") from None
    except ValueError:
        raise ParameterError(name, f"{raw!r} is not a valid {type_name}") from None


def check_type(name: str, value: Any, type_name: str) -> Any:
    if value is None or type_name not in TYPES:
        return value
    if isinstance(value, bool) and type_name != "bool":
        raise ParameterError(name, f"expected {type_name}, got bool {value!r}")
    if not isinstance(value, TYPES[type_name]):
        raise ParameterError(name, f"expected {type_name}, got {type(value).__name__} {value!r}")
    return float(value) if type_name == "float" else value


def parse_sets(sets: Iterable[str], declared: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``key=value`` strings to typed values; ``dict_param.key=value`` sets one entry of a dict."""
    values: dict[str, Any] = {}
    for item in sets:
        name, sep, raw = item.partition("=")
        if not sep:
            raise ParameterError(item, "--set takes key=value")
        name, _, entry = name.partition(".")
        if name not in declared:
            raise ParameterError(name, "is not a parameter of this notebook", sorted(declared))
        type_name = declared[name]["inferred_type_name"]
        if entry and type_name != "dict":
            raise ParameterError(name, f"has type {type_name}, so '{name}.{entry}' cannot be set")
        if entry:
            values.setdefault(name, {})[entry] = parse_value(f"{name}.{entry}", raw, "dict")
        else:
            values[name] = parse_value(name, raw, type_name)
    return values


def build_parameters(paper_id: str, scale: str | None, sets: Iterable[str],
                     use_params_file: bool = True) -> dict[str, Any]:
    """Validate everything the user asked for; return the parameters papermill injects."""
    params = load_params()
    check_paper(paper_id, params)
    declared = notebook_parameters(paper_id)
    chosen: dict[str, Any] = {}
    if use_params_file:
        chosen["seed"] = params.get("seed", 0)
        chosen["scale"] = params.get("scale", "cpu")
        block = (params.get("papers") or {}).get(paper_id) or {}
        chosen.update({k: v for k, v in block.items() if v is not None})
    chosen.update(parse_sets(sets, declared))
    if scale is not None:
        chosen["scale"] = scale
    chosen.setdefault("scale", "cpu")
    for name, value in chosen.items():
        if name not in declared:
            raise ParameterError(name, f"is not a parameter of notebooks/{paper_id}.ipynb", sorted(declared))
        chosen[name] = check_type(name, value, declared[name]["inferred_type_name"])
    check_scale(chosen["scale"])
    check_common(chosen.get("seed", 0), chosen.get("device", "auto"))
    check_declared_knobs(paper_id, [name for name, info in declared.items() if info.get("default") == "None"])
    preset = load_presets(paper_id)[chosen["scale"]]
    resolve(paper_id, chosen["scale"], {k: v for k, v in chosen.items() if k in preset})
    return chosen


@contextmanager
def kernel_environment(staging: Path) -> Iterator[None]:
    """Environment the kernel inherits: offline, headless, staged outputs, this interpreter."""
    saved = dict(os.environ)
    env = os.environ
    env.update({
        OUTPUT_ENV: str(staging),
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
        "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0",
        "MPLCONFIGDIR": str(CACHE_DIR / "matplotlib"),
        "IPYTHONDIR": str(CACHE_DIR / "ipython"),
        "JUPYTER_RUNTIME_DIR": str(CACHE_DIR / "jupyter-runtime"),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
    })
    env.setdefault("OMP_WAIT_POLICY", OMP_WAIT_POLICY)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def git_state() -> dict[str, Any]:
    """The commit and whether tracked files differ from it, read when a run starts (the code it ran)."""
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True)
        return out.stdout.strip()

    return {"git_commit": git("rev-parse", "HEAD"), "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def provenance(paper_id: str, parameters: dict[str, Any], staging: Path, started: datetime,
               wall: float, code: dict[str, Any]) -> dict[str, Any]:
    """run.json: parameters, config, the code's commit at the start (``code``), data, versions, hardware."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            pass
    config_file = staging / "config.json"
    config = json.loads(config_file.read_text()) if config_file.exists() else {}
    from shared.results import dir_md5

    return {
        "paper": paper_id, "scale": parameters["scale"], "seed": config.get("seed"),
        "parameters": parameters, "config": config,
        **code,
        "data_md5": dir_md5(paths.DATA_DIR) if paths.DATA_DIR.is_dir() else None,
        "started": started.isoformat(timespec="seconds"), "wall_time_s": round(wall, 1),
        "versions": versions,
        "hardware": {"platform": platform.platform(), "processor": platform.machine(), **cpu_info(),
                     "cpu_count": os.cpu_count(), "device": config.get("device")},
        "threads": {"PAPERSUITE_THREADS": os.environ.get("PAPERSUITE_THREADS"),
                    "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", OMP_WAIT_POLICY)},
    }


def cpu_info() -> dict[str, Any]:
    """The CPU's model name and its vector/int8 features from /proc/cpuinfo: fp32 and int8 speed depend on them."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return {}
    field = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip() for line in reversed(lines) if ":" in line}
    flags = set(field.get("flags", "").split())
    return {"cpu_model": field.get("model name"), "cpu_features": sorted(flags & CPU_FEATURES)}


def check_output(paper_id: str, dest: Path) -> Path:
    """``dest`` if the runner may (re)place a result of ``paper_id`` there; else OutputError, before any run.

    The runner replaces only a missing or empty folder, or one holding a previous result of the same
    paper (its ``run.json`` names the paper); never the repository, ``results/`` or its bookkeeping.
    """
    dest = Path(dest).expanduser().resolve()
    results = paths.RESULTS_DIR.resolve()
    guarded = {REPO_ROOT.resolve(), results, results / "failed", results / ".staging", Path.home().resolve()}
    if dest in guarded or any(dest in g.parents for g in guarded) or (results / ".staging") in dest.parents:
        raise OutputError(f"--output '{dest}' would replace the repository, results/ or its bookkeeping: "
                          f"give a folder of its own, e.g. results/{paper_id}")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        run_file = dest / "run.json"
        try:
            owner = json.loads(run_file.read_text()).get("paper") if run_file.is_file() else None
        except (OSError, ValueError):
            owner = None
        if owner != paper_id:
            raise OutputError(f"--output '{dest}' exists and is not a previous result of {paper_id} "
                              f"(no run.json naming it): the runner replaces only its own results; "
                              "give a new or empty folder")
    return dest


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prune_staging(staging_root: Path) -> list[Path]:
    """Remove staging folders left by runs whose process is gone (killed runs); return them."""
    removed = []
    for folder in staging_root.glob("*-pid*-*"):
        try:
            pid = int(folder.name.rsplit("-pid", 1)[1].split("-", 1)[0])
        except (IndexError, ValueError):
            continue
        if folder.is_dir() and not _pid_alive(pid):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _kernel_manager_class():
    """A kernel manager on local IPC sockets: no TCP port, and no 'TCP without encryption' warning."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import CaselessStrEnum, default

    class IPCKernelManager(AsyncKernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

        @default("ip")
        def _short_ipc_path(self) -> str:  # unix socket paths are limited to ~100 characters
            folder = Path(tempfile.gettempdir()) / f"papersuite-ipc-{os.getuid()}"
            folder.mkdir(mode=0o700, exist_ok=True)
            return str(folder / uuid.uuid4().hex[:12])

    return IPCKernelManager


class Interrupted(KeyboardInterrupt):
    """The run was stopped by SIGINT or SIGTERM."""


@contextmanager
def stop_on_signals(grace: float = 5.0) -> Iterator[list[int]]:
    """On SIGINT/SIGTERM: interrupt the kernel (SIGINT to our child processes), kill it after ``grace``.

    The cell then fails, papermill returns, and the normal failure path keeps the executed notebook.
    """
    import psutil

    received: list[int] = []

    def handler(signum, frame):
        received.append(signum)
        children = psutil.Process().children(recursive=True)
        for child in children:
            with suppress_process_errors():
                child.send_signal(signal.SIGINT)

        def kill_later():
            time.sleep(grace)
            for child in children:
                with suppress_process_errors():
                    child.kill()

        threading.Thread(target=kill_later, daemon=True).start()

    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def suppress_process_errors() -> Iterator[None]:
    import psutil

    try:
        yield
    except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
        pass


def execute(paper_id: str, parameters: dict[str, Any], dest: Path) -> Path:
    """Run the notebook into a staging folder; replace ``dest`` only if the run succeeds.

    A failed or interrupted run keeps the previous result in ``dest`` and its executed notebook in
    ``results/failed/<id>.ipynb``.
    """
    import papermill

    dest = check_output(paper_id, dest)
    staging_root, failed_dir = paths.RESULTS_DIR / ".staging", paths.RESULTS_DIR / "failed"
    staging_root.mkdir(parents=True, exist_ok=True)
    prune_staging(staging_root)
    staging = Path(tempfile.mkdtemp(prefix=f"{paper_id}-pid{os.getpid()}-", dir=staging_root))
    started, t0, code = datetime.now(timezone.utc), time.time(), git_state()
    log(f"{paper_id} @ {parameters['scale']}: started")
    executed = staging / "notebook.ipynb"
    try:
        with kernel_environment(staging), stop_on_signals() as received:
            try:
                papermill.execute_notebook(
                    str(notebook_path(paper_id)), str(executed), parameters=parameters,
                    kernel_name="python3", cwd=str(notebook_path(paper_id).parent),
                    progress_bar=not os.environ.get("CI"), kernel_manager_class=_kernel_manager_class(),
                )
            except BaseException:
                if received:
                    raise Interrupted(f"stopped by signal {signal.Signals(received[0]).name}") from None
                raise
            if received:
                raise Interrupted(f"stopped by signal {signal.Signals(received[0]).name}")
    except BaseException:
        failed_dir.mkdir(parents=True, exist_ok=True)
        failed = failed_dir / f"{paper_id}.ipynb"
        if executed.exists():
            shutil.move(str(executed), failed)
        shutil.rmtree(staging, ignore_errors=True)
        kept = f"; the previous result in {dest} is kept" if dest.exists() else ""
        log(f"{paper_id}: FAILED after {time.time() - t0:.0f} s; executed notebook kept in {failed}{kept}")
        raise
    wall = time.time() - t0
    from shared.results import write_json

    write_json(staging / "run.json", provenance(paper_id, parameters, staging, started, wall, code))
    dest.parent.mkdir(parents=True, exist_ok=True)
    previous = staging_root / f"{staging.name}-previous"
    if dest.exists():
        dest.rename(previous)  # checked by check_output: a result of this paper, or an empty folder
    shutil.move(str(staging), dest)
    shutil.rmtree(previous, ignore_errors=True)
    (failed_dir / f"{paper_id}.ipynb").unlink(missing_ok=True)
    log(f"{paper_id} @ {parameters['scale']}: finished in {wall:.0f} s; {summary(dest)}")
    return dest


def summary(folder: Path) -> str:
    claims_file = folder / "claims.json"
    if not claims_file.exists():
        return "no claims.json written"
    claims = json.loads(claims_file.read_text())
    return f"{claims['passed']}/{claims['total']} claims PASS"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.run", description=__doc__.splitlines()[0])
    parser.add_argument("paper", help="paper id (see params.yaml: papers)")
    parser.add_argument("--scale", help=f"one of {', '.join(SCALES)} (default: params.yaml's scale)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override one notebook parameter (repeatable)")
    parser.add_argument("--no-params-file", action="store_true",
                        help="ignore params.yaml: notebook defaults plus --scale/--set only")
    parser.add_argument("--output", type=Path, help="results folder (default: results/<paper>)")
    args = parser.parse_args(argv)
    try:
        parameters = build_parameters(args.paper, args.scale, args.sets, not args.no_params_file)
        dest = check_output(args.paper, args.output or paths.RESULTS_DIR / args.paper)
    except (ParameterError, PresetError, ParamsFileError, OutputError, FileNotFoundError) as error:
        parser.exit(2, f"error: {error}\n")
    import papermill

    try:
        execute(args.paper, parameters, dest)
    except papermill.PapermillExecutionError as error:
        log(f"{error.ename}: {error.evalue}")
        return 1
    except Interrupted as error:
        log(f"{args.paper}: {error}")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
