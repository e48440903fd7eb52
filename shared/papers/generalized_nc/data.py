"""generalized_nc: the data sets (MNIST-5k with d = 3, two-digit MNIST with K = 100, CIFAR-100, Tiny-ImageNet)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from shared.data import load_mnist_subset, stratified_split
from shared.errors import MissingInputError, ParameterError, reading, require_files
from shared.toolkit.cifar import as_tensors, load_cifar

DATASETS = ("two_digit_mnist", "cifar100", "tiny_imagenet")
Split = tuple[torch.Tensor, torch.Tensor]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def mnist_split(split_seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST-5k split 400/100 per class (split seed fixed), pixels standardized by the train set's scalar mean/std."""
    X, y = load_mnist_subset()
    tr, te = stratified_split(y, 400, 100, seed=split_seed)
    mean, std = X[tr].mean(), X[tr].std()
    return (X[tr] - mean) / std, y[tr], (X[te] - mean) / std, y[te]


def mnist_tensors(split_seed: int = 0) -> tuple[Split, Split]:
    Xtr, ytr, Xte, yte = mnist_split(split_seed)
    return ((torch.from_numpy(Xtr).float(), torch.from_numpy(ytr).long()),
            (torch.from_numpy(Xte).float(), torch.from_numpy(yte).long()))


def two_digit(X: np.ndarray, y: np.ndarray, per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """K = 100 classes: class 10a + b is a digit-a image next to a digit-b image, drawn with replacement."""
    by = [np.flatnonzero(y == k) for k in range(10)]
    Xs, ys = [], []
    for c in range(100):
        a, b = divmod(c, 10)
        ia, ib = rng.choice(by[a], per_class), rng.choice(by[b], per_class)
        Xs.append(np.concatenate([X[ia], X[ib]], 1))
        ys.append(np.full(per_class, c))
    return np.concatenate(Xs).astype(np.float32), np.concatenate(ys).astype(np.int64)


def two_digit_tensors(per_class: int, test_per_class: int, pair_seed: int = 0) -> tuple[Split, Split]:
    """Two-digit MNIST (K = 100): train pairs from the MNIST-5k train split, test pairs from its test split."""
    Xtr, ytr, Xte, yte = mnist_split(0)
    rng = np.random.default_rng(pair_seed)
    train = two_digit(Xtr, ytr, per_class, rng)
    test = two_digit(Xte, yte, test_per_class, rng)
    return tuple((torch.from_numpy(x), torch.from_numpy(t)) for x, t in (train, test))


TINY_EXPECTED = ("Tiny-ImageNet in its standard layout (tiny-imagenet-200): wnids.txt, train/<wnid>/images/*.JPEG, "
                 "val/images/*.JPEG and val/val_annotations.txt")


def _read_images(paths: list[Path], param: str) -> np.ndarray:
    from PIL import Image

    out = np.empty((len(paths), 3, 64, 64), dtype=np.uint8)
    for i, path in enumerate(paths):
        with reading(param, path, "a 64x64 image"):
            with Image.open(path) as image:
                out[i] = np.asarray(image.convert("RGB").resize((64, 64))).transpose(2, 0, 1)
    return out


def load_tiny_imagenet(folder: str | Path | None, param: str = "tiny_imagenet_dir") -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_val, y_val) as uint8 (N, 3, 64, 64) and int64 labels; ``val/`` regrouped by
    ``val_annotations.txt``. MissingInputError naming ``param`` if the layout is incomplete."""
    root = require_files(param, folder, ["wnids.txt", "train", "val/images", "val/val_annotations.txt"], TINY_EXPECTED)
    with reading(param, root / "wnids.txt", "a list of WordNet ids, one a line"):
        wnids = [w.strip() for w in (root / "wnids.txt").read_text().splitlines() if w.strip()]
    index = {w: i for i, w in enumerate(wnids)}
    train_paths, train_labels = [], []
    for w in wnids:
        files = sorted((root / "train" / w / "images").glob("*.JPEG"))
        if not files:
            raise MissingInputError(param, root, TINY_EXPECTED + f" (no images in train/{w}/images)")
        train_paths += files
        train_labels += [index[w]] * len(files)
    val_paths, val_labels = [], []
    with reading(param, root / "val/val_annotations.txt", "tab-separated lines: file, wnid, box"):
        for line in (root / "val/val_annotations.txt").read_text().splitlines():
            if line.strip():
                name, wnid = line.split("\t")[:2]
                val_paths.append(root / "val/images" / name)
                val_labels.append(index[wnid])
    missing = [p.name for p in val_paths if not p.exists()]
    if missing:
        raise MissingInputError(param, root, TINY_EXPECTED + f" (missing: val/images/{missing[0]} and {len(missing) - 1} more)")
    return (_read_images(train_paths, param), np.array(train_labels, dtype=np.int64),
            _read_images(val_paths, param), np.array(val_labels, dtype=np.int64))


def normalize_imagenet(x: np.ndarray) -> torch.Tensor:
    x = torch.as_tensor(x).float() / 255.0
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD))
    return (x - mean) / std


def load_dataset(dataset: str, per_class: int = 50, test_per_class: int = 10, cifar100_dir: str | None = None,
                 tiny_imagenet_dir: str | None = None) -> tuple[Split, Split, int]:
    """(train, test, K) of the K > d + 1 experiment: two-digit MNIST, CIFAR-100 or Tiny-ImageNet."""
    if dataset == "two_digit_mnist":
        return (*two_digit_tensors(per_class, test_per_class), 100)
    if dataset == "cifar100":
        return (*as_tensors(load_cifar(cifar100_dir, "cifar100", param="cifar100_dir")), 100)
    if dataset == "tiny_imagenet":
        xtr, ytr, xte, yte = load_tiny_imagenet(tiny_imagenet_dir)
        K = int(max(ytr.max(), yte.max())) + 1  # 200 for the real set
        return (normalize_imagenet(xtr), torch.from_numpy(ytr)), (normalize_imagenet(xte), torch.from_numpy(yte)), K
    raise ParameterError("dataset", f"unknown dataset {dataset!r}", DATASETS)
