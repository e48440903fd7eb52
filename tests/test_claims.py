import json
import math

import pytest

from shared import claims, paths
from shared.errors import ParameterError


@pytest.mark.parametrize("measured, op, threshold, expected", [
    (0.5, "<", 1.0, "PASS"), (1.0, "<", 1.0, "FAIL"), (1.0, "<=", 1.0, "PASS"),
    (2.0, ">", 1.0, "PASS"), (1.0, ">=", 2.0, "FAIL"), (math.nan, "<", 1.0, "FAIL"),
    (None, ">", 0.0, "FAIL"),
])
def test_verdict(measured, op, threshold, expected):
    assert claims.verdict(measured, op, threshold) == expected


def test_unknown_comparison_is_named():
    with pytest.raises(ParameterError, match="'op'.*allowed: <, <=, >, >=, =="):
        claims.verdict(1.0, "~", 1.0)


def test_fmt_rounds_to_three_significant_digits():
    assert claims.fmt(0.123456) == "0.123" and claims.fmt(3.6e-5) == "3.6e-05"
    assert claims.fmt(None) == "-" and claims.fmt(float("inf")) == "inf"


def test_book_counts_writes_and_prints(capsys):
    book = claims.ClaimBook("demo", scale="smoke")
    book.check("small", "x is small", 0.01, "<", 0.1)
    book.check("large", "y is large", 1.0, ">", 2.0)
    book.check("cpu_only", "only at cpu", 5.0, "<", 1.0, applies=False)
    book.info("shown", "shown, not asserted", 0.5)
    book.report()
    assert (book.passed, book.total) == (1, 2)
    table = capsys.readouterr().out
    assert "FAIL" in table and "N/A" in table and "INFO" in table
    assert table.strip().endswith("demo @ smoke: 1/2 claims PASS")
    written = json.loads((paths.output_dir("demo") / "claims.json").read_text())
    assert written["passed"] == 1 and [c["verdict"] for c in written["claims"]] == ["PASS", "FAIL", "N/A", "INFO"]


def test_a_claim_cannot_be_recorded_twice():
    book = claims.ClaimBook("demo", scale="cpu")
    book.check("a", "a", 1, "<", 2)
    with pytest.raises(ValueError, match="twice"):
        book.check("a", "a", 1, "<", 2)
