"""Neural-collapse metrics NC1-NC4 of penultimate features and a linear classifier.

Formulas follow the official code of Zhou et al. 2022 (``jinxinzhou/nc_loss``, ``evaluate.py``),
computed in float64. With features H (N x d), labels y, class means mu_k, global mean mu_G and
centred means M = [mu_k - mu_G] (K x d):

- NC1 = tr(Sigma_W Sigma_B^+) / K, Sigma_W = mean (h - mu_y)(h - mu_y)^T, Sigma_B = M^T M / K;
  Sigma_B is inverted on at most its top K-1 eigenpairs, dropping eigenvalues below a relative
  tolerance (as scipy's pinv does), so round-off is never inverted.
- NC2 = || G / ||G||_F - (I_K - 11^T/K) / sqrt(K-1) ||_F with G = W W^T (classifier) or M M^T
  (class means). The official code centres W's rows first (``center_w=True``).
- NC3 has two definitions (``NC3_DEFINITIONS``): "wm_relation" = the same gap with G = W M^T
  (official ``WH_relation_metric``; ``nc3`` and the ``nc3`` column of ``collapse_metrics``), and
  "self_duality" = || W/||W||_F - M/||M||_F ||_F (Papyan et al.).
- NC4 = || W mu_G + b ||_2 (official ``Wh_b_relation_metric``); for MSE it tends to
  rescale / sqrt(K), not 0.
"""
from __future__ import annotations

from typing import Any

import numpy as np

def to_numpy(x: Any) -> np.ndarray:
    """A numpy view of an array or of a (possibly CUDA, grad-tracking) torch tensor."""
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def as_float64(x: Any) -> np.ndarray:
    return to_numpy(x).astype(np.float64)


def class_means(H: Any, y: Any, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Global mean (d,) and class means (K, d) in float64, accumulated class by class."""
    H, y = to_numpy(H), to_numpy(y)
    empty = sorted(set(range(num_classes)) - set(np.unique(y).tolist()))
    if empty:
        raise ValueError(f"neural-collapse metrics need every class; classes {empty} have no samples")
    means = np.stack([H[y == k].mean(axis=0, dtype=np.float64) for k in range(num_classes)])
    return H.mean(axis=0, dtype=np.float64), means


def nc1(H: Any, y: Any, num_classes: int) -> float:
    """tr(Sigma_W Sigma_B^+) / K with a pseudo-inverse of Sigma_B that drops round-off (float64).

    Sigma_B^+ keeps at most the top K-1 eigenpairs, and only eigenvalues above
    ``max(K, d) * eps * scale`` where ``scale`` is the largest of Sigma_B's top eigenvalue, the total
    scatter tr(Sigma_T) and the features' mean squared norm (the relative tolerance of scipy's
    ``pinv``, guarded so that Sigma_B made of round-off alone, e.g. the means of constant features,
    is recognised as zero). Classes with identical means, or
    features of rank r < K-1, then give the pinv value instead of inverting round-off. With no
    between-class scatter at all, NC1 is undefined: NaN (never a "perfect collapse").
    """
    H, y = to_numpy(H), to_numpy(y)
    mu_g, means = class_means(H, y, num_classes)
    centred = means - mu_g
    # Sigma_B = centred^T centred / K: its eigenvectors are centred's right singular vectors.
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    eigen = s**2 / num_classes
    total_scatter = float(np.mean(np.sum((H.astype(np.float64) - mu_g) ** 2, axis=1)))
    magnitude = float(np.mean(np.sum(H.astype(np.float64) ** 2, axis=1)))  # round-off of the means scales with it
    scale = max(float(eigen[0]) if eigen.size else 0.0, total_scatter, magnitude)
    tolerance = max(num_classes, H.shape[1]) * np.finfo(np.float64).eps * scale
    rank = int(np.sum(eigen[: min(num_classes - 1, H.shape[1])] > tolerance))
    if rank == 0:
        return float("nan")
    whiten = vt[:rank].T * (np.sqrt(num_classes) / s[:rank])  # Sigma_B^{+1/2} on the kept eigenpairs
    total = 0.0
    for k in range(num_classes):
        deviations = H[y == k].astype(np.float64) - means[k]
        total += float(np.sum((deviations @ whiten) ** 2))
    return total / len(H) / num_classes


def etf_gap(gram: Any) -> float:
    """|| G/||G||_F - (I - 11^T/K)/sqrt(K-1) ||_F: distance of a K x K Gram-like matrix to the simplex ETF."""
    gram = as_float64(gram)
    k = gram.shape[0]
    etf = (np.eye(k) - np.ones((k, k)) / k) / np.sqrt(k - 1)
    return float(np.linalg.norm(gram / np.linalg.norm(gram) - etf))


def _centre_rows(W: np.ndarray, center: bool) -> np.ndarray:
    return W - W.mean(axis=0, keepdims=True) if center else W


def nc2_classifier(W: Any, center_w: bool = True) -> float:
    """NC2 on the classifier rows (official ``ETF_metric``; ``center_w=False`` as in tding1's code)."""
    W = _centre_rows(as_float64(W), center_w)
    return etf_gap(W @ W.T)


def nc2_means(H: Any, y: Any, num_classes: int) -> float:
    """NC2 on the centred class means: how close the features' means are to a simplex ETF."""
    mu_g, means = class_means(H, y, num_classes)
    centred = means - mu_g
    return etf_gap(centred @ centred.T)


def nc3(W: Any, H: Any, y: Any, num_classes: int, center_w: bool = True) -> float:
    """NC3 as the official code measures it (``WH_relation_metric``): the ETF gap of W M^T.

    Alias: :func:`nc3_wm_relation`. 0 when W is aligned with the centred class means; the official
    code evaluates it on the (augmented) training features."""
    mu_g, means = class_means(H, y, num_classes)
    W = _centre_rows(as_float64(W), center_w)
    return etf_gap(W @ (means - mu_g).T)


def nc3_wm_relation(W: Any, H: Any, y: Any, num_classes: int, center_w: bool = True) -> float:
    """NC3, definition "wm_relation" (official code): || WM^T/||WM^T||_F - (I - 11^T/K)/sqrt(K-1) ||_F."""
    return nc3(W, H, y, num_classes, center_w)


def nc3_self_duality(W: Any, H: Any, y: Any, num_classes: int) -> float:
    """NC3, definition "self_duality" (Papyan et al.): || W/||W||_F - M/||M||_F ||_F.

    M = [mu_k - mu_G] (K x d), W (K x d) uncentred. 0 when the classifier rows are a positive
    multiple of the centred class means; unlike the W-M relation it also sees a rotation of W that
    keeps W M^T's Gram structure."""
    mu_g, means = class_means(H, y, num_classes)
    W, M = as_float64(W), means - mu_g
    return float(np.linalg.norm(W / np.linalg.norm(W) - M / np.linalg.norm(M)))


# The two definitions of NC3 in use, by name: claims say which one they check.
NC3_DEFINITIONS = {"wm_relation": nc3_wm_relation, "self_duality": nc3_self_duality}


def nc4(W: Any, b: Any, H: Any) -> float:
    """|| W mu_G + b ||_2, the bias relation (0 for the CE family, rescale/sqrt(K) for MSE)."""
    W = as_float64(W)
    bias = np.zeros(W.shape[0]) if b is None else as_float64(b)
    return float(np.linalg.norm(W @ to_numpy(H).mean(axis=0, dtype=np.float64) + bias))


def collapse_metrics(H: Any, y: Any, W: Any, b: Any = None, center_w: bool = True) -> dict[str, float]:
    """NC1, NC2 (classifier and means), NC3 and NC4 of features H (N x d), labels y, classifier W (K x d), bias b."""
    H, y = to_numpy(H), to_numpy(y)
    num_classes = as_float64(W).shape[0]
    return {
        "nc1": nc1(H, y, num_classes),
        "nc2_w": nc2_classifier(W, center_w),
        "nc2_h": nc2_means(H, y, num_classes),
        "nc3": nc3(W, H, y, num_classes, center_w),
        "nc4": nc4(W, b, H),
    }
