"""Claim checks: the paper's statement, the measured value, a threshold, and a verdict.

Verdicts: PASS / FAIL (a checked claim), N/A (a checked claim that does not apply at this scale or
configuration; its ``note`` says why) and INFO (a value shown, not asserted). A missing, NaN or
infinite measurement never PASSes.

"Reproduces" (:func:`reproduces`) is the only judgement the suite prints about a whole paper: a
``cpu`` or ``paper`` run whose applicable claims all PASS (at least one), and with no more N/A
claims than the notebook declares for that scale (``ClaimBook(..., expected_na={"cpu": 0, ...})``,
0 when not declared).

The seed rule: a checked claim listed in the preset's ``shown_not_asserted.<scale>`` (it did not hold
for every seed of 0-4 there) is recorded as INFO with its threshold and the reason, never as PASS.
"""
from __future__ import annotations

import math
import operator
from dataclasses import asdict, dataclass
from typing import Mapping

from shared.errors import ParameterError
from shared.paths import output_dir
from shared.results import write_json

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}
VERDICTS = ("PASS", "FAIL", "N/A", "INFO")
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
    """The N/A count a notebook declares for ``scale`` (an int for every scale, or per scale; default 0)."""
    if expected_na is None:
        return 0
    if isinstance(expected_na, Mapping):
        return int(expected_na.get(scale, 0))
    return int(expected_na)


def reproduces(scale: str | None, passed: int, failed: int, na: int, expected_na: int = 0) -> bool:
    """The suite's one rule for "reproduces": a cpu or paper run, at least one claim checked, every
    applicable claim PASS, and no more N/A than the notebook declares for that scale."""
    return (scale in REPRODUCING_SCALES and passed > 0 and failed == 0 and na <= expected_na)


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
    """Collects a paper's claim checks, prints the verdict table and writes ``claims.json``.

    ``expected_na``: how many checked claims are N/A by design at a scale (an int, or a mapping
    scale -> int); a run with more N/A than that is not called "reproduces".
    """

    def __init__(self, paper_id: str, scale: str, expected_na: int | Mapping[str, int] | None = None,
                 shown: Mapping[str, str] | None = None):
        self.paper_id, self.scale = paper_id, scale
        self.expected_na = expected_na_at(expected_na, scale)
        self.shown = dict(seed_rule(paper_id, scale) if shown is None else shown)
        self.claims: list[Claim] = []

    def check(self, name: str, statement: str, measured, op: str, threshold: float,
              applies: bool = True, note: str = "") -> Claim:
        """Record a checked claim; ``applies=False`` marks it N/A (say why in ``note``).

        A missing, NaN or infinite ``measured`` gives FAIL (N/A when the claim does not apply).
        """
        if op not in OPS:
            raise ParameterError("op", f"unknown comparison {op!r}", OPS)
        measured = as_measurement(measured)
        result = verdict(measured, op, threshold) if applies else "N/A"
        if applies and result == "FAIL" and not is_finite(measured):
            note = "; ".join(filter(None, [note, f"measured value is {measured}"]))
        if not applies and not note:
            note = f"not applicable at {self.scale}"
        if applies and name in self.shown:  # the seed rule: shown with its threshold, not asserted
            would = "held" if result == "PASS" else "did not hold"
            note = "; ".join(filter(None, [f"not asserted at {self.scale}: {self.shown[name]}; "
                                           f"{would} in this run", note]))
            result = "INFO"
        return self._add(Claim(name, statement, measured, op, float(threshold), result, note))

    def info(self, name: str, statement: str, measured, note: str = "") -> Claim:
        """Record a value that is shown, not asserted."""
        return self._add(Claim(name, statement, as_measurement(measured), "", None, "INFO", note))

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

    @property
    def counts(self) -> dict[str, int]:
        return counts(c.verdict for c in self.claims)

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
    def reproduces(self) -> bool:
        return reproduces(self.scale, self.passed, self.failed, self.na, self.expected_na)

    def table(self) -> str:
        rows = [("claim", "measured", "threshold", "verdict")]
        rows += [
            (c.name, fmt(c.measured), f"{c.op} {fmt(c.threshold)}" if c.op else "", c.verdict)
            for c in self.claims
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines.append(f"{self.paper_id} @ {self.scale}: {self.passed}/{self.total} claims PASS")
        return "\n".join(lines)

    def write(self):
        return write_json(output_dir(self.paper_id) / "claims.json", {
            "paper": self.paper_id, "scale": self.scale, "passed": self.passed,
            "total": self.total, "failed": self.failed, "na": self.na, "info": self.info_count,
            "expected_na": self.expected_na, "reproduces": self.reproduces,
            "claims": [asdict(c) for c in self.claims],
        })

    def report(self) -> None:
        """Print the verdict table and write ``claims.json``."""
        self.write()
        print(self.table())
