"""nc_transfer: ablation tests of the headline claims (the preset's ``headline:``).

Each test runs the notebook's own experiments (``experiments.run_variants``: pre-train every variant and probe it;
``finetune_inputs`` and ``run_finetune``: LP, Layer-FT, SCL-FT and Full-FT of the plain-CE encoder) at a small
size with the key ingredient removed and asserts that ``record_claims`` FAILs the claim at ``cpu``, beside the
same run unablated, at the same size, which must PASS it (the claim has power there).

Ablations:
- the downstream labels shuffled before the probes (``evaluate_encoder(shuffle_labels=True)``, the same encoders);
- the over-collapsed variant (wd 2e-2) pre-trained with the default weight decay. Its spec is then plain CE's and
  ``pretrain`` seeds every variant the same, so it is exactly the run's ``ce`` encoder, whose probe row the
  ablated table takes (relabelled) instead of training it twice;
- (known weakness, xfail) the over-collapsed variant replaced by a merely bad, uncollapsed encoder: plain CE at
  lr 2.0;
- the downstream labels shuffled before fine-tuning (every method, the same encoder);
- SCL-FT with no tuned block (its middle block frozen: only the new classifier is trained, over the features
  plus the skip);
- SCL-FT without its skip connection (the middle block tuned, no skip): ``scl_on_par_with_full`` FAILs without
  it at this size, ``scl_beats_lp`` does not (xfail).

At this size (4 pre-training epochs) the wd 2e-2 variant is not over-collapsed, so the two
``overcollapse_hurts_transfer`` tests are expected failures (strict) until the experiment changes.
"""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from shared.claims import ClaimBook
from shared.papers.nc_transfer import experiments as ex
from shared.papers.nc_transfer.verdict import record_claims
from tests.ablation import assert_ablation_fails

SEED = 0
# The cpu preset's data (MNIST-5k digits 0-4 -> 5-9), MLP, optimisers and fine-tuning (100 epochs, lr 0.01,
# batch 32), at a small size: the 8 pre-trained variants of the cpu preset for one seed (8 encoders, the fewest
# the downstream correlation applies to; no random init), 4 pre-training epochs (cpu: 30), probes on 50 per class
# (cpu: 200), fine-tuning on 10 per class only (cpu: 10 and 50).
VARIANTS = ["ce_3ep", "ce", "ce_wd5e-3", "ce_wd2e-2", "ce_ls0.3", "ce_head", "ce_aug", "ce_head_aug"]
OVER = "ce_wd2e-2"
EPOCHS, LR, BATCH, WD, PROBE_PER_CLASS = 4, 0.05, 64, 5e-4, 50
FT_METHODS, FT_SHOTS, FT_EPOCHS, FT_LR, FT_BATCH = ["lp", "layer", "scl", "full"], [10], 100, 0.01, 32
BAD_LR = 2.0          # the known weakness: plain CE at this lr is bad without collapsing
SHUFFLE_SEED = 1      # the permutation of the downstream labels before fine-tuning


def finetune(encoders: dict, pool, classes: int) -> pd.DataFrame:
    return ex.run_finetune(encoders, pool, FT_METHODS, FT_SHOTS, FT_EPOCHS, FT_LR, FT_BATCH, classes)


def scl_modified(encoders: dict, pool, classes: int, unablated: pd.DataFrame, change) -> pd.DataFrame:
    """The fine-tuning table with SCL-FT rerun after ``change(net)`` (the other methods as run)."""
    make = ex.finetune_model

    def changed(encoder, method, num_classes, seed):
        net = make(encoder, method, num_classes, seed)
        return change(net) if method == "scl" else net

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ex, "finetune_model", changed)
        scl = ex.run_finetune(encoders, pool, ["scl"], FT_SHOTS, FT_EPOCHS, FT_LR, FT_BATCH, classes)
    return pd.concat([unablated[unablated.method != "scl"], scl], ignore_index=True)


def no_tuned_block(net):
    for p in net.middle.parameters():
        p.requires_grad_(False)
    return net


def no_skip(net):
    net.skip = False
    return net


def bad_uncollapsed_row(data: ex.Transfer) -> dict:
    """The probe row of "ce_wd2e-2" pre-trained as plain CE at lr BAD_LR."""
    train = {"arch": "mlp", "epochs": EPOCHS, "lr": BAD_LR, "batch_size": BATCH, "wd": WD}
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(ex.VARIANTS, OVER, {})
        _, row = ex.pretrain_and_probe(OVER, SEED, data=data, per_class=PROBE_PER_CLASS, device="cpu", train=train)
    return row


def with_row(probes: pd.DataFrame, row: dict) -> pd.DataFrame:
    return pd.concat([probes[probes.variant != row["variant"]], pd.DataFrame([row])], ignore_index=True)


def verdicts(probes: pd.DataFrame, ft: pd.DataFrame) -> ClaimBook:
    """The Verdict cell at ``cpu`` (seed rule off: every claim asserted)."""
    return record_claims(ClaimBook("nc_transfer", scale="cpu", shown={}), probes, ft, "cpu")


@pytest.fixture(scope="module")
def books() -> dict[str, ClaimBook]:
    """The unablated run and its ablations, each judged by the Verdict cell."""
    data = ex.load_transfer("mnist")
    probes, encoders = ex.run_variants(data, VARIANTS, [SEED], "mlp", EPOCHS, LR, BATCH, WD, PROBE_PER_CLASS)
    ft_encoders, pool, _, classes = ex.finetune_inputs("ce", encoders, data)
    ft = finetune(ft_encoders, pool, classes)
    shuffled_probes = pd.DataFrame([{"variant": v, "seed": s} | ex.evaluate_encoder(enc, data, PROBE_PER_CLASS, s,
                                                                                    shuffle_labels=True)
                                    for (v, s), enc in encoders.items()])
    default_wd = probes[probes.variant == "ce"].assign(variant=OVER).iloc[0].to_dict()
    x, y = pool
    shuffled_pool = (x, y[torch.randperm(len(y), generator=torch.Generator().manual_seed(SHUFFLE_SEED))])
    runs = {
        "unablated": (probes, ft),
        "shuffled_downstream_labels": (shuffled_probes, ft),
        "no_overcollapse": (with_row(probes, default_wd), ft),
        "bad_not_collapsed": (with_row(probes, bad_uncollapsed_row(data)), ft),
        "shuffled_finetune_labels": (probes, finetune(ft_encoders, shuffled_pool, classes)),
        "scl_no_tuned_block": (probes, scl_modified(ft_encoders, pool, classes, ft, no_tuned_block)),
        "scl_no_skip": (probes, scl_modified(ft_encoders, pool, classes, ft, no_skip)),
    }
    return {name: verdicts(p, f) for name, (p, f) in runs.items()}


@pytest.mark.slow
@pytest.mark.ablation("downstream_nc1_predicts_transfer")
def test_ablation_downstream_nc1_predicts_transfer_needs_the_labels(books):
    """The probes and the downstream NC1 computed with shuffled downstream labels (the same encoders).

    The claim ties how well the features separate the downstream classes (NC1 with their labels) to how well a
    probe reads them; without the labels' information both are noise (probe accuracy at chance), so the
    Spearman correlation over the 8 encoders must not reach -0.35.
    """
    # measured: Spearman(downstream NC1, probe acc) unablated -0.850 (PASS), shuffled labels -0.108 (FAIL; probe
    # accuracies 0.19-0.20, chance 0.2)
    assert_ablation_fails(books, "downstream_nc1_predicts_transfer", "shuffled_downstream_labels")


@pytest.mark.slow
@pytest.mark.ablation("overcollapse_hurts_transfer")
@pytest.mark.xfail(strict=True, reason="overcollapse_hurts_transfer cannot PASS unablated at a size that fits the "
                   "test budget (about 20 s): after 4 pre-training epochs wd 2e-2 is not over-collapsed (probe acc "
                   "0.855, the others >= 0.840: gap -0.015 against >= 0.10); it needs the cpu preset's 30 epochs "
                   "(one seed at 30: 0.256, and -0.003 with the default weight decay), 7.5x this pre-training; no "
                   "power until the experiment changes")
def test_ablation_overcollapse_hurts_transfer_needs_overcollapse(books):
    """The wd 2e-2 variant pre-trained with the default weight decay: no over-collapse.

    The claim is that too much within-class collapse on the source hurts transfer; the strong weight decay is
    what over-collapses that variant, so without it the variant is plain CE and is not 0.10 below the others.
    """
    # measured: lowest probe acc of the others - wd 2e-2's: unablated -0.015 (FAIL: too short a pre-training),
    # default weight decay -0.028 (FAIL)
    assert_ablation_fails(books, "overcollapse_hurts_transfer", "no_overcollapse")


@pytest.mark.slow
@pytest.mark.ablation("overcollapse_hurts_transfer")
@pytest.mark.xfail(strict=True, reason="overcollapse_hurts_transfer PASSes without over-collapse: plain CE at lr 2.0 "
                   "in the wd 2e-2 variant's place (source NC1 9.7x the lowest of the others, not the lowest) gives "
                   "0.366 here and 0.304 at the cpu preset's 30 epochs (one seed; unablated 0.256) against >= 0.10; "
                   "the claim reads only the probe accuracy, not that the bad encoder is the collapsed one (and the "
                   "unablated run cannot PASS at this size, above); no power until the experiment changes")
def test_ablation_overcollapse_hurts_transfer_needs_collapse_not_just_a_bad_encoder(books):
    """The wd 2e-2 variant replaced by plain CE at lr 2.0: a bad encoder whose source features did not collapse.

    The claim is about over-collapse; an encoder that transfers badly for another reason (its source NC1 is far
    above the others', not below) has no over-collapse, so a claim with power against it must FAIL.
    """
    # measured: unablated -0.015 (FAIL, above); plain CE at lr 2.0: 0.366 (PASS)
    assert_ablation_fails(books, "overcollapse_hurts_transfer", "bad_not_collapsed")


@pytest.mark.slow
@pytest.mark.ablation("ft_collapse_goes_with_acc")
def test_ablation_ft_collapse_goes_with_acc_needs_the_labels(books):
    """Every method fine-tuned on shuffled downstream labels (the same encoder, split and schedule).

    With shuffled labels the methods still fit (collapse) their training data by how many parameters they
    tune, but the fit carries nothing to the test set (accuracy at chance), so collapse must not go with test
    accuracy. The power is weak: the claim is a Spearman correlation over 4 methods, which reads only the ranks
    of accuracies that are at chance here (0.196-0.213); a random order reaches <= -0.45 with probability 5/24, and
    the same null on the 5-epoch encoder gave -0.8 (PASS).
    """
    # measured: mean within-encoder Spearman(train NC1, test acc) at n = 10: unablated -1.0 (PASS), shuffled
    # labels -0.2 (FAIL)
    assert_ablation_fails(books, "ft_collapse_goes_with_acc", "shuffled_finetune_labels")


@pytest.mark.slow
@pytest.mark.ablation("scl_beats_lp")
def test_ablation_scl_beats_lp_needs_the_tuned_block(books):
    """SCL-FT with its middle block frozen: only the new classifier is trained, over the features plus the skip.

    SCL-FT improves on LP by adapting one intermediate block to the downstream task; without that it is a
    linear probe of (nearly) the same features and cannot beat LP by 0.045.
    """
    # measured: acc(SCL-FT) - acc(LP) at n = 10: unablated 0.158 (PASS), no tuned block 0.011 (FAIL)
    assert_ablation_fails(books, "scl_beats_lp", "scl_no_tuned_block")


@pytest.mark.slow
@pytest.mark.ablation("scl_on_par_with_full")
def test_ablation_scl_on_par_with_full_needs_the_tuned_block(books):
    """SCL-FT with its middle block frozen: a linear probe cannot be on par with full fine-tuning.

    What lets SCL-FT match Full-FT with a fraction of the parameters is the tuned block; without it the gap to
    Full-FT is LP's, far above 0.025.
    """
    # measured: |acc(SCL-FT) - acc(Full-FT)| at n = 10: unablated 0.0147 (PASS), no tuned block 0.161 (FAIL)
    assert_ablation_fails(books, "scl_on_par_with_full", "scl_no_tuned_block")


@pytest.mark.slow
@pytest.mark.ablation("scl_beats_lp", "scl_on_par_with_full")
@pytest.mark.parametrize("claim", [
    pytest.param("scl_beats_lp", marks=pytest.mark.xfail(
        strict=True, reason="scl_beats_lp PASSes without the skip connection: 0.140 (unablated 0.158) against "
        ">= 0.045, and 0.106 at n = 50 after the cpu preset's 30 epochs (one seed; unablated 0.111): tuning the "
        "middle block beats LP with or without the skip; no power until the experiment changes")),
    "scl_on_par_with_full"])
def test_ablation_scl_claims_need_the_skip_connection(books, claim):
    """SCL-FT without its skip connection: the middle block tuned, the features not augmented by it.

    The skip connection is what distinguishes SCL-FT from fine-tuning a middle block; a claim about SCL-FT
    with power against its defining part must FAIL without it. ``scl_on_par_with_full`` does at this size, but
    narrowly, and not at the cpu preset's n = 50 (one seed after 30 epochs: 0.001 without the skip).
    """
    # measured at n = 10: scl_beats_lp unablated 0.158, no skip 0.140 (PASS, so xfail); scl_on_par_with_full
    # unablated 0.0147 (PASS), no skip 0.0318 (FAIL)
    assert_ablation_fails(books, claim, "scl_no_skip")
