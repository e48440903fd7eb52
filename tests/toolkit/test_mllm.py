"""The small MLLM parts: CNN patch encoder, MLP projector, tiny causal LM, HF adapter."""
import torch

from shared.toolkit import llm
from shared.toolkit.mllm import HFLanguageModel, MLPProjector, PatchCNN, TinyCausalLM, freeze


def test_shapes():
    enc = PatchCNN(heads={"digit": 10})
    assert enc.patches(torch.rand(2, 3, 56, 56)).shape == (2, 16, 64)
    assert enc.classify(torch.rand(2, 3, 28, 28))["digit"].shape == (2, 10)
    assert MLPProjector(64, 128)(torch.rand(2, 16, 64)).shape == (2, 16, 128)


def test_tiny_lm_is_causal():
    torch.manual_seed(0)
    lm = freeze(TinyCausalLM(10, d_model=32, n_layers=2))
    ids = torch.randint(10, (1, 8))
    other = ids.clone()
    other[0, -1] = (ids[0, -1] + 1) % 10
    a, b = lm(lm.embed(ids)), lm(lm.embed(other))
    assert torch.allclose(a[:, :-1], b[:, :-1], atol=1e-5) and not torch.allclose(a[:, -1], b[:, -1])


def test_hf_adapter():
    model = llm.random_llama(30, n_layers=1, hidden_size=32)
    lm = HFLanguageModel(model)
    assert lm.input_embeddings().shape == (30, 32)
    assert lm(torch.randn(2, 5, 32)).shape == (2, 5, 30)
