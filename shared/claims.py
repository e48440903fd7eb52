"""Claim checks: the paper's statement, the measured value, a threshold, and a verdict."""
from __future__ import annotations

import math
import operator
from dataclasses import asdict, dataclass

from shared.errors import ParameterError
from shared.paths import output_dir
from shared.results import write_json

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}
VERDICTS = ("PASS", "FAIL", "N/A", "INFO")


@dataclass(frozen=True)
class Claim:
    name: str
    statement: str
    measured: float | None
    op: str
    threshold: float | None
    verdict: str
    note: str = ""


def verdict(measured: float | None, op: str, threshold: float) -> str:
    """PASS if ``measured op threshold`` holds; a missing or NaN measurement FAILs."""
    if op not in OPS:
        raise ParameterError("op", f"unknown comparison {op!r}", OPS)
    if measured is None or (isinstance(measured, float) and math.isnan(measured)):
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


class ClaimBook:
    """Collects a paper's claim checks, prints the verdict table and writes ``claims.json``."""

    def __init__(self, paper_id: str, scale: str):
        self.paper_id, self.scale = paper_id, scale
        self.claims: list[Claim] = []

    def check(self, name: str, statement: str, measured, op: str, threshold: float,
              applies: bool = True, note: str = "") -> Claim:
        """Record a checked claim; ``applies=False`` marks it N/A at this scale."""
        measured = None if measured is None else float(measured)
        result = verdict(measured, op, threshold) if applies else "N/A"
        return self._add(Claim(name, statement, measured, op, float(threshold), result, note))

    def info(self, name: str, statement: str, measured, note: str = "") -> Claim:
        """Record a value that is shown, not asserted."""
        measured = None if measured is None else float(measured)
        return self._add(Claim(name, statement, measured, "", None, "INFO", note))

    def _add(self, claim: Claim) -> Claim:
        if any(c.name == claim.name for c in self.claims):
            raise ValueError(f"claim {claim.name!r} is recorded twice")
        self.claims.append(claim)
        return claim

    @property
    def passed(self) -> int:
        return sum(c.verdict == "PASS" for c in self.claims)

    @property
    def total(self) -> int:
        return sum(c.verdict in ("PASS", "FAIL") for c in self.claims)

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
            "total": self.total, "claims": [asdict(c) for c in self.claims],
        })

    def report(self) -> None:
        """Print the verdict table and write ``claims.json``."""
        self.write()
        print(self.table())
