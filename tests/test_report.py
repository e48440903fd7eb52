"""The scorecard page and the README results table, rendered from fixture results."""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from report_fixtures import CATALOG, make_repo
from shared import report


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


@pytest.fixture
def page(repo: Path) -> str:
    assert report.main(["--root", str(repo)], catalog=CATALOG) == 0
    return (repo / "results" / "index.html").read_text()


def element(page: str, tag: str, id_: str) -> str:
    """The inner HTML of the ``<tag id="id_">`` element (no nesting of the same tag inside)."""
    match = re.search(rf'<{tag}[^>]*\bid="{id_}"[^>]*>(.*?)</{tag}>', page, re.DOTALL)
    assert match, f"no <{tag} id={id_!r}>"
    return match.group(1)


def text(markup: str) -> str:
    """Visible text: tags removed, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def test_summary_counts(page):
    assert "2 / 3 papers run" in text(page)
    assert "3 / 4 claims passed" in text(page)
    assert "1 / 2 papers reproduce: at cpu or paper scale, every headline claim that applies asserted and PASS" in text(page)
    assert "0 / 0 sanity checks pass" in text(page)
    assert "1 FAIL · 1 N/A · 1 INFO other verdicts" in text(page)
    row = text(element(page, "tr", "row-toy_fail"))
    assert "some claims fail 1/2 1 PASS · 1 FAIL · 0 N/A · 0 INFO cpu 7.2 s 2025-06-02" in row
    assert "reproduces 2/2 2 PASS · 0 FAIL · 1 N/A · 1 INFO cpu 1 min 23 s 2025-06-01" in text(
        element(page, "tr", "row-toy_pass"))
    assert "reproduces" not in row


def test_failing_claim_is_shown_as_fail(page):
    section = element(page, "section", "toy_fail")
    row = re.search(r'<tr class="row-FAIL">(.*?)</tr>', section, re.DOTALL)
    assert row, "the failing claim has no FAIL row"
    assert text(row.group(1)) == (
        "statement of acc_gap acc_gap equal accuracy is fragile here 0.0421 < 0.015 FAIL")
    assert '<span class="badge verdict FAIL">FAIL</span>' in row.group(1)


def test_every_verdict_kind_is_listed(page):
    section = text(element(page, "section", "toy_pass"))
    for expected in ["0.00123 ≤ 0.01 PASS", "0.991 ≥ 0.95 PASS", "paper scale only – ≥ 0.5 N/A",
                     "early_exit 12.5 INFO"]:
        assert expected in section


def test_paper_not_run(page):
    assert "not run" in text(element(page, "tr", "row-toy_missing"))
    section = element(page, "section", "toy_missing")
    assert "Not run" in text(section)
    assert 'class="claims"' not in section and "<img" not in section


def test_citation_and_notebook_links(repo, page):
    section = element(page, "section", "toy_pass")
    assert "Ada Lovelace, Alan Turing" in section and "NeurIPS 2022" in section
    assert 'href="https://arxiv.org/abs/2210.00001"' in section
    for target in ["../notebooks/toy_pass.ipynb", "toy_pass/notebook.ipynb", "toy_pass/tables/curves.csv"]:
        assert f'href="{target}"' in section
        assert (repo / "results" / target).resolve().exists()


def test_figures_point_at_existing_files(repo, page):
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert sorted(sources) == sorted(f"{pid}/figures/{name}.png" for pid in ["toy_pass", "toy_fail"]
                                     for name in ["accuracy", "nc_metrics"])
    for src in sources:
        assert (repo / "results" / src).is_file()


def test_deviations_are_rendered_as_html(page):
    deviations = element(page, "section", "toy_fail").split("Deviations from the paper")[1]
    assert "<strong>5 epochs</strong>" in deviations
    assert "<li>MNIST subset, not CIFAR-10</li>" in deviations


def test_provenance_fields(page):
    section = element(page, "section", "toy_fail")
    provenance = text(section.split("<h3>Provenance</h3>")[1])
    for expected in ["0123456789abcdef0123456789abcdef01234567 uncommitted changes",
                     "scale / seed cpu / 3", "started 2025-06-02T09:30:00+00:00",
                     "wall time 7.2 s (7.25 s)", '"epochs": 5', "torch 2.13.0", "python 3.11.2",
                     "cpu_count 2", "platform Linux-x86_64"]:
        assert expected in provenance
    assert "uncommitted" not in element(page, "section", "toy_pass")
    assert "numeric kernels native this CPU's own kernels" in provenance
    assert "numeric kernels pinned to AVX2" in text(element(page, "section", "toy_pass"))


def test_a_timing_shown_beside_its_threshold_does_not_keep_a_paper_from_reproducing():
    timing = report.Claim("speedup", "s", 1.1, ">=", 1.5, "INFO", "a timing on this machine", kind="timing")
    checked = report.Claim("claim", "s", 0.5, "<", 1.0, "PASS")
    paper = report.PaperResult("p", None, Path("nb.ipynb"), Path("results/p"), ran=True, claims=[checked, timing],
                               passed=2, total=2, run={"scale": "cpu"})
    assert paper.status == "pass" and paper.shown == 0


def test_page_is_deterministic_and_offline(repo, page):
    report.main(["--root", str(repo)], catalog=CATALOG)
    assert (repo / "results" / "index.html").read_text() == page
    assert not re.search(r'<(script|link)\b|src="https?:', page)


def test_paper_missing_from_catalog_shows_its_id(repo):
    catalog = {k: v for k, v in CATALOG.items() if k != "toy_pass"}
    page = report.render_html(report.load_papers(report.Layout(repo), catalog),
                              repo / "results" / "index.html")
    assert "<code>toy_pass</code> is not in <code>shared/catalog.py</code>" in page


def test_readme_block_update_and_staleness_check(repo, capsys):
    readme = repo / "README.md"
    args = ["--root", str(repo)]
    assert report.main(args + ["--check"], catalog=CATALOG) == 1
    assert "stale" in capsys.readouterr().err
    assert report.main(args + ["--readme"], catalog=CATALOG) == 0
    assert report.main(args + ["--check"], catalog=CATALOG) == 0
    updated = readme.read_text()
    assert updated.startswith("# suite\n\n## Results\n<!-- results:start -->\n| paper |")
    assert updated.endswith("<!-- results:end -->\n\nMore text.\n")
    for row in [
        "| paper | verdict | headline claims | claims PASS | FAIL | N/A | INFO | sanity checks | scale |",
        "| [A Toy Paper Whose Claims Hold](https://arxiv.org/abs/2210.00001) (`toy_pass`) "
        "| reproduces | – | 2/2 | 0 | 1 (declared 1) | 1 | 0/0 pass | cpu |",
        "| [A Toy Paper With One Failing Claim](https://arxiv.org/abs/2406.00002) (`toy_fail`) "
        "| some claims fail | – | 1/2 | 1 | 0 (declared 0) | 0 | 0/0 pass | cpu |",
        "| [A Toy Paper Nobody Ran](https://arxiv.org/abs/2505.00003) (`toy_missing`) "
        "| not run | – | – | – | – | – | – | – |",
    ]:
        assert row in updated.splitlines()

    claims_file = repo / "results" / "toy_fail" / "claims.json"
    claims = json.loads(claims_file.read_text())
    claims_file.write_text(json.dumps({**claims, "passed": 2}))
    assert report.main(args + ["--check"], catalog=CATALOG) == 1


def test_readme_without_markers_is_an_error(repo):
    (repo / "README.md").write_text("# suite\n")
    with pytest.raises(SystemExit) as exit_:
        report.main(["--root", str(repo), "--readme"], catalog=CATALOG)
    assert exit_.value.code == 2


@pytest.mark.parametrize("seconds, shown", [(None, "–"), (7.25, "7.2 s"), (42.4, "42 s"),
                                            (185, "3 min 05 s"), (3720, "1 h 02 min")])
def test_duration(seconds, shown):
    assert report.duration(seconds) == shown


@pytest.mark.parametrize("ran, scale, passed, failed, na, expected_na, status", [
    (False, None, 0, 0, 0, 0, "not-run"), (True, "cpu", 0, 0, 0, 0, "unchecked"),
    (True, "cpu", 3, 0, 0, 0, "pass"), (True, "paper", 3, 0, 2, 2, "pass"),
    (True, "smoke", 3, 0, 0, 0, "incomplete"),      # smoke never reproduces
    (True, "cpu", 3, 0, 1, 0, "incomplete"),        # more N/A than declared
    (True, "cpu", 1, 2, 0, 0, "partial"), (True, "cpu", 0, 3, 0, 0, "fail")])
def test_status(ran, scale, passed, failed, na, expected_na, status):
    rows = [report.Claim(f"{v}{i}", "s", 1.0, "<", 2.0, v) for v, n in (("PASS", passed), ("FAIL", failed), ("N/A", na))
            for i in range(n)]
    paper = report.PaperResult("p", None, Path("nb.ipynb"), Path("results/p"), ran=ran, claims=rows,
                               passed=passed, total=passed + failed, failed=failed, na=na,
                               expected_na=expected_na, run={"scale": scale})
    assert paper.status == status
    assert paper.reproduces == (status == "pass")


def rewrite_claims(repo: Path, paper_id: str, **changes) -> None:
    claims_file = repo / "results" / paper_id / "claims.json"
    claims_file.write_text(json.dumps({**json.loads(claims_file.read_text()), **changes}))
    run_file = repo / "results" / paper_id / "run.json"
    if "scale" in changes:
        run_file.write_text(json.dumps({**json.loads(run_file.read_text()), "scale": changes["scale"]}))


def test_a_smoke_run_whose_claims_pass_is_not_called_reproduces(repo):
    """Issue 10: 5 PASS and 7 N/A at smoke was shown as "reproduces"."""
    rewrite_claims(repo, "toy_pass", scale="smoke", expected_na=7)
    assert report.main(["--root", str(repo)], catalog=CATALOG) == 0
    page = (repo / "results" / "index.html").read_text()
    row = text(element(page, "tr", "row-toy_pass"))
    assert "passes, not a reproduction" in row and "reproduces" not in row
    assert "a smoke-scale run is a smoke test, not a reproduction" in page
    assert "0 / 2 papers reproduce" in text(page)
    assert report.main(["--root", str(repo), "--readme"], catalog=CATALOG) == 0
    line = next(l for l in (repo / "README.md").read_text().splitlines() if "`toy_pass`" in l)
    assert "| passes, not a reproduction | – | 2/2 | 0 | 1 (declared 7) | 1 | 0/0 pass | smoke |" in line


def test_undeclared_na_is_not_called_reproduces(repo):
    rewrite_claims(repo, "toy_pass", expected_na=0)
    papers = report.load_papers(report.Layout(repo), CATALOG)
    toy = next(p for p in papers if p.id == "toy_pass")
    assert toy.status == "incomplete" and "1 claims N/A where the preset declares 0 at cpu" in toy.why_not


def test_counts_come_from_the_claims_when_claims_json_predates_them(repo):
    claims_file = repo / "results" / "toy_fail" / "claims.json"
    old = {k: v for k, v in json.loads(claims_file.read_text()).items()
           if k not in ("failed", "na", "info", "expected_na")}
    claims_file.write_text(json.dumps(old))
    toy = next(p for p in report.load_papers(report.Layout(repo), CATALOG) if p.id == "toy_fail")
    assert (toy.passed, toy.failed, toy.na, toy.info, toy.status) == (1, 1, 0, 0, "partial")


def test_readme_block_records_the_claims_hashes_that_dvc_lock_pins(tmp_path):
    from shared import report

    readme = "<!-- results:start -->\n| x |\n<!-- claims.json md5: a=0123 b=4567 -->\n<!-- results:end -->"
    assert report.readme_digests(readme) == {"a": "0123", "b": "4567"}
    lock = tmp_path / "dvc.lock"
    lock.write_text(
        "schema: '2.0'\nstages:\n  a:\n    cmd: x\n    outs:\n"
        "    - path: results/a/claims.json\n      md5: '0123'\n      size: 1\n"
        "    - path: results/a/figures\n      md5: ffff.dir\n")
    assert report.lock_digests(lock) == {"a": "0123"}
    assert report.lock_digests(tmp_path / "none.lock") == {}


def test_a_sweep_adds_a_holds_for_column(repo):
    sweep = repo / "results" / "sweeps" / "toy_pass"
    sweep.mkdir(parents=True)
    row = {"kind": "check", "passed": 4, "applied": 5, "failed_seeds": [3]}
    (sweep / "seeds.json").write_text(json.dumps({"paper": "toy_pass", "seeds": [0, 1, 2, 3, 4],
                                                  "failed_runs": [], "claims": {"nc1_small": row}}))
    assert report.main(["--root", str(repo)], catalog=CATALOG) == 0
    page = (repo / "results" / "index.html").read_text()
    section = text(element(page, "section", "toy_pass"))
    assert "holds for" in section and "4/5 seeds" in section and "seeds 0, 1, 2, 3, 4" in section
    assert "holds for" not in text(element(page, "section", "toy_fail"))


def test_a_folder_mixing_two_runs_is_flagged_and_not_called_reproduced(repo):
    folder = repo / "results" / "toy_pass"
    (folder / "config.json").write_text(json.dumps({"epochs": 7, "lr": 0.1, "seed": 3}))  # another run's
    toy = next(p for p in report.load_papers(report.Layout(repo), CATALOG) if p.id == "toy_pass")
    assert toy.mixed == ["run.json"] and toy.status == "incomplete" and "mixes two runs" in toy.why_not
    assert report.main(["--root", str(repo)], catalog=CATALOG) == 0
    assert "mixed runs" in (repo / "results" / "index.html").read_text()


def test_a_headline_claim_shown_by_the_seed_rule_keeps_the_paper_from_reproducing():
    """A headline claim that held for some seeds only is "not reproduced at this scale"; passing sanity
    checks never make up for it, and another claim shown by the seed rule does not block."""
    shown = report.Claim("flaky", "s", 0.5, ">=", 0.9, "INFO", "not asserted at cpu: holds for 2/5 seeds")
    plain_info = report.Claim("value", "s", 0.5, "", None, "INFO", kind="info")
    sanity = report.Claim("finite", "s", 1.0, "==", 1.0, "PASS", kind="sanity")
    solid = report.Claim("solid", "s", 1.0, ">", 0.5, "PASS")
    paper = report.PaperResult("p", None, Path("nb.ipynb"), Path("results/p"), ran=True,
                               claims=[solid, plain_info, sanity, shown], passed=1, total=1, run={"scale": "cpu"})
    assert paper.status == "pass" and paper.shown == 1        # "flaky" is not a headline claim
    paper.headline = ["solid", "flaky"]
    assert paper.status == "incomplete" and not paper.reproduces
    assert "headline claim(s) not reproduced at this scale: flaky" in paper.why_not
    assert [c.name for c in paper.headline_claims] == ["solid", "flaky"] and paper.other_claims == [plain_info]
    assert paper.sanity_checks == [sanity]


def test_a_failing_sanity_check_marks_the_run_broken():
    sanity = report.Claim("matches_library", "s", 0.3, "<", 1e-6, "FAIL", kind="sanity")
    solid = report.Claim("solid", "s", 1.0, ">", 0.5, "PASS")
    paper = report.PaperResult("p", None, Path("nb.ipynb"), Path("results/p"), ran=True,
                               claims=[solid, sanity], passed=1, total=1, run={"scale": "cpu"})
    assert paper.status == "broken" and "sanity check(s) failed: matches_library" in paper.why_not


def record_run_files(folder: Path) -> None:
    """What the runner records in run.json about the files its run wrote (shared.config.fingerprint)."""
    from shared.config import fingerprint

    run_file = folder / "run.json"
    run = json.loads(run_file.read_text())
    (folder / "config.json").write_text(json.dumps(run["config"]))
    run_file.write_text(json.dumps({**run, **fingerprint(folder)}))


def another_run(folder: Path, name: str) -> None:
    """Put the same file of another run of the same paper (seed 0, same scale) in ``folder``."""
    path = folder / name
    if name == "notebook.ipynb":
        notebook = json.loads(path.read_text())
        notebook["metadata"]["papermill"]["parameters"]["seed"] = 0
        path.write_text(json.dumps(notebook))
        return
    data = json.loads(path.read_text())
    if name == "claims.json":
        data["claims"][1]["measured"] = 0.5
    else:
        data["seed" if name == "config.json" else "train"] = 0
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("copied", [None, "claims.json", "metrics.json", "config.json", "notebook.ipynb"])
def test_a_file_from_another_run_of_the_same_scale_is_flagged(repo, copied):
    """A seed-0 claims.json copied into a seed-1 result showed 3/3 PASS as that run's verdict: only the scale
    was compared."""
    folder = repo / "results" / "toy_pass"
    notebook = json.loads((folder / "notebook.ipynb").read_text())
    notebook["metadata"]["papermill"]["parameters"] = json.loads((folder / "run.json").read_text())["parameters"]
    (folder / "notebook.ipynb").write_text(json.dumps(notebook))
    record_run_files(folder)
    if copied:
        another_run(folder, copied)
    toy = next(p for p in report.load_papers(report.Layout(repo), CATALOG) if p.id == "toy_pass")
    if copied is None:
        assert toy.mixed == [] and toy.status == "pass"
    else:
        assert copied in toy.mixed and toy.status != "pass" and "mixes two runs" in toy.why_not


@pytest.mark.parametrize("content, named", [
    ('{"paper": "toy_fail", "claims": [', "not readable as JSON"),
    (json.dumps({"paper": "toy_fail", "claims": [{"name": "x", "colour": "red"}]}), "is not a claim"),
    ("[1, 2]", "a JSON list, not an object"),
    (json.dumps({"claims": [1]}), "is not a claim"),
], ids=["truncated", "unknown key", "a list", "a claim that is a number"])
def test_a_broken_claims_file_is_named_and_flagged_and_the_page_is_still_written(repo, capsys, content, named):
    claims_file = repo / "results" / "toy_fail" / "claims.json"
    claims_file.write_text(content)
    assert report.main(["--root", str(repo)], catalog=CATALOG) == 0
    page = (repo / "results" / "index.html").read_text()
    assert str(claims_file) in capsys.readouterr().err
    row = text(element(page, "tr", "row-toy_fail"))
    assert "result files unreadable" in row and "reproduces" not in row
    assert named in text(element(page, "section", "toy_fail"))
    assert "reproduces" in text(element(page, "tr", "row-toy_pass"))
    assert report.main(["--root", str(repo), "--readme"], catalog=CATALOG) == 0


def test_a_headline_claim_shows_its_ablation(repo):
    import dataclasses

    rewrite_claims(repo, "toy_pass", headline=["nc1_small"])
    catalog = {**CATALOG, "toy_pass": dataclasses.replace(CATALOG["toy_pass"],
                                                          ablations=(("nc1_small", "untrained, it FAILs, as it should"),))}
    assert report.main(["--root", str(repo)], catalog=catalog) == 0
    section = text(element((repo / "results" / "index.html").read_text(), "section", "toy_pass"))
    assert "Headline claims statement of nc1_small" in section
    assert "ablation test: untrained, it FAILs, as it should" in section


def test_a_sanity_check_that_does_not_apply_is_neither_passed_nor_failed():
    applied = report.Claim("kappa_gap", "s", 40.0, ">", 30.0, "PASS", kind="sanity")
    smoke_only = report.Claim("smoke_kappa_gap", "s", None, ">", 100.0, "N/A", "smoke only", kind="sanity")
    solid = report.Claim("solid", "s", 1.0, ">", 0.5, "PASS")
    paper = report.PaperResult("p", None, Path("nb.ipynb"), Path("results/p"), ran=True,
                               claims=[solid, applied, smoke_only], passed=1, total=1, run={"scale": "cpu"})
    assert (paper.sanity_passed, paper.sanity_applied, paper.status) == (1, 1, "pass")


def test_a_headline_claim_whose_ablation_shows_no_power_is_flagged(repo):
    import dataclasses

    rewrite_claims(repo, "toy_pass", headline=["nc1_small", "acc_high"])
    catalog = {**CATALOG, "toy_pass": dataclasses.replace(CATALOG["toy_pass"], ablations=(
        ("nc1_small", "untrained, it FAILs, as it should"), ("acc_high", "no power yet: a random model passes too")))}
    assert catalog["toy_pass"].unpowered == ["acc_high"]
    assert report.main(["--root", str(repo)], catalog=catalog) == 0
    section = text(element((repo / "results" / "index.html").read_text(), "section", "toy_pass"))
    assert "power not shown the ablation tests of acc_high do not yet show" in section
