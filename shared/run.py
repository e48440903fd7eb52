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
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

import yaml

from shared.config import SCALES, check_scale, load_presets, resolve
from shared.errors import ParameterError
from shared import paths
from shared.paths import CACHE_DIR, OUTPUT_ENV, REPO_ROOT, notebook_path

TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (int, float), "str": (str,), "bool": (bool,),
    "list": (list,), "dict": (dict,),
}
VERSIONED = ("torch", "numpy", "scipy", "pandas", "scikit-learn", "transformers", "papermill", "dvc")


def log(message: str) -> None:
    print(f"[papersuite] {message}", file=sys.stderr, flush=True)


def load_params() -> dict[str, Any]:
    return yaml.safe_load(paths.PARAMS_FILE.read_text()) or {}


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
            values.setdefault(name, {})[entry] = yaml.safe_load(raw)
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
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def provenance(paper_id: str, parameters: dict[str, Any], staging: Path, started: datetime,
               wall: float) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True)
        return out.stdout.strip()

    versions = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            pass
    config_file = staging / "config.json"
    config = json.loads(config_file.read_text()) if config_file.exists() else {}
    return {
        "paper": paper_id, "scale": parameters["scale"], "seed": config.get("seed"),
        "parameters": parameters, "config": config,
        "git_commit": git("rev-parse", "HEAD"), "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "started": started.isoformat(timespec="seconds"), "wall_time_s": round(wall, 1),
        "versions": versions,
        "hardware": {"platform": platform.platform(), "processor": platform.machine(),
                     "cpu_count": os.cpu_count(), "device": config.get("device")},
    }


def execute(paper_id: str, parameters: dict[str, Any], dest: Path) -> Path:
    """Run the notebook into a staging folder; move it to ``dest`` only if it succeeds."""
    import papermill

    staging_root, failed_dir = paths.RESULTS_DIR / ".staging", paths.RESULTS_DIR / "failed"
    staging_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{paper_id}-", dir=staging_root))
    started, t0 = datetime.now(timezone.utc), time.time()
    log(f"{paper_id} @ {parameters['scale']}: started")
    executed = staging / "notebook.ipynb"
    try:
        with kernel_environment(staging):
            papermill.execute_notebook(
                str(notebook_path(paper_id)), str(executed), parameters=parameters,
                kernel_name="python3", cwd=str(notebook_path(paper_id).parent),
                progress_bar=not os.environ.get("CI"),
            )
    except BaseException:
        failed_dir.mkdir(parents=True, exist_ok=True)
        failed = failed_dir / f"{paper_id}.ipynb"
        if executed.exists():
            shutil.move(str(executed), failed)
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(dest, ignore_errors=True)
        log(f"{paper_id}: FAILED after {time.time() - t0:.0f} s; executed notebook kept in {failed}")
        raise
    wall = time.time() - t0
    from shared.results import write_json

    write_json(staging / "run.json", provenance(paper_id, parameters, staging, started, wall))
    shutil.rmtree(dest, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(staging), dest)
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
    except (ParameterError, FileNotFoundError) as error:
        parser.exit(2, f"error: {error}\n")
    import papermill

    try:
        execute(args.paper, parameters, args.output or paths.RESULTS_DIR / args.paper)
    except papermill.PapermillExecutionError as error:
        log(f"{error.ename}: {error.evalue}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
