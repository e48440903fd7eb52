"""efficiency_spectrum: ablation tests of the headline claims (the preset's ``headline:``).

Each test runs the notebook's own measurements (``experiments`` on SmolLM2-135M: the KV-cache study, the
quantization study, speculative decoding; ``scaling`` for the mini scaling study) at a small size with the key
ingredient removed and asserts that ``record_claims`` FAILs the claim at ``cpu``, beside the same measurements
unablated, at the same size, which must PASS it.

Ablations: the KV cache off in the study's cached arm; the int8 weight-only arm rounded to int4; SmoothQuant
at alpha = 0; prompt lookup on a prompt with nothing to copy; the scaling grid with the model sizes permuted
(the null). Where an ablated arm is a measurement the unablated study already made (greedy generation without
the cache is its no-cache arm; RTN at 4 bits per channel is its "RTN int4 per channel" variant; the FLOP counts
and the rounding are deterministic), that measurement stands for it instead of being made twice: the FLOP
counter and the weight copies cost most of this file's time.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from shared.claims import ClaimBook
from shared.papers.efficiency_spectrum import experiments as ex
from shared.papers.efficiency_spectrum import scaling as sc
from shared.papers.efficiency_spectrum.verdict import record_claims
from shared.toolkit import llm
from tests.ablation import assert_ablation_fails

SEED = 0
# The cpu preset's model (SmolLM2-135M, float32), text, RTN group and SmoothQuant alpha; one 64-token perplexity
# window, 8 + 8 KV tokens, 12 speculative tokens of a 300-character copy prompt (cpu: 2 x 256, 32 + 16, 32 of
# 700), one repeat (no timing is asserted), and the smoke preset's scaling grid.
FLOP_TOKENS, KV_PROMPT, KV_NEW, REPEATS = 32, 8, 8, 1
PPL_WINDOWS, PPL_WINDOW, RTN_GROUPS, SQ_ALPHA = 1, 64, [32], 0.5
SPEC_NEW, COPY_CHARS = 12, 300
SCALING_SIZES, SCALING_STEPS = [(16, 1), (32, 1)], [10, 20, 40]


@dataclass
class Target:
    model: object
    tokenizer: object
    text: str
    windows: object
    calib: object


def load() -> Target:
    """The notebook's first cell at cpu: SmolLM2 and the pydoc text, its perplexity and calibration windows."""
    _, model, tokenizer, pipeline_only = ex.load_target("cpu", "", "cpu", "float32", SEED)
    assert not pipeline_only
    text = ex.load_text("")
    ids = ex.tokenize(tokenizer, text)
    windows = ex.token_windows(ids, PPL_WINDOWS, PPL_WINDOW)
    calib = ex.token_windows(ids, PPL_WINDOWS, PPL_WINDOW, offset=0.5)[:2, : min(PPL_WINDOW, 256)]
    return Target(model, tokenizer, text, windows, calib)


def speculative(t: Target, prompt: str) -> pd.DataFrame:
    """Greedy and prompt-lookup decoding of ``prompt`` in the copy prompt's place (no draft model: the claim
    reads prompt lookup; the free prompt's lookup is shown only)."""
    return ex.speculative_study(t.model, t.tokenizer, None, SPEC_NEW, {"copy": prompt})


def the_copy_prompt() -> str:
    return ex.copy_prompt()[:COPY_CHARS] + "\n\nRepeat the text above word for word."


def without_cache(kv: dict) -> dict:
    """The KV study with the cache off in its cached arm too: both arms are its no-cache generation."""
    return kv | {"flops_cache": kv["flops_no_cache"], "seconds_cache": kv["seconds_no_cache"],
                 "flop_ratio": 1.0, "time_ratio": 1.0}


def with_variant(quant: pd.DataFrame, prefix: str, variant: str, ppl: float) -> pd.DataFrame:
    """The quantization table with the row whose name starts with ``prefix`` replaced by ``variant``."""
    row = quant.variant.str.startswith(prefix)
    assert row.sum() == 1, prefix
    return quant.assign(variant=quant.variant.where(~row, variant), ppl=quant.ppl.where(~row, ppl))


def smoothquant_ppl(t: Target, alpha: float) -> float:
    """The study's SmoothQuant + W8A8 arm (``smooth_`` on a copy, then ``w8a8``) at ``alpha``."""
    quantized, _ = ex.w8a8(ex.smooth_(copy.deepcopy(t.model), t.calib, alpha))
    return ex.perplexity(quantized, t.windows)


def ablated_quantization(t: Target, quant: pd.DataFrame) -> pd.DataFrame:
    """The study with its int8 weight-only arm rounded to 4 bits and SmoothQuant run at alpha = 0."""
    int4 = ex.ppl_of(quant, "RTN int4 per channel")
    quant = with_variant(quant, "RTN int8 per channel", "RTN int8 per channel", int4)
    return with_variant(quant, "SmoothQuant", "SmoothQuant alpha 0 + W8A8", smoothquant_ppl(t, 0.0))


def scaling(grid: pd.DataFrame) -> dict:
    """The mini scaling study's grid and its fit L = E + A/N^alpha + B/D^beta."""
    return {"grid": grid, "fit": sc.fit_scaling_law(grid.N, grid.D, grid.loss)}


def with_sizes_permuted(grid: pd.DataFrame) -> pd.DataFrame:
    """The null of the scaling fit: every model's loss curve given another model's size (sizes reversed)."""
    sizes = sorted(grid.N.unique())
    return grid.assign(N=grid.N.map(dict(zip(sizes, sizes[::-1]))))


def common_measurements(t: Target) -> dict:
    """The Verdict's inputs that no ablation here touches (sanity checks and shown values)."""
    return {"flops": ex.forward_flops(t.model, FLOP_TOKENS),
            "train_ratio": ex.train_flop_ratio(llm.random_llama(256, n_layers=2, seed=0), 64),
            "kv_bytes": ex.kv_bytes(t.model, 16), "gqa_measured": ex.gqa_measured_ratio(t.model.config),
            "outliers": ex.outlier_ratios(t.model, t.windows[0]), "rtn8_logit_change": np.nan, "speed": {},
            "chinchilla": sc.chinchilla_table()}


def verdicts(common: dict, *, kv: dict, quant: pd.DataFrame, spec: pd.DataFrame, grid: pd.DataFrame,
             fit: dict) -> ClaimBook:
    """The Verdict cell at ``cpu`` (seed rule off) on the dict ``r`` the notebook builds."""
    r = {**common, "kv": kv, "quant": quant, "spec": spec, "grid": grid, "fit": fit}
    return record_claims(ClaimBook("efficiency_spectrum", scale="cpu", shown={}), r, "cpu", pipeline_only=False)


@pytest.fixture(scope="module")
def books() -> dict[str, ClaimBook]:
    t = load()
    common = common_measurements(t)
    quant, _ = ex.quantization_study(t.model, t.windows, t.calib, RTN_GROUPS, SQ_ALPHA)
    unablated = {"kv": ex.kv_cache_study(t.model, KV_PROMPT, KV_NEW, REPEATS), "quant": quant,
                 "spec": speculative(t, the_copy_prompt()),
                 **scaling(sc.mini_scaling_study(t.text, SCALING_SIZES, SCALING_STEPS, SEED))}
    ablated = {"cache_off": {"kv": without_cache(unablated["kv"])},
               "fewer_bits_no_smoothing": {"quant": ablated_quantization(t, quant)},
               "nothing_to_copy": {"spec": speculative(t, ex.FREE_PROMPT)},
               "sizes_permuted": scaling(with_sizes_permuted(unablated["grid"]))}
    return {"unablated": verdicts(common, **unablated)} | {
        name: verdicts(common, **(unablated | parts)) for name, parts in ablated.items()}


@pytest.mark.slow
@pytest.mark.ablation("kv_flop_ratio")
def test_ablation_kv_flop_ratio_needs_the_cache(books):
    """Generation with the KV cache off in the study's cached arm: every new token recomputes the whole prefix
    in both arms, so the FLOP ratio is 1, not >= 5 (the cache is what removes the recomputation)."""
    # measured (counted FLOPs without / with the cache, 8 + 8 tokens): 5.49 (PASS); cache off in both arms 1.0 (FAIL)
    assert_ablation_fails(books, "kv_flop_ratio", "cache_off")


@pytest.mark.slow
@pytest.mark.ablation("int8_lossless")
def test_ablation_int8_lossless_needs_eight_bits(books):
    """The int8 weight-only arm rounded to 4 bits per output channel: 16 levels instead of 256 cost perplexity,
    so "lossless" must FAIL (the claim is that the 8-bit grid is fine enough)."""
    # measured (|PPL(int8) / PPL(fp) - 1|): 0.0093 (PASS); rounded to int4 0.945 (FAIL)
    assert_ablation_fails(books, "int8_lossless", "fewer_bits_no_smoothing")


@pytest.mark.slow
@pytest.mark.ablation("smoothquant_repairs")
def test_ablation_smoothquant_repairs_needs_migration(books):
    """SmoothQuant with alpha = 0: s_j = 1 / max|W_j|, so no activation range moves into the weights (the
    activations are even scaled up by the weights' ranges): the outliers that break naive W8A8 stay."""
    # measured (PPL(W8A8) / PPL(SmoothQuant + W8A8)): alpha 0.5 1.86 (PASS); alpha 0 0.266 (FAIL)
    assert_ablation_fails(books, "smoothquant_repairs", "fewer_bits_no_smoothing")


@pytest.mark.slow
@pytest.mark.ablation("spec_saves_passes")
def test_ablation_spec_saves_passes_needs_a_copy(books):
    """Prompt lookup on a free-writing prompt in the copy prompt's place: its drafts are n-grams of the prompt,
    so with nothing to copy they are rejected and each target forward yields one token."""
    # measured (new tokens per target forward, 12 tokens): copy prompt 2.4 (PASS); nothing to copy 1.0 (FAIL)
    assert_ablation_fails(books, "spec_saves_passes", "nothing_to_copy")


@pytest.mark.slow
@pytest.mark.ablation("scaling_exponents_positive")
@pytest.mark.xfail(strict=True, reason="scaling_exponents_positive PASSes with the model sizes permuted: min(alpha, "
                   "beta) = 0.02 (unpermuted 0.106) > 0; the fit searches alpha, beta from 0.02 up with A, B >= 0 "
                   "(NNLS), so a loss that does not fall with N is fitted with the smallest alpha, never a negative one: "
                   "the claim lacks power against this null (scaling_r2 does fall, 0.98 -> 0.85)")
def test_ablation_scaling_exponents_positive_needs_the_sizes(books):
    """The scaling grid with the model sizes permuted (the largest N given the smallest model's curve): the loss
    no longer falls with N, so a positive alpha should not be found."""
    # measured (min(alpha, beta)): 0.106 (PASS); sizes permuted 0.02 (PASS: no power against this null)
    assert_ablation_fails(books, "scaling_exponents_positive", "sizes_permuted")
