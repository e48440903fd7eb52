"""The product cites sources a reader can check: no internal notes, issue numbers or machine paths.

A number in a docstring, comment, claim statement, preset or notebook names where it comes from: the paper
(its table or figure), ``docs/papers/<id>.md``, a measurement and where it was made. Internal planning notes
("the brief"), tracker numbers ("issue 19", "#18") and absolute paths of one machine mean nothing to a reader
of the repository, so this test fails on them in shared/ (py, yaml, j2, tmpl), notebooks/*.ipynb (every
cell), docs/**/*.md and README.md.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PATTERNS = {
    "internal notes ('the brief')": re.compile(r"\bthe brief\b|\bbrief(?:'s\b|:)|\(brief\)", re.IGNORECASE),
    "issue number": re.compile(r"\bissue \d+", re.IGNORECASE),
    "issue reference (#<n>)": re.compile(r"(?<![\w/&])#\d+\b"),
    "absolute machine path": re.compile(r"/work/|/home/|/Users/|/root/|[A-Za-z]:\\"),
}

# Legitimate matches, each as narrow as possible: (file, pattern name, regex the matched line must match).
ALLOWED = [
    # CSS colours of the scorecard's stylesheet (#333, #555, ...) are not issue references.
    ("shared/templates/report.html.j2", "issue reference (#<n>)",
     re.compile(r"#[0-9a-fA-F]{3}(?:[0-9a-fA-F]{3})?(?:[0-9a-fA-F]{2})?\s*[;}\"'),]")),
]


def product_files() -> list[Path]:
    files = [p for ext in ("py", "yaml", "j2", "tmpl") for p in (ROOT / "shared").rglob(f"*.{ext}")]
    files += (ROOT / "notebooks").glob("*.ipynb")
    files += (ROOT / "docs").rglob("*.md")
    files.append(ROOT / "README.md")
    return sorted(p for p in files if p.is_file())


def lines_of(path: Path) -> list[tuple[str, str]]:
    """(location, line) of a text file, or of every cell of a notebook (markdown and code)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".ipynb":
        return [(f"line {i}", line) for i, line in enumerate(text.splitlines(), 1)]
    out = []
    for c, cell in enumerate(json.loads(text)["cells"]):
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        out += [(f"cell {c} line {i}", line) for i, line in enumerate(source.splitlines(), 1)]
    return out


def allowed(rel: str, name: str, line: str) -> bool:
    return any(rel == file and name == pattern and rule.search(line) for file, pattern, rule in ALLOWED)


def offences(path: Path) -> list[str]:
    rel = path.relative_to(ROOT).as_posix()
    return [f"{rel}, {where}: {name}: {line.strip()[:160]}"
            for where, line in lines_of(path)
            for name, pattern in PATTERNS.items()
            if pattern.search(line) and not allowed(rel, name, line)]


def test_the_scan_covers_the_product():
    rels = {p.relative_to(ROOT).as_posix() for p in product_files()}
    assert "README.md" in rels and "shared/templates/report.html.j2" in rels
    assert any(r.startswith("notebooks/") for r in rels) and any(r.startswith("docs/papers/") for r in rels)
    assert any(r.startswith("shared/presets/") for r in rels) and any(r.endswith("/verdict.py") for r in rels)


@pytest.mark.parametrize("text, name", [
    ("Thresholds from the brief, with margin.", "internal notes ('the brief')"),
    ("encoder_seeds: 2   # brief: 3 (24 encoders)", "internal notes ('the brief')"),
    ("FL meets the brief's bound", "internal notes ('the brief')"),
    ("Changed by issue 18 (speed).", "issue number"),
    ("Measured (`make bench`, threads section, #18)", "issue reference (#<n>)"),
    ("Sizes of /work/shared/papers/x.md", "absolute machine path"),
    (r"see C:\Users\me\data", "absolute machine path"),
    ("a brief look at the loss", None),
    ("# 1. The unconstrained feature model", None),
    ("see docs/papers/nc_losses.md#seeds", None),
    ("&#8212; an HTML entity", None),
])
def test_the_patterns(text, name):
    assert [n for n, p in PATTERNS.items() if p.search(text)] == ([name] if name else [])


@pytest.mark.parametrize("path", product_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_internal_references(path):
    found = offences(path)
    assert not found, ("name a source a reader can check (the paper's table or figure, docs/papers/<id>.md, "
                       "a measurement and where it was made) instead of:\n" + "\n".join(found))
