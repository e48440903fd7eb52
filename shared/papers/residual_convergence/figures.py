"""The five figures of the paper's notebook; each function returns a matplotlib Figure."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator, NullFormatter

from shared.papers.residual_convergence.experiments import InitAnatomy


def variant(alpha: pd.Series) -> pd.Series:
    """A readable label for the residual scale: "residual" (alpha=1), "none" (0), else "alpha=a"."""
    return alpha.map(lambda a: {0.0: "none", 1.0: "residual"}.get(a, f"alpha={a:g}"))


def thin(curves: pd.DataFrame, points: int = 500) -> pd.DataFrame:
    """Keep about ``points`` steps of each curve (every k-th step, plus each run's last step)."""
    stride = max(1, int(curves.step.max()) // points)
    last = curves.groupby(["seed", "beta", "alpha", "layers"]).step.transform("max")
    return curves[(curves.step % stride == 0) | (curves.step == last)]


def loss_curves(losses: pd.DataFrame) -> plt.Figure:
    """Figure 1: log10 loss against step, residual vs none, one panel per beta, seeds as thin lines."""
    data = thin(losses).assign(log10_loss=lambda t: np.log10(t.loss), variant=lambda t: variant(t.alpha))
    grid = sns.relplot(data=data, x="step", y="log10_loss", hue="variant", units="seed", estimator=None,
                       col="beta", kind="line", linewidth=0.9, height=3.2, aspect=1.1)
    grid.set_titles("beta = {col_name:g}").set_axis_labels("GD step", "log10 loss")
    return grid.figure


def spectrum_curves(spectra: pd.DataFrame) -> plt.Figure:
    """Figure 2: sigma_min, sigma_max and kappa of Z_t against step for both variants (log y)."""
    data = spectra.melt(id_vars=["alpha", "step"], value_vars=["sigma_min", "sigma_max", "kappa"],
                        var_name="quantity").replace([np.inf], np.nan)
    data["variant"] = variant(data.alpha)
    grid = sns.relplot(data=data, x="step", y="value", hue="variant", col="quantity", kind="line",
                       height=3.0, aspect=1.1, facet_kws={"sharey": False})
    grid.set(yscale="log").set_titles("{col_name}(Z_t)").set_axis_labels("GD step", "")
    for ax in grid.axes.flat:
        ax.yaxis.set_minor_formatter(NullFormatter())
    return grid.figure


def rank_collapse(anatomy: InitAnatomy, beta: float) -> plt.Figure:
    """Figure 3: one S_i at init, singular values of its block with and without X_i, stable rank vs beta."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    sns.heatmap(anatomy.S, ax=axes[0], cmap="viridis", square=True, cbar_kws={"shrink": 0.8})
    axes[0].set_title(f"S_1 at init (beta = {beta:g})")
    index = np.arange(1, len(anatomy.sv_attention) + 1)
    axes[1].semilogy(index, anatomy.sv_attention, "o-", label="S X W_V")
    axes[1].semilogy(index, anatomy.sv_residual, "s-", label="S X W_V + X")
    axes[1].set(xlabel="index", ylabel="singular value", title="block 1 of Z at init")
    axes[1].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[1].legend()
    ranks = anatomy.stable_ranks
    axes[2].semilogx(ranks.beta.clip(lower=1e-1), ranks.stable_rank, "o-")
    axes[2].set(xlabel="beta", ylabel="mean stable rank of S", title="softmax rank at init")
    fig.tight_layout()
    return fig


def rate_vs_conditioning(sweep_losses: pd.DataFrame, runs: pd.DataFrame, spearman: float,
                         residual_spearman: float, depth_rates: pd.DataFrame) -> plt.Figure:
    """Figure 4: loss curves of the alpha sweep, the fitted rate against 1/kappa(Z_0)^2, and the same with depth."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    data = thin(sweep_losses).assign(log10_loss=lambda t: np.log10(t.loss))
    sns.lineplot(data=data, x="step", y="log10_loss", hue="alpha", palette="viridis", ax=axes[0])
    axes[0].set(xlabel="GD step", ylabel="log10 loss", title="residual scale alpha (Z = SXW_V + alpha X)")
    done = runs[(runs.status == "finished") & np.isfinite(runs.kappa0)]
    sns.scatterplot(data=done.assign(inv_kappa2=1 / done.kappa0**2, variant=variant(done.alpha)),
                    x="inv_kappa2", y="rho", hue="variant", style="beta", ax=axes[1])
    axes[1].set(xscale="log", xlabel="1 / kappa(Z_0)^2", ylabel="fitted rate rho per step",
                title=f"Spearman: all runs {spearman:.2f}, residual runs {residual_spearman:.2f}")
    axes[1].legend(fontsize=7)
    depth = depth_rates.assign(inv_kappa2=1 / depth_rates.kappa0**2)
    sns.scatterplot(data=depth, x="inv_kappa2", y="rho_per_eta", hue="layers", style="beta", palette="flare",
                    s=70, ax=axes[2])
    for row in depth.itertuples():
        axes[2].annotate(f"L={row.layers}: rho {row.rho:.2g}", (row.inv_kappa2, row.rho_per_eta), fontsize=7)
    axes[2].set(xlabel="1 / kappa(Z_0)^2", ylabel="rho / eta (rate per unit step)",
                title="residual stacks, step eta / L")
    fig.tight_layout()
    return fig


def depth_curves(losses: pd.DataFrame, runs: pd.DataFrame) -> plt.Figure:
    """Figure 5: loss curves for each depth L (eta / L), diverged runs marked with an x."""
    data = thin(losses).assign(log10_loss=lambda t: np.log10(t.loss), variant=lambda t: variant(t.alpha))
    grid = sns.relplot(data=data, x="step", y="log10_loss", hue="layers", col="beta", style="variant",
                       kind="line", palette="flare", height=3.4, aspect=1.2)
    for beta, ax in grid.axes_dict.items():
        for run in runs[(runs.beta == beta) & (runs.status == "diverged")].itertuples():
            curve = losses[(losses.beta == beta) & (losses.alpha == run.alpha) & (losses.layers == run.layers)]
            ax.plot(curve.step.iloc[-1], np.log10(curve.loss.iloc[-1]), "kx", markersize=10)
            ax.annotate(f"L={run.layers} diverged at {run.diverged_at}", (curve.step.iloc[-1],
                        np.log10(curve.loss.iloc[-1])), fontsize=7)
    grid.set_titles("beta = {col_name:g}; eta / L").set_axis_labels("GD step", "log10 loss")
    return grid.figure
