"""Generalized neural collapse (Jiang, Zhou et al., ICML 2024) when classes outnumber feature dimensions.

With K > d + 1 no simplex ETF exists. Features and classifier rows are L2-normalized and the logits are
<h_bar, w_bar_k> / tau. The geometry is measured by:

- GNC1: ``nc1`` of the row-normalized features (Sigma_B inverted on its top min(K-1, d) eigenpairs).
- GNC2: the minimal one-vs-rest distance min_k rho_k(W), rho_k = dist(w_bar_k, conv{w_bar_j : j != k})
  (larger is better). Solved exactly as a non-negative least-squares problem with a heavily weighted
  sum-to-one row; a batched projected-(sub)gradient lower bound for very large K.
- GNC3: (1/K) sum_k (1 - cos(w_k, mu_bar_k - mu_bar_G)), means of the normalized features.

It also holds the softmax-code solver (the K unit vectors that maximize GNC2, a numerical lower bound on the
optimum rho*(K, d)), the spherical unconstrained feature model, the cosine classifier and NCC accuracy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy.optimize import nnls
from torch import nn

from shared.toolkit.neural_collapse import as_float64, nc1, to_numpy
from shared.toolkit.train import log_spaced


def rownorm(X: Any) -> np.ndarray:
    """Rows scaled to unit L2 norm, in float64."""
    X = as_float64(X)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def dist_to_hull(p: np.ndarray, Q: np.ndarray, big: float = 1e3) -> float:
    """min over a in the simplex of ||p - Q^T a||: NNLS with a heavily weighted sum-to-one row."""
    A = np.vstack([Q.T, big * np.ones((1, len(Q)))])
    a, _ = nnls(A, np.concatenate([p, [big]]), maxiter=50 * A.shape[1])
    a = a / a.sum()  # exact feasibility (the weighted row leaves a ~1/big^2 slack)
    return float(np.linalg.norm(p - Q.T @ a))


def one_vs_rest_distances(W: Any) -> np.ndarray:
    """rho_k = distance of the normalized row k to the convex hull of the other normalized rows (K,)."""
    W = rownorm(W)
    if not np.all(np.isfinite(W)):
        return np.full(len(W), np.nan)
    return np.array([dist_to_hull(W[k], np.delete(W, k, 0)) for k in range(len(W))])


def gnc2(W: Any) -> float:
    """GNC2 = min_k rho_k(W): the minimal one-vs-rest distance of the classifier rows (larger is better)."""
    return float(np.min(one_vs_rest_distances(W)))


@torch.no_grad()
def gnc2_pgd(W: Any, iters: int = 2000, lr: float = 0.1) -> float:
    """A lower bound on GNC2 for very large K: max over unit h_k of min_{j != k} (w_k - w_j)^T h_k by projected
    subgradient ascent for all k at once (torch, on W's device), keeping each class's best value.

    By minimax duality the exact value equals the one-vs-rest distance when it is positive.
    """
    W = torch.as_tensor(W, dtype=torch.float64) if not torch.is_tensor(W) else W.detach().double()
    W = F.normalize(W, dim=1)
    K = len(W)
    H = W.clone()
    best = torch.full((K,), -math.inf, dtype=W.dtype, device=W.device)
    eye = torch.eye(K, dtype=torch.bool, device=W.device)
    for t in range(iters):
        # margins[k, j] = (w_k - w_j)^T h_k
        margins = (H * W).sum(1, keepdim=True) - H @ W.T
        margins = margins.masked_fill(eye, math.inf)
        value, j = margins.min(1)
        best = torch.maximum(best, value)
        step = lr * (1 - t / iters)
        H = F.normalize(H + step * (W - W[j]), dim=1)
    return float(best.min())


def gnc1(H: Any, y: Any, num_classes: int) -> float:
    """GNC1: NC1 (tr(Sigma_W Sigma_B^+)/K) of the row-normalized features."""
    return nc1(rownorm(H), to_numpy(y), num_classes)


def normalized_class_means(H: Any, y: Any, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Global mean (d,) and class means (K, d) of the row-normalized features."""
    Hn, y = rownorm(H), to_numpy(y)
    return Hn.mean(0), np.stack([Hn[y == k].mean(0) for k in range(num_classes)])


def gnc3(W: Any, H: Any, y: Any) -> float:
    """GNC3 = mean_k (1 - cos(w_k, mu_bar_k - mu_bar_G)), 0 when the centred class means align with W."""
    W = as_float64(W)
    mu_g, means = normalized_class_means(H, y, len(W))
    return float(np.mean(1 - (rownorm(means - mu_g) * rownorm(W)).sum(1)))


def min_pairwise_angle(W: Any) -> float:
    """min_{j != k} arccos <w_bar_j, w_bar_k> in degrees: the Tammes quantity (diagnostic)."""
    Wn = rownorm(W)
    cos = Wn @ Wn.T
    np.fill_diagonal(cos, -1.0)
    return float(np.degrees(np.arccos(np.clip(cos.max(), -1.0, 1.0))))


def ncc_accuracy(H_train: Any, y_train: Any, H_eval: Any, y_eval: Any, num_classes: int) -> float:
    """Nearest-class-mean accuracy on normalized features (the class means come from the training features)."""
    _, means = normalized_class_means(H_train, y_train, num_classes)
    He = rownorm(H_eval)
    scores = 2 * He @ means.T - (means**2).sum(1)  # argmin ||h - mu_k||^2
    return float(np.mean(scores.argmax(1) == to_numpy(y_eval)))


def gnc_metrics(W: Any, H: Any, y: Any) -> dict[str, float]:
    """GNC1, GNC2 (min and mean of rho_k), GNC3 and the minimal pairwise angle of classifier W and features H."""
    K = as_float64(W).shape[0]
    rho = one_vs_rest_distances(W)
    return {"gnc1": gnc1(H, y, K), "gnc2": float(np.min(rho)), "gnc2_mean": float(np.mean(rho)),
            "gnc3": gnc3(W, H, y), "min_angle": min_pairwise_angle(W)}


# ---------------------------------------------------------------- closed forms

def circle_code(K: int) -> np.ndarray:
    """K points evenly spaced on the unit circle (K x 2); its GNC2 is 1 - cos(2 pi / K)."""
    angles = 2 * np.pi * np.arange(K) / K
    return np.stack([np.cos(angles), np.sin(angles)], 1)


def simplex_code(K: int, d: int) -> np.ndarray:
    """A K-point simplex ETF in R^d (K <= d + 1), rotated at random (seed 0); its GNC2 is K/(K-1)."""
    if K > d + 1:
        raise ValueError(f"a simplex ETF of {K} points needs d >= K - 1, got d = {d}")
    M = np.eye(K) - 1.0 / K
    U, _, _ = np.linalg.svd(M)
    E = rownorm(M @ U[:, : K - 1])  # K x (K-1), unit rows, pairwise cosine -1/(K-1)
    Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((d, d)))
    return E @ Q[: K - 1]


# ---------------------------------------------------------------- softmax code

def softmax_code(K: int, d: int, iters: int = 3000, restarts: int = 2, seed: int = 0,
                 tau_start: float = 0.1, tau_end: float = 0.02, lr: float = 0.01) -> tuple[float, np.ndarray]:
    """(rho*, W): a numerical softmax code, the best of ``restarts`` runs of Adam on CE(W_bar W_bar^T / tau, arange(K))
    with tau annealed geometrically from ``tau_start`` to ``tau_end``, evaluated by the exact GNC2.

    rho* is a lower bound on the true optimum max_W GNC2(W).
    """
    best: tuple[float, np.ndarray] | None = None
    labels = torch.arange(K)
    for r in range(restarts):
        g = torch.Generator().manual_seed(seed + r)
        W = F.normalize(torch.randn(K, d, generator=g, dtype=torch.float64), dim=1).requires_grad_(True)
        opt = torch.optim.Adam([W], lr=lr)
        for t in range(iters):
            tau = tau_start * (tau_end / tau_start) ** (t / iters)
            Wn = F.normalize(W, dim=1)
            loss = F.cross_entropy(Wn @ Wn.T / tau, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
        Wf = rownorm(W.detach())
        value = gnc2(Wf)
        if best is None or value > best[0]:
            best = (value, Wf)
    return best


# ---------------------------------------------------------------- spherical UFM

@dataclass
class SphericalUFM:
    """The result of :func:`spherical_ufm`: the metric history and the final W, H, y."""

    history: pd.DataFrame
    W: np.ndarray
    H: np.ndarray
    y: np.ndarray


def spherical_ufm(K: int, d: int, per_class: int, inv_tau: float, steps: int, seed: int = 0, lr: float = 0.01,
                  eval_points: int = 20) -> SphericalUFM:
    """Free W (K x d) and H (K n x d), both normalized inside the loss, CE(H_bar W_bar^T / tau) minimized by Adam
    with cosine decay in float64 from N(0, 1); no weight decay. GNC metrics on a log-spaced step grid."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(K, d, generator=g, dtype=torch.float64).requires_grad_(True)
    H = torch.randn(K * per_class, d, generator=g, dtype=torch.float64).requires_grad_(True)
    y = torch.arange(K).repeat_interleave(per_class)
    opt = torch.optim.Adam([W, H], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    grid = set(log_spaced(steps, eval_points)) if eval_points > 0 else {steps}
    rows = []
    for step in range(1, steps + 1):
        loss = F.cross_entropy(F.normalize(H, dim=1) @ F.normalize(W, dim=1).T * inv_tau, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step in grid:
            rows.append({"step": step, "loss": loss.item()} | gnc_metrics(W.detach(), H.detach(), y))
    return SphericalUFM(pd.DataFrame(rows), rownorm(W.detach()), rownorm(H.detach()), y.numpy())


# ---------------------------------------------------------------- cosine classifier

class CosineClassifier(nn.Module):
    """logits = normalize(h) @ normalize(W)^T * inv_tau, no bias, W initialized N(0, 1)."""

    def __init__(self, dim: int, num_classes: int, inv_tau: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_classes, dim))
        self.inv_tau = float(inv_tau)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.normalize(h, dim=1) @ F.normalize(self.weight, dim=1).T * self.inv_tau


class CosineNet(nn.Module):
    """A backbone whose forward returns (output, _) (its output is the d-dim feature, e.g. a ResNet whose fc is
    Linear(512, d)), followed by a :class:`CosineClassifier` ``fc``; forward returns (logits, features)."""

    def __init__(self, backbone: nn.Module, dim: int, num_classes: int, inv_tau: float = 1.0):
        super().__init__()
        self.backbone = backbone
        self.fc = CosineClassifier(dim, num_classes, inv_tau)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.backbone(x)[0]
        return self.fc(h), h
