"""adacontour: a sabotage test for every checked claim (a matching broken input must FAIL; NaN must FAIL)."""
import math

import numpy as np
import pandas as pd
import pytest

from shared.claims import ClaimBook
from shared.papers.adacontour import data, experiments as ex
from shared.papers.adacontour.contours import decode, hierarchical_encode, iou
from shared.papers.adacontour.verdict import record_claims

# the brief's measured values (cpu, seed 0): a table that passes every claim
GOOD_HORSE = pd.DataFrame({"depth": range(6), "centers": [1, 2, 4, 8, 14, 24],
                           "iou": [0.739, 0.851, 0.874, 0.932, 0.965, 0.979],
                           "f": [0.64, 0.73, 0.75, 0.86, 0.92, 0.96]})


def blob_table(d0=(0.654, 0.784, 0.882), d3=(0.911, 0.948, 0.977)):
    rows = [{"depth": d, "method": "svd", "M": M, "iou": v, "f": 0.9, "centers": c, "stored": c * (2 + M)}
            for d, vals, c in ((0, d0, 1.0), (3, d3, 3.0)) for M, v in zip((4, 8, 16), vals)]
    return pd.DataFrame(rows)


def robust_table(clean=(0.948, 0.951), gauss30=(0.896, 0.949)):
    rows = []
    for model, fraction, (svd, fms) in (("clean", 0.0, clean), ("gaussian", 0.3, gauss30),
                                        ("uniform", 0.3, (0.77, 0.77))):
        rows += [{"model": model, "fraction": fraction, "method": "svd", "M": 8, "iou": svd, "f": 0.9},
                 {"model": model, "fraction": fraction, "method": "fms", "M": 8, "iou": fms, "f": 0.9}]
    return pd.DataFrame(rows)


GOOD = dict(horse=GOOD_HORSE, disk_iou=1.0, blobs=blob_table(), energy={0: 1.44e-2, 3: 4.85e-3},
            robust=robust_table())


def verdicts(scale="cpu", **overrides) -> dict:
    args = {**GOOD, **overrides}
    book = record_claims(ClaimBook("adacontour", scale=scale), args["horse"], args["disk_iou"], args["blobs"],
                         args["energy"], args["robust"], scale)
    return {c.name: c.verdict for c in book.claims}


def test_the_brief_values_pass_every_claim_at_cpu_and_smoke_checks_its_own():
    cpu = verdicts("cpu")
    assert {k for k, v in cpu.items() if v == "FAIL"} == set()
    assert cpu["beats_eigencontours_smoke"] == "N/A"
    smoke = verdicts("smoke", horse=GOOD_HORSE[GOOD_HORSE.depth.isin([0, 3])])
    assert smoke["horse_gain_d3"] == "PASS" and smoke["beats_eigencontours_smoke"] == "PASS"
    assert smoke["horse_gain"] == smoke["lower_rank"] == smoke["robust_basis"] == "N/A"


@pytest.fixture(scope="module")
def small_horse():
    return data.horse()[::2, ::2]


def test_sabotage_disk_roundtrip():
    disk = data.disk_mask()
    enc = hierarchical_encode(disk, 0)
    shrunk = iou(decode(enc, enc.radii * 0.8), disk)  # a decoder that loses 20% of the radius
    assert verdicts(disk_iou=shrunk)["disk_roundtrip"] == "FAIL"
    assert verdicts(disk_iou=math.nan)["disk_roundtrip"] == "FAIL"


def test_sabotage_horse_monotone(small_horse):
    table, _ = ex.depth_curve(small_horse, range(6))
    assert verdicts(horse=table)["horse_monotone"] == "PASS"
    reversed_depths = table.assign(depth=table.depth.to_numpy()[::-1])  # swapped depth labels
    assert verdicts(horse=reversed_depths)["horse_monotone"] == "FAIL"
    assert verdicts(horse=table.assign(iou=table.iou.where(table.depth != 2, math.nan)))["horse_monotone"] == "FAIL"


def flat_hierarchy(small_horse) -> dict:
    """Verdicts for "depth d" computed with the hierarchy switched off: every depth is one center."""
    flat = pd.concat([ex.depth_curve(small_horse, [0])[0].assign(depth=d) for d in range(6)], ignore_index=True)
    return verdicts(horse=flat)


@pytest.mark.parametrize("claim", ["horse_deep_exact", "horse_gain", "horse_gain_d3"])
def test_nan_horse_curves_fail(claim):
    assert verdicts(horse=GOOD_HORSE.assign(iou=math.nan))[claim] == "FAIL"


def test_sabotage_horse_deep_exact(small_horse):
    assert flat_hierarchy(small_horse)["horse_deep_exact"] == "FAIL"


def test_sabotage_horse_gain(small_horse):
    assert flat_hierarchy(small_horse)["horse_gain"] == "FAIL"


def test_sabotage_horse_gain_d3(small_horse):
    assert flat_hierarchy(small_horse)["horse_gain_d3"] == "FAIL"


@pytest.fixture(scope="module")
def small_blobs():
    return data.train_test(data.blob_shapes(0, n_images=2))


def depth_three_that_is_depth_zero(small_blobs) -> pd.DataFrame:
    study = ex.basis_study(*small_blobs, depths=[0], Ms=[8], fms_Ms=[], full=False)
    return pd.concat([study.table, study.table.assign(depth=3)], ignore_index=True)


def test_sabotage_beats_eigencontours(small_blobs):
    assert verdicts(blobs=depth_three_that_is_depth_zero(small_blobs))["beats_eigencontours"] == "FAIL"
    assert verdicts(blobs=blob_table(d3=(0.9, math.nan, 0.97)))["beats_eigencontours"] == "FAIL"


def test_sabotage_beats_eigencontours_smoke(small_blobs):
    same = depth_three_that_is_depth_zero(small_blobs)
    assert verdicts("smoke", blobs=same)["beats_eigencontours_smoke"] == "FAIL"
    assert verdicts("smoke", blobs=blob_table(d3=(0.9, math.nan, 0.97)))["beats_eigencontours_smoke"] == "FAIL"


def test_sabotage_lower_rank(small_blobs):
    R0 = ex.contour_matrix(ex.encode_all(small_blobs[0], 0))
    same = {0: ex.residual_energy(R0), 3: ex.residual_energy(R0)}  # "depth 3" rows that are the depth-0 ones
    assert verdicts(energy=same)["lower_rank"] == "FAIL"
    assert verdicts(energy={0: math.nan, 3: 1e-3})["lower_rank"] == "FAIL"
    assert verdicts(energy={0: 1e-2, 3: 0.0})["lower_rank"] == "FAIL"


@pytest.fixture(scope="module")
def depth3(small_blobs):
    train = ex.encode_all(small_blobs[0], 3)
    test = ex.encode_all(small_blobs[1], 3)
    return ex.contour_matrix(train), test, small_blobs[1]


def test_sabotage_robust_basis(depth3):
    R, test, masks = depth3
    real = ex.robustness(R, test, masks, 8, [0.3], ["gaussian"], fms_iters=50)
    assert verdicts(robust=real)["robust_basis"] == "PASS"
    no_irls = ex.robustness(R, test, masks, 8, [0.3], ["gaussian"], fms_iters=0)  # FMS with no reweighting = SVD
    assert verdicts(robust=no_irls)["robust_basis"] == "FAIL"
    assert verdicts(robust=robust_table(gauss30=(0.9, math.nan)))["robust_basis"] == "FAIL"


def test_sabotage_robustness_free(depth3):
    R, test, masks = depth3
    table = ex.robustness(R, test, masks, 8, [], ["gaussian"], fms_iters=50)
    assert verdicts(robust=table)["robustness_free"] == "PASS"
    # an "FMS" that keeps only 2 of its 8 directions costs accuracy on clean data
    weak = ex.score(test, masks, ex.fit_basis(R, 2, "fms", fms_iters=50))[0]
    broken = table.assign(iou=np.where(table.method == "fms", weak, table.iou))
    assert verdicts(robust=broken)["robustness_free"] == "FAIL"
    assert verdicts(robust=robust_table(clean=(0.95, math.nan)))["robustness_free"] == "FAIL"


def test_the_declared_na_make_a_healthy_cpu_run_reproduce():
    from shared.config import load_expected_na

    EXPECTED_NA = load_expected_na("adacontour")

    args = GOOD
    for scale in ("cpu", "smoke"):
        horse = args["horse"] if scale == "cpu" else GOOD_HORSE[GOOD_HORSE.depth.isin([0, 3])]
        book = record_claims(ClaimBook("adacontour", scale=scale, expected_na=EXPECTED_NA), horse, args["disk_iou"],
                             args["blobs"], args["energy"], args["robust"], scale)
        assert book.na == EXPECTED_NA[scale], scale
    assert book.reproduces is False  # smoke never reproduces
