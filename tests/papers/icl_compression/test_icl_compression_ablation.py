"""icl_compression: ablation tests of the headline claims (the preset's ``headline:``).

Each test runs the notebook's own K sweep (``experiments.k_sweep`` on SmolLM2-135M, ``k_sweep_tables``,
``shuffled_label_tdnv``) at a small size with the key ingredient removed and asserts that ``record_claims``
FAILs the claim at ``cpu``, beside the same sweep unablated, at the same size, which must PASS it.

Ablations: the task labels shuffled (the states of the same forward passes grouped into random "tasks": TDNV then
measures no task structure), and K = 0 demonstrations (every prompt of the sweep keeps its query and loses its
demonstrations, so the K of the sweep no longer changes what the model reads).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from shared.claims import ClaimBook
from shared.papers.icl_compression import experiments as icl
from shared.papers.icl_compression.tasks import DEFAULT_FORMAT, build_prompt
from shared.papers.icl_compression.verdict import record_claims
from shared.toolkit import llm
from tests.ablation import assert_ablation_fails

SEED = 0
# The cpu preset's model (SmolLM2-135M, fp32), ten tasks, prompt format, batch and TDNV reduction (mean); 8 prompts
# per task and K = 1, 5 (cpu: 40 and K = 1, 2, 5, 10; k_main 5 as at cpu).
TASKS = ["copy", "next_letter", "to_upper", "prev_letter", "next2_letter", "list_first", "list_last", "list_length",
         "list_first_upper", "list_last_upper"]
N_PER_TASK, K_LIST, K_MAIN, BATCH = 8, [1, 5], 5, 16
NO_BIAS_VARIANCE = pd.DataFrame(columns=["bias", "variance"])   # E3 is not part of these claims


Evals = dict[int, icl.IclEval]


def verdicts(evals: Evals) -> ClaimBook:
    """The Verdict cell at ``cpu`` (seed rule off) on a K sweep: the TDNV curves and the shuffled-label null."""
    curves, k_summary = icl.k_sweep_tables(evals)
    null_curve = icl.shuffled_label_tdnv(evals[K_MAIN], SEED)
    return record_claims(ClaimBook("icl_compression", scale="cpu", shown={}), curves, k_summary, null_curve,
                         NO_BIAS_VARIANCE, k_main=K_MAIN, scale="cpu")


def with_shuffled_tasks(evals: Evals) -> Evals:
    """The same forward passes with the task labels permuted (one permutation for every K: still paired)."""
    order = np.random.default_rng([SEED, 99]).permutation(len(evals[K_MAIN].prompts))

    def relabel(ev: icl.IclEval) -> icl.IclEval:
        tasks = [ev.prompts[i].task for i in order]
        return replace(ev, prompts=[replace(p, task=t) for p, t in zip(ev.prompts, tasks)])

    return {k: relabel(ev) for k, ev in evals.items()}


def without_demonstrations(model, tokenizer, evals: Evals) -> Evals:
    """Every K's prompts with their demonstrations removed (same queries): one pass stands for every K."""
    prompts = [replace(p, text=build_prompt([], p.query, DEFAULT_FORMAT)) for p in evals[K_MAIN].prompts]
    zero_shot = icl.evaluate(model, tokenizer, prompts, TASKS, BATCH)
    return {k: zero_shot for k in evals}


@pytest.fixture(scope="module")
def books() -> dict[str, ClaimBook]:
    model, tokenizer = llm.load_causal_lm(llm.ensure_smollm2())
    evals = icl.k_sweep(model, tokenizer, TASKS, N_PER_TASK, K_LIST, SEED, DEFAULT_FORMAT, BATCH)
    return {"unablated": verdicts(evals),
            "shuffled_tasks": verdicts(with_shuffled_tasks(evals)),
            "no_demonstrations": verdicts(without_demonstrations(model, tokenizer, evals))}


SHAPE_CLAIMS = ["compression", "expansion", "argmin_after_half", "argmin_before_0.9"]


@pytest.mark.slow
@pytest.mark.ablation(*SHAPE_CLAIMS)
@pytest.mark.parametrize("claim", SHAPE_CLAIMS)
def test_ablation_tdnv_shape_needs_the_tasks(books, claim):
    """Task labels shuffled: the layerwise compression-then-expansion of TDNV is about task identity.

    With random groups the within-"task" spread is the whole spread at every layer, so the minimum is no
    longer well below the shuffled-label null nor below the failure line (the verdict's control), and the
    shape claims FAIL (NaN, with the control's reason).
    """
    # measured at K = 5, SmolLM2 (30 layers): compression (min / layer 1) 0.318, expansion (min / layer L) 0.652,
    # l*/L 0.7 (all PASS; control: min 0.512, min / null 0.115); task labels shuffled: control fails (min 3.24,
    # null 4.09, ratio 0.79), so every shape claim is NaN (FAIL)
    assert_ablation_fails(books, claim, "shuffled_tasks")


@pytest.mark.slow
@pytest.mark.ablation("k_compresses")
def test_ablation_k_compresses_needs_demonstrations(books):
    """K = 0 demonstrations at every K: more demonstrations are what compress the task representation.

    Without them the prompts, hence the states and the minimum TDNV, are the same at every K of the sweep,
    so the minimum cannot strictly fall (largest neighbour ratio 1, not < 1).
    """
    # measured (largest ratio of min TDNV at neighbouring K): K = 1, 5: 0.520 (PASS); no demonstrations 1.0 (FAIL)
    assert_ablation_fails(books, "k_compresses", "no_demonstrations")
