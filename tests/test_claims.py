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


# --- issue 10: non-finite never passes, N/A has a reason, counts, "reproduces" -------------------

@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, None])
@pytest.mark.parametrize("op", ["<", "<=", ">", ">=", "=="])
def test_non_finite_measurements_never_pass(bad, op):
    assert claims.verdict(bad, op, 1.0) == "FAIL"
    book = claims.ClaimBook("demo", scale="cpu")
    claim = book.check("x", "x", bad, op, 1.0)
    assert claim.verdict == "FAIL" and "measured value" in claim.note
    assert book.check("y", "y", bad, op, 1.0, applies=False, note="needs cpu").verdict == "N/A"


def test_numpy_nan_and_inf_fail():
    import numpy as np
    assert claims.verdict(np.float32("nan"), "<", 1.0) == "FAIL"
    assert claims.verdict(np.float64("-inf"), "<", 1.0) == "FAIL"
    assert claims.verdict(np.float64(0.5), "<", 1.0) == "PASS"


def test_a_non_number_is_refused():
    with pytest.raises(ParameterError, match="measured"):
        claims.ClaimBook("demo", scale="cpu").check("x", "x", "0.5", "<", 1.0)


def test_na_records_its_reason():
    book = claims.ClaimBook("demo", scale="smoke")
    assert book.check("a", "a", 1.0, "<", 2.0, applies=False, note="needs the cpu budget").note == "needs the cpu budget"
    assert book.check("b", "b", 1.0, "<", 2.0, applies=False).note == "not applicable at smoke"


def test_counts_and_claims_json_record_all_four_and_the_scale():
    book = claims.ClaimBook("demo", scale="cpu", expected_na={"cpu": 1})
    book.check("p", "p", 0.5, "<", 1.0)
    book.check("f", "f", 2.0, "<", 1.0)
    book.check("n", "n", 2.0, "<", 1.0, applies=False, note="why")
    book.info("i", "i", 3.0)
    assert book.counts == {"passed": 1, "failed": 1, "na": 1, "info": 1, "total": 2}
    written = book.write()
    data = json.loads((paths.output_dir("demo") / "claims.json").read_text())
    assert {k: data[k] for k in ("scale", "passed", "failed", "na", "info", "total", "expected_na", "reproduces")} == {
        "scale": "cpu", "passed": 1, "failed": 1, "na": 1, "info": 1, "total": 2, "expected_na": 1,
        "reproduces": False}
    assert written is not None or written is None  # write returns whatever results.write_json returns


@pytest.mark.parametrize("scale, passed, failed, na, expected_na, result", [
    ("cpu", 5, 0, 0, 0, True),
    ("paper", 5, 0, 2, 2, True),
    ("smoke", 5, 0, 0, 0, False),     # smoke never reproduces
    ("smoke", 5, 0, 7, 7, False),
    ("cpu", 5, 1, 0, 0, False),       # a FAIL
    ("cpu", 5, 0, 1, 0, False),       # more N/A than declared
    ("cpu", 0, 0, 3, 3, False),       # nothing checked
    (None, 5, 0, 0, 0, False),
])
def test_the_reproduces_rule(scale, passed, failed, na, expected_na, result):
    assert claims.reproduces(scale, passed, failed, na, expected_na) is result


def test_book_reproduces_uses_the_declared_na_for_its_scale():
    def book_at(scale, expected_na):
        book = claims.ClaimBook("demo", scale=scale, expected_na=expected_na)
        book.check("p", "p", 0.5, "<", 1.0)
        book.check("n", "n", 0.5, "<", 1.0, applies=False, note="smoke only")
        return book
    assert book_at("cpu", {"cpu": 1, "smoke": 0}).reproduces
    assert not book_at("cpu", {"smoke": 1}).reproduces      # undeclared at cpu: 0
    assert book_at("paper", 1).reproduces                   # an int declares it for every scale
    assert not book_at("smoke", 1).reproduces


# --- the seed rule: a check that failed some seed is shown (INFO), never asserted ---------------

def write_preset(tmp_path, monkeypatch, text):
    monkeypatch.setattr(paths, "PRESETS_DIR", tmp_path)
    (tmp_path / "demo.yaml").write_text("smoke: {a: 1}\ncpu: {a: 2}\npaper: {a: 3}\n" + text)


def test_the_seed_rule_shows_a_check_at_its_scale_only(tmp_path, monkeypatch):
    write_preset(tmp_path, monkeypatch, 'shown_not_asserted:\n  cpu:\n    flaky: "holds for 3/5 seeds"\n')
    from shared.config import load_presets

    assert set(load_presets("demo")) == {"smoke", "cpu", "paper"}  # not a scale
    cpu = claims.ClaimBook("demo", "cpu")
    shown = cpu.check("flaky", "s", 0.5, ">", 0.9)
    kept = cpu.check("solid", "s", 0.5, ">", 0.9)
    assert (shown.verdict, kept.verdict) == ("INFO", "FAIL")
    assert shown.threshold == 0.9 and "3/5" in shown.note and "did not hold in this run" in shown.note
    assert claims.held(json.loads(json.dumps(shown.__dict__))) is False  # a sweep still counts it
    assert claims.ClaimBook("demo", "paper").check("flaky", "s", 0.5, ">", 0.9).verdict == "FAIL"
    assert claims.ClaimBook("demo", "cpu").check("flaky", "s", math.nan, ">", 0.9, applies=False).verdict == "N/A"


def test_a_preset_may_set_the_kernel_threads_and_papersuite_threads_wins(tmp_path, monkeypatch):
    from shared import config

    monkeypatch.delenv("PAPERSUITE_THREADS", raising=False)
    write_preset(tmp_path, monkeypatch, "threads: 1\n")
    assert config.kernel_threads("demo") == 1 and set(config.load_presets("demo")) == {"smoke", "cpu", "paper"}
    monkeypatch.setenv("PAPERSUITE_THREADS", "2")
    assert config.kernel_threads("demo") == 2
    monkeypatch.delenv("PAPERSUITE_THREADS")
    write_preset(tmp_path, monkeypatch, "")
    assert config.kernel_threads("demo") is None  # every core
    for bad in ("0", "true", "two"):
        write_preset(tmp_path, monkeypatch, f"threads: {bad}\n")
        with pytest.raises(config.PresetError, match="threads must be a positive number"):
            config.kernel_threads("demo")


def test_a_malformed_seed_rule_is_refused(tmp_path, monkeypatch):
    from shared.config import PresetError

    write_preset(tmp_path, monkeypatch, "shown_not_asserted:\n  cpu:\n    flaky: ''\n")
    with pytest.raises(PresetError, match="shown_not_asserted.cpu"):
        claims.ClaimBook("demo", "cpu")


def test_every_seed_rule_entry_names_a_checked_claim():
    """A typo in a preset's shown_not_asserted would silently assert the claim it meant to show."""
    from shared.config import load_seed_rule
    from tests.test_sabotage_coverage import declared_claims, paper_ids

    for paper_id in paper_ids():
        names = {name for scale in load_seed_rule(paper_id).values() for name in scale}
        assert names <= declared_claims(paper_id), (paper_id, names - declared_claims(paper_id))
