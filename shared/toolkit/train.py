"""One supervised training loop for classifiers whose forward returns (logits, features).

SGD with momentum and weight decay, MultiStepLR at fractions of the epochs (the official
``nc_loss`` schedule: x0.1 at 3/7 and 5/7), gradient-norm clipping, and on a log-spaced epoch
grid: train/test accuracy and the neural-collapse metrics of the non-augmented training features.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from shared.parallel import parallel_map
from shared.progress import progress
from shared.toolkit.neural_collapse import collapse_metrics

Batch = tuple[torch.Tensor, torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation and evaluation knobs of :func:`train_classifier`."""

    epochs: int
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    milestones: Sequence[float] = (3 / 7, 5 / 7)  # fractions of ``epochs`` where the lr is multiplied by lr_decay
    lr_decay: float = 0.1
    grad_clip: float | None = 2.0  # max gradient norm; None: no clipping
    eval_points: int = 20  # size of the log-spaced evaluation grid
    eval_batch_size: int = 1000
    center_w: bool = True  # NC2/NC3 centre the classifier rows (official default)


def log_spaced(last: int, n: int) -> list[int]:
    """About ``n`` distinct integers from 1 to ``last``, log-spaced, always ending at ``last``."""
    return sorted(set(np.geomspace(1, last, max(n, 1)).round().astype(int).tolist()) | {last})


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and features of ``x`` in eval mode, on the CPU."""
    model.eval()
    outputs = [model(x[i : i + batch_size].to(device)) for i in range(0, len(x), batch_size)]
    return tuple(torch.cat([o[j] for o in outputs]).float().cpu() for j in (0, 1))


def accuracy(model: nn.Module, data: Batch, settings: TrainSettings, device: torch.device) -> float:
    """Accuracy of ``model`` on ``data`` = (x, y) in eval mode."""
    logits, _ = predict(model, data[0], settings.eval_batch_size, device)
    return (logits.argmax(1) == data[1].cpu()).float().mean().item()


def evaluate(model: nn.Module, train: Batch, test: Batch | None, settings: TrainSettings, device: torch.device,
             val: Batch | None = None) -> dict[str, float]:
    """Train (and test, validation) accuracy and NC metrics of the training features (no augmentation)."""
    logits, features = predict(model, train[0], settings.eval_batch_size, device)
    labels = train[1].cpu()
    head = model.fc
    row = {"train_acc": (logits.argmax(1) == labels).float().mean().item()}
    for split, data in (("test_acc", test), ("val_acc", val)):
        if data is not None:
            row[split] = accuracy(model, data, settings, device)
    row.update(collapse_metrics(features.numpy(), labels.numpy(), head.weight, head.bias, settings.center_w))
    return row


def train_classifier(
    model: nn.Module,
    loss_fn: LossFn,
    train: Batch,
    test: Batch | None,
    settings: TrainSettings,
    device: str | torch.device = "cpu",
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    seed: int = 0,
    desc: str = "train",
    val: Batch | None = None,
) -> pd.DataFrame:
    """Train ``model`` (last layer ``model.fc``) on ``train`` = (x, y); return the history, one row per grid epoch.

    ``augment(x_batch, generator)`` transforms training batches only; the shuffling and the
    augmentation draw from a generator seeded with ``seed``. With a validation split ``val`` the
    history has a ``val_acc`` column (:func:`best_validation` picks a checkpoint by it).
    """
    device = torch.device(device)
    model.to(device)
    x_train, y_train = (t.to(device) for t in train)
    test, val = (None if data is None else tuple(t.to(device) for t in data) for data in (test, val))
    optimizer = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay)
    milestones = [int(f * settings.epochs) for f in settings.milestones]
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=settings.lr_decay)
    generator = torch.Generator().manual_seed(seed)
    grid = set(log_spaced(settings.epochs, settings.eval_points))
    history = []
    for epoch in progress(range(1, settings.epochs + 1), desc=desc, leave=False, mininterval=2):
        model.train()
        order = torch.randperm(len(x_train), generator=generator).to(device)
        losses = []
        for i in range(0, len(order), settings.batch_size):
            idx = order[i : i + settings.batch_size]
            x = x_train[idx] if augment is None else augment(x_train[idx], generator)
            loss = loss_fn(model(x)[0], y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if settings.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
            losses.append(loss.detach())
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        if epoch in grid:
            row = {"epoch": epoch, "lr": lr, "train_loss": torch.stack(losses).mean().item()}
            history.append(row | evaluate(model, (x_train, y_train), test, settings, device, val))
    return pd.DataFrame(history)


def train_one_run(build: Callable[[str], tuple[nn.Module, LossFn]], name: str, seed: int, train: Batch,
                  test: Batch | None, settings: TrainSettings, device: str | torch.device = "cpu",
                  augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
                  val: Batch | None = None) -> pd.DataFrame:
    """Seed torch with ``seed``, train ``build(name)`` = (model, loss); its history with ``run`` and ``seed``
    columns."""
    torch.manual_seed(seed)
    model, loss_fn = build(name)
    history = train_classifier(model, loss_fn, train, test, settings, device, augment, seed,
                               desc=f"{name} seed {seed}", val=val)
    return history.assign(run=name, seed=seed)


def train_runs(
    build: Callable[[str], tuple[nn.Module, LossFn]],
    names: Iterable[str],
    seeds: Iterable[int],
    train: Batch,
    test: Batch | None,
    settings: TrainSettings,
    device: str | torch.device = "cpu",
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    n_jobs: int = 1,
    val: Batch | None = None,
) -> pd.DataFrame:
    """:func:`train_one_run` for every name and seed, in ``n_jobs`` one-thread processes; histories stacked.

    A run depends only on its name and seed, so the rows do not depend on ``n_jobs`` (beyond the
    float rounding of the thread count). ``build`` may be a lambda (the processes receive it by value).
    """
    jobs = [(build, name, seed, train, test, settings, device, augment, val) for name in names for seed in seeds]
    return pd.concat(parallel_map(train_one_run, jobs, n_jobs, desc="runs"), ignore_index=True)


def best_validation(history: pd.DataFrame, keys: Sequence[str] = ("run", "seed")) -> pd.DataFrame:
    """Per run (``keys``): the test accuracy of the logged epoch with the best validation accuracy (the first
    such epoch) as ``test_acc``, its epoch as ``best_epoch``, and the last epoch's other columns.

    Without a ``val_acc`` column the last epoch stands for the checkpoint. A NaN accuracy at the chosen
    epoch stays NaN.
    """
    keys = list(keys)
    ordered = history.sort_values([*keys, "epoch"])
    last = ordered.groupby(keys, sort=False).tail(1).set_index(keys)
    if "val_acc" not in history:
        return last.assign(best_epoch=last.epoch).reset_index()
    best = ordered.loc[ordered.val_acc.fillna(-np.inf).groupby([ordered[k] for k in keys], sort=False).idxmax()]
    best = best.set_index(keys)
    return last.assign(test_acc=best.test_acc, best_epoch=best.epoch).reset_index()
