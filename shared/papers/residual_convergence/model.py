"""A Transformer layer (softmax attention, residual switch alpha, GELU FFN) and its stack.

For sample i with tokens X_i (N x d):
    S_i = row-softmax(beta * X_i W_Q W_K^T X_i^T / sqrt(d))
    Z_i = S_i X_i W_V + alpha * X_i                    (attention output, one block per layer)
    F_i = GELU(Z_i W_1) W_2                            (FFN head, d -> m -> d_y)
With ``layers`` > 1 the attention block is applied repeatedly, H <- S(H) H W_V + alpha H,
before the FFN head. The loss is (1/2n) sum_i ||F_i - Y_i||_F^2.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as fn


class Forward(NamedTuple):
    """What one forward pass returns: the prediction, the last attention output and its S."""

    F: torch.Tensor  # (n, N, d_y) predictions
    Z: torch.Tensor  # (n, N, d) output of the last attention block
    S: torch.Tensor  # (n, N, N) attention matrices of the last block


def _gaussian(shape: tuple[int, ...], std: float, generator: torch.Generator) -> nn.Parameter:
    return nn.Parameter(torch.randn(shape, generator=generator, dtype=torch.float64) * std)


class ResidualTransformer(nn.Module):
    """``layers`` attention blocks with residual scale ``alpha`` and logit scale ``beta``, then an FFN.

    Init: W_Q, W_K, W_V, W_1 ~ N(0, 1/d) and W_2 ~ N(0, 1/m), drawn from ``generator``.
    ``train_qk=False`` holds W_Q and W_K at their initial values.
    """

    def __init__(self, d: int, m: int, d_y: int, *, alpha: float = 1.0, beta: float = 1.0,
                 layers: int = 1, train_qk: bool = True, generator: torch.Generator | None = None):
        super().__init__()
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.alpha, self.beta, self.d = float(alpha), float(beta), d
        std_in = 1 / math.sqrt(d)
        self.w_q = nn.ParameterList(_gaussian((d, d), std_in, generator) for _ in range(layers))
        self.w_k = nn.ParameterList(_gaussian((d, d), std_in, generator) for _ in range(layers))
        self.w_v = nn.ParameterList(_gaussian((d, d), std_in, generator) for _ in range(layers))
        self.w_1 = _gaussian((d, m), std_in, generator)
        self.w_2 = _gaussian((m, d_y), 1 / math.sqrt(m), generator)
        for p in [*self.w_q, *self.w_k]:
            p.requires_grad_(train_qk)

    @property
    def layers(self) -> int:
        return len(self.w_v)

    def attention(self, H: torch.Tensor, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One attention block: returns (S, S H W_V + alpha H) for H of shape (n, N, d)."""
        logits = (H @ self.w_q[layer]) @ (H @ self.w_k[layer]).transpose(-1, -2)
        S = torch.softmax(self.beta * logits / math.sqrt(self.d), dim=-1)
        return S, S @ H @ self.w_v[layer] + self.alpha * H

    def forward(self, X: torch.Tensor) -> Forward:
        H, S = X, None
        for layer in range(self.layers):
            S, H = self.attention(H, layer)
        return Forward(fn.gelu(H @ self.w_1) @ self.w_2, H, S)


def squared_loss(F: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """(1/2n) sum_i ||F_i - Y_i||_F^2 over the n samples of the batch."""
    return 0.5 * ((F - Y) ** 2).sum() / F.shape[0]


def stacked(Z: torch.Tensor) -> torch.Tensor:
    """The blocks Z_i (n, N, d) stacked vertically into the (nN) x d attention output matrix."""
    return Z.reshape(-1, Z.shape[-1])
