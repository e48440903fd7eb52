"""Figures of `layerwise_similarity`: similarity heatmaps, layer-wise accuracy, saturation, class means."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from shared.toolkit.similarity import upper_pairs

MODE_LABELS = {"standard": "standard (shared head)", "aligned": "aligned", "alternating": "alternating",
               "multi_exit": "multi-exit (own heads)"}


def _layer_ticks(n: int) -> list[str]:
    return [str(i) for i in range(1, n + 1)]


def similarity_panel(cos: np.ndarray, cka: np.ndarray, rho: float, title: str):
    """COS heatmap, CKA heatmap and the COS-vs-CKA scatter over layer pairs, rho in the title."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    ticks = _layer_ticks(len(cos))
    annotate = len(cos) <= 8
    for ax, M, name in zip(axes, (cos, cka), ("COS", "linear CKA")):
        sns.heatmap(M, ax=ax, vmin=min(0.0, float(M.min())), vmax=1, cmap="viridis", square=True,
                    annot=annotate, fmt=".2f", annot_kws={"fontsize": 7}, xticklabels=ticks, yticklabels=ticks)
        ax.set(title=name, xlabel="layer", ylabel="layer")
    axes[2].scatter(upper_pairs(cka), upper_pairs(cos))
    axes[2].set(xlabel="CKA (l < l')", ylabel="COS (l < l')", title=f"Spearman rho = {rho:.3f}")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def accuracy_by_layer(runs: dict, title: str, ylabel: str = "test top-1 accuracy"):
    """Layer-wise accuracy of each run (``runs``: mode -> object with ``accuracy``)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for mode, run in runs.items():
        ax.plot(range(1, len(run.accuracy) + 1), run.accuracy, marker="o", label=MODE_LABELS.get(mode, mode))
    ax.set(xlabel="layer", ylabel=ylabel, title=title)
    ax.legend()
    return fig


def cos_with_last(runs: dict, title: str):
    """COS of every layer with the last layer, per run."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for mode, run in runs.items():
        ax.plot(range(1, len(run.cos) + 1), run.cos[:, -1], marker="o", label=MODE_LABELS.get(mode, mode))
    ax.set(xlabel="layer", ylabel="COS with the last layer", ylim=(None, 1.02), title=title)
    ax.legend()
    return fig


def saturation_histograms(runs: dict, title: str):
    """Histogram of the saturation layer per run, with the fraction settled before the last layer."""
    fig, axes = plt.subplots(1, len(runs), figsize=(4.5 * len(runs), 3.6), sharey=True, squeeze=False)
    for ax, (mode, run) in zip(axes[0], runs.items()):
        L = run.n_layers
        counts = np.bincount(run.saturation, minlength=L + 1)[1:] / len(run.saturation)
        ax.bar(range(1, L + 1), counts)
        ax.set(xlabel="saturation layer", title=f"{MODE_LABELS.get(mode, mode)}\nsettled before L: {run.saturated:.2f}",
               xticks=range(1, L + 1))
    axes[0, 0].set_ylabel("fraction of test samples")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def class_mean_planes(runs: dict, title: str):
    """Class means of every layer on the last layer's principal plane: one row per run."""
    L = next(iter(runs.values())).n_layers
    fig, axes = plt.subplots(len(runs), L, figsize=(2.2 * L, 2.3 * len(runs)), squeeze=False)
    colors = sns.color_palette("tab10", 10)
    for row, (mode, run) in zip(axes, runs.items()):
        lim = np.abs(run.projection).max() * 1.1
        for layer, ax in enumerate(row):
            points = run.projection[layer]
            ax.scatter(points[:, 0], points[:, 1], c=[colors[k % 10] for k in range(len(points))], s=25)
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xticks=[], yticks=[], title=f"layer {layer + 1}")
        row[0].set_ylabel(MODE_LABELS.get(mode, mode))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def lm_layer_metrics(results: dict, title: str):
    """GPT-2: layer-wise token accuracy and log10 perplexity per mode (``results``: mode -> run_gpt2's result)."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for mode, r in results.items():
        layers = range(1, len(r.accuracy) + 1)
        axes[0].plot(layers, r.accuracy, marker="o", label=MODE_LABELS.get(mode, mode))
        axes[1].plot(layers, np.log10(r.perplexity), marker="o", label=MODE_LABELS.get(mode, mode))
    axes[0].set(xlabel="layer", ylabel="top-1 token accuracy")
    axes[1].set(xlabel="layer", ylabel="log10 perplexity")
    axes[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig
