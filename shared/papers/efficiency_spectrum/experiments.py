"""efficiency_spectrum: the survey's inference relations measured on a causal LM.

FLOPs (``torch.utils.flop_counter``), the KV cache, weight-only RTN and W8A8 quantization, SmoothQuant,
activation outliers, int8 speed and speculative decoding (``transformers.generate``).
"""
from __future__ import annotations

import copy
import math
import statistics
import time
import warnings

import numpy as np
import pandas as pd
import torch
from torch import nn

from shared.errors import ParameterError


# ---------------------------------------------------------------- text
def corpus_text() -> str:
    """The Python reference docs shipped with the standard library (``pydoc_data.topics``), always offline."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))


def tokenize(tokenizer, text: str) -> torch.Tensor:
    return tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids[0]


def token_windows(ids: torch.Tensor, n_windows: int, window: int, offset: float = 0.0) -> torch.Tensor:
    """``n_windows`` windows of ``window`` tokens of ``ids``, spaced evenly (start = (i + offset)·(len − window)/n).

    With offset 0.5 (calibration) they sit halfway between the evaluation windows (no overlap when
    (len − window)/n >= 2·window).
    """
    if window + 1 > len(ids):
        raise ParameterError("ppl_window", f"{window} tokens is longer than the corpus ({len(ids)} tokens)")
    span = len(ids) - window
    starts = [int((i + offset) * span / n_windows) for i in range(n_windows)]
    return torch.stack([ids[s:s + window] for s in starts])


@torch.no_grad()
def perplexity(model, windows: torch.Tensor) -> float:
    """exp(mean next-token NLL) over the windows (one forward per window)."""
    device = next(model.parameters()).device if any(True for _ in model.parameters()) else "cpu"
    nll, count = 0.0, 0
    for w in windows:
        x = w[None].to(device)
        loss = model(x, labels=x).loss.float().item()
        nll += loss * (len(w) - 1)
        count += len(w) - 1
    return float(math.exp(nll / count))


# ---------------------------------------------------------------- FLOPs
def param_counts(model) -> dict:
    emb = model.get_input_embeddings().weight.numel()
    total = sum(p.numel() for p in model.parameters())
    return {"N": total, "N_emb": emb, "N_nonemb": total - emb}


def count_flops(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def forward_flops(model, T: int, seed: int = 0) -> dict:
    """Counted FLOPs of a forward over T random tokens against 2NT (matmuls; SDPA uncounted on CPU)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, model.config.vocab_size, (1, T), generator=g).to(model.device)
    with torch.no_grad():
        measured = count_flops(lambda: model(x))
    n = param_counts(model)
    cfg = model.config
    attention = 2 * cfg.num_hidden_layers * T * cfg.hidden_size * T  # Kaplan's 2·n_layer·n_ctx·d per token
    return {"T": T, "flops": measured, "two_NT": 2 * n["N"] * T, "ratio_2NT": measured / (2 * n["N"] * T),
            "attention_term": attention, "attention_share": attention / measured, **n}


def train_flop_ratio(model, T: int, seed: int = 0) -> float:
    """(forward + backward) / forward FLOPs of a language-model loss on T random tokens (≈ 3: 6N per token)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, model.config.vocab_size, (1, T), generator=g).to(model.device)
    model.requires_grad_(True)
    try:
        with torch.no_grad():
            fwd = count_flops(lambda: model(x, labels=x))
        both = count_flops(lambda: model(x, labels=x).loss.backward())
    finally:
        model.zero_grad(set_to_none=True)
        model.requires_grad_(False)
    return both / fwd


def generation_flops_closed_form(n_nonemb: int, n_emb: int, P: int, n: int, cache: bool) -> int:
    """Matmul FLOPs of greedy generation of n tokens after P (logits for the last position only)."""
    positions = (P + n - 1) if cache else sum(P + t for t in range(n))
    return 2 * n_nonemb * positions + 2 * n_emb * n


def greedy(model, ids: torch.Tensor, n: int, **kw) -> torch.Tensor:
    with torch.no_grad():
        return model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False, num_beams=1,
                              pad_token_id=model.config.eos_token_id if model.config.pad_token_id is None
                              else model.config.pad_token_id, **kw)


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        out.append(time.perf_counter() - t0)
    return out


def kv_cache_study(model, P: int, n: int, repeats: int, seed: int = 0) -> dict:
    """FLOPs and wall clock of generating n tokens after P random ones, with and without the KV cache."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, model.config.vocab_size, (1, P), generator=g).to(model.device)
    n_par = param_counts(model)
    out = {"P": P, "n_new": n}
    for cache in (True, False):
        key = "cache" if cache else "no_cache"
        out[f"flops_{key}"] = count_flops(lambda: greedy(model, ids, n, use_cache=cache))
        out[f"closed_{key}"] = generation_flops_closed_form(n_par["N_nonemb"], n_par["N_emb"], P, n, cache)
        out[f"seconds_{key}"] = timed(lambda: greedy(model, ids, n, use_cache=cache), repeats)
    out["flop_ratio"] = out["flops_no_cache"] / out["flops_cache"]
    out["closed_ratio"] = out["closed_no_cache"] / out["closed_cache"]
    out["time_ratio"] = statistics.median(out["seconds_no_cache"]) / statistics.median(out["seconds_cache"])
    return out


def kv_bytes(model, T: int) -> dict:
    """Bytes of the cache tensors after a forward over T tokens, against 2·L·n_kv·d_head·T·bytes."""
    x = torch.zeros(1, T, dtype=torch.long, device=model.device)
    with torch.no_grad():
        cache = model(x, use_cache=True).past_key_values
    measured = 0
    for layer in cache.layers:
        measured += layer.keys.numel() * layer.keys.element_size() + layer.values.numel() * layer.values.element_size()
    cfg = model.config
    d_head = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    n_kv = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    elem = next(model.parameters()).element_size()
    per_token = 2 * cfg.num_hidden_layers * n_kv * d_head * elem
    return {"T": T, "measured": measured, "formula": per_token * T, "per_token": per_token,
            "mha_per_token": per_token * cfg.num_attention_heads // n_kv, "mqa_per_token": per_token // n_kv,
            "gqa_saving": cfg.num_attention_heads / n_kv, "n_heads": cfg.num_attention_heads, "n_kv": n_kv}


# ---------------------------------------------------------------- quantization
def quantizable_linears(model, skip=("lm_head",)) -> dict[str, nn.Linear]:
    return {n: m for n, m in model.named_modules()
            if isinstance(m, nn.Linear) and not any(n == s or n.endswith("." + s) for s in skip)}


@torch.no_grad()
def rtn_weight(w: torch.Tensor, bits: int, group: int | None) -> torch.Tensor:
    """Symmetric absmax round-to-nearest per output channel (or per group of input columns), dequantized."""
    if group is not None and w.shape[1] % group:
        raise ParameterError("rtn_groups", f"group {group} does not divide the input width {w.shape[1]}")
    qmax = 2 ** (bits - 1) - 1
    shaped = w.reshape(w.shape[0], -1, group) if group else w[:, None, :]
    scale = shaped.abs().amax(-1, keepdim=True).clamp_min(1e-12) / qmax
    q = (shaped / scale).round().clamp(-qmax - 1, qmax)
    return (q * scale).reshape(w.shape).to(w.dtype)


def rtn_quantize_(model, bits: int, group: int | None = None, skip=("lm_head",)):
    """Weight-only RTN of every Linear but ``skip`` (in place)."""
    for m in quantizable_linears(model, skip).values():
        m.weight.data.copy_(rtn_weight(m.weight.data.float(), bits, group))
    return model


def w8a8_dynamic(model, skip=("lm_head",), per_channel: bool = False):
    """A copy with torch.ao dynamic int8 Linears (activations quantized per tensor at run time; CPU only).

    Returns (quantized model, recorded deprecation warnings).
    """
    try:
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    except ImportError as error:  # the API is deprecated and announced for removal
        raise RuntimeError(f"torch {torch.__version__} has no torch.ao.quantization.quantize_dynamic: "
                           "W8A8 dynamic quantization needs torch <= 2.13") from error
    names = set(quantizable_linears(model, skip))
    spec = {n: per_channel_dynamic_qconfig for n in names} if per_channel else names
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        q = quantize_dynamic(model, spec, dtype=torch.qint8, inplace=False)
    return q, sorted({str(w.message)[:120] for w in caught})


def fake_w8a8_(model, skip=("lm_head",)):
    """W8A8 simulated in floating point (any device): per-tensor int8 weights, per-tensor dynamic activations."""
    def quant_input(module, args):
        x = args[0]
        s = x.abs().amax().clamp_min(1e-12) / 127
        return ((x / s).round().clamp(-128, 127) * s,) + tuple(args[1:])

    for m in quantizable_linears(model, skip).values():
        w = m.weight.data.float()
        s = w.abs().amax().clamp_min(1e-12) / 127
        m.weight.data.copy_(((w / s).round().clamp(-128, 127) * s).to(m.weight.dtype))
        m.register_forward_pre_hook(quant_input)
    return model


def w8a8(model, skip=("lm_head",)):
    """Naive W8A8: torch.ao dynamic int8 on CPU, the float simulation elsewhere. Returns (model, warnings)."""
    if model.device.type == "cpu":
        return w8a8_dynamic(model, skip)
    return fake_w8a8_(copy.deepcopy(model), skip), []


@torch.no_grad()
def input_absmax(model, ids: torch.Tensor, stat: str = "amax") -> dict:
    """Per Linear input: the per-channel max |x| (stat='amax') or max|x|/median|x| (stat='outlier')."""
    out = {}

    def grab(name):
        def hook(mod, inp):
            a = inp[0].detach().float().abs().flatten(0, -2)
            if stat == "amax":
                a = a.amax(0)
                out[name] = torch.maximum(out[name], a) if name in out else a
            else:
                out[name] = float(a.max() / a.median().clamp_min(1e-12))
        return hook

    handles = [m.register_forward_pre_hook(grab(n)) for n, m in quantizable_linears(model).items()]
    try:
        for w in ids:
            model(w[None].to(model.device))
    finally:
        for h in handles:
            h.remove()
    return out


def outlier_ratios(model, window: torch.Tensor) -> pd.DataFrame:
    """max|x| / median|x| at each Linear input on one window (LLM.int8()'s outlier features)."""
    ratios = input_absmax(model, window[None], stat="outlier")
    rows = []
    for name, r in ratios.items():
        parts = name.split(".")
        layer = next((int(p) for p in parts if p.isdigit()), -1)
        rows.append({"module": name, "layer": layer, "kind": parts[-1], "ratio": r})
    return pd.DataFrame(rows)


@torch.no_grad()
def smooth_(model, calib: torch.Tensor, alpha: float = 0.5):
    """SmoothQuant (Xiao et al. 2023): migrate activation outliers into the weights; fp outputs unchanged.

    s_j = max|X_j|^α / max|W_j|^(1−α), folded into input_layernorm (q/k/v), post_attention_layernorm
    (gate/up) and the rows of up_proj (down_proj's input is act(gate)·up). Llama-family layouts only.
    """
    amax = input_absmax(model, calib)

    def scale(a, weights):
        w = torch.stack([w.abs().amax(0) for w in weights]).amax(0).float()
        return (a.clamp_min(1e-5) ** alpha / w.clamp_min(1e-5) ** (1 - alpha)).clamp_min(1e-5)

    for i, layer in enumerate(model.model.layers):
        p = f"model.layers.{i}."
        for norm, names in (("input_layernorm", ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"]),
                            ("post_attention_layernorm", ["mlp.gate_proj", "mlp.up_proj"])):
            lins = [layer.get_submodule(n) for n in names]
            s = scale(amax[p + names[0]], [l.weight for l in lins])
            layer.get_submodule(norm).weight.div_(s.to(layer.get_submodule(norm).weight.dtype))
            for l in lins:
                l.weight.mul_(s.to(l.weight.dtype))
        s = scale(amax[p + "mlp.down_proj"], [layer.mlp.down_proj.weight])
        layer.mlp.up_proj.weight.div_(s[:, None].to(layer.mlp.up_proj.weight.dtype))
        layer.mlp.down_proj.weight.mul_(s.to(layer.mlp.down_proj.weight.dtype))
    return model


def quantization_study(model, windows: torch.Tensor, calib: torch.Tensor, rtn_groups, alpha: float,
                       progress=None) -> tuple[pd.DataFrame, list[str]]:
    """Perplexity of fp, weight-only RTN int8/int4 (per channel and per group), naive W8A8, SmoothQuant+W8A8."""
    rows, warned = [], []

    def add(name, family, m):
        rows.append({"variant": name, "family": family, "ppl": perplexity(m, windows)})
        if progress is not None:
            progress.update(1)

    add("fp", "fp", model)
    for bits, group in [(8, None), (4, None)] + [(4, g) for g in rtn_groups]:
        m = rtn_quantize_(copy.deepcopy(model), bits, group)
        add(f"RTN int{bits} " + (f"g{group}" if group else "per channel"), "weight-only", m)
        del m
    q, warned = w8a8(model)
    add("W8A8 naive", "W8A8", q)
    del q
    smoothed = smooth_(copy.deepcopy(model), calib, alpha)
    add(f"smoothed fp (alpha {alpha:g})", "fp", smoothed)
    q, _ = w8a8(smoothed)
    add(f"SmoothQuant alpha {alpha:g} + W8A8", "W8A8", q)
    del q, smoothed
    return pd.DataFrame(rows), warned


def ppl_of(table: pd.DataFrame, variant: str) -> float:
    hit = table.loc[table.variant == variant, "ppl"]
    return float(hit.iloc[0]) if len(hit) else math.nan


# ---------------------------------------------------------------- speed
def int8_speed(model, int8_model, prefill: int, decode: int, repeats: int, seed: int = 0) -> dict:
    """Median seconds of a prefill of ``prefill`` tokens and of decoding ``decode`` tokens, fp vs int8."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, model.config.vocab_size, (1, prefill), generator=g).to(model.device)
    prompt = x[:, :32]
    out = {}
    for key, m in (("fp", model), ("int8", int8_model)):
        with torch.no_grad():
            m(x)  # warm-up
            out[f"prefill_{key}"] = timed(lambda: m(x), repeats)
        out[f"decode_{key}"] = timed(lambda: greedy(m, prompt, decode), repeats)
    out["prefill_speedup"] = statistics.median(out["prefill_fp"]) / statistics.median(out["prefill_int8"])
    out["decode_speedup"] = statistics.median(out["decode_fp"]) / statistics.median(out["decode_int8"])
    return out


def state_dict_mb(model) -> float:
    import io

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell() / 1e6


# ---------------------------------------------------------------- speculative decoding
def chat_ids(tokenizer, text: str) -> torch.Tensor:
    if getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)["input_ids"]
    else:
        ids = tokenizer(text, return_tensors="pt").input_ids
    return ids


def copy_prompt() -> str:
    from pydoc_data.topics import topics

    return topics["assert"][:700] + "\n\nRepeat the text above word for word."


FREE_PROMPT = "Write a short story about a lighthouse keeper."


def speculative_study(model, tokenizer, draft, n_new: int, prompts: dict[str, str]) -> pd.DataFrame:
    """Greedy vs prompt lookup vs a draft model: same output?, target forward passes, wall clock."""
    calls = {"n": 0}

    def count(module, args, kwargs):
        calls["n"] += 1

    handle = model.register_forward_pre_hook(count, with_kwargs=True)  # after the draft was made: no copy
    rows = []
    try:
        for pname, text in prompts.items():
            ids = chat_ids(tokenizer, text).to(model.device)
            ref = None
            methods = [("greedy", {}), ("prompt lookup", {"prompt_lookup_num_tokens": 10})]
            if draft is not None:
                methods.append(("draft", {"assistant_model": draft}))
            for method, kw in methods:
                calls["n"] = 0
                t0 = time.perf_counter()
                out = greedy(model, ids, n_new, **kw)
                seconds = time.perf_counter() - t0
                new = out[0, ids.shape[1]:].cpu()
                if ref is None:
                    ref, ref_s = new, seconds
                rows.append({"prompt": pname, "prompt_tokens": ids.shape[1], "method": method,
                             "identical": bool(len(new) == len(ref) and torch.equal(new, ref)),
                             "new_tokens": len(new), "target_forwards": calls["n"],
                             "tokens_per_forward": len(new) / max(calls["n"], 1), "seconds": seconds,
                             "speedup": ref_s / seconds})
    finally:
        handle.remove()
    return pd.DataFrame(rows)


def medians(values) -> float:
    values = list(values)
    return float(statistics.median(values)) if values else math.nan


def machine() -> str:
    import platform

    desc = f"{platform.machine()} {platform.processor() or ''} ".strip()
    try:
        with open("/proc/cpuinfo") as f:
            desc = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if torch.cuda.is_available():
        desc += f"; GPU {torch.cuda.get_device_name(0)}"
    return f"{desc}; torch {torch.__version__}, {torch.get_num_threads()} thread(s)"


def np_finite(x) -> bool:
    return bool(np.isfinite(np.asarray(x, float)).all())


def gqa_measured_ratio(config) -> float:
    """Measured cache bytes of a 1-layer MHA twin over its GQA twin (same d_head): n_heads/n_kv if GQA works."""
    from transformers import AutoModelForCausalLM

    n_kv = getattr(config, "num_key_value_heads", None)
    if n_kv is None:
        return 1.0
    sizes = {}
    for kv in (n_kv, config.num_attention_heads):
        small = copy.deepcopy(config)
        small.num_hidden_layers, small.vocab_size, small.num_key_value_heads = 1, 64, kv
        if hasattr(small, "intermediate_size"):
            small.intermediate_size = 8
        if getattr(small, "layer_types", None) is not None:
            small.layer_types = small.layer_types[:1]
        small.tie_word_embeddings = True
        model = AutoModelForCausalLM.from_config(small).eval()
        sizes[kv] = kv_bytes(model, 8)["measured"]
        del model
    return sizes[config.num_attention_heads] / sizes[n_kv]


@torch.no_grad()
def relative_logit_change(model, changed, x: torch.Tensor) -> float:
    a, b = model(x).logits.float(), changed(x).logits.float()
    return float((a - b).norm() / a.norm())


# ---------------------------------------------------------------- inputs
def load_target(scale: str, model_path: str | None, device, dtype_name: str, seed: int = 0):
    """(name, model, tokenizer, pipeline_only): a random tiny Llama at smoke without ``model_path``, SmolLM2 at cpu
    without it, and at paper a required local HF folder (MissingInputError naming ``model_path``)."""
    from pathlib import Path

    from shared.errors import MissingInputError
    from shared.toolkit import llm

    if scale == "smoke" and not model_path:
        tokenizer = llm.toy_tokenizer()
        return "random-llama-2-layer", llm.random_llama(len(tokenizer), n_layers=2, seed=seed).to(device), tokenizer, True
    if scale == "paper" and not model_path:
        raise MissingInputError("model_path", None, "a local Hugging Face Llama-family causal LM folder "
                                "(config.json, *.safetensors, tokenizer), e.g. Llama-2-7B")
    folder = llm.require_hf_model("model_path", model_path) if model_path else llm.ensure_smollm2()
    model, tokenizer = llm.load_causal_lm(folder, device, llm.torch_dtype(dtype_name), param="model_path")
    return Path(folder).name, model, tokenizer, False


def load_draft(draft_path: str, tokenizer, device, dtype_name: str):
    """A local draft model; its vocabulary must equal the target's (ParameterError naming both parameters)."""
    from shared.toolkit import llm

    draft, draft_tok = llm.load_causal_lm(llm.require_hf_model("draft_path", draft_path), device,
                                          llm.torch_dtype(dtype_name), param="draft_path")
    if draft_tok.get_vocab() != tokenizer.get_vocab():
        raise ParameterError("draft_path", "the draft's tokenizer differs from the target's (model_path): "
                             "speculative decoding needs the same vocabulary")
    return draft


def load_text(text_file: str | None) -> str:
    """``text_file`` (UTF-8) if given, else the stdlib's pydoc topics."""
    from pathlib import Path

    from shared.errors import MissingInputError

    if not text_file:
        return corpus_text()
    if not Path(text_file).is_file():
        raise MissingInputError("text_file", text_file, "a UTF-8 text file (e.g. WikiText-2 raw wiki.test.raw)")
    return Path(text_file).read_text(encoding="utf-8")
