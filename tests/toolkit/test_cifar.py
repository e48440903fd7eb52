"""CIFAR loading from the python-pickle format, augmentation, and the nc_losses paper preset end to end."""
import pickle

import numpy as np
import pytest
import torch
import yaml

from shared.toolkit.cifar import as_tensors, load_cifar, normalize, random_crop_flip
from shared.errors import MissingInputError
from shared.toolkit.losses import make_loss
from shared.toolkit.models import create_model
from shared.paths import PRESETS_DIR
from shared.toolkit.train import TrainSettings, train_runs


def write_fake_cifar10(folder, per_batch: int = 6, test: int = 10, seed: int = 0):
    """A CIFAR-10 folder in the exact python-pickle layout: random images, labels cycling through the classes."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    batches = [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", test)]
    for i, (name, n) in enumerate(batches):
        data = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": ((np.arange(n) + i * n) % 10).tolist()}
        (folder / name).write_bytes(pickle.dumps(data))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [f"c{k}".encode() for k in range(10)]}))
    return folder


def write_fake_cifar100(folder, train: int = 20, test: int = 8, seed: int = 0):
    """A CIFAR-100 folder in the exact python-pickle layout: random images, fine labels cycling through the classes."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in [("train", train), ("test", test)]:
        data = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"fine_labels": (np.arange(n) % 100).tolist(), b"coarse_labels": [0] * n}
        (folder / name).write_bytes(pickle.dumps(data))
    (folder / "meta").write_bytes(pickle.dumps({b"fine_label_names": [f"f{k}".encode() for k in range(100)]}))
    return folder


def test_cifar10_round_trip(tmp_path):
    folder = write_fake_cifar10(tmp_path / "cifar-10-batches-py")
    data = load_cifar(folder)
    assert data.x_train.shape == (30, 3, 32, 32) and data.x_train.dtype == np.uint8
    assert data.y_train.shape == (30,) and data.x_test.shape == (10, 3, 32, 32)
    assert data.classes == [f"c{k}" for k in range(10)]
    first = pickle.loads((folder / "data_batch_1").read_bytes())
    np.testing.assert_array_equal(data.x_train[0, 1].ravel(), first[b"data"][0, 1024:2048])


def test_cifar100_uses_fine_labels(tmp_path):
    data = load_cifar(write_fake_cifar100(tmp_path / "c100"), variant="cifar100", param="cifar100_dir")
    assert data.x_train.shape == (20, 3, 32, 32) and len(data.classes) == 100
    assert list(data.y_train[:3]) == [0, 1, 2] and data.y_test.max() < 100


def test_missing_folder_names_parameter_path_and_files(tmp_path):
    with pytest.raises(MissingInputError, match=r"parameter 'cifar_dir'.*nowhere.*data_batch_1.*batches.meta"):
        load_cifar(tmp_path / "nowhere")
    with pytest.raises(MissingInputError, match=r"parameter 'cifar_dir'.*not set"):
        load_cifar(None)


def test_missing_file_is_listed(tmp_path):
    folder = write_fake_cifar10(tmp_path / "c10")
    (folder / "test_batch").unlink()
    with pytest.raises(MissingInputError, match=r"missing: test_batch"):
        load_cifar(folder)


def test_normalize_and_augment_keep_shapes():
    x = normalize(np.full((4, 3, 32, 32), 128, dtype=np.uint8))
    assert x.dtype == torch.float32 and x.shape == (4, 3, 32, 32)
    out = random_crop_flip(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    # a crop shifted by at most 4 pixels keeps at least 28 x 28 of the original pixels per channel
    assert (out[:, 0] == x[0, 0, 0, 0]).flatten(1).sum(1).min() >= 28 * 28


def test_augment_is_a_shifted_window():
    x = torch.arange(2 * 32 * 32, dtype=torch.float32).view(1, 2, 32, 32)
    out = random_crop_flip(x, torch.Generator().manual_seed(3), padding=0)
    assert torch.equal(out, x) or torch.equal(out, x.flip(3))


@pytest.mark.slow
def test_paper_preset_trains_on_fake_cifar(tmp_path):
    """The paper preset's dataset, model, losses and optimiser, end to end on a tiny fake CIFAR-10."""
    paper = yaml.safe_load((PRESETS_DIR / "nc_losses.yaml").read_text())["paper"]
    data = load_cifar(write_fake_cifar10(tmp_path / "c10", per_batch=2, test=4), param="cifar_dir")
    train, test = as_tensors(data)
    settings = TrainSettings(epochs=2, batch_size=10, lr=paper["lr"], momentum=paper["momentum"], weight_decay=paper["weight_decay"], grad_clip=paper["grad_clip"], eval_points=2)

    def build(loss):
        return create_model(paper["model"], num_classes=len(data.classes)), make_loss(loss, paper["ls_alpha"], paper["fl_gamma"], paper["mse_rescale"])

    history = train_runs(build, paper["losses"][:2], [0], train, test, settings, augment=random_crop_flip if paper["augment"] else None)
    assert list(history["epoch"]) == [1, 2, 1, 2] and list(history["run"]) == paper["losses"][:1] * 2 + paper["losses"][1:2] * 2
    assert np.isfinite(history[["train_loss", "nc1", "nc2_w", "nc3", "test_acc"]].to_numpy()).all()
