"""nc_losses: the NC-metric curves of the UFM and of the trained networks, and the width x epochs heat maps."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.colors import LogNorm

from shared.papers.nc_losses.width_epochs import accuracy_gaps

NC = {"nc1": "NC1", "nc2_w": "NC2 (classifier)", "nc2_h": "NC2 (class means)", "nc3": "NC3"}


def nc_curves(history: pd.DataFrame, x: str, title: str) -> plt.Figure:
    """NC1, NC2 (classifier, means) and NC3 against ``x`` (log-log), one line per loss, band over seeds."""
    long = history.melt(id_vars=[x, "loss"], value_vars=list(NC), var_name="metric")
    grid = sns.relplot(long, x=x, y="value", hue="loss", col="metric", kind="line", col_wrap=4,
                       height=2.8, facet_kws={"sharey": False}, errorbar=("pi", 100))
    grid.set(xscale="log", yscale="log")
    for ax, metric in zip(grid.axes.flat, NC):
        ax.set_title(NC[metric])
        ax.yaxis.set_minor_formatter(plt.NullFormatter())
    grid.figure.suptitle(title, y=1.03)
    return grid.figure


def _heatmap(table: pd.DataFrame, ax: plt.Axes, title: str, fmt: str, cmap: str, **kw) -> None:
    """One annotated width (rows) x epochs (columns) panel."""
    sns.heatmap(table.sort_index(ascending=False), annot=True, fmt=fmt, cmap=cmap, cbar=False, ax=ax,
                annot_kws={"size": 8}, **kw)
    ax.set(title=title, xlabel="epochs", ylabel="width")


def width_epoch_maps(cells: pd.DataFrame, losses: list[str], title: str) -> plt.Figure:
    """The paper's heat maps over width x epochs, seed means: test accuracy (%) and final NC1 per loss
    (rows 1-2), |Acc_CE - Acc_X| in points per loss X other than CE (row 3)."""
    gaps = accuracy_gaps(cells)
    means = cells.groupby(["loss", "width", "epochs"])[["test_acc", "nc1"]].mean()
    fig, axes = plt.subplots(3, len(losses), figsize=(3.2 * len(losses), 7.2), squeeze=False)
    acc_range = {"vmin": 100 * means.test_acc.min(), "vmax": 100 * means.test_acc.max()}
    for col, loss in enumerate(losses):
        table = means.loc[loss]
        _heatmap(100 * table.test_acc.unstack("epochs"), axes[0, col], f"{loss}: test acc (%)", ".1f", "viridis",
                 **acc_range)
        _heatmap(table.nc1.unstack("epochs"), axes[1, col], f"{loss}: NC1", ".2g", "magma_r",
                 norm=LogNorm(vmin=means.nc1.min(), vmax=means.nc1.max()))
        gap = gaps[gaps.loss == loss]
        if len(gap):
            _heatmap(100 * gap.pivot(index="width", columns="epochs", values="gap"), axes[2, col],
                     f"|Acc_ce - Acc_{loss}| (points)", ".2f", "rocket_r", vmin=0, vmax=100 * max(gaps.gap.max(), 1e-3))
        else:
            axes[2, col].axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
