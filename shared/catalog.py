"""The papers of the suite: citation data shown in notebooks and on the scorecard."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Curve:
    """A table a paper writes (``tables/<table>.csv``) that ``dvc plots`` draws: ``y`` against ``x``."""

    table: str
    x: str
    y: tuple[str, ...]


@dataclass(frozen=True)
class Paper:
    id: str
    title: str
    authors: str
    venue: str
    arxiv: str
    curves: tuple[Curve, ...] = ()

    @property
    def url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv}"


PAPERS: dict[str, Paper] = {p.id: p for p in [
    Paper("nc_losses", "Are All Losses Created Equal: A Neural Collapse Perspective",
          "Jinxin Zhou, Chong You, Xiao Li, Kangning Liu, Sheng Liu, Qing Qu, Zhihui Zhu",
          "NeurIPS 2022", "2210.02192",
          (Curve("training_curves", "epoch", ("test_acc", "nc1", "nc3")), Curve("ufm_curves", "step", ("nc1",)))),
    Paper("residual_convergence",
          "On the Convergence of Gradient Descent on Learning Transformers with Residual Connections",
          "Zhen Qin, Jinxin Zhou, Zhihui Zhu", "arXiv preprint 2025", "2506.05249",
          (Curve("loss_curves", "step", ("loss",)), Curve("spectra", "step", ("kappa",)))),
    Paper("layerwise_similarity",
          "Tracing Representation Progression: Analyzing and Enhancing Layer-Wise Similarity",
          "Jiachen Jiang, Jinxin Zhou, Zhihui Zhu", "ICLR 2025", "2406.14479",
          (Curve("layerwise", "layer", ("accuracy", "cos_with_last")),)),
    Paper("icl_compression",
          "From Compression to Expansion: A Layerwise Analysis of In-Context Learning",
          "Jiachen Jiang, Yuxin Dong, Jinxin Zhou, Zhihui Zhu", "arXiv preprint 2025", "2505.17322",
          (Curve("tdnv_curves", "layer", ("tdnv",)),)),
]}
