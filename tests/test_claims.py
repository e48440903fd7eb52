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
    assert "demo @ smoke: 1/2 claims PASS; 0/0 sanity checks pass; does not reproduce" in table
    assert "  small: x is small" in table  # each claim's sentence beside its id
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


def rows(*specs, kind="check"):
    """Claim mappings from ``name:VERDICT`` strings."""
    return [{"name": n, "verdict": v, "kind": kind} for n, v in (spec.split(":") for spec in specs)]


@pytest.mark.parametrize("scale, claim_rows, expected_na, headline, result, why", [
    ("cpu", rows("a:PASS", "b:PASS"), 0, ["a"], True, ""),
    ("paper", rows("a:PASS", "b:N/A", "c:N/A"), 2, ["a", "b"], True, ""),       # an N/A headline claim, declared
    ("smoke", rows("a:PASS"), 0, ["a"], False, "smoke test"),                   # smoke never reproduces
    (None, rows("a:PASS"), 0, ["a"], False, "smoke test"),
    ("cpu", rows("a:PASS", "b:FAIL"), 0, ["a"], False, "claim(s) FAIL: b"),     # any claim that FAILs
    ("cpu", rows("a:PASS", "b:N/A"), 0, ["a"], False, "1 claims N/A"),          # more N/A than declared
    ("cpu", rows("a:INFO", "b:PASS"), 0, ["a"], False, "not reproduced at this scale: a"),  # the seed rule
    ("cpu", rows("b:PASS"), 0, ["a"], False, "not checked by this run: a"),
    ("cpu", rows("a:N/A", "b:PASS"), 1, ["a"], False, "no headline claim applies"),
    ("cpu", rows("a:PASS") + rows("s:FAIL", kind="sanity"), 0, ["a"], False, "sanity check(s) failed: s"),
    ("cpu", rows("s:PASS", kind="sanity"), 0, [], False, "no claim was checked"),  # sanity checks are not evidence
    ("cpu", rows("b:PASS") + rows("t:INFO", kind="timing"), 0, [], True, ""),     # a timing is never asserted
])
def test_the_reproduces_rule(scale, claim_rows, expected_na, headline, result, why):
    judgement = claims.judge(claim_rows, scale, expected_na, headline)
    assert judgement.reproduces is result and why in judgement.why_not


def test_sanity_checks_are_counted_apart_and_never_as_evidence():
    book = claims.ClaimBook("demo", scale="cpu", expected_na=0, headline=["a"])
    book.check("a", "the paper's statement", 0.5, "<", 1.0)
    assert book.sanity("identity", "matches the library", 0.0, "==", 0.0).kind == "sanity"
    assert book.counts["total"] == 1 and book.sanity_counts == {"passed": 1, "total": 1} and book.reproduces
    book.sanity("finite", "finite values", math.nan, "<", 1.0)
    assert not book.reproduces and "sanity check(s) failed: finite" in book.judgement.why_not
    written = json.loads(json.dumps(book.judgement.__dict__))
    assert written == {"reproduces": False, "why_not": "sanity check(s) failed: finite (the run is broken)"}


def test_a_preset_declares_the_headline_claims_and_the_na_budget(tmp_path, monkeypatch):
    from shared.config import PresetError

    write_preset(tmp_path, monkeypatch, "headline: [a, b]\nexpected_na: {smoke: 3, cpu: 1}\n")
    book = claims.ClaimBook("demo", "cpu")
    assert book.headline == ["a", "b"] and book.expected_na == 1
    assert claims.ClaimBook("demo", "paper").expected_na == 0
    for bad in ("headline: [a, a]\n", "headline: a\n", "headline: [a, b, c, d, e, f]\n",
                "expected_na: {huge: 1}\n", "expected_na: {cpu: -1}\n"):
        write_preset(tmp_path, monkeypatch, bad)
        with pytest.raises(PresetError):
            claims.ClaimBook("demo", "cpu")


def test_book_reproduces_uses_the_declared_na_for_its_scale():
    def book_at(scale, expected_na):
        book = claims.ClaimBook("demo", scale=scale, expected_na=expected_na, headline=["p"])
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
    assert config.kernel_threads("demo") == config.REFERENCE_THREADS  # fixed: the same sums on any machine
    assert config.kernel_threads("demo", "paper") is None  # every core
    for bad in ("0", "-1", "abc", "100000"):
        monkeypatch.setenv("PAPERSUITE_THREADS", bad)
        with pytest.raises(ParameterError, match="PAPERSUITE_THREADS"):
            config.kernel_threads("demo")
    monkeypatch.delenv("PAPERSUITE_THREADS")
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


def test_ids_complete_spots_a_row_without_its_id():
    import pandas as pd

    table = pd.DataFrame({"seed": [0, 1], "acc": [0.9, 0.8]})
    assert claims.ids_complete(table, ["seed"])
    assert not claims.ids_complete(table.assign(seed=[0, math.nan]), ["seed"])
    assert not claims.ids_complete(table.iloc[:0], ["seed"])   # an empty table proves nothing
