"""dream_sr: a sabotage test for each claim of the Verdict."""
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from shared.claims import ClaimBook
from shared.papers.dream_sr import experiments as E
from shared.papers.dream_sr.verdict import record_claims

CFG = SimpleNamespace(scale="cpu", iters=600, eval_K=5, sweep_iters=[300, 600])
# seed 0 of the brief's cpu table (PSNR / SSIM)
BRIEF = {("standard", 300): [(2, 8.43, .318), (5, 9.98, .361), (10, 10.00, .361), (20, 9.53, .343), (50, 9.10, .280)],
         ("standard", 600): [(2, 9.29, .330), (5, 12.32, .426), (10, 12.70, .439), (20, 11.86, .419), (50, 11.40, .399)],
         ("dream", 300): [(2, 10.56, .391), (5, 13.62, .486), (10, 13.57, .481), (20, 12.69, .442), (50, 10.84, .317)],
         ("dream", 600): [(2, 13.69, .498), (5, 15.14, .528), (10, 15.94, .553), (20, 15.92, .551), (50, 14.75, .502)]}


def brief_evals() -> pd.DataFrame:
    return pd.DataFrame([{"arm": a, "iteration": it, "K": K, "psnr": p, "ssim": s}
                         for (a, it), rows in BRIEF.items() for K, p, s in rows])


def history() -> pd.DataFrame:
    return pd.DataFrame({"arm": ["standard", "dream"], "iteration": [1, 1], "loss": [0.1, 0.2]})


def verdicts(evals=None, hist=None, pair=0.0, cfg=CFG, shown=None):
    """The verdicts as checks (no seed rule unless ``shown`` names claims)."""
    book = record_claims(ClaimBook("dream_sr", scale=cfg.scale, shown=shown or {}), history() if hist is None else hist,
                         brief_evals() if evals is None else evals, pair, 14.58, cfg)
    return {c.name: c.verdict for c in book.claims}


def test_the_preset_asserts_the_four_dream_claims_at_cpu():
    """Seeds 0-4 at the 300-iteration, batch-16 preset: all four held for every seed (docs/seed_robustness.md)."""
    book = record_claims(ClaimBook("dream_sr", scale="cpu"), history(), brief_evals(), 0.0, 14.58, CFG)
    assert not {c.name for c in book.claims if c.verdict == "INFO" and c.op}
    assert all(book.verdict_of(c) == "PASS" for c in ["pair_is_diffusers", "finite", "dream_beats_standard",
                                                       "fewer_steps_10x", "faster_training_2x", "ssim_gain"])


def swapped(evals):
    return evals.assign(arm=evals.arm.map({"standard": "dream", "dream": "standard"}))


def with_nan(evals, arm="dream"):
    return evals.assign(psnr=np.where(evals.arm == arm, math.nan, evals.psnr),
                        ssim=np.where(evals.arm == arm, math.nan, evals.ssim))


CLAIMS = ["dream_beats_standard", "fewer_steps_10x", "faster_training_2x", "ssim_gain"]


def test_the_brief_numbers_pass():
    v = verdicts()
    assert all(v[c] == "PASS" for c in CLAIMS + ["pair_is_diffusers", "finite"])
    assert v["gap_at_large_K"] == "INFO"


@pytest.mark.sabotage(*CLAIMS)
def test_sabotage_dream_claims_with_swapped_arms_equal_arms_and_nan():
    ev = brief_evals()
    assert all(verdicts(swapped(ev))[c] == "FAIL" for c in CLAIMS)
    same = pd.concat([ev[ev.arm == "standard"], ev[ev.arm == "standard"].assign(arm="dream")])
    assert all(verdicts(same)[c] == "FAIL" for c in CLAIMS)  # DREAM = standard (p -> inf)
    assert all(verdicts(with_nan(ev))[c] == "FAIL" for c in CLAIMS)
    assert all(verdicts(with_nan(ev, "standard"))[c] == "FAIL" for c in CLAIMS)


def test_sabotage_faster_training_2x():
    ev = brief_evals()  # a DREAM that is good only at the end (its half-way checkpoint is standard's) fails
    early = ev[(ev.arm == "standard") & (ev.iteration == 300)].assign(arm="dream")
    late = ev[~((ev.arm == "dream") & (ev.iteration == 300))]
    assert verdicts(pd.concat([late, early]))["faster_training_2x"] == "FAIL"


def test_sabotage_pair_is_diffusers():
    assert verdicts(pair=E.pair_max_difference(1.0, lam_fn=lambda abar, p: (1 - abar) ** p))["pair_is_diffusers"] == "FAIL"
    assert verdicts(pair=math.nan)["pair_is_diffusers"] == "FAIL"
    assert verdicts(pair=E.pair_max_difference(1.0))["pair_is_diffusers"] == "PASS"


def test_sabotage_finite():
    hist = history()
    assert verdicts(hist=hist.assign(loss=[0.1, math.inf]))["finite"] == "FAIL"
    assert verdicts(with_nan(brief_evals()))["finite"] == "FAIL"


def test_smoke_is_pipeline_only():
    v = verdicts(cfg=SimpleNamespace(scale="smoke", iters=600, eval_K=5, sweep_iters=[300, 600]))
    assert all(v[c] == "N/A" for c in CLAIMS)


@pytest.mark.parametrize("column", ["iteration", "K", "arm"])
def test_a_row_without_its_id_fails_the_claims_instead_of_vanishing(column):
    """A NaN iteration would drop the row from the comparison while the other rows still PASS."""
    evals = brief_evals()
    evals[column] = evals[column].astype(object)
    evals.loc[(evals.arm == "standard") & (evals.K == 5), column] = math.nan
    v = verdicts(evals)
    assert all(v[c] == "FAIL" for c in CLAIMS) and v["finite"] == "FAIL"
