"""layerwise_similarity: a sabotage test for every checked claim (a matching broken input must FAIL; NaN must FAIL)."""
import math
from types import SimpleNamespace

import numpy as np
import pytest

from shared.claims import ClaimBook
from shared.papers.layerwise_similarity.experiments import ExitRun
from shared.papers.layerwise_similarity.verdict import (distance_order, max_distance_step, ordered_agreement, record_claims,
                                                         spearman, text_claim_values, vision_claim_values, worst)

L = 6
SHUFFLE = [3, 0, 5, 1, 4, 2]


def banded(base: float, L: int = L) -> np.ndarray:
    d = np.abs(np.subtract.outer(np.arange(L), np.arange(L)))
    return base ** d


def shuffled(M: np.ndarray) -> np.ndarray:
    return M[np.ix_(SHUFFLE, SHUFFLE)]


def exit_run(mode, accuracy, cos, cka=None):
    n = len(accuracy)
    return ExitRun(mode, np.array(accuracy, dtype=float), cos, cos ** 0.5 if cka is None else cka,
                   np.array([n, 1, 2]), np.zeros((n, 2, 2)))


def healthy():
    text = {"cos": banded(0.88), "cka": banded(0.95)}
    runs = {"standard": exit_run("standard", [0.30, 0.40, 0.50, 0.60, 0.80, 0.920], banded(0.80)),
            "aligned": exit_run("aligned", [0.70, 0.78, 0.84, 0.88, 0.90, 0.915], banded(0.90)),
            "multi_exit": exit_run("multi_exit", [0.72, 0.79, 0.85, 0.88, 0.90, 0.920], banded(0.70))}
    return text, runs


def verdicts(text, runs, lm=None, scale="cpu"):
    book = record_claims(ClaimBook("layerwise_similarity", scale=scale), text, runs, lm, scale)
    return {c.name: c.verdict for c in book.claims}


def with_aligned_as_standard(runs):
    std = runs["standard"]
    return runs | {"aligned": exit_run("aligned", std.accuracy.copy(), std.cos.copy(), std.cka.copy())}


def test_healthy_inputs_pass_everything_that_applies():
    text, runs = healthy()
    v = verdicts(text, runs)
    checked = {k: x for k, x in v.items() if x in ("PASS", "FAIL", "N/A")}
    assert all(x == "PASS" for k, x in checked.items() if not k.startswith("smoke_")), v
    assert v["smoke_aligned_helps_shallow"] == "N/A"
    smoke = verdicts(text, {k: runs[k] for k in ("standard", "aligned")}, scale="smoke")
    assert smoke["smoke_aligned_helps_shallow"] == "PASS" and smoke["smoke_aligned_raises_similarity"] == "PASS"
    assert smoke["cos_agrees_with_cka_text"] == "PASS"


def test_helpers():
    assert distance_order(banded(0.9)) == 1.0 and distance_order(shuffled(banded(0.9))) < 0.7
    assert max_distance_step(banded(0.9)) < 0 and math.isnan(max_distance_step(np.full((3, 3), np.nan)))
    assert math.isnan(worst([1.0, math.nan])) and min(1.0, math.nan) == 1.0  # the bug worst() avoids
    assert ordered_agreement(banded(0.9), banded(0.95)) == pytest.approx(1.0)


def test_sabotage_aligned_helps_shallow():
    text, runs = healthy()
    assert verdicts(text, with_aligned_as_standard(runs))["aligned_helps_shallow"] == "FAIL"


def test_sabotage_smoke_aligned_helps_shallow():
    text, runs = healthy()
    assert verdicts(text, with_aligned_as_standard(runs), scale="smoke")["smoke_aligned_helps_shallow"] == "FAIL"


def test_sabotage_last_layer_kept():
    text, runs = healthy()
    # aligned == standard: the last layer is trivially "kept"; the claim is relative to a real aligned run
    assert verdicts(text, with_aligned_as_standard(runs))["last_layer_kept"] == "FAIL"
    acc = runs["aligned"].accuracy.copy()
    acc[-1] = 0.80  # aligned sacrifices the last layer
    assert verdicts(text, runs | {"aligned": exit_run("aligned", acc, runs["aligned"].cos)})["last_layer_kept"] == "FAIL"


@pytest.mark.sabotage("monotone_in_depth")  # shown by the cpu seed rule; the check must still fail here
def test_sabotage_monotone_in_depth():
    text, runs = healthy()
    assert verdicts(text, with_aligned_as_standard(runs))["monotone_in_depth"] == "FAIL"
    acc = runs["aligned"].accuracy.copy()
    acc[2] = 0.95  # a dip after layer 3
    assert verdicts(text, runs | {"aligned": exit_run("aligned", acc, runs["aligned"].cos)})["monotone_in_depth"] == "FAIL"


@pytest.mark.sabotage("on_par_multi_exit_max", "on_par_multi_exit_mean")
def test_sabotage_on_par_multi_exit():
    text, runs = healthy()
    runs = runs | {"multi_exit": exit_run("multi_exit", runs["standard"].accuracy.copy(), banded(0.7))}
    v = verdicts(text, runs)
    assert v["on_par_multi_exit_max"] == "FAIL" and v["on_par_multi_exit_mean"] == "FAIL"


def test_sabotage_aligned_raises_similarity():
    text, runs = healthy()
    ali = runs["aligned"]
    runs = runs | {"aligned": exit_run("aligned", ali.accuracy, runs["standard"].cos.copy())}
    assert verdicts(text, runs)["aligned_raises_similarity"] == "FAIL"


def test_sabotage_smoke_aligned_raises_similarity():
    text, runs = healthy()
    runs = {"standard": runs["standard"], "aligned": exit_run("aligned", runs["aligned"].accuracy, runs["standard"].cos)}
    assert verdicts(text, runs, scale="smoke")["smoke_aligned_raises_similarity"] == "FAIL"


def test_sabotage_cos_agrees_with_cka_vision():
    text, runs = healthy()
    ali = runs["aligned"]
    # swapped layers: Spearman(COS, CKA) is unchanged, the claim must not be
    mixed = exit_run("aligned", ali.accuracy, shuffled(ali.cos), shuffled(ali.cka))
    assert spearman(mixed.cos, mixed.cka) == pytest.approx(spearman(ali.cos, ali.cka))
    assert verdicts(text, runs | {"aligned": mixed})["cos_agrees_with_cka_vision"] == "FAIL"
    # COS ranking pairs unlike CKA
    anti = exit_run("aligned", ali.accuracy, ali.cos, 1.0 / (ali.cos + 0.5))
    assert verdicts(text, runs | {"aligned": anti})["cos_agrees_with_cka_vision"] == "FAIL"


def test_sabotage_cos_agrees_with_cka_text():
    text, runs = healthy()
    mixed = {"cos": shuffled(text["cos"]), "cka": shuffled(text["cka"])}
    assert spearman(mixed["cos"], mixed["cka"]) == pytest.approx(spearman(text["cos"], text["cka"]))
    assert verdicts(mixed, runs)["cos_agrees_with_cka_text"] == "FAIL"


def test_sabotage_positively_correlated():
    text, runs = healthy()
    assert verdicts({"cos": banded(0.3), "cka": text["cka"]}, runs)["positively_correlated"] == "FAIL"


def test_sabotage_decays_with_distance():
    text, runs = healthy()
    cos = text["cos"].copy()
    cos[3, 5] = cos[5, 3] = 0.99  # a later row (not the first) breaks the decay
    assert max_distance_step(cos[:1]) < 0  # the old first-row check would still pass
    assert verdicts({"cos": cos, "cka": text["cka"]}, runs)["decays_with_distance"] == "FAIL"
    assert verdicts(mixed_text(text), runs)["decays_with_distance"] == "FAIL"


def mixed_text(text):
    return {"cos": shuffled(text["cos"]), "cka": shuffled(text["cka"])}


def test_sabotage_gpt2_aligned_helps_shallow():
    text, runs = healthy()
    r = SimpleNamespace(accuracy=np.array([0.06, 0.4]), perplexity=np.array([99.0, 28.0]), saturated=0.2)
    good = {"standard": r, "aligned": SimpleNamespace(accuracy=np.array([0.13, 0.35]), perplexity=np.array([60., 43.]),
                                                      saturated=0.5)}
    assert verdicts(text, runs, good, scale="paper")["gpt2_aligned_helps_shallow"] == "PASS"
    assert verdicts(text, runs, {"standard": r, "aligned": r}, scale="paper")["gpt2_aligned_helps_shallow"] == "FAIL"


def _nan_cases():
    text, runs = healthy()
    nan_cos = text["cos"].copy()
    nan_cos[2, 4] = nan_cos[4, 2] = np.nan
    yield "text", {"cos": nan_cos, "cka": text["cka"]}, runs
    for mode in runs:
        r = runs[mode]
        acc = r.accuracy.copy()
        acc[0] = acc[-1] = np.nan
        yield f"{mode}_accuracy", text, runs | {mode: exit_run(mode, acc, r.cos, r.cka)}
        cos = r.cos.copy()
        cos[0, -1] = cos[-1, 0] = cos[1, 3] = cos[3, 1] = np.nan
        yield f"{mode}_cos", text, runs | {mode: exit_run(mode, r.accuracy, cos, r.cka)}


@pytest.mark.sabotage("monotone_in_depth")  # NaN must FAIL even where the cpu seed rule shows the claim
@pytest.mark.parametrize("case", [c[0] for c in _nan_cases()])
def test_nan_never_passes(case):
    _, text, runs = next(c for c in _nan_cases() if c[0] == case)
    v = verdicts(text, runs)
    affected = {
        "text": ["cos_agrees_with_cka_text", "positively_correlated", "decays_with_distance"],
        "standard_accuracy": ["aligned_helps_shallow", "last_layer_kept", "monotone_in_depth"],
        "aligned_accuracy": ["aligned_helps_shallow", "last_layer_kept", "monotone_in_depth",
                             "on_par_multi_exit_max", "on_par_multi_exit_mean"],
        "multi_exit_accuracy": ["on_par_multi_exit_max", "on_par_multi_exit_mean"],
        "standard_cos": ["aligned_raises_similarity", "cos_agrees_with_cka_vision"],
        "aligned_cos": ["aligned_raises_similarity", "cos_agrees_with_cka_vision"],
        "multi_exit_cos": [],
    }[case]
    for name in affected:
        assert v[name] == "FAIL", (case, name)


def test_claim_values_from_hand_made_runs():
    text, runs = healthy()
    v = vision_claim_values(runs)
    assert v["acc1_gap"] == pytest.approx(0.4) and v["last_gap"] == pytest.approx(0.005)
    assert v["aligned_min_step"] == pytest.approx(0.015) and v["multi_max_gap"] == pytest.approx(0.02)
    assert "multi_max_gap" not in vision_claim_values({k: runs[k] for k in ("standard", "aligned")})
    t = text_claim_values(text)
    assert t["min_cos"] == pytest.approx(0.88 ** 5) and t["agreement"] == pytest.approx(1.0)


def test_the_declared_na_make_a_healthy_cpu_run_reproduce():
    from shared.config import load_expected_na

    EXPECTED_NA = load_expected_na("layerwise_similarity")

    text, runs = healthy()
    book = record_claims(ClaimBook("layerwise_similarity", scale="cpu", expected_na=EXPECTED_NA), text, runs, None, "cpu")
    assert book.na == EXPECTED_NA["cpu"] and book.reproduces


def test_alternating_and_the_smollm2_panel_are_shown_and_change_no_verdict():
    text, runs = healthy()
    plain = verdicts(text, runs)
    alternating = exit_run("alternating", [0.50, 0.60, 0.70, 0.80, 0.88, 0.918], banded(0.85))
    lm_text = {"cos": banded(0.9, 30), "cka": banded(0.95, 30)}
    book = record_claims(ClaimBook("layerwise_similarity", scale="cpu"), text, runs | {"alternating": alternating},
                         None, "cpu", lm_text)
    shown = {c.name: c for c in book.claims if c.verdict == "INFO"}
    assert shown["alternating_acc1_gap"].measured == pytest.approx(0.2)
    assert shown["alternating_last_gap"].measured == pytest.approx(0.002)
    assert shown["smollm2_min_adjacent_cos"].measured == pytest.approx(0.9)
    assert shown["rho_smollm2"].measured == pytest.approx(1.0)
    assert {c.name: c.verdict for c in book.claims if c.verdict != "INFO"} == {
        k: x for k, x in plain.items() if x != "INFO"}
    assert not {"alternating_acc1_gap", "rho_smollm2"} & set(plain)
