"""Run one paper's notebook with validated parameters: ``python -m shared.run <id> [options]``.

The notebook runs (papermill, kernel ``python3``) into a staging folder; only a successful run
is moved to ``results/<id>/`` (whole, keeping files there that no run wrote). A failed run leaves its
executed notebook, error cell included, in ``results/failed/<id>.ipynb`` and the previous result in
``results/<id>/``: where ``dvc repro`` removed it before the run, the runner puts back its copy of the
last result it placed there (``results/.kept/<id>/``).
"""
from __future__ import annotations

import argparse
import errno
import importlib
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
                           load_presets, owns, resolve, threads_from_env, RUN_ID_ENV, absolute_paths,
                           check_inputs, check_preset_knobs)
from shared.errors import CorruptInputError, ParameterError
from shared import kernels, paths
from shared.paths import CACHE_DIR, OUTPUT_ENV, REPO_ROOT, notebook_path
from shared.runtime import OMP_WAIT_POLICY

TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (int, float), "str": (str,), "bool": (bool,),
    "list": (list,), "dict": (dict,),
}
CPU_FEATURES = {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16", "neon", "asimd"}
VERSIONED = ("torch", "numpy", "scipy", "pandas", "scikit-learn", "transformers", "papermill", "dvc")
# what a run writes into its folder (the DVC outputs of its stage); anything else there is the user's
RESULT_ENTRIES = frozenset({"notebook.ipynb", "figures", "tables", "config.json", "run.json", "metrics.json",
                            "claims.json"})
KEPT = ".kept"   # results/.kept/<id>/: a copy of the last result placed in results/<id>/ (DVC deletes that one)


def log(message: str) -> None:
    print(f"[papersuite] {message}", file=sys.stderr, flush=True)


class ParamsFileError(ValueError):
    """params.yaml cannot be read as the suite's parameters."""


class OutputError(ValueError):
    """``--output`` names a folder the runner must not replace."""


class DataError(ValueError):
    """data/ is not what shared.data builds (a file missing, changed or corrupted)."""


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
        raise ParamsFileError(f"{where} is empty; {PARAMS_FIX}")
    if not isinstance(params, dict):
        raise ParamsFileError(f"{where}: the top level is a {type(params).__name__}, not a mapping; {PARAMS_FIX}")
    if not isinstance(params.get("papers"), dict):
        raise ParamsFileError(f"{where}: no `papers:` mapping (one block per paper id); {PARAMS_FIX}")
    for paper_id, block in params["papers"].items():
        if block is not None and not isinstance(block, dict):
            raise ParamsFileError(f"{where}: papers.{paper_id} is a {type(block).__name__} ({block!r}), not a mapping "
                                  f"of its knobs (knob: value, null for the preset's); {PARAMS_FIX}")
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
    threads_from_env()
    check_common(chosen.get("seed", 0), chosen.get("device", "auto"))
    check_declared_knobs(paper_id, [name for name, info in declared.items() if info.get("default") == "None"])
    check_preset_knobs(paper_id, declared)
    preset = load_presets(paper_id)[chosen["scale"]]
    given = {k: v for k, v in chosen.items() if k in preset}
    given.update(absolute_paths(paper_id, given, Path.cwd()))  # the kernel runs in notebooks/, not here
    chosen.update(given)
    check_inputs(paper_id, resolve(paper_id, chosen["scale"], given), chosen["scale"])
    return chosen


@contextmanager
def kernel_environment(staging: Path) -> Iterator[None]:
    """Environment the kernel inherits: offline, headless, staged outputs, this interpreter."""
    saved = dict(os.environ)
    env = os.environ
    env.update({
        OUTPUT_ENV: str(staging), RUN_ID_ENV: uuid.uuid4().hex,
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


# files the pipeline itself rewrites while it runs: a change there is not a change of the code that ran
PIPELINE_WRITTEN = (":(exclude)dvc.lock", ":(exclude)README.md", ":(exclude)results")


def git_state() -> dict[str, Any]:
    """The commit and whether tracked files differ from it, read when a run starts (the code it ran).

    ``dvc.lock``, the README's results block and the committed results are written by the pipeline
    itself (after the first stage of a ``dvc repro``), so they never make a run "uncommitted changes".
    """
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True)
        return out.stdout.strip()

    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", *PIPELINE_WRITTEN).splitlines()
    return {"git_commit": git("rev-parse", "HEAD"), "git_dirty": bool(changed)}


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
        "environment_lock_md5": file_md5(REPO_ROOT / "requirements.lock"),
        "hardware": {"platform": platform.platform(), "processor": platform.machine(), **cpu_info(),
                     "cpu_count": os.cpu_count(), "device": config.get("device")},
        "threads": {"PAPERSUITE_THREADS": os.environ.get("PAPERSUITE_THREADS"),
                    "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", OMP_WAIT_POLICY),
                    "kernel": config.get("runtime", {}).get("threads")},
        "kernels": {**kernels.settings(), "in_effect": config.get("runtime", {}).get("kernels")},
    }


def file_md5(path: Path) -> str | None:
    import hashlib

    return hashlib.md5(path.read_bytes()).hexdigest() if path.is_file() else None


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

    The runner replaces only a missing or empty folder, one holding a previous result of the same
    paper (its ``run.json`` or ``config.json`` names the paper), or the paper's own ``results/<id>``
    (DVC empties it before a stage runs; files there that no run wrote are kept); never the
    repository, ``results/`` or its bookkeeping. The folder must be writable (checked by writing).
    """
    dest = Path(dest).expanduser().resolve()
    results = paths.RESULTS_DIR.resolve()
    bookkeeping = [results / name for name in ("failed", ".staging", KEPT, "sweeps")]
    guarded = {REPO_ROOT.resolve(), results, Path.home().resolve(), *bookkeeping}
    inside = [results / ".staging", results / KEPT]   # the runner's own folders: nothing of the user's goes there
    if dest in guarded or any(dest in g.parents for g in guarded) or any(b in dest.parents for b in inside):
        raise OutputError(f"--output '{dest}' would replace the repository, results/ or its bookkeeping: "
                          f"give a folder of its own, e.g. results/{paper_id}")
    if dest.exists() and not dest.is_dir():
        raise OutputError(f"--output '{dest}' is a file, not a folder: give a new or empty folder")
    if dest.exists() and any(dest.iterdir()) and dest != default_output(paper_id) and not owns(dest, paper_id):
        raise OutputError(f"--output '{dest}' exists and is not a previous result of {paper_id} "
                          f"(no run.json naming it): the runner replaces only its own results; "
                          "give a new or empty folder")
    check_writable(dest)
    return dest


def default_output(paper_id: str) -> Path:
    """``results/<id>``: the paper's own folder, a DVC output."""
    return (paths.RESULTS_DIR / paper_id).resolve()


def check_writable(dest: Path) -> None:
    """OutputError unless the runner can create entries beside ``dest`` and in it (a read-only or immutable
    folder, a read-only file system). Probed by writing: permission bits do not tell root or ``chattr +i``."""
    parent = next(p for p in [dest.parent, *dest.parent.parents] if p.exists())
    for folder in ([dest] if dest.exists() else []) + [parent]:
        try:
            probe = Path(tempfile.mkdtemp(prefix=".papersuite-probe-", dir=folder))
            probe.rmdir()
        except OSError as error:
            raise OutputError(f"--output '{dest}': cannot write in '{folder}' ({error.strerror or error}); "
                              "give a writable folder") from None


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


PR_SET_PDEATHSIG = 1   # <linux/prctl.h>


def die_with_runner():
    """A ``preexec_fn`` that makes the kernel die with the runner, however the runner dies (SIGKILL included).

    Linux's parent-death signal: ipykernel's own watch waits for the kernel to be re-parented to pid 1,
    which never happens under a subreaper (a container's init, systemd --user), and a kernel left
    without its runner computes on for hours. None where there is no prctl.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: nothing may be imported after fork
    runner = os.getpid()

    def arm() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != runner:  # the runner died before the signal was armed
            os._exit(1)

    return arm


def _kernel_manager_class():
    """A kernel manager on local IPC sockets (no TCP port, and no 'TCP without encryption' warning) whose
    kernel dies with the runner."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import CaselessStrEnum, default

    class IPCKernelManager(AsyncKernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

        @default("ip")
        def _short_ipc_path(self) -> str:  # unix socket paths are limited to ~100 characters
            folder = Path(tempfile.gettempdir()) / f"papersuite-ipc-{os.getuid()}"
            folder.mkdir(mode=0o700, exist_ok=True)
            return str(folder / uuid.uuid4().hex[:12])

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            kw.setdefault("preexec_fn", die_with_runner())
            await super()._async_launch_kernel(kernel_cmd, **kw)

    return IPCKernelManager


class Interrupted(KeyboardInterrupt):
    """The run was stopped by SIGINT or SIGTERM; the runner exits with 128 + the signal's number."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by signal {signal.Signals(signum).name}")
        self.signum = signum


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

    A failed or interrupted run keeps the previous result in ``dest`` (restored from results/.kept/<id>/
    where DVC had removed it before the run) and its executed notebook in ``results/failed/<id>.ipynb``.
    """
    import papermill

    dest = check_output(paper_id, dest)
    own_folder = dest == default_output(paper_id)
    if own_folder:
        refresh_kept(paper_id, dest)
    staging_root, failed_dir = paths.RESULTS_DIR / ".staging", paths.RESULTS_DIR / "failed"
    staging_root.mkdir(parents=True, exist_ok=True)
    prune_staging(staging_root)
    staging = new_folder(f"{paper_id}-pid{os.getpid()}-", staging_root)
    started, t0, code = datetime.now(timezone.utc), time.time(), git_state()
    cpu0 = children_cpu_seconds()
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
                    raise Interrupted(received[0]) from None
                raise
            if received:
                raise Interrupted(received[0])
    except BaseException:
        failed_dir.mkdir(parents=True, exist_ok=True)
        failed = failed_dir / f"{paper_id}.ipynb"
        if executed.exists():
            shutil.move(str(executed), failed)
        shutil.rmtree(staging, ignore_errors=True)
        log(f"{paper_id}: FAILED after {time.time() - t0:.0f} s; executed notebook kept in {failed}; "
            + previous_result_after_failure(paper_id, dest, own_folder))
        raise
    wall = time.time() - t0
    from shared.config import fingerprint
    from shared.results import write_json

    write_json(staging / "run.json", {**provenance(paper_id, parameters, staging, started, wall, code),
                                      "cpu_time_s": round(children_cpu_seconds() - cpu0, 1), **fingerprint(staging)})
    place(staging, dest, paper_id)
    if own_folder:
        refresh_kept(paper_id, dest)
    (failed_dir / f"{paper_id}.ipynb").unlink(missing_ok=True)
    log(f"{paper_id} @ {parameters['scale']}: finished in {wall:.0f} s; {summary(dest)}")
    return dest


def children_cpu_seconds() -> float:
    """User + system CPU seconds of this process's finished children: the kernel and its worker processes.
    Less sensitive to other jobs on the machine than the wall time (a run's cost, for comparisons)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Unplaced(OutputError):
    """A finished run whose folder became something else meanwhile: its result was put beside it."""


def new_folder(prefix: str, parent: Path) -> Path:
    """A fresh folder under ``parent`` with the permissions of the user's umask (mkdtemp's are 0700,
    and a result folder keeps the mode it was staged with)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    mask = os.umask(0o022)
    os.umask(mask)
    folder.chmod(0o777 & ~mask)
    return folder


def move_folder(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``; across file systems, copy then remove (``target`` is a name no one
    reads until it is complete: a hidden sibling of the destination, or a new folder)."""
    try:
        source.rename(target)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        shutil.copytree(source, target, symlinks=True)
        shutil.rmtree(source, ignore_errors=True)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM wait for the end of a swap: stopped between its two renames, ``dest`` would be missing."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def place(result: Path, dest: Path, paper_id: str) -> Path:
    """Swap the finished ``result`` folder in as ``dest`` and keep the files of the old folder that no run wrote.

    ``dest`` is checked again at the swap: a folder that appeared, or changed owner, during the run is left
    untouched and the result goes beside it (Unplaced). Nothing is deleted but a previous run's own files.
    """
    try:
        check_output(paper_id, dest)
    except OutputError as error:
        aside = dest.with_name(f"{dest.name}.{paper_id}-{datetime.now():%Y%m%d-%H%M%S}")
        move_folder(result, aside)
        raise Unplaced(f"{error}. It changed during the run and is left untouched; this run's result is in "
                       f"'{aside}'") from None
    # the new and the old folder wait beside dest, one level down: a leftover of a killed run is never
    # taken for a result (results/*/claims.json is committed to git)
    swap = dest.with_name(f".{dest.name}.swap-{os.getpid()}")
    swap.mkdir(parents=True, exist_ok=True)
    fresh, old = swap / "new", swap / "old"
    move_folder(result, fresh)
    with signals_deferred():
        if dest.exists():
            dest.rename(old)
        fresh.rename(dest)
    if old.exists():
        carried = keep_user_files(old, dest)
        if carried:
            log(f"kept {len(carried)} file(s) in {dest} that no run wrote: {', '.join(carried)}")
    try:
        swap.rmdir()
    except OSError:
        log(f"{swap} keeps what could not be put back in {dest}")
    return dest


def run_files(folder: Path) -> set[str]:
    """The entries of ``folder`` that its run wrote: run.json's ``files``, else the standard result entries."""
    try:
        recorded = json.loads((folder / "run.json").read_text()).get("files")
    except (OSError, ValueError, AttributeError):
        recorded = None
    listed = {f for f in recorded if isinstance(f, str)} if isinstance(recorded, list) else set()
    return set(RESULT_ENTRIES) | listed


def keep_user_files(old: Path, dest: Path) -> list[str]:
    """Move the entries of the replaced folder ``old`` that no run wrote into ``dest``; delete the rest and
    ``old``. An entry whose name the new result took stays in ``old``, which is then left in place."""
    ours, carried = run_files(old), []
    for entry in sorted(old.iterdir()):
        if entry.name in ours and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        elif entry.name in ours:
            entry.unlink()
        elif not (dest / entry.name).exists():
            entry.rename(dest / entry.name)
            carried.append(entry.name)
    try:
        old.rmdir()
    except OSError:
        names = ", ".join(p.name for p in old.iterdir())
        log(f"{old} keeps files whose names this run's result also has: {names}")
    return carried


def kept_dir(paper_id: str) -> Path:
    return paths.RESULTS_DIR / KEPT / paper_id


def refresh_kept(paper_id: str, folder: Path) -> None:
    """Copy the result in ``folder`` (its run's own files) to results/.kept/<id>/, unless that is it already.

    DVC removes a stage's outputs before it runs the runner, so a result that is not in DVC's cache (a
    direct run) would be lost by a failed ``dvc repro``; this copy is what the runner restores then.
    """
    kept = kept_dir(paper_id)
    if not (folder / "run.json").is_file() or not owns(folder, paper_id):
        return
    if (kept / "run.json").is_file() and (kept / "run.json").read_bytes() == (folder / "run.json").read_bytes():
        return
    kept.parent.mkdir(parents=True, exist_ok=True)
    copy = new_folder(f"{paper_id}-", kept.parent)
    for name in sorted(run_files(folder)):
        source = folder / name
        if source.is_dir():
            shutil.copytree(source, copy / name, symlinks=True)
        elif source.is_file():
            shutil.copy2(source, copy / name)
    old = kept.with_name(f"{kept.name}-old-{os.getpid()}")
    if kept.exists():
        kept.rename(old)
    copy.rename(kept)
    shutil.rmtree(old, ignore_errors=True)


def previous_result_after_failure(paper_id: str, dest: Path, own_folder: bool) -> str:
    """After a failed run: put the last good result back where DVC removed it; say truly where it is.

    Only DVC empties a folder behind the runner's back (it removes a stage's outputs before running it); a
    result that is missing outside DVC was removed by the user, and stays so.
    """
    if owns(dest, paper_id):
        return f"the previous result in {dest} is kept"
    kept, emptied = kept_dir(paper_id), "DVC removes a stage's outputs before it runs the stage"
    if not (own_folder and os.environ.get("DVC_STAGE")):
        return f"there was no previous result in {dest}"
    if not owns(kept, paper_id):
        if paper_id not in locked_stages():
            return f"there was no previous result in {dest}"
        return (f"{dest} holds no result ({emptied}) and the runner kept no copy: "
                f"`dvc checkout {paper_id}` restores the result dvc.lock pins")
    try:
        (paths.RESULTS_DIR / ".staging").mkdir(parents=True, exist_ok=True)
        copy = new_folder(f"{paper_id}-pid{os.getpid()}-restore-", paths.RESULTS_DIR / ".staging")
        shutil.copytree(kept, copy, symlinks=True, dirs_exist_ok=True)
        place(copy, dest, paper_id)
    except (OSError, OutputError) as error:
        return f"{dest} holds no result ({emptied}) and restoring the copy in {kept} failed: {error}"
    return f"{dest} held no result ({emptied}): the last result the runner placed there is restored from {kept}"


def locked_stages() -> set[str]:
    """The stages dvc.lock records (a result DVC can check out again)."""
    try:
        stages = yaml.safe_load((REPO_ROOT / "dvc.lock").read_text()).get("stages")
    except (OSError, yaml.YAMLError, AttributeError):
        return set()
    return set(stages) if isinstance(stages, dict) else set()


def restore_after_refusal(paper_id: str, output: Path | None) -> str:
    """A run refused before its kernel: under ``dvc repro`` DVC has already removed results/<id>, so put the
    kept copy back as after a failed run. The note to print, or "" when there is nothing to say."""
    dest = default_output(paper_id) if paper_id.isidentifier() else None
    if dest is None or (output is not None and Path(output).expanduser().resolve() != dest):
        return ""
    if owns(dest, paper_id) or not os.environ.get("DVC_STAGE"):
        return ""
    return previous_result_after_failure(paper_id, dest, own_folder=True)


def _leaves_of(tree: Any, prefix: tuple = ()) -> dict[tuple, Any]:
    if isinstance(tree, dict):
        return {path: leaf for key, value in tree.items() for path, leaf in _leaves_of(value, (*prefix, key)).items()}
    return {prefix: tree}


def undo_refused_experiment(error: Exception, paper_id: str) -> str:
    """Under ``dvc exp run -S``: DVC wrote the refused value into params.yaml (re-dumping the file, its nulls
    blank) and leaves it there when the experiment fails. Put back the baseline commit's params.yaml when the
    two differ in the refused parameter only, so no edit of the user's is lost; else say how. The note, or ""."""
    rev, name = os.environ.get("DVC_EXP_BASELINE_REV"), getattr(error, "name", None)
    if not rev or not name:
        return ""
    done = subprocess.run(["git", "show", f"{rev}:params.yaml"], cwd=REPO_ROOT, capture_output=True, text=True)
    try:
        baseline, current = yaml.safe_load(done.stdout), yaml.safe_load(paths.PARAMS_FILE.read_text())
    except (OSError, yaml.YAMLError):
        return ""
    if done.returncode != 0 or not isinstance(baseline, dict) or not isinstance(current, dict):
        return ""
    old, new = _leaves_of(baseline), _leaves_of(current)
    changed = {path for path in old.keys() | new.keys() if old.get(path) != new.get(path)}
    knob = name.split(".", 1)[0]
    if not changed:
        return ""
    if any(path[:1] != (name,) and path[:3] != ("papers", paper_id, knob) for path in changed):
        return (f"{paths.PARAMS_FILE} keeps what `dvc exp run -S` wrote into it, with edits of yours: "
                f"`git diff {paths.PARAMS_FILE.name}` shows them")
    paths.PARAMS_FILE.write_text(done.stdout)
    return f"{paths.PARAMS_FILE} is back to the one of {rev[:7]} (`dvc exp run -S` had written the refused value)"


def check_data(paper_id: str) -> None:
    """Before the kernel: data.dvc pins what shared.data builds (put back if ``dvc repro`` re-pinned it to a
    changed data/), and data/ is intact if the paper's stage (dvc.yaml) depends on it (else DataError)."""
    # by name, not an import statement: shared.pipeline gives every stage the modules the runner imports, and
    # a stage must depend on data/ only when its own notebook reads it
    data = importlib.import_module("shared.data")
    if data.repair_pin():
        log(f"{data.DVC_FILE} pinned data that shared.data does not build (DVC re-pins a changed data/ "
            "before it runs the stages): its pin is put back")
    if "data" in stage_deps(paper_id):
        problems = data.check_all(data.DATA_DIR)
        if problems:
            raise DataError("; ".join(problems))


def stage_deps(paper_id: str) -> list[str]:
    """The dependencies of the paper's DVC stage in dvc.yaml ([] without one)."""
    try:
        stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text()).get("stages") or {}
    except (OSError, yaml.YAMLError, AttributeError):
        return []
    stage = stages.get(paper_id) if isinstance(stages, dict) else None
    return list(stage.get("deps") or []) if isinstance(stage, dict) else []


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
        check_data(args.paper)
    except (ParameterError, PresetError, ParamsFileError, OutputError, FileNotFoundError, DataError,
            CorruptInputError) as error:
        notes = [restore_after_refusal(args.paper, args.output), undo_refused_experiment(error, args.paper)]
        parser.exit(2, f"error: {error}\n" + "".join(f"[papersuite] {note}\n" for note in notes if note))
    except BaseException:  # anything else before the kernel (Ctrl-C, an OSError): the result goes back too
        note = restore_after_refusal(args.paper, args.output)
        if note:
            log(note)
        raise
    import papermill

    try:
        execute(args.paper, parameters, dest)
    except papermill.PapermillExecutionError as error:
        log(f"{error.ename}: {error.evalue}")
        return 1
    except Interrupted as error:
        log(f"{args.paper}: {error}")
        return 128 + error.signum
    except KeyboardInterrupt:  # Ctrl-C before the kernel started: nothing ran, the result goes back
        log(f"{args.paper}: stopped by SIGINT; " + (restore_after_refusal(args.paper, args.output) or "nothing ran"))
        return 128 + signal.SIGINT
    except Unplaced as error:
        log(f"{args.paper}: not placed: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
