"""Inputs X (n, N, d) with unit-norm token rows, and Gaussian targets Y (n, N, d_y).

Two sources of X: i.i.d. Gaussian rows, or the frozen input embeddings of a local Hugging Face
checkpoint looked up on windows of N consecutive tokens of a local text file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from shared.errors import MissingInputError, ParameterError, require_files

FEATURES = ("gaussian", "embeddings")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
Problem = Callable[[int], tuple[torch.Tensor, torch.Tensor]]


def generator(seed: int, stream: int) -> torch.Generator:
    """An independent torch generator for (seed, stream): data and weights never share draws."""
    state = np.random.SeedSequence([seed, stream]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


def unit_rows(X: torch.Tensor) -> torch.Tensor:
    return X / torch.linalg.vector_norm(X, dim=-1, keepdim=True)


def gaussian_tokens(n: int, N: int, d: int, gen: torch.Generator) -> torch.Tensor:
    """n samples of N tokens: i.i.d. Gaussian rows in R^d normalized to unit norm, float64."""
    return unit_rows(torch.randn(n, N, d, generator=gen, dtype=torch.float64))


def gaussian_targets(n: int, N: int, d_y: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randn(n, N, d_y, generator=gen, dtype=torch.float64)


def load_embeddings(checkpoint: str | Path | None, text_file: str | Path | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The input-embedding table (vocab, d) of ``checkpoint`` and the token ids of ``text_file``.

    ``checkpoint`` is a folder with config.json, the weights and a tokenizer; a missing path
    raises MissingInputError naming the parameter.
    """
    from transformers import AutoModel, AutoTokenizer

    what = "a Hugging Face checkpoint (config.json, weights and tokenizer files)"
    folder = require_files("embedding_checkpoint", checkpoint, ["config.json"], what)
    if not any((folder / name).exists() for name in TOKENIZER_FILES):
        raise MissingInputError("embedding_checkpoint", folder, f"{what}; found no {' or '.join(TOKENIZER_FILES)}")
    if not text_file or not Path(text_file).expanduser().is_file():
        raise MissingInputError("text_file", text_file, "a UTF-8 text file to take tokens from")
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    table = AutoModel.from_pretrained(folder, local_files_only=True).get_input_embeddings().weight.detach()
    text = Path(text_file).expanduser().read_text(encoding="utf-8")
    ids = torch.as_tensor(tokenizer(text)["input_ids"], dtype=torch.long)
    return table.to(torch.float64), ids


def embedding_windows(table: torch.Tensor, ids: torch.Tensor, n: int, N: int,
                      gen: torch.Generator) -> torch.Tensor:
    """n windows of N consecutive tokens at random starts, as unit-norm embedding rows."""
    if len(ids) < N:
        raise ParameterError("text_file", f"has {len(ids)} tokens, fewer than N = {N}")
    starts = torch.randint(0, len(ids) - N + 1, (n,), generator=gen)
    windows = ids[starts[:, None] + torch.arange(N)]
    return unit_rows(table[windows])


def make_problem(n: int, N: int, d: int, d_y: int, features: str = "gaussian",
                 embedding_checkpoint: str | None = None, text_file: str | None = None) -> Problem:
    """A function seed -> (X, Y). With ``features="embeddings"``, d is the checkpoint's width."""
    if features not in FEATURES:
        raise ParameterError("features", f"unknown value {features!r}", FEATURES)
    if features == "gaussian":
        def sample(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
            gen = generator(seed, 0)
            return gaussian_tokens(n, N, d, gen), gaussian_targets(n, N, d_y, gen)
        return sample

    table, ids = load_embeddings(embedding_checkpoint, text_file)

    def sample_embeddings(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        gen = generator(seed, 0)
        return embedding_windows(table, ids, n, N, gen), gaussian_targets(n, N, d_y, gen)
    return sample_embeddings
