"""TDNV (task-distance normalized variance) and the bias-variance split of task representations.

Everything is computed in float64.
"""
from __future__ import annotations

import numpy as np
import torch

from shared.errors import ParameterError

REDUCTIONS = ("mean", "sum")


def _as_float64(x) -> torch.Tensor:
    return torch.as_tensor(x).detach().to("cpu", torch.float64)


def task_means_and_variances(H, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """Per task t: the mean mu_t (T, d) and the spread v_t = mean_i ||h_i - mu_t||^2 (T,)."""
    H, labels = _as_float64(H), torch.as_tensor(labels)
    tasks = torch.unique(labels)
    mus = torch.stack([H[labels == t].mean(0) for t in tasks])
    vs = torch.stack([((H[labels == t] - mus[i]) ** 2).sum(1).mean() for i, t in enumerate(tasks)])
    return mus, vs


def tdnv(H, labels, reduce: str = "mean") -> float:
    """TDNV = over ordered task pairs t != t' of (v_t + v_t') / (2 ||mu_t - mu_t'||^2), mean or sum.

    ``H`` is (n, d), ``labels`` (n,) task ids (at least two tasks).
    """
    if reduce not in REDUCTIONS:
        raise ParameterError("tdnv_reduce", f"unknown value {reduce!r}", REDUCTIONS)
    mus, vs = task_means_and_variances(H, labels)
    T = len(vs)
    if T < 2:
        raise ValueError("TDNV needs at least two tasks")
    off = ~torch.eye(T, dtype=torch.bool)
    ratios = ((vs[:, None] + vs[None, :]) / (2 * torch.cdist(mus, mus) ** 2))[off]
    return float(ratios.mean() if reduce == "mean" else ratios.sum())


def tdnv_per_layer(states, labels, reduce: str = "mean") -> np.ndarray:
    """TDNV of each layer of (L, n, d) states: an (L,) array (index 0 is layer 1)."""
    return np.array([tdnv(h, labels, reduce) for h in states])


def relative_bias_variance(states: torch.Tensor, reference_mean: torch.Tensor) -> tuple[float, float]:
    """bias = ||mu(K) - mu(inf)|| / ||mu(inf)||, var = mean_i ||h_i - mu(K)||^2 / ||mu(inf)||^2.

    ``states`` (n, d) are one task's states at K demonstrations; ``reference_mean`` (d,) is mu(inf).
    """
    H, ref = _as_float64(states), _as_float64(reference_mean)
    mu = H.mean(0)
    scale = ref.norm()
    return float((mu - ref).norm() / scale), float(((H - mu) ** 2).sum(1).mean() / scale ** 2)


def strictly_decreasing_ratio(values) -> float:
    """The largest ratio of consecutive positive values: below 1 exactly when they strictly decrease."""
    v = np.asarray(values, dtype=float)
    return float(np.max(v[1:] / v[:-1]))
