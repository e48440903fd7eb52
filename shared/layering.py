"""The three tiers of ``shared`` and who may import whom, read from the sources with ``ast``.

- the suite (``shared/*.py``) imports only the suite;
- the toolkit (``shared/toolkit/``) imports the suite and the toolkit;
- a paper (``shared/papers/<id>/``, and ``notebooks/<id>.ipynb``) imports the suite, the toolkit
  and its own folder, never another paper;
- no relative imports (``shared.pipeline`` reads absolute imports to derive DVC dependencies);
- the tiers' ``__init__.py`` files import nothing, but for ``shared/__init__.py``'s one import of
  ``shared.kernels``: importing ``shared`` pins the numeric kernel path before torch or numpy compute
  (every stage depends on that small module, as it should).
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

from shared.paths import REPO_ROOT

PACKAGE = REPO_ROOT / "shared"
TIER_INITS = ("shared/__init__.py", "shared/toolkit/__init__.py", "shared/papers/__init__.py")
INIT_IMPORTS = {"shared/__init__.py": ["shared.kernels"]}   # the one import a tier's __init__.py may make


def tier(module: str) -> str:
    """``suite``, ``toolkit`` or ``papers.<id>`` for a module name under ``shared``."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] == "toolkit":
        return "toolkit"
    if len(parts) > 2 and parts[1] == "papers":
        return f"papers.{parts[2]}"
    return "suite"


def allowed(importer: str, imported: str) -> bool:
    """May a module of tier ``importer`` import one of tier ``imported``?"""
    if importer == "suite":
        return imported == "suite"
    if importer == "toolkit":
        return imported in ("suite", "toolkit")
    return imported in ("suite", "toolkit", importer)


def imports(source: str) -> tuple[list[str], int]:
    """The ``shared`` modules that ``source`` imports, and how many relative imports it has."""
    found, relative = [], 0
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level:
            relative += 1
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "shared":
            base = node.module
            found += [f"{base}.{a.name}" if base in ("shared", "shared.papers") else base for a in node.names]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "shared"]
    return found, relative


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def notebook_code(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    lines = ("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return "\n".join(l for block in lines for l in block.splitlines() if not l.lstrip().startswith(("%", "!")))


def violations(root: Path = REPO_ROOT) -> list[str]:
    """Every broken layering rule under ``root`` (its ``shared/`` and ``notebooks/``), as readable lines."""
    found: list[str] = []
    sources = [(p, module_name(p, root), p.read_text()) for p in sorted((root / "shared").rglob("*.py"))]
    sources += [(p, f"shared.papers.{p.stem}", notebook_code(p)) for p in sorted((root / "notebooks").glob("*.ipynb"))]
    for path, module, source in sources:
        where = path.relative_to(root).as_posix()
        names, relative = imports(source)
        if relative:
            found.append(f"{where}: {relative} relative import(s); write `from shared... import ...`")
        if where in TIER_INITS or (path.name == "__init__.py" and tier(module).startswith("papers.")
                                    and module.count(".") == 2):
            statements = [n for n in ast.walk(ast.parse(source)) if isinstance(n, (ast.Import, ast.ImportFrom))]
            if not set(names) <= set(INIT_IMPORTS.get(where, [])) or len(statements) > len(INIT_IMPORTS.get(where, [])):
                found.append(f"{where}: a tier's __init__.py must import nothing"
                             + (f" but {', '.join(INIT_IMPORTS[where])}" if where in INIT_IMPORTS else ""))
        for name in names:
            if not allowed(tier(module), tier(name)):
                found.append(f"{where} ({tier(module)}) imports {name} ({tier(name)})")
    return found


def top_level_folders(root: Path = REPO_ROOT) -> set[str]:
    return {p.name for p in (root / "shared").iterdir() if p.is_dir() and p.name != "__pycache__"}
