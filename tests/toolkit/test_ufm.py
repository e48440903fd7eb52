"""The unconstrained feature model reaches neural collapse for every loss (shared.toolkit.ufm)."""
import pytest
import torch

from shared.toolkit.losses import LOSSES, make_loss
from shared.toolkit.ufm import UFMSettings, train_ufm


@pytest.mark.parametrize("name", LOSSES)
def test_ufm_collapses_for_every_loss(name):
    history = train_ufm(make_loss(name), UFMSettings(num_classes=4, dim=6, per_class=5, steps=1500, eval_points=8), seed=0)
    first, last = history.iloc[0], history.iloc[-1]
    assert history["step"].iloc[-1] == 1500 and history["step"].is_monotonic_increasing
    assert last["objective"] < first["objective"]
    assert last["nc1"] < 1e-2 and last["nc1"] < first["nc1"] / 10
    assert last["nc2_w"] < 0.2 and last["nc3"] < 0.2


def test_ufm_is_deterministic():
    settings = UFMSettings(num_classes=3, dim=4, per_class=3, steps=50, eval_points=3)
    a, b = (train_ufm(make_loss("ce"), settings, seed=1) for _ in range(2))
    assert a.equals(b)


def test_ufm_restores_the_thread_count():
    before = torch.get_num_threads()
    train_ufm(make_loss("ls"), UFMSettings(num_classes=3, dim=4, per_class=2, steps=5, eval_points=2))
    assert torch.get_num_threads() == before
