"""Claim values from hand-made runs, and the DeiT / CIFAR-10 path on a tiny random ViT and fake pickles."""
import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from shared.papers.layerwise_similarity.deit_cifar import require_deit
from shared.errors import MissingInputError
from shared.papers.layerwise_similarity.experiments import ExitRun, run_deit, text_claim_values, vision_claim_values


def run(mode, accuracy, cos_1L, saturation=(3, 3)):
    L = len(accuracy)
    cos = np.eye(L)
    cos[0, -1] = cos[-1, 0] = cos_1L
    return ExitRun(mode, np.array(accuracy), cos, cos.copy(), np.array(saturation), np.zeros((L, 2, 2)))


def test_vision_claim_values_from_hand_made_runs():
    runs = {"standard": run("standard", [0.3, 0.6, 0.9], 0.2, (3, 1)),
            "aligned": run("aligned", [0.8, 0.85, 0.9], 0.6, (1, 1)),
            "multi_exit": run("multi_exit", [0.7, 0.85, 0.91], 0.1)}
    v = vision_claim_values(runs)
    assert v["acc1_gap"] == pytest.approx(0.5)
    assert v["last_gap"] == pytest.approx(0.0)
    assert v["aligned_min_step"] == pytest.approx(0.05)
    assert v["cos1L_gap"] == pytest.approx(0.4)
    assert v["multi_max_gap"] == pytest.approx(0.1)
    assert v["multi_mean_gap"] == pytest.approx(0.11 / 3)
    assert v["saturated_standard"] == pytest.approx(0.5) and v["saturated_aligned"] == pytest.approx(1.0)
    assert "multi_max_gap" not in vision_claim_values({k: runs[k] for k in ("standard", "aligned")})


def test_text_claim_values_detect_decay_and_positivity():
    cos = np.array([[1, .8, .5], [.8, 1, .7], [.5, .7, 1]])
    values = text_claim_values({"cos": cos, "rho": 0.95})
    assert values["min_cos"] == pytest.approx(0.5)
    assert values["row1_max_step"] == pytest.approx(-0.2)
    cos[0, 2] = cos[2, 0] = 0.9
    assert text_claim_values({"cos": cos, "rho": 0.95})["row1_max_step"] > 0


@pytest.fixture
def cifar_dir(tmp_path):
    rng = np.random.default_rng(0)

    def batch(n):
        return {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, n))}

    for i in range(1, 6):
        (tmp_path / f"data_batch_{i}").write_bytes(pickle.dumps(batch(4)))
    (tmp_path / "test_batch").write_bytes(pickle.dumps(batch(6)))
    (tmp_path / "batches.meta").write_bytes(pickle.dumps({b"label_names": [f"c{k}".encode() for k in range(10)]}))
    return tmp_path


@pytest.fixture
def deit_dir(tmp_path):
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(0)
    config = ViTConfig(image_size=32, patch_size=16, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=32)
    folder = tmp_path / "deit"
    ViTModel(config, add_pooling_layer=False).save_pretrained(folder)
    return folder


def test_missing_deit_names_the_parameter(tmp_path):
    with pytest.raises(MissingInputError, match="deit_path"):
        require_deit(tmp_path)


@pytest.mark.parametrize("mode,exit_norm", [("aligned", "shared_final"), ("multi_exit", "none")])
def test_deit_path_trains_and_measures(deit_dir, cifar_dir, mode, exit_norm):
    from shared.toolkit.cifar import load_cifar

    cfg = SimpleNamespace(seed=0, deit_path=str(deit_dir), exit_norm=exit_norm, weights="linear", epochs=1, lr=1e-3,
                          weight_decay=0.05, batch_size=8, unbiased_cka=False)
    result = run_deit(mode, load_cifar(cifar_dir, "cifar10", param="cifar10_dir"), cfg, "cpu")
    assert result.accuracy.shape == (2,) and result.cos.shape == (2, 2)
    assert result.saturation.shape == (6,) and len(result.history) == 1


def test_paper_inputs_are_checked_up_front(cifar_dir, deit_dir):
    from shared.papers.layerwise_similarity.experiments import check_paper_inputs

    cfg = SimpleNamespace(cifar10_dir=str(cifar_dir), deit_path=str(deit_dir), gpt2_path=None, wikitext_dir=None)
    with pytest.raises(MissingInputError, match="gpt2_path"):
        check_paper_inputs(cfg)
    with pytest.raises(MissingInputError, match="cifar10_dir"):
        check_paper_inputs(SimpleNamespace(cifar10_dir=None, deit_path=None, gpt2_path=None, wikitext_dir=None))
