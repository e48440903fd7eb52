"""projector_alignment: the notebook's figures."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from shared.toolkit import alignment as al
from shared.papers.projector_alignment import scenes as sc

BARS = ["caption_acc", "cos_own", "cos_other", "span_fraction", "digit_top1", "color_top1", "grounding"]


def heatmaps(P_by_lam: dict, E: torch.Tensor, scenes: sc.Scenes, index: int = 0):
    """Patch-word cosine over the 4x4 grid for scene ``index``: its first digit word and first color word."""
    digit, color = int(sc.DIGIT_IDS[scenes.digits[index, 0]]), int(sc.COLOR_IDS[scenes.colors[index, 0]])
    fig, axes = plt.subplots(1, 1 + 2 * len(P_by_lam), figsize=(2.6 * (1 + 2 * len(P_by_lam)), 2.8))
    axes[0].imshow(scenes.images[index].permute(1, 2, 0).clamp(0, 1).numpy())
    axes[0].set_title("scene")
    for k, (lam, P) in enumerate(P_by_lam.items()):
        cos = al.word_cosines(P[index:index + 1], E)[0]
        for j, w in enumerate((digit, color)):
            ax = axes[1 + 2 * k + j]
            im = ax.imshow(cos[:, w].reshape(sc.GRID, sc.GRID).numpy(), cmap="viridis", vmin=-0.2, vmax=1)
            ax.set_title(f"λ={lam:g}: '{sc.VOCAB[w]}'")
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.colorbar(im, ax=axes[-1], fraction=0.046)
    return fig


def metric_bars(table: pd.DataFrame):
    long = table.melt(id_vars="lam", value_vars=[c for c in BARS if c in table], var_name="metric")
    fig, ax = plt.subplots(figsize=(8, 3.2))
    for k, (lam, part) in enumerate(long.groupby("lam")):
        x = np.arange(len(part)) + 0.4 * k
        ax.bar(x, part.value, width=0.4, label=f"λ={lam:g}")
    ax.set_xticks(np.arange(len(part)) + 0.2, part.metric, rotation=30, ha="right")
    ax.axhline(0, color="k", lw=0.5)
    ax.set(title="held-out scenes: caption-only (λ=0) vs patch-aligned (λ=1)")
    ax.legend()
    return fig


def entropy_curves(trace: pd.DataFrame):
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    for ax, tag in zip(axes, ("uncentered", "centered")):
        for lam, part in trace.groupby("lam"):
            ax.plot(part.step, part[f"projector_entropy_{tag}"], label=f"P(v), λ={lam:g}")
        first = trace[trace.lam == trace.lam.iloc[0]]
        ax.plot(first.step, first[f"encoder_entropy_{tag}"], "k--", label="v (encoder)")
        ax.set(xlabel="projector step", ylabel="normalized entropy", title=tag)
    axes[0].legend(fontsize=8)
    return fig


def span_vs_cos(patches: dict):
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    for lam, df in patches.items():
        ax.scatter(df.best_word_cos, df.span_fraction, s=3, alpha=0.4, label=f"λ={lam:g}")
    ax.set(xlabel="best single-word cosine", ylabel="span fraction (color, digit)", title="multi-semantic alignment")
    ax.legend()
    return fig


def captions(scenes: sc.Scenes, predicted: dict, n: int = 4):
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.6))
    for i, ax in enumerate(axes):
        ax.imshow(scenes.images[i].permute(1, 2, 0).clamp(0, 1).numpy())
        text = "\n".join(f"λ={lam:g}: {sc.caption_text(ids[i][:6])}\n      {sc.caption_text(ids[i][6:])}"
                         for lam, ids in predicted.items())
        ax.set_xlabel(text, fontsize=7, loc="left")
        ax.set_xticks([]), ax.set_yticks([])
    return fig
