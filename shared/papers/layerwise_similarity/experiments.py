"""The experiments of `layerwise_similarity`: exit models trained and measured, text-model similarity, claims."""
from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import torch
from scipy.stats import pearsonr

from shared.papers.layerwise_similarity.exits import (ExitHeads, exit_weights, layer_features, layer_predictions, layerwise_accuracy,
                          saturated_fraction, saturation_layer, train_exits)
from shared.toolkit.similarity import agreement, cka_matrix, class_mean_projection, cos_matrix, upper_pairs


@dataclass
class ExitRun:
    """What one trained exit model shows on the test set."""

    mode: str
    accuracy: np.ndarray      # (L,) top-1 of each layer's exit
    cos: np.ndarray           # (L, L) sample-wise COS of the test features
    cka: np.ndarray           # (L, L) linear CKA
    saturation: np.ndarray    # (n,) 1-based saturation layer of each test sample
    projection: np.ndarray    # (L, K, 2) class means on the last layer's principal plane
    history: list[float] = field(default_factory=list)

    @property
    def n_layers(self) -> int:
        return len(self.accuracy)

    @property
    def rho(self) -> float:
        """Spearman(COS, CKA) over layer pairs l < l'."""
        return agreement(self.cos, self.cka)

    @property
    def saturated(self) -> float:
        return saturated_fraction(torch.as_tensor(self.saturation), self.n_layers)


def measure_exits(backbone, heads: ExitHeads, X: torch.Tensor, y: torch.Tensor, mode: str,
                  history: list[float], unbiased_cka: bool = False) -> ExitRun:
    """Layer-wise accuracy, COS/CKA, saturation and class-mean geometry of a trained exit model."""
    features = layer_features(backbone, X)
    predictions = layer_predictions(heads, features)
    return ExitRun(
        mode=mode,
        accuracy=layerwise_accuracy(predictions, y),
        cos=cos_matrix(features).numpy(),
        cka=cka_matrix(features, unbiased=unbiased_cka).numpy(),
        saturation=saturation_layer(predictions).numpy(),
        projection=class_mean_projection(features, y.numpy()),
        history=history,
    )


def check_paper_inputs(cfg) -> None:
    """Fail fast, before hours of training, if a local file of the `paper` scale is missing."""
    from shared.toolkit.cifar import LAYOUTS
    from shared.papers.layerwise_similarity.deit_cifar import require_deit
    from shared.errors import require_files
    from shared.papers.layerwise_similarity.gpt2_wikitext import require_gpt2, require_wikitext

    layout = LAYOUTS["cifar10"]
    require_files("cifar10_dir", cfg.cifar10_dir, layout["train"] + layout["test"] + [layout["meta"]],
                  "CIFAR-10 in its python-pickle format (cifar-10-batches-py)")
    require_deit(cfg.deit_path)
    require_gpt2(cfg.gpt2_path)
    require_wikitext(cfg.wikitext_dir)


def mnist_split(n_train_per_class: int, n_test_per_class: int, seed: int):
    """(X_train, y_train, X_test, y_test) tensors from the MNIST-5k subset, seeded and class-balanced."""
    from shared.data import load_mnist_subset, stratified_split

    X, y = load_mnist_subset()
    train, test = stratified_split(y, n_train_per_class, n_test_per_class, seed)
    return tuple(torch.as_tensor(a) for a in (X[train], y[train], X[test], y[test]))


def run_tiny_vit(mode: str, data, cfg, device: torch.device | str = "cpu") -> ExitRun:
    """Train the small ViT in ``mode`` on ``data`` (mnist_split's tuple) and measure it.

    ``cfg`` holds depth, dim, heads, mlp_dim, patch_size, exit_norm, weights, epochs, lr, weight_decay,
    batch_size, seed and unbiased_cka.
    """
    from shared.toolkit.vit import TinyViT

    X_train, y_train, X_test, y_test = data
    torch.manual_seed(cfg.seed)
    backbone = TinyViT(patch_size=cfg.patch_size, dim=cfg.dim, depth=cfg.depth, heads=cfg.heads,
                       mlp_dim=cfg.mlp_dim).to(device)
    heads = ExitHeads(cfg.dim, 10, cfg.depth, per_layer=mode == "multi_exit", exit_norm=cfg.exit_norm).to(device)
    history = train_exits(backbone, heads, X_train, y_train, mode, exit_weights(cfg.depth, cfg.weights).to(device),
                          cfg.epochs, cfg.lr, cfg.weight_decay, cfg.batch_size, cfg.seed, desc=f"ViT {mode}")
    return measure_exits(backbone, heads, X_test, y_test, mode, history, cfg.unbiased_cka)


def run_deit(mode: str, cifar, cfg, device: torch.device | str) -> ExitRun:
    """Fine-tune the local DeiT (``cfg.deit_path``) with exits on CIFAR-10 (``shared.toolkit.cifar.Cifar``)."""
    from shared.toolkit.cifar import random_crop_flip
    from shared.papers.layerwise_similarity.deit_cifar import as_unit_images, load_deit_exits

    torch.manual_seed(cfg.seed)
    backbone, heads = load_deit_exits(cfg.deit_path, len(cifar.classes), mode, cfg.exit_norm)
    backbone, heads = backbone.to(device), heads.to(device)
    history = train_exits(backbone, heads, as_unit_images(cifar.x_train), torch.as_tensor(cifar.y_train), mode,
                          exit_weights(heads.n_layers, cfg.weights).to(device), cfg.epochs, cfg.lr, cfg.weight_decay,
                          cfg.batch_size, cfg.seed, augment=random_crop_flip, desc=f"DeiT {mode}")
    return measure_exits(backbone, heads, as_unit_images(cifar.x_test), torch.as_tensor(cifar.y_test), mode,
                         history, cfg.unbiased_cka)


def text_similarity(model_path, n_sentences: int, n_tokens: int, seed: int, drop_special_tokens: bool = True,
                    drop_first_token: bool = False, unbiased_cka: bool = False) -> dict:
    """COS and CKA between the layers of a local text model on template sentences (token samples)."""
    from shared.toolkit.hf_hidden import load_local, minilm_path, subsample, template_sentences, token_hidden_states

    tokenizer, model = load_local(model_path or minilm_path())
    H = token_hidden_states(model, tokenizer, template_sentences(n_sentences, seed),
                            drop_special_tokens=drop_special_tokens, drop_first_token=drop_first_token)
    H = subsample(H, n_tokens, seed)
    cos, cka = cos_matrix(H).numpy(), cka_matrix(H, unbiased=unbiased_cka).numpy()
    return {"cos": cos, "cka": cka, "rho": agreement(cos, cka),
            "pearson": float(pearsonr(upper_pairs(cos), upper_pairs(cka)).statistic), "n_tokens": H.shape[1]}


def lm_similarity(n_sentences: int, n_tokens: int, seed: int, unbiased_cka: bool = False) -> dict:
    """:func:`text_similarity` of SmolLM2-135M (the suite's package model, its fp32 cache built on first use),
    with token 0 dropped: a decoder's first token is an attention sink whose states dwarf the others."""
    from shared.toolkit.llm import ensure_smollm2

    return text_similarity(ensure_smollm2(), n_sentences, n_tokens, seed, drop_special_tokens=True,
                           drop_first_token=True, unbiased_cka=unbiased_cka)


def run_gpt2(mode: str, cfg, device: torch.device | str) -> SimpleNamespace:
    """Fine-tune the local GPT-2 on WikiText-103 in ``mode`` (official recipe) and measure it on the test set."""
    from shared.papers.layerwise_similarity.gpt2_wikitext import evaluate_gpt2_exits, load_gpt2_exits, pad_id, train_gpt2_exits, wikitext_corpus

    torch.manual_seed(cfg.seed)
    tokenizer, model = load_gpt2_exits(cfg.gpt2_path, mode, cfg.gpt2_exit_norm)
    corpus = wikitext_corpus(cfg.wikitext_dir, tokenizer, cfg.gpt2_max_len)
    model.to(device)
    pad = pad_id(tokenizer)
    history = train_gpt2_exits(model, corpus["train"], pad, cfg.gpt2_steps, cfg.gpt2_batch_size, cfg.gpt2_grad_accum,
                               cfg.gpt2_lr, cfg.gpt2_warmup, cfg.gpt2_clip, cfg.weights, cfg.seed)
    result = evaluate_gpt2_exits(model, corpus["test"], pad, cfg.gpt2_batch_size, cfg.n_similarity_tokens, cfg.seed)
    features = result.pop("features")
    cos, cka = cos_matrix(features).numpy(), cka_matrix(features, unbiased=cfg.unbiased_cka).numpy()
    saturated = saturated_fraction(result.pop("saturation"), len(result["accuracy"]))
    return SimpleNamespace(**result, saturated=saturated, cos=cos, cka=cka, rho=agreement(cos, cka), history=history)
