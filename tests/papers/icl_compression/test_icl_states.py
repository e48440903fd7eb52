"""Last-token states, left-padded batching, the logit lens and task-vector patching, on a tiny random Llama."""
import numpy as np
import pytest
import torch

from shared.papers.icl_compression.experiments import bias_variance_sweep, k_sweep, k_sweep_tables, task_vector_sweep
from shared.papers.icl_compression.states import (_patched_logits_cached, encode_left_padded, last_token_states_at,
                                                  logit_lens_top1, patched_last_logits, patched_top1, run_last_token)
from shared.toolkit.llm import decoder_parts, random_llama, toy_tokenizer

TEXTS = ["a->b\nc->", "a,b,c->c\nd,e->", "x->", "p->P\nq->Q\nr->R\ns->"]


@pytest.fixture(scope="module")
def lm():
    """A 3-layer random Llama and its toy tokenizer."""
    tok = toy_tokenizer()
    return random_llama(len(tok), n_layers=3, seed=0), tok


def test_left_padded_batch_matches_single_runs(lm):
    model, tok = lm
    batch = encode_left_padded(tok, TEXTS)
    assert batch["attention_mask"][:, 0].tolist() != [1] * len(TEXTS)      # some rows are padded
    together = run_last_token(model, tok, TEXTS, batch_size=len(TEXTS))
    singles = [run_last_token(model, tok, [t], batch_size=1) for t in TEXTS]
    for i, single in enumerate(singles):
        torch.testing.assert_close(together.states[:, i], single.states[:, 0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(together.pre_norm_last[i], single.pre_norm_last[0], atol=1e-5, rtol=1e-5)
        assert together.top1[i] == single.top1[0]


def test_states_at_one_layer_equal_the_full_pass_and_skip_later_blocks(lm):
    model, tok = lm
    full = run_last_token(model, tok, TEXTS, batch_size=3)
    last_block = decoder_parts(model).blocks[-1]
    calls = []
    handle = last_block.register_forward_hook(lambda *_: calls.append(1))
    try:
        for layer in (1, 2):
            assert torch.equal(last_token_states_at(model, tok, TEXTS, layer, batch_size=3), full.states[layer - 1])
        assert not calls  # the pass stopped before the last block
    finally:
        handle.remove()
    assert torch.equal(last_token_states_at(model, tok, TEXTS, 3, batch_size=3), full.states[-1])
    with pytest.raises(ValueError, match="1..3"):
        last_token_states_at(model, tok, TEXTS, 4)


def test_logit_lens_at_last_layer_equals_logits(lm):
    model, tok = lm
    run = run_last_token(model, tok, TEXTS)
    parts = decoder_parts(model)
    with torch.inference_mode():
        logits = model(**{k: v for k, v in encode_left_padded(tok, TEXTS).items()}).logits[:, -1]
        lens_logits = parts.unembed(parts.final_norm(run.pre_norm_last))
    torch.testing.assert_close(lens_logits, logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(run.states[-1], parts.final_norm(run.pre_norm_last), atol=1e-5, rtol=1e-5)
    lens = logit_lens_top1(model, run, batch_size=3)
    assert torch.equal(lens[-1], logits.argmax(-1)) and torch.equal(run.top1, logits.argmax(-1))
    first = parts.unembed(parts.final_norm(run.states[0])).argmax(-1)
    assert torch.equal(lens[0], first)


def test_identity_patch_leaves_logits_unchanged(lm):
    model, tok = lm
    run = run_last_token(model, tok, TEXTS)
    batch = encode_left_padded(tok, TEXTS)
    with torch.inference_mode():
        plain = model(**batch).logits[:, -1]
    for layer in range(1, 4):
        same = patched_last_logits(model, batch, layer, run.block_outputs()[layer - 1])
        torch.testing.assert_close(same, plain, atol=1e-5, rtol=1e-5)
        moved = patched_last_logits(model, batch, layer, torch.randn(len(TEXTS), model.config.hidden_size) * 10)
        assert not torch.allclose(moved, plain, atol=1e-3)


def test_cached_patching_matches_full_patching(lm):
    model, tok = lm
    batch = encode_left_padded(tok, TEXTS)
    vectors = torch.randn(3, len(TEXTS), model.config.hidden_size)
    cached = _patched_logits_cached(model, batch, [1, 2, 3], vectors)
    for j, layer in enumerate([1, 2, 3]):
        torch.testing.assert_close(cached[j], patched_last_logits(model, batch, layer, vectors[j]), atol=1e-4, rtol=1e-4)
    top1 = patched_top1(model, tok, TEXTS, [1, 2, 3], vectors, batch_size=3)
    assert torch.equal(top1, cached.argmax(-1))


def test_experiment_pipeline_shapes(lm):
    model, tok = lm
    tasks = ["copy", "to_upper", "list_first"]
    evals = k_sweep(model, tok, tasks, n=4, k_list=[1, 3], seed=0)
    curves, summary = k_sweep_tables(evals)
    assert curves.shape[0] == 2 * 3 and np.isfinite(curves["tdnv"]).all() and (curves["tdnv"] > 0).all()
    assert set(summary["argmin_layer"]) <= {1, 2, 3} and summary["icl_acc"].between(0, 1).all()
    assert evals[3].task_vectors().shape == (3, 3, model.config.hidden_size)
    tv = task_vector_sweep(model, tok, evals[3], n_queries=2, layers=[1, 3], seed=0)
    assert tv.table.shape == (2 * 3, 3) and tv.by_layer().index.tolist() == [1, 3]
    bv = bias_variance_sweep(model, tok, ["copy", "next_letter"], n=3, k_list=[1, 2, 4], layer=2, seed=0,
                             fixed_query="m")
    assert (bv.loc[bv["K"] == 4, "bias"] == 0).all() and (bv["variance"] >= 0).all()
