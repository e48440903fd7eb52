"""nc_losses: the width x epochs grid (shared.papers.nc_losses.width_epochs) and the validation split."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from shared.errors import ParameterError
from shared.papers.nc_losses.experiments import hold_out_validation, load_data, paper_loss
from shared.papers.nc_losses.figures import width_epoch_maps
from shared.papers.nc_losses.width_epochs import (accuracy_gaps, check_widths, grid_network, map_metrics,
                                                  train_grid)
from shared.paths import PRESETS_DIR
from shared.toolkit.cifar import as_tensors, load_cifar, random_crop_flip
from shared.toolkit.train import TrainSettings, train_runs

CFG = SimpleNamespace(dataset="mnist", train_per_class=6, test_per_class=2, seed=0, ls_alpha=0.05, fl_gamma=3.0,
                      mse_rescale=15.0)
SETTINGS = TrainSettings(epochs=1, batch_size=16, lr=0.05, weight_decay=5e-3, eval_points=3)


def build(width, loss):
    return grid_network("mlp", width, num_classes=10, in_features=784, depth=2), paper_loss(loss, CFG)


@pytest.fixture(scope="module")
def mnist():
    return load_data(CFG)


def test_grid_has_one_row_per_cell_and_reuses_known_runs(mnist):
    train, test = mnist
    fresh = train_grid(build, [8, 16], [1, 3], ["ce", "mse"], [0], train, test, SETTINGS)
    assert len(fresh) == 8 and set(fresh.columns) >= {"width", "epochs", "loss", "seed", "test_acc", "nc1", "best_epoch"}
    assert (fresh.best_epoch == fresh.epochs).all()  # no validation split: the last epoch
    main = train_runs(lambda loss: build(16, loss), ["ce", "mse"], [0], train, test,
                      TrainSettings(**{**SETTINGS.__dict__, "epochs": 3})).rename(columns={"run": "loss"})
    reused = train_grid(build, [8, 16], [1, 3], ["ce", "mse"], [0], train, test, SETTINGS, known={(16, 3): main})
    pd.testing.assert_frame_equal(reused, fresh)


def test_validation_split_picks_the_checkpoint(mnist):
    train, test = mnist
    kept, val = hold_out_validation(train, 2, seed=0)
    assert torch.bincount(val[1]).tolist() == [2] * 10 and torch.bincount(kept[1]).tolist() == [4] * 10
    assert len(kept[0]) + len(val[0]) == len(train[0])
    cells = train_grid(build, [8], [4], ["ce"], [0], kept, test, SETTINGS, val=val)
    assert 1 <= cells.best_epoch.item() <= 4
    assert hold_out_validation(train, 0, seed=0) == (train, None)
    with pytest.raises(ParameterError, match="val_per_class"):
        hold_out_validation(train, 6, seed=0)


def test_widths_and_model_are_checked_by_name():
    with pytest.raises(ParameterError, match="map_widths"):
        check_widths("mlp", [64, 0.5])
    with pytest.raises(ParameterError, match="map_model"):
        check_widths("vgg", [1])
    check_widths("wide_resnet50", [0.25, 2.0])


def test_gaps_metrics_and_figure():
    cells = pd.DataFrame([{"width": w, "epochs": e, "loss": loss, "seed": s, "test_acc": acc, "nc1": 0.1 / e}
                          for w in (8, 16) for e in (1, 3) for s in (0, 1)
                          for loss, acc in (("ce", 0.9), ("mse", 0.88 + 0.01 * s))])
    gaps = accuracy_gaps(cells)
    assert set(gaps.loss) == {"mse"} and np.allclose(gaps.gap, 0.015)
    assert accuracy_gaps(cells[cells.loss == "mse"]).empty
    metrics = map_metrics(cells)
    assert metrics["mse"]["width 16, 3 epochs"] == pytest.approx({"test_acc": 0.885, "nc1": 0.1 / 3})
    fig = width_epoch_maps(cells, ["ce", "mse"], "t")
    assert len([ax for ax in fig.axes if ax.get_title()]) == 5  # 2 accuracy, 2 NC1, 1 gap panel


@pytest.mark.slow
def test_paper_map_trains_wide_resnets_on_fake_cifar(tmp_path):
    """The paper preset's map (WideResNet-50 widths, best-validation checkpoint) end to end on a tiny fake CIFAR-10."""
    from tests.toolkit.test_cifar import write_fake_cifar10

    paper = yaml.safe_load((PRESETS_DIR / "nc_losses.yaml").read_text())["paper"]
    assert paper["map_model"] == "wide_resnet50" and paper["val_per_class"] > 0
    train, test = as_tensors(load_cifar(write_fake_cifar10(tmp_path / "c10", per_batch=4, test=4), param="cifar_dir"))
    train, val = hold_out_validation(train, 1, seed=0)
    cfg = SimpleNamespace(**{k: paper[k] for k in ("ls_alpha", "fl_gamma", "mse_rescale")})
    settings = TrainSettings(epochs=1, batch_size=10, lr=paper["lr"], momentum=paper["momentum"],
                             weight_decay=paper["weight_decay"], grad_clip=paper["grad_clip"], eval_points=2)
    cells = train_grid(lambda width, loss: (grid_network(paper["map_model"], width, num_classes=10, in_features=0,
                                                         depth=0), paper_loss(loss, cfg)),
                       paper["map_widths"][:1], [1, 2], paper["losses"][:2], [0], train, test, settings,
                       augment=random_crop_flip, val=val)
    assert len(cells) == 4 and np.isfinite(cells[["test_acc", "nc1", "train_acc"]].to_numpy()).all()
