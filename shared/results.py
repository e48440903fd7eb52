"""Writers for a paper's metrics and tables (the files DVC declares as metrics and plots)."""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from shared.paths import output_dir


def _plain(value: Any) -> Any:
    """numpy/torch scalars and arrays to JSON types; NaN and inf to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(_plain(data), indent=2, sort_keys=True) + "\n")
    return path


def write_metrics(paper_id: str, metrics: dict) -> Path:
    """Write ``metrics.json`` (nested dict of numbers) into the paper's outputs."""
    return write_json(output_dir(paper_id) / "metrics.json", metrics)


def write_table(paper_id: str, name: str, table) -> Path:
    """Write a pandas DataFrame as ``tables/<name>.csv`` (for ``dvc plots``)."""
    folder = output_dir(paper_id) / "tables"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.csv"
    table.to_csv(path, index=False, float_format="%.6g")
    return path


def dir_md5(root: Path) -> str:
    """DVC 3's hash of a directory: md5 of the sorted JSON list of (relpath, file md5)."""
    entries = [
        {"md5": hashlib.md5(p.read_bytes()).hexdigest(), "relpath": p.relative_to(root).as_posix()}
        for p in sorted(root.rglob("*"))
        if p.is_file()
    ]
    entries.sort(key=lambda e: e["relpath"])
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode()).hexdigest() + ".dir"
