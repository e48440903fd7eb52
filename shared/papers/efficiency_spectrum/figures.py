"""efficiency_spectrum: the notebook's figures."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from shared.papers.efficiency_spectrum.experiments import generation_flops_closed_form
from shared.papers.efficiency_spectrum.scaling import CONSTANTS, chinchilla_opt, predict


def kv_cost(kv: dict, n_par: dict) -> plt.Figure:
    n = np.arange(1, 2 * kv["n_new"] + 1)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.3))
    for cache, label in ((True, "with KV cache"), (False, "without")):
        axes[0].plot(n, [generation_flops_closed_form(n_par["N_nonemb"], n_par["N_emb"], kv["P"], k, cache) for k in n],
                     label=label)
    axes[0].scatter([kv["n_new"]] * 2, [kv["flops_cache"], kv["flops_no_cache"]], color="k", zorder=3, label="counted")
    axes[0].set(xlabel="new tokens", ylabel="FLOPs", yscale="log", title=f"generation cost after {kv['P']} tokens")
    axes[0].legend()
    axes[1].bar(["with cache", "without"], [np.median(kv["seconds_cache"]), np.median(kv["seconds_no_cache"])])
    axes[1].set(ylabel="seconds (median)", title=f"{kv['n_new']} new tokens, wall clock")
    fig.tight_layout()
    return fig


def kv_memory(kb: dict, T_max: int = 8192) -> plt.Figure:
    T = np.linspace(0, T_max, 50)
    fig, ax = plt.subplots(figsize=(4.8, 3.3))
    for label, per in ((f"MHA ({kb['n_heads']} KV heads)", kb["mha_per_token"]),
                       (f"GQA ({kb['n_kv']} KV heads)", kb["per_token"]), ("MQA (1 KV head)", kb["mqa_per_token"])):
        ax.plot(T, per * T / 2**20, label=label)
    ax.scatter([kb["T"]], [kb["measured"] / 2**20], color="k", zorder=3, label="measured cache")
    ax.set(xlabel="context tokens", ylabel="KV cache (MiB)", title="KV memory = 2·L·n_kv·d_head·T·bytes")
    ax.legend()
    fig.tight_layout()
    return fig


def perplexity_bars(q: pd.DataFrame) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7, 3.4))
    fp = float(q.loc[q.variant == "fp", "ppl"].iloc[0])
    colors = {"fp": "C0", "weight-only": "C2", "W8A8": "C3"}
    ax.bar(range(len(q)), q.ppl, color=[colors[f] for f in q.family])
    ax.axhline(fp, color="k", lw=1, ls="--", label="fp")
    ax.set_xticks(range(len(q)), q.variant, rotation=30, ha="right")
    ax.set(yscale="log", ylabel="perplexity", title="quantization: perplexity per scheme")
    ax.legend()
    fig.tight_layout()
    return fig


def outliers(out: pd.DataFrame) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5.5, 3.3))
    for kind in ("down_proj", "q_proj"):
        part = out[out.kind == kind].sort_values("layer")
        ax.plot(part.layer, part.ratio, marker="o", ms=3, label=f"{kind} input")
    ax.set(yscale="log", xlabel="layer", ylabel="max|x| / median|x|", title="activation outliers")
    ax.legend()
    fig.tight_layout()
    return fig


def speculative(spec: pd.DataFrame) -> plt.Figure:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.3))
    s = spec[spec.method != "greedy"]
    for ax, col, title in ((axes[0], "tokens_per_forward", "new tokens per target forward"),
                           (axes[1], "speedup", "wall clock vs greedy (shown, not asserted)")):
        piv = s.pivot(index="prompt", columns="method", values=col)
        piv.plot.bar(ax=ax, rot=0)
        ax.axhline(1, color="k", lw=1, ls="--")
        ax.set(title=title, ylabel=col.replace("_", " "))
    fig.tight_layout()
    return fig


def scaling(grid: pd.DataFrame, fit: dict) -> plt.Figure:
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for i, (N, part) in enumerate(grid.groupby("N")):
        axes[0].scatter(part.D, part.loss, color=f"C{i}", label=f"N = {N:,}")
        D = np.geomspace(part.D.min(), part.D.max(), 30)
        axes[0].plot(D, predict(fit, N, D), color=f"C{i}", lw=1)
    axes[0].set(xscale="log", xlabel="training characters D", ylabel="validation loss (nats/char)",
                title=f"mini study: α = {fit['alpha']:.2f}, β = {fit['beta']:.2f}, R² = {fit['r2_log']:.2f}")
    axes[0].legend(fontsize=7)
    C = np.geomspace(1e19, 1e25, 40)
    for name, c in CONSTANTS.items():
        opt = [chinchilla_opt(x, c) for x in C]
        axes[1].plot(C, [o["N_opt"] for o in opt], label=name)
        axes[2].plot(C, [o["D_per_N"] for o in opt], label=name)
    axes[1].set(xscale="log", yscale="log", xlabel="compute C (FLOPs)", ylabel="N_opt", title="compute-optimal size")
    axes[2].axhline(20, color="k", lw=1, ls="--", label="20 tokens/param")
    axes[2].set(xscale="log", xlabel="compute C (FLOPs)", ylabel="D_opt / N_opt", title="tokens per parameter")
    axes[1].legend()
    axes[2].legend()
    fig.tight_layout()
    return fig
