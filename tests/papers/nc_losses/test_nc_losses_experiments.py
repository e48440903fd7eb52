"""nc_losses: the data and losses the notebook's knobs choose, and its NC-curve figure."""
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from shared.errors import MissingInputError, ParameterError
from shared.papers.nc_losses.experiments import load_cifar100, load_data, paper_loss
from shared.papers.nc_losses.figures import NC, nc_curves


def config(**kw):
    base = dict(dataset="mnist", train_per_class=3, test_per_class=2, seed=0, cifar_dir=None,
                cifar100_dir=None, ls_alpha=0.05, fl_gamma=3.0, mse_rescale=15.0)
    return SimpleNamespace(**{**base, **kw})


def test_mnist_split_is_stratified_and_disjoint():
    (x_train, y_train), (x_test, y_test) = load_data(config())
    assert torch.bincount(y_train).tolist() == [3] * 10 and torch.bincount(y_test).tolist() == [2] * 10
    assert not any(torch.equal(a, b) for a in x_train for b in x_test)


def test_unknown_dataset_and_missing_cifar_name_their_knob(tmp_path):
    with pytest.raises(ParameterError, match="dataset"):
        load_data(config(dataset="svhn"))
    with pytest.raises(MissingInputError, match="cifar_dir"):
        load_data(config(dataset="cifar10", cifar_dir=str(tmp_path)))
    assert load_cifar100(config()) is None


def test_paper_loss_uses_the_knobs():
    logits, target = torch.zeros(4, 10), torch.arange(4)
    assert paper_loss("ce", config())(logits, target).item() == pytest.approx(torch.log(torch.tensor(10.0)).item())
    with pytest.raises(ParameterError, match="losses"):
        paper_loss("hinge", config())


def test_nc_curves_draws_one_panel_per_metric():
    history = pd.DataFrame([{"epoch": e, "loss": l, **{m: 1.0 / e for m in NC}} for e in (1, 2, 4) for l in ("ce", "mse")])
    fig = nc_curves(history, "epoch", "title")
    assert len([ax for ax in fig.axes if ax.get_title()]) == len(NC)
