"""Linear probes of frozen features, features captured at several layers, and per-layer NC1.

- ``linear_probe``: standardise with the probe-train mean and std, fit sklearn's
  ``LogisticRegression(C, max_iter)``, return the held-out accuracy.
- ``capture``: forward hooks on named modules, one forward pass per batch, in eval mode; 4-D
  (N, C, H, W) outputs are global-average-pooled to (N, C).
- ``layer_nc1``: NC1 (``shared.toolkit.neural_collapse.nc1``) of each captured layer.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from torch import nn

from shared.toolkit.neural_collapse import nc1, to_numpy


def linear_probe(train_x, train_y, test_x, test_y, C: float = 1.0, max_iter: int = 2000) -> float:
    """Test accuracy of a logistic regression on standardised features (float64)."""
    from sklearn.linear_model import LogisticRegression

    train_x, test_x = (to_numpy(a).astype(np.float64) for a in (train_x, test_x))
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    clf = LogisticRegression(C=C, max_iter=max_iter)
    clf.fit((train_x - mean) / std, to_numpy(train_y))
    return float((clf.predict((test_x - mean) / std) == to_numpy(test_y)).mean())


def _pooled(out: torch.Tensor) -> torch.Tensor:
    out = out[0] if isinstance(out, (tuple, list)) else out
    return out.mean(dim=tuple(range(2, out.dim()))) if out.dim() > 2 else out.flatten(1)


@torch.no_grad()
def capture(model: nn.Module, layers: Mapping[str, nn.Module], x: torch.Tensor, batch_size: int = 1000,
            device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Outputs of each module in ``layers`` (name -> module inside ``model``) on ``x``, pooled, float32 on the CPU."""
    store: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    hooks = [module.register_forward_hook(lambda _m, _i, out, name=name: store[name].append(_pooled(out).float().cpu()))
             for name, module in layers.items()]
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(x), batch_size):
            model(x[i : i + batch_size].to(device))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return {name: torch.cat(parts) for name, parts in store.items()}


def layer_nc1(features: Mapping[str, torch.Tensor], y, num_classes: int) -> dict[str, float]:
    """NC1 of every layer's features (name -> (N, d)) with labels ``y``."""
    return {name: nc1(h, y, num_classes) for name, h in features.items()}
