"""Full-batch gradient descent with a fixed step, recording the loss and the spectrum of Z.

Divergence (a non-finite loss, or one above ``blowup`` times the initial loss) is a result:
the run stops with status "diverged" and the step where it happened.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from shared.papers.residual_convergence.model import ResidualTransformer, squared_loss, stacked
from shared.papers.residual_convergence.spectra import svd_stats

FINISHED, DIVERGED = "finished", "diverged"


@dataclass
class TrainResult:
    """Loss L(t) at every step t = 0..T (fewer if diverged) and the spectrum of Z every few steps."""

    losses: list[float] = field(default_factory=list)
    spectrum_steps: list[int] = field(default_factory=list)
    sigma_min: list[float] = field(default_factory=list)
    sigma_max: list[float] = field(default_factory=list)
    kappa: list[float] = field(default_factory=list)
    status: str = FINISHED
    diverged_at: int | None = None

    @property
    def loss_ratio(self) -> float:
        """L(T) / L(0); inf for a diverged run."""
        return float("inf") if self.status == DIVERGED else self.losses[-1] / self.losses[0]

    def loss_array(self) -> np.ndarray:
        return np.asarray(self.losses)


def _record_spectrum(result: TrainResult, step: int, Z: torch.Tensor) -> None:
    stats = svd_stats(stacked(Z))
    result.spectrum_steps.append(step)
    result.sigma_min.append(stats.sigma_min)
    result.sigma_max.append(stats.sigma_max)
    result.kappa.append(stats.kappa)


def train_gd(model: ResidualTransformer, X: torch.Tensor, Y: torch.Tensor, *, eta: float,
             steps: int, svd_every: int = 10, blowup: float = 1e8) -> TrainResult:
    """Run ``steps`` full-batch GD steps of size ``eta`` on (X, Y); never raises on divergence."""
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=eta)
    result = TrainResult()
    for step in range(steps + 1):
        optimizer.zero_grad()
        out = model(X)
        loss = squared_loss(out.F, Y)
        value = loss.item()
        if not np.isfinite(value) or (result.losses and value > blowup * result.losses[0]):
            result.status, result.diverged_at = DIVERGED, step
            break
        result.losses.append(value)
        if step % svd_every == 0 or step == steps:
            _record_spectrum(result, step, out.Z)
        if step < steps:
            loss.backward()
            optimizer.step()
    return result
