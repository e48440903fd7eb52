"""Claim checks: the paper's statement, the measured value, a threshold, and a verdict.

Two kinds of checks, kept apart everywhere (claims.json, the verdict table, the scorecard):
- a **claim** (``book.check``) is the paper's own statement, measured by this run: the evidence;
- a **sanity check** (``book.sanity``: an identity, an implementation matching a library, finite
  values, a property at initialisation, arithmetic on published constants) must pass, but is never
  evidence for the paper: a run with a failing sanity check is broken, one with passing ones proves
  nothing about the paper.
Besides them, ``book.info`` shows a value and ``book.timing`` a wall-clock measurement beside its
threshold; neither is asserted.

Verdicts: PASS / FAIL, N/A (a claim that does not apply at this scale or configuration; its
``note`` says why) and INFO (shown, not asserted). A missing, NaN or infinite measurement never PASSes.

Each paper names its **headline claims** (the abstract's central statements) and its N/A budget in
its preset (``headline:``, ``expected_na:``). "Reproduces" is decided here only, by :func:`judge`:
a ``cpu`` or ``paper`` run in which every headline claim that applies is asserted and PASSes, no
claim FAILs, every sanity check PASSes, and no more claims are N/A than the preset declares. A
headline claim shown as INFO by the seed rule is "not reproduced at this scale".

The seed rule: a checked claim listed in the preset's ``shown_not_asserted.<scale>`` (it did not hold
for every seed of 0-4 there) is recorded as INFO with its threshold and the reason, never as PASS.
"""
from __future__ import annotations

import math
import operator
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping, Sequence

from shared.errors import ParameterError
from shared.paths import output_dir
from shared.results import write_json

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}
VERDICTS = ("PASS", "FAIL", "N/A", "INFO")
KINDS = ("check", "sanity", "info", "timing")
REPRODUCING_SCALES = ("cpu", "paper")


@dataclass(frozen=True)
class Claim:
    name: str
    statement: str
    measured: float | None
    op: str
    threshold: float | None
    verdict: str
    note: str = ""
    kind: str = "check"   # check (a claim) | sanity | info | timing (a wall-clock measurement, shown)


TIMING_MARK = "(timed)"   # beside a timing value in the verdict table; the regression tests mask it


def as_measurement(value) -> float | None:
    """``value`` as a float; None stays None (a missing measurement)."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        raise ParameterError("measured", f"a claim's measured value must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError) as error:
        raise ParameterError("measured", f"a claim's measured value must be a number, got {value!r}") from error


def is_finite(value) -> bool:
    """False for None, NaN and +-inf."""
    return value is not None and math.isfinite(float(value))


def verdict(measured: float | None, op: str, threshold: float) -> str:
    """PASS if ``measured op threshold`` holds; a missing, NaN or infinite measurement FAILs."""
    if op not in OPS:
        raise ParameterError("op", f"unknown comparison {op!r}", OPS)
    measured = as_measurement(measured)
    if not is_finite(measured) or not is_finite(threshold):
        return "FAIL"
    return "PASS" if OPS[op](measured, threshold) else "FAIL"


def fmt(value: float | None) -> str:
    """Three significant digits: stable enough for nbval, readable in a table."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.3g}"


def counts(verdicts) -> dict[str, int]:
    """How many PASS, FAIL, N/A and INFO among ``verdicts`` (keys: passed, failed, na, info, total)."""
    verdicts = list(verdicts)
    passed, failed = verdicts.count("PASS"), verdicts.count("FAIL")
    return {"passed": passed, "failed": failed, "na": verdicts.count("N/A"),
            "info": verdicts.count("INFO"), "total": passed + failed}


def expected_na_at(expected_na: int | Mapping[str, int] | None, scale: str) -> int:
    """The N/A count declared for ``scale`` (an int for every scale, or per scale; default 0)."""
    if expected_na is None:
        return 0
    if isinstance(expected_na, Mapping):
        return int(expected_na.get(scale, 0))
    return int(expected_na)


@dataclass(frozen=True)
class Judgement:
    """Whether a run reproduces its paper, and if not, why (one sentence for people)."""
    reproduces: bool
    why_not: str = ""


def _field(claim: Any, name: str, default: Any = None) -> Any:
    return claim.get(name, default) if isinstance(claim, Mapping) else getattr(claim, name, default)


def judge(claims: Iterable[Any], scale: str | None, expected_na: int = 0,
          headline: Sequence[str] = ()) -> Judgement:
    """The suite's one rule for "reproduces" (claims.json, the scorecard and the README read it).

    ``claims``: Claim objects or their claims.json mappings. A cpu or paper run reproduces when every
    sanity check that applies PASSes, no claim FAILs, no more claims are N/A than ``expected_na``, every headline
    claim was checked and PASSes unless it is N/A (at least one PASS), and, without declared headline
    claims, at least one claim PASSes.
    """
    rows = list(claims)
    kind = {_field(c, "name"): _field(c, "kind", "check") for c in rows}
    verdicts = {_field(c, "name"): _field(c, "verdict") for c in rows}
    checks = [n for n in verdicts if kind[n] == "check"]
    if scale not in REPRODUCING_SCALES:
        return Judgement(False, f"a {scale or 'unknown'}-scale run is a smoke test, not a reproduction")
    broken = [n for n in verdicts if kind[n] == "sanity" and verdicts[n] == "FAIL"]
    if broken:
        return Judgement(False, f"sanity check(s) failed: {', '.join(broken)} (the run is broken)")
    failed = [n for n in checks if verdicts[n] == "FAIL"]
    if failed:
        return Judgement(False, f"claim(s) FAIL: {', '.join(failed)}")
    na = sum(verdicts[n] == "N/A" for n in checks)
    if na > expected_na:
        return Judgement(False, f"{na} claims N/A where the preset declares {expected_na} at {scale}")
    missing = [h for h in headline if kind.get(h) != "check"]
    if missing:
        return Judgement(False, f"headline claim(s) not checked by this run: {', '.join(missing)}")
    shown = [h for h in headline if verdicts[h] == "INFO"]
    if shown:
        return Judgement(False, f"headline claim(s) not reproduced at this scale: {', '.join(shown)} "
                                "(shown, not asserted: they fail some of seeds 0-4)")
    passed = [n for n in (headline or checks) if verdicts[n] == "PASS"]
    if not passed:
        return Judgement(False, "no headline claim applies at this scale" if headline else "no claim was checked")
    return Judgement(True)


def ids_complete(table: Any, columns: Sequence[str]) -> bool:
    """Whether every id column (seed, iteration, arm...) of a results table is filled in every row.

    A row whose id is missing is silently dropped by a filter or a groupby, so the claims would be
    measured on the other rows: a verdict module blanks its values instead, and the claims FAIL.
    """
    return bool(len(table)) and not table[list(columns)].isna().to_numpy().any()


def seed_rule(paper_id: str, scale: str) -> dict[str, str]:
    """The claims of ``paper_id`` shown (not asserted) at ``scale``; {} for a paper without a preset file."""
    from shared.config import load_seed_rule

    try:
        return load_seed_rule(paper_id).get(scale, {})
    except FileNotFoundError:
        return {}


def held(claim: Mapping) -> bool | None:
    """Whether a claim's value met its threshold (for a check shown as INFO by the seed rule too); None if no threshold."""
    if not claim.get("op") or claim.get("threshold") is None:
        return None
    return verdict(as_measurement(claim.get("measured")), claim["op"], claim["threshold"]) == "PASS"


class ClaimBook:
    """Collects a paper's claims and sanity checks, prints the verdict table and writes ``claims.json``.

    ``expected_na`` (an int, or scale -> int) and ``headline`` (claim ids) default to the paper's
    preset (``expected_na:``, ``headline:``); ``shown`` to its seed rule at ``scale``.
    """

    def __init__(self, paper_id: str, scale: str, expected_na: int | Mapping[str, int] | None = None,
                 shown: Mapping[str, str] | None = None, headline: Sequence[str] | None = None):
        self.paper_id, self.scale = paper_id, scale
        declared = _preset(paper_id)
        self.expected_na = expected_na_at(declared["expected_na"] if expected_na is None else expected_na, scale)
        self.headline = list(declared["headline"] if headline is None else headline)
        self.shown = dict(seed_rule(paper_id, scale) if shown is None else shown)
        self.claims: list[Claim] = []

    def check(self, name: str, statement: str, measured, op: str, threshold: float,
              applies: bool = True, note: str = "") -> Claim:
        """Record one of the paper's own claims; ``applies=False`` marks it N/A (say why in ``note``).

        A missing, NaN or infinite ``measured`` gives FAIL (N/A when the claim does not apply).
        """
        result, note = self._verdict(measured, op, threshold, applies, note)
        if applies and name in self.shown:  # the seed rule: shown with its threshold, not asserted
            would = "held" if result == "PASS" else "did not hold"
            note = "; ".join(filter(None, [f"not asserted at {self.scale}: {self.shown[name]}; "
                                           f"{would} in this run", note]))
            result = "INFO"
        return self._add(Claim(name, statement, as_measurement(measured), op, float(threshold), result, note))

    def sanity(self, name: str, statement: str, measured, op: str, threshold: float,
               applies: bool = True, note: str = "") -> Claim:
        """Record a sanity check (an identity, a match with a library, finite values, a property at
        initialisation, arithmetic on published constants): it must PASS, and never counts as evidence."""
        result, note = self._verdict(measured, op, threshold, applies, note)
        return self._add(Claim(name, statement, as_measurement(measured), op, float(threshold), result, note,
                               kind="sanity"))

    def _verdict(self, measured, op: str, threshold: float, applies: bool, note: str) -> tuple[str, str]:
        if op not in OPS:
            raise ParameterError("op", f"unknown comparison {op!r}", OPS)
        measured = as_measurement(measured)
        result = verdict(measured, op, threshold) if applies else "N/A"
        if applies and result == "FAIL" and not is_finite(measured):
            note = "; ".join(filter(None, [note, f"measured value is {measured}"]))
        if not applies and not note:
            note = f"not applicable at {self.scale}"
        return result, note

    def info(self, name: str, statement: str, measured, note: str = "") -> Claim:
        """Record a value that is shown, not asserted."""
        return self._add(Claim(name, statement, as_measurement(measured), "", None, "INFO", note, kind="info"))

    def timing(self, name: str, statement: str, measured, op: str, threshold: float,
               applies: bool = True, note: str = "") -> Claim:
        """Record a wall-clock measurement (a speed-up, a time ratio) beside the threshold it is read against.

        A timing depends on the CPU and on what else the machine runs, so it is shown as INFO (N/A when it
        does not apply), never asserted; it stays out of the regression tests and the reproduction
        report compares it apart from the values.
        """
        result, note = self._verdict(measured, op, threshold, applies, note)
        if applies:
            would = "held" if result == "PASS" else "did not hold"
            note = "; ".join(filter(None, [f"a timing on this machine, shown: {would} in this run", note]))
        return self._add(Claim(name, statement, as_measurement(measured), op, float(threshold),
                               "INFO" if applies else "N/A", note, kind="timing"))

    def _add(self, claim: Claim) -> Claim:
        if any(c.name == claim.name for c in self.claims):
            raise ValueError(f"claim {claim.name!r} is recorded twice")
        self.claims.append(claim)
        return claim

    def verdict_of(self, name: str) -> str:
        """The verdict of the claim called ``name`` (KeyError if none)."""
        for claim in self.claims:
            if claim.name == name:
                return claim.verdict
        raise KeyError(name)

    def of_kind(self, *kinds: str) -> list[Claim]:
        return [c for c in self.claims if c.kind in kinds]

    @property
    def counts(self) -> dict[str, int]:
        """PASS, FAIL and N/A among the paper's claims; INFO among everything shown (sanity checks apart)."""
        tally = counts(c.verdict for c in self.of_kind("check"))
        tally["info"] = sum(c.verdict == "INFO" for c in self.of_kind("check", "info", "timing"))
        return tally

    @property
    def sanity_counts(self) -> dict[str, int]:
        checks = self.of_kind("sanity")
        return {"passed": sum(c.verdict == "PASS" for c in checks), "total": len(checks)}

    @property
    def passed(self) -> int:
        return self.counts["passed"]

    @property
    def failed(self) -> int:
        return self.counts["failed"]

    @property
    def na(self) -> int:
        return self.counts["na"]

    @property
    def info_count(self) -> int:
        return self.counts["info"]

    @property
    def total(self) -> int:
        return self.counts["total"]

    @property
    def judgement(self) -> Judgement:
        return judge(self.claims, self.scale, self.expected_na, self.headline)

    @property
    def reproduces(self) -> bool:
        return self.judgement.reproduces

    def table(self) -> str:
        """The verdict table: headline claims, the other claims, then the sanity checks."""
        headline = [c for c in self.claims if c.name in self.headline]
        sections = [("headline claims", headline),
                    ("other claims", [c for c in self.of_kind("check", "info", "timing") if c not in headline]),
                    ("sanity checks (implementation, never evidence)", self.of_kind("sanity"))]
        def row(c: Claim) -> tuple[str, str, str, str]:
            timed = f" {TIMING_MARK}" if c.kind == "timing" and c.measured is not None else ""
            return c.name, fmt(c.measured) + timed, f"{c.op} {fmt(c.threshold)}" if c.op else "", c.verdict

        header = ("claim", "measured", "threshold", "verdict")
        grouped = [(title, [row(c) for c in members]) for title, members in sections if members]
        widths = [max(len(r[i]) for r in [header, *(r for _, rs in grouped for r in rs)]) for i in range(4)]

        def line(cells: tuple[str, ...]) -> str:
            return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths)).rstrip()

        lines = [line(header), "  ".join("-" * w for w in widths)]
        for title, rs in grouped:
            lines += [f"-- {title}", *map(line, rs)]
        sanity = self.sanity_counts
        judgement = self.judgement
        lines.append(f"{self.paper_id} @ {self.scale}: {self.passed}/{self.total} claims PASS; "
                     f"{sanity['passed']}/{sanity['total']} sanity checks pass; "
                     + ("reproduces" if judgement.reproduces else f"does not reproduce: {judgement.why_not}"))
        lines += [f"  {c.name}: {c.statement}" for _, members in sections for c in members]
        return "\n".join(lines)

    def write(self):
        judgement = self.judgement
        return write_json(output_dir(self.paper_id) / "claims.json", {
            "paper": self.paper_id, "scale": self.scale, "passed": self.passed,
            "total": self.total, "failed": self.failed, "na": self.na, "info": self.info_count,
            "sanity": self.sanity_counts, "expected_na": self.expected_na, "headline": self.headline,
            "reproduces": judgement.reproduces, "why_not": judgement.why_not,
            "claims": [asdict(c) for c in self.claims],
        })

    def report(self) -> None:
        """Print the verdict table and write ``claims.json``."""
        self.write()
        print(self.table())


def _preset(paper_id: str) -> dict[str, Any]:
    """The paper's declared headline claims and N/A budget; none for a paper without a preset file."""
    from shared.config import load_expected_na, load_headline

    try:
        return {"headline": load_headline(paper_id), "expected_na": load_expected_na(paper_id)}
    except FileNotFoundError:
        return {"headline": [], "expected_na": 0}
