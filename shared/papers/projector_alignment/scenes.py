"""Coloured-MNIST 2x2 scenes with captions and per-patch labels (the toy MLLM's data)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
COLOR_WORDS = ["red", "green", "blue"]
VOCAB = ["<pad>", "<bos>", "<eos>", ",", "."] + DIGIT_WORDS + COLOR_WORDS   # 18 tokens
TOKEN = {w: i for i, w in enumerate(VOCAB)}
PAD, BOS, EOS, COMMA, STOP = 0, 1, 2, 3, 4
DIGIT_IDS = torch.arange(5, 15)
COLOR_IDS = torch.arange(15, 18)
CONTENT_IDS = torch.arange(5, 18)
COLOR_GAINS = torch.tensor([[1.0, 0.15, 0.15], [0.15, 1.0, 0.15], [0.15, 0.15, 1.0]])
GRID = 4                                    # the encoder's patch grid: 4x4 patches of 14x14 pixels
CELL_TO_OBJECT = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3])   # patch -> quadrant (reading order)
CAPTION_LEN = 12                            # 4 x (color, digit, separator)


@dataclass
class Scenes:
    """``images`` (N, 3, 56, 56) in [0, 1]; ``digits`` and ``colors`` (N, 4): class per quadrant, reading order."""

    images: torch.Tensor
    digits: torch.Tensor
    colors: torch.Tensor

    def __len__(self) -> int:
        return len(self.digits)

    def captions(self) -> torch.Tensor:
        return caption_ids(self.digits, self.colors)

    def object_words(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Word ids (N, 4) of each object's digit and color."""
        return DIGIT_IDS[self.digits], COLOR_IDS[self.colors]

    def patch_words(self) -> torch.Tensor:
        """(N, 16, 2): the color and digit word ids of the object under each patch."""
        d, c = self.object_words()
        return torch.stack([c[:, CELL_TO_OBJECT], d[:, CELL_TO_OBJECT]], dim=-1)


def tint(digits: torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
    """Grey digits (..., 28, 28) times RGB gains -> (..., 3, 28, 28)."""
    return digits.unsqueeze(-3) * COLOR_GAINS[colors][..., None, None]


def make_scenes(X: np.ndarray, y: np.ndarray, pool: np.ndarray, n: int, seed: int) -> Scenes:
    """``n`` scenes of four digits drawn from ``pool`` (indices into X (., 784), y), each with a random color."""
    g = torch.Generator().manual_seed(seed)
    pick = torch.as_tensor(pool)[torch.randint(len(pool), (n, 4), generator=g)]
    colors = torch.randint(3, (n, 4), generator=g)
    digits = torch.as_tensor(y)[pick].long()
    tiles = tint(torch.as_tensor(X)[pick].reshape(n, 4, 28, 28), colors)          # (n, 4, 3, 28, 28)
    top = torch.cat([tiles[:, 0], tiles[:, 1]], dim=-1)
    bottom = torch.cat([tiles[:, 2], tiles[:, 3]], dim=-1)
    return Scenes(torch.cat([top, bottom], dim=-2), digits, colors)


def caption_ids(digits: torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
    """(N, 12): ``red three , blue seven , green one , red nine .``"""
    n = digits.shape[0]
    sep = torch.tensor([COMMA, COMMA, COMMA, STOP]).expand(n, 4)
    return torch.stack([COLOR_IDS[colors], DIGIT_IDS[digits], sep], dim=-1).reshape(n, CAPTION_LEN)


def caption_text(ids) -> str:
    return " ".join(VOCAB[int(i)] for i in ids)


def parse_caption(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of ``caption_ids`` for well-formed captions: (digits, colors), each (N, 4)."""
    t = ids.reshape(-1, 4, 3)
    return t[..., 1] - 5, t[..., 0] - 15


def context_ids(digits: torch.Tensor, colors: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(N, 16) context tokens of LM pretraining: for patch k, the color or the digit word of its object, at random."""
    own = torch.stack([COLOR_IDS[colors][:, CELL_TO_OBJECT], DIGIT_IDS[digits][:, CELL_TO_OBJECT]], dim=-1)
    choice = torch.randint(2, own.shape[:2], generator=generator)
    return own.gather(-1, choice[..., None]).squeeze(-1)
