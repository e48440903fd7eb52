"""Measuring for the benchmarks: repeated runs, subprocess rusage, cell times, table lines and medians."""
from __future__ import annotations

import json
import math
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from shared import paths

CONDITIONS = ("quiet", "busy")
TOP_CELLS = 3

Record = dict[str, Any]  # one run: side, condition, repeat and the measured values


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def conditions(busy: bool) -> tuple[str, ...]:
    return CONDITIONS if busy else CONDITIONS[:1]


def median_or_none(values: Sequence[float]) -> float | None:
    """The median, or None for no values."""
    return statistics.median(values) if values else None


def fmt(x: float | None) -> str:
    """A number with about three significant digits; "–" for none."""
    if x is None or not math.isfinite(x):
        return "–"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


@dataclass
class Line:
    """One table row: what it measures, and per label (a side or a metric) the runs per condition."""

    what: str
    values: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    compare: bool = False  # two labels: the ratio is the first's median over the second's
    goal: float | None = None  # the ratio should be at most this
    note: str = ""

    def median(self, label: str, condition: str) -> float | None:
        return median_or_none(self.values.get(label, {}).get(condition, []))

    def ratio(self, condition: str) -> float | None:
        if not self.compare:
            return None
        first, second = (self.median(label, condition) for label in self.values)
        return None if first is None or not second else first / second

    def cell(self, condition: str) -> str:
        if not self.values:
            return fmt(None)
        return (" vs " if self.compare else " / ").join(fmt(self.median(l, condition)) for l in self.values)

    def full_note(self) -> str:
        if self.goal is None:
            return self.note
        ratio = self.ratio("quiet")
        verdict = "" if ratio is None else (": met" if ratio <= self.goal else ": NOT met")
        return "; ".join(filter(None, [f"goal <= {self.goal}{verdict}", self.note]))

    def row(self, busy: bool) -> list[str]:
        ratios = [fmt(self.ratio(c)) if self.compare else "" for c in conditions(busy)]
        return [self.what, *(self.cell(c) for c in conditions(busy)), *ratios, self.full_note()]

    def as_json(self) -> dict[str, Any]:
        labels = list(self.values)
        return {"what": self.what, "labels": labels, "compare": self.compare, "goal": self.goal, "note": self.note,
                "runs": self.values,
                "median": {l: {c: self.median(l, c) for c in CONDITIONS} for l in labels},
                "ratio": {c: self.ratio(c) for c in CONDITIONS}}


@dataclass
class Section:
    """A section's table lines, raw runs and problem settings."""

    lines: list[Line]
    runs: list[Record] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


def format_table(lines: Sequence[Line], busy: bool) -> str:
    """Plain-text table with aligned columns: what, medians (quiet, busy), ratios, note."""
    header = ["what", "quiet", *(["busy"] if busy else []), "ratio", *(["busy ratio"] if busy else []), "note"]
    rows = [header] + [line.row(busy) for line in lines]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    text = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)


def spin() -> None:
    """Keep one core busy until terminated."""
    while True:
        pass


@contextmanager
def background_load(busy: bool) -> Iterator[multiprocessing.Process | None]:
    """While the block runs, one process spinning on a core (if ``busy``); it is always ended after."""
    if not busy:
        yield None
        return
    spinner = multiprocessing.get_context("fork").Process(target=spin, daemon=True)
    spinner.start()
    try:
        yield spinner
    finally:
        spinner.terminate()
        spinner.join()


def collect(sides: dict[str, Callable[[], dict[str, Any]]], repeats: int, busy: bool, label: str) -> list[Record]:
    """Run every side ``repeats`` times, sides interleaved, quiet then busy; one record per run."""
    records = []
    for condition in conditions(busy):
        for repeat in range(repeats):
            for side, run in sides.items():
                log(f"{label}: {side}, {condition}, run {repeat + 1}/{repeats}")
                with background_load(condition == "busy"):
                    values = run()
                records.append({"side": side, "condition": condition, "repeat": repeat, **values})
    return records


def pick(records: Sequence[Record], side: str, metric: str) -> dict[str, list[float]]:
    """Condition -> the values of ``metric`` in the runs of ``side``."""
    out: dict[str, list[float]] = {}
    for record in records:
        if record["side"] == side and metric in record:
            out.setdefault(record["condition"], []).append(record[metric])
    return out


def comparison(what: str, records: Sequence[Record], sides: Sequence[str], metric: str = "s", **kw: Any) -> Line:
    """The line comparing ``metric`` of two sides (ratio first / second)."""
    return Line(what, {side: pick(records, side, metric) for side in sides}, compare=True, **kw)


def timed(run: Callable[[], Any]) -> Callable[[], dict[str, float]]:
    """``run`` as a side whose value ``s`` is its wall time."""
    def side() -> dict[str, float]:
        start = time.perf_counter()
        run()
        return {"s": time.perf_counter() - start}

    return side


def warm_up(sides: dict[str, Callable[[], Any]]) -> None:
    """Run each side once, uncounted (first-call costs of torch, BLAS and tokenizers)."""
    for run in sides.values():
        run()


def child_env() -> dict[str, str]:
    """Environment of measured commands: the runner's (offline, headless), this interpreter first on PATH."""
    env = dict(os.environ)
    env.update({
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DVC_NO_ANALYTICS": "1", "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(paths.CACHE_DIR / "matplotlib"), "IPYTHONDIR": str(paths.CACHE_DIR / "ipython"),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(paths.REPO_ROOT), env.get("PYTHONPATH")])),
    })
    return env


def run_measured(command: Sequence[str], cwd: Path, log_file: Path,
                 env: dict[str, str] | None = None) -> dict[str, float]:
    """Run ``command`` (``env`` added to :func:`child_env`): wall s, CPU s and peak RSS MiB, counting every
    descendant it waited for (wait4)."""
    # a notebook's kernel is a grandchild that jupyter_client reaps, so its rusage is in the child's;
    # processes nobody waits for (orphaned workers) are not counted
    with open(log_file, "wb") as output:
        start = time.perf_counter()
        process = subprocess.Popen(list(command), cwd=cwd, env=child_env() | (env or {}), stdout=output,
                                   stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        tail = log_file.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"`{' '.join(command)}` exited with {process.returncode}:\n{tail}")
    rss_unit = 2**20 if sys.platform == "darwin" else 2**10  # ru_maxrss: bytes on macOS, KiB on Linux
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / rss_unit}


def read_notebook(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def cell_times(notebook: dict[str, Any]) -> list[dict[str, Any]]:
    """The executed code cells as {cell, seconds, source}, slowest first (papermill's cell durations)."""
    rows = []
    for index, cell in enumerate(notebook.get("cells", [])):
        duration = cell.get("metadata", {}).get("papermill", {}).get("duration")
        if cell.get("cell_type") == "code" and duration is not None:
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else source
            first = next((line.strip() for line in source.splitlines() if line.strip()), "")
            rows.append({"cell": index, "seconds": float(duration), "source": first[:80]})
    return sorted(rows, key=lambda row: -row["seconds"])


def median_cells(runs: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per cell, the median of its seconds over runs (each as :func:`cell_times` gives), slowest first."""
    seconds: dict[int, list[float]] = {}
    sources: dict[int, str] = {}
    for run in runs:
        for row in run:
            seconds.setdefault(row["cell"], []).append(row["seconds"])
            sources[row["cell"]] = row["source"]
    rows = [{"cell": c, "seconds": statistics.median(s), "source": sources[c]} for c, s in seconds.items()]
    return sorted(rows, key=lambda row: -row["seconds"])


def top_cells_note(cells: Sequence[dict[str, Any]], n: int = TOP_CELLS) -> str:
    """"slowest cells #12 4.10 s, #7 2.00 s" for the first ``n`` of ``cells``."""
    if not cells:
        return "no cell times"
    return "slowest cells " + ", ".join(f"#{row['cell']} {fmt(row['seconds'])} s" for row in cells[:n])
