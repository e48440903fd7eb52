"""nc_losses: the losses and the data the notebook's knobs choose."""
from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn

from shared.data import load_mnist_subset, stratified_holdout, stratified_split
from shared.errors import ParameterError
from shared.toolkit.cifar import as_tensors, load_cifar
from shared.toolkit.losses import make_loss

DATASETS = ("mnist", "cifar10")
Split = tuple[torch.Tensor, torch.Tensor]


def paper_loss(name: str, cfg: SimpleNamespace) -> nn.Module:
    """The loss ``name`` with the paper's hyper-parameters (``ls_alpha``, ``fl_gamma``, ``mse_rescale``)."""
    return make_loss(name, cfg.ls_alpha, cfg.fl_gamma, cfg.mse_rescale, param="losses")


def load_data(cfg: SimpleNamespace) -> list[Split]:
    """(train, test) of ``cfg.dataset``: a stratified MNIST subset, or CIFAR-10 from ``cfg.cifar_dir``."""
    if cfg.dataset == "mnist":
        X, y = load_mnist_subset()
        train_idx, test_idx = stratified_split(y, cfg.train_per_class, cfg.test_per_class, seed=cfg.seed)
        return [(torch.from_numpy(X[i]), torch.from_numpy(y[i])) for i in (train_idx, test_idx)]
    if cfg.dataset == "cifar10":
        return as_tensors(load_cifar(cfg.cifar_dir, "cifar10", param="cifar_dir"))
    raise ParameterError("dataset", f"unknown dataset {cfg.dataset!r}", DATASETS)


def load_cifar100(cfg: SimpleNamespace) -> list[Split] | None:
    """(train, test) of CIFAR-100 from ``cfg.cifar100_dir``, or None when it is not set."""
    if not cfg.cifar100_dir:
        return None
    return as_tensors(load_cifar(cfg.cifar100_dir, "cifar100", param="cifar100_dir"))


def hold_out_validation(train: Split, per_class: int, seed: int) -> tuple[Split, Split | None]:
    """(train, validation): ``per_class`` images of every class held out, seeded (the official 45k/5k split
    is ``per_class`` = 500 of CIFAR-10); (train, None) for 0."""
    if per_class == 0:
        return train, None
    x, y = train
    try:
        keep, held = stratified_holdout(y.numpy(), per_class, seed)
    except ValueError as err:
        raise ParameterError("val_per_class", str(err), "0, or fewer than the training images of a class") from None
    return (x[keep], y[keep]), (x[held], y[held])
