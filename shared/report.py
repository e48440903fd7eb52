"""The reproduction scorecard: ``python -m shared.report [--readme | --check]``.

Reads the paper list from ``params.yaml`` and each ``results/<id>/`` the runner wrote, then
writes ``results/index.html`` (a static, offline page), or rewrites / checks the results table
between the ``<!-- results:start -->`` and ``<!-- results:end -->`` markers of ``README.md``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import jinja2
import nbformat
import yaml
from markupsafe import Markup

from shared.claims import counts as verdict_counts, fmt, judge
from shared.paths import REPO_ROOT

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
DEVIATIONS_HEADING = "## Deviations from the paper"
README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"
OPS = {"<": "<", "<=": "≤", ">": ">", ">=": "≥", "==": "="}


# ---------------------------------------------------------------- data loading

@dataclass(frozen=True)
class Layout:
    """Where the report reads and writes, relative to one repository root."""

    root: Path

    @property
    def params(self) -> Path:
        return self.root / "params.yaml"

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def notebooks(self) -> Path:
        return self.root / "notebooks"

    @property
    def page(self) -> Path:
        return self.results / "index.html"

    @property
    def readme(self) -> Path:
        return self.root / "README.md"


@dataclass(frozen=True)
class Claim:
    name: str
    statement: str
    measured: Any
    op: str
    threshold: Any
    verdict: str
    note: str = ""
    kind: str = "check"


@dataclass
class PaperResult:
    """One paper as the scorecard shows it: citation, verdicts, figures, provenance."""

    id: str
    citation: Any | None                 # a shared.catalog.Paper, or None if not catalogued
    source_notebook: Path
    folder: Path
    ran: bool = False
    failed_notebook: Path | None = None  # the runner's record of a failed last attempt
    claims: list[Claim] = field(default_factory=list)
    passed: int = 0
    total: int = 0
    failed: int = 0
    na: int = 0
    info: int = 0
    expected_na: int = 0                 # N/A claims the preset declares for its scale
    headline: list[str] = field(default_factory=list)    # the paper's headline claim ids (its preset)
    seeds: dict[str, Any] = field(default_factory=dict)   # results/sweeps/<id>/seeds.json, if a sweep ran
    mixed: list[str] = field(default_factory=list)        # files older than the run's config.json
    run: dict[str, Any] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    tables: list[Path] = field(default_factory=list)  # CSV curves, in the folder or tables/
    deviations: str | None = None
    unreadable: str = ""                 # a result file the page cannot read, named: the paper is flagged

    @property
    def title(self) -> str:
        return self.citation.title if self.citation else self.id

    @property
    def scale(self) -> str | None:
        return self.run.get("scale")

    @property
    def reproduces(self) -> bool:
        """The one rule, ``shared.claims.judge`` (every applicable headline claim asserted and PASS, no
        FAIL, every sanity check PASS, N/A within the declared budget), on a folder holding one run."""
        return self.ran and not self.mixed and not self.unreadable and self.judgement.reproduces

    @property
    def judgement(self):
        return judge(self.claims, self.scale, self.expected_na, self.headline)

    @property
    def shown(self) -> int:
        """Claims the seed rule shows as INFO (an INFO with a threshold, not a timing): they failed some seed."""
        return sum(1 for c in self.claims if c.verdict == "INFO" and c.op and c.kind == "check")

    @property
    def ablations(self) -> dict[str, str]:
        """Headline claim -> what its ablation test removes (the catalog's ``ablations:``)."""
        return dict(self.citation.ablations) if self.citation else {}

    @property
    def headline_claims(self) -> list[Claim]:
        """The headline claims first, in their declared order, then the other claims; sanity checks apart."""
        by_name = {c.name: c for c in self.claims}
        return [by_name[h] for h in self.headline if h in by_name]

    @property
    def other_claims(self) -> list[Claim]:
        return [c for c in self.claims if c.kind != "sanity" and c.name not in self.headline]

    @property
    def sanity_checks(self) -> list[Claim]:
        return [c for c in self.claims if c.kind == "sanity"]

    @property
    def sanity_passed(self) -> int:
        return sum(c.verdict == "PASS" for c in self.sanity_checks)

    @property
    def sanity_applied(self) -> int:
        """Sanity checks that applied at this scale (N/A ones, e.g. a smoke-only check at cpu, aside)."""
        return sum(c.verdict != "N/A" for c in self.sanity_checks)

    @property
    def status(self) -> str:
        """not-run | broken (a sanity check fails) | unchecked (no PASS/FAIL claim) | pass (reproduces: the
        rule above) | incomplete (no FAIL, but a smoke run, more N/A than declared or a headline claim not
        asserted) | partial | fail."""
        if not self.ran:
            return "not-run"
        if self.unreadable:
            return "unreadable"
        if self.sanity_passed < self.sanity_applied:
            return "broken"
        if not self.total:
            return "unchecked"
        if self.reproduces:
            return "pass"
        if not self.failed:
            return "incomplete"
        return "partial" if self.passed else "fail"

    @property
    def why_not(self) -> str:
        """Why a run whose checked claims all pass is not called "reproduces"."""
        if self.unreadable:
            return self.unreadable
        if self.status not in ("incomplete", "broken"):
            return ""
        if self.mixed:
            return f"its folder mixes two runs ({', '.join(self.mixed)}: not the files its run wrote)"
        return self.judgement.why_not


def paper_ids(params_file: Path) -> list[str]:
    """The papers listed under ``papers:`` in params.yaml, in file order."""
    params = yaml.safe_load(params_file.read_text()) or {}
    return list(params.get("papers") or {})


class UnreadableResult(ValueError):
    """A result file the scorecard cannot read; the page flags its paper and shows the others."""


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object file ({} if missing); UnreadableResult naming the file if it is anything else."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UnreadableResult(f"{path}: not readable as JSON ({error})") from None
    if not isinstance(data, dict):
        raise UnreadableResult(f"{path}: a JSON {type(data).__name__}, not an object")
    return data


def parse_claims(path: Path, claims: dict[str, Any]) -> list[Claim]:
    """claims.json's claims; UnreadableResult naming the file for an entry that is not a claim."""
    try:
        return [Claim(**c) for c in claims.get("claims", [])]
    except TypeError as error:
        raise UnreadableResult(f"{path}: an entry of 'claims' is not a claim ({error})") from None


def deviations_text(executed: Path) -> str | None:
    """The body of the notebook's ``## Deviations from the paper`` markdown cell."""
    if not executed.exists():
        return None
    notebook = nbformat.read(executed, as_version=4)
    for cell in notebook.cells:
        text = cell.source.lstrip()
        if cell.cell_type == "markdown" and text.startswith(DEVIATIONS_HEADING):
            return text[len(DEVIATIONS_HEADING):].strip()
    return None


def load_paper(paper_id: str, layout: Layout, catalog: Mapping[str, Any]) -> PaperResult:
    """Everything ``results/<id>/`` holds about one paper; ``ran`` is False without claims.json."""
    folder = layout.results / paper_id
    failed = layout.results / "failed" / f"{paper_id}.ipynb"
    paper = PaperResult(
        id=paper_id, citation=catalog.get(paper_id), folder=folder,
        source_notebook=layout.notebooks / f"{paper_id}.ipynb",
        failed_notebook=failed if failed.exists() else None,
    )
    claims = read_json(folder / "claims.json")
    if not claims:
        return paper
    paper.ran = True
    paper.claims = parse_claims(folder / "claims.json", claims)
    paper.headline = list(claims.get("headline") or [])
    counted = verdict_counts(c.verdict for c in paper.claims if c.kind != "sanity")
    paper.passed, paper.total = claims.get("passed", counted["passed"]), claims.get("total", counted["total"])
    paper.failed = claims.get("failed", counted["failed"])
    paper.na, paper.info = claims.get("na", counted["na"]), claims.get("info", counted["info"])
    paper.expected_na = claims.get("expected_na", 0)
    paper.run = read_json(folder / "run.json") or {"scale": claims.get("scale")}
    paper.run.setdefault("scale", claims.get("scale"))
    paper.figures = sorted((folder / "figures").glob("*.png"))
    paper.tables = sorted(folder.rglob("*.csv"))
    paper.deviations = deviations_text(folder / "notebook.ipynb")
    paper.seeds = read_json(layout.results / "sweeps" / paper_id / "seeds.json") or {}
    paper.mixed = files_from_another_run(folder)
    return paper


def files_from_another_run(folder: Path) -> list[str]:
    """Files of a results folder that are not the ones its run wrote: run.json's config is not config.json,
    a file's md5 is not the one run.json records (with the run id, seed and parameters they identify the
    run), claims.json's scale differs, or the executed notebook got other parameters.

    The runner and interactive runs replace a folder whole, so a disagreement means two runs were
    mixed (e.g. files copied in by hand); the page flags them and does not call the paper reproduced.
    Content, not mtimes: DVC's checkout and commit rewrite file times.
    """
    config, run = read_json(folder / "config.json"), read_json(folder / "run.json")
    claims = read_json(folder / "claims.json")
    mixed = []
    if config and run and run.get("config") not in (None, config):
        mixed.append("run.json")
    recorded = run.get("md5") if isinstance(run.get("md5"), dict) else {}  # the runner's record of its files
    for name, md5 in sorted(recorded.items()):
        path = folder / name
        if path.is_file() and hashlib.md5(path.read_bytes()).hexdigest() != md5 and name not in mixed:
            mixed.append(name)
    scale = config.get("scale") or run.get("scale")
    if claims and scale and claims.get("scale") not in (None, scale) and "claims.json" not in mixed:
        mixed.append("claims.json")
    injected = notebook_parameters(folder / "notebook.ipynb")
    if run.get("parameters") is not None and injected not in (None, run["parameters"]):
        mixed.append("notebook.ipynb")
    return mixed


def notebook_parameters(executed: Path) -> dict[str, Any] | None:
    """The parameters papermill injected into an executed notebook (None if it is not one)."""
    try:
        parameters = json.loads(executed.read_text())["metadata"]["papermill"]["parameters"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return parameters if isinstance(parameters, dict) else None


def holds_for(paper: PaperResult, claim: str) -> str:
    """``k/n`` seeds for which a checked claim passed in the paper's sweep, or "" without one."""
    row = (paper.seeds.get("claims") or {}).get(claim)
    if not row or row.get("kind") not in ("check", "shown") or not row.get("applied"):
        return ""
    return f"{row['passed']}/{row['applied']}"


def load_papers(layout: Layout, catalog: Mapping[str, Any]) -> list[PaperResult]:
    """Every paper of params.yaml; one whose result files cannot be read is flagged (and named on stderr)."""
    papers = []
    for pid in paper_ids(layout.params):
        try:
            papers.append(load_paper(pid, layout, catalog))
        except (UnreadableResult, OSError, ValueError, TypeError, AttributeError, KeyError) as error:
            problem = str(error) if isinstance(error, UnreadableResult) else \
                f"{layout.results / pid}: {type(error).__name__}: {error}"
            print(f"warning: {problem}; {pid} is flagged on the page", file=sys.stderr)
            papers.append(PaperResult(id=pid, citation=catalog.get(pid), folder=layout.results / pid,
                                      source_notebook=layout.notebooks / f"{pid}.ipynb", ran=True,
                                      unreadable=problem))
    return papers


# ---------------------------------------------------------------- formatting

def duration(seconds: float | None) -> str:
    """Wall time for people: ``8.4 s``, ``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    if seconds is None:
        return "–"
    if seconds < 10:
        return f"{seconds:.1f} s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def value(x: Any) -> str:
    """A measured value or threshold as the notebook prints it (3 significant digits)."""
    if x is None:
        return "–"
    if isinstance(x, (int, float)):
        return fmt(x)
    return str(x)


def condition(claim: Claim) -> str:
    """``≤ 0.01`` for a checked claim, empty for an INFO one."""
    if not claim.op:
        return ""
    return f"{OPS.get(claim.op, claim.op)} {value(claim.threshold)}"


def render_markdown(text: str) -> Markup:
    """Markdown to HTML with markdown-it-py (raw HTML off); a ``<pre>`` where it is missing."""
    try:
        from markdown_it import MarkdownIt
    except ImportError:
        return Markup("<pre>{}</pre>").format(text)
    return Markup(MarkdownIt("commonmark", {"html": False}).enable("table").render(text))


# ---------------------------------------------------------------- rendering

def environment(page_dir: Path) -> jinja2.Environment:
    """Jinja environment whose ``href`` filter makes paths relative to the page."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        href=lambda path: Path(os.path.relpath(path, page_dir)).as_posix(),
        duration=duration, value=value, condition=condition, markdown=render_markdown,
        pretty=lambda data: json.dumps(data, indent=2, sort_keys=True),
    )
    env.globals["holds_for"] = holds_for
    env.globals["status_label"] = STATUS_LABELS
    return env


def summary(papers: list[PaperResult]) -> dict[str, Any]:
    """Suite-wide counts for the page header; ``latest`` comes from run.json, never the clock."""
    ran = [p for p in papers if p.ran]
    return {
        "papers": len(papers), "ran": len(ran),
        "reproduced": sum(p.status == "pass" for p in ran),
        "passed": sum(p.passed for p in ran), "total": sum(p.total for p in ran),
        "sanity_passed": sum(p.sanity_passed for p in ran), "sanity_total": sum(p.sanity_applied for p in ran),
        "failed": sum(p.failed for p in ran), "na": sum(p.na for p in ran), "info": sum(p.info for p in ran),
        "wall_time_s": sum(p.run.get("wall_time_s") or 0 for p in ran),
        "latest": max((p.run.get("started") or "" for p in ran), default=""),
    }


def render_html(papers: list[PaperResult], page: Path) -> str:
    """The scorecard page; figures are referenced by paths relative to ``page``."""
    template = environment(page.parent).get_template("report.html.j2")
    return template.render(papers=papers, summary=summary(papers))


def claims_digest(paper: PaperResult) -> str:
    """md5 of the paper's claims.json: the same hash dvc.lock records for it."""
    return hashlib.md5((paper.folder / "claims.json").read_bytes()).hexdigest()


def lock_digests(lock_file: Path) -> dict[str, str]:
    """claims.json md5 per paper, as dvc.lock pins it."""
    lock = yaml.safe_load(lock_file.read_text()) if lock_file.exists() else {}
    digests = {}
    for stage_id, stage in (lock or {}).get("stages", {}).items():
        for out in stage.get("outs", []):
            if out["path"] == f"results/{stage_id}/claims.json":
                digests[stage_id] = out["md5"]
    return digests


def readme_digests(readme: str) -> dict[str, str]:
    """The claims.json hashes recorded in README's results block."""
    found = re.search(r"<!-- claims\.json md5: (.*?) -->", readme)
    return dict(item.split("=") for item in found.group(1).split()) if found else {}


STATUS_LABELS = {"pass": "reproduces", "incomplete": "passes, not a reproduction", "broken": "a sanity check fails",
                 "partial": "some claims fail", "fail": "claims fail", "not-run": "not run",
                 "unchecked": "no checked claims", "unreadable": "result files unreadable"}


def readme_table(papers: list[PaperResult]) -> str:
    """The README's markdown results table (verdict, PASS / FAIL / N/A / INFO counts, scale), with the
    claims.json hashes it was made from. Only ``PaperResult.reproduces`` says "reproduces"."""
    rows = ["| paper | verdict | headline claims | claims PASS | FAIL | N/A | INFO | sanity checks | scale |",
            "|---|---|---|---|---|---|---|---|---|"]
    for p in papers:
        scale = p.scale or "–"
        name = f"[{p.title}]({p.citation.url}) (`{p.id}`)" if p.citation else f"`{p.id}`"
        if p.ran:
            headline = p.headline_claims
            held = f"{sum(c.verdict == 'PASS' for c in headline)}/{len(headline)}" if headline else "–"
            rows.append(f"| {name} | {STATUS_LABELS[p.status]} | {held} | {p.passed}/{p.total} | {p.failed} | "
                        f"{p.na} (declared {p.expected_na}) | {p.info} | {p.sanity_passed}/{p.sanity_applied} pass | "
                        f"{scale} |")
        else:
            rows.append(f"| {name} | not run | – | – | – | – | – | – | {scale} |")
    digests = " ".join(f"{p.id}={claims_digest(p)}" for p in papers if p.ran)
    rows.append(f"<!-- claims.json md5: {digests} -->")
    return "\n".join(rows)


def replace_block(readme: str, table: str) -> str:
    """README text with the block between the results markers replaced by ``table``."""
    pattern = re.compile(re.escape(README_START) + r".*?" + re.escape(README_END), re.DOTALL)
    if not pattern.search(readme):
        raise ValueError(f"README.md has no '{README_START}' ... '{README_END}' block")
    block = f"{README_START}\n{table}\n{README_END}"
    return pattern.sub(lambda _: block, readme, count=1)


# ---------------------------------------------------------------- CLI

def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")


def sync_readme(readme: Path, papers: list[PaperResult], check: bool) -> int:
    """Rewrite README's results block, or (``check``) return 1 if it differs from the results."""
    current = readme.read_text(encoding="utf-8")
    updated = replace_block(current, readme_table(papers))
    if check:
        if updated == current:
            return 0
        print(f"{readme.name}'s results table is stale: run `python -m shared.report --readme`",
              file=sys.stderr)
        return 1
    write_text(readme, updated)
    print(f"updated the results table in {readme}")
    return 0


def main(argv: Iterable[str] | None = None, catalog: Mapping[str, Any] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.report",
                                     description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--readme", action="store_true",
                      help="rewrite the results table in README.md instead of the page")
    mode.add_argument("--check", action="store_true",
                      help="exit 1 if README.md's results table is stale")
    parser.add_argument("--root", type=Path, default=REPO_ROOT,
                        help="repository root to read and write (default: this checkout)")
    args = parser.parse_args(argv)
    if catalog is None:
        from shared.catalog import PAPERS as catalog
    layout = Layout(args.root)
    papers = load_papers(layout, catalog)
    if not (args.readme or args.check):
        write_text(layout.page, render_html(papers, layout.page))
        print(f"wrote {layout.page}")
        return 0
    try:
        return sync_readme(layout.readme, papers, check=args.check)
    except (OSError, ValueError) as error:
        parser.exit(2, f"error: {error}\n")


if __name__ == "__main__":
    sys.exit(main())
