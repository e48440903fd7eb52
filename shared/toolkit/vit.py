"""A small Vision Transformer in plain torch that returns every layer's CLS token."""
from __future__ import annotations

import torch
from torch import nn


class TinyViT(nn.Module):
    """Pre-LN ViT: square patches, a CLS token, learned positions, ``depth`` encoder layers.

    ``forward`` takes flat images (B, side*side*channels) or (B, C, H, W) and returns the CLS token
    after each layer, shape (depth, B, dim): no final norm (the exit heads hold their own).
    """

    def __init__(self, image_size: int = 28, patch_size: int = 7, channels: int = 1, dim: int = 64,
                 depth: int = 6, heads: int = 4, mlp_dim: int = 256):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
        self.image_size, self.patch_size, self.channels = image_size, patch_size, channels
        n_patches = (image_size // patch_size) ** 2
        self.patch_embed = nn.Linear(channels * patch_size ** 2, dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, n_patches + 1, dim) * 0.02)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, heads, mlp_dim, dropout=0.0, activation="gelu",
                                       batch_first=True, norm_first=True)
            for _ in range(depth)
        )

    @property
    def depth(self) -> int:
        return len(self.layers)

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C*H*W) or (B, C, H, W) -> (B, n_patches, C*p*p)."""
        B, p, s = x.shape[0], self.patch_size, self.image_size
        x = x.reshape(B, self.channels, s // p, p, s // p, p)
        return x.permute(0, 2, 4, 1, 3, 5).reshape(B, (s // p) ** 2, self.channels * p * p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch_embed(self.patches(x))
        z = torch.cat([self.cls.expand(len(tokens), -1, -1), tokens], dim=1) + self.pos
        cls_per_layer = []
        for layer in self.layers:
            z = layer(z)
            cls_per_layer.append(z[:, 0])
        return torch.stack(cls_per_layer)
