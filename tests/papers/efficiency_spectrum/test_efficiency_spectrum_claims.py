"""efficiency_spectrum: a sabotage test for every checked claim (a broken input and NaN must FAIL)."""
import copy
import math

import numpy as np
import pandas as pd
import pytest

from shared.claims import ClaimBook
from shared.papers.efficiency_spectrum import scaling as sc
from shared.config import load_expected_na
from shared.papers.efficiency_spectrum.verdict import record_claims

EXPECTED_NA = load_expected_na("efficiency_spectrum")


def good() -> dict:
    """Values like the cpu run's, each passing its claim."""
    quant = pd.DataFrame({"variant": ["fp", "RTN int8 per channel", "RTN int4 per channel", "RTN int4 g32", "W8A8 naive",
                                      "smoothed fp (alpha 0.5)", "SmoothQuant alpha 0.5 + W8A8"],
                          "family": ["fp", "weight-only", "weight-only", "weight-only", "W8A8", "fp", "W8A8"],
                          "ppl": [17.3, 17.2, 34.3, 23.0, 59.2, 17.3, 28.5]})
    outliers = pd.DataFrame({"module": ["model.layers.0.mlp.down_proj", "model.layers.0.self_attn.q_proj"],
                             "layer": [0, 0], "kind": ["down_proj", "q_proj"], "ratio": [4.7e4, 30.0]})
    spec = pd.DataFrame({"prompt": ["copy"] * 3 + ["free"] * 3,
                         "method": ["greedy", "prompt lookup", "draft"] * 2,
                         "identical": [True] * 6, "tokens_per_forward": [1, 3.2, 4.8, 1, 1.04, 2.3]})
    grid = pd.DataFrame([{"N": n, "step": s, "D": s * 2048, "loss": 4 - 0.3 * i - 0.2 * j}
                         for i, n in enumerate([5e3, 3e4, 1e5]) for j, s in enumerate([25, 50, 100, 200])])
    return {"flops": {"ratio_2NT": 0.9997}, "train_ratio": 3.0,
            "kv": {"P": 32, "n_new": 16, "flop_ratio": 12.4, "flops_cache": 100.0, "closed_cache": 100.0,
                   "flops_no_cache": 1240.0, "closed_no_cache": 1241.0, "time_ratio": 3.0},
            "kv_bytes": {"measured": 5898240, "formula": 5898240, "gqa_saving": 3.0}, "gqa_measured": 3.0,
            "quant": quant, "outliers": outliers, "rtn8_logit_change": 0.004,
            "speed": {"prefill_speedup": 3.5, "decode_speedup": 2.5}, "spec": spec, "grid": grid,
            "fit": {"alpha": 0.13, "beta": 0.19, "r2_log": 0.97}, "chinchilla": sc.chinchilla_table()}


def verdicts(r: dict, scale: str = "cpu") -> dict:
    book = record_claims(ClaimBook("efficiency_spectrum", scale=scale), r, scale, pipeline_only=scale == "smoke")
    return {c.name: c.verdict for c in book.claims}


def broken(**changes):
    r = good()
    for path, value in changes.items():
        keys = path.split("__")
        target = r
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value
    return r


def set_ppl(variant, value):
    r = good()
    r["quant"].loc[r["quant"].variant == variant, "ppl"] = value
    return r


def test_good_values_pass_everywhere_and_na_counts_match():
    v = verdicts(good())
    assert set(v[k] for k in v if v[k] != "INFO") <= {"PASS", "N/A"}
    for scale in ("cpu", "smoke"):
        book = record_claims(ClaimBook("efficiency_spectrum", scale=scale), good(), scale, pipeline_only=scale == "smoke")
        assert book.failed == 0 and book.na == EXPECTED_NA[scale]   # timings N/A at smoke are not claims
    assert record_claims(ClaimBook("efficiency_spectrum", scale="cpu"), good(), "cpu", False).reproduces


def check(r, claim, scale="cpu"):
    assert verdicts(r, scale)[claim] == "FAIL"


def test_sabotage_flops_forward_2N():
    check(broken(flops__ratio_2NT=0.5), "flops_forward_2N")  # e.g. half the layers not counted
    check(broken(flops__ratio_2NT=math.nan), "flops_forward_2N")


def test_sabotage_flops_train_6N():
    check(broken(train_ratio=2.0), "flops_train_6N")  # backward without weight gradients
    check(broken(train_ratio=math.nan), "flops_train_6N")


def test_sabotage_kv_flop_ratio():
    check(broken(kv__flop_ratio=1.0), "kv_flop_ratio")  # cache ignored
    check(broken(kv__flop_ratio=1.0), "kv_flop_ratio", "smoke")
    check(broken(kv__flop_ratio=math.nan), "kv_flop_ratio")


def test_sabotage_kv_flops_closed_form():
    check(broken(kv__flops_cache=200.0), "kv_flops_closed_form")
    check(broken(kv__flops_no_cache=math.nan), "kv_flops_closed_form")


def test_sabotage_kv_bytes_formula():
    check(broken(kv_bytes__measured=3 * 5898240), "kv_bytes_formula")  # an MHA-sized cache
    check(broken(kv_bytes__measured=math.nan), "kv_bytes_formula")


def test_sabotage_gqa_saving():
    check(broken(gqa_measured=1.0), "gqa_saving")  # KV heads expanded before caching
    check(broken(gqa_measured=math.nan), "gqa_saving")


def test_sabotage_int8_lossless():
    check(set_ppl("RTN int8 per channel", 19.0), "int8_lossless")
    check(set_ppl("RTN int8 per channel", math.nan), "int8_lossless")


def test_sabotage_int4_costs_more():
    check(set_ppl("RTN int4 per channel", 17.3), "int4_costs_more")  # bits ignored
    check(set_ppl("RTN int4 per channel", math.nan), "int4_costs_more")


def test_sabotage_grouping_helps():
    check(set_ppl("RTN int4 g32", 34.3), "grouping_helps")  # group ignored
    check(set_ppl("RTN int4 g32", math.nan), "grouping_helps")


def test_sabotage_w8a8_breaks():
    check(set_ppl("W8A8 naive", 17.5), "w8a8_breaks")
    check(set_ppl("W8A8 naive", math.nan), "w8a8_breaks")


def test_sabotage_outliers_extreme():
    r = good()
    r["outliers"].loc[:, "ratio"] = 5.0  # Gaussian-like activations
    check(r, "outliers_extreme")
    r["outliers"].loc[0, "ratio"] = math.nan
    r["outliers"].loc[1, "ratio"] = 1e5
    check(r, "outliers_extreme")


def test_sabotage_smoothquant_repairs():
    check(set_ppl("SmoothQuant alpha 0.5 + W8A8", 59.2), "smoothquant_repairs")  # alpha = 0: nothing migrated
    check(set_ppl("SmoothQuant alpha 0.5 + W8A8", math.nan), "smoothquant_repairs")


def test_sabotage_smoothing_preserves_fp():
    check(set_ppl("smoothed fp (alpha 0.5)", 18.0), "smoothing_preserves_fp")  # a scale not folded back
    check(set_ppl("smoothed fp (alpha 0.5)", math.nan), "smoothing_preserves_fp")


def test_sabotage_rtn_int8_logits():
    check(broken(rtn8_logit_change=0.2), "rtn_int8_logits", "smoke")
    check(broken(rtn8_logit_change=math.nan), "rtn_int8_logits", "smoke")


def notes(r: dict, scale: str = "cpu") -> dict:
    book = record_claims(ClaimBook("efficiency_spectrum", scale=scale), r, scale, pipeline_only=scale == "smoke")
    return {c.name: (c.verdict, c.kind, c.note) for c in book.claims}


@pytest.mark.parametrize("claim, path, slow", [("kv_time_ratio", "kv__time_ratio", 1.0),
                                                ("int8_prefill_speedup", "speed__prefill_speedup", 1.0),
                                                ("int8_decode_speedup", "speed__decode_speedup", 0.9)])
def test_timings_are_shown_never_asserted(claim, path, slow):
    """A speed-up depends on the CPU and its load: INFO with whether it held, never PASS or FAIL."""
    assert notes(good())[claim][:2] == ("INFO", "timing") and "held in this run" in notes(good())[claim][2]
    for value in (slow, math.nan):
        verdict, kind, note = notes(broken(**{path: value}))[claim]
        assert (verdict, kind) == ("INFO", "timing") and "did not hold" in note
    assert notes(good(), "smoke")[claim][0] == "N/A"


def test_sabotage_spec_lossless():
    r = good()
    r["spec"].loc[4, "identical"] = False  # a sampled draft accepted without verification
    check(r, "spec_lossless")
    r = good()
    r["spec"] = r["spec"].iloc[:0]
    check(r, "spec_lossless")


def test_sabotage_spec_saves_passes():
    r = good()
    r["spec"].loc[1, "tokens_per_forward"] = 1.0  # no n-gram ever accepted
    check(r, "spec_saves_passes")
    r["spec"].loc[1, "tokens_per_forward"] = math.nan
    check(r, "spec_saves_passes")


def test_sabotage_scaling_monotone():
    r = good()
    r["grid"]["loss"] = r["grid"]["loss"].sample(frac=1.0, random_state=0).to_numpy()  # shuffled losses
    check(r, "scaling_monotone")
    r = good()
    r["grid"].loc[3, "loss"] = math.nan
    check(r, "scaling_monotone")


def test_sabotage_scaling_exponents_positive():
    check(broken(fit__beta=-0.1), "scaling_exponents_positive")  # loss rising with data
    check(broken(fit__alpha=math.nan), "scaling_exponents_positive")


def test_sabotage_scaling_r2():
    r = good()
    rng = np.random.default_rng(0)
    grid = r["grid"]
    noisy = grid.loss * np.exp(rng.normal(0, 0.3, len(grid)))  # noise the law cannot explain
    r["fit"] = sc.fit_scaling_law(grid.N, grid.D, noisy)
    check(r, "scaling_r2")
    check(broken(fit__r2_log=math.nan), "scaling_r2")


def test_sabotage_chinchilla_20_tokens():
    r = good()
    swapped = dict(sc.CONSTANTS["epoch"], alpha=sc.CONSTANTS["epoch"]["beta"], beta=sc.CONSTANTS["epoch"]["alpha"],
                   A=sc.CONSTANTS["epoch"]["B"], B=sc.CONSTANTS["epoch"]["A"])  # N and D swapped
    r["chinchilla"] = pd.DataFrame([{"constants": "epoch", **sc.chinchilla_opt(5.76e23, swapped)}])
    check(r, "chinchilla_20_tokens")
    r["chinchilla"].loc[0, "D_per_N"] = math.nan
    check(r, "chinchilla_20_tokens")
