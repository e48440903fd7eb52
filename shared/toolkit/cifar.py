"""CIFAR-10/100 from a local folder in the standard python-pickle format, and their augmentation.

CIFAR-10 (``cifar-10-batches-py``): ``data_batch_1`` .. ``data_batch_5``, ``test_batch``,
``batches.meta``. CIFAR-100 (``cifar-100-python``): ``train``, ``test``, ``meta``. Each batch is
a pickled dict with ``b"data"`` (N x 3072 uint8, channel-major) and ``b"labels"`` (CIFAR-10) or
``b"fine_labels"`` (CIFAR-100).
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from shared.errors import ParameterError, require_files

LAYOUTS = {
    "cifar10": {
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "meta": "batches.meta",
        "labels": b"labels",
        "names": b"label_names",
    },
    "cifar100": {
        "train": ["train"],
        "test": ["test"],
        "meta": "meta",
        "labels": b"fine_labels",
        "names": b"fine_label_names",
    },
}
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


@dataclass(frozen=True)
class Cifar:
    """Images as uint8 (N, 3, 32, 32), labels as int64, and the class names."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


def _read_batches(folder: Path, names: list[str], label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    batches = [_unpickle(folder / n) for n in names]
    x = np.concatenate([np.asarray(b[b"data"], dtype=np.uint8) for b in batches]).reshape(-1, 3, 32, 32)
    y = np.concatenate([np.asarray(b[label_key], dtype=np.int64) for b in batches])
    return x, y


def load_cifar(folder: str | Path | None, variant: str = "cifar10", param: str = "cifar_dir") -> Cifar:
    """Read CIFAR-10 or CIFAR-100 from ``folder``; MissingInputError naming ``param`` if a file is missing."""
    if variant not in LAYOUTS:
        raise ParameterError("variant", f"unknown CIFAR variant {variant!r}", LAYOUTS)
    layout = LAYOUTS[variant]
    files = layout["train"] + layout["test"] + [layout["meta"]]
    root = require_files(param, folder, files, f"{variant.upper()} in its python-pickle format")
    x_train, y_train = _read_batches(root, layout["train"], layout["labels"])
    x_test, y_test = _read_batches(root, layout["test"], layout["labels"])
    names = [n.decode() for n in _unpickle(root / layout["meta"])[layout["names"]]]
    return Cifar(x_train, y_train, x_test, y_test, names)


def normalize(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 images (N, 3, 32, 32) to float32 tensors standardised with the CIFAR-10 channel statistics."""
    x = torch.as_tensor(x).float() / 255.0
    mean, std = (torch.tensor(v, device=x.device).view(1, 3, 1, 1) for v in (MEAN, STD))
    return (x - mean) / std


def as_tensors(data: Cifar) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """(train, test) pairs of normalised images and int64 labels, ready for ``shared.toolkit.train``."""
    return tuple((normalize(x), torch.as_tensor(y)) for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)))


def random_crop_flip(x: torch.Tensor, generator: torch.Generator | None = None, padding: int = 4) -> torch.Tensor:
    """Per-image RandomCrop(32, padding) and horizontal flip of a batch (N, C, H, W).

    The padding is zero in the normalised space (the mean colour), not black as in torchvision.
    """
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator, device="cpu").to(x.device)
    rows = (offsets[0, :, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (offsets[1, :, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channels = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    out = padded[batch, channels, rows, cols]
    flip = (torch.rand(n, generator=generator, device="cpu") < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], out.flip(3), out)
