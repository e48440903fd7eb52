"""nc_losses: the NC-metric curves of the UFM and of the trained networks."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

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
