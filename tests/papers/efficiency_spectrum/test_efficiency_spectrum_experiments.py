"""efficiency_spectrum: the measurements on a random tiny Llama (exact relations) and the scaling-law arithmetic."""
import copy

import numpy as np
import pytest
import torch

from shared.errors import ParameterError
from shared.papers.efficiency_spectrum import experiments as ex
from shared.papers.efficiency_spectrum import scaling as sc
from shared.toolkit import llm


@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(1)
    tok = llm.toy_tokenizer()
    return llm.random_llama(len(tok), n_layers=2, seed=0), tok


def test_forward_flops_are_2NT_and_training_is_3x(tiny):
    model, _ = tiny
    f = ex.forward_flops(model, 32)
    assert abs(f["ratio_2NT"] - 1) < 0.02
    assert ex.train_flop_ratio(model, 16) == pytest.approx(3.0, abs=0.01)
    assert not any(p.requires_grad for p in model.parameters())


def test_generation_flops_equal_the_closed_forms(tiny):
    model, _ = tiny
    kv = ex.kv_cache_study(model, 8, 6, repeats=1)
    assert kv["flops_cache"] == pytest.approx(kv["closed_cache"], rel=0.01)
    assert kv["flops_no_cache"] == pytest.approx(kv["closed_no_cache"], rel=0.01)
    assert kv["flop_ratio"] > 2


def test_kv_bytes_equal_the_formula_and_gqa_saves_n_heads_over_n_kv(tiny):
    model, _ = tiny
    kb = ex.kv_bytes(model, 20)
    assert kb["measured"] == kb["formula"] == 2 * 2 * 2 * 16 * 20 * 4
    assert ex.gqa_measured_ratio(model.config) == 2.0


def test_rtn_16_bits_is_identity_and_b_bits_take_at_most_2_to_the_b_values():
    w = torch.randn(6, 64)
    assert torch.allclose(ex.rtn_weight(w, 16, None), w, atol=1e-3)
    for group in (None, 32):
        q = ex.rtn_weight(w, 4, group)
        for row in q.reshape(6, -1, group or 64):
            for part in row:
                assert len(torch.unique(part)) <= 16
    with pytest.raises(ParameterError, match="rtn_groups"):
        ex.rtn_weight(w, 4, 48)


def test_smoothing_preserves_the_logits_and_rtn_int8_barely_moves_them(tiny):
    model, tok = tiny
    x = torch.randint(0, len(tok), (2, 24), generator=torch.Generator().manual_seed(0))
    smoothed = ex.smooth_(copy.deepcopy(model), x, 0.5)
    with torch.no_grad():
        assert (model(x[:1]).logits - smoothed(x[:1]).logits).abs().max() < 1e-4
    assert ex.relative_logit_change(model, ex.rtn_quantize_(copy.deepcopy(model), 8), x[:1]) < 0.01


def test_speculative_decoding_equals_greedy(tiny):
    model, tok = tiny
    draft = ex.w8a8(model)[0]
    spec = ex.speculative_study(model, tok, draft, 8, {"copy": "abc abc abc abc abc", "free": "hello"})
    assert spec.identical.all()
    assert (spec.new_tokens == 8).all()
    assert spec.loc[spec.method == "greedy", "target_forwards"].eq(8).all()
    assert not model._forward_pre_hooks  # the counting hook is removed


def test_a_window_longer_than_the_corpus_names_ppl_window():
    with pytest.raises(ParameterError, match="ppl_window"):
        ex.token_windows(torch.arange(50), 2, 64)
    w = ex.token_windows(torch.arange(1000), 4, 10)
    c = ex.token_windows(torch.arange(1000), 4, 10, offset=0.5)[:2]
    assert w.shape == (4, 10) and not set(w.flatten().tolist()) & set(c.flatten().tolist())


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size(tiny):
    model, tok = tiny
    flat = copy.deepcopy(model)
    flat.lm_head.weight = torch.nn.Parameter(torch.zeros_like(flat.lm_head.weight), requires_grad=False)
    assert ex.perplexity(flat, torch.randint(0, 50, (2, 16))) == pytest.approx(len(tok), rel=1e-4)


def test_chinchilla_table_matches_the_brief():
    h = sc.chinchilla_opt(5.76e23, sc.CONSTANTS["hoffmann"])
    e = sc.chinchilla_opt(5.76e23, sc.CONSTANTS["epoch"])
    assert h["a"] == pytest.approx(0.4516, abs=1e-4) and e["a"] == pytest.approx(0.5126, abs=1e-4)
    assert h["N_opt"] == pytest.approx(3.22e10, rel=0.01) and h["D_per_N"] == pytest.approx(92.6, rel=0.01)
    assert e["N_opt"] == pytest.approx(7.22e10, rel=0.01) and e["D_per_N"] == pytest.approx(18.4, rel=0.01)
    assert sc.chinchilla_opt(1e21, sc.CONSTANTS["epoch"])["D_per_N"] == pytest.approx(21.6, rel=0.01)
    assert 6 * h["N_opt"] * h["D_opt"] == pytest.approx(5.76e23)
    assert float(sc.chinchilla_loss(70e9, 1.4e12, sc.CONSTANTS["hoffmann"])) == pytest.approx(1.937, abs=1e-3)
    assert float(sc.kaplan_loss_n(1e9)) == pytest.approx(2.376, abs=1e-3)


def test_the_fit_recovers_planted_constants():
    N, D = np.meshgrid([5e3, 3e4, 1e5, 3e5], [5e4, 1e5, 2e5, 4e5, 8e5])
    N, D = N.ravel(), D.ravel()
    planted = {"E": 0.8, "A": 6.0, "B": 40.0, "alpha": 0.3, "beta": 0.4}
    fit = sc.fit_scaling_law(N, D, sc.predict(planted, N, D))
    for k, v in planted.items():
        assert fit[k] == pytest.approx(v, rel=0.02), k
    assert fit["r2_log"] > 0.999
    assert np.isnan(sc.fit_scaling_law(N, D, np.full(len(N), np.nan))["r2_log"])


def test_mini_scaling_study_is_deterministic():
    text = ex.corpus_text()[:20000]
    a = sc.mini_scaling_study(text, [(16, 1)], [3, 6], seed=0, n_val=8)
    b = sc.mini_scaling_study(text, [(16, 1)], [3, 6], seed=0, n_val=8)
    assert a.equals(b) and list(a.step) == [3, 6] and a.loss.iloc[1] < a.loss.iloc[0]
