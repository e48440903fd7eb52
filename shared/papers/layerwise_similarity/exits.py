"""Exits at every layer: standard, aligned, alternating and multi-exit training, and their evaluation.

The paper's *aligned* training applies the last layer's classifier to every layer,
loss = sum_l w_l CE(head(norm(h^l)), y) with w_l = 2l / (L(L+1)); *alternating* uses the last-layer
CE on even steps (0, 2, ...) and that weighted sum on odd ones; *multi-exit* trains one head per
layer with the same weights. The saturation layer of a sample is the first layer from which every
prediction equals the final one.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shared.errors import ParameterError
from shared.progress import progress

MODES = ("standard", "aligned", "alternating", "multi_exit")
WEIGHTINGS = ("linear", "uniform")
EXIT_NORMS = ("shared_final", "none")


def check_choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ParameterError(name, f"unknown value {value!r}", allowed)
    return value


def exit_weights(n_layers: int, kind: str = "linear") -> torch.Tensor:
    """Per-layer loss weights summing to 1: ``linear`` w_l = 2l/(L(L+1)) (official), or ``uniform``."""
    check_choice("weights", kind, WEIGHTINGS)
    if kind == "uniform":
        return torch.full((n_layers,), 1.0 / n_layers)
    layers = torch.arange(1, n_layers + 1, dtype=torch.float32)
    return 2 * layers / (n_layers * (n_layers + 1))


def exit_loss(logits_at: Callable[[int], torch.Tensor], targets: torch.Tensor, mode: str,
              weights: torch.Tensor, step: int = 0) -> torch.Tensor:
    """The training loss of ``mode``; ``logits_at(l)`` gives layer l's logits (0-based), computed lazily.

    Targets equal to -100 are ignored (padding).
    """
    check_choice("mode", mode, MODES)

    def ce(layer: int) -> torch.Tensor:
        logits = logits_at(layer)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)

    last = len(weights) - 1
    if mode == "standard" or (mode == "alternating" and step % 2 == 0):
        return ce(last)
    return sum(w * ce(layer) for layer, w in enumerate(weights.tolist()))


def classifier_head(dim: int, n_classes: int, exit_norm: str) -> nn.Module:
    """LayerNorm + Linear (``shared_final``) or a bare Linear (``none``, as the GPT-2 code)."""
    check_choice("exit_norm", exit_norm, EXIT_NORMS)
    linear = nn.Linear(dim, n_classes)
    return nn.Sequential(nn.LayerNorm(dim), linear) if exit_norm == "shared_final" else linear


class ExitHeads(nn.Module):
    """Classifiers on each layer's features: the last layer's head shared by all, or one per layer."""

    def __init__(self, dim: int, n_classes: int, n_layers: int, per_layer: bool = False,
                 exit_norm: str = "shared_final"):
        super().__init__()
        n_heads = n_layers if per_layer else 1
        self.heads = nn.ModuleList(classifier_head(dim, n_classes, exit_norm) for _ in range(n_heads))
        self.n_layers = n_layers

    def head(self, layer: int) -> nn.Module:
        return self.heads[layer] if len(self.heads) > 1 else self.heads[0]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(L, B, d) -> (L, B, n_classes)."""
        return torch.stack([self.head(layer)(f) for layer, f in enumerate(features)])


def train_exits(backbone: nn.Module, heads: ExitHeads, X: torch.Tensor, y: torch.Tensor, mode: str,
                weights: torch.Tensor, epochs: int, lr: float, weight_decay: float, batch_size: int,
                seed: int, augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
                desc: str | None = None) -> list[float]:
    """Train ``backbone`` (input -> (L, B, d)) and ``heads`` with AdamW + OneCycle; return epoch losses.

    X and y may stay on the CPU: each batch moves to the backbone's device (after ``augment``).
    """
    torch.manual_seed(seed)
    device = next(backbone.parameters()).device
    params = list(backbone.parameters()) + list(heads.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    steps_per_epoch = -(-len(X) // batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch)
    order = torch.Generator().manual_seed(seed)
    backbone.train(), heads.train()
    history, step = [], 0
    for _ in progress(range(epochs), desc=desc or f"train {mode}"):
        total = 0.0
        for idx in torch.randperm(len(X), generator=order).split(batch_size):
            inputs = augment(X[idx], order) if augment else X[idx]
            features = backbone(inputs.to(device))
            loss = exit_loss(lambda layer: heads.head(layer)(features[layer]), y[idx].to(device), mode, weights, step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item() * len(idx)
            step += 1
        history.append(total / len(X))
    backbone.eval(), heads.eval()
    return history


@torch.no_grad()
def layer_features(backbone: nn.Module, X: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Every layer's features of X, (L, n, d), in eval mode, on the CPU."""
    backbone.eval()
    device = next(backbone.parameters()).device
    return torch.cat([backbone(chunk.to(device)).cpu() for chunk in X.split(batch_size)], dim=1)


@torch.no_grad()
def layer_predictions(heads: ExitHeads, features: torch.Tensor) -> torch.Tensor:
    """Top-1 prediction of each layer's exit, (L, n)."""
    heads.eval()
    device = next(heads.parameters()).device
    return torch.stack([heads.head(layer)(f.to(device)).argmax(-1).cpu() for layer, f in enumerate(features)])


def layerwise_accuracy(predictions: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """Top-1 accuracy per layer, (L,); targets equal to -100 are ignored."""
    valid = targets != -100
    return ((predictions == targets) & valid).sum(-1).double().div(valid.sum(-1)).cpu().numpy()


def saturation_layer(predictions: torch.Tensor) -> torch.Tensor:
    """1-based first layer l such that the predictions at layers l..L all equal the final one, (n,)."""
    agrees = predictions == predictions[-1]
    # suffix "all agree" over layers: flip, cumulative product, flip back
    settled = agrees.flip(0).int().cumprod(0).flip(0)
    return predictions.shape[0] - settled.sum(0) + 1


def saturated_fraction(saturation: torch.Tensor, n_layers: int) -> float:
    """Fraction of samples whose prediction is settled before the last layer."""
    return float((saturation < n_layers).double().mean())
