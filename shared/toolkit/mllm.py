"""A small multimodal LM from parts: a frozen CNN patch encoder, an MLP projector (LLaVA-1.5 style) and a
frozen causal LM fed with ``inputs_embeds``. Plain torch; HF causal LMs plug in through ``HFLanguageModel``."""
from __future__ import annotations

import torch
from torch import nn


class PatchCNN(nn.Module):
    """Four 3x3 convs (32-64-64-64, ReLU, max-pools after the first two), adaptive-pooled to a ``grid`` x ``grid`` map of patch
    vectors. ``heads`` (name -> classes) classify the globally pooled features, for pretraining."""

    def __init__(self, in_channels: int = 3, width: int = 64, grid: int = 4, heads: dict[str, int] | None = None):
        super().__init__()
        self.grid, self.dim = grid, width
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        self.heads = nn.ModuleDict({k: nn.Linear(width, n) for k, n in (heads or {}).items()})

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, grid*grid, width), patches in reading order."""
        f = nn.functional.adaptive_avg_pool2d(self.features(x), self.grid)
        return f.flatten(2).transpose(1, 2)

    def classify(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = self.features(x).mean((2, 3))
        return {k: head(pooled) for k, head in self.heads.items()}


class MLPProjector(nn.Module):
    """Linear - GELU - Linear, as LLaVA-1.5's ``mlp2x_gelu``."""

    def __init__(self, d_in: int, d_out: int, d_hidden: int | None = None):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_in, d_hidden or d_out), nn.GELU(), nn.Linear(d_hidden or d_out, d_out))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.net(v)


class TinyCausalLM(nn.Module):
    """A pre-LN causal transformer with learned positions and an untied head; ``forward(embeds) -> logits``."""

    def __init__(self, vocab_size: int, d_model: int = 128, n_layers: int = 4, n_heads: int = 4, max_len: int = 64):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Parameter(torch.randn(max_len, d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, 4 * d_model, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)
        self.d_model = d_model

    def input_embeddings(self) -> torch.Tensor:
        return self.embed.weight

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        T = embeds.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(T, device=embeds.device, dtype=embeds.dtype)
        h = self.blocks(embeds + self.pos[:T], mask=mask, is_causal=True)
        return self.head(self.norm(h))


class HFLanguageModel(nn.Module):
    """A Hugging Face causal LM behind the same interface: ``input_embeddings()`` and ``forward(embeds)``."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.d_model = model.get_input_embeddings().weight.shape[1]

    def input_embeddings(self) -> torch.Tensor:
        return self.model.get_input_embeddings().weight

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        return self.model(inputs_embeds=embeds).logits


def freeze(module: nn.Module) -> nn.Module:
    """Eval mode, no gradients."""
    return module.eval().requires_grad_(False)
