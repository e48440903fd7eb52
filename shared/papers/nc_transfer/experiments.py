"""nc_transfer: the experiment of the skeleton notebook (replace it with the paper's own)."""
from __future__ import annotations

import numpy as np
import pandas as pd


def noisy_line(n: int, slope: float, noise: float, seed: int) -> pd.DataFrame:
    """``n`` points of ``y = slope * x + noise * N(0, 1)`` with ``x`` uniform on [0, 1]."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, n)
    return pd.DataFrame({"x": x, "y": slope * x + noise * rng.standard_normal(n)})


def fitted_slope(points: pd.DataFrame) -> float:
    """The least-squares slope of ``y`` on ``x`` (with intercept)."""
    return float(np.polyfit(points.x, points.y, 1)[0])
