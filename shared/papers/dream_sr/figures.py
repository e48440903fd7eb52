"""dream_sr: the notebook's figures (each returns a matplotlib figure)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

COLORS = {"standard": "C0", "dream": "C3"}


def curves_over_training(evals: pd.DataFrame, eval_K: int, bicubic: tuple[float, float]):
    """PSNR and SSIM at eval_K steps against iteration, and PSNR against training seconds."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.3))
    rows = evals[evals.K == eval_K].sort_values("iteration")
    for arm, g in rows.groupby("arm"):
        axes[0].plot(g.iteration, g.psnr, "o-", color=COLORS[arm], label=arm)
        axes[1].plot(g.iteration, g.ssim, "o-", color=COLORS[arm], label=arm)
        axes[2].plot(g.train_s, g.psnr, "o-", color=COLORS[arm], label=arm)
    for ax, value, name in ((axes[0], bicubic[0], "PSNR (dB)"), (axes[1], bicubic[1], "SSIM"), (axes[2], bicubic[0], "PSNR (dB)")):
        ax.axhline(value, color="gray", ls=":", label="bicubic")
        ax.set_ylabel(name)
    axes[0].set_xlabel("training iteration")
    axes[1].set_xlabel("training iteration")
    axes[2].set_xlabel("training seconds (DREAM costs more per iteration)")
    axes[0].set_title(f"K = {eval_K} sampling steps")
    axes[0].legend()
    fig.tight_layout()
    return fig


def psnr_vs_steps(evals: pd.DataFrame, sweep_iters: list, bicubic: tuple[float, float]):
    """PSNR and SSIM against the number of sampling steps K (log x), solid at the last sweep, dashed at the first."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.3))
    last, first = max(sweep_iters), min(sweep_iters)
    for arm, g in evals.groupby("arm"):
        for it, ls in ((last, "-"), (first, "--")):
            s = g[g.iteration == it].sort_values("K")
            axes[0].plot(s.K, s.psnr, "o" + ls, color=COLORS[arm], label=f"{arm} @ {it} it")
            axes[1].plot(s.K, s.ssim, "o" + ls, color=COLORS[arm], label=f"{arm} @ {it} it")
    for ax, value, name in ((axes[0], bicubic[0], "PSNR (dB)"), (axes[1], bicubic[1], "SSIM")):
        ax.axhline(value, color="gray", ls=":", label="bicubic")
        ax.set(xscale="log", xlabel="sampling steps K", ylabel=name)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def picture_grid(data: dict, grid: dict, eval_K: int, large_K: int, n: int = 8):
    """Rows: LR | bicubic | standard@K | DREAM@K | standard@large K | DREAM@large K | HR for n test images."""
    hr = data["test_hr"][:n]
    lr = F.interpolate(data["test_lr"][:n], size=hr.shape[-2:], mode="nearest")
    rows = [("LR (nearest)", lr), ("bicubic", data["test_cond"][:n]),
            (f"standard K={eval_K}", grid["standard"][eval_K]), (f"DREAM K={eval_K}", grid["dream"][eval_K]),
            (f"standard K={large_K}", grid["standard"][large_K]), (f"DREAM K={large_K}", grid["dream"][large_K]),
            ("HR", hr)]
    if large_K == eval_K:  # smoke: no separate many-step rows
        rows = rows[:4] + rows[6:]
    n = min(n, len(hr))
    fig, axes = plt.subplots(len(rows), n, figsize=(1.1 * n + 1.2, 1.1 * len(rows)), squeeze=False)
    for r, (name, imgs) in enumerate(rows):
        for c in range(n):
            img = ((imgs[c].float() + 1) / 2).clamp(0, 1).permute(1, 2, 0).numpy()
            ax = axes[r, c]
            ax.imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
    fig.tight_layout()
    return fig


def lambda_curves(alphas_cumprod: torch.Tensor):
    """lambda_t = sqrt(1 - alpha_bar_t) ** p against t for p in {0, 0.5, 1, 2}."""
    from shared.papers.dream_sr.experiments import dream_lambda

    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    t = np.arange(len(alphas_cumprod))
    for p in (0.0, 0.5, 1.0, 2.0):
        label = "p = 0 (pure rectification)" if p == 0 else f"p = {p:g}"
        ax.plot(t, dream_lambda(alphas_cumprod, p).numpy(), label=label)
    ax.set(xlabel="t", ylabel=r"$\lambda_t$", title="DREAM's adaptation (p = inf: standard)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def training_losses(history: pd.DataFrame, window: int = 20):
    """Each arm's training loss (running mean); DREAM's is against its own target, not comparable."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for arm, g in history.groupby("arm"):
        ax.plot(g.iteration, g.loss.rolling(window, min_periods=1).mean(), color=COLORS[arm], label=arm)
    ax.set(xlabel="training iteration", ylabel="loss (running mean)", yscale="log",
           title="DREAM's loss is on its own target: not comparable")
    ax.legend()
    fig.tight_layout()
    return fig
