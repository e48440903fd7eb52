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
    assert "1 / 2 papers with every claim passing" in text(page)
    row = text(element(page, "tr", "row-toy_fail"))
    assert "partly reproduces 1/2 cpu 7.2 s 2025-06-02" in row
    assert "reproduces 2/2 cpu 1 min 23 s 2025-06-01" in text(element(page, "tr", "row-toy_pass"))


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
        "| [A Toy Paper Whose Claims Hold](https://arxiv.org/abs/2210.00001) (`toy_pass`) "
        "| 2/2 | cpu |",
        "| [A Toy Paper With One Failing Claim](https://arxiv.org/abs/2406.00002) (`toy_fail`) "
        "| 1/2 | cpu |",
        "| [A Toy Paper Nobody Ran](https://arxiv.org/abs/2505.00003) (`toy_missing`) "
        "| not run | – |",
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


@pytest.mark.parametrize("ran, passed, total, status", [
    (False, 0, 0, "not-run"), (True, 0, 0, "unchecked"), (True, 3, 3, "pass"),
    (True, 1, 3, "partial"), (True, 0, 3, "fail")])
def test_status(ran, passed, total, status):
    paper = report.PaperResult("p", None, Path("nb.ipynb"), Path("results/p"), ran=ran,
                               passed=passed, total=total)
    assert paper.status == status


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
