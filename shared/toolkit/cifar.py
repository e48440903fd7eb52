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

from shared.errors import ParameterError, reading, require_files

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


# what a CIFAR batch pickle may build: dicts, lists, bytes, str, int (built in) and numpy arrays
SAFE_GLOBALS = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that builds only plain data and numpy arrays: a crafted file cannot run code."""

    def find_class(self, module: str, name: str):
        if (module, name) not in SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}: a CIFAR batch holds only data")
        return super().find_class(module, name)


def _unpickle(path: Path, param: str) -> dict:
    with reading(param, path, "a CIFAR batch (a pickled dict of data and labels)"), open(path, "rb") as f:
        batch = SafeUnpickler(f, encoding="bytes").load()
        if not isinstance(batch, dict):
            raise pickle.UnpicklingError(f"expected a dict, found {type(batch).__name__}")
        return batch


def _read_batches(folder: Path, names: list[str], label_key: bytes, param: str) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for name in names:
        batch = _unpickle(folder / name, param)
        with reading(param, folder / name, f"a CIFAR batch with {b'data'!r} (N x 3072 uint8) and {label_key!r}"):
            xs.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(batch[label_key], dtype=np.int64))
            if len(xs[-1]) != len(ys[-1]):
                raise ValueError(f"{len(xs[-1])} images but {len(ys[-1])} labels")
    return np.concatenate(xs), np.concatenate(ys)


def load_cifar(folder: str | Path | None, variant: str = "cifar10", param: str = "cifar_dir") -> Cifar:
    """Read CIFAR-10 or CIFAR-100 from ``folder``; MissingInputError naming ``param`` if a file is missing."""
    if variant not in LAYOUTS:
        raise ParameterError("variant", f"unknown CIFAR variant {variant!r}", LAYOUTS)
    layout = LAYOUTS[variant]
    files = layout["train"] + layout["test"] + [layout["meta"]]
    root = require_files(param, folder, files, f"{variant.upper()} in its python-pickle format")
    x_train, y_train = _read_batches(root, layout["train"], layout["labels"], param)
    x_test, y_test = _read_batches(root, layout["test"], layout["labels"], param)
    meta = root / layout["meta"]
    with reading(param, meta, f"CIFAR's meta file with {layout['names']!r}"):
        names = [n.decode() for n in _unpickle(meta, param)[layout["names"]]]
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
