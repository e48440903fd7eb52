"""adacontour: the claims of the Verdict cell, computed here so that tests can feed them broken inputs."""
from __future__ import annotations

from shared.claims import ClaimBook


def record_claims(book: ClaimBook, slope: float, fitted: float) -> ClaimBook:
    """Record every claim of the paper in ``book``."""
    book.check("slope_recovered", f"least squares recovers the slope {slope:g} within 10%",
               abs(fitted - slope) / abs(slope), "<=", 0.1)
    return book
