"""Bare references the benchmarks compare the toolkit with, and their synthetic inputs."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from shared.toolkit.train import Batch, TrainSettings


def synthetic_data(n: int, dim: int, classes: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` standard normal inputs of ``dim`` features and uniform labels."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=generator), torch.randint(classes, (n,), generator=generator)


def bare_train(model: nn.Module, data: Batch, settings: TrainSettings, seed: int = 0) -> None:
    """The training of :func:`shared.toolkit.train.train_classifier` in plain PyTorch, without history or evaluation."""
    x, y = data
    optimizer = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum,
                                weight_decay=settings.weight_decay)
    milestones = [int(f * settings.epochs) for f in settings.milestones]
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=settings.lr_decay)
    generator = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(settings.epochs):
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(order), settings.batch_size):
            idx = order[i : i + settings.batch_size]
            loss = loss_fn(model(x[idx])[0], y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if settings.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
        scheduler.step()


@torch.no_grad()
def bare_hidden_states(model, tokenizer, texts: Sequence[str], batch_size: int, max_length: int = 128) -> int:
    """``model(**enc, output_hidden_states=True)`` over the batches of ``texts``; the tokens it ran (no padding)."""
    tokens = 0
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(list(texts[start:start + batch_size]), return_tensors="pt", padding=True, truncation=True,
                        max_length=max_length)
        model(**enc, output_hidden_states=True)
        tokens += int(enc["attention_mask"].sum())
    return tokens


def nc1_reference(H: np.ndarray, y: np.ndarray, num_classes: int) -> float:
    """Textbook NC1 = tr(Sigma_W pinv(Sigma_B)) / K in float64 (pinv with scipy's relative tolerance)."""
    H = np.asarray(H, dtype=np.float64)
    means = np.stack([H[y == k].mean(axis=0) for k in range(num_classes)])
    deviations = H - means[y]
    sigma_w = deviations.T @ deviations / len(H)
    centred = means - H.mean(axis=0)
    sigma_b = centred.T @ centred / num_classes
    tolerance = max(H.shape[1], num_classes) * np.finfo(np.float64).eps
    return float(np.trace(sigma_w @ np.linalg.pinv(sigma_b, rtol=tolerance, hermitian=True)) / num_classes)


def cka_reference(layers: Sequence[np.ndarray]) -> np.ndarray:
    """Linear CKA ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F) of every pair of centred layers (float64)."""
    centred = [h - h.mean(axis=0) for h in (np.asarray(h, dtype=np.float64) for h in layers)]
    out = np.empty((len(centred), len(centred)))
    for a, X in enumerate(centred):
        for b, Y in enumerate(centred):
            out[a, b] = np.linalg.norm(Y.T @ X) ** 2 / (np.linalg.norm(X.T @ X) * np.linalg.norm(Y.T @ Y))
    return out


def class_features(n: int, dim: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """float32 features around random class means, and their labels (every class present)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    means = 3 * rng.standard_normal((classes, dim))
    return (means[y] + rng.standard_normal((n, dim))).astype(np.float32), y


def layer_stack(layers: int, n: int, dim: int, seed: int = 0) -> list[np.ndarray]:
    """float32 layers, each the previous plus noise (so CKA between them varies)."""
    rng = np.random.default_rng(seed)
    stack = [rng.standard_normal((n, dim))]
    for _ in range(layers - 1):
        stack.append(stack[-1] + 0.5 * rng.standard_normal((n, dim)))
    return [h.astype(np.float32) for h in stack]
