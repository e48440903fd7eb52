"""What every ablation test (``tests/papers/<id>/test_<id>_ablation.py``) asserts, written once."""
from __future__ import annotations

from shared.claims import ClaimBook


def measured(book: ClaimBook, claim: str) -> str:
    """``claim = value (verdict)``: the message of a failed assertion."""
    found = next(c for c in book.claims if c.name == claim)
    return f"{claim} = {found.measured!r} ({found.verdict})"


def assert_ablation_fails(books: dict[str, ClaimBook], claim: str, ablation: str) -> None:
    """The claim PASSes unablated and FAILs without the ingredient, at the same size."""
    assert books["unablated"].verdict_of(claim) == "PASS", measured(books["unablated"], claim)
    assert books[ablation].verdict_of(claim) == "FAIL", measured(books[ablation], claim)
