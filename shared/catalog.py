"""The papers of the suite (``shared/catalog.yaml``): citation data, the curves ``dvc plots`` draws, and
what the ablation test of each headline claim (``tests/papers/<id>/test_<id>_ablation.py``) removes and
found, in words (the scorecard shows it beside the claim, power shown or not)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

CATALOG_FILE = Path(__file__).resolve().parent / "catalog.yaml"
NO_POWER = ("no power yet", "power not shown")   # how an ablation entry says its claim's test shows no power


@dataclass(frozen=True)
class Curve:
    """A table a paper writes (``tables/<table>.csv``) that ``dvc plots`` draws: ``y`` against ``x``."""

    table: str
    x: str
    y: tuple[str, ...]


@dataclass(frozen=True)
class Paper:
    id: str
    title: str
    authors: str
    venue: str
    arxiv: str
    curves: tuple[Curve, ...] = ()
    ablations: tuple[tuple[str, str], ...] = ()   # (headline claim id, what its ablation test found, in words)

    @property
    def unpowered(self) -> list[str]:
        """Headline claims whose ablation test does not show power yet: their text starts with one of
        NO_POWER (the ablated run still passes, or the test-size run cannot pass either)."""
        return [claim for claim, text in self.ablations if text.startswith(NO_POWER)]

    @property
    def url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv}"


def load(path: Path = CATALOG_FILE) -> dict[str, Paper]:
    """Every catalogued paper by id."""
    entries = yaml.safe_load(path.read_text()) or {}
    return {pid: Paper(pid, e["title"], e["authors"], e["venue"], str(e["arxiv"]),
                       tuple(Curve(c["table"], c["x"], tuple(c["y"])) for c in e.get("curves") or ()),
                       tuple((str(k), str(v)) for k, v in (e.get("ablations") or {}).items()))
            for pid, e in entries.items()}


PAPERS: dict[str, Paper] = load()
