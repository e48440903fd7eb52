"""Last-token hidden states of a causal LM, layer by layer; task-vector patching; the logit lens.

Prompts are batched with left padding, so the last position is every prompt's last token, and
with position ids ``cumsum(mask) - 1``, so a padded batch gives the states of single runs.
Layer l = 1..L is HF's ``hidden_states[l]``: the output of block l, except that
``hidden_states[L]`` is after the final norm.
"""
from __future__ import annotations

import copy
import inspect
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from shared.toolkit.llm import decoder_parts
from shared.progress import progress


@dataclass
class LastTokenRun:
    """What one pass over a list of prompts keeps, on the CPU."""

    states: torch.Tensor         # (L, n, d) float32: hidden_states[1..L] at the last token
    pre_norm_last: torch.Tensor  # (n, d): block L's output before the final norm
    top1: torch.Tensor           # (n,): the model's greedy next token

    def block_outputs(self) -> torch.Tensor:
        """(L, n, d) outputs of blocks 1..L, all before the final norm (what a patch replaces)."""
        return torch.cat([self.states[:-1], self.pre_norm_last[None]])


def encode_left_padded(tokenizer, texts: Sequence[str]) -> dict[str, torch.Tensor]:
    """Token ids left-padded to a common length, the attention mask, and matching position ids."""
    ids = [tokenizer(t)["input_ids"] for t in texts]
    pad = next((p for p in (tokenizer.pad_token_id, tokenizer.eos_token_id) if p is not None), 0)
    width = max(map(len, ids))
    input_ids = torch.tensor([[pad] * (width - len(row)) + row for row in ids])
    mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in ids])
    return {"input_ids": input_ids, "attention_mask": mask, "position_ids": (mask.cumsum(-1) - 1).clamp(min=0)}


def _forward_kwargs(model, batch: dict[str, torch.Tensor]) -> dict:
    """The batch, less what the model's forward does not take, plus logits for the last token only."""
    accepted = inspect.signature(model.forward).parameters
    kwargs = {k: v.to(model.device) for k, v in batch.items() if k in accepted}
    if "logits_to_keep" in accepted:
        kwargs["logits_to_keep"] = 1
    return kwargs


@contextmanager
def _capture_input(module: torch.nn.Module, store: dict) -> Iterator[None]:
    """Keep the last-position slice of ``module``'s first input in ``store['x']``."""
    handle = module.register_forward_hook(lambda _m, args, _out: store.__setitem__("x", args[0][:, -1]))
    try:
        yield
    finally:
        handle.remove()


def _length_sorted_batches(tokenizer, texts: Sequence[str], batch_size: int) -> list[list[int]]:
    """Indices of ``texts`` in batches of similar token length (less padding)."""
    order = sorted(range(len(texts)), key=lambda i: len(tokenizer(texts[i])["input_ids"]))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


@torch.inference_mode()
def run_last_token(model, tokenizer, texts: Sequence[str], batch_size: int = 16,
                   desc: str | None = None) -> LastTokenRun:
    """Forward ``texts`` in left-padded batches; keep the last-token states and the greedy next token."""
    parts = decoder_parts(model)
    n, L, d = len(texts), parts.n_layers, model.config.hidden_size
    run = LastTokenRun(torch.zeros(L, n, d), torch.zeros(n, d), torch.zeros(n, dtype=torch.long))
    for rows in progress(_length_sorted_batches(tokenizer, texts, batch_size), desc=desc):
        batch = encode_left_padded(tokenizer, [texts[i] for i in rows])
        store: dict = {}
        with _capture_input(parts.final_norm, store):
            out = model(**_forward_kwargs(model, batch), output_hidden_states=True, use_cache=False)
        states = torch.stack([h[:, -1] for h in out.hidden_states[1:]])  # (L, b, d)
        run.states[:, rows] = states.float().cpu()
        run.pre_norm_last[rows] = store["x"].float().cpu()
        run.top1[rows] = out.logits[:, -1].argmax(-1).cpu()
    return run


class _Stop(Exception):
    """Raised by a forward hook to end a pass once the block it watches has run."""


@torch.inference_mode()
def last_token_states_at(model, tokenizer, texts: Sequence[str], layer: int, batch_size: int = 16,
                         desc: str | None = None) -> torch.Tensor:
    """(n, d) ``run_last_token(...).states[layer - 1]``, the same values; below the last layer the pass
    stops after block ``layer``, so the later blocks and the unembedding never run."""
    parts = decoder_parts(model)
    if not 1 <= layer <= parts.n_layers:
        raise ValueError(f"layer must be in 1..{parts.n_layers}, got {layer}")
    if layer == parts.n_layers:  # hidden_states[L] is after the final norm: the whole pass
        return run_last_token(model, tokenizer, texts, batch_size, desc).states[-1]
    out, store = torch.zeros(len(texts), model.config.hidden_size), {}

    def keep_and_stop(_module, _args, output):
        store["h"] = (output[0] if isinstance(output, tuple) else output)[:, -1]
        raise _Stop

    handle = parts.blocks[layer - 1].register_forward_hook(keep_and_stop)
    try:
        for rows in progress(_length_sorted_batches(tokenizer, texts, batch_size), desc=desc):
            batch = encode_left_padded(tokenizer, [texts[i] for i in rows])
            try:
                model(**_forward_kwargs(model, batch), use_cache=False)
            except _Stop:
                pass
            out[rows] = store.pop("h").float().cpu()
    finally:
        handle.remove()
    return out


@torch.inference_mode()
def logit_lens_top1(model, run: LastTokenRun, batch_size: int = 64) -> torch.Tensor:
    """(L, n) top-1 of unembed(final_norm(h_l)) for layers 1..L-1; at L the model's own top-1."""
    parts = decoder_parts(model)
    states = run.states[:-1]
    dtype = next(model.parameters()).dtype
    top1 = [parts.unembed(parts.final_norm(states[:, part].to(model.device, dtype))).argmax(-1).cpu()
            for part in (slice(i, i + batch_size) for i in range(0, states.shape[1], batch_size))]
    return torch.cat([torch.cat(top1, 1), run.top1[None]])


@contextmanager
def patch_last_position(block: torch.nn.Module, vectors: torch.Tensor) -> Iterator[None]:
    """Within the context, ``block``'s output at the last position is replaced by ``vectors``."""
    def hook(_module, _args, output):
        hidden = output[0] if isinstance(output, tuple) else output
        hidden = hidden.clone()
        hidden[:, -1] = vectors.to(hidden.dtype)
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    handle = block.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@torch.inference_mode()
def patched_last_logits(model, batch: dict[str, torch.Tensor], layer: int, vectors: torch.Tensor) -> torch.Tensor:
    """(b, V) next-token logits of a left-padded batch when block ``layer`` (1..L) outputs ``vectors`` last."""
    with patch_last_position(decoder_parts(model).blocks[layer - 1], vectors.to(model.device)):
        return model(**_forward_kwargs(model, batch), use_cache=False).logits[:, -1]


@torch.inference_mode()
def _patched_logits_cached(model, batch: dict[str, torch.Tensor], layers: Sequence[int],
                           vectors: torch.Tensor) -> torch.Tensor:
    """As ``patched_last_logits`` for each layer, but the prefix runs once and each layer only the last token."""
    prefix = {k: v[:, :-1] for k, v in batch.items()}
    cache = model(**_forward_kwargs(model, prefix), use_cache=True).past_key_values
    last = {"input_ids": batch["input_ids"][:, -1:], "position_ids": batch["position_ids"][:, -1:],
            "attention_mask": batch["attention_mask"]}
    blocks, logits = decoder_parts(model).blocks, []
    for j, layer in enumerate(layers):
        with patch_last_position(blocks[layer - 1], vectors[j].to(model.device)):
            out = model(**_forward_kwargs(model, last), past_key_values=copy.deepcopy(cache), use_cache=True)
        logits.append(out.logits[:, -1])
    return torch.stack(logits)


def patched_top1(model, tokenizer, texts: Sequence[str], layers: Sequence[int], vectors: torch.Tensor,
                 batch_size: int = 64, desc: str | None = None) -> torch.Tensor:
    """(len(layers), n) greedy next tokens when block ``layers[j]`` outputs ``vectors[j, i]`` at text i's last token.

    Models with a key-value cache run each prefix once (positions before the last never see the patch).
    """
    cached = "past_key_values" in inspect.signature(model.forward).parameters
    top1 = torch.zeros(len(layers), len(texts), dtype=torch.long)
    for rows in progress(_length_sorted_batches(tokenizer, texts, batch_size), desc=desc):
        batch = encode_left_padded(tokenizer, [texts[i] for i in rows])
        if cached and batch["input_ids"].shape[1] > 1:
            logits = _patched_logits_cached(model, batch, layers, vectors[:, rows])
        else:
            logits = torch.stack([patched_last_logits(model, batch, l, vectors[j, rows]) for j, l in enumerate(layers)])
        top1[:, rows] = logits.argmax(-1).cpu()
    return top1
