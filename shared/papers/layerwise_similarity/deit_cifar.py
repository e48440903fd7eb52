"""`paper` scale, vision: a pretrained DeiT-S (local Hugging Face folder) with exits, on CIFAR-10.

The paper's fine-tuning recipe is not published: images are upsampled to the model's input size and
normalized with its processor's statistics, with random crop + flip; training is ``exits.train_exits``
(AdamW + OneCycle). The backbone returns each layer's CLS token before the final LayerNorm; with
``exit_norm="shared_final"`` the shared head's LayerNorm starts from the pretrained final norm.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from shared.errors import require_hf_folder
from shared.papers.layerwise_similarity.exits import ExitHeads

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def require_deit(deit_path: str | Path | None) -> Path:
    """The local DeiT folder, or MissingInputError naming ``deit_path`` and the expected files."""
    what = "a Hugging Face ViT/DeiT folder (e.g. facebook/deit-small-patch16-224 saved with save_pretrained)"
    return require_hf_folder("deit_path", deit_path, what)


def processor_statistics(folder: Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) of the folder's preprocessor_config.json, else ImageNet's."""
    config = folder / "preprocessor_config.json"
    if config.exists():
        stats = json.loads(config.read_text())
        return tuple(stats.get("image_mean", IMAGENET_MEAN)), tuple(stats.get("image_std", IMAGENET_STD))
    return IMAGENET_MEAN, IMAGENET_STD


class HFViTBackbone(nn.Module):
    """A Hugging Face ViT encoder as a backbone: images in [0, 1] (B, 3, H, W) -> CLS per layer (L, B, d)."""

    def __init__(self, model: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.model = model
        self.size = model.config.image_size
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if x.shape[-1] != self.size:
            x = nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        out = self.model(pixel_values=(x - self.mean) / self.std, output_hidden_states=True)
        return torch.stack([h[:, 0] for h in out.hidden_states[1:]])


def load_deit_exits(deit_path: str | Path | None, n_classes: int, mode: str, exit_norm: str):
    """(backbone, heads) from the local folder: heads shared, or one per layer for ``multi_exit``."""
    from transformers import AutoModel

    folder = require_deit(deit_path)
    model = AutoModel.from_pretrained(folder, local_files_only=True, add_pooling_layer=False)
    backbone = HFViTBackbone(model, *processor_statistics(folder))
    heads = ExitHeads(backbone.hidden_size, n_classes, model.config.num_hidden_layers,
                      per_layer=mode == "multi_exit", exit_norm=exit_norm)
    final_norm = getattr(model, "layernorm", None)
    if exit_norm == "shared_final" and final_norm is not None:
        for head in heads.heads:
            head[0].load_state_dict(final_norm.state_dict())
    return backbone, heads


def as_unit_images(x_uint8) -> torch.Tensor:
    """uint8 (N, 3, 32, 32) -> float32 in [0, 1]."""
    return torch.as_tensor(x_uint8).float() / 255.0
