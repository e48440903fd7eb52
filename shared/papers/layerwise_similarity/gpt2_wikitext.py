"""`paper` scale, language: GPT-2 fine-tuned on WikiText-103 with exits at every layer.

Follows the official code (kongwanbianjinyu/Layerwise-Representation-Similarity, SimCTG-based):
each non-empty line of the raw files is one sequence, truncated to ``max_len`` tokens; random
batches; AdamW, linear schedule with warm-up, gradient clipping. The shared head is ``lm_head``:
with ``exit_norm="none"`` (official) intermediate states reach it without ``ln_f``, with
``"shared_final"`` they go through ``ln_f`` first (the logit lens). Hugging Face's last hidden state
already has ``ln_f`` applied. Multi-exit adds one fresh ``Linear(d, vocab)`` per layer.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from shared.errors import require_files, require_hf_folder
from shared.papers.layerwise_similarity.exits import EXIT_NORMS, MODES, check_choice, exit_loss, exit_weights, saturation_layer
from shared.progress import progress

WIKITEXT_FILES = {"train": "wiki.train.raw", "valid": "wiki.valid.raw", "test": "wiki.test.raw"}


def require_gpt2(gpt2_path: str | Path | None) -> Path:
    """The local GPT-2 folder, or MissingInputError naming ``gpt2_path`` and the expected files."""
    what = "a Hugging Face GPT-2 folder (e.g. openai-community/gpt2 saved with save_pretrained)"
    return require_hf_folder("gpt2_path", gpt2_path, what, ["config.json", "tokenizer_config.json"])


def require_wikitext(wikitext_dir: str | Path | None) -> dict[str, Path]:
    """The three raw WikiText-103 files, or MissingInputError naming ``wikitext_dir``."""
    folder = require_files("wikitext_dir", wikitext_dir, WIKITEXT_FILES.values(),
                           "the unzipped wikitext-103-raw-v1 folder")
    return {split: folder / name for split, name in WIKITEXT_FILES.items()}


def tokenize_lines(path: Path, tokenizer, max_len: int, chunk: int = 10_000) -> list[list[int]]:
    """Token ids of every line with more than one token, truncated to ``max_len`` (as the official Data)."""
    lines = path.read_text(encoding="utf8").split("\n")
    sequences = []
    for start in range(0, len(lines), chunk):
        ids = tokenizer(lines[start:start + chunk], add_special_tokens=False)["input_ids"]
        sequences += [s[:max_len] for s in ids if len(s) > 1]
    return sequences


def make_batch(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask, labels) for next-token prediction; padded targets are -100."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    for row, s in enumerate(sequences):
        ids[row, :len(s)] = torch.tensor(s)
    lengths = torch.tensor([len(s) for s in sequences])
    valid = torch.arange(width)[None, :] < lengths[:, None]
    labels = ids[:, 1:].masked_fill(~valid[:, 1:], -100)
    return ids[:, :-1], valid[:, :-1].long(), labels


class GPT2Exits(nn.Module):
    """A GPT-2 LM with a classifier at every layer: its own ``lm_head`` shared, or one head per layer."""

    def __init__(self, lm: nn.Module, mode: str, exit_norm: str = "none"):
        super().__init__()
        self.lm, self.mode = lm, check_choice("mode", mode, MODES)
        self.exit_norm = check_choice("gpt2_exit_norm", exit_norm, EXIT_NORMS)
        d, vocab = lm.config.n_embd, lm.config.vocab_size
        n_layers = lm.config.n_layer
        self.heads = nn.ModuleList(nn.Linear(d, vocab, bias=False) for _ in range(n_layers)) if mode == "multi_exit" else None

    @property
    def n_layers(self) -> int:
        return self.lm.config.n_layer

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The L layers' states (embeddings dropped; the last one after ``ln_f``)."""
        out = self.lm.transformer(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        return out.hidden_states[1:]

    def logits_at(self, hidden: tuple[torch.Tensor, ...], layer: int) -> torch.Tensor:
        if self.heads is not None:
            return self.heads[layer](hidden[layer])
        h = hidden[layer]
        if self.exit_norm == "shared_final" and layer < self.n_layers - 1:
            h = self.lm.transformer.ln_f(h)
        return self.lm.lm_head(h)


def load_gpt2_exits(gpt2_path: str | Path | None, mode: str, exit_norm: str = "none"):
    """(tokenizer, GPT2Exits) from the local folder ``gpt2_path``."""
    from transformers import AutoTokenizer, GPT2LMHeadModel

    folder = require_gpt2(gpt2_path)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    lm = GPT2LMHeadModel.from_pretrained(folder, local_files_only=True)
    return tokenizer, GPT2Exits(lm, mode, exit_norm)


def pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)


def train_gpt2_exits(model: GPT2Exits, sequences: list[list[int]], pad: int, steps: int, batch_size: int = 8,
                     grad_accum: int = 16, lr: float = 2e-5, warmup_frac: float = 0.1, clip: float = 1.0,
                     weights: str = "linear", seed: int = 0) -> list[float]:
    """Fine-tune with the official recipe; return the mean loss of each optimizer step.

    As in the official code, ``alternating`` switches loss on every micro-batch.
    """
    from transformers import get_linear_schedule_with_warmup

    device = next(model.parameters()).device
    w = exit_weights(model.n_layers, weights)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_frac * steps), steps)
    rng = random.Random(seed)
    model.train()
    history, micro = [], 0
    for _ in progress(range(steps), desc=f"GPT-2 {model.mode}"):
        total = 0.0
        for _ in range(grad_accum):
            ids, mask, labels = (t.to(device) for t in make_batch(rng.sample(sequences, batch_size), pad))
            hidden = model.hidden_states(ids, mask)
            loss = exit_loss(lambda layer: model.logits_at(hidden, layer), labels, model.mode, w, micro) / grad_accum
            loss.backward()
            total += loss.item()
            micro += 1
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        history.append(total)
    model.eval()
    return history


@torch.no_grad()
def evaluate_gpt2_exits(model: GPT2Exits, sequences: list[list[int]], pad: int, batch_size: int = 8,
                        n_similarity_tokens: int = 20_000, seed: int = 0) -> dict:
    """Per layer on every valid token: accuracy, perplexity, predictions; states of a token subsample.

    Returns ``accuracy`` and ``perplexity`` (L,), ``saturation`` (n_tokens,) and ``features``
    (L, n_similarity_tokens, d) float32 on the CPU.
    """
    device = next(model.parameters()).device
    model.eval()
    n_total = sum(len(s) - 1 for s in sequences)
    chosen = torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[:n_similarity_tokens]
    keep = torch.zeros(n_total, dtype=torch.bool)
    keep[chosen] = True
    L = model.n_layers
    nll, predictions, features, offset = torch.zeros(L, dtype=torch.float64), [], [], 0
    for start in progress(range(0, len(sequences), batch_size), desc="evaluate"):
        ids, mask, labels = (t.to(device) for t in make_batch(sequences[start:start + batch_size], pad))
        hidden = model.hidden_states(ids, mask)
        valid = labels != -100
        targets = labels[valid]
        batch_preds = []
        for layer in range(L):
            logits = model.logits_at(hidden, layer)[valid].float()
            nll[layer] += torch.nn.functional.cross_entropy(logits, targets, reduction="sum").double().cpu()
            batch_preds.append(logits.argmax(-1).cpu())
        predictions.append(torch.stack(batch_preds))
        sub = keep[offset:offset + len(targets)].to(device)
        features.append(torch.stack([h[valid][sub].float().cpu() for h in hidden]))
        offset += len(targets)
    predictions = torch.cat(predictions, dim=1)
    labels_flat = torch.cat([torch.tensor(s[1:]) for s in sequences])
    return {
        "accuracy": (predictions == labels_flat).double().mean(1).numpy(),
        "perplexity": np.exp((nll / n_total).numpy()),
        "saturation": saturation_layer(predictions),
        "features": torch.cat(features, dim=1),
    }


def wikitext_corpus(wikitext_dir: str | Path | None, tokenizer, max_len: int) -> dict[str, list[list[int]]]:
    """Tokenized ``train`` and ``test`` sequences of the local WikiText-103 raw files."""
    files = require_wikitext(wikitext_dir)
    return {split: tokenize_lines(files[split], tokenizer, max_len) for split in ("train", "test")}
