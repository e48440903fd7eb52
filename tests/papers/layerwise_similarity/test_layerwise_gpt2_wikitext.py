"""The paper-scale GPT-2 / WikiText-103 path, end to end on a tiny random GPT-2 and a fake WikiText."""
import numpy as np
import pytest
import torch

from shared.errors import MissingInputError
from shared.papers.layerwise_similarity.gpt2_wikitext import (WIKITEXT_FILES, evaluate_gpt2_exits, load_gpt2_exits, make_batch, pad_id,
                                  require_gpt2, require_wikitext, tokenize_lines, train_gpt2_exits)
from shared.toolkit.hf_hidden import template_sentences


@pytest.fixture(scope="module")
def wikitext_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wikitext")
    lines = template_sentences(120, seed=1)
    for i, (split, name) in enumerate(WIKITEXT_FILES.items()):
        body = "\n".join([" = Heading = ", ""] + lines[40 * i:40 * (i + 1)]) + "\n"
        (folder / name).write_text(body, encoding="utf8")
    return folder


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory, wikitext_dir):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("gpt2")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train([str(wikitext_dir / "wiki.train.raw")],
              trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", bos_token="<|endoftext|>")
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=16, n_layer=3, n_head=2)
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


def test_missing_inputs_name_the_parameter(tmp_path):
    with pytest.raises(MissingInputError, match="gpt2_path"):
        require_gpt2(None)
    with pytest.raises(MissingInputError, match="wiki.test.raw"):
        require_wikitext(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "tokenizer_config.json").write_text("{}")
    with pytest.raises(MissingInputError, match="model.safetensors"):
        require_gpt2(tmp_path)


def test_make_batch_shifts_targets_and_masks_padding():
    ids, mask, labels = make_batch([[5, 6, 7], [8, 9]], 0)
    assert ids.tolist() == [[5, 6], [8, 9]]
    assert mask.tolist() == [[1, 1], [1, 1]]
    assert labels.tolist() == [[6, 7], [9, -100]]


@pytest.mark.parametrize("mode,exit_norm", [("aligned", "none"), ("alternating", "shared_final"),
                                            ("multi_exit", "none"), ("standard", "none")])
def test_gpt2_trains_and_evaluates_end_to_end(gpt2_dir, wikitext_dir, mode, exit_norm):
    files = require_wikitext(wikitext_dir)
    tokenizer, model = load_gpt2_exits(gpt2_dir, mode, exit_norm)
    train = tokenize_lines(files["train"], tokenizer, max_len=16)
    test = tokenize_lines(files["test"], tokenizer, max_len=16)
    assert len(train) == 41 and all(1 < len(s) <= 16 for s in train)  # the empty line is dropped
    before = model.lm.transformer.h[0].attn.c_attn.weight.clone()
    history = train_gpt2_exits(model, train, pad_id(tokenizer), steps=2, batch_size=4, grad_accum=2, lr=1e-3)
    assert len(history) == 2 and np.isfinite(history).all()
    assert not torch.equal(before, model.lm.transformer.h[0].attn.c_attn.weight)
    result = evaluate_gpt2_exits(model, test, pad_id(tokenizer), batch_size=8, n_similarity_tokens=50)
    n_tokens = sum(len(s) - 1 for s in test)
    assert result["accuracy"].shape == (3,) and ((0 <= result["accuracy"]) & (result["accuracy"] <= 1)).all()
    assert (result["perplexity"] > 1).all()
    assert result["saturation"].shape == (n_tokens,)
    assert result["features"].shape == (3, 50, 16)
