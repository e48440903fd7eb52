"""The empirical linear rate: a least-squares fit of log L(t) = a - rho * t."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats


class RateFit(NamedTuple):
    rho: float  # decay of log L per step (positive when the loss falls)
    r2: float   # coefficient of determination of the log-linear fit


def loglinear_rate(losses: np.ndarray, skip: float = 0.25) -> RateFit:
    """Fit log L(t) = a - rho t on the last ``1 - skip`` of ``losses`` (L(0), L(1), ...).

    Skipping the first quarter leaves out the initial transient. Fewer than three usable
    points, or non-positive losses, give NaN.
    """
    losses = np.asarray(losses, dtype=float)
    steps = np.arange(len(losses))[int(skip * len(losses)):]
    tail = losses[steps]
    if len(tail) < 3 or not np.all(np.isfinite(tail)) or np.any(tail <= 0):
        return RateFit(float("nan"), float("nan"))
    log_tail = np.log(tail)
    if np.ptp(log_tail) == 0:
        return RateFit(0.0, float("nan"))
    fit = stats.linregress(steps, log_tail)
    return RateFit(-float(fit.slope), float(fit.rvalue**2))
