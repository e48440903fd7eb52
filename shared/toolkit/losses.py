"""Classification losses of Zhou et al. 2022 as the official code sets them: CE, LS, FL, MSE.

Every loss maps (logits N x K, integer labels N) to a scalar, averaged over the batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from shared.errors import ParameterError

LOSSES = ("ce", "ls", "fl", "mse")


class FocalLoss(nn.Module):
    """-(1 - p_y)^gamma log p_y, batch mean (Lin et al. 2017; gamma = 0 is cross-entropy)."""

    def __init__(self, gamma: float = 3.0):
        super().__init__()
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits, dim=1).gather(1, labels[:, None]).squeeze(1)
        return (-((1 - log_p.exp()) ** self.gamma) * log_p).mean()


class RescaledMSELoss(nn.Module):
    """Mean over the N x K entries of (logits - rescale * onehot(y))^2 (official ``mean_square_error``)."""

    def __init__(self, rescale: float = 15.0):
        super().__init__()
        self.rescale = rescale

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        target = self.rescale * F.one_hot(labels, num_classes=logits.shape[1]).to(logits.dtype)
        return F.mse_loss(logits, target)


def make_loss(
    name: str, ls_alpha: float = 0.05, fl_gamma: float = 3.0, mse_rescale: float = 15.0, param: str = "loss"
) -> nn.Module:
    """The loss called ``name`` (ce | ls | fl | mse); ``param`` names the knob in error messages."""
    if name == "ce":
        return nn.CrossEntropyLoss()
    if name == "ls":
        return nn.CrossEntropyLoss(label_smoothing=ls_alpha)
    if name == "fl":
        return FocalLoss(fl_gamma)
    if name == "mse":
        return RescaledMSELoss(mse_rescale)
    raise ParameterError(param, f"unknown loss {name!r}", LOSSES)
