"""Model loading: the atomic SmolLM2 cache build, local-folder checks, decoder parts."""
import pytest
import torch

from shared.toolkit import llm
from shared.errors import MissingInputError


def fake_dequantize(gguf, target):
    for name in llm.CACHE_FILES:
        (target / name).write_text("x")


def test_cache_is_built_once_and_atomically(tmp_path, monkeypatch):
    monkeypatch.setattr(llm, "smollm2_gguf_path", lambda: tmp_path / "model.gguf")
    monkeypatch.setattr(llm, "dequantize_gguf", fake_dequantize)
    cache = tmp_path / "cache" / "smollm2"
    assert llm.ensure_smollm2(cache) == cache and llm.is_complete_cache(cache)
    monkeypatch.setattr(llm, "dequantize_gguf", lambda *a: pytest.fail("rebuilt an existing cache"))
    assert llm.ensure_smollm2(cache) == cache
    assert [p.name for p in cache.parent.iterdir()] == ["smollm2"]          # no staging folder left


def test_interrupted_build_leaves_no_cache(tmp_path, monkeypatch):
    def broken(gguf, target):
        (target / "config.json").write_text("x")
        raise KeyboardInterrupt

    monkeypatch.setattr(llm, "smollm2_gguf_path", lambda: tmp_path / "model.gguf")
    monkeypatch.setattr(llm, "dequantize_gguf", broken)
    cache = tmp_path / "cache" / "smollm2"
    with pytest.raises(KeyboardInterrupt):
        llm.ensure_smollm2(cache)
    assert not cache.exists() and list(cache.parent.iterdir()) == []


def test_missing_model_folder_names_the_parameter(tmp_path):
    with pytest.raises(MissingInputError, match="model_paths.pythia-70m"):
        llm.resolve_models({"pythia-70m": str(tmp_path / "nowhere")}, "paper")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(MissingInputError, match="safetensors"):
        llm.resolve_models({"empty": str(tmp_path)}, "paper")
    with pytest.raises(MissingInputError, match="model_paths"):
        llm.resolve_models({}, "paper")


def test_local_folder_round_trip(tmp_path):
    tok = llm.toy_tokenizer()
    model = llm.random_llama(len(tok), n_layers=2)
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    folder = llm.resolve_models({"tiny": str(tmp_path)}, "paper")["tiny"]
    loaded, loaded_tok = llm.load_causal_lm(folder)
    ids = tok("a->b\nc->", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits)
    parts = llm.decoder_parts(loaded)
    assert parts.n_layers == 2 and parts.unembed is loaded.lm_head and loaded_tok("c->")["input_ids"] == tok("c->")["input_ids"]
