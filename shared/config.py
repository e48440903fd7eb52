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
import shutil
import tempfile
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
LIMIT_KEYS = {"min", "max", "above", "below", "choices", "items", "min_items"}
SEED_RULE_KEY = "shown_not_asserted"   # preset key: scale -> {claim: why it is shown, not asserted}
THREADS_KEY = "threads"                # preset key: the kernel's threads when PAPERSUITE_THREADS is unset
NON_SCALE_KEYS = ("limits", SEED_RULE_KEY, THREADS_KEY)


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
    """The preset file's ``limits:``: knob -> {min, max, above, below, choices, items, min_items}."""
    raw, path = _read_preset_file(paper_id)
    limits = (raw or {}).get("limits") or {}
    for knob, spec in limits.items():
        if not isinstance(spec, dict) or not set(spec) <= LIMIT_KEYS:
            raise PresetError(f"{path}: limits.{knob} must be a mapping with keys among {sorted(LIMIT_KEYS)}")
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


def load_default_threads(paper_id: str) -> int | None:
    """The preset file's ``threads:``, this paper's torch/BLAS threads unless $PAPERSUITE_THREADS is set
    (None: every core). A paper whose in-process work is small models sets 1: as fast quiet, and it never
    waits for a thread that a busy machine has descheduled."""
    raw, path = _read_preset_file(paper_id)
    value = (raw or {}).get(THREADS_KEY)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise PresetError(f"{path}: {THREADS_KEY} must be a positive number of threads, not {value!r}")
    return value


def kernel_threads(paper_id: str) -> int | None:
    """$PAPERSUITE_THREADS if set, else the preset's ``threads:``; None means every core."""
    env = os.environ.get("PAPERSUITE_THREADS")
    return int(env) if env else load_default_threads(paper_id)


def _finite(value: Any) -> bool:
    return not (isinstance(value, float) and not math.isfinite(value))


def check_value(name: str, value: Any, spec: Mapping[str, Any] | None = None) -> Any:
    """Refuse a knob value outside its limits (and any NaN or inf), naming the knob and the range."""
    spec = spec or {}
    if value is None:
        return value
    values = value if isinstance(value, list) else [value]
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
    return "; ".join(parts)


def check_scale(scale: str) -> str:
    if scale not in SCALES:
        raise ParameterError("scale", f"unknown value {scale!r}", SCALES)
    return scale


def check_common(seed: Any, device: Any) -> None:
    """``seed`` is an integer >= 0; ``device`` one of DEVICES."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ParameterError("seed", f"{seed!r} is not an integer >= 0", ">= 0")
    if device not in DEVICES:
        raise ParameterError("device", f"unknown value {device!r}", DEVICES)


def resolve(paper_id: str, scale: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """Preset values of ``scale``, overridden by every knob in ``given`` that is not None, within limits."""
    preset = load_presets(paper_id)[check_scale(scale)]
    unknown = sorted(set(given) - set(preset))
    if unknown:
        raise ParameterError(unknown[0], f"is not a knob of {paper_id}", sorted(preset))
    knobs = {k: (given[k] if given.get(k) is not None else v) for k, v in preset.items()}
    limits = load_limits(paper_id)
    for name, value in knobs.items():
        check_value(name, value, limits.get(name))
    return knobs


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


def publish(staging: Path, paper_id: str) -> Path | None:
    """Swap a copy of ``staging`` in as results/<id> (whole, never file by file); None if refused."""
    dest = paths.RESULTS_DIR / paper_id
    if dest.exists() and any(dest.iterdir()) and not owns(dest, paper_id):
        print(f"not published: {dest} is not a result of {paper_id}; this run stays in {staging}")
        return None
    fresh = Path(tempfile.mkdtemp(prefix=f"{staging.name}-publish-", dir=staging.parent))
    shutil.copytree(staging, fresh, dirs_exist_ok=True)
    old = fresh.with_name(fresh.name + "-old")
    if dest.exists():
        dest.rename(old)
    fresh.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
    return dest


def stage_interactive_run(paper_id: str) -> Path | None:
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

    def after_cell(result) -> None:
        if result.success and (staging / "claims.json").exists():
            publish(staging, paper_id)

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
    from shared import plots, runtime
    from shared.results import write_json

    declared = declared_parameters(paper_id)
    unknown = sorted(set(injected_names()) - set(declared)) if declared else []
    if unknown:
        raise ParameterError(unknown[0], f"is not a parameter of notebooks/{paper_id}.ipynb", sorted(declared))
    check_declared_knobs(paper_id, [name for name, from_preset in declared.items() if from_preset])
    scale = check_scale(namespace.get("scale", "cpu"))
    seed, device_name = namespace.get("seed", 0), namespace.get("device", "auto")
    check_common(seed, device_name)
    preset_keys = load_presets(paper_id)[scale]
    knobs = resolve(paper_id, scale, {k: namespace.get(k) for k in preset_keys})
    staged = stage_interactive_run(paper_id)
    runtime.seed_everything(seed)
    threads = runtime.set_threads(kernel_threads(paper_id))
    plots.set_theme()
    device = runtime.choose_device(device_name)
    config = {"paper": paper_id, "scale": scale, "seed": seed, "device": str(device), **knobs}
    write_json(output_dir(paper_id) / "config.json", config)
    print(f"{paper_id} @ {scale} | seed {seed} | {device} ({threads} threads)"
          + (f"\nthis run is staged; results/{paper_id}/ is replaced whole once the Verdict is written" if staged else ""))
    print(yaml.safe_dump(knobs, sort_keys=False, default_flow_style=None).rstrip())
    return SimpleNamespace(**{**config, "device": device})
