"""Layer-wise representation similarity: sample-wise COS, linear CKA, and their agreement.

Every function takes the hidden states of L layers over the same n samples, as an (L, n, d)
tensor or a sequence of (n, d_l) tensors, and computes in float64.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from scipy.stats import spearmanr

Layers = torch.Tensor | Sequence[torch.Tensor]


def _as_float64(H: Layers) -> list[torch.Tensor]:
    return [torch.as_tensor(h).detach().to("cpu", torch.float64) for h in H]


def center_samples(X: torch.Tensor) -> torch.Tensor:
    """Subtract the mean over samples (rows), as the official ``remove_mean_normalize``."""
    return X - X.mean(dim=0, keepdim=True)


def cos_matrix(H: Layers) -> torch.Tensor:
    """L x L sample-wise COS: mean_i <h~_i^l, h~_i^l'>, h~ centred over samples and unit-normed.

    All layers must share the feature dimension. COS is invariant to scaling a layer and to adding
    a constant vector to it, but not to rotating it (unlike CKA).
    """
    units = [torch.nn.functional.normalize(center_samples(h), dim=1) for h in _as_float64(H)]
    U = torch.stack(units)  # (L, n, d)
    return torch.einsum("lnd,knd->lk", U, U) / U.shape[1]


def _hsic_biased(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """||X^T Y||_F^2 for column-centred X, Y (the unnormalized biased HSIC of linear kernels)."""
    return (X.T @ Y).square().sum()


def _hsic_unbiased(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """Unbiased HSIC (Song et al. 2012; Nguyen et al. 2021) of linear kernels, without n x n Grams.

    With K~ = XX^T and L~ = YY^T with zeroed diagonals:
    [tr(K~L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3)).
    """
    n = X.shape[0]
    kd, ld = X.square().sum(1), Y.square().sum(1)  # diagonals of K and L
    trace = (X.T @ Y).square().sum() - (kd * ld).sum()
    k1 = X @ X.sum(0) - kd  # K~ 1
    l1 = Y @ Y.sum(0) - ld  # L~ 1
    return (trace + k1.sum() * l1.sum() / ((n - 1) * (n - 2)) - 2 / (n - 2) * (k1 @ l1)) / (n * (n - 3))


def cka_matrix(H: Layers, unbiased: bool = False) -> torch.Tensor:
    """L x L linear CKA (Kornblith et al. 2019) between layers; ``unbiased`` uses unbiased HSIC."""
    hsic = _hsic_unbiased if unbiased else _hsic_biased
    Xs = [center_samples(h) for h in _as_float64(H)]
    L = len(Xs)
    M = torch.empty(L, L, dtype=torch.float64)
    for a in range(L):
        for b in range(a, L):
            M[a, b] = M[b, a] = hsic(Xs[a], Xs[b])
    norms = M.diagonal().sqrt()
    return M / (norms[:, None] * norms[None, :])


def linear_cka(X: torch.Tensor, Y: torch.Tensor, unbiased: bool = False) -> float:
    """Linear CKA of two (n, d_x), (n, d_y) representations of the same samples."""
    return float(cka_matrix([X, Y], unbiased=unbiased)[0, 1])


def upper_pairs(M: torch.Tensor | np.ndarray) -> np.ndarray:
    """The entries M[l, l'] with l < l', row by row."""
    M = np.asarray(M)
    return M[np.triu_indices(M.shape[0], k=1)]


def agreement(cos: torch.Tensor | np.ndarray, cka: torch.Tensor | np.ndarray) -> float:
    """Spearman correlation of COS and CKA over the layer pairs l < l'."""
    return float(spearmanr(upper_pairs(cos), upper_pairs(cka)).statistic)


def class_mean_projection(H: Layers, labels: torch.Tensor | np.ndarray, reference: int = -1) -> np.ndarray:
    """Each layer's class means, centred and scaled to unit RMS norm, on the ``reference`` layer's 2-D PCA plane.

    Returns (L, n_classes, 2); a shared plane shows whether layers share the last layer's geometry.
    """
    from sklearn.decomposition import PCA

    labels = np.asarray(labels)
    classes = np.unique(labels)
    means = np.stack([[h[labels == k].mean(0) for k in classes] for h in (x.numpy() for x in _as_float64(H))])
    means -= means.mean(axis=1, keepdims=True)
    means /= np.sqrt((means ** 2).sum(axis=(1, 2), keepdims=True) / len(classes))
    pca = PCA(n_components=2).fit(means[reference])
    return np.stack([m @ pca.components_.T for m in means])
