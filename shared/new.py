"""Start a new paper: ``python -m shared.new <id> "<title>" [--authors ...] [--venue ...] [--arxiv ...]``.

Writes the notebook skeleton in the suite's short-paper form, its preset (three scales), its
``params.yaml`` block, its catalog entry, ``shared/papers/<id>/`` (experiment and verdict
modules), ``tests/papers/<id>/`` (a test and a sabotage test of its claim), regenerates
``dvc.yaml`` and makes the golden smoke copy. The skeleton runs at ``smoke`` as it stands.
"""
from __future__ import annotations

import argparse
import keyword
import re
import sys
from pathlib import Path
from string import Template

import nbformat
import yaml

from shared import catalog, pipeline
from shared.paths import NOTEBOOKS_DIR, PARAMS_FILE, PRESETS_DIR, REPO_ROOT, notebook_path

TEMPLATES = Path(__file__).resolve().parent / "templates" / "paper"
ID_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
# names the suite uses beside the papers' own: a paper with one of them would clash with it
RESERVED = {"report": "the scorecard's DVC stage", "failed": "results/failed/, the failed runs' notebooks",
            "sweeps": "results/sweeps/, the seed sweeps", "bench": "results/bench/, the benchmarks"}


class NewPaperError(ValueError):
    """The id or title cannot start a new paper."""


def check_id(paper_id: str) -> str:
    """Refuse an id that is not a lower-case identifier or that names an existing paper."""
    if not ID_PATTERN.fullmatch(paper_id) or keyword.iskeyword(paper_id):
        raise NewPaperError(f"paper id {paper_id!r}: use a lower-case Python identifier "
                            "(letters, digits, underscores; starting with a letter), e.g. nc_losses")
    if paper_id in RESERVED:
        raise NewPaperError(f"paper id {paper_id!r} is reserved ({RESERVED[paper_id]}): choose another id")
    taken = {
        "params.yaml": paper_id in (yaml.safe_load(PARAMS_FILE.read_text()).get("papers") or {}),
        "shared/catalog.yaml": paper_id in catalog.load(),
        f"notebooks/{paper_id}.ipynb": notebook_path(paper_id).exists(),
        f"shared/presets/{paper_id}.yaml": (PRESETS_DIR / f"{paper_id}.yaml").exists(),
        f"shared/papers/{paper_id}/": (REPO_ROOT / "shared" / "papers" / paper_id).exists(),
        f"tests/papers/{paper_id}/": (REPO_ROOT / "tests" / "papers" / paper_id).exists(),
    }
    found = [where for where, exists in taken.items() if exists]
    if found:
        raise NewPaperError(f"paper id {paper_id!r} exists already ({', '.join(found)}): choose another id")
    return paper_id


def render(name: str, paper_id: str) -> str:
    return Template((TEMPLATES / name).read_text()).substitute(id=paper_id)


def skeleton_notebook(paper_id: str, title: str, authors: str, venue: str, arxiv: str) -> nbformat.NotebookNode:
    """The short-paper form: claims, parameters, setup, experiment, figure, Verdict, Deviations."""
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    cells = [
        md(f"# {title}\n\n{authors}. *{title}*. {venue}, arXiv:{arxiv}.\n\n"
           "**Claim under test.** *(State the paper's claim in one paragraph; the skeleton checks that "
           "least squares recovers the slope of a noisy line.)*"),
        code('scale: str = "cpu"      # smoke | cpu | paper\n'
             "seed: int = 0           # random seed\n"
             'device: str = "auto"    # auto | cpu | cuda | mps\n'
             "n_points: int = None    # points of the noisy line (None: from the scale preset)\n"
             "noise: float = None     # noise standard deviation", metadata={"tags": ["parameters"]}),
        code("import matplotlib.pyplot as plt\n\n"
             "from shared import claims, config, plots, results\n"
             f"from shared.papers.{paper_id}.experiments import fitted_slope, noisy_line\n"
             f"from shared.papers.{paper_id}.verdict import record_claims\n\n"
             f'ID = "{paper_id}"\n'
             "cfg = config.setup(ID, globals())"),
        md("## 1. Experiment\n*(Each experiment cell calls one tested function of "
           f"`shared/papers/{paper_id}/` or `shared/toolkit/`.)*"),
        code("SLOPE = 2.0\n"
             "points = noisy_line(cfg.n_points, SLOPE, cfg.noise, cfg.seed)\n"
             "fitted = fitted_slope(points)\n"
             'results.write_table(ID, "points", points)\n'
             'print(f"fitted slope {fitted:.3f} (true {SLOPE})")'),
        md("## 2. Figure"),
        code("fig, ax = plt.subplots(figsize=(4.5, 3.2))\n"
             'ax.scatter(points.x, points.y, s=8, alpha=0.6, label="data")\n'
             'ax.plot([0, 1], [points.y.mean() - fitted * points.x.mean(), points.y.mean() + fitted * (1 - points.x.mean())], color="C1", label=f"fit, slope {fitted:.2f}")\n'
             'ax.set(xlabel="x", ylabel="y", title="least-squares fit")\n'
             "ax.legend()\n"
             'plots.save(fig, ID, "fit")'),
        md("## 3. Verdict\nEach threshold sits between the method's worst seed and its ablation or null "
           "(both written in docs/papers/); a claim that does not apply at this scale is N/A, never a "
           "looser threshold."),
        code("# NBVAL_CHECK_OUTPUT\n"
             "book = record_claims(claims.ClaimBook(ID, scale=cfg.scale), SLOPE, fitted)\n"
             "book.report()"),
        code('results.write_metrics(ID, {"fitted_slope": fitted})'),
        md("## Deviations from the paper\n- *(What differs at each scale, and what did not reproduce.)*"),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    for cell in nb.cells:
        cell.pop("id", None)
    nb.nbformat_minor = 4
    return nb


def append_params_block(paper_id: str, knobs: list[str]) -> None:
    """Add ``papers.<id>`` (every knob null) to params.yaml: appended as text to keep its comments,
    or, when the file does not end with its ``papers:`` block, written back whole."""
    text = PARAMS_FILE.read_text()
    appended = text.rstrip("\n") + "\n" + f"  {paper_id}:\n" + "".join(f"    {k}: null\n" for k in knobs)
    try:
        ok = paper_id in (yaml.safe_load(appended).get("papers") or {})
    except yaml.YAMLError:
        ok = False
    if not ok:
        params = yaml.safe_load(text) or {}
        params["papers"] = {**(params.get("papers") or {}), paper_id: dict.fromkeys(knobs)}
        appended = yaml.safe_dump(params, sort_keys=False)
    PARAMS_FILE.write_text(appended)


def append_catalog_entry(paper_id: str, title: str, authors: str, venue: str, arxiv: str) -> None:
    entry = {paper_id: {"title": title, "authors": authors, "venue": venue, "arxiv": arxiv,
                        "curves": [{"table": "points", "x": "x", "y": ["y"]}]}}
    with catalog.CATALOG_FILE.open("a") as f:
        f.write(yaml.safe_dump(entry, sort_keys=False, default_flow_style=None, width=100))


def create(paper_id: str, title: str, authors: str = "Authors", venue: str = "Venue",
           arxiv: str = "0000.00000", golden: bool = True) -> list[Path]:
    """Write every file of a new paper; return them."""
    check_id(paper_id)
    if not title.strip():
        raise NewPaperError("title: give the paper's title, e.g. \"Are All Losses Created Equal\"")
    package = REPO_ROOT / "shared" / "papers" / paper_id
    tests = REPO_ROOT / "tests" / "papers" / paper_id
    package.mkdir(parents=True)
    tests.mkdir(parents=True)
    written = {
        package / "__init__.py": f'"""Paper ``{paper_id}``: {title}."""\n',
        package / "experiments.py": render("experiments.py.tmpl", paper_id),
        package / "verdict.py": render("verdict.py.tmpl", paper_id),
        tests / f"test_{paper_id}_experiments.py": render("test_experiments.py.tmpl", paper_id),
        PRESETS_DIR / f"{paper_id}.yaml": render("preset.yaml.tmpl", paper_id),
    }
    for path, text in written.items():
        path.write_text(text)
    NOTEBOOKS_DIR.mkdir(exist_ok=True)
    nbformat.write(skeleton_notebook(paper_id, title, authors, venue, arxiv), notebook_path(paper_id))
    append_params_block(paper_id, list(yaml.safe_load(written[PRESETS_DIR / f"{paper_id}.yaml"])["cpu"]))
    append_catalog_entry(paper_id, title, authors, venue, arxiv)
    pipeline.main([])
    files = [*written, notebook_path(paper_id), PARAMS_FILE, catalog.CATALOG_FILE, pipeline.DVC_YAML]
    if golden:
        from shared.golden import refresh

        files.append(refresh(paper_id))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("id", help="the paper id: a lower-case identifier, e.g. nc_losses")
    parser.add_argument("title", help="the paper's title")
    parser.add_argument("--authors", default="Authors")
    parser.add_argument("--venue", default="Venue")
    parser.add_argument("--arxiv", default="0000.00000")
    parser.add_argument("--no-golden", action="store_true", help="do not run the skeleton to make its golden copy")
    args = parser.parse_args(argv)
    try:
        files = create(args.id, args.title, args.authors, args.venue, args.arxiv, golden=not args.no_golden)
    except NewPaperError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in files:
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    print(f"next: edit notebooks/{args.id}.ipynb and shared/papers/{args.id}/, then "
          f"`python -m shared.run {args.id} --scale smoke`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
