"""generalized_nc: data (two-digit MNIST, CIFAR-100 and Tiny-ImageNet fakes), the experiments and the paper preset."""
import math
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from shared.errors import MissingInputError, ParameterError
from shared.papers.generalized_nc import data, experiments as ex
from shared.paths import PRESETS_DIR


def test_closed_forms_are_exact():
    assert ex.closed_forms().error.max() < 1e-7


def test_solve_codes_and_rho_star():
    codes, vectors = ex.solve_codes([[10, 2]], iters=1500, restarts=1)
    assert ex.rho_star(codes, 10, 2) == pytest.approx(1 - math.cos(math.radians(36)), abs=1e-4)
    assert vectors[(10, 2)].shape == (10, 2) and math.isnan(ex.rho_star(codes, 5, 5))


def test_ufm_runs_and_heatmap():
    codes = pd.DataFrame({"K": [8], "d": [2], "rho": [1 - math.cos(2 * math.pi / 8)]})
    heat = ex.ufm_heatmap([[8, 2]], [1, 5], 3, 50, 0, codes)
    assert list(heat.inv_tau) == [1, 5] and heat.ratio.notna().all()
    history, rhos = ex.ufm_runs(8, 2, 3, [1, 5], 50, [0, 1], rho=0.29, eval_points=4)
    final = ex.final_rows(history)
    assert len(final) == 4 and set(rhos) == {(1, 0), (1, 1), (5, 0), (5, 1)} and (final.step == 50).all()


def test_two_digit_mnist_pairs_digits():
    X = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10)
    x2, y2 = data.two_digit(X, y, 3, np.random.default_rng(0))
    assert x2.shape == (300, 4) and np.bincount(y2).tolist() == [3] * 100
    c = 37
    assert np.all(x2[y2 == c][:, :2] == X[3]) and np.all(x2[y2 == c][:, 2:] == X[7])


def test_two_digit_tensors_are_deterministic():
    (xa, ya), (ta, _) = data.two_digit_tensors(2, 1)
    (xb, yb), _ = data.two_digit_tensors(2, 1)
    assert xa.shape == (200, 1568) and ta.shape == (100, 1568) and torch.equal(xa, xb) and torch.equal(ya, yb)


def test_mnist_split_is_standardized():
    Xtr, ytr, Xte, yte = data.mnist_split()
    assert Xtr.shape == (4000, 784) and Xte.shape == (1000, 784)
    assert abs(Xtr.mean()) < 1e-4 and Xtr.std() == pytest.approx(1, abs=1e-4)
    assert np.bincount(ytr).tolist() == [400] * 10


def test_rotation_keeps_shape_and_zero_angle_is_identity():
    x = torch.randn(4, 3, 32, 32)
    assert ex.augment_images(x, torch.Generator().manual_seed(0)).shape == x.shape
    assert torch.allclose(ex.rotate(x, torch.Generator().manual_seed(0), degrees=0.0), x, atol=1e-5)


def test_bad_knobs_raise_parameter_errors():
    with pytest.raises(ParameterError, match="encoder"):
        ex.build_net("vgg", 10, 3, 5, 1.0)
    with pytest.raises(ParameterError, match="inv_tau"):
        ex.check_inv_taus("inv_tau", [5, 7])
    with pytest.raises(ParameterError, match="dataset"):
        data.load_dataset("imagenet")


def write_fake_cifar100(folder, train=200, test=100):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for name, n in [("train", train), ("test", test)]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"fine_labels": (np.arange(n) % 100).tolist(),
                 b"coarse_labels": [0] * n}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "meta").write_bytes(pickle.dumps({b"fine_label_names": [f"f{k}".encode() for k in range(100)]}))
    return folder


def write_fake_tiny_imagenet(folder, wnids=("n01", "n02", "n03"), train=2, val=2):
    from PIL import Image
    rng = np.random.default_rng(0)
    (folder / "val" / "images").mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(wnids) + "\n")
    lines = []
    for k, w in enumerate(wnids):
        (folder / "train" / w / "images").mkdir(parents=True)
        for i in range(train):
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(folder / "train" / w / "images" / f"{w}_{i}.JPEG")
        for i in range(val):
            name = f"val_{k}_{i}.JPEG"
            Image.fromarray(np.full((64, 64, 3), 40 * k, dtype=np.uint8)).save(folder / "val" / "images" / name)
            lines.append(f"{name}\t{w}\t0\t0\t63\t63")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return folder


def test_tiny_imagenet_regroups_val_by_annotations(tmp_path):
    folder = write_fake_tiny_imagenet(tmp_path / "tiny-imagenet-200")
    xtr, ytr, xva, yva = data.load_tiny_imagenet(folder)
    assert xtr.shape == (6, 3, 64, 64) and xtr.dtype == np.uint8 and ytr.tolist() == [0, 0, 1, 1, 2, 2]
    assert yva.tolist() == [0, 0, 1, 1, 2, 2]
    assert np.all(np.abs(xva[yva == 2].astype(int) - 80) <= 2)  # the val image of class 2 (JPEG round-off)
    train, test, K = data.load_dataset("tiny_imagenet", tiny_imagenet_dir=str(folder))
    assert K == 3 and train[0].dtype == torch.float32 and test[0].shape == (6, 3, 64, 64)


def test_missing_tiny_imagenet_names_its_parameter(tmp_path):
    with pytest.raises(MissingInputError, match="tiny_imagenet_dir"):
        data.load_tiny_imagenet(None)
    folder = write_fake_tiny_imagenet(tmp_path / "t")
    (folder / "val" / "val_annotations.txt").unlink()
    with pytest.raises(MissingInputError, match="val_annotations.txt"):
        data.load_tiny_imagenet(folder)


def test_missing_cifar100_names_its_parameter(tmp_path):
    with pytest.raises(MissingInputError, match="cifar100_dir"):
        data.load_dataset("cifar100", cifar100_dir=str(tmp_path / "nowhere"))


def test_paper_preset_trains_resnet18_on_fake_cifar100(tmp_path):
    """The paper preset's encoder, optimizer, schedule, augmentation and checkpoints, end to end on a tiny fake."""
    paper = yaml.safe_load((PRESETS_DIR / "generalized_nc.yaml").read_text())["paper"]
    assert paper["dataset"] == "cifar100" and paper["encoder"] == "resnet18" and paper["feature_dim"] == 10
    train, test, K = data.load_dataset("cifar100", cifar100_dir=str(write_fake_cifar100(tmp_path / "c100", 100, 100)))
    assert K == 100 and train[0].shape == (100, 3, 32, 32)
    train, test = [(x[:, :, :16, :16], y) for x, y in (train, test)]  # 16 px crops: the same code, 4x cheaper
    settings = ex.NetSettings(epochs=1, batch_size=50, lr=paper["lr"], momentum=paper["momentum"],
                              weight_decay=paper["weight_decay"], lr_schedule=paper["lr_schedule"], eval_points=1,
                              augment=paper["augment"], checkpoint_every=1, eval_batch_size=100)
    runs = ex.run_taus("resnet18", train, test, K, 10, [1], settings, seed=0, checkpoint_dir=tmp_path / "ckpt", desc="c100")
    row = runs.history.iloc[-1]
    assert row.epoch == 1 and 0 <= row.test_acc <= 1 and np.isfinite(row.gnc2) and runs.W[1].shape == (100, 10)
    assert (tmp_path / "ckpt" / "c100_invtau1_seed0_epoch1.pt").exists()


def test_mlp_training_learns_and_is_deterministic():
    (xtr, ytr), (xte, yte) = data.mnist_tensors()
    train, test = (xtr[:500], ytr[:500]), (xte[:200], yte[:200])
    settings = ex.NetSettings(epochs=3, eval_points=2)
    a = ex.run_taus("mlp", train, test, 10, 3, [5], settings, seed=0, width=32)
    b = ex.run_taus("mlp", train, test, 10, 3, [5], settings, seed=0, width=32)
    assert a.history.equals(b.history)
    assert a.history.train_acc.iloc[-1] > 0.4  # chance is 0.1
    final = ex.last_epoch(a.history, 0.5827)
    assert final.ratio.iloc[0] == pytest.approx(final.gnc2.iloc[0] / 0.5827)
