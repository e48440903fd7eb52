"""layerwise_similarity: ablation tests of the headline claims (the preset's ``headline:``).

Each test runs the notebook's own experiments (``text_similarity`` on all-MiniLM-L6-v2, ``run_tiny_vit`` on
MNIST-5k) at a small size with the key ingredient removed and asserts that ``record_claims`` FAILs the claim at
``cpu``, beside the same runs unablated, at the same size, which must PASS it.

Ablations: an untrained (random-init) model instead of the trained one (the text encoder; the ViT at lr ~ 0),
and the aligned arm trained as standard. ``run_tiny_vit`` seeds every mode the same way and standard training
builds the same model, so "aligned trained as standard" is the standard run itself, taken instead of training it
twice.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from shared.claims import ClaimBook
from shared.papers.layerwise_similarity import experiments as ex
from shared.papers.layerwise_similarity.verdict import record_claims
from shared.toolkit.hf_hidden import minilm_path
from tests.ablation import assert_ablation_fails

SEED = 0
# The cpu preset's text knobs with fewer sentences and tokens (cpu: 256, 3,000); the smoke preset's ViT (depth 4,
# width 64, 4 heads, AdamW 1e-3 OneCycle, batch 128) on 200 MNIST-5k training images per class (50 test) for
# 4 epochs (cpu: depth 6, 400 per class, 20 epochs).
N_SENTENCES, N_TOKENS = 64, 1000
TRAIN_PER_CLASS, TEST_PER_CLASS = 200, 50
VIT = SimpleNamespace(seed=SEED, depth=4, dim=64, heads=4, mlp_dim=256, patch_size=7, exit_norm="shared_final",
                      weights="linear", epochs=4, lr=1e-3, weight_decay=0.05, batch_size=128, unbiased_cka=False)
MODES = ["standard", "aligned", "multi_exit"]
# The untrained ViT: run_tiny_vit at lr 1e-12 (OneCycle needs a positive peak; AdamW then moves each weight by
# ~1e-12 a step), for one epoch, since its weights do not move for any number of epochs.
UNTRAINED = SimpleNamespace(**(vars(VIT) | {"lr": 1e-12, "epochs": 1}))


def text(model_path: str | Path | None) -> dict:
    """Section 1: COS and CKA across the text model's layers (None: the packaged all-MiniLM-L6-v2)."""
    return ex.text_similarity(model_path, N_SENTENCES, N_TOKENS, SEED)


def random_init_minilm(target: Path) -> Path:
    """all-MiniLM-L6-v2's architecture and tokenizer with freshly initialised weights, saved at ``target``."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    source = minilm_path()
    torch.manual_seed(SEED)
    AutoModel.from_config(AutoConfig.from_pretrained(source)).save_pretrained(target)
    AutoTokenizer.from_pretrained(source).save_pretrained(target)
    return target


def vision(modes: list[str], cfg: SimpleNamespace, data) -> dict:
    """Section 2: the ViT of each exit mode, trained and measured as the notebook does."""
    return {mode: ex.run_tiny_vit(mode, data, cfg) for mode in modes}


def verdicts(text_result: dict, runs: dict) -> ClaimBook:
    """The Verdict cell at ``cpu`` (seed rule off). The GPT-2 runs are paper-only and the SmolLM2 panel is shown,
    not asserted: both are left out."""
    return record_claims(ClaimBook("layerwise_similarity", scale="cpu", shown={}), text_result, runs, {}, "cpu")


@pytest.fixture(scope="module")
def books(tmp_path_factory) -> dict[str, ClaimBook]:
    data = ex.mnist_split(TRAIN_PER_CLASS, TEST_PER_CLASS, SEED)
    trained_text = text(None)
    runs = vision(MODES, VIT, data)
    untrained = vision(["standard"], UNTRAINED, data)["standard"]
    random_text = text(random_init_minilm(tmp_path_factory.mktemp("random_minilm")))
    return {
        "unablated": verdicts(trained_text, runs),
        "untrained": verdicts(random_text, runs | {"standard": untrained, "aligned": untrained}),
        "aligned_as_standard": verdicts(trained_text, runs | {"aligned": runs["standard"]}),
    }


@pytest.mark.slow
@pytest.mark.ablation("cos_agrees_with_cka_text")
@pytest.mark.xfail(strict=True, reason="cos_agrees_with_cka_text PASSes with a random-init all-MiniLM-L6-v2: "
                   "0.943 (trained 0.971) > 0.9; the layers of an untrained residual encoder also grow apart "
                   "with depth and COS ranks them as CKA does, so the claim lacks power against an untrained model")
def test_ablation_cos_agrees_with_cka_text_needs_a_trained_model(books):
    """all-MiniLM-L6-v2's architecture with random weights instead of the trained ones.

    The paper reads the agreement of COS with CKA (adjacent layers more similar than distant ones, COS ranking
    the layer pairs as CKA does) as a property of trained representations.
    """
    # measured (min of Spearman and the distance-order shares): trained 0.971 (PASS); random init 0.943 (PASS)
    assert_ablation_fails(books, "cos_agrees_with_cka_text", "untrained")


@pytest.mark.slow
@pytest.mark.ablation("cos_agrees_with_cka_vision")
@pytest.mark.xfail(strict=True, reason="cos_agrees_with_cka_vision PASSes with an untrained ViT: 1.0 (trained 0.943) "
                   "> 0.9; in a random-init pre-LN ViT each block adds a small update to the residual stream, so "
                   "similarity decays with distance by COS and CKA alike: the claim lacks power against an untrained "
                   "model")
def test_ablation_cos_agrees_with_cka_vision_needs_a_trained_model(books):
    """The ViT's standard and aligned arms replaced by the same architecture at lr 1e-12 (untrained)."""
    # measured (min over standard, aligned): trained 0.943 (PASS); untrained 1.0 (PASS)
    assert_ablation_fails(books, "cos_agrees_with_cka_vision", "untrained")


@pytest.mark.slow
@pytest.mark.ablation("aligned_helps_shallow")
@pytest.mark.xfail(strict=True, reason="the unablated run does not PASS at this size: acc_1(aligned) - acc_1(standard) "
                   "= 0.162, not > 0.25 (depth 4, 4 epochs on 2,000 images; depth 6 at 4 epochs gave 0.244; the cpu "
                   "run trains 20 epochs on 4,000, beyond this test's budget); aligned trained as standard gives 0.0")
def test_ablation_aligned_helps_shallow_needs_aligned_training(books):
    """The aligned arm trained as standard (last-layer CE only): the shared head then meets layer 1's features
    only at test time, and its layer-1 accuracy is standard's (gain 0, not > 0.25)."""
    # measured (acc_1 aligned - standard): 0.162 (FAIL at this size); aligned trained as standard 0.0 (FAIL)
    assert_ablation_fails(books, "aligned_helps_shallow", "aligned_as_standard")


@pytest.mark.slow
@pytest.mark.ablation("aligned_raises_similarity")
def test_ablation_aligned_raises_similarity_needs_aligned_training(books):
    """The aligned arm trained as standard: nothing pulls layer 1 into the last layer's basis (the shared
    head's), so COS(1, L) is standard's (gap 0, not > 0.15)."""
    # measured (COS(1, L) aligned - standard): 0.194 (PASS); aligned trained as standard 0.0 (FAIL)
    assert_ablation_fails(books, "aligned_raises_similarity", "aligned_as_standard")


@pytest.mark.slow
@pytest.mark.ablation("on_par_multi_exit_mean")
@pytest.mark.xfail(strict=True, reason="the unablated run does not PASS at this size: mean_l |aligned - multi-exit| "
                   "= 0.056, not < 0.03 (depth 4, 4 epochs on 2,000 images; the cpu run's 20 epochs on 4,000 are "
                   "beyond this test's budget); aligned trained as standard gives 0.091")
def test_ablation_on_par_multi_exit_mean_needs_aligned_training(books):
    """The aligned arm trained as standard: one head shared by every layer is then far below per-layer heads
    at the shallow layers (aligned training is what makes one head as good as many)."""
    # measured (mean over layers of |aligned - multi-exit| accuracy): 0.056 (FAIL at this size); as standard 0.091
    assert_ablation_fails(books, "on_par_multi_exit_mean", "aligned_as_standard")
