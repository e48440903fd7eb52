"""adacontour's figures; each function returns a matplotlib Figure."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from skimage import measure

from shared.papers.adacontour.contours import angles, decode


def horse_depths(mask: np.ndarray, encodings: dict, closing_radius: int = 1) -> plt.Figure:
    """Figure 1: the reconstruction at each depth (filled), the true outline, the centers and the cut lines."""
    depths = sorted(encodings)
    cols = min(3, len(depths))
    rows = int(np.ceil(len(depths) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.1 * rows), squeeze=False)
    outline = measure.find_contours(np.pad(mask, 1).astype(float), 0.5)
    for ax, depth in zip(axes.ravel(), depths):
        enc = encodings[depth]
        ax.imshow(decode(enc, closing_radius=closing_radius), cmap="Blues", alpha=0.6, vmin=0, vmax=1.5)
        for c in outline:
            ax.plot(c[:, 1] - 1, c[:, 0] - 1, color="k", lw=0.8)
        for _, p0, p1 in enc.splits:
            ax.plot([p0[1], p1[1]], [p0[0], p1[0]], color="tab:red", lw=0.8, ls="--")
        ax.scatter(enc.centers[:, 1], enc.centers[:, 0], s=12, color="C1", zorder=3)
        ax.set(title=f"depth {depth}: {enc.n_centers} centers", xticks=[], yticks=[])
        ax.grid(False)
    for ax in axes.ravel()[len(depths):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def depth_curve(horse: pd.DataFrame) -> plt.Figure:
    """Figure 2: the horse's IoU (and F) against depth and against the number of centers."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, x, label in ((axes[0], "depth", "depth"), (axes[1], "centers", "number of centers")):
        ax.plot(horse[x], horse.iou, marker="o", label="IoU")
        ax.plot(horse[x], horse.f, marker="s", label="boundary F")
        ax.set(xlabel=label, ylabel="score", ylim=(None, 1.01))
    axes[0].legend()
    fig.suptitle("horse, uncompressed local signatures")
    fig.tight_layout()
    return fig


def iou_vs_M(blobs: pd.DataFrame) -> plt.Figure:
    """Figure 3: test IoU and F against M (SVD and FMS bases, one line per depth), and IoU against the
    numbers stored per shape."""
    t = blobs[blobs.method != "full"].assign(setting=lambda d: "depth " + d.depth.astype(str) + ", " + d.method)
    order = list(dict.fromkeys(t.sort_values(["depth", "method"], ascending=[True, False]).setting))
    palette = dict(zip(order, sns.color_palette(n_colors=len(order))))
    style = dict(hue="setting", hue_order=order, palette=palette, marker="o")
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    sns.lineplot(data=t, x="M", y="iou", ax=axes[0], **style)
    sns.lineplot(data=t, x="M", y="f", ax=axes[1], legend=False, **style)
    svd = t[t.method == "svd"]
    sns.lineplot(data=svd, x="stored", y="iou", ax=axes[2], legend=False, **{**style, "hue_order": list(dict.fromkeys(
        s for s in order if s in set(svd.setting)))})
    full = blobs[blobs.method == "full"]
    for _, row in full.iterrows():
        axes[0].axhline(row.iou, color="gray", lw=0.6, ls=":")
    axes[0].set(title="IoU against M (dotted: no compression)", ylabel="test IoU")
    axes[1].set(title="boundary F against M", ylabel="test F")
    axes[2].set(title="IoU against storage (SVD)", xlabel="stored numbers per shape", ylabel="test IoU")
    fig.tight_layout()
    return fig


def spectra(R: dict) -> plt.Figure:
    """Figure 4: normalized singular values of the contour matrix at each depth (log scale)."""
    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    for depth, mat in sorted(R.items()):
        s = np.linalg.svd(mat, compute_uv=False)
        ax.semilogy(np.arange(1, len(s) + 1)[:40], (s / s[0])[:40], marker=".", label=f"depth {depth} ({len(mat)} rows)")
    ax.axvline(8.5, color="gray", lw=0.6, ls=":")
    ax.set(xlabel="index", ylabel="singular value / largest", title="spectrum of the contour matrix R")
    ax.legend()
    return fig


def basis_shapes(U: np.ndarray, k: int = 8, title: str = "") -> plt.Figure:
    """Figure 5: the first ``k`` basis vectors drawn as polar curves (|u| as the radius; red where u < 0)."""
    k = min(k, U.shape[1])
    fig, axes = plt.subplots(1, k, figsize=(1.7 * k, 2.0), subplot_kw={"projection": "polar"}, squeeze=False)
    t = angles(U.shape[0])
    for i, ax in enumerate(axes.ravel()):
        u = U[:, i] * np.sign(U[:, i].sum() or 1.0)
        ax.plot(t, np.where(u >= 0, u, np.nan), color="C0", lw=1)
        ax.plot(t, np.where(u < 0, -u, np.nan), color="tab:red", lw=1)
        ax.set(title=f"u{i + 1}", xticks=[], yticks=[])
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def robustness(robust: pd.DataFrame) -> plt.Figure:
    """Figure 6: test IoU of SVD and FMS bases against the outlier fraction, one panel per outlier model."""
    clean = robust[robust.model == "clean"]
    models = [m for m in robust.model.unique() if m != "clean"] or ["clean"]
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.2), squeeze=False)
    for ax, model in zip(axes.ravel(), models):
        t = pd.concat([clean, robust[robust.model == model]]).sort_values("fraction")
        sns.lineplot(data=t, x="fraction", y="iou", hue="method", marker="o", ax=ax)
        ax.set(title=f"{model} outliers", xlabel="outlier fraction of R's rows", ylabel="test IoU")
    fig.tight_layout()
    return fig
