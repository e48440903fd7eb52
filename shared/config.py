"""Scale presets, knob limits and the one-call setup every notebook starts with.

A paper's knobs live in ``shared/presets/<id>.yaml``: one complete mapping per scale, and an
optional ``limits:`` mapping that gives a knob's valid range or choices (checked by the runner
before any kernel starts, and by ``setup`` in Jupyter). In the notebook, a knob left at ``None``
takes the preset value of the chosen scale.
"""
from __future__ import annotations

import ast
import json
import math
import os
import hashlib
import shutil
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Mapping

import yaml

from shared import paths
from shared.errors import ParameterError
from shared.paths import output_dir
from shared.runtime import DEVICES

SCALES = ("smoke", "cpu", "paper")
COMMON = ("scale", "seed", "device")
LIMIT_KEYS = {"min", "max", "above", "below", "choices", "items", "min_items", "exclude", "path", "required_when",
              "type"}
PATH_KINDS = ("dir", "file", "any")    # limits.<knob>.path: what a set path knob must name
MAX_SEED = 2**32 - 1                   # numpy's seeds end here
SEED_RULE_KEY = "shown_not_asserted"   # preset key: scale -> {claim: why it is shown, not asserted}
THREADS_KEY = "threads"                # preset key: the kernel's threads when PAPERSUITE_THREADS is unset
HEADLINE_KEY = "headline"              # preset key: the paper's headline claims (at most MAX_HEADLINE ids)
EXPECTED_NA_KEY = "expected_na"        # preset key: scale -> how many checked claims are N/A there by design
NON_SCALE_KEYS = ("limits", SEED_RULE_KEY, THREADS_KEY, HEADLINE_KEY, EXPECTED_NA_KEY)
MAX_HEADLINE = 5


class PresetError(ValueError):
    """A preset file that cannot be used: a scale or a knob missing, a malformed limit."""


def _read_preset_file(paper_id: str) -> tuple[Any, str]:
    path = paths.PRESETS_DIR / f"{paper_id}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no preset file for paper {paper_id!r}: expected {path}")
    try:
        return yaml.safe_load(path.read_text()), str(path)
    except yaml.YAMLError as error:
        raise PresetError(f"{path} is not valid YAML: {error}") from None


def load_presets(paper_id: str) -> dict[str, dict[str, Any]]:
    """The paper's preset file: ``{scale: {knob: value}}`` for every scale, each with the same knobs."""
    raw, path = _read_preset_file(paper_id)
    if not isinstance(raw, dict):
        raise PresetError(f"{path} must be a mapping of the scales {SCALES}")
    presets = {k: v for k, v in raw.items() if k not in NON_SCALE_KEYS}
    if set(presets) != set(SCALES):
        raise PresetError(f"{path} must define exactly the scales {SCALES}, not {sorted(presets)}")
    knobs = set().union(*(set(v or {}) for v in presets.values()))
    for scale, values in presets.items():
        missing = sorted(knobs - set(values or {}))
        if missing:
            raise PresetError(f"{path}: scale '{scale}' lacks the knob(s) {missing}; every scale must set every knob")
    return {scale: dict(values or {}) for scale, values in presets.items()}


def load_limits(paper_id: str) -> dict[str, dict[str, Any]]:
    """The preset file's ``limits:``: knob -> {min, max, above, below, choices, items, min_items, exclude, type,
    path (dir | file | any: what a set path knob names), required_when ({knob: value(s)}: then it must be set)}."""
    raw, path = _read_preset_file(paper_id)
    limits = (raw or {}).get("limits") or {}
    for knob, spec in limits.items():
        if not isinstance(spec, dict) or not set(spec) <= LIMIT_KEYS:
            raise PresetError(f"{path}: limits.{knob} must be a mapping with keys among {sorted(LIMIT_KEYS)}")
        if spec.get("path", "dir") not in PATH_KINDS or not isinstance(spec.get("required_when", {}), dict):
            raise PresetError(f"{path}: limits.{knob}: path is one of {PATH_KINDS}, required_when a mapping")
    return limits


def load_seed_rule(paper_id: str) -> dict[str, dict[str, str]]:
    """The preset file's ``shown_not_asserted:``: scale -> {claim: why}. The suite's seed rule: a claim that
    did not hold for every seed of 0-4 at a scale is shown there as INFO with its pass rate, not asserted."""
    raw, path = _read_preset_file(paper_id)
    rule = (raw or {}).get(SEED_RULE_KEY) or {}
    for scale, claims in rule.items():
        if scale not in SCALES or not isinstance(claims, dict) or \
                not all(isinstance(k, str) and isinstance(v, str) and v for k, v in claims.items()):
            raise PresetError(f"{path}: {SEED_RULE_KEY}.{scale} must map claim names to a non-empty reason "
                              f"(e.g. 'holds for 3/5 seeds'), under one of the scales {SCALES}")
    return {scale: dict(claims) for scale, claims in rule.items()}


def load_headline(paper_id: str) -> list[str]:
    """The preset file's ``headline:``: the ids of the paper's headline claims (the abstract's central
    statements). "Reproduces" needs each of them asserted and PASS wherever it applies."""
    raw, path = _read_preset_file(paper_id)
    headline = (raw or {}).get(HEADLINE_KEY) or []
    if (not isinstance(headline, list) or not all(isinstance(h, str) and h for h in headline)
            or len(set(headline)) != len(headline) or len(headline) > MAX_HEADLINE):
        raise PresetError(f"{path}: {HEADLINE_KEY} must list at most {MAX_HEADLINE} distinct claim ids")
    return list(headline)


def load_expected_na(paper_id: str) -> dict[str, int]:
    """The preset file's ``expected_na:``: scale -> how many checked claims are N/A there by design
    (a claim that needs a real model at smoke, a dataset only ``paper`` has); 0 where not given."""
    raw, path = _read_preset_file(paper_id)
    budget = (raw or {}).get(EXPECTED_NA_KEY) or {}
    if not isinstance(budget, dict) or not set(budget) <= set(SCALES) or \
            not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in budget.values()):
        raise PresetError(f"{path}: {EXPECTED_NA_KEY} must map scales among {SCALES} to counts >= 0")
    return {scale: int(budget.get(scale, 0)) for scale in SCALES}


def load_default_threads(paper_id: str) -> int | None:
    """The preset file's ``threads:``, this paper's torch/BLAS threads unless $PAPERSUITE_THREADS is set
    (None: every core). A paper whose in-process work is small models sets 1: as fast quiet, and it never
    waits for a thread that a busy machine has descheduled."""
    raw, path = _read_preset_file(paper_id)
    value = (raw or {}).get(THREADS_KEY)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise PresetError(f"{path}: {THREADS_KEY} must be a positive number of threads, not {value!r}")
    return value


REFERENCE_THREADS = 2   # the threads of the machines the committed results come from (smoke and cpu)
MAX_THREADS = 256


def threads_from_env() -> int | None:
    """$PAPERSUITE_THREADS as a number of threads (1-256), None when unset; anything else is refused."""
    raw = os.environ.get("PAPERSUITE_THREADS", "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_THREADS:
        raise ParameterError("PAPERSUITE_THREADS", f"{raw!r} is not a number of threads", f"1-{MAX_THREADS}, or unset")
    return value


def kernel_threads(paper_id: str, scale: str = "cpu") -> int | None:
    """$PAPERSUITE_THREADS if set, else the preset's ``threads:``, else REFERENCE_THREADS at smoke and cpu.

    A fixed count, not every core: MKL and ATen split a sum by thread, so the same count gives the same
    bits on a laptop and on a 64-core server. At ``paper`` (None) the kernels take every core.
    """
    env = threads_from_env()
    if env is not None:
        return env
    preset = load_default_threads(paper_id)
    if preset is not None:
        return preset
    return None if scale == "paper" else REFERENCE_THREADS


def _finite(value: Any) -> bool:
    return not (isinstance(value, float) and not math.isfinite(value))


def _leaves(value: Any) -> list[Any]:
    """The scalars of a value: a list's items, at any depth, and a dict's values."""
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    return [value]


def check_value(name: str, value: Any, spec: Mapping[str, Any] | None = None) -> Any:
    """Refuse a knob value outside its limits (and any NaN or inf, at any depth), naming the knob and the range;
    a list's bounds apply to each of its numbers."""
    spec = spec or {}
    if value is None:
        return value
    values = _leaves(value)
    if not all(_finite(v) for v in values):
        raise ParameterError(name, f"{value!r} is not a finite number", _describe(spec) if spec else None)
    if isinstance(value, list):
        if len(value) < spec.get("min_items", 0):
            raise ParameterError(name, f"needs at least {spec['min_items']} item(s), got {value!r}", _describe(spec))
        if "items" in spec and not set(map(str, value)) <= set(map(str, spec["items"])):
            bad = [v for v in value if str(v) not in set(map(str, spec["items"]))]
            raise ParameterError(name, f"unknown item(s) {bad}", spec["items"])
    if "choices" in spec and value not in spec["choices"]:
        raise ParameterError(name, f"unknown value {value!r}", spec["choices"])
    bounds = (("min", lambda v, b: v >= b), ("max", lambda v, b: v <= b),
              ("above", lambda v, b: v > b), ("below", lambda v, b: v < b))
    for v in values:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            for key, ok in bounds:
                if key in spec and not ok(v, spec[key]):
                    raise ParameterError(name, f"{value!r} is out of range", _describe(spec))
            if v in spec.get("exclude", ()):
                raise ParameterError(name, f"{value!r} has no meaning", _describe(spec))
    return value


def _describe(spec: Mapping[str, Any]) -> str:
    words = {"min": ">=", "max": "<=", "above": ">", "below": "<"}
    parts = [f"{words[k]} {spec[k]}" for k in words if k in spec]
    if "min_items" in spec:
        parts.append(f"at least {spec['min_items']} item(s)")
    if "items" in spec:
        parts.append("items among " + ", ".join(map(str, spec["items"])))
    if "choices" in spec:
        parts.append(", ".join(map(str, spec["choices"])))
    if "exclude" in spec:
        parts.append("not " + ", ".join(map(str, spec["exclude"])))
    return "; ".join(parts)


def check_scale(scale: str) -> str:
    if scale not in SCALES:
        raise ParameterError("scale", f"unknown value {scale!r}", SCALES)
    return scale


def check_common(seed: Any, device: Any) -> None:
    """``seed`` is an integer >= 0; ``device`` one of DEVICES."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ParameterError("seed", f"{seed!r} is not an integer from 0 to {MAX_SEED}", f"0-{MAX_SEED}")
    if device not in DEVICES:
        raise ParameterError("device", f"unknown value {device!r}", DEVICES)


def resolve(paper_id: str, scale: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """Preset values of ``scale``, overridden by every knob in ``given`` that is not None, within limits."""
    preset = load_presets(paper_id)[check_scale(scale)]
    unknown = sorted(set(given) - set(preset))
    if unknown:
        raise ParameterError(unknown[0], f"is not a knob of {paper_id}", sorted(preset))
    knobs = {k: (given[k] if given.get(k) is not None else v) for k, v in preset.items()}
    limits, shapes = load_limits(paper_id), knob_types(paper_id)
    for name, value in knobs.items():
        check_knob_type(name, value, shapes[name])
        check_value(name, value, limits.get(name))
    return knobs


def _type_of(value: Any) -> str | None:
    """A preset value's type: int, float, str, bool, dict, or list[<items' type>] ("list[?]" if empty)."""
    if value is None:
        return None
    for kind in (bool, int, float, str, dict):
        if isinstance(value, kind):
            return kind.__name__
    if isinstance(value, list):
        items = None
        for item in value:
            items = _merge_types(items, _type_of(item))
        return f"list[{items or '?'}]"
    return "any"


def _merge_types(a: str | None, b: str | None) -> str | None:
    """The type of values of types ``a`` and ``b``: an int where a float is allowed is a float."""
    if a is None or b is None or a == b:
        return a or b
    if {a, b} == {"int", "float"}:
        return "float"
    if a.startswith("list[") and b.startswith("list["):
        inner = [t[5:-1] if t[5:-1] != "?" else None for t in (a, b)]
        return f"list[{_merge_types(*inner) or '?'}]"
    return "any"


def knob_types(paper_id: str) -> dict[str, str]:
    """Each knob's type, from its values at every scale of the preset (list items and nested lists too) and
    the notebook's annotation where the presets say nothing (a knob null at every scale); ``limits.<knob>.type``
    says it where the presets' values are narrower (``list[float]`` for weights that happen to be 0 and 1)."""
    presets, limits = load_presets(paper_id), load_limits(paper_id)
    annotations = parameter_annotations(paper_id)
    types = {}
    for knob in presets["cpu"]:
        if "type" in limits.get(knob, {}):
            types[knob] = limits[knob]["type"]
            continue
        found = None
        for values in presets.values():
            found = _merge_types(found, _type_of(values[knob]))
        if found is None or (found == "int" and annotations.get(knob) == "float"):
            found = annotations.get(knob, "any")
        types[knob] = found
    return types


def check_knob_type(name: str, value: Any, kind: str) -> None:
    """ParameterError unless ``value`` (None allowed: the preset's) has the type ``kind`` of ``knob_types``."""
    if value is None or kind in ("any", "?"):
        return
    if kind.startswith("list["):
        if not isinstance(value, list):
            raise ParameterError(name, f"expected a list, got {type(value).__name__} {value!r}")
        for i, item in enumerate(value):
            if item is None:
                raise ParameterError(name, f"item {i} is empty (null)")
            check_knob_type(f"{name}[{i}]", item, kind[5:-1])
        return
    ok = {"bool": lambda v: isinstance(v, bool), "str": lambda v: isinstance(v, str),
          "dict": lambda v: isinstance(v, dict),
          "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
          "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)}.get(kind)
    if ok is not None and not ok(value):
        article = "an" if kind == "int" else "a"
        raise ParameterError(name, f"expected {article} {kind}, got {type(value).__name__} {value!r}")


def parameter_annotations(paper_id: str) -> dict[str, str]:
    """The type annotation (int, float, str, ...) of each parameter of the notebook's ``parameters`` cell."""
    cells = json.loads(paths.notebook_path(paper_id).read_text())["cells"]
    cell = next((c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    return {node.target.id: node.annotation.id for node in (ast.parse("".join(cell["source"])).body if cell else [])
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
            and isinstance(node.annotation, ast.Name)}


def check_inputs(paper_id: str, knobs: Mapping[str, Any], scale: str, base: Path | None = None) -> None:
    """Before any kernel: every path knob (``limits.<knob>.path``) that is set names an existing folder or file,
    and one that ``required_when`` its conditions hold (on knobs, or ``scale``) is set (MissingInputError naming
    the knob). Relative paths are read from ``base`` (default: the current folder)."""
    from shared.errors import MissingInputError

    knobs = {**knobs, "scale": scale}
    for name, spec in load_limits(paper_id).items():
        if "path" not in spec:
            continue
        value = knobs.get(name)
        wanted = {"dir": "an existing folder", "file": "an existing file",
                  "any": "an existing file or folder"}[spec["path"]]
        when = spec.get("required_when") or {}
        if not value and when and all(knobs.get(k) in (v if isinstance(v, list) else [v]) for k, v in when.items()):
            needed_by = ", ".join(f"{k}={knobs.get(k)}" for k in when)
            raise MissingInputError(name, None, f"{wanted} (needed when {needed_by})")
        for path in (value.values() if isinstance(value, dict) else [value]):
            if not path:
                continue
            if not isinstance(path, str):
                raise ParameterError(name, f"{path!r} is not a path", wanted)
            target = Path(path).expanduser()
            target = target if target.is_absolute() or base is None else base / target
            exists = {"dir": target.is_dir, "file": target.is_file, "any": target.exists}[spec["path"]]()
            if not exists:
                raise MissingInputError(name, path, wanted)
            check_weights(name, target)


def check_weights(param: str, target: Path) -> None:
    """CorruptInputError naming ``param`` and the file for a truncated or broken safetensors file at ``target``
    (or at the top of the folder ``target``): the loaders' own error named neither."""
    from shared.errors import CorruptInputError, safetensors_problem

    if target.is_dir():
        files = sorted(target.glob("*.safetensors"))
    else:
        files = [target] if target.suffix == ".safetensors" else []
    for weights in files:
        problem = safetensors_problem(weights)
        if problem:
            raise CorruptInputError(param, weights, problem, "safetensors weights")


def absolute_paths(paper_id: str, knobs: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """The path knobs among ``knobs`` (``limits.<knob>.path``) with ``~`` expanded and relative paths made
    absolute from ``base``: the runner's kernel runs in notebooks/, not where the user typed the path."""
    def absolute(path: Any) -> Any:
        return str(base / Path(path).expanduser()) if isinstance(path, str) and path else path

    limits = load_limits(paper_id)
    return {name: ({k: absolute(v) for k, v in value.items()} if isinstance(value, dict) else absolute(value))
            for name, value in knobs.items() if "path" in limits.get(name, {})}


def check_preset_knobs(paper_id: str, declared: Mapping[str, Any]) -> None:
    """Every knob of the preset is a parameter of the notebook: one it does not declare would be silently unused."""
    extra = sorted(set(load_presets(paper_id)["cpu"]) - set(declared))
    if extra:
        raise PresetError(f"shared/presets/{paper_id}.yaml has the knob(s) {extra} that notebooks/{paper_id}.ipynb "
                          "does not declare in its parameters cell: remove them, or declare them there")


def declared_parameters(paper_id: str) -> dict[str, bool]:
    """Names assigned in the notebook's cell tagged ``parameters``, each with whether its default is None."""
    cells = json.loads(paths.notebook_path(paper_id).read_text())["cells"]
    cell = next((c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    declared: dict[str, bool] = {}
    for node in ast.parse("".join(cell["source"])).body if cell else []:
        targets = [node.target] if isinstance(node, ast.AnnAssign) else getattr(node, "targets", [])
        value = getattr(node, "value", None)
        for target in targets:
            if isinstance(target, ast.Name):
                declared[target.id] = isinstance(value, ast.Constant) and value.value is None
    return declared


def check_declared_knobs(paper_id: str, from_preset: list[str]) -> None:
    """Every parameter that takes its value from the preset (default None) has one in every scale."""
    preset = load_presets(paper_id)["cpu"]
    missing = sorted(set(from_preset) - set(COMMON) - set(preset))
    if missing:
        raise PresetError(f"shared/presets/{paper_id}.yaml lacks the knob(s) {missing} that notebooks/{paper_id}.ipynb "
                          "declares with default None in its parameters cell: add each to every scale")


def injected_names() -> list[str]:
    """Names assigned by papermill's injected-parameters cell in this kernel ([] outside papermill)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return []
    shell = get_ipython()
    history = shell.user_ns.get("In", []) if shell is not None else []
    for source in history:
        if source.lstrip().startswith("# Parameters"):
            try:
                return [t.id for node in ast.parse(source).body for t in getattr(node, "targets", [])
                        if isinstance(t, ast.Name)]
            except SyntaxError:
                return []
    return []


_PUBLISH_HOOKS: list = []


def owns(folder: Path, paper_id: str) -> bool:
    """Whether ``folder`` holds a result of ``paper_id`` (its run.json or config.json names the paper)."""
    for name in ("run.json", "config.json"):
        try:
            if json.loads((folder / name).read_text()).get("paper") == paper_id:
                return True
        except (OSError, ValueError, AttributeError):
            continue
    return False


RUN_ID_ENV = "PAPERSUITE_RUN_ID"   # set by the runner for its kernel: config.json and run.json carry it
FINGERPRINTED = ("config.json", "claims.json", "metrics.json")


def fingerprint(folder: Path) -> dict[str, Any]:
    """What identifies a finished run's files, for its run.json: the run id (from config.json), the folder's
    entries and the md5 of its small JSON files. The scorecard flags a file that does not match them (one
    copied in from another run), and the runner deletes only the entries a run wrote."""
    try:
        run_id = json.loads((folder / "config.json").read_text()).get("run_id")
    except (OSError, ValueError, AttributeError):
        run_id = None
    return {"run_id": run_id, "files": sorted({p.name for p in folder.iterdir()} | {"run.json"}),
            "md5": {name: hashlib.md5((folder / name).read_bytes()).hexdigest()
                    for name in FINGERPRINTED if (folder / name).is_file()}}


def publish(staging: Path, paper_id: str, started: dict[str, Any] | None = None) -> Path | None:
    """Swap a copy of ``staging`` in as results/<id> whole, as the runner does (files there that no run wrote
    are kept), with a run.json the runner and the scorecard recognise; None if refused.

    ``started``: the run's parameters, start time and commit, recorded by ``stage_interactive_run``.
    """
    from shared import run
    from shared.results import write_json

    dest = paths.RESULTS_DIR / paper_id
    fresh = run.new_folder(f"{staging.name}-publish-", staging.parent)
    shutil.copytree(staging, fresh, dirs_exist_ok=True)
    started = started or {"parameters": {}, "time": time.time(), "code": {}}
    record = run.provenance(paper_id, started["parameters"], fresh,
                            datetime.fromtimestamp(started["time"], timezone.utc), time.time() - started["time"],
                            started["code"])
    write_json(fresh / "run.json", {**record, "started_by": "an interactive or direct papermill run",
                                    **fingerprint(fresh)})
    try:
        run.place(fresh, dest, paper_id)
    except run.OutputError as error:
        print(f"not published: {error}")
        return None
    run.refresh_kept(paper_id, dest)
    return dest


def stage_interactive_run(paper_id: str, parameters: Mapping[str, Any] | None = None) -> Path | None:
    """Outside the runner (Jupyter, a direct papermill run): write this run into a staging folder and
    publish it as results/<id> whole after each successful cell once the Verdict has been written.

    A run that stops before its Verdict leaves results/<id> as it was. Returns the staging folder,
    or None under the runner (which stages by itself) or outside IPython.
    """
    if os.environ.get(paths.OUTPUT_ENV):
        return None
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None:
        return None
    root = paths.RESULTS_DIR / ".staging"
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{paper_id}-pid{os.getpid()}-", dir=root))
    os.environ[paths.OUTPUT_ENV] = str(staging)
    from shared.run import git_state

    started = {"parameters": dict(parameters or {}), "time": time.time(), "code": git_state()}

    def after_cell(result) -> None:
        if result.success and (staging / "claims.json").exists():
            publish(staging, paper_id, started)

    while _PUBLISH_HOOKS:  # a re-run of the setup cell starts a new run
        old_hook = _PUBLISH_HOOKS.pop()
        try:
            shell.events.unregister("post_run_cell", old_hook)
        except ValueError:
            pass
    shell.events.register("post_run_cell", after_cell)
    _PUBLISH_HOOKS.append(after_cell)
    return staging


def setup(paper_id: str, namespace: Mapping[str, Any]) -> SimpleNamespace:
    """Resolve the notebook's parameters, seed, set threads, theme and device; return the config.

    ``namespace`` is the notebook's ``globals()``: ``scale``, ``seed``, ``device`` and the
    paper's knobs are read from it. Unknown injected parameters, knobs outside their limits and a
    preset that lacks a declared knob are refused before anything runs.
    """
    from shared import kernels, plots, runtime
    from shared.results import write_json

    declared = declared_parameters(paper_id)
    unknown = sorted(set(injected_names()) - set(declared)) if declared else []
    if unknown:
        raise ParameterError(unknown[0], f"is not a parameter of notebooks/{paper_id}.ipynb", sorted(declared))
    check_declared_knobs(paper_id, [name for name, from_preset in declared.items() if from_preset])
    check_preset_knobs(paper_id, declared)
    scale = check_scale(namespace.get("scale", "cpu"))
    seed, device_name = namespace.get("seed", 0), namespace.get("device", "auto")
    check_common(seed, device_name)
    preset_keys = load_presets(paper_id)[scale]
    knobs = resolve(paper_id, scale, {k: namespace.get(k) for k in preset_keys})
    check_inputs(paper_id, knobs, scale)
    staged = stage_interactive_run(paper_id, {k: namespace[k] for k in declared if namespace.get(k) is not None})
    runtime.seed_everything(seed)
    threads = runtime.set_threads(kernel_threads(paper_id, scale))
    plots.set_theme()
    device = runtime.choose_device(device_name)
    numerics = kernels.in_effect()
    if not kernels.consistent(numerics):
        print(f"warning: numpy or OpenBLAS was loaded before shared pinned the kernels ({numerics}): "
              "this run's values may differ from other machines'; start the notebook with the project's "
              "kernel (make lab), or run it with python -m shared.run")
    config = {"paper": paper_id, "scale": scale, "seed": seed, "device": str(device), **knobs}
    write_json(output_dir(paper_id) / "config.json",
               {**config, "run_id": os.environ.get(RUN_ID_ENV) or uuid.uuid4().hex,
                "runtime": {"threads": threads, "kernels": numerics}})
    print(f"{paper_id} @ {scale} | seed {seed} | {device} ({threads} threads)"
          + (f"\nthis run is staged; results/{paper_id}/ is replaced whole once the Verdict is written" if staged else ""))
    print(yaml.safe_dump(knobs, sort_keys=False, default_flow_style=None).rstrip())
    return SimpleNamespace(**{**config, "device": device})
