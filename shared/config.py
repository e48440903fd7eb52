"""Scale presets and the one-call setup every notebook starts with.

A paper's knobs live in ``shared/presets/<id>.yaml``: one complete mapping per scale. In the
notebook, a knob left at ``None`` takes the preset value of the chosen scale.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Mapping

import yaml

from shared.errors import ParameterError
from shared import paths
from shared.paths import output_dir

SCALES = ("smoke", "cpu", "paper")
COMMON = ("scale", "seed", "device")


def load_presets(paper_id: str) -> dict[str, dict[str, Any]]:
    """The paper's preset file: ``{scale: {knob: value}}`` for every scale."""
    path = paths.PRESETS_DIR / f"{paper_id}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no preset file for paper {paper_id!r}: expected {path}")
    presets = yaml.safe_load(path.read_text())
    if set(presets) != set(SCALES):
        raise ValueError(f"{path} must define exactly the scales {SCALES}, not {sorted(presets)}")
    return presets


def check_scale(scale: str) -> str:
    if scale not in SCALES:
        raise ParameterError("scale", f"unknown value {scale!r}", SCALES)
    return scale


def resolve(paper_id: str, scale: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """Preset values of ``scale``, overridden by every knob in ``given`` that is not None."""
    preset = load_presets(paper_id)[check_scale(scale)]
    unknown = sorted(set(given) - set(preset))
    if unknown:
        raise ParameterError(unknown[0], f"is not a knob of {paper_id}", sorted(preset))
    return {k: (given[k] if given.get(k) is not None else v) for k, v in preset.items()}


def setup(paper_id: str, namespace: Mapping[str, Any]) -> SimpleNamespace:
    """Resolve the notebook's parameters, seed, set threads, theme and device; return the config.

    ``namespace`` is the notebook's ``globals()``: ``scale``, ``seed``, ``device`` and the
    paper's knobs are read from it.
    """
    from shared import plots, runtime
    from shared.results import write_json

    scale = check_scale(namespace.get("scale", "cpu"))
    preset_keys = load_presets(paper_id)[scale]
    knobs = resolve(paper_id, scale, {k: namespace.get(k) for k in preset_keys})
    seed = int(namespace.get("seed", 0))
    runtime.seed_everything(seed)
    threads = runtime.set_threads()
    plots.set_theme()
    device = runtime.choose_device(namespace.get("device", "auto"))
    config = {"paper": paper_id, "scale": scale, "seed": seed, "device": str(device), **knobs}
    write_json(output_dir(paper_id) / "config.json", config)
    print(f"{paper_id} @ {scale} | seed {seed} | {device} ({threads} threads)")
    print(yaml.safe_dump(knobs, sort_keys=False, default_flow_style=None).rstrip())
    return SimpleNamespace(**{**config, "device": device})
