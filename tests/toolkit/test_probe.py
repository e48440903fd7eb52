import numpy as np
import torch
from torch import nn

from shared.toolkit.models import create_model
from shared.toolkit.neural_collapse import nc1
from shared.toolkit.probe import capture, layer_nc1, linear_probe


def test_probe_separates_clusters_and_fails_on_shuffled_labels():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 60)
    x = rng.standard_normal((180, 8)) + 4 * np.eye(8)[y]
    assert linear_probe(x[::2], y[::2], x[1::2], y[1::2]) > 0.95
    shuffled = rng.permutation(y)
    assert linear_probe(x[::2], shuffled[::2], x[1::2], shuffled[1::2]) < 0.6


def test_last_captured_layer_is_the_models_features():
    torch.manual_seed(0)
    model = create_model("mlp", in_features=10, num_classes=3, widths=(16, 8))
    x = torch.randn(50, 10)
    feats = capture(model, {"b1": model.features[3], "b2": model.features[6]}, x, batch_size=16)
    model.eval()
    assert feats["b1"].shape == (50, 16)
    assert torch.allclose(feats["b2"], model(x)[1], atol=1e-6)


def test_capture_pools_conv_outputs_and_keeps_the_mode():
    conv = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
    conv.train()
    out = capture(conv, {"c": conv[0]}, torch.randn(5, 1, 6, 6))
    assert out["c"].shape == (5, 4) and conv.training


def test_layer_nc1_of_collapsed_features_is_near_zero_and_scale_invariant():
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(2), 50)
    h = np.eye(6)[y] * 10 + 1e-3 * rng.standard_normal((100, 6))
    values = layer_nc1({"a": torch.as_tensor(h), "b": torch.as_tensor(5 * h)}, y, 2)
    assert values["a"] < 1e-6
    assert np.isclose(values["a"], values["b"]) and np.isclose(values["a"], nc1(h, y, 2))
