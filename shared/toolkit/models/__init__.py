"""Classifiers whose forward returns (logits, features) and whose last layer is ``fc``.

``create_model(name, **kw)`` builds one by name, in the spirit of ``timm.create_model``.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from shared.errors import ParameterError
from shared.toolkit.models.mlp import MLP
from shared.toolkit.models.resnet import resnet18, wide_resnet50

MODELS: dict[str, Callable[..., nn.Module]] = {"mlp": MLP, "resnet18": resnet18, "wide_resnet50": wide_resnet50}


def create_model(name: str, param: str = "model", **kw) -> nn.Module:
    """The model called ``name`` built with ``kw``; ``param`` names the knob in error messages."""
    if name not in MODELS:
        raise ParameterError(param, f"unknown model {name!r}", sorted(MODELS))
    return MODELS[name](**kw)
