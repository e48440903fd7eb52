"""nc_transfer: fine-tuning methods, the skip connection, the sabotaged probe, and the paper-scale inputs on tiny fakes."""
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from shared.errors import MissingInputError, ParameterError
from shared.papers.nc_transfer.experiments import (FTNet, Transfer, cifar_transfer, evaluate_encoder, finetune_inputs,
                                                    finetune_model, layer_table, load_checkpoint, match_width, pretrain,
                                                    read_imagefolder, roll_shift, run_finetune, run_variants, spearman,
                                                    trainable)
from shared.toolkit.models import create_model


def mlp_encoder(seed=0):
    torch.manual_seed(seed)
    return create_model("mlp", in_features=784, num_classes=5, widths=(512, 512, 128)).eval()


def test_tuned_parameter_counts_of_the_cpu_mlp():
    enc = mlp_encoder()
    counts = {m: trainable(finetune_model(enc, m, 5, 0)) for m in ("lp", "layer", "scl", "full")}
    assert counts == {"lp": 645, "layer": 66565, "scl": 264325, "full": 733189}


def test_one_step_changes_only_the_selected_parameters_and_not_bn_statistics():
    enc = mlp_encoder()
    net = finetune_model(enc, "scl", 5, 0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    net.train()
    assert not net.training and not net.middle[1].training  # BN frozen
    x, y = torch.randn(16, 784), torch.randint(0, 5, (16,))
    torch.nn.functional.cross_entropy(net(x)[0], y).backward()
    opt.step()
    after = net.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(("middle.", "fc.")) for k in changed)
    assert not any("running" in k for k in changed)


def test_scl_features_are_the_original_features_plus_the_pooled_block():
    enc = mlp_encoder()
    x = torch.randn(8, 784)
    plain, skip = FTNet(enc, 5, skip=False).eval(), FTNet(enc, 5, skip=True).eval()
    with torch.no_grad():
        z = enc.features[:7](x)
        expected = enc(x)[1] + z.view(8, 128, 4).mean(-1)
        assert torch.allclose(skip(x)[1], expected, atol=1e-5)
        assert torch.allclose(plain(x)[1], enc(x)[1], atol=1e-6)


def test_match_width_pools_or_repeats():
    z = torch.arange(8.0).view(1, 8)
    assert match_width(z, 4).tolist() == [[0.5, 2.5, 4.5, 6.5]]
    assert match_width(z[:, :2], 4).tolist() == [[0.0, 0.0, 1.0, 1.0]]


def test_spearman_of_a_decreasing_sequence_is_minus_one_and_nan_is_nan():
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(spearman([1, 2, np.nan], [1, 2, 3]))


def tiny_transfer(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    ys = torch.arange(5).repeat_interleave(n)
    patterns = torch.randn(10, 784, generator=g)
    xs = torch.randn(5 * n, 784, generator=g) + patterns[ys]
    yd = torch.arange(5).repeat_interleave(n)
    xd = torch.randn(5 * n, 784, generator=g) + patterns[yd + 5]
    return Transfer((xs, ys), (xd, yd), 5, 5, (784,))


def test_shuffled_downstream_labels_break_the_probe():
    data = tiny_transfer()
    enc = pretrain("ce", data, "mlp", 2, 0.05, 32, 5e-4, 0)
    good = evaluate_encoder(enc, data, 20, 0)
    bad = evaluate_encoder(enc, data, 20, 0, shuffle_labels=True)
    assert good["probe_acc"] > 0.9 and bad["probe_acc"] < 0.5
    assert bad["downstream_nc1"] > good["downstream_nc1"]
    assert set(layer_table(__import__("pandas").DataFrame([{"variant": "ce", "seed": 0} | good])).layer) == {0, 1, 2, 3}


def test_encoders_trained_in_two_processes_equal_a_one_thread_run():
    import pandas as pd

    data = tiny_transfer(10)
    args = (data, ["random", "ce"], [0], "mlp", 1, 0.05, 16, 5e-4, 5)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        serial, encoders = run_variants(*args)
    finally:
        torch.set_num_threads(threads)
    parallel, parallel_encoders = run_variants(*args, n_jobs=2)
    pd.testing.assert_frame_equal(serial, parallel)
    assert set(parallel_encoders) == set(encoders) == {("random", 0), ("ce", 0)}


def test_variants_train_head_and_augmentation_paths():
    data = tiny_transfer(10)
    for v in ("random", "ce_head_aug", "ce_ls0.3"):
        enc = pretrain(v, data, "mlp", 1, 0.05, 16, 5e-4, 0)
        assert not enc.training and enc.fc.out_features == 5
    x = torch.arange(784.0).view(1, 784)
    shifted = roll_shift((784,))(x, torch.Generator().manual_seed(0))
    assert sorted(shifted.flatten().tolist()) == sorted(x.flatten().tolist())


# ------------------------------------------------------------ paper scale on tiny fakes
def write_cifar(folder, variant, n=12, classes=10):
    folder.mkdir()
    rng = np.random.default_rng(0)
    key = b"labels" if variant == "cifar10" else b"fine_labels"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"] if variant == "cifar10" else ["train", "test"]
    for name in names:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), key: list(rng.integers(0, classes, n))}
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = "batches.meta" if variant == "cifar10" else "meta"
    names_key = b"label_names" if variant == "cifar10" else b"fine_label_names"
    (folder / meta).write_bytes(pickle.dumps({names_key: [f"c{i}".encode() for i in range(classes)]}))


def test_cifar_transfer_reads_both_pickle_folders_and_names_missing_ones(tmp_path):
    write_cifar(tmp_path / "c100", "cifar100", classes=100)
    write_cifar(tmp_path / "c10", "cifar10")
    data = cifar_transfer(str(tmp_path / "c100"), str(tmp_path / "c10"))
    assert data.source[0].shape == (12, 3, 32, 32) and data.downstream[0].shape == (72, 3, 32, 32)
    assert (data.source_classes, data.downstream_classes) == (100, 10)
    with pytest.raises(MissingInputError, match="source_dir"):
        cifar_transfer(None, str(tmp_path / "c10"))
    with pytest.raises(MissingInputError, match="downstream_dir"):
        cifar_transfer(str(tmp_path / "c100"), str(tmp_path / "nowhere"))


def write_imagefolder(root, classes=("a", "b"), per_class=3):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for k, name in enumerate(classes):
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                arr = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
                Image.fromarray(arr).save(root / split / name / f"{i}.{'png' if i % 2 else 'jpg'}")


def test_imagefolder_and_checkpoint_fine_tune_end_to_end(tmp_path):
    write_imagefolder(tmp_path / "imgs")
    train, test, classes = read_imagefolder(str(tmp_path / "imgs"), 16)
    assert classes == ["a", "b"] and train[0].shape == (6, 3, 16, 16) and test[1].tolist() == [0, 0, 0, 1, 1, 1]
    torch.manual_seed(0)
    torch.save(create_model("resnet18", num_classes=1000).state_dict(), tmp_path / "r18.pt")
    encs, pool, held, k = finetune_inputs("checkpoint", {}, None, str(tmp_path / "r18.pt"), str(tmp_path / "imgs"), 16)
    assert k == 2 and torch.equal(held[1], test[1])
    counts = {m: trainable(finetune_model(encs[("checkpoint", 0)], m, 2, 0)) for m in ("lp", "layer", "scl", "full")}
    assert counts["lp"] == 1026 and counts["lp"] < counts["layer"] < counts["full"] and counts["scl"] < counts["full"]
    ft = run_finetune(encs, pool, ["lp", "scl"], [2], 1, 0.01, 4, k, "cpu", held)
    assert len(ft) == 2 and ft.test_acc.between(0, 1).all()


def test_missing_paper_inputs_name_their_parameter(tmp_path):
    with pytest.raises(MissingInputError, match="downstream_imagefolder"):
        read_imagefolder(None, 16)
    (tmp_path / "train" / "a").mkdir(parents=True)
    (tmp_path / "test" / "a").mkdir(parents=True)
    with pytest.raises(MissingInputError, match="no image"):
        read_imagefolder(str(tmp_path), 16)
    with pytest.raises(MissingInputError, match="pretrained_checkpoint"):
        load_checkpoint(str(tmp_path / "missing.pt"), 2)
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(Exception, match="pretrained_checkpoint"):
        load_checkpoint(str(tmp_path / "bad.pt"), 2)
    with pytest.raises(ParameterError, match="ft_encoder"):
        finetune_inputs("ce", {("random", 0): None}, None)
