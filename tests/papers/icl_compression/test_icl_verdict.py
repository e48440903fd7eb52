"""icl_compression: a sabotage test for every checked claim (a matching broken input must FAIL; NaN must FAIL)."""
import math

import numpy as np
import pandas as pd
import pytest

from shared.claims import ClaimBook
from shared.papers.icl_compression.experiments import main_model, nested_icl_prompts
from shared.papers.icl_compression.metrics import tdnv_per_layer
from shared.papers.icl_compression.readout import readout_accuracy
from shared.papers.icl_compression.verdict import curve_values, ratio_of_neighbours, readout_values, record_claims

L, T, N, D = 10, 4, 30, 24
K_LIST = [1, 2, 5, 10]
# target TDNV per layer at K = 5: compression to layer 7 (l*/L = 0.7), expansion after it
PROFILE = np.array([3.0, 2.5, 2.0, 1.5, 1.0, 0.6, 0.3, 0.4, 0.6, 0.9])


def states_for(k: int, seed: int = 0, profile=PROFILE) -> tuple[np.ndarray, np.ndarray]:
    """(L, T*N, D) states whose TDNV per layer is about profile * (1 + 2/k) / 1.4, and their task labels."""
    rng = np.random.default_rng([seed, k])
    labels = np.repeat(np.arange(T), N)
    means = np.eye(T, D)  # ||mu_t - mu_t'||^2 = 2
    target = np.asarray(profile) * (1 + 2 / k) / 1.4
    sigma = np.sqrt(2 * target / D)  # v_t = sigma^2 D, TDNV = v / 2 = target
    H = np.stack([means[labels] + s * rng.standard_normal((T * N, D)) for s in sigma])
    return H, labels


def tables(labels_of=lambda labels: labels, profile=PROFILE, acc=(0.1, 0.3, 0.6, 0.7)):
    curves, summary, null = [], [], None
    for k, a in zip(K_LIST, acc):
        H, labels = states_for(k, profile=profile)
        curve = tdnv_per_layer(H, labels_of(labels))
        curves.append(pd.DataFrame({"K": k, "layer": np.arange(1, L + 1), "tdnv": curve}))
        summary.append({"K": k, "icl_acc": a, "min_tdnv": curve.min()})
        if k == 5:
            null = tdnv_per_layer(H, np.random.default_rng(1).permutation(labels))
    return pd.concat(curves, ignore_index=True), pd.DataFrame(summary), null


BV = pd.DataFrame({"bias": [0.5, 0.3, 0.2, 0.1, 0.05, 0.0], "variance": [0.9, 0.6, 0.5, 0.4, 0.3, 0.2]},
                  index=pd.Index([1, 2, 4, 8, 16, 32], name="K"))


# held-out readout accuracy per layer (l* = 7 in PROFILE): low while compressing, rising in expansion
READOUT = pd.Series([0.15, 0.2, 0.18, 0.2, 0.17, 0.2, 0.21, 0.35, 0.4, 0.38], index=np.arange(1, L + 1))
CHANCE = 0.03


def readout_from_states(targets_of=lambda y: y, seed: int = 0) -> pd.Series:
    """Per-layer readout accuracy of synthetic states that encode a 6-class answer from layer 8 on (after l* = 7)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(T), N)
    answers = rng.integers(0, 6, size=labels.size)
    code = np.eye(6, D)[answers]
    H = np.stack([rng.standard_normal((labels.size, D)) + (3.0 if layer >= 7 else 0.0) * code for layer in range(L)])
    table = readout_accuracy(H, targets_of(answers), labels, [f"t{i}" for i in range(T)], n_folds=2, seed=seed)
    return table.groupby("layer")["accuracy"].mean()


def verdicts(curves, summary, null, bv=BV, scale="cpu", depths=None, shown=None, readout=READOUT, chance=CHANCE):
    book = record_claims(ClaimBook("icl_compression", scale=scale, shown={} if shown is None else shown), curves,
                         summary, null, bv, k_main=5, scale=scale, model_depths=depths, readout=readout,
                         readout_chance=chance)
    return {c.name: c.verdict for c in book.claims}


def test_healthy_inputs_pass():
    v = verdicts(*tables())
    for name in ("argmin_after_half", "argmin_before_0.9", "compression_vs_null", "compression_below_one",
                 "compression", "expansion", "expansion_pre_norm", "k_compresses", "icl_improves_with_k",
                 "bias_falls", "variance_falls", "readout_rises_in_expansion", "readout_above_chance"):
        assert v[name] == "PASS", (name, v)
    assert v["compression_smoke"] == "N/A" and v["paper_argmin_after_0.2"] == "N/A"
    smoke = verdicts(*tables(), scale="smoke")
    assert smoke["compression_smoke"] == "PASS" and smoke["expansion_smoke"] == "PASS"


@pytest.mark.sabotage("compression", "compression_vs_null", "argmin_after_half", "argmin_before_0.9",
                      "compression_smoke", "expansion_smoke")
def test_sabotage_shuffled_task_labels():
    rng = np.random.default_rng(7)
    shuffled = tables(labels_of=rng.permutation)
    v = verdicts(*shuffled)
    for name in ("compression", "compression_vs_null", "argmin_after_half", "argmin_before_0.9", "expansion"):
        assert v[name] == "FAIL", name
    s = verdicts(*shuffled, scale="smoke")
    assert s["compression_smoke"] == "FAIL" and s["expansion_smoke"] == "FAIL"


def test_sabotage_compression_below_one():
    curves, summary, null = tables()
    curves = curves.assign(tdnv=curves.tdnv * 5)  # every layer above the failure line, far below the null still
    v = verdicts(curves, summary, null * 50)
    assert v["compression_below_one"] == "FAIL" and v["compression"] == "FAIL"


@pytest.mark.sabotage("expansion", "expansion_pre_norm")
def test_sabotage_no_expansion():
    flat_end = PROFILE.copy()
    flat_end[7:] = 0.3  # the minimum is held to the end: no expansion, neither at L nor at L-1
    v = verdicts(*tables(profile=flat_end))
    assert v["expansion"] == "FAIL" and v["expansion_pre_norm"] == "FAIL"
    only_norm = PROFILE.copy()
    only_norm[7:9] = 0.3  # rises only at the (post-norm) last layer
    v = verdicts(*tables(profile=only_norm))
    assert v["expansion"] == "PASS" and v["expansion_pre_norm"] == "FAIL"


def test_sabotage_argmin_window():
    early = PROFILE[::-1].copy()  # minimum at layer 1... compression fails too; shift the minimum early instead
    early = np.array([3.0, 1.0, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0, 1.2, 1.4])
    v = verdicts(*tables(profile=early))
    assert v["argmin_after_half"] == "FAIL" and v["argmin_before_0.9"] == "PASS"
    late = np.array([3.0, 2.5, 2.0, 1.5, 1.0, 0.8, 0.7, 0.6, 0.5, 0.3])
    assert verdicts(*tables(profile=late))["argmin_before_0.9"] == "FAIL"


def test_sabotage_k_compresses():
    curves, summary, null = tables()
    summary = summary.assign(min_tdnv=[0.8, 0.5, 0.4, 0.42])  # the last step does not fall
    assert verdicts(curves, summary, null)["k_compresses"] == "FAIL"
    assert verdicts(curves, summary.assign(min_tdnv=[0.8, 0.5, np.nan, 0.3]), null)["k_compresses"] == "FAIL"


def test_sabotage_icl_improves_with_k():
    v = verdicts(*tables(acc=(0.5, 0.55, 0.6, 0.6)))
    assert v["icl_improves_with_k"] == "FAIL"


def test_sabotage_bias_falls():
    bv = BV.assign(bias=[0.3, 0.3, 0.3, 0.3, 0.3, 0.0])
    assert verdicts(*tables(), bv=bv)["bias_falls"] == "FAIL"


def test_sabotage_variance_falls():
    bv = BV.assign(variance=[0.3, 0.3, 0.3, 0.3, 0.3, 0.4])
    assert verdicts(*tables(), bv=bv)["variance_falls"] == "FAIL"


@pytest.mark.sabotage("paper_argmin_after_0.2", "paper_argmin_before_0.5")
def test_sabotage_paper_argmin_window():
    good = {"gpt-j-6b": 0.32, "pythia-2.8b": 0.34, "mamba-2.8b-hf": 0.375, "pythia-14m": 0.9}
    v = verdicts(*tables(), scale="paper", depths=good)
    assert v["paper_argmin_after_0.2"] == "PASS" and v["paper_argmin_before_0.5"] == "PASS"
    assert v["argmin_after_half"] == "N/A"  # the SmolLM2 window is not the paper's
    v = verdicts(*tables(), scale="paper", depths=good | {"pythia-2.8b": 0.8})
    assert v["paper_argmin_before_0.5"] == "FAIL"
    v = verdicts(*tables(), scale="paper", depths=good | {"mamba-2.8b-hf": 0.1})
    assert v["paper_argmin_after_0.2"] == "FAIL"
    v = verdicts(*tables(), scale="paper", depths={"pythia-14m": 0.9})  # no compressing model: N/A, not PASS
    assert v["paper_argmin_after_0.2"] == "N/A"
    assert verdicts(*tables(), scale="paper", depths=good | {"gpt-j-6b": math.nan})["paper_argmin_after_0.2"] == "FAIL"


def test_main_model_prefers_a_compressing_model():
    assert main_model(["pythia-14m", "pythia-70m", "pythia-2.8b", "gpt-j-6b"]) == "gpt-j-6b"
    assert main_model(["pythia-14m", "mamba-2.8b-hf"]) == "mamba-2.8b-hf"
    assert main_model(["SmolLM2-135M-Instruct"]) == "SmolLM2-135M-Instruct"


def test_nested_prompts_are_paired_over_k():
    prompts = nested_icl_prompts(["copy", "list_first"], 3, [1, 5, 10], seed=0)
    for i in range(6):
        p1, p5, p10 = prompts[1][i], prompts[5][i], prompts[10][i]
        assert p1.query == p5.query == p10.query and p1.task == p10.task
        assert p10.text.startswith(p5.text.rsplit("\n", 1)[0]) and p5.text.startswith(p1.text.rsplit("\n", 1)[0])
        assert p10.text.count("\n") == 10 and p1.text.count("\n") == 1


def test_nan_never_passes():
    curves, summary, null = tables()
    nan_curves = curves.copy()
    nan_curves.loc[(nan_curves.K == 5) & (nan_curves.layer == 3), "tdnv"] = np.nan
    v = verdicts(nan_curves, summary, null)
    for name in ("argmin_after_half", "argmin_before_0.9", "compression_vs_null", "compression_below_one",
                 "compression", "expansion", "expansion_pre_norm"):
        assert v[name] == "FAIL", name
    v = verdicts(curves, summary.assign(icl_acc=[0.1, 0.3, np.nan, 0.7]), null)
    assert v["icl_improves_with_k"] == "FAIL"
    null = null.copy()
    null[6] = np.nan
    assert verdicts(curves, summary, null)["compression_vs_null"] == "FAIL"
    assert verdicts(*tables(), bv=BV.assign(bias=[0.5, np.nan, 0.2, 0.1, 0.05, 0.0]))["bias_falls"] == "FAIL"
    assert verdicts(*tables(), bv=BV.assign(variance=[0.9, 0.6, np.nan, 0.4, 0.3, 0.2]))["variance_falls"] == "FAIL"
    assert math.isnan(ratio_of_neighbours([1.0, np.nan])) and math.isnan(curve_values([1, np.nan], [2, 2])["min"])


def test_readout_claims_pass_on_states_that_encode_the_answer_late():
    v = verdicts(*tables(), readout=readout_from_states(), chance=0.2)
    assert v["readout_rises_in_expansion"] == "PASS" and v["readout_above_chance"] == "PASS"
    assert verdicts(*tables(), scale="smoke")["readout_rises_in_expansion"] == "N/A"


@pytest.mark.sabotage("readout_rises_in_expansion", "readout_above_chance")
def test_sabotage_readout_shuffled_answers():
    shuffled = readout_from_states(targets_of=np.random.default_rng(5).permutation)
    v = verdicts(*tables(), readout=shuffled, chance=0.2)
    assert v["readout_rises_in_expansion"] == "FAIL" and v["readout_above_chance"] == "FAIL"


def test_sabotage_readout_rises_in_expansion():
    flat = pd.Series(0.4, index=READOUT.index)  # decodable everywhere: no rise after l*
    v = verdicts(*tables(), readout=flat)
    assert v["readout_rises_in_expansion"] == "FAIL" and v["readout_above_chance"] == "PASS"
    shuffled_tdnv = tables(labels_of=np.random.default_rng(7).permutation)  # no l*: the gain is not measured
    assert verdicts(*shuffled_tdnv)["readout_rises_in_expansion"] == "FAIL"


def test_sabotage_readout_above_chance():
    assert verdicts(*tables(), chance=0.3)["readout_above_chance"] == "FAIL"
    nan = READOUT.copy()
    nan[9] = np.nan
    v = verdicts(*tables(), readout=nan)
    assert v["readout_rises_in_expansion"] == "FAIL" and v["readout_above_chance"] == "FAIL"
    assert verdicts(*tables(), readout=None)["readout_above_chance"] == "FAIL"
    assert math.isnan(readout_values(READOUT, math.nan, CHANCE)["gain"])
    assert readout_values(READOUT, 7, CHANCE)["gain"] == pytest.approx(0.3767 - 0.1871, abs=1e-3)


def test_seed_rule_claims_are_shown_not_asserted():
    v = verdicts(*tables(), shown={"k_compresses": "holds for 4/5 seeds"})
    assert v["k_compresses"] == "INFO" and v["compression"] == "PASS"


def test_the_declared_na_make_a_healthy_cpu_run_reproduce():
    from shared.config import load_expected_na

    EXPECTED_NA = load_expected_na("icl_compression")

    for scale in ("smoke", "cpu"):
        book = record_claims(ClaimBook("icl_compression", scale=scale, expected_na=EXPECTED_NA, shown={}), *tables(),
                             BV, k_main=5, scale=scale, readout=READOUT, readout_chance=CHANCE)
        assert book.na == EXPECTED_NA[scale] and book.failed == 0, scale
    assert book.reproduces
