"""Coloured-MNIST scenes, captions and per-patch labels."""
import numpy as np
import torch

from shared.papers.projector_alignment import scenes as sc


def fake_digits(n=40):
    rng = np.random.default_rng(0)
    return rng.random((n, 784)).astype(np.float32), np.arange(n) % 10


def test_vocabulary_and_cell_map():
    assert len(sc.VOCAB) == 18 and len(set(sc.VOCAB)) == 18
    quadrant = torch.tensor([[(r // 2) * 2 + c // 2 for c in range(4)] for r in range(4)]).reshape(-1)
    assert torch.equal(sc.CELL_TO_OBJECT, quadrant)


def test_seeded_scenes_are_reproducible_and_tinted():
    X, y = fake_digits()
    a, b = sc.make_scenes(X, y, np.arange(40), 5, seed=3), sc.make_scenes(X, y, np.arange(40), 5, seed=3)
    assert torch.equal(a.images, b.images) and a.images.shape == (5, 3, 56, 56)
    assert not torch.equal(a.images, sc.make_scenes(X, y, np.arange(40), 5, seed=4).images)
    dominant = a.images[:, :, :28, :28].sum((2, 3)).argmax(1)     # quadrant 0's dominant channel is its color
    assert torch.equal(dominant, a.colors[:, 0])


def test_caption_round_trip_and_text():
    digits, colors = torch.tensor([[3, 7, 1, 9]]), torch.tensor([[0, 2, 1, 0]])
    ids = sc.caption_ids(digits, colors)
    assert sc.caption_text(ids[0]) == "red three , blue seven , green one , red nine ."
    d, c = sc.parse_caption(ids)
    assert torch.equal(d, digits) and torch.equal(c, colors)


def test_patch_words_and_context_come_from_the_patch_object():
    X, y = fake_digits()
    s = sc.make_scenes(X, y, np.arange(40), 4, seed=0)
    words = s.patch_words()
    d, c = s.object_words()
    assert torch.equal(words[:, 5, 0], c[:, 0]) and torch.equal(words[:, 15, 1], d[:, 3])
    ctx = sc.context_ids(s.digits, s.colors, torch.Generator().manual_seed(0))
    assert ((ctx[..., None] == words).any(-1)).all()
