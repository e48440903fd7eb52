"""dream_sr: ablation tests of the headline claims (the preset's ``headline:``).

Each test runs the notebook's own experiment (``experiments.run_arms``: both arms from the same seed, init and
batches, each evaluated by DDIM sampling of the test conditions) at a small size with the key ingredient
removed and asserts that ``record_claims`` FAILs the claim at ``cpu``, beside the same run unablated, at the
same size, which must PASS it (the claim has power there).

Ablations:
- DREAM's weight set to 0: the DREAM arm trained with lambda_t = 0 (``p = None``, the suite's "p -> infinity",
  i.e. standard training), so both arms are trained the standard way. Its standard arm is the unablated run's
  (the same seed, data and settings; the standard arm never reads ``p``), so only the DREAM arm is retrained.
- (known weakness, xfail) the standard arm trained at lr x 1e-3, barely learning: DREAM beating an incompetent
  baseline is no evidence, but nothing gates the claims on the standard arm being competent (beating bicubic).

At a size that fits the test budget (the smoke preset, about 15 s for the four arms trained here) the unablated
run cannot PASS the cpu thresholds: every test is an expected failure (strict) until the experiment changes.
"""
from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from shared.claims import ClaimBook
from shared.config import load_presets
from shared.papers.dream_sr import experiments as E
from shared.papers.dream_sr.verdict import record_claims
from tests.ablation import assert_ablation_fails

HEADLINE = ["dream_beats_standard", "fewer_steps_10x", "faster_training_2x", "ssim_gain"]
# The smoke preset (the notebook's own smallest size: 16 iterations per arm at batch 8, 8 test images, DDIM at
# K = 2 and 5, the "half" checkpoint at iteration 8), seed 0, judged at cpu.
CFG = SimpleNamespace(**load_presets("dream_sr")["smoke"], seed=0, device="cpu", scale="cpu")
WEAK_LR_FACTOR = 1e-3


def arms(*runs: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(history, evals) of arms trained by separate ``run_arms`` calls, stacked as one run's."""
    return (pd.concat([r["history"] for r in runs], ignore_index=True),
            pd.concat([r["evals"] for r in runs], ignore_index=True))


def only(run: dict, arm: str) -> dict:
    return {key: run[key][run[key].arm == arm] for key in ("history", "evals")}


@pytest.fixture(scope="module")
def books() -> dict[str, ClaimBook]:
    """The unablated run and its ablations, each judged by the Verdict cell at ``cpu`` (seed rule off)."""
    E.check_knobs(CFG)
    data = E.load_data(CFG.dataset, CFG.n_train, CFG.n_test, CFG.hr_size, CFG.lr_size)
    bicubic_psnr = E.bicubic_scores(data)[0]
    pair_difference = E.pair_max_difference(p=CFG.p)
    settings = E.arm_settings(CFG)
    unablated = E.run_arms(data, n_jobs=1, **settings)
    dream_weight_0 = E.run_arms(data, n_jobs=1, arms=("dream",), **(settings | {"p": None}))
    weak_standard = E.run_arms(data, n_jobs=1, arms=("standard",), **(settings | {"lr": CFG.lr * WEAK_LR_FACTOR}))
    runs = {
        "unablated": arms(unablated),
        "dream_weight_0": arms(only(unablated, "standard"), dream_weight_0),
        "weak_standard": arms(weak_standard, only(unablated, "dream")),
    }
    return {name: record_claims(ClaimBook("dream_sr", scale="cpu", shown={}), history, evals, pair_difference,
                                bicubic_psnr, CFG)
            for name, (history, evals) in runs.items()}


# Measured (smoke preset, seed 0, one thread; PSNR in dB): the unablated run is far below every cpu threshold.
# At 40 iterations x batch 8 (K 2, 5, 10) DREAM - standard at K = 5 was +0.16 dB, at 120 x 8 +0.09 dB (about 30 s
# of training for the two arms); the thresholds were set on the cpu preset, 300 x 16 per arm (about 3 minutes).
TOO_SMALL = ("{claim} cannot PASS unablated at a size that fits the test budget (about 20 s): the smoke preset "
             "(16 iterations x batch 8) measures {value} against {threshold}, and 120 x 8 measured {longer}; the "
             "DREAM gap appears only after the cpu preset's 300 x 16 iterations per arm; no power until the "
             "experiment changes")


@pytest.mark.slow
@pytest.mark.ablation("dream_beats_standard")
@pytest.mark.xfail(strict=True, reason=TOO_SMALL.format(claim="dream_beats_standard", value="-0.059 dB",
                                                        threshold=">= 1.4 dB", longer="+0.09 dB"))
def test_ablation_dream_beats_standard_needs_rectification(books):
    """The DREAM arm trained with its weight lambda_t = 0 (``p = None``): both arms trained the standard way.

    DREAM's rectification (training on the model's own estimate, as sampling sees it) is the only difference
    between the arms, so without it the PSNR gap at K = 5 is 0, not >= 1.4 dB.
    """
    # measured: PSNR_DREAM(K=5) - PSNR_std(K=5) unablated -0.059 dB (FAIL: too small a run), weight 0: 0.0 (FAIL)
    assert_ablation_fails(books, "dream_beats_standard", "dream_weight_0")


@pytest.mark.slow
@pytest.mark.ablation("fewer_steps_10x")
@pytest.mark.xfail(strict=True, reason=TOO_SMALL.format(claim="fewer_steps_10x", value="-0.059 dB",
                                                        threshold=">= 1.2 dB", longer="+0.09 dB"))
def test_ablation_fewer_steps_10x_needs_rectification(books):
    """The DREAM arm trained with lambda_t = 0: at K = 5 it is the standard arm, which cannot beat its own best K.

    The claim that DREAM needs fewer sampling steps rests on the rectified training (the model learns to
    correct its own estimate, so few steps suffice); without it PSNR(K = 5) minus the standard arm's best PSNR
    over K is <= 0, not >= 1.2 dB.
    """
    # measured: PSNR_DREAM(K=5) - max_K PSNR_std(K) unablated -0.059 dB (FAIL: too small a run), weight 0: 0.0 (FAIL)
    assert_ablation_fails(books, "fewer_steps_10x", "dream_weight_0")


@pytest.mark.slow
@pytest.mark.ablation("faster_training_2x")
@pytest.mark.xfail(strict=True, reason=TOO_SMALL.format(claim="faster_training_2x", value="+0.125 dB",
                                                        threshold=">= 0.4 dB", longer="-0.22 dB"))
def test_ablation_faster_training_2x_needs_rectification(books):
    """The DREAM arm trained with lambda_t = 0: its half-way checkpoint is standard training's.

    Faster convergence is what the rectification buys; without it the arm at half the iterations is the
    standard arm at half the iterations, which does not beat the standard arm at all of them by >= 0.4 dB.
    """
    # measured: best-K PSNR of DREAM at 8 it - of standard at 16 it, unablated +0.125 dB (FAIL: too small a run),
    # weight 0: -0.192 dB (FAIL)
    assert_ablation_fails(books, "faster_training_2x", "dream_weight_0")


@pytest.mark.slow
@pytest.mark.ablation("ssim_gain")
@pytest.mark.xfail(strict=True, reason=TOO_SMALL.format(claim="ssim_gain", value="+0.020", threshold=">= 0.05",
                                                        longer="+0.042"))
def test_ablation_ssim_gain_needs_rectification(books):
    """The DREAM arm trained with lambda_t = 0: the SSIM gap at K = 5 is 0, not >= 0.05.

    The structural gain comes from the same rectified training as the PSNR gain.
    """
    # measured: SSIM_DREAM(K=5) - SSIM_std(K=5) unablated +0.020 (FAIL: too small a run), weight 0: 0.0 (FAIL)
    assert_ablation_fails(books, "ssim_gain", "dream_weight_0")


@pytest.mark.slow
@pytest.mark.ablation(*HEADLINE)
@pytest.mark.parametrize("claim", HEADLINE)
@pytest.mark.xfail(strict=True, reason="the four DREAM claims PASS without a competent baseline (the standard arm at "
                   "lr x 1e-3: best PSNR 10.7 dB below bicubic, 2.2 dB below the unablated one): +2.12 dB, "
                   "+2.12 dB, +2.30 dB, SSIM +0.158 at the smoke preset; nothing gates them on the standard arm "
                   "beating bicubic (and the unablated smoke run cannot PASS, above); no power until the "
                   "experiment changes")
def test_ablation_dream_claims_need_a_competent_baseline(books, claim):
    """The standard arm trained at lr x 1e-3 (barely learning), the DREAM arm unchanged.

    The claims compare DREAM with standard training; a standard arm that has not learned is no baseline, so a
    claim with power against it must FAIL. Nothing in the verdict checks that the standard arm is competent
    (e.g. that it beats bicubic), so all four PASS.
    """
    # measured (standard arm at lr x 1e-3, 10.7 dB below bicubic; the unablated one: 8.5 dB below):
    # dream_beats_standard +2.12 dB, fewer_steps_10x +2.12 dB, faster_training_2x
    # +2.30 dB, ssim_gain +0.158: all PASS
    assert_ablation_fails(books, claim, "weak_standard")
