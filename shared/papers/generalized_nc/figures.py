"""generalized_nc: the notebook's figures (each returns a matplotlib Figure)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import matplotlib.pyplot as plt

from shared.toolkit import gnc


def tau_label(inv_tau: float) -> str:
    return "τ = 1" if inv_tau == 1 else f"τ = 1/{inv_tau:g}"


def positive(values) -> np.ndarray:
    """Values clipped at 1e-12 for a log axis (GNC1/GNC3 can round to 0 or -1e-16)."""
    return np.maximum(np.asarray(values, dtype=float), 1e-12)


def one_vs_rest(code: np.ndarray):
    """Left: w1 against conv{w2, w3, w4} in 2-D; right: a (K, 2) softmax code on the circle."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.8))
    W = gnc.circle_code(4) @ np.array([[1, 0.25], [-0.25, 1]])
    W = gnc.rownorm(W)
    rest = W[1:]
    from scipy.optimize import nnls
    A = np.vstack([rest.T, 1e3 * np.ones((1, 3))])
    c, _ = nnls(A, np.concatenate([W[0], [1e3]]))
    p = rest.T @ (c / c.sum())
    t = np.linspace(0, 2 * np.pi, 200)
    for ax in (a, b):
        ax.plot(np.cos(t), np.sin(t), color="0.8", lw=1)
        ax.set_aspect("equal")
        ax.set_xticks([]), ax.set_yticks([])
    a.fill(rest[:, 0], rest[:, 1], color="C0", alpha=0.2, label="conv{w2, w3, w4}")
    a.scatter(W[:, 0], W[:, 1], color="C0")
    for i, w in enumerate(W):
        a.annotate(f"w{i + 1}", w * 1.12, ha="center", va="center")
    a.plot([W[0, 0], p[0]], [W[0, 1], p[1]], color="C3", lw=2, label=f"ρ1 = {np.linalg.norm(W[0] - p):.3f}")
    a.legend(loc="lower left", fontsize=8)
    a.set_title("one-vs-rest distance")
    b.scatter(code[:, 0], code[:, 1], color="C1")
    for w in code:
        b.plot([0, w[0]], [0, w[1]], color="C1", lw=0.8)
    b.set_title(f"softmax code ({len(code)}, 2): GNC2 = {gnc.gnc2(code):.4f}")
    fig.tight_layout()
    return fig


def ufm_curves(history: pd.DataFrame, rho: float):
    """GNC1, GNC2 and GNC3 of the spherical UFM against step; one colour per tau, seeds as thin lines."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for c, (inv_tau, runs) in enumerate(history.groupby("inv_tau")):
        for i, (_, run) in enumerate(runs.groupby("seed")):
            for ax, col in zip(axes, ("gnc1", "gnc2", "gnc3")):
                ax.plot(run.step, positive(run[col]) if col != "gnc2" else run[col], color=f"C{c}", lw=1.5 if i == 0 else 0.7,
                        label=tau_label(inv_tau) if i == 0 else None)
    axes[1].axhline(rho, ls="--", color="k", lw=1, label=f"ρ* = {rho:.3f}")
    for ax, name in zip(axes, ("GNC1", "GNC2 (min one-vs-rest distance)", "GNC3")):
        ax.set(xscale="log", xlabel="step", title=name)
    axes[0].set_yscale("log"), axes[2].set_yscale("log")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def heatmap(heat: pd.DataFrame):
    table = heat.pivot_table(index=["K", "d"], columns="inv_tau", values="ratio").sort_index()
    table.index = [f"({k}, {d})" for k, d in table.index]
    fig, ax = plt.subplots(figsize=(1.2 * table.shape[1] + 2.5, 0.6 * table.shape[0] + 1.5))
    im = ax.imshow(table.to_numpy(), vmin=0, vmax=1, cmap="viridis")
    for i in range(table.shape[0]):
        for j in range(table.shape[1]):
            ax.text(j, i, f"{table.iat[i, j]:.2f}", ha="center", va="center", color="w" if table.iat[i, j] < 0.6 else "k")
    ax.set_xticks(range(table.shape[1]), [tau_label(t) for t in table.columns])
    ax.set_yticks(range(table.shape[0]), table.index)
    ax.set(ylabel="(K, d)", title="UFM: GNC2 / ρ*")
    ax.grid(False)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return fig


def sphere(runs, taus):
    """Test features on S^2 by class, with the classifier directions, for each tau in ``taus``."""
    fig = plt.figure(figsize=(4.5 * len(taus), 4.3))
    for i, inv_tau in enumerate(taus):
        ax = fig.add_subplot(1, len(taus), i + 1, projection="3d")
        H, y, W = runs.test_features[inv_tau], runs.test_labels, runs.W[inv_tau]
        for k in range(W.shape[0]):
            ax.scatter(*H[y == k].T, s=3, alpha=0.4, color=f"C{k % 10}")
            ax.plot([0, W[k, 0]], [0, W[k, 1]], [0, W[k, 2]], color=f"C{k % 10}", lw=2)
        ax.set_title(f"{tau_label(inv_tau)}: GNC2 = {gnc.gnc2(W):.3f}")
        ax.set_xticks([]), ax.set_yticks([]), ax.set_zticks([])
    fig.tight_layout()
    return fig


def net_curves(history: pd.DataFrame, rho: float):
    """GNC1, GNC2/rho*, GNC3 and train/test accuracy against epoch, one line per tau."""
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.3))
    for c, (inv_tau, run) in enumerate(history.groupby("inv_tau")):
        kw = {"color": f"C{c}", "marker": "o", "ms": 3}
        axes[0].plot(run.epoch, positive(run.gnc1), label=tau_label(inv_tau), **kw)
        axes[1].plot(run.epoch, run.gnc2 / rho, **kw)
        axes[2].plot(run.epoch, positive(run.gnc3), **kw)
        axes[3].plot(run.epoch, run.train_acc, ls="--", **kw)
        axes[3].plot(run.epoch, run.test_acc, **kw)
    axes[1].axhline(1, ls="--", color="k", lw=1)
    for ax, name in zip(axes, ("GNC1", "GNC2 / ρ*", "GNC3", "accuracy (dashed: train)")):
        ax.set(xlabel="epoch", title=name)
    axes[0].set_yscale("log"), axes[2].set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def against_tau(final: pd.DataFrame, name: str):
    """Test accuracy (classifier and NCC) and GNC2/rho* against tau."""
    final = final.sort_values("inv_tau")
    x = 1 / final.inv_tau
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.2))
    a.plot(x, final.test_acc, "o-", label="cosine classifier")
    a.plot(x, final.ncc_test, "s--", label="NCC")
    a.set(xscale="log", xlabel="τ", ylabel="test accuracy", title=name)
    a.legend(fontsize=8)
    if final.ratio.notna().any():
        b.plot(x, final.ratio, "o-")
        b.axhline(1, ls="--", color="k", lw=1)
        b.set(xscale="log", xlabel="τ", ylabel="GNC2 / ρ*", title="classifier vs softmax code")
    else:
        b.plot(x, final.gnc2, "o-")
        b.set(xscale="log", xlabel="τ", ylabel="GNC2", title="GNC2 (ρ* not solved at this scale)")
    fig.tight_layout()
    return fig


def rho_histograms(groups: dict):
    """Histograms of the per-class one-vs-rest distances; ``groups`` maps a panel title to {label: rho_k}."""
    fig, axes = plt.subplots(1, len(groups), figsize=(4.5 * len(groups), 3.2), squeeze=False)
    for ax, (title, hists) in zip(axes[0], groups.items()):
        for c, (label, rho) in enumerate(hists.items()):
            ax.hist(rho, bins=20, alpha=0.55, color=f"C{c}", label=label)
        ax.set(xlabel="ρ_k", ylabel="classes", title=title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
