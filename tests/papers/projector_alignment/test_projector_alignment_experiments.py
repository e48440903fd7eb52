"""The experiment: lambda = 0 is caption-only, a tiny end-to-end run gives finite metrics."""
import math

import numpy as np
import torch

from shared.toolkit.mllm import MLPProjector, TinyCausalLM, freeze
from shared.papers.projector_alignment import experiments as ex
from shared.papers.projector_alignment import scenes as sc


def tiny():
    rng = np.random.default_rng(0)
    X, y = rng.random((60, 784)).astype(np.float32), np.arange(60) % 10
    torch.manual_seed(0)
    return X, y, ex.toy_backbone(freeze(TinyCausalLM(len(sc.VOCAB), d_model=32, n_layers=1)))


def test_lambda_zero_gives_exactly_the_caption_gradients():
    X, y, backbone = tiny()
    s = sc.make_scenes(X, y, np.arange(60), 4, 0)
    V = torch.randn(4, 16, 64)
    grads = []
    for lam in (0.0, None):
        torch.manual_seed(1)
        proj = MLPProjector(64, 32)
        tokens = proj(V)
        loss = ex.caption_loss(backbone, tokens, s.captions())
        if lam is not None:
            from shared.toolkit.alignment import patch_aligned_loss
            loss = loss + lam * patch_aligned_loss(tokens, ex.aligned_targets(backbone, s.patch_words()))
        loss.backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in proj.parameters()]))
    assert torch.equal(grads[0], grads[1])


def test_tiny_run_is_finite_and_deterministic():
    X, y, _ = tiny()
    train, test = ex.split_digits(y, 0, n_train=40)
    enc, stats = ex.pretrain_encoder(X, y, train, test, steps=2, seed=0, batch=8)
    lm, loss = ex.pretrain_lm(steps=2, seed=0, batch=4, d_model=32, n_layers=1)
    outs = [ex.run_arms(ex.toy_backbone(lm), enc, X, y, train, test, [0, 1], 3, 16, 4, seed=0, batch=4, log_every=2)
            for _ in range(2)]
    m = outs[0]["metrics"]
    assert set(m) == {0.0, 1.0} and all(math.isfinite(v) for arm in m.values() for v in arm.values())
    assert m == outs[1]["metrics"]
    assert list(outs[0]["trace"].step.unique()) == [0, 2, 3]
    assert ex.greedy_captions(ex.toy_backbone(lm), torch.zeros(2, 16, 32)).shape == (2, sc.CAPTION_LEN)
    assert set(stats) == {"digit_acc", "color_acc"} and math.isfinite(loss)
