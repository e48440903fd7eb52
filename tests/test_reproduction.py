"""The reproduction report (``make repro``'s last word) and the committed baseline it reads."""
from __future__ import annotations

import json
import math
import subprocess

import pytest

from shared import paths, reproduction, run


def claims(*rows, reproduces=True) -> dict:
    """A claims.json with ``(name, measured, verdict[, kind])`` rows."""
    return {"paper": "p", "scale": "cpu", "reproduces": reproduces,
            "claims": [{"name": r[0], "statement": "s", "measured": r[1], "op": ">", "threshold": 0.5,
                        "verdict": r[2], "note": "", "kind": r[3] if len(r) > 3 else "check"} for r in rows]}


def test_the_same_file_is_identical_and_timings_are_listed_apart():
    old = claims(("a", 0.9, "PASS"), ("speed", 1.4, "INFO", "timing"))
    new = claims(("a", 0.9, "PASS"), ("speed", 1.1, "INFO", "timing"))
    result = reproduction.compare("p", old, new)
    assert result.status == "identical" and result.largest_change == 0
    assert result.timings == {"speed": (1.4, 1.1)}


def test_a_changed_value_is_measured_and_a_changed_verdict_is_named():
    old = claims(("a", 0.8, "PASS"), ("b", 0.6, "PASS"))
    moved = reproduction.compare("p", old, claims(("a", 0.88, "PASS"), ("b", 0.6, "PASS")))
    assert moved.status == "values differ" and moved.largest_claim == "a"
    assert moved.largest_change == pytest.approx(0.1)
    flipped = reproduction.compare("p", old, claims(("a", 0.8, "PASS"), ("b", 0.4, "FAIL"), reproduces=False))
    assert flipped.status == "verdicts differ" and flipped.changed_verdicts == ["b"]
    gone = reproduction.compare("p", old, claims(("a", 0.8, "PASS")))
    assert gone.status == "verdicts differ" and gone.changed_verdicts == ["b"]


def test_missing_and_non_finite_values_are_changes():
    assert reproduction.relative_change(None, 1.0) == math.inf
    assert reproduction.relative_change(math.nan, math.nan) == 0
    assert reproduction.relative_change(1.0, math.nan) == math.inf
    assert reproduction.relative_change(0.0, 0.25) == 0.25


def test_the_headline_counts_papers(tmp_path, monkeypatch):
    results = [reproduction.PaperComparison("a", "identical"), reproduction.PaperComparison("b", "values differ"),
               reproduction.PaperComparison("c", "no baseline")]
    assert reproduction.headline(results) == ("2/3 papers compared: same verdicts; identical values in 1 "
                                              "(1 without a run or baseline)")
    assert "same verdicts, identical values" in reproduction.headline(results[:1])
    assert reproduction.headline(results[2:]) == "no paper compared: 1 without a run or a committed baseline"


def git(root, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True,
                   capture_output=True)


@pytest.fixture
def committed_repo(tmp_path, monkeypatch):
    """A git repository with params.yaml, one committed claims.json, dvc.lock and README.md."""
    (tmp_path / "results" / "p").mkdir(parents=True)
    (tmp_path / "params.yaml").write_text("scale: cpu\nseed: 0\npapers:\n  p: {}\n")
    (tmp_path / "results" / "p" / "claims.json").write_text(json.dumps(claims(("a", 0.9, "PASS"))))
    for name in ("dvc.lock", "README.md", "code.py"):
        (tmp_path / name).write_text("v1\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "baseline")
    for module in (paths, run, reproduction):
        monkeypatch.setattr(module, "REPO_ROOT", tmp_path, raising=False)
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(paths, "PARAMS_FILE", tmp_path / "params.yaml")
    return tmp_path


def test_the_report_compares_the_working_tree_with_the_committed_baseline(committed_repo, capsys):
    (committed_repo / "results" / "p" / "claims.json").write_text(json.dumps(claims(("a", 0.99, "PASS"))))
    assert reproduction.main([]) == 0
    printed = capsys.readouterr().out
    assert "1/1 papers compared: same verdicts; identical values in 0" in printed and "values differ" in printed
    assert (committed_repo / "results" / "reproduction.md").read_text() == printed
    saved = json.loads((committed_repo / "results" / "reproduction.json").read_text())
    assert saved["papers"][0]["largest_claim"] == "a"
    (committed_repo / "results" / "p" / "claims.json").write_text(json.dumps(claims(("a", 0.1, "FAIL"))))
    assert reproduction.main(["--strict"]) == 1


def test_files_the_pipeline_writes_never_make_a_run_dirty(committed_repo):
    for name in ("dvc.lock", "README.md", "results/p/claims.json"):
        (committed_repo / name).write_text("v2\n")
    assert run.git_state()["git_dirty"] is False
    (committed_repo / "code.py").write_text("v2\n")
    assert run.git_state()["git_dirty"] is True
