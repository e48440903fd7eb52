"""Figures of icl_compression; each function returns a matplotlib figure (saved by ``plots.save``)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from sklearn.decomposition import PCA

from shared.papers.icl_compression.experiments import IclEval


def shade_phases(ax, argmin_layer: int, n_layers: int) -> None:
    """Shade the compression (layers 1..l*) and expansion (l*..L) phases, labelled for the legend."""
    ax.axvspan(0.5, argmin_layer, color="tab:blue", alpha=0.07, label="compression")
    ax.axvspan(argmin_layer, n_layers + 0.5, color="tab:red", alpha=0.07, label="expansion")


def legend_below(fig, *axes) -> None:
    """One legend under the figure for the artists of ``axes`` (a plot and its twin)."""
    handles = [h for a in axes for h in a.get_legend_handles_labels()[0]]
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), fontsize=8, ncol=3)


def layerwise(tdnv: np.ndarray, argmin_layer: int, task_vector_acc: pd.Series, early_exit_acc: np.ndarray,
              title: str):
    """TDNV per layer (log y) with task-vector and early-exit accuracy on a twin axis.

    The compression (layers 1..l*) and expansion (l*..L) phases are shaded; the last point, taken
    after the model's final norm, is drawn apart.
    """
    L = len(tdnv)
    layers = np.arange(1, L + 1)
    fig, ax = plt.subplots(figsize=(8, 4.2))
    shade_phases(ax, argmin_layer, L)
    ax.plot(layers[:-1], tdnv[:-1], "o-", color="k", ms=4, label="TDNV")
    ax.plot([L], [tdnv[-1]], "D", mfc="white", mec="k", ms=7, label=f"TDNV layer {L} (after final norm)")
    ax.axvline(argmin_layer, color="k", ls=":", lw=1)
    ax.set(yscale="log", xlabel="layer", ylabel="TDNV (log)", title=title, xlim=(0.5, L + 0.5))
    acc_ax = ax.twinx()
    acc_ax.plot(task_vector_acc.index, task_vector_acc.values, "s-", color="tab:green", ms=4,
                label="task-vector accuracy")
    acc_ax.plot(layers, early_exit_acc, "^-", color="tab:orange", ms=4, label="early-exit accuracy")
    acc_ax.set(ylabel="accuracy", ylim=(-0.02, 1.02))
    acc_ax.grid(False)
    legend_below(fig, ax, acc_ax)
    return fig


def tdnv_per_k(curves: pd.DataFrame):
    """TDNV per layer, one line per number of demonstrations K."""
    fig, ax = plt.subplots(figsize=(7, 4))
    sns.lineplot(data=curves, x="layer", y="tdnv", hue="K", marker="o", ms=4, palette="viridis", ax=ax)
    ax.set(yscale="log", ylabel="TDNV (log)", title="TDNV per layer for each K (last layer: after the final norm)")
    return fig


def accuracy_and_min_vs_k(summary: pd.DataFrame):
    """ICL accuracy and the TDNV minimum against K."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    left.plot(summary["K"], summary["icl_acc"], "o-")
    left.set(xlabel="K (demonstrations)", ylabel="ICL accuracy", ylim=(0, 1.02), title="ICL accuracy")
    right.plot(summary["K"], summary["min_tdnv"], "o-", color="tab:red")
    right.set(xlabel="K (demonstrations)", ylabel="min TDNV over layers", yscale="log", title="TDNV minimum")
    fig.tight_layout()
    return fig


def pca_by_task(evals: dict[int, IclEval], layer: int):
    """2-D PCA of the last-token states at ``layer``, coloured by task, one panel per K."""
    fig, axes = plt.subplots(1, len(evals), figsize=(4.2 * len(evals), 4), squeeze=False)
    for ax, (k, ev) in zip(axes[0], evals.items()):
        xy = PCA(n_components=2).fit_transform(ev.run.states[layer - 1].double().numpy())
        sns.scatterplot(x=xy[:, 0], y=xy[:, 1], hue=[p.task for p in ev.prompts], s=14, ax=ax,
                        legend=ax is axes[0, -1])
        ax.set(title=f"K = {k}, layer {layer}", xlabel="PC 1", ylabel="PC 2")
    if axes[0, -1].get_legend():
        sns.move_legend(axes[0, -1], "upper left", bbox_to_anchor=(1, 1), fontsize=8)
    fig.tight_layout()
    return fig


def bias_variance(table: pd.DataFrame, layer: int):
    """Mean relative bias and variance against K (log-log), with a 1/K reference line.

    The largest K is the reference mu(inf) (its bias is 0 by definition and is not drawn).
    """
    mean = table.groupby("K")[["bias", "variance"]].mean()
    fig, ax = plt.subplots(figsize=(6, 4))
    ks = mean.index.to_numpy()
    ax.plot(ks[:-1], mean["bias"].to_numpy()[:-1], "o-", label="relative bias")
    ax.plot(ks, mean["variance"], "s-", label="relative variance")
    anchor = mean["bias"].iloc[0]
    ax.plot(ks, anchor * ks[0] / ks, "k--", lw=1, label="1/K")
    ax.set(xscale="log", yscale="log", xlabel="K (demonstrations)", ylabel="relative to ||mu(inf)||",
           title=f"Bias and variance at layer {layer} (mu(inf) := mu(K={ks[-1]}))")
    ax.legend(fontsize=8)
    return fig


def per_task_accuracy(accuracy: dict[str, float], k: int):
    """ICL accuracy of each task at K demonstrations."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    order = sorted(accuracy, key=accuracy.get, reverse=True)
    sns.barplot(x=[accuracy[t] for t in order], y=order, color="tab:blue", ax=ax)
    ax.set(xlim=(0, 1), xlabel=f"ICL accuracy at K = {k}", ylabel="")
    return fig


def noise_curve(noise: pd.DataFrame):
    """ICL accuracy and the TDNV minimum against the share of wrong demonstrations."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.plot(noise["noise_ratio"], noise["icl_acc"], "o-", label="ICL accuracy")
    ax.set(xlabel="noise ratio (wrong demonstrations)", ylabel="ICL accuracy", ylim=(-0.02, 1.02))
    tdnv_ax = ax.twinx()
    tdnv_ax.plot(noise["noise_ratio"], noise["min_tdnv"], "s--", color="tab:red", label="min TDNV")
    tdnv_ax.axhline(1.0, color="tab:red", lw=0.8, ls=":")
    tdnv_ax.set(ylabel="min TDNV", yscale="log")
    tdnv_ax.grid(False)
    ax.legend(handles=ax.get_legend_handles_labels()[0] + tdnv_ax.get_legend_handles_labels()[0], fontsize=8)
    return fig


def models_compared(curves: pd.DataFrame):
    """TDNV against relative depth l / L, one line per model."""
    fig, ax = plt.subplots(figsize=(8, 4.2))
    sns.lineplot(data=curves, x="depth", y="tdnv", hue="model", marker="o", ms=3, ax=ax)
    ax.set(yscale="log", xlabel="relative depth l / L", ylabel="TDNV (log)", title="TDNV per layer across models")
    return fig


def _mean_band(ax, table: pd.DataFrame, style: str, color: str, label: str) -> None:
    """Mean over tasks per layer of a (layer, task, accuracy) table, with a band of one standard error."""
    stats = table.groupby("layer")["accuracy"].agg(["mean", "sem"]).fillna(0.0)
    ax.plot(stats.index, stats["mean"], style, color=color, ms=5, lw=2, label=label)
    ax.fill_between(stats.index, stats["mean"] - stats["sem"], stats["mean"] + stats["sem"], color=color, alpha=0.2)


def readout_layerwise(tdnv: np.ndarray, argmin_layer: int, task_vectors: pd.DataFrame, readout: pd.DataFrame,
                      early_exit_acc: np.ndarray, chance: float, title: str):
    """The paper's layerwise figure with the linear readout as the early-exit curve.

    Accuracy on the left axis: task-vector accuracy (circles) and the held-out linear readout of the answer
    (triangles), each the mean over tasks with a band of one standard error, the logit lens (the paper's early
    exit, dashed) and the readout's chance level (dotted). TDNV on the right axis (log); compression (layers
    1..l*) and expansion (l*..L) shaded as in the paper.
    """
    L = len(tdnv)
    layers = np.arange(1, L + 1)
    fig, ax = plt.subplots(figsize=(8.5, 4.4))
    shade_phases(ax, argmin_layer, L)
    _mean_band(ax, task_vectors, "o-", "tab:blue", "task-vector accuracy")
    _mean_band(ax, readout, "^-", "tab:green", "linear readout (early-exit substitute)")
    ax.plot(layers, early_exit_acc, "--", color="tab:green", alpha=0.6, lw=1.2, label="early exit (logit lens)")
    ax.axhline(chance, color="grey", ls=":", lw=1, label="readout chance (majority answer)")
    ax.set(xlabel="layer", ylabel="accuracy", ylim=(-0.05, 1.12), xlim=(0.5, L + 0.5), title=title)
    tdnv_ax = ax.twinx()
    tdnv_ax.plot(layers, tdnv, "s-", color="tab:red", ms=5, lw=2, label="TDNV")
    tdnv_ax.set_ylabel("TDNV (log)", color="tab:red")
    tdnv_ax.set(yscale="log")
    tdnv_ax.grid(False)
    for x, text in ((0.5 + (argmin_layer - 0.5) / 2, "Compression"), ((argmin_layer + L + 0.5) / 2, "Expansion")):
        tdnv_ax.text(x, 1.06, text, transform=ax.transData, ha="center", va="center", fontsize=12, family="serif",
                     bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1})
    legend_below(fig, ax, tdnv_ax)
    return fig


def models_accuracy(table: pd.DataFrame):
    """Task-vector, early-exit (logit lens) and linear-readout accuracy against relative depth, one line per model
    (``table``: the per-layer tables of :func:`experiments.layer_table`)."""
    columns = {"task_vector_acc": "task-vector accuracy", "early_exit_acc": "early exit (logit lens)",
               "readout_acc": "linear readout (early-exit substitute)"}
    fig, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 3.8), sharey=True)
    for ax, (column, label) in zip(axes, columns.items()):
        sns.lineplot(data=table.dropna(subset=[column]), x="depth", y=column, hue="model", marker="o", ms=3, ax=ax,
                     legend=ax is axes[-1])
        ax.set(xlabel="relative depth l / L", ylabel="accuracy", title=label, ylim=(-0.02, 1.02))
    if axes[-1].get_legend():
        sns.move_legend(axes[-1], "upper left", bbox_to_anchor=(1, 1), fontsize=8)
    fig.tight_layout()
    return fig
