"""Hidden-state capture on the real all-MiniLM-L6-v2 (offline), template sentences, subsampling."""
import pytest
import torch

from shared.toolkit.hf_hidden import (load_local, minilm_path, subsample, template_sentences, token_hidden_states,
                              valid_token_mask)


@pytest.fixture(scope="module")
def minilm():
    return load_local(minilm_path())


def test_template_sentences_are_deterministic_and_distinct():
    a, b = template_sentences(50, seed=3), template_sentences(50, seed=3)
    assert a == b and len(set(a)) == 50
    assert template_sentences(50, seed=4) != a
    assert all(s[0].isupper() and s.endswith(".") for s in a)


def test_too_many_template_sentences_is_an_error():
    with pytest.raises(ValueError, match="distinct"):
        template_sentences(10 ** 6)


def test_valid_token_mask_drops_padding_special_and_first():
    attention = torch.tensor([[1, 1, 1, 0]])
    special = torch.tensor([[1, 0, 1, 0]])
    assert valid_token_mask(attention).tolist() == [[True, True, True, False]]
    assert valid_token_mask(attention, special).tolist() == [[False, True, False, False]]
    assert valid_token_mask(attention, drop_first_token=True).tolist() == [[False, True, True, False]]


def test_minilm_is_found_offline():
    assert (minilm_path() / "config.json").exists()


def test_minilm_hidden_states_cover_every_word_token_and_ignore_padding(minilm):
    tokenizer, model = minilm
    texts = template_sentences(6, seed=0)
    H = token_hidden_states(model, tokenizer, texts, batch_size=6)
    n_words = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    assert H.shape == (6, n_words, 384)
    one_by_one = token_hidden_states(model, tokenizer, texts, batch_size=1)
    assert torch.allclose(H, one_by_one, atol=1e-4)
    with_special = token_hidden_states(model, tokenizer, texts, batch_size=6, drop_special_tokens=False)
    assert with_special.shape[1] == n_words + 2 * len(texts)


def test_subsample_is_seeded_and_keeps_order():
    H = torch.arange(20.0).reshape(1, 20, 1)
    a, b = subsample(H, 5, seed=1), subsample(H, 5, seed=1)
    assert torch.equal(a, b) and a.shape == (1, 5, 1)
    assert (a[0, 1:, 0] > a[0, :-1, 0]).all()
    assert subsample(H, 50).shape == (1, 20, 1)
