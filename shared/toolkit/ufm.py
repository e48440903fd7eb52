"""The unconstrained feature model (UFM) with bias, trained by full-batch gradient descent.

Free features H (N x d), classifier W (K x d) and bias b minimise, in float64,
    (1/N) sum_i L(W h_i + b, y_i) + lambda_w/2 ||W||_F^2 + lambda_h/(2N) ||H||_F^2
(b is not decayed). Zhou et al. 2022 prove that for CE, LS, FL and MSE every global minimiser is
a neural-collapse solution, so gradient descent from a small random start should reach NC.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import pandas as pd
import torch
from torch import nn

from shared.toolkit.neural_collapse import collapse_metrics
from shared.progress import progress
from shared.toolkit.train import log_spaced


@dataclass(frozen=True)
class UFMSettings:
    num_classes: int = 10
    dim: int = 20
    per_class: int = 20
    lambda_w: float = 5e-3
    lambda_h: float = 5e-3
    lr: float = 0.5
    momentum: float = 0.9
    steps: int = 15_000
    init_scale: float = 0.1
    eval_points: int = 30


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread: the UFM's matrices are tiny, and extra threads only add
    synchronisation (measured 8x slower with 2 threads on 2 busy cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train_ufm(loss_fn: nn.Module, settings: UFMSettings, seed: int = 0) -> pd.DataFrame:
    """Full-batch SGD with momentum on (H, W, b); NC metrics and the objective on a log-spaced step grid."""
    s = settings
    generator = torch.Generator().manual_seed(seed)
    n = s.num_classes * s.per_class
    labels = torch.arange(s.num_classes).repeat_interleave(s.per_class)
    H = nn.Parameter(s.init_scale * torch.randn(n, s.dim, generator=generator, dtype=torch.float64))
    W = nn.Parameter(s.init_scale * torch.randn(s.num_classes, s.dim, generator=generator, dtype=torch.float64))
    b = nn.Parameter(torch.zeros(s.num_classes, dtype=torch.float64))
    optimizer = torch.optim.SGD(
        [{"params": [W], "weight_decay": s.lambda_w}, {"params": [H], "weight_decay": s.lambda_h / n}, {"params": [b]}],
        lr=s.lr,
        momentum=s.momentum,
    )
    grid = set(log_spaced(s.steps, s.eval_points))
    history = []
    with single_thread():
        for step in progress(range(1, s.steps + 1), desc="UFM steps", leave=False, mininterval=2):
            loss = loss_fn(H @ W.T + b, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if step in grid:
                with torch.no_grad():
                    fit = loss_fn(H @ W.T + b, labels).item()
                    penalty = s.lambda_w / 2 * W.square().sum().item() + s.lambda_h / (2 * n) * H.square().sum().item()
                history.append({"step": step, "objective": fit + penalty} | collapse_metrics(H, labels, W, b))
    return pd.DataFrame(history)
