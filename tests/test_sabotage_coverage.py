"""Every checked claim and sanity check of every paper has a sabotage test.

For each paper in params.yaml, the claim ids are the string-literal first arguments of
``<book>.check("<id>", ...)`` or ``<book>.sanity("<id>", ...)`` (or a local ``check("<id>", ...)`` wrapper) calls in ``shared/papers/<id>/verdict.py`` and in the notebook's
Verdict cell (the code cell whose first line is ``# NBVAL_CHECK_OUTPUT``), read with ast. A claim id
is covered by a test in ``tests/papers/<id>/`` named ``test_sabotage_<claim_id>`` or decorated
``@pytest.mark.sabotage("<claim_id>", ...)`` (string literals, or ``*NAME`` where NAME is a
module-level list/tuple of string literals). A paper must declare at least one checked claim.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"


def paper_ids() -> list[str]:
    return list((yaml.safe_load((ROOT / "params.yaml").read_text()) or {}).get("papers") or {})


def parse(source: str) -> ast.Module:
    """Python source, IPython magics and shell escapes blanked out."""
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()]
    return ast.parse("\n".join(lines))


def _is_check(func: ast.AST) -> bool:
    """``<anything>.check`` or a bare ``check`` (a paper's local wrapper around ``book.check``)."""
    return (isinstance(func, ast.Attribute) and func.attr in ("check", "sanity")) or (isinstance(func, ast.Name) and func.id == "check")


def checked_claim_ids(tree: ast.AST) -> set[str]:
    """First arguments of ``<anything>.check("<literal>", ...)`` and ``check("<literal>", ...)`` calls."""
    ids = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and _is_check(node.func)
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            ids.add(node.args[0].value)
    return ids


def verdict_cell_source(notebook: Path) -> str:
    """The source of the notebook's Verdict cell ('' if it has none)."""
    if not notebook.exists():
        return ""
    for cell in json.loads(notebook.read_text())["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "code" and source.lstrip().startswith(CHECK_MARK):
            return source
    return ""


def declared_claims(paper_id: str, root: Path = ROOT) -> set[str]:
    ids = set()
    verdict = root / "shared" / "papers" / paper_id / "verdict.py"
    if verdict.exists():
        ids |= checked_claim_ids(ast.parse(verdict.read_text()))
    cell = verdict_cell_source(root / "notebooks" / f"{paper_id}.ipynb")
    if cell:
        ids |= checked_claim_ids(parse(cell))
    return ids


def _string_lists(tree: ast.Module) -> dict[str, list[str]]:
    """Module-level ``NAME = [..]`` / ``(..)`` of string literals."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, (ast.List, ast.Tuple)):
            items = node.value.elts
            if all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in items):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        found[target.id] = [e.value for e in items]
    return found


def _is_mark(func: ast.AST, name: str = "sabotage") -> bool:
    return isinstance(func, ast.Attribute) and func.attr == name


def sabotaged_ids(tree: ast.Module, mark: str = "sabotage") -> set[str]:
    """Claim ids a test module covers: ``test_<mark>_<id>`` names and ``@pytest.mark.<mark>(...)`` args."""
    lists, ids = _string_lists(tree), set()
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if node.name.startswith(f"test_{mark}_"):
            ids.add(node.name[len(f"test_{mark}_"):])
        for decorator in node.decorator_list:
            if isinstance(decorator, ast.Call) and _is_mark(decorator.func, mark):
                for arg in decorator.args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        ids.add(arg.value)
                    elif isinstance(arg, ast.Starred) and isinstance(arg.value, ast.Name):
                        ids.update(lists.get(arg.value.id, []))
    return ids


def sabotage_tests(paper_id: str, root: Path = ROOT, mark: str = "sabotage") -> set[str]:
    ids = set()
    for test_file in sorted((root / "tests" / "papers" / paper_id).glob("*.py")):
        ids |= sabotaged_ids(ast.parse(test_file.read_text()), mark)
    return ids


def test_every_paper_is_enumerated():
    assert paper_ids(), "params.yaml lists no papers"


@pytest.mark.parametrize("paper_id", paper_ids())
def test_every_checked_claim_has_a_sabotage_test(paper_id):
    claims = declared_claims(paper_id)
    assert claims, (f"{paper_id} declares no checked claim: no book.check(\"<id>\", ...) with a string-literal id "
                    f"in shared/papers/{paper_id}/verdict.py or in the notebook's Verdict cell")
    missing = sorted(claims - sabotage_tests(paper_id))
    assert not missing, (f"{paper_id}: claims without a sabotage test in tests/papers/{paper_id}/ "
                         f"(name it test_sabotage_<claim_id> or mark it @pytest.mark.sabotage(\"<claim_id>\")): "
                         f"{', '.join(missing)}")


# --- the enumeration itself ----------------------------------------------------------------------

def write_paper(root: Path, verdict: str, cell: str, tests: str) -> None:
    (root / "shared" / "papers" / "toy").mkdir(parents=True)
    (root / "shared" / "papers" / "toy" / "verdict.py").write_text(verdict)
    (root / "notebooks").mkdir()
    notebook = {"cells": [{"cell_type": "code", "source": ["x = 1\n"]},
                          {"cell_type": "code", "source": cell.splitlines(True)}]}
    (root / "notebooks" / "toy.ipynb").write_text(json.dumps(notebook))
    (root / "tests" / "papers" / "toy").mkdir(parents=True)
    (root / "tests" / "papers" / "toy" / "test_toy_verdict.py").write_text(tests)


def test_enumeration_reads_verdict_py_the_verdict_cell_and_both_kinds_of_sabotage(tmp_path):
    write_paper(
        tmp_path,
        verdict='def record_claims(book, x):\n    book.check("a", "s", x, "<", 1)\n'
                '    book.check("b", "s", x, "<", 1, applies=False)\n    book.info("shown", "s", x)\n'
                '    book.check(f"dyn{x}", "s", x, "<", 1)\n'
                '    def check(name, *a):\n        return book.check(name, *a)\n    check("d", "s", x, "<", 1)\n',
        cell='# NBVAL_CHECK_OUTPUT\n%matplotlib inline\nbook.check("c", "s", 1, "<", 2)\nbook.report()\n',
        tests='import pytest\nIDS = ["b", "c"]\n'
              'def test_sabotage_a():\n    pass\n'
              '@pytest.mark.sabotage(*IDS)\ndef test_nan():\n    pass\n')
    assert declared_claims("toy", tmp_path) == {"a", "b", "c", "d"}
    assert sabotage_tests("toy", tmp_path) == {"a", "b", "c"}


def test_enumeration_finds_a_claim_without_sabotage(tmp_path):
    write_paper(tmp_path, verdict='def f(book):\n    book.check("a", "s", 1, "<", 2)\n    book.check("z", "s", 1, "<", 2)\n',
                cell="# NBVAL_CHECK_OUTPUT\nbook.report()\n",
                tests='import pytest\n@pytest.mark.sabotage("a")\ndef test_x():\n    pass\n')
    assert declared_claims("toy", tmp_path) - sabotage_tests("toy", tmp_path) == {"z"}


def sanity_ids(paper_id: str) -> set[str]:
    """First arguments of ``<anything>.sanity("<literal>", ...)`` in the paper's verdict module."""
    tree = ast.parse((ROOT / "shared" / "papers" / paper_id / "verdict.py").read_text())
    return {node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "sanity"
            and node.args and isinstance(node.args[0], ast.Constant)}


@pytest.mark.parametrize("paper_id", paper_ids())
def test_every_paper_declares_headline_claims_that_are_claims_not_sanity_checks(paper_id):
    from shared.config import load_headline

    headline = load_headline(paper_id)
    assert headline, f"shared/presets/{paper_id}.yaml declares no headline claims"
    assert set(headline) <= declared_claims(paper_id) - sanity_ids(paper_id), \
        f"{paper_id}: headline ids that are not checked claims: {set(headline) - declared_claims(paper_id)}"


@pytest.mark.parametrize("paper_id", paper_ids())
def test_every_headline_claim_has_an_ablation_test(paper_id):
    """A headline claim must show power: a test runs the real experiment without its key ingredient and
    asserts FAIL (``@pytest.mark.ablation("<claim_id>")``, beside the unablated run asserting PASS)."""
    from shared.catalog import load
    from shared.config import load_headline

    missing = sorted(set(load_headline(paper_id)) - sabotage_tests(paper_id, mark="ablation"))
    assert not missing, f"{paper_id}: headline claims without an ablation test: {', '.join(missing)}"
    undescribed = sorted(set(load_headline(paper_id)) - dict(load()[paper_id].ablations).keys())
    assert not undescribed, (f"shared/catalog.yaml: say under {paper_id}'s `ablations:` what the ablation test of "
                             f"each headline claim removed and found (the scorecard shows it): {', '.join(undescribed)}")
