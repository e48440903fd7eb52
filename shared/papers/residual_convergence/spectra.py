"""Spectral quantities: sigma_min, sigma_max and kappa of a matrix, stable rank of attention."""
from __future__ import annotations

from typing import NamedTuple

import torch


class SvdStats(NamedTuple):
    sigma_min: float  # the min(rows, cols)-th singular value
    sigma_max: float
    kappa: float      # sigma_max / sigma_min; inf when the matrix is numerically rank-deficient


def svd_stats(A: torch.Tensor) -> SvdStats:
    """sigma_min, sigma_max and kappa of a 2-D matrix, via ``torch.linalg.svdvals``.

    A matrix whose sigma_min is below the numerical-rank tolerance of ``torch.linalg.matrix_rank``
    (sigma_max * max(shape) * eps) is rank-deficient: kappa is inf, with no error raised.
    """
    sv = torch.linalg.svdvals(A.detach())
    sigma_max, sigma_min = sv[0].item(), sv[-1].item()
    tolerance = sigma_max * max(A.shape) * torch.finfo(A.dtype).eps
    kappa = sigma_max / sigma_min if sigma_min > tolerance else float("inf")
    return SvdStats(sigma_min, sigma_max, kappa)


def stable_rank(S: torch.Tensor) -> float:
    """Mean over the leading batch dimension of ||S_i||_F^2 / ||S_i||_2^2 (1 for rank one)."""
    S = S.detach()
    fro = torch.linalg.matrix_norm(S, ord="fro")
    spectral = torch.linalg.matrix_norm(S, ord=2)
    return (fro**2 / spectral**2).mean().item()
