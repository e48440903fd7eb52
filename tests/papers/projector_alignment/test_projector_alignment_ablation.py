"""projector_alignment: ablation tests of the headline claims (the preset's ``headline:``).

Each test runs the notebook's own experiment (``experiments.pretrain_encoder``, ``pretrain_lm``, ``run_arms``: one
projector per lambda on the toy MLLM, scored on held-out scenes) at a small size with the key ingredient removed
and asserts that ``record_claims`` FAILs the claim at ``cpu``, beside the same run unablated, at the same size,
which must PASS it (the claim has power there).

Ablations:
- the patch-aligned arm trained with lambda = 0 (the alignment loss weight): it is then the caption-only arm.
  ``train_projector`` seeds the projector (``PROJECTOR_SEED``) and its batches (``seed + 2``) the same in every
  arm and adds the alignment term only when lambda is not 0, so that arm retrained at lambda = 0 is exactly the
  run's lambda = 0 arm, which the ablated metrics take (relabelled) instead of training it twice;
- for ``caption_aligns_weakly`` (a claim about the caption-only arm itself), the null: the caption-only projector
  untrained (0 steps), its random initialisation.
"""
from __future__ import annotations

import pytest

from shared.claims import ClaimBook
from shared.data import load_mnist_subset
from shared.papers.projector_alignment import experiments as ex
from shared.papers.projector_alignment.verdict import record_claims
from tests.ablation import assert_ablation_fails

SEED = 0
# The cpu preset's toy MLLM and optimisers, at a small size: the smoke preset's encoder (6 steps at batch 128: it
# reads colors, not digits), the language model 60 steps at batch 16 (cpu: 600), projectors 40 steps at batch 16
# per arm (cpu: 300), the smoke preset's 128 training and 32 held-out scenes.
ENCODER_STEPS, ENCODER_BATCH = 6, 128
LM_STEPS, LM_BATCH = 60, 16
PROJECTOR_STEPS, PROJECTOR_BATCH = 40, 16
N_TRAIN_SCENES, N_EVAL_SCENES = 128, 32


def verdicts(metrics: dict) -> ClaimBook:
    """The Verdict cell at ``cpu`` (seed rule off: every claim asserted)."""
    return record_claims(ClaimBook("projector_alignment", scale="cpu", shown={}), metrics, "cpu")


@pytest.fixture(scope="module")
def books() -> dict[str, ClaimBook]:
    """The unablated run and its ablations, each judged by the Verdict cell."""
    X, y = load_mnist_subset()
    train_pool, eval_pool = ex.split_digits(y, SEED)
    encoder, _ = ex.pretrain_encoder(X, y, train_pool, eval_pool, ENCODER_STEPS, SEED, batch=ENCODER_BATCH)
    lm, _ = ex.pretrain_lm(LM_STEPS, SEED, batch=LM_BATCH)
    backbone = ex.toy_backbone(lm)

    def arms(lambdas, steps):
        return ex.run_arms(backbone, encoder, X, y, train_pool, eval_pool, lambdas, steps, N_TRAIN_SCENES,
                           N_EVAL_SCENES, SEED, PROJECTOR_BATCH, log_every=max(steps, 1))["metrics"]

    metrics = arms([0, 1], PROJECTOR_STEPS)
    untrained = arms([0], 0)
    return {"unablated": verdicts(metrics),
            "aligned_at_lambda_0": verdicts({0.0: metrics[0.0], 1.0: metrics[0.0]}),
            "untrained_caption_projector": verdicts({0.0: untrained[0.0], 1.0: metrics[1.0]})}


@pytest.mark.slow
@pytest.mark.ablation("caption_aligns_weakly")
def test_ablation_caption_aligns_weakly_needs_caption_training(books):
    """The caption-only projector untrained (0 steps): its random map of the patch features.

    The claim is that the caption loss alone pulls each patch toward its own words a little; what does it is
    training through the frozen LM on captions, so a projector that has not been trained must show no such
    alignment (cos_own - cos_other about 0, not >= 0.09).
    """
    # measured: lambda=0 cos_own - cos_other unablated 0.122 (PASS), untrained projector -0.045 (FAIL)
    assert_ablation_fails(books, "caption_aligns_weakly", "untrained_caption_projector")


@pytest.mark.slow
@pytest.mark.ablation("aligned_cos_gain")
def test_ablation_aligned_cos_gain_needs_the_alignment_loss(books):
    """The patch-aligned arm trained with lambda = 0: the same training as the caption-only arm.

    The patch-aligned loss (1 - cos(P(v_p), e_p), weight lambda) is the only difference between the arms, so
    without it cos_own(1) - cos_own(0) is 0, not >= 0.18.
    """
    # measured: cos_own(1) - cos_own(0) unablated 0.355 (PASS), lambda = 0: 0.0 (FAIL)
    assert_ablation_fails(books, "aligned_cos_gain", "aligned_at_lambda_0")


@pytest.mark.slow
@pytest.mark.ablation("aligned_span_gain")
def test_ablation_aligned_span_gain_needs_the_alignment_loss(books):
    """The patch-aligned arm trained with lambda = 0: the span fraction gain must vanish.

    Its target is the mean embedding of the patch's two words, which is what puts P(v_p) in their span;
    without the loss the arms are the same and the gain is 0, not >= 0.2.
    """
    # measured: span fraction(1) - span fraction(0) unablated 0.527 (PASS), lambda = 0: 0.0 (FAIL)
    assert_ablation_fails(books, "aligned_span_gain", "aligned_at_lambda_0")


@pytest.mark.slow
@pytest.mark.ablation("aligned_retrieval_gain")
@pytest.mark.xfail(strict=True, reason="aligned_retrieval_gain cannot PASS unablated at a size that fits the test "
                   "budget (about 20 s): with the smoke preset's encoder (6 steps, digit accuracy 0.10, chance) it "
                   "measures 0.014 against >= 0.07, and with 300 encoder steps at batch 16 (12 s alone; accuracy "
                   "0.39) 0.011; digit retrieval needs the cpu preset's trained encoder (1,200 steps, accuracy "
                   "0.89-0.94: 0.052-0.180 over seeds 0-4); no power until the experiment changes")
def test_ablation_aligned_retrieval_gain_needs_the_alignment_loss(books):
    """The patch-aligned arm trained with lambda = 0: the digit-retrieval gain must vanish.

    Retrieving a patch's digit word from it improves because the alignment loss pulls the patch toward that
    word; without the loss the arms are the same and the gain is 0, not >= 0.07.
    """
    # measured: digit top-1(1) - digit top-1(0) unablated 0.014 (FAIL: the encoder reads no digits at this size),
    # lambda = 0: 0.0 (FAIL)
    assert_ablation_fails(books, "aligned_retrieval_gain", "aligned_at_lambda_0")
