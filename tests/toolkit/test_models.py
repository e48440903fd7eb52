"""Shapes of the classifiers in shared.toolkit.models (forward returns (logits, features))."""
import pytest
import torch

from shared.errors import ParameterError
from shared.toolkit.models import create_model


def test_mlp_shapes():
    model = create_model("mlp", in_features=784, num_classes=10, widths=(32, 16))
    logits, features = model(torch.randn(5, 1, 28, 28))
    assert logits.shape == (5, 10) and features.shape == (5, 16)
    assert model.fc.bias is not None


def test_resnet18_shapes():
    model = create_model("resnet18", num_classes=10)
    logits, features = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 10) and features.shape == (2, 512)


@pytest.mark.slow
@pytest.mark.parametrize("width", [0.25, 2])
def test_wide_resnet50_keeps_2048_features_and_widens_the_bottleneck(width):
    model = create_model("wide_resnet50", num_classes=100, width=width)
    logits, features = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 100) and features.shape == (2, 2048)
    assert model.layers[0][0].conv1.out_channels == int(64 * width)


def test_unknown_model_names_the_parameter():
    with pytest.raises(ParameterError, match=r"parameter 'model'.*'vit'.*mlp"):
        create_model("vit")
