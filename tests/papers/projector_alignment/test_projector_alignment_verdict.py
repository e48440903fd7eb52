"""A sabotage test for every checked claim: broken inputs must FAIL, NaN must FAIL."""
import math

import pytest

from shared.claims import ClaimBook
from shared.papers.projector_alignment.verdict import record_claims, record_llava_claims

ARM0 = dict(caption_acc=0.98, cos_own=0.24, cos_other=0.04, cos_gap=0.20, span_fraction=0.43, digit_top1=0.70,
            color_top1=0.85, grounding=0.95, encoder_entropy_uncentered=0.33, projector_entropy_uncentered=0.5,
            encoder_entropy_centered=0.54, projector_entropy_centered=0.55)
ARM1 = dict(ARM0, cos_own=0.62, cos_other=0.11, cos_gap=0.51, span_fraction=0.91, digit_top1=0.85, color_top1=1.0,
            projector_entropy_uncentered=0.47, projector_entropy_centered=0.48)
SMOKE0 = dict(ARM0, digit_top1=0.15)


def verdicts(arm0, arm1, scale="cpu", shown=None):
    """The verdicts as checks (no seed rule), or with the claims of ``shown`` shown as INFO."""
    book = record_claims(ClaimBook("projector_alignment", scale=scale, shown=shown or {}), {0.0: arm0, 1.0: arm1}, scale)
    return {c.name: c.verdict for c in book.claims}


def test_good_runs_pass():
    v = verdicts(ARM0, ARM1)
    assert all(v[k] in ("PASS", "INFO") for k in v if not k.startswith("smoke")), v
    s = verdicts(SMOKE0, ARM1, "smoke")
    assert s["smoke_cos_gain"] == s["smoke_span_gain"] == "PASS" and s["smoke_caption_aligns"] == "INFO"


def nan(arm, key):
    return dict(arm, **{key: math.nan})


@pytest.mark.parametrize("scale", ["cpu", "smoke"])
def test_sabotage_all_finite(scale):
    assert verdicts(nan(ARM0, "grounding"), ARM1, scale)["all_finite"] == "FAIL"


def test_sabotage_caption_aligns_weakly():   # an untrained projector: no alignment
    assert verdicts(dict(ARM0, cos_gap=0.0), ARM1)["caption_aligns_weakly"] == "FAIL"
    assert verdicts(nan(ARM0, "cos_gap"), ARM1)["caption_aligns_weakly"] == "FAIL"


def test_sabotage_caption_above_chance():    # shuffled labels: chance retrieval
    assert verdicts(dict(ARM0, digit_top1=0.1), ARM1)["caption_above_chance"] == "FAIL"
    assert verdicts(nan(ARM0, "digit_top1"), ARM1)["caption_above_chance"] == "FAIL"


def test_sabotage_aligned_cos_gain():        # lambda ignored: both arms equal
    assert verdicts(ARM0, ARM0)["aligned_cos_gain"] == "FAIL"
    assert verdicts(ARM0, nan(ARM1, "cos_own"))["aligned_cos_gain"] == "FAIL"


def test_sabotage_aligned_span_gain():
    assert verdicts(ARM0, ARM0)["aligned_span_gain"] == "FAIL"
    assert verdicts(ARM0, nan(ARM1, "span_fraction"))["aligned_span_gain"] == "FAIL"


def test_sabotage_aligned_retrieval_gain():
    assert verdicts(ARM0, ARM0)["aligned_retrieval_gain"] == "FAIL"
    assert verdicts(ARM0, nan(ARM1, "digit_top1"))["aligned_retrieval_gain"] == "FAIL"


def test_sabotage_both_words_color():         # the color word at chance
    assert verdicts(ARM0, dict(ARM1, color_top1=1 / 3))["both_words_color"] == "FAIL"
    assert verdicts(ARM0, nan(ARM1, "color_top1"))["both_words_color"] == "FAIL"


def test_sabotage_both_words_digit():
    assert verdicts(ARM0, dict(ARM1, digit_top1=0.1))["both_words_digit"] == "FAIL"
    assert verdicts(ARM0, nan(ARM1, "digit_top1"))["both_words_digit"] == "FAIL"


def test_sabotage_no_caption_cost():          # the aligned arm loses its captions
    assert verdicts(ARM0, dict(ARM1, caption_acc=0.5))["no_caption_cost"] == "FAIL"
    assert verdicts(ARM0, nan(ARM1, "caption_acc"))["no_caption_cost"] == "FAIL"


def test_sabotage_smoke_cos_gain():
    assert verdicts(SMOKE0, SMOKE0, "smoke")["smoke_cos_gain"] == "FAIL"
    assert verdicts(SMOKE0, nan(ARM1, "cos_own"), "smoke")["smoke_cos_gain"] == "FAIL"


def test_sabotage_smoke_span_gain():
    assert verdicts(SMOKE0, SMOKE0, "smoke")["smoke_span_gain"] == "FAIL"
    assert verdicts(SMOKE0, nan(ARM1, "span_fraction"), "smoke")["smoke_span_gain"] == "FAIL"


def test_compression_is_never_asserted():
    book = record_claims(ClaimBook("projector_alignment", scale="cpu"), {0.0: ARM0, 1.0: ARM1}, "cpu")
    assert {c.verdict for c in book.claims if "compress" in c.name} == {"INFO"}


def test_sabotage_llava_finite():
    good = dict(ARM1, category_top1=0.3)
    v = lambda a: {c.name: c.verdict for c in record_llava_claims(ClaimBook("projector_alignment", "paper"), a).claims}  # noqa: E731
    assert v(good)["llava_finite"] == "PASS"
    assert v(nan(good, "cos_gap"))["llava_finite"] == "FAIL"


def test_seed_rule_claims_are_info():
    v = verdicts(ARM0, ARM0, shown={"aligned_cos_gain": "holds for 3/5 seeds"})
    assert v["aligned_cos_gain"] == "INFO" and v["all_finite"] == "PASS"


def test_the_declared_na_make_a_healthy_cpu_run_reproduce():
    from shared.config import load_expected_na

    EXPECTED_NA = load_expected_na("projector_alignment")

    book = record_claims(ClaimBook("projector_alignment", scale="cpu", expected_na=EXPECTED_NA, shown={}),
                         {0.0: ARM0, 1.0: ARM1}, "cpu")
    assert book.na == EXPECTED_NA["cpu"] and book.reproduces
    smoke = record_claims(ClaimBook("projector_alignment", scale="smoke", expected_na=EXPECTED_NA),
                          {0.0: SMOKE0, 1.0: ARM1}, "smoke")
    assert smoke.na == EXPECTED_NA["smoke"]
