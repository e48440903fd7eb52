"""The four losses of Zhou et al. 2022 (shared.toolkit.losses)."""
import pytest
import torch
import torch.nn.functional as F

from shared.errors import ParameterError
from shared.toolkit.losses import LOSSES, make_loss


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(16, 10, generator=g), torch.randint(0, 10, (16,), generator=g)


def test_ce_is_cross_entropy(batch):
    logits, y = batch
    assert make_loss("ce")(logits, y) == pytest.approx(F.cross_entropy(logits, y).item())


def test_ls_is_the_official_label_smoothing(batch):
    logits, y = batch
    log_p = F.log_softmax(logits, 1)
    official = (0.95 * F.nll_loss(log_p, y) + 0.05 * (-log_p.mean(1)).mean()).item()
    assert make_loss("ls")(logits, y).item() == pytest.approx(official, rel=1e-6)
    assert make_loss("ls", ls_alpha=0.2)(logits, y).item() == pytest.approx(F.cross_entropy(logits, y, label_smoothing=0.2).item())


def test_focal_with_gamma_zero_is_cross_entropy(batch):
    logits, y = batch
    assert make_loss("fl", fl_gamma=0.0)(logits, y).item() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)


def test_focal_down_weights_confident_samples(batch):
    logits, y = batch
    p = F.softmax(logits, 1).gather(1, y[:, None]).squeeze(1)
    expected = (-(1 - p) ** 3 * p.log()).mean().item()
    assert make_loss("fl")(logits, y).item() == pytest.approx(expected, rel=1e-6)
    assert make_loss("fl")(logits, y) < make_loss("ce")(logits, y)


def test_mse_targets_rescaled_one_hot(batch):
    logits, y = batch
    target = 15.0 * F.one_hot(y, 10).float()
    assert make_loss("mse")(logits, y).item() == pytest.approx(((logits - target) ** 2).mean().item(), rel=1e-6)
    assert make_loss("mse", mse_rescale=1.0)(F.one_hot(y, 10).float(), y).item() == 0


@pytest.mark.parametrize("name", LOSSES)
def test_every_loss_has_gradients(batch, name):
    logits, y = batch
    logits.requires_grad_(True)
    make_loss(name)(logits, y).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_unknown_loss_names_the_parameter_and_choices():
    with pytest.raises(ParameterError, match=r"parameter 'losses'.*'hinge'.*ce, ls, fl, mse"):
        make_loss("hinge", param="losses")
