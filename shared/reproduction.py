"""Did this run reproduce the committed one? ``python -m shared.reproduction [--against REV]``.

Each paper's ``claims.json`` is committed to git (the baseline a fresh clone starts from). This
compares the working tree's ``results/<id>/claims.json`` with the one at ``REV`` (default ``HEAD``):
per paper, whether every verdict is the same, whether every value is identical (the same bits), and
the largest relative change of any claim value. Timing claims (wall-clock speed-ups, which depend on
the CPU and its load) are listed apart and never count as a difference. ``make repro`` ends with it;
the report is printed and written to ``results/reproduction.md`` and ``results/reproduction.json``.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shared import paths
from shared.results import write_json


@dataclass
class PaperComparison:
    paper: str
    status: str                      # identical | values differ | verdicts differ | no baseline | not run
    changed_verdicts: list[str] = field(default_factory=list)
    largest_change: float = 0.0      # relative, over the non-timing claims
    largest_claim: str | None = None
    timings: dict[str, tuple[Any, Any]] = field(default_factory=dict)   # claim -> (committed, this run)

    @property
    def same_verdicts(self) -> bool:
        return self.status in ("identical", "values differ")


def committed_claims(paper_id: str, rev: str) -> dict[str, Any] | None:
    """``results/<id>/claims.json`` as committed at ``rev``; None where git has none."""
    path = (paths.RESULTS_DIR / paper_id / "claims.json").relative_to(paths.REPO_ROOT).as_posix()
    shown = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=paths.REPO_ROOT, capture_output=True, text=True)
    if shown.returncode != 0:
        return None
    try:
        return json.loads(shown.stdout)
    except ValueError:
        return None


def relative_change(old: Any, new: Any) -> float:
    """|new - old| / |old| (|new - old| when old is 0); inf when one side is missing or not finite."""
    if old is None and new is None:
        return 0.0
    if old is None or new is None:
        return math.inf
    old, new = float(old), float(new)
    if math.isnan(old) and math.isnan(new):
        return 0.0
    if not (math.isfinite(old) and math.isfinite(new)):
        return 0.0 if old == new else math.inf
    return abs(new - old) / abs(old) if old else abs(new - old)


def without_timings(claims: dict[str, Any]) -> dict[str, Any]:
    """The file's content with each timing claim's value, verdict and note blanked (they are not values)."""
    blanked = dict(claims)
    blanked["claims"] = [{**c, "measured": None, "verdict": None, "note": None} if c.get("kind") == "timing" else c
                         for c in claims.get("claims", [])]
    return blanked


def compare(paper_id: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> PaperComparison:
    """One paper's run against its committed baseline."""
    if new is None:
        return PaperComparison(paper_id, "not run")
    if old is None:
        return PaperComparison(paper_id, "no baseline")
    before = {c["name"]: c for c in old.get("claims", [])}
    after = {c["name"]: c for c in new.get("claims", [])}
    result = PaperComparison(paper_id, "identical")
    for name in [*after, *(n for n in before if n not in after)]:
        b, a = before.get(name), after.get(name)
        if b is None or a is None:
            result.changed_verdicts.append(name)
            continue
        if "timing" in (a.get("kind"), b.get("kind")):
            result.timings[name] = (b.get("measured"), a.get("measured"))
            continue
        if a.get("verdict") != b.get("verdict"):
            result.changed_verdicts.append(name)
        change = relative_change(b.get("measured"), a.get("measured"))
        if change > result.largest_change:
            result.largest_change, result.largest_claim = change, name
    if result.changed_verdicts or old.get("reproduces") != new.get("reproduces"):
        result.status = "verdicts differ"
    elif without_timings(old) != without_timings(new):
        result.status = "values differ"
    return result


def compare_all(rev: str = "HEAD") -> list[PaperComparison]:
    from shared.run import load_params

    out = []
    for paper_id in load_params()["papers"]:
        current = paths.RESULTS_DIR / paper_id / "claims.json"
        try:
            new = json.loads(current.read_text()) if current.exists() else None
        except ValueError:
            new = None
        out.append(compare(paper_id, committed_claims(paper_id, rev), new))
    return out


def headline(results: list[PaperComparison]) -> str:
    """One line: how many papers kept their verdicts and their values."""
    ran = [r for r in results if r.status not in ("not run", "no baseline")]
    if not ran:
        return f"no paper compared: {len(results)} without a run or a committed baseline"
    same = sum(r.same_verdicts for r in ran)
    identical = sum(r.status == "identical" for r in ran)
    if ran and identical == len(ran):
        words = "same verdicts, identical values"
    elif same == len(ran):
        words = f"same verdicts; identical values in {identical}"
    else:
        words = f"same verdicts in {same}; identical values in {identical}"
    skipped = len(results) - len(ran)
    return f"{len(ran)}/{len(results)} papers compared: {words}" + (f" ({skipped} without a run or baseline)" if skipped else "")


def markdown(results: list[PaperComparison], rev: str) -> str:
    lines = [f"# Reproduction against `{rev}`", "", headline(results), "",
             "| paper | result | largest relative change | changed verdicts |", "|---|---|---|---|"]
    for r in results:
        change = f"{r.largest_change:.3g} (`{r.largest_claim}`)" if r.largest_claim else "0"
        lines.append(f"| `{r.paper}` | {r.status} | {change} | {', '.join(r.changed_verdicts) or '-'} |")
    timings = [(r.paper, name, pair) for r in results for name, pair in r.timings.items()]
    if timings:
        lines += ["", "Timings (wall-clock ratios of this machine; never compared as values):", "",
                  "| paper | claim | committed | this run |", "|---|---|---|---|"]
        lines += [f"| `{p}` | `{name}` | {old} | {new} |" for p, name, (old, new) in timings]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.reproduction", description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="HEAD", metavar="REV", help="the git revision to compare with (default HEAD)")
    parser.add_argument("--strict", action="store_true", help="exit 1 unless every paper has the same verdicts")
    args = parser.parse_args(argv)
    results = compare_all(args.against)
    text = markdown(results, args.against)
    paths.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (paths.RESULTS_DIR / "reproduction.md").write_text(text)
    write_json(paths.RESULTS_DIR / "reproduction.json",
               {"against": args.against, "headline": headline(results), "papers": [asdict(r) for r in results]})
    print(text, end="")
    return 1 if args.strict and not all(r.same_verdicts for r in results if r.status not in ("not run", "no baseline")) else 0


if __name__ == "__main__":
    sys.exit(main())
