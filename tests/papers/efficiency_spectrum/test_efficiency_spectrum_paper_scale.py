"""efficiency_spectrum at paper scale: a local HF model folder (a tiny saved Llama written here), a draft with the
same tokenizer, a text file; clear errors naming the parameter when something is missing or mismatched."""
import pytest
import torch

from shared.errors import MissingInputError, ParameterError
from shared.papers.efficiency_spectrum import experiments as ex
from shared.toolkit import llm


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("es_models")
    tok = llm.toy_tokenizer()
    for name, seed in (("target", 0), ("draft", 1)):
        llm.random_llama(len(tok), n_layers=2, seed=seed).save_pretrained(root / name)
        tok.save_pretrained(root / name)
    return root


def test_paper_scale_requires_model_path(tmp_path):
    with pytest.raises(MissingInputError, match="model_path"):
        ex.load_target("paper", None, "cpu", "float32")
    with pytest.raises(MissingInputError, match="model_path"):
        ex.load_target("paper", str(tmp_path / "nowhere"), "cpu", "float32")
    with pytest.raises(MissingInputError, match="text_file"):
        ex.load_text(str(tmp_path / "wiki.test.raw"))


def test_paper_scale_measurements_run_on_a_saved_model(saved, tmp_path):
    torch.set_num_threads(1)
    name, model, tok, pipeline_only = ex.load_target("paper", str(saved / "target"), "cpu", "float32")
    assert name == "target" and not pipeline_only
    draft = ex.load_draft(str(saved / "draft"), tok, "cpu", "float32")
    (tmp_path / "wiki.txt").write_text("the cat sat on the mat. " * 200)
    ids = ex.tokenize(tok, ex.load_text(str(tmp_path / "wiki.txt")))
    windows = ex.token_windows(ids, 2, 32)
    calib = ex.token_windows(ids, 2, 32, offset=0.5)
    quant, _ = ex.quantization_study(model, windows, calib, [32], 0.5)
    assert quant.ppl.notna().all() and len(quant) == 7
    assert ex.kv_bytes(model, 16)["measured"] == ex.kv_bytes(model, 16)["formula"]
    spec = ex.speculative_study(model, tok, draft, 6, {"copy": "ab ab ab ab", "free": "hello"})
    assert spec.identical.all() and set(spec.method) == {"greedy", "prompt lookup", "draft"}
    simulated = ex.fake_w8a8_(ex.copy.deepcopy(model))
    assert ex.perplexity(simulated, windows) == pytest.approx(quant.set_index("variant").ppl["W8A8 naive"], rel=0.05)


def test_a_draft_with_another_tokenizer_is_refused(saved, tmp_path):
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    other = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"<unk>": 0, "a": 1}, unk_token="<unk>")),
                                    unk_token="<unk>")
    with pytest.raises(ParameterError, match="draft_path"):
        ex.load_draft(str(saved / "draft"), other, "cpu", "float32")
    with pytest.raises(MissingInputError, match="draft_path"):
        ex.load_draft(str(tmp_path / "none"), other, "cpu", "float32")
