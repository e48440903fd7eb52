"""One seaborn theme for every figure, and saving figures as DVC-tracked files shown inline."""
from __future__ import annotations

from pathlib import Path

import matplotlib

from shared.paths import figures_dir

PALETTE = "colorblind"


def set_theme() -> None:
    """The suite's single plotting theme."""
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE)
    matplotlib.rcParams.update({"figure.dpi": 100, "savefig.dpi": 120, "savefig.bbox": "tight"})


def save(fig, paper_id: str, name: str) -> Path:
    """Write ``fig`` to ``figures/<name>.png`` of the paper's outputs, show it inline, close it."""
    import matplotlib.pyplot as plt

    path = figures_dir(paper_id) / f"{name}.png"
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    try:
        from IPython import get_ipython
        from IPython.display import Image, display

        if get_ipython() is not None:
            display(Image(filename=str(path)))
    except ImportError:
        pass
    return path
