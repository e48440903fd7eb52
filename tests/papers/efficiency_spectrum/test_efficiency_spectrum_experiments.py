"""efficiency_spectrum: the skeleton's experiment and a sabotage test for each of its claims."""
import math

import pytest

from shared.claims import ClaimBook
from shared.papers.efficiency_spectrum.experiments import fitted_slope, noisy_line
from shared.papers.efficiency_spectrum.verdict import record_claims


def test_a_noiseless_line_gives_its_slope():
    assert fitted_slope(noisy_line(20, slope=3.0, noise=0.0, seed=0)) == pytest.approx(3.0)


def verdict(slope: float, fitted: float, claim: str) -> str:
    book = record_claims(ClaimBook("efficiency_spectrum", scale="smoke"), slope, fitted)
    return next(c.verdict for c in book.claims if c.name == claim)


def test_sabotage_slope_recovered():
    points = noisy_line(200, slope=2.0, noise=0.1, seed=0)
    assert verdict(2.0, fitted_slope(points), "slope_recovered") == "PASS"
    shuffled = points.assign(y=points.y.sample(frac=1.0, random_state=0).to_numpy())
    assert verdict(2.0, fitted_slope(shuffled), "slope_recovered") == "FAIL"
    assert verdict(2.0, math.nan, "slope_recovered") == "FAIL"
