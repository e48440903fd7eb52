"""Exit weights, losses, saturation, layer-wise accuracy, and a tiny ViT training run."""
import pytest
import torch
import torch.nn.functional as F

from shared.errors import ParameterError
from shared.papers.layerwise_similarity.exits import (ExitHeads, exit_loss, exit_weights, layer_features, layer_predictions,
                          layerwise_accuracy, saturated_fraction, saturation_layer, train_exits)
from shared.toolkit.vit import TinyViT


@pytest.mark.parametrize("kind", ["linear", "uniform"])
@pytest.mark.parametrize("n_layers", [1, 4, 12])
def test_exit_weights_sum_to_one(kind, n_layers):
    assert float(exit_weights(n_layers, kind).sum()) == pytest.approx(1.0)


def test_linear_weights_are_the_official_ones():
    w = exit_weights(12)
    assert w.tolist() == pytest.approx([2 * l / (12 * 13) for l in range(1, 13)])
    assert float(w[-1]) * 78 / 12 == pytest.approx(1.0)  # the alternating step's scale in the code


def test_unknown_weighting_names_the_parameter():
    with pytest.raises(ParameterError, match="weights"):
        exit_weights(4, "quadratic")


def test_saturation_layer_on_hand_made_predictions():
    predictions = torch.tensor([
        [1, 0, 2, 3],   # layer 1
        [1, 1, 3, 3],   # layer 2
        [1, 0, 3, 1],   # layer 3
        [1, 1, 3, 1],   # layer 4 (final)
    ])
    saturation = saturation_layer(predictions)
    assert saturation.tolist() == [1, 4, 2, 3]
    assert saturated_fraction(saturation, 4) == pytest.approx(0.75)


def test_layerwise_accuracy_ignores_padding():
    predictions = torch.tensor([[0, 1, 2], [0, 0, 2]])
    targets = torch.tensor([0, 0, -100])
    assert layerwise_accuracy(predictions, targets).tolist() == pytest.approx([0.5, 1.0])


def losses_and_calls(mode: str, step: int = 0):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 4, generator=g)
    targets = torch.tensor([0, 1, 2, 3, -100])
    called = []

    def logits_at(layer):
        called.append(layer)
        return logits[layer]

    loss = exit_loss(logits_at, targets, mode, exit_weights(3), step)
    per_layer = [F.cross_entropy(logits[l], targets, ignore_index=-100) for l in range(3)]
    return float(loss), [float(x) for x in per_layer], called


def test_standard_loss_is_last_layer_ce_and_touches_only_the_last_layer():
    loss, per_layer, called = losses_and_calls("standard")
    assert loss == pytest.approx(per_layer[-1])
    assert called == [2]


@pytest.mark.parametrize("mode", ["aligned", "multi_exit"])
def test_aligned_loss_is_the_weighted_sum(mode):
    loss, per_layer, _ = losses_and_calls(mode)
    assert loss == pytest.approx((1 * per_layer[0] + 2 * per_layer[1] + 3 * per_layer[2]) / 6)


def test_alternating_switches_between_last_and_weighted():
    assert losses_and_calls("alternating", 0)[0] == pytest.approx(losses_and_calls("standard")[0])
    assert losses_and_calls("alternating", 1)[0] == pytest.approx(losses_and_calls("aligned")[0])


def test_vit_patches_tile_the_image_row_by_row():
    vit = TinyViT(image_size=28, patch_size=7)
    image = torch.arange(28 * 28, dtype=torch.float32).reshape(1, 28, 28)
    patches = vit.patches(image.reshape(1, -1))
    assert patches.shape == (1, 16, 49)
    assert torch.equal(patches[0, 1], image[0, :7, 7:14].reshape(-1))
    assert torch.equal(patches[0, 4], image[0, 7:14, :7].reshape(-1))


def test_shared_heads_use_one_classifier_and_multi_exit_one_per_layer():
    assert len(ExitHeads(8, 3, n_layers=4).heads) == 1
    heads = ExitHeads(8, 3, n_layers=4, per_layer=True, exit_norm="none")
    assert len(heads.heads) == 4 and isinstance(heads.head(0), torch.nn.Linear)
    assert heads(torch.randn(4, 5, 8)).shape == (4, 5, 3)


@pytest.mark.parametrize("mode", ["standard", "aligned", "alternating", "multi_exit"])
def test_a_tiny_vit_trains_in_every_mode(mode):
    torch.manual_seed(0)
    X, y = torch.rand(64, 784), torch.randint(0, 10, (64,))
    vit = TinyViT(dim=16, depth=2, heads=2, mlp_dim=32)
    heads = ExitHeads(16, 10, n_layers=2, per_layer=mode == "multi_exit")
    before = [p.clone() for p in vit.parameters()]
    history = train_exits(vit, heads, X, y, mode, exit_weights(2), epochs=2, lr=1e-3, weight_decay=0.05,
                          batch_size=32, seed=0)
    assert len(history) == 2 and all(torch.isfinite(torch.tensor(history)))
    assert any(not torch.equal(a, b) for a, b in zip(before, vit.parameters()))
    features = layer_features(vit, X)
    assert features.shape == (2, 64, 16)
    assert layer_predictions(heads, features).shape == (2, 64)
