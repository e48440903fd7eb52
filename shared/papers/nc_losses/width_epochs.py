"""nc_losses: the width x epochs grid behind the paper's heat maps (test accuracy, |Acc_CE - Acc_X|, NC1).

The official code trains WideResNet-50 at width multipliers 0.25-2 for 100-800 epochs (3 seeds) and
reports the test accuracy of the best-validation checkpoint (45k/5k split). The same grid runs here
for any classifier of ``shared.toolkit.models``: at `cpu` MLPs of several hidden widths on the MNIST
subset, with the last epoch as the checkpoint when there is no validation split.
"""
from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from shared.errors import ParameterError
from shared.parallel import parallel_map
from shared.toolkit.models import create_model
from shared.toolkit.train import Batch, LossFn, TrainSettings, best_validation, train_one_run

MAP_MODELS = ("mlp", "wide_resnet50")
Cell = tuple[float, int]  # (width, epochs)


def check_widths(model: str, widths: Sequence[float]) -> None:
    """Refuse widths the map's ``model`` cannot take (an MLP's hidden width is a whole number)."""
    if model not in MAP_MODELS:
        raise ParameterError("map_model", f"unknown model {model!r}", MAP_MODELS)
    if model == "mlp" and any(float(w) != int(w) for w in widths):
        raise ParameterError("map_widths", f"an MLP's hidden widths are whole numbers, got {list(widths)}",
                             "integers >= 1 for map_model mlp; width multipliers such as 0.25 for wide_resnet50")


def grid_network(model: str, width: float, *, num_classes: int, in_features: int, depth: int) -> nn.Module:
    """The map's network at ``width``: an MLP of ``depth`` hidden layers of that width, or a WideResNet-50
    with that width multiplier."""
    check_widths(model, [width])
    if model == "mlp":
        return create_model("mlp", param="map_model", num_classes=num_classes, in_features=in_features,
                            widths=[int(width)] * depth)
    return create_model("wide_resnet50", param="map_model", num_classes=num_classes, width=width)


def train_grid(build: Callable[[float, str], tuple[nn.Module, LossFn]], widths: Sequence[float],
               epochs: Sequence[int], losses: Sequence[str], seeds: Sequence[int], train: Batch,
               test: Batch, base: TrainSettings, *, device: str | torch.device = "cpu",
               augment: Callable | None = None, val: Batch | None = None, n_jobs: int = 1,
               known: Mapping[Cell, pd.DataFrame] | None = None) -> pd.DataFrame:
    """One row per (width, epochs, loss, seed): train and test accuracy at the best-validation checkpoint
    (:func:`shared.toolkit.train.best_validation`), NC metrics of the last epoch.

    ``build(width, loss)`` gives (model, loss function); ``base`` the settings but for ``epochs``.
    ``known`` maps a cell to histories already trained with exactly these settings (columns ``loss``,
    ``seed``), such as the notebook's main run: their (loss, seed) runs are reused, not trained again.
    """
    known = known or {}
    jobs, cells, reused = [], [], []
    for width in widths:
        for n_epochs in epochs:
            done = known.get((width, n_epochs))
            settings = replace(base, epochs=int(n_epochs))
            for loss in losses:
                for seed in seeds:
                    if done is not None and ((done.loss == loss) & (done.seed == seed)).any():
                        run = done[(done.loss == loss) & (done.seed == seed)]
                        reused.append(run.assign(width=width, epochs=n_epochs))
                        continue
                    jobs.append((partial(build, width), loss, seed, train, test, settings, device, augment, val))
                    cells.append((width, n_epochs))
    trained = [h.rename(columns={"run": "loss"}).assign(width=w, epochs=e)
               for h, (w, e) in zip(parallel_map(train_one_run, jobs, n_jobs, desc="width x epochs"), cells)]
    histories = pd.concat(reused + trained, ignore_index=True)
    rows = best_validation(histories, keys=("width", "epochs", "loss", "seed"))
    return rows.sort_values(["width", "epochs", "loss", "seed"], ignore_index=True)


def seed_means(cells: pd.DataFrame, column: str) -> pd.Series:
    """``column`` averaged over seeds per (width, epochs, loss); a NaN in any seed stays NaN."""
    return cells.groupby(["width", "epochs", "loss"])[column].agg(lambda v: float(np.mean(v.to_numpy())))


def accuracy_gaps(cells: pd.DataFrame, reference: str = "ce") -> pd.DataFrame:
    """|Acc_reference - Acc_X| of the seed-mean test accuracies, per (width, epochs) and loss X != reference:
    columns width, epochs, loss, gap."""
    acc = seed_means(cells, "test_acc").unstack("loss")
    if reference not in acc:
        return pd.DataFrame(columns=["width", "epochs", "loss", "gap"])
    gaps = acc.drop(columns=reference).sub(acc[reference], axis=0).abs()
    return gaps.stack().rename("gap").reset_index()  # keeps NaN (pandas 3)


def map_metrics(cells: pd.DataFrame) -> dict[str, dict[str, dict[str, float]]]:
    """``metrics.json``'s width x epochs map: loss -> "width W, E epochs" -> seed-mean test_acc and nc1."""
    means = cells.groupby(["loss", "width", "epochs"])[["test_acc", "nc1"]].mean()
    return {loss: {f"width {w:g}, {e} epochs": row.to_dict() for (_, w, e), row in table.iterrows()}
            for loss, table in means.groupby(level="loss")}
