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
    assert "1 / 2 papers reproduce (cpu or paper scale, every applicable claim PASS)" in text(page)
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
        "| paper | verdict | PASS | FAIL | N/A | INFO | scale |",
        "| [A Toy Paper Whose Claims Hold](https://arxiv.org/abs/2210.00001) (`toy_pass`) "
        "| reproduces | 2/2 | 0 | 1 (declared 1) | 1 | cpu |",
        "| [A Toy Paper With One Failing Claim](https://arxiv.org/abs/2406.00002) (`toy_fail`) "
        "| some claims fail | 1/2 | 1 | 0 (declared 0) | 0 | cpu |",
        "| [A Toy Paper Nobody Ran](https://arxiv.org/abs/2505.00003) (`toy_missing`) "
        "| not run | – | – | – | – | – |",
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
    paper = report.PaperResult("p", None, Path("nb.ipynb"), Path("results/p"), ran=ran,
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
    assert "| passes, not a reproduction | 2/2 | 0 | 1 (declared 7) | 1 | smoke |" in line


def test_undeclared_na_is_not_called_reproduces(repo):
    rewrite_claims(repo, "toy_pass", expected_na=0)
    papers = report.load_papers(report.Layout(repo), CATALOG)
    toy = next(p for p in papers if p.id == "toy_pass")
    assert toy.status == "incomplete" and "1 claims N/A where the notebook declares 0 at cpu" in toy.why_not


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


def test_a_claim_shown_by_the_seed_rule_keeps_the_paper_from_reproducing():
    """dream_sr's four claims held for some seeds only: two passing sanity checks are not a reproduction."""
    shown = report.Claim("flaky", "s", 0.5, ">=", 0.9, "INFO", "not asserted at cpu: holds for 2/5 seeds")
    plain_info = report.Claim("value", "s", 0.5, "", None, "INFO")
    paper = report.PaperResult("p", None, Path("nb.ipynb"), Path("results/p"), ran=True, claims=[plain_info],
                               passed=2, total=2, run={"scale": "cpu"})
    assert paper.status == "pass" and paper.shown == 0
    paper.claims.append(shown)
    assert paper.status == "incomplete" and not paper.reproduces
    assert "1 claim(s) shown, not asserted" in paper.why_not
