"""Linear subspaces of a point cloud: the SVD basis, the robust Fast Median Subspace, principal angles.

FMS (Lerman & Maunu, 2018, "Fast, robust and non-convex subspace recovery") minimizes the sum of the
*unsquared* distances of the points to a d-dimensional subspace through the origin,
``min_V sum_i ||x_i - V V^T x_i||`` subject to ``V^T V = I``, by iteratively reweighted least squares:
each step takes the top-d right singular vectors of the rows scaled by ``max(res_i, eps)^(-1/2)``.
Points far from the subspace (outliers) get small weights, so FMS recovers a planted subspace that
plain SVD (least squares) tilts toward the outliers. It is robust subspace recovery, not
"low-rank + sparse" robust PCA.
"""
from __future__ import annotations

import numpy as np

from shared.errors import ParameterError


def _check(X: np.ndarray, d: int) -> np.ndarray:
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ParameterError("X", f"needs a 2-D array of points (rows), got shape {X.shape}")
    if not 1 <= d <= min(X.shape):
        raise ParameterError("d", f"{d} is out of range for {X.shape[0]} points in dimension {X.shape[1]}",
                             f"1 .. {min(X.shape)}")
    return X


def svd_basis(X: np.ndarray, d: int) -> np.ndarray:
    """The top-``d`` right singular vectors of ``X`` (rows are points), as a (D, d) orthonormal matrix."""
    X = _check(X, d)
    return np.linalg.svd(X, full_matrices=False)[2][:d].T.copy()


def fms_basis(X: np.ndarray, d: int, iters: int = 200, eps: float = 1e-10, tol: float = 1e-6,
              return_iters: bool = False):
    """Fast Median Subspace: a robust (D, d) orthonormal basis of the rows of ``X``.

    Starts from the SVD basis; stops when ``||V V^T - V0 V0^T||_F / sqrt(2d) < tol`` or after ``iters``.
    """
    X = _check(X, d)
    V = svd_basis(X, d)
    done_at = 0
    for step in range(1, iters + 1):
        res = np.linalg.norm(X - (X @ V) @ V.T, axis=1)
        weights = 1.0 / np.sqrt(np.maximum(res, eps))
        V_new = np.linalg.svd(X * weights[:, None], full_matrices=False)[2][:d].T
        change = np.linalg.norm(V_new @ V_new.T - V @ V.T) / np.sqrt(2 * d)
        V, done_at = V_new, step
        if change < tol:
            break
    return (V, done_at) if return_iters else V


def principal_angles(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Principal angles (degrees, ascending) between the column spans of ``A`` and ``B``."""
    Qa, _ = np.linalg.qr(np.asarray(A, dtype=float))
    Qb, _ = np.linalg.qr(np.asarray(B, dtype=float))
    cosines = np.clip(np.linalg.svd(Qa.T @ Qb, compute_uv=False), -1.0, 1.0)
    # arccos is ill-conditioned near 1: take the angle from the sines of the residual instead
    residual = Qb - Qa @ (Qa.T @ Qb)
    sines = np.clip(np.linalg.svd(residual, compute_uv=False), 0.0, 1.0)
    k = min(Qa.shape[1], Qb.shape[1])
    angles = np.where(cosines[:k] > 0.7, np.arcsin(np.sort(sines)[:k]), np.arccos(cosines[:k]))
    return np.sort(np.rad2deg(angles))


def planted_subspace(D: int, d: int, n_inliers: int, outlier_fraction: float, seed: int):
    """Inliers on a random d-dim subspace of R^D plus Gaussian outliers of the mean inlier norm.

    ``outlier_fraction`` is the share of outliers among all points. Returns (X, basis, is_outlier).
    """
    if not 0 <= outlier_fraction < 1:
        raise ParameterError("outlier_fraction", f"{outlier_fraction} is out of range", "0 <= f < 1")
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((D, d)))[0]
    inliers = rng.standard_normal((n_inliers, d)) @ basis.T
    outliers = gaussian_outliers(inliers, outlier_fraction, rng)
    X = np.vstack([inliers, outliers])
    return X, basis, np.r_[np.zeros(len(inliers), bool), np.ones(len(outliers), bool)]


def gaussian_outliers(inliers: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """``fraction`` of all points as isotropic Gaussian rows, each scaled to the mean inlier norm."""
    k = int(fraction / (1 - fraction) * len(inliers) + 1e-9)
    g = rng.standard_normal((k, inliers.shape[1]))
    norm = np.linalg.norm(inliers, axis=1).mean()
    return g / np.linalg.norm(g, axis=1, keepdims=True).clip(1e-12) * norm
