"""adacontour: ablation tests of the headline claims (the preset's ``headline:``).

Each test runs the notebook's own experiments (``experiments.depth_curve`` on the horse, ``basis_study`` on the
blobs, ``robustness`` on the depth-3 contour matrix) at a small size with the key ingredient removed and asserts
that ``record_claims`` FAILs the claim at ``cpu``, beside the same runs unablated, at the same size, which must
PASS it (the claim has power there).

Ablations:
- the hierarchy switched off: ``hierarchical_encode`` called with depth 0 whatever depth the experiment asks for
  (one center per component, an Eigencontours-like single-center descriptor), in the horse study and in the
  blob study;
- FMS replaced by plain SVD in the robustness study (FMS with 0 reweighting steps is its SVD start);
- (known weakness, xfail) the depth-3 arm of the blob study replaced by a single center given as many stored
  numbers per shape as the depth-3 arm stores (depth 0 at M = centers x (2 + 8) - 2).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from shared.claims import ClaimBook
from shared.papers.adacontour import data
from shared.papers.adacontour import experiments as ex
from shared.papers.adacontour.contours import decode, hierarchical_encode, iou
from shared.papers.adacontour.verdict import record_claims
from tests.ablation import assert_ablation_fails

SEED = 0
# The cpu preset's knobs (hybrid centers, closing 1, M 8 for the claims, robust_M 8, 30% Gaussian outliers,
# outlier seed 0, 200 FMS iterations) at a smaller size: the horse at depths 0 and 5 only (the two horse_gain
# reads), 8 of the cpu preset's 12 blob images (32 train / 32 test shapes: the fewest that leave a depth-0 basis
# of M = 25 for the equal-storage arm; the smoke preset's 2 images give 9 train shapes), blob depths 0 and 3, SVD
# at M 8 (FMS only in the robustness study), one outlier model and fraction.
HORSE_DEPTHS = [0, 5]
BLOB_IMAGES, BLOB_LENGTH = 8, 192
ADA_DEPTH, M, ROBUST_M = 3, 8, 8
FMS_ITERS, FRACTION, OUTLIER_SEED = 200, 0.3, 0


@dataclass(frozen=True)
class Run:
    """What the Verdict cell reads."""

    horse: pd.DataFrame
    blobs: pd.DataFrame
    energy: dict
    robust: pd.DataFrame


def flat(encode):
    """``hierarchical_encode`` with the hierarchy switched off: every call encodes at depth 0."""
    return lambda mask, max_depth, *args, **kw: encode(mask, 0, *args, **kw)


def horse_and_blobs(horse: np.ndarray, blobs: tuple[list, list], Ms: list[int]) -> tuple[pd.DataFrame, ex.Study]:
    """The notebook's horse cell and blob cell (SVD bases)."""
    table, _ = ex.depth_curve(horse, HORSE_DEPTHS)
    study = ex.basis_study(*blobs, [0, ADA_DEPTH], Ms, fms_Ms=[], fms_iters=FMS_ITERS, full=False)
    return table, study


def robustness(study: ex.Study, test_masks: list, fms_iters: int) -> pd.DataFrame:
    """The notebook's robustness cell on the depth-3 contour matrix (clean and 30% Gaussian rows)."""
    return ex.robustness(study.R[ADA_DEPTH], study.test[ADA_DEPTH], test_masks, ROBUST_M, [FRACTION], ["gaussian"],
                         OUTLIER_SEED, fms_iters=fms_iters)


def energies(study: ex.Study) -> dict:
    return {d: ex.residual_energy(R, 8) for d, R in study.R.items()}


def single_center_with_the_hierarchy_storage(study: ex.Study, blobs: tuple[list, list]) -> tuple[pd.DataFrame, int]:
    """The blob table whose depth-3 row (M 8) is a depth-0 descriptor storing as many numbers per shape
    (centers x (2 + M)) as the depth-3 one: the hierarchy removed, its storage kept."""
    table = study.table
    centers = float(table[(table.depth == ADA_DEPTH) & (table.M == M)].centers.iloc[0])
    M_eq = int(round(centers * (2 + M) - 2))
    assert M_eq <= min(study.R[0].shape), "too few train shapes for a depth-0 basis of that size (NaN would FAIL)"
    single = ex.basis_study(*blobs, [0], [M_eq], fms_Ms=[], full=False).table
    row = single.assign(depth=ADA_DEPTH, M=M)  # in the depth-3 arm's place, at the M the claim reads
    blobs_table = pd.concat([table[table.depth != ADA_DEPTH], row], ignore_index=True)
    return blobs_table, M_eq


def verdicts(run: Run, disk_iou: float) -> ClaimBook:
    """The Verdict cell at ``cpu`` (seed rule off: every claim asserted)."""
    return record_claims(ClaimBook("adacontour", scale="cpu", shown={}), run.horse, disk_iou, run.blobs, run.energy,
                         run.robust, "cpu", ADA_DEPTH)


@pytest.fixture(scope="module")
def books() -> dict[str, ClaimBook]:
    """The unablated run and its ablations, each judged by the Verdict cell."""
    horse = data.horse()
    disk = data.disk_mask()
    disk_iou = iou(decode(hierarchical_encode(disk, 0), closing_radius=1), disk)
    blobs = data.train_test(data.blob_shapes(SEED, BLOB_IMAGES, BLOB_LENGTH))
    horse_table, study = horse_and_blobs(horse, blobs, [M])
    robust = robustness(study, blobs[1], FMS_ITERS)
    unablated = Run(horse_table, study.table, energies(study), robust)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ex, "hierarchical_encode", flat(ex.hierarchical_encode))
        flat_horse, flat_study = horse_and_blobs(horse, blobs, [M])
    storage_blobs, _ = single_center_with_the_hierarchy_storage(study, blobs)
    runs = {
        "unablated": unablated,
        "no_hierarchy": Run(flat_horse, flat_study.table, energies(flat_study), robust),
        "svd_for_fms": Run(horse_table, study.table, unablated.energy, robustness(study, blobs[1], fms_iters=0)),
        "single_center_same_storage": Run(horse_table, storage_blobs, unablated.energy, robust),
    }
    return {name: verdicts(run, disk_iou) for name, run in runs.items()}


@pytest.mark.slow
@pytest.mark.ablation("horse_gain")
def test_ablation_horse_gain_needs_the_hierarchy(books):
    """The horse encoded with the hierarchy switched off (depth 0 asked at "depth 5"): one center per component.

    The hierarchy is the paper's answer to non-star-convex shapes: a single center's rays cannot reach the legs
    behind the body, and only the split into local regions with their own centers recovers them, so without it
    the depth-5 IoU is the depth-0 IoU and the gain is 0, not >= 0.12.
    """
    # measured: horse IoU(5) - IoU(0) unablated 0.240 (0.979 with 24 centers vs 0.739; PASS), no hierarchy 0.0 (FAIL)
    assert_ablation_fails(books, "horse_gain", "no_hierarchy")


@pytest.mark.slow
@pytest.mark.ablation("beats_eigencontours")
def test_ablation_beats_eigencontours_needs_the_hierarchy(books):
    """The blob study with the hierarchy switched off: the "depth 3" arm is the single-center descriptor.

    AdaContour's only difference from Eigencontours at equal M is the hierarchy (several local centers sharing
    one basis), so without it the two arms are the same descriptor and the gap is 0, not >= 0.06.
    """
    # measured: IoU(depth 3, M 8) - IoU(depth 0, M 8) unablated 0.178 (0.945 vs 0.767; PASS), no hierarchy 0.0 (FAIL)
    assert_ablation_fails(books, "beats_eigencontours", "no_hierarchy")


@pytest.mark.slow
@pytest.mark.ablation("robust_basis")
def test_ablation_robust_basis_needs_fms(books):
    """The robustness study with FMS replaced by plain SVD (0 reweighting steps: FMS's start is the SVD basis).

    The robustness comes from FMS's reweighting, which gives rows far from the subspace (the outliers) small
    weights; plain least squares tilts toward them, so without it the two arms are the same basis and the
    gap is 0, not >= 0.015.
    """
    # measured: IoU(FMS) - IoU(SVD) at 30% Gaussian rows unablated 0.0855 (0.950 vs 0.865; PASS), SVD for FMS 0.0
    # (FAIL)
    assert_ablation_fails(books, "robust_basis", "svd_for_fms")


@pytest.mark.slow
@pytest.mark.ablation("beats_eigencontours")
@pytest.mark.xfail(strict=True, reason="beats_eigencontours PASSes without the hierarchy when the single center "
                   "stores as many numbers (depth 0 at M 25 vs depth 3 at M 8 with 2.69 centers, about 27 numbers "
                   "per shape): 0.131 (unablated 0.178) against >= 0.06; it compares the arms at equal M, not equal "
                   "storage (at equal storage the hierarchy's gain is 0.047 here); no power until the experiment "
                   "changes")
def test_ablation_beats_eigencontours_needs_more_than_storage(books):
    """The depth-3 arm replaced by a single center (depth 0) storing as many numbers per shape.

    The claim means the hierarchy beats a single center; a single center given the hierarchy's storage
    (2.69 centers x (2 + 8) numbers, so M = 25) has no hierarchy, so a claim with power against it must FAIL.
    """
    # measured: unablated 0.178 (PASS); single center at M 25: IoU 0.898 - 0.767 = 0.131 (PASS, so xfail)
    assert_ablation_fails(books, "beats_eigencontours", "single_center_same_storage")
