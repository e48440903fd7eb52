"""Patch-to-word alignment and representation entropy for multimodal models (vision tokens vs word embeddings).

Shapes: projected patch tokens ``P`` are ``(N, K, D)`` (N images, K patches), word embeddings ``E`` are ``(V, D)``.
Every function returns plain floats or tensors and never skips NaN: a NaN input gives a NaN result.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def matrix_entropy(Z: torch.Tensor, center: bool = False) -> tuple[float, float]:
    """Normalized von Neumann entropy of the l2-normalized rows of ``Z`` (N, d), and the effective rank exp(S).

    lambda = eig(Z^T Z) / trace after normalizing the rows (after centering when ``center``);
    S = -sum lambda log lambda; normalized S / log min(N, d) lies in [0, 1].
    """
    Z = Z.detach().double().reshape(-1, Z.shape[-1])
    if not torch.isfinite(Z).all():
        return math.nan, math.nan
    if center:
        Z = Z - Z.mean(0)
    Z = F.normalize(Z, dim=1)
    lam = torch.linalg.svdvals(Z) ** 2
    p = lam / lam.sum()
    p = p[p > 0]
    S = float(-(p * p.log()).sum())
    return S / math.log(min(Z.shape)), math.exp(S)


def span_fraction(v: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
    """||projection of v onto span(words)|| / ||v||; ``v`` (..., D), ``words`` (..., k, D)."""
    v, words = v.double(), words.double()
    Q, _ = torch.linalg.qr(words.transpose(-1, -2))
    return (Q.transpose(-1, -2) @ v[..., None]).squeeze(-1).norm(dim=-1) / v.norm(dim=-1)


def word_cosines(P: torch.Tensor, E: torch.Tensor) -> torch.Tensor:
    """Cosine of every patch token with every word embedding: (N, K, V)."""
    return F.normalize(P.double(), dim=-1) @ F.normalize(E.double(), dim=-1).T


def own_other_cos(P: torch.Tensor, E: torch.Tensor, own: torch.Tensor, content: torch.Tensor) -> tuple[float, float]:
    """(cos_own, cos_other): mean cosine of each patch with its own words ``own`` (N, K, k: word ids)
    and with all ``content`` words (ids, 1-D), averaged over patches."""
    cos = word_cosines(P, E)
    return float(cos.gather(-1, own).mean()), float(cos[..., content].mean())


def mean_span_fraction(P: torch.Tensor, E: torch.Tensor, own: torch.Tensor) -> float:
    """Span fraction of each patch token in the span of its own words' embeddings, averaged."""
    return float(span_fraction(P, E[own]).mean())


def retrieval_top1(P: torch.Tensor, E: torch.Tensor, candidates: torch.Tensor, target: torch.Tensor) -> float:
    """Share of patches whose most similar word among ``candidates`` (ids) is ``target`` (N, K: word ids)."""
    cos = word_cosines(P, E)[..., candidates]
    if not torch.isfinite(cos).all():
        return math.nan
    return float((candidates[cos.argmax(-1)] == target).double().mean())


def grounding_accuracy(P: torch.Tensor, E: torch.Tensor, object_words: torch.Tensor, patch_object: torch.Tensor) -> float:
    """Grounding proxy: for each word that names exactly one object of its image, the patch most similar to it
    belongs to that object. ``object_words`` (N, M) word id per object, ``patch_object`` (K,) or (N, K) object
    index per patch (-1 = background). Words named by two objects of an image are skipped."""
    cos = word_cosines(P, E)
    if not torch.isfinite(cos).all():
        return math.nan
    N, M = object_words.shape
    patch_object = patch_object.expand(N, -1) if patch_object.dim() == 1 else patch_object
    hits, total = 0, 0
    for i in range(N):
        for m in range(M):
            w = object_words[i, m]
            if w < 0 or int((object_words[i] == w).sum()) != 1:
                continue
            best = int(cos[i, :, w].argmax())
            hits += int(patch_object[i, best] == m)
            total += 1
    return hits / total if total else math.nan


def patch_aligned_loss(tokens: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """mean over patches of 1 - cos(tokens, targets); ``mask`` (same leading shape) keeps labelled patches only."""
    loss = 1 - F.cosine_similarity(tokens, targets, dim=-1)
    if mask is None:
        return loss.mean()
    mask = mask.to(loss.dtype)
    return (loss * mask).sum() / mask.sum().clamp_min(1)
