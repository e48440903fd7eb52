"""A fully connected classifier whose forward returns (logits, penultimate features)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class MLP(nn.Module):
    """Hidden layers Linear -> BatchNorm -> ReLU, then a linear classifier ``fc`` (with bias)."""

    def __init__(self, in_features: int, num_classes: int, widths: Sequence[int] = (512, 512, 512), batch_norm: bool = True):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        for width in widths:
            layers += [nn.Linear(in_features, width), nn.BatchNorm1d(width) if batch_norm else nn.Identity(), nn.ReLU()]
            in_features = width
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x)
        return self.fc(h), h
